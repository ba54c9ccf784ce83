//! DNS data: names, types, RDATA codecs, records, messages.
//!
//! signet keeps its own model instead of hickory's: RDATA stays in uncompressed wire form with
//! case preserved, so the canonical form needed for signing (RFC 4034 §6) is computed from the
//! same bytes that are served, and presentation parsing/printing round-trips every type
//! (research/crates.md §1 and §4 list what hickory gets wrong for a signer).

pub mod loc;
pub mod message;
pub mod name;
pub mod rdata;
pub mod record;
pub mod rtype;
pub mod svcb;
pub mod wire;

pub use name::Name;
pub use record::Record;
pub use rtype::{class, t};
