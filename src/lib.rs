//! # signet — a DNSSEC signer in the wire
//!
//! ```text
//!  hidden primary ──NOTIFY──▶ loader ──SOA / IXFR / AXFR (TSIG)──▶ unsigned version N
//!  (or a zone file, watched)                                           │ diff
//!                                     kasp (policy + key states) ──▶ signer ◀── keystore (files | pkcs11)
//!  multi-signer controller ──UPDATE (TSIG)──▶ update ──▶ apex overlay ─┘   (DNSKEY/CDS/CDNSKEY/CSYNC)
//!                                                                       │ signed diff, verified
//!                                                     signed version M + journal (fsync) + snapshot
//!                                                                       │
//!  BIND / NSD / Knot secondaries ◀──NOTIFY, IXFR / AXFR (TSIG, ACL)── publisher (also answers queries)
//!  operator ⇄ control socket (status, keys, rollover, step, ds …) ⇄ every zone; /metrics
//! ```
//!
//! ## Layout
//!
//! | module | DNS noun | RFCs |
//! |---|---|---|
//! | [`dns`] | names, record types, RDATA wire and presentation codecs, messages | 1035, 3597, 4034 §6 |
//! | [`zonefile`] | presentation-format zone files, reader and writer | 1035 §5, 3597 |
//! | [`config`] | the TOML configuration, durations, `signet check` | — |
//! | [`keystore`] | signing keys: soft keys in PKCS#8 files | 4034, 6605, 8080 |
//! | [`signer`] | canonical RRsets, RRSIG, NSEC, NSEC3, full-zone signing | 4034, 4035, 5155, 9276, 9077 |
//! | [`auth`] | TSIG and address ACLs: one path for every transport | 8945 |
//! | [`publisher`] | the authoritative server: queries, AXFR out, NOTIFY out | 1034, 1996, 5936 |
//! | [`zone`] | one zone's life: load, sign, persist, publish | — |
//!
//! ## Invariants
//!
//! * Data from the network or a file is never `unwrap()`ed: every parser returns an error.
//! * A signed version is published whole (an `Arc` swap) or not at all.
//! * Key material is written with temp file + fsync + rename before a DNSKEY that depends on it
//!   is published.

pub mod auth;
pub mod clock;
pub mod commands;
pub mod config;
pub mod control;
pub mod dns;
pub mod journal;
pub mod kasp;
pub mod keystore;
pub mod loader;
pub mod publisher;
pub mod signer;
pub mod zone;
pub mod zonefile;
