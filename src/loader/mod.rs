//! The upstream transfer client: SOA query, IXFR and AXFR from a hidden primary.
//!
//! signet writes its own client instead of using a library one: the client of hickory drops
//! messages under load and then reports a truncated zone as a success, times out the whole
//! transfer instead of each message, and panics on IXFR requests for ordinary zones
//! (research/crates.md §3). Here every message is read over one TCP connection with a two-octet
//! length prefix (RFC 1035 §4.2.2, RFC 7766), checked, TSIG-verified and fed to a small state
//! machine (`session.rs`); the new version is built aside and returned only when the transfer
//! reached its closing SOA and the result passed the zone rules of [`Zone::from_records`].
//!
//! ## Refresh flow (after Knot's `knot/events/handlers/refresh.c`)
//!
//! ```text
//!  REFRESH timer / NOTIFY / `signet retransfer`          (the zone task, the caller)
//!        │
//!        ▼
//!  query_soa ── SOA query over UDP ──▶ primary ── TC=1 or no answer ──▶ same query over TCP
//!        │  answer: ID, question, QR, NOERROR, AA, one SOA at the apex, TSIG (RFC 8945 §5.3)
//!        ├── serial not newer (RFC 1982) ─────────────────────────▶ nothing to do
//!        ▼ newer
//!  transfer(current = Some(v), force_axfr = false)
//!        │  IXFR query, our SOA in the authority section (RFC 1995 §3)
//!        ├── SOA(n) alone, n not newer ───────────────────────────▶ Fetched::UpToDate
//!        ├── SOA(n) SOA(ours) −… SOA(a) +… [SOA(a) −… SOA(b) +…]… SOA(n)
//!        │     each diff applied to a clone of v, the result re-checked ▶ Fetched::Incremental
//!        ├── SOA(n) records… SOA(n)   (AXFR-style, RFC 1995 §4) ──▶ Fetched::Full { via_ixfr }
//!        └── error ── e.ixfr_fallback()? ──┐
//!                                          ▼
//!  transfer(current, force_axfr = true) or transfer(None, …)
//!        │  AXFR query (RFC 5936 §2.2): SOA, records…, SOA over one or more messages
//!        └──────────────────────────────────────────────────────▶ Fetched::Full
//! ```
//!
//! Nothing here touches the caller's version: an error at any point (connection closed before
//! the closing SOA, a stalled peer, a bad MAC, a limit) returns an [`XfrError`] and the caller
//! keeps serving what it had (issue 3, "built aside and swapped in only when complete").
//!
//! ## What is checked on every message
//!
//! | check | reference |
//! |---|---|
//! | length prefix, size counted against [`Limits::max_bytes`] before the body is read | RFC 7766 §8, CVE-2016-6170/6171/6173 |
//! | the message parses (bounded, no panics) | RFC 1035 §4.1 |
//! | ID is the query's, QR set, opcode QUERY, TC clear | RFC 5936 §2.2.1 |
//! | TSIG: first and last message signed, MAC chained over unsigned ones (≤ 99 in a row), time window | RFC 8945 §5.3.1 |
//! | RCODE NOERROR, else [`XfrError::Refused`] | RFC 5936 §2.2 |
//! | question copied from the query in the first message, empty or copied afterwards | RFC 5936 §2.2.1 |
//! | answer records of class IN, no meta types (OPT, TSIG, AXFR…) | RFC 5936 §3.2, RFC 6891 §6.1.1 |
//! | first record the apex SOA; nothing after the closing SOA; closing SOA = opening SOA | RFC 5936 §2.2, RFC 1995 §4 |
//! | IXFR diffs chain from our serial; every removed record is present | RFC 1995 §4 |
//! | records counted against [`Limits::max_records`]; each message within [`Limits::idle_timeout`]; the whole within [`Limits::max_duration`] | research/reliability_style.md B4 |
//!
//! DNSSEC records of a previous signer are *not* stripped here: the caller does it and logs
//! what it stripped. Because IXFR diffs are applied to `current`, pass the version as it was
//! received (before stripping): a diff that removes a record missing from `current` is an
//! [`XfrError::Ixfr`] (then fall back to AXFR).

mod apply;
mod net;
mod session;

use crate::auth;
use crate::dns::message::rcode;
use crate::dns::name::Name;
use crate::dns::record::Record;
use crate::zone::data::Zone;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use session::serial_gt;

// ---------------------------------------------------------------------------------------------
// Limits

/// Caps on one SOA query or transfer. Each one answers a way a primary (compromised, buggy, or
/// an attacker on the path before TSIG is checked) could exhaust the signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Octets of DNS messages (length prefixes excluded) per transfer.
    pub max_bytes: u64,
    /// Answer records per transfer, and records in the resulting zone.
    pub max_records: u64,
    /// Wall-clock time for the whole transfer, connection included.
    pub max_duration: Duration,
    /// Time to receive each message (its length prefix and body).
    pub idle_timeout: Duration,
    /// Time to establish the TCP connection; also the time a UDP SOA query waits for an answer
    /// before it is retried over TCP.
    pub connect_timeout: Duration,
}

/// 1 GiB of messages: an endless AXFR (CVE-2016-6170 BIND, -6171 Knot, -6173 NSD) stops here
/// instead of at the memory limit of the host. Large enough for zones of several million
/// records.
pub const MAX_BYTES: u64 = 1 << 30;

/// 50 million records: bounds the memory a transfer can make us allocate for the new version,
/// independently of how compactly the records were encoded.
pub const MAX_RECORDS: u64 = 50_000_000;

/// One hour for a whole transfer: a peer that trickles a message every few seconds (a
/// slow-read/slowloris attack that stays under the idle timeout) cannot hold the zone's refresh
/// forever.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// 30 seconds per message: a peer that stops sending mid-transfer (crashed, or holding the
/// connection open on purpose) is detected instead of blocking the zone's refresh; this is
/// per message, unlike hickory's timeout on the whole transfer (research/crates.md §3).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// 10 seconds to connect: an unreachable primary (packets dropped, no RST) fails fast so that
/// the next primary in the list can be tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: MAX_BYTES,
            max_records: MAX_RECORDS,
            max_duration: MAX_DURATION,
            idle_timeout: IDLE_TIMEOUT,
            connect_timeout: CONNECT_TIMEOUT,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Results

/// One IXFR difference sequence (RFC 1995 §4): the records removed from version `from_serial`
/// and added to make version `to_serial`. As on the wire, `removed[0]` is the old SOA and
/// `added[0]` the new SOA, so applying `removed` then `added` turns one version into the next.
/// A condensed IXFR gives one `Diff` spanning several versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub from_serial: u32,
    pub to_serial: u32,
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
}

/// What a [`transfer`] brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The IXFR reply was the current SOA alone (RFC 1995 §4) and its serial is not newer than
    /// ours: nothing changed. `serial` is the primary's.
    UpToDate { serial: u32 },
    /// A whole zone: an AXFR, or an IXFR answered AXFR-style (`via_ixfr`).
    Full { zone: Zone, via_ixfr: bool },
    /// IXFR differences, already applied to a copy of `current` and re-checked with the rules
    /// of [`Zone::from_records`].
    Incremental { zone: Zone, diffs: Vec<Diff> },
}

impl Fetched {
    /// The serial the primary has now.
    pub fn serial(&self) -> Option<u32> {
        match self {
            Fetched::UpToDate { serial } => Some(*serial),
            Fetched::Full { zone, .. } | Fetched::Incremental { zone, .. } => zone.serial(),
        }
    }
}

/// Why a SOA query or a transfer failed. `Display` is one line for the operator log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XfrError {
    /// The TCP connection (or the UDP socket) could not be set up.
    Connect(String),
    /// Nothing arrived in time: `what` says what we were waiting for.
    Timeout { what: String },
    /// The primary answered with an error RCODE (REFUSED, NOTAUTH, NOTIMP, SERVFAIL…).
    Refused { rcode: u16 },
    /// TSIG: the answer is unsigned, signed with another key, does not verify, is outside the
    /// time window, or the primary reports a TSIG error (BADKEY, BADSIG, BADTIME).
    Tsig(String),
    /// The answer breaks the protocol (unparsable, wrong ID or question, records out of place).
    Malformed(String),
    /// A cap of [`Limits`] was reached.
    Limit(String),
    /// The connection ended (closed or reset) before the closing SOA: a truncated transfer.
    Closed(String),
    /// The IXFR does not fit our version: it starts at another serial, removes a record we do
    /// not have, adds one we already have, or its diff sequence is broken. Fall back to AXFR.
    Ixfr(String),
    /// The transferred version breaks the zone rules (no SOA, out-of-zone data, CNAME and other
    /// data…): one message per problem.
    BadZone(Vec<String>),
}

impl XfrError {
    /// Whether an AXFR is worth trying after this error from an IXFR: the primary answered but
    /// the IXFR could not be used (not implemented, refused, malformed, broken diffs, or a result
    /// that is not a valid zone). Not after connection problems, timeouts, TSIG failures or
    /// limits, which an AXFR would meet as well.
    pub fn ixfr_fallback(&self) -> bool {
        matches!(
            self,
            XfrError::Refused { .. }
                | XfrError::Malformed(_)
                | XfrError::Closed(_)
                | XfrError::Ixfr(_)
                | XfrError::BadZone(_)
        )
    }
}

impl std::fmt::Display for XfrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            XfrError::Connect(m) => write!(f, "cannot connect to the primary: {m}"),
            XfrError::Timeout { what } => write!(f, "timed out {what}"),
            XfrError::Refused { rcode: rc } => {
                let hint = match *rc {
                    rcode::REFUSED => " (zone not served there, or transfer not allowed)",
                    rcode::NOTAUTH => " (TSIG key missing or not accepted)",
                    rcode::NOTIMP => " (not implemented there)",
                    _ => "",
                };
                write!(f, "the primary answered {}{hint}", rcode::name(*rc))
            }
            XfrError::Tsig(m) => write!(f, "TSIG check failed: {m}"),
            XfrError::Malformed(m) => write!(f, "malformed answer from the primary: {m}"),
            XfrError::Limit(m) => write!(f, "transfer aborted at a limit: {m}"),
            XfrError::Closed(m) => write!(f, "transfer incomplete: {m}"),
            XfrError::Ixfr(m) => write!(f, "IXFR does not apply to our version: {m}"),
            XfrError::BadZone(problems) => {
                write!(f, "the transferred zone is not valid: ")?;
                for (i, p) in problems.iter().take(3).enumerate() {
                    if i > 0 {
                        write!(f, "; ")?;
                    }
                    write!(f, "{p}")?;
                }
                if problems.len() > 3 {
                    write!(f, " (and {} more problems)", problems.len() - 3)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for XfrError {}

// ---------------------------------------------------------------------------------------------
// Entry points

/// Asks `primary` for the SOA serial of `zone` (RFC 1996 §3.11, RFC 1034 §4.3.5): over UDP,
/// repeated over TCP when the answer is truncated or none comes within
/// [`Limits::connect_timeout`]. With a key, the query is signed and the answer must verify.
/// The answer must be authoritative (AA), echo the question, and hold exactly one SOA, at the
/// apex.
pub async fn query_soa(
    primary: SocketAddr,
    zone: &Name,
    key: Option<&Arc<auth::Key>>,
    limits: &Limits,
) -> Result<u32, XfrError> {
    net::query_soa(primary, zone, key, limits).await
}

/// Transfers `zone` from `primary`: IXFR from the serial of `current` when it is given and
/// `force_axfr` is false, else AXFR. See the module documentation for the flow and the checks.
/// `current` is never modified; the new version is returned only when the transfer is
/// complete and valid.
pub async fn transfer(
    primary: SocketAddr,
    zone: &Name,
    key: Option<&Arc<auth::Key>>,
    current: Option<&Zone>,
    force_axfr: bool,
    limits: &Limits,
) -> Result<Fetched, XfrError> {
    let base = if force_axfr { None } else { current };
    net::transfer(primary, zone, key, base, limits).await
}

#[cfg(test)]
mod tests;
