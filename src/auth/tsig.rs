//! TSIG: transaction signatures with HMAC-SHA-256/384/512 (RFC 8945).
//!
//! ```text
//!  request MAC  = HMAC( request' | variables )                                     §4.3.3
//!  response MAC = HMAC( len(request MAC) | request MAC | response' | variables )    §4.3.1
//!  message k>1  = HMAC( len(prior MAC) | prior MAC | unsigned messages | msg' | timers )  §4.3.2
//! ```
//!
//! `msg'` is the message as it was before the TSIG record was added: the TSIG record removed,
//! ARCOUNT one less, and the ID set to the TSIG's Original ID. The *variables* are the key name
//! and algorithm in canonical form, CLASS ANY, TTL 0, time signed, fudge, error and other data;
//! *timers* are time signed and fudge only.
//!
//! Request checks, in the order of RFC 8945 §5.2 (the first failure decides the answer):
//!
//! 1. key known and the algorithm is the key's (§5.2.1) — else BADKEY, unsigned error response;
//! 2. MAC length within [max(10, L/2), L] for an L-octet HMAC (§5.2.2.1) — else FORMERR;
//!    shorter than L is refused by our truncation policy — BADTRUNC, unsigned;
//! 3. the MAC, compared in constant time (§5.2.2) — else BADSIG, unsigned;
//! 4. the time window: |now − time signed| ≤ min(fudge, [`FUDGE`]) (§5.2.3) — else BADTIME, a
//!    *signed* response whose Other Data holds the server time.
//!
//! Errors are answered with RCODE NOTAUTH and the TSIG error field (§5.3.2).
//!
//! Multi-message responses (AXFR, IXFR) are signed on every message by [`ResponseSigner`];
//! [`ResponseVerifier`] (for the transfer client) accepts up to [`MAX_UNSIGNED_IN_A_ROW`]
//! unsigned messages between signed ones, as §5.3.1 allows, and insists that the first and the
//! last message are signed.

use super::{Key, Keyring};
use crate::dns::message::{rcode, Message, TsigRecord};
use crate::dns::name::Name;
use std::sync::Arc;

/// The fudge we put in signed messages, and the widest time window we accept from a peer
/// (a larger fudge in a request is cut down to this). Answers replay of old signed messages
/// (Knot CVE-2017-11104 was a validity window check gone wrong).
pub const FUDGE: u16 = 300;

/// RFC 8945 §5.3.1: "…a TSIG MUST be included on the first and last DNS envelopes and SHOULD
/// be placed on all intermediary envelopes"; a receiver must accept at most 99 unsigned messages
/// in a row. More is an attack (unauthenticated data injected into a transfer).
pub const MAX_UNSIGNED_IN_A_ROW: usize = 99;

/// A request whose TSIG verified: the key and the MAC needed to sign the answer.
#[derive(Debug, Clone)]
pub struct Verified {
    pub key: Arc<Key>,
    pub mac: Vec<u8>,
    pub time_signed: u64,
}

/// Why a request's TSIG was not accepted, with what the error response needs.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The TSIG record is malformed (MAC size out of range, RFC 8945 §5.2.2.1): answer FORMERR.
    FormErr(String),
    /// Unknown key, or the algorithm is not the key's (§5.2.1).
    BadKey { key_name: Name, algorithm: Name },
    /// A truncated MAC; our policy accepts only full-length MACs (§5.2.2.1).
    BadTrunc { key_name: Name, algorithm: Name },
    /// The MAC does not verify (§5.2.2).
    BadSig { key_name: Name, algorithm: Name },
    /// Outside the time window (§5.2.3). The answer is signed.
    BadTime {
        key: Arc<Key>,
        request_mac: Vec<u8>,
        time_signed: u64,
    },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::FormErr(m) => write!(f, "malformed TSIG: {m}"),
            Failure::BadKey { key_name, algorithm } => {
                write!(f, "BADKEY: unknown key {key_name} or wrong algorithm {algorithm}")
            }
            Failure::BadTrunc { key_name, .. } => {
                write!(f, "BADTRUNC: truncated MAC with key {key_name} (only full MACs are accepted)")
            }
            Failure::BadSig { key_name, .. } => write!(f, "BADSIG: MAC does not verify with key {key_name}"),
            Failure::BadTime {
                key, time_signed, ..
            } => write!(
                f,
                "BADTIME: key {} signed at {time_signed}, outside the {FUDGE}s window (check the clocks)",
                key.name
            ),
        }
    }
}

impl Failure {
    /// The RCODE of the error response: FORMERR or NOTAUTH (RFC 8945 §5.3.2).
    pub fn rcode(&self) -> u16 {
        match self {
            Failure::FormErr(_) => rcode::FORMERR,
            _ => rcode::NOTAUTH,
        }
    }

    /// The TSIG error field value.
    pub fn tsig_error(&self) -> u16 {
        match self {
            Failure::FormErr(_) => 0,
            Failure::BadKey { .. } => rcode::BADKEY,
            Failure::BadTrunc { .. } => rcode::BADTRUNC,
            Failure::BadSig { .. } => rcode::BADSIG,
            Failure::BadTime { .. } => rcode::BADTIME,
        }
    }

    /// Appends the TSIG record of the error response to `response` (already built, with
    /// [`Failure::rcode`]): nothing for FORMERR; an unsigned TSIG (MAC size 0) carrying the error
    /// for BADKEY/BADTRUNC/BADSIG; a signed TSIG with the request's time signed and the server
    /// time in Other Data for BADTIME.
    pub fn append_tsig(&self, response: &mut Vec<u8>, now: u64) {
        let (key_name, algorithm) = match self {
            Failure::FormErr(_) => return,
            Failure::BadTime {
                key,
                request_mac,
                time_signed,
            } => {
                let mut s = ResponseSigner {
                    key: key.clone(),
                    prior_mac: request_mac.clone(),
                    first: true,
                    error: rcode::BADTIME,
                    other: now.to_be_bytes()[2..8].to_vec(),
                    fixed_time: Some(*time_signed),
                };
                s.sign(response, now);
                return;
            }
            Failure::BadKey {
                key_name,
                algorithm,
            }
            | Failure::BadTrunc {
                key_name,
                algorithm,
            }
            | Failure::BadSig {
                key_name,
                algorithm,
            } => (key_name, algorithm),
        };
        let id = message_id(response);
        append_record(
            response,
            &TsigRecord {
                key_name: key_name.clone(),
                algorithm: algorithm.clone(),
                time_signed: now,
                fudge: FUDGE,
                mac: Vec::new(),
                original_id: id,
                error: self.tsig_error(),
                other: Vec::new(),
            },
        );
    }
}

/// Checks the TSIG of a received request (`msg` is the raw message, `parsed` its parse).
/// `Ok(None)`: not signed. See the module documentation for the order of checks.
pub fn verify_request(
    msg: &[u8],
    parsed: &Message,
    keys: &Keyring,
    now: u64,
) -> Result<Option<Verified>, Failure> {
    let Some(found) = &parsed.tsig else {
        return Ok(None);
    };
    let rec = &found.record;
    let bad_key = || Failure::BadKey {
        key_name: rec.key_name.clone(),
        algorithm: rec.algorithm.clone(),
    };
    let key = keys.get(&rec.key_name).ok_or_else(bad_key)?;
    if key.algorithm_name() != rec.algorithm {
        return Err(bad_key());
    }
    check_mac_len(key, rec)?;
    let mut data = stripped(msg, found.offset, rec.original_id);
    variables(&mut data, rec, rec.error, &rec.other);
    if !key.verify(&data, &rec.mac) {
        return Err(Failure::BadSig {
            key_name: rec.key_name.clone(),
            algorithm: rec.algorithm.clone(),
        });
    }
    if !in_window(now, rec) {
        return Err(Failure::BadTime {
            key: key.clone(),
            request_mac: rec.mac.clone(),
            time_signed: rec.time_signed,
        });
    }
    Ok(Some(Verified {
        key: key.clone(),
        mac: rec.mac.clone(),
        time_signed: rec.time_signed,
    }))
}

fn check_mac_len(key: &Key, rec: &TsigRecord) -> Result<(), Failure> {
    let full = key.mac_len();
    let len = rec.mac.len();
    if len > full || len < (full / 2).max(10) {
        return Err(Failure::FormErr(format!(
            "MAC of {len} octets for {} (RFC 8945 §5.2.2.1 allows {}..={full})",
            rec.algorithm,
            (full / 2).max(10)
        )));
    }
    if len < full {
        return Err(Failure::BadTrunc {
            key_name: rec.key_name.clone(),
            algorithm: rec.algorithm.clone(),
        });
    }
    Ok(())
}

fn in_window(now: u64, rec: &TsigRecord) -> bool {
    let fudge = u64::from(rec.fudge.min(FUDGE));
    now.abs_diff(rec.time_signed) <= fudge
}

/// Signs a request (NOTIFY, SOA, AXFR/IXFR, UPDATE) in place; returns its MAC, which the
/// response is checked against ([`ResponseVerifier::new`]).
pub fn sign_request(msg: &mut Vec<u8>, key: &Key, now: u64) -> Vec<u8> {
    let rec = TsigRecord {
        key_name: key.name.clone(),
        algorithm: key.algorithm_name(),
        time_signed: now & 0xffff_ffff_ffff,
        fudge: FUDGE,
        mac: Vec::new(),
        original_id: message_id(msg),
        error: 0,
        other: Vec::new(),
    };
    let mut data = msg.clone();
    variables(&mut data, &rec, 0, &[]);
    let mac = key.sign(&data);
    append_record(
        msg,
        &TsigRecord {
            mac: mac.clone(),
            ..rec
        },
    );
    mac
}

/// Signs the messages of a response, chaining each MAC to the previous one (RFC 8945 §5.3.1).
#[derive(Debug)]
pub struct ResponseSigner {
    key: Arc<Key>,
    prior_mac: Vec<u8>,
    first: bool,
    error: u16,
    other: Vec<u8>,
    fixed_time: Option<u64>,
}

impl ResponseSigner {
    /// A signer for the answer to a verified request.
    pub fn new(request: &Verified) -> ResponseSigner {
        ResponseSigner {
            key: request.key.clone(),
            prior_mac: request.mac.clone(),
            first: true,
            error: 0,
            other: Vec::new(),
            fixed_time: None,
        }
    }

    pub fn key(&self) -> &Arc<Key> {
        &self.key
    }

    /// Octets the TSIG record adds to a message (to reserve space under a size limit).
    pub fn overhead(&self) -> usize {
        self.key.name.wire_len()
            + 10
            + self.key.algorithm_name().wire_len()
            + 16
            + self.key.mac_len()
            + 6
    }

    /// Appends the TSIG record to the finished message `msg`.
    pub fn sign(&mut self, msg: &mut Vec<u8>, now: u64) {
        let time = self.fixed_time.unwrap_or(now) & 0xffff_ffff_ffff;
        let rec = TsigRecord {
            key_name: self.key.name.clone(),
            algorithm: self.key.algorithm_name(),
            time_signed: time,
            fudge: FUDGE,
            mac: Vec::new(),
            original_id: message_id(msg),
            error: self.error,
            other: self.other.clone(),
        };
        let mut data = Vec::with_capacity(msg.len() + self.prior_mac.len() + 64);
        data.extend_from_slice(&(self.prior_mac.len() as u16).to_be_bytes());
        data.extend_from_slice(&self.prior_mac);
        data.extend_from_slice(msg);
        if self.first {
            variables(&mut data, &rec, rec.error, &rec.other);
        } else {
            timers(&mut data, &rec);
        }
        let mac = self.key.sign(&data);
        self.prior_mac = mac.clone();
        self.first = false;
        append_record(msg, &TsigRecord { mac, ..rec });
    }
}

/// Why a (multi-message) response did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseError {
    /// The first message is not signed (RFC 8945 §5.3.1).
    FirstUnsigned,
    /// More than [`MAX_UNSIGNED_IN_A_ROW`] unsigned messages in a row, or the last unsigned.
    TooManyUnsigned,
    LastUnsigned,
    /// Signed with another key or algorithm than the request.
    WrongKey(Name),
    /// The peer answered with a TSIG error (BADKEY, BADSIG, BADTIME…).
    Peer(u16),
    BadSig,
    BadTime(u64),
    Malformed(String),
}

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResponseError::FirstUnsigned => write!(f, "the response is not TSIG-signed"),
            ResponseError::TooManyUnsigned => write!(
                f,
                "more than {MAX_UNSIGNED_IN_A_ROW} unsigned messages in a row (RFC 8945 §5.3.1)"
            ),
            ResponseError::LastUnsigned => {
                write!(f, "the last message of the response is not signed")
            }
            ResponseError::WrongKey(k) => write!(f, "response signed with another key ({k})"),
            ResponseError::Peer(e) => write!(f, "the peer reports TSIG error {}", rcode::name(*e)),
            ResponseError::BadSig => write!(f, "the response's TSIG MAC does not verify"),
            ResponseError::BadTime(t) => {
                write!(f, "the response was signed at {t}, outside the time window")
            }
            ResponseError::Malformed(m) => write!(f, "malformed TSIG in response: {m}"),
        }
    }
}

impl std::error::Error for ResponseError {}

/// Checks the messages of a response to a request we signed (client side of AXFR/IXFR, NOTIFY,
/// SOA). Feed every message in order to [`ResponseVerifier::verify`], then call
/// [`ResponseVerifier::finish`].
#[derive(Debug)]
pub struct ResponseVerifier {
    key: Arc<Key>,
    prior_mac: Vec<u8>,
    first: bool,
    /// Unsigned messages since the last signed one (they are covered by the next MAC).
    pending: Vec<u8>,
    unsigned: usize,
}

impl ResponseVerifier {
    pub fn new(key: Arc<Key>, request_mac: Vec<u8>) -> ResponseVerifier {
        ResponseVerifier {
            key,
            prior_mac: request_mac,
            first: true,
            pending: Vec::new(),
            unsigned: 0,
        }
    }

    /// Checks one message (`msg` raw, `parsed` its parse).
    pub fn verify(&mut self, msg: &[u8], parsed: &Message, now: u64) -> Result<(), ResponseError> {
        let Some(found) = &parsed.tsig else {
            if self.first {
                return Err(ResponseError::FirstUnsigned);
            }
            self.unsigned += 1;
            if self.unsigned > MAX_UNSIGNED_IN_A_ROW {
                return Err(ResponseError::TooManyUnsigned);
            }
            self.pending.extend_from_slice(msg);
            return Ok(());
        };
        let rec = &found.record;
        if rec.key_name != self.key.name || rec.algorithm != self.key.algorithm_name() {
            return Err(ResponseError::WrongKey(rec.key_name.clone()));
        }
        if rec.error != 0 {
            return Err(ResponseError::Peer(rec.error));
        }
        if rec.mac.len() != self.key.mac_len() {
            return Err(ResponseError::Malformed(format!(
                "MAC of {} octets, expected {}",
                rec.mac.len(),
                self.key.mac_len()
            )));
        }
        let body = stripped(msg, found.offset, rec.original_id);
        let mut data = Vec::with_capacity(body.len() + self.pending.len() + 128);
        data.extend_from_slice(&(self.prior_mac.len() as u16).to_be_bytes());
        data.extend_from_slice(&self.prior_mac);
        data.extend_from_slice(&self.pending);
        data.extend_from_slice(&body);
        if self.first {
            variables(&mut data, rec, rec.error, &rec.other);
        } else {
            timers(&mut data, rec);
        }
        if !self.key.verify(&data, &rec.mac) {
            return Err(ResponseError::BadSig);
        }
        if !in_window(now, rec) {
            return Err(ResponseError::BadTime(rec.time_signed));
        }
        self.prior_mac = rec.mac.clone();
        self.first = false;
        self.pending.clear();
        self.unsigned = 0;
        Ok(())
    }

    /// After the last message: it must have been signed.
    pub fn finish(&self) -> Result<(), ResponseError> {
        if self.first {
            Err(ResponseError::FirstUnsigned)
        } else if self.unsigned > 0 {
            Err(ResponseError::LastUnsigned)
        } else {
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------

fn message_id(msg: &[u8]) -> u16 {
    match msg {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

/// `msg[..offset]` as it was before signing: ARCOUNT one less, ID = Original ID.
fn stripped(msg: &[u8], offset: usize, original_id: u16) -> Vec<u8> {
    let mut v = msg.get(..offset).unwrap_or(msg).to_vec();
    if v.len() >= 12 {
        v[0..2].copy_from_slice(&original_id.to_be_bytes());
        let ar = u16::from_be_bytes([v[10], v[11]]).saturating_sub(1);
        v[10..12].copy_from_slice(&ar.to_be_bytes());
    }
    v
}

/// The TSIG variables of RFC 8945 §4.3.3.
fn variables(out: &mut Vec<u8>, rec: &TsigRecord, error: u16, other: &[u8]) {
    out.extend_from_slice(&rec.key_name.canonical_wire());
    out.extend_from_slice(&crate::dns::rtype::class::ANY.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&rec.algorithm.canonical_wire());
    timers(out, rec);
    out.extend_from_slice(&error.to_be_bytes());
    out.extend_from_slice(&(other.len() as u16).to_be_bytes());
    out.extend_from_slice(other);
}

fn timers(out: &mut Vec<u8>, rec: &TsigRecord) {
    out.extend_from_slice(&rec.time_signed.to_be_bytes()[2..8]);
    out.extend_from_slice(&rec.fudge.to_be_bytes());
}

/// Appends a TSIG record and counts it in ARCOUNT.
fn append_record(msg: &mut Vec<u8>, rec: &TsigRecord) {
    if msg.len() >= 12 {
        let ar = u16::from_be_bytes([msg[10], msg[11]]).saturating_add(1);
        msg[10..12].copy_from_slice(&ar.to_be_bytes());
    }
    msg.extend_from_slice(&rec.to_wire());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TsigAlgorithm;
    use crate::dns::message::{build_query, Header, MessageWriter, Section, MAX_MESSAGE_LEN};
    use crate::dns::rtype::{class, t};

    const NOW: u64 = 1_700_000_000;

    fn n(s: &str) -> Name {
        Name::parse(s, None).unwrap()
    }

    fn ring(alg: TsigAlgorithm) -> Keyring {
        let mut r = Keyring::new();
        r.insert(Key::new(
            n("xfr-key."),
            alg,
            b"0123456789abcdef0123456789abcdef",
        ));
        r
    }

    fn signed_query(keys: &Keyring, name: &str, now: u64) -> (Vec<u8>, Vec<u8>) {
        let mut q = build_query(77, 0, &n("example.test."), t::AXFR, None);
        let key = keys.get(&n(name)).unwrap().clone();
        let mac = sign_request(&mut q, &key, now);
        (q, mac)
    }

    #[test]
    fn request_round_trip_all_algorithms() {
        for alg in [
            TsigAlgorithm::HmacSha256,
            TsigAlgorithm::HmacSha384,
            TsigAlgorithm::HmacSha512,
        ] {
            let keys = ring(alg);
            let (q, mac) = signed_query(&keys, "xfr-key.", NOW);
            let m = Message::parse(&q).unwrap();
            let v = verify_request(&q, &m, &keys, NOW + 10).unwrap().unwrap();
            assert_eq!(v.mac, mac);
            assert_eq!(v.mac.len(), keys.get(&n("xfr-key.")).unwrap().mac_len());
            // unsigned: None
            let plain = build_query(1, 0, &n("a."), t::A, None);
            let pm = Message::parse(&plain).unwrap();
            assert!(verify_request(&plain, &pm, &keys, NOW).unwrap().is_none());
        }
    }

    #[test]
    fn badkey_badsig_badtime_badtrunc() {
        let keys = ring(TsigAlgorithm::HmacSha256);
        // unknown key name
        let mut other = Keyring::new();
        other.insert(Key::new(n("other."), TsigAlgorithm::HmacSha256, b"secret"));
        let (q, _) = signed_query(&other, "other.", NOW);
        let m = Message::parse(&q).unwrap();
        let e = verify_request(&q, &m, &keys, NOW).unwrap_err();
        assert!(matches!(e, Failure::BadKey { .. }), "{e}");
        assert_eq!(e.tsig_error(), rcode::BADKEY);
        // same name, other algorithm
        let mut wrong_alg = Keyring::new();
        wrong_alg.insert(Key::new(
            n("xfr-key."),
            TsigAlgorithm::HmacSha512,
            b"0123456789abcdef0123456789abcdef",
        ));
        let (q, _) = signed_query(&wrong_alg, "xfr-key.", NOW);
        let m = Message::parse(&q).unwrap();
        assert!(matches!(
            verify_request(&q, &m, &keys, NOW),
            Err(Failure::BadKey { .. })
        ));
        // wrong secret
        let mut wrong_secret = Keyring::new();
        wrong_secret.insert(Key::new(
            n("xfr-key."),
            TsigAlgorithm::HmacSha256,
            b"not the secret",
        ));
        let (q, _) = signed_query(&wrong_secret, "xfr-key.", NOW);
        let m = Message::parse(&q).unwrap();
        assert!(matches!(
            verify_request(&q, &m, &keys, NOW),
            Err(Failure::BadSig { .. })
        ));
        // a flipped bit anywhere in the signed part
        let (q, _) = signed_query(&keys, "xfr-key.", NOW);
        for i in [2usize, 13, 20] {
            let mut b = q.clone();
            b[i] ^= 0x20;
            if let Ok(m) = Message::parse(&b) {
                assert!(verify_request(&b, &m, &keys, NOW).is_err(), "flip at {i}");
            }
        }
        // time outside the window, both directions
        for skew in [301i64, -301] {
            let (q, _) = signed_query(&keys, "xfr-key.", (NOW as i64 + skew) as u64);
            let m = Message::parse(&q).unwrap();
            let e = verify_request(&q, &m, &keys, NOW).unwrap_err();
            assert!(matches!(e, Failure::BadTime { .. }), "{e}");
            // the BADTIME answer is signed and carries the server time
            let mut h = Header::response_to(&m.header);
            h.set_rcode(e.rcode());
            let mut w = MessageWriter::new(h, MAX_MESSAGE_LEN);
            w.question(&n("example.test."), t::AXFR, class::IN).unwrap();
            let mut resp = w.finish();
            e.append_tsig(&mut resp, NOW);
            let rm = Message::parse(&resp).unwrap();
            let tsig = &rm.tsig.as_ref().unwrap().record;
            assert_eq!(tsig.error, rcode::BADTIME);
            assert_eq!(tsig.other, NOW.to_be_bytes()[2..8].to_vec());
            assert_eq!(tsig.mac.len(), 32);
            assert_eq!(rm.header.rcode(), rcode::NOTAUTH);
        }
        // just inside
        let (q, _) = signed_query(&keys, "xfr-key.", NOW - 300);
        let m = Message::parse(&q).unwrap();
        assert!(verify_request(&q, &m, &keys, NOW).is_ok());
        // truncated MACs: 16 of 32 octets → BADTRUNC; 8 → FORMERR; 0 → FORMERR
        for (len, want_formerr) in [(16usize, false), (8, true), (0, true)] {
            let (q, _) = signed_query(&keys, "xfr-key.", NOW);
            let m = Message::parse(&q).unwrap();
            let mut rec = m.tsig.as_ref().unwrap().record.clone();
            rec.mac.truncate(len);
            let mut b = q[..m.tsig.as_ref().unwrap().offset].to_vec();
            b.extend_from_slice(&rec.to_wire());
            let m2 = Message::parse(&b).unwrap();
            let e = verify_request(&b, &m2, &keys, NOW).unwrap_err();
            if want_formerr {
                assert!(matches!(e, Failure::FormErr(_)), "{len}: {e}");
                assert_eq!(e.rcode(), rcode::FORMERR);
            } else {
                assert!(matches!(e, Failure::BadTrunc { .. }), "{len}: {e}");
            }
        }
        // BADKEY/BADSIG answers are unsigned (MAC size 0) and carry the error
        let e = Failure::BadSig {
            key_name: n("xfr-key."),
            algorithm: n("hmac-sha256."),
        };
        let mut resp = build_query(9, 0, &n("x."), t::A, None);
        e.append_tsig(&mut resp, NOW);
        let rm = Message::parse(&resp).unwrap();
        let tsig = rm.tsig.unwrap().record;
        assert!(tsig.mac.is_empty());
        assert_eq!(tsig.error, rcode::BADSIG);
    }

    fn response(id: u16, i: u32) -> Vec<u8> {
        let mut h = Header { id, flags: 0 };
        h.set_qr(true);
        let mut w = MessageWriter::new(h, MAX_MESSAGE_LEN);
        w.record(
            Section::Answer,
            &n("a.example.test."),
            t::A,
            class::IN,
            i,
            &[192, 0, 2, 1],
        )
        .unwrap();
        w.finish()
    }

    #[test]
    fn multi_message_chain() {
        let keys = ring(TsigAlgorithm::HmacSha256);
        let key = keys.get(&n("xfr-key.")).unwrap().clone();
        let (q, mac) = signed_query(&keys, "xfr-key.", NOW);
        let m = Message::parse(&q).unwrap();
        let v = verify_request(&q, &m, &keys, NOW).unwrap().unwrap();
        // every message signed
        let mut s = ResponseSigner::new(&v);
        let msgs: Vec<Vec<u8>> = (0..5)
            .map(|i| {
                let mut r = response(77, i);
                s.sign(&mut r, NOW + u64::from(i));
                r
            })
            .collect();
        let mut ver = ResponseVerifier::new(key.clone(), mac.clone());
        for r in &msgs {
            ver.verify(r, &Message::parse(r).unwrap(), NOW).unwrap();
        }
        ver.finish().unwrap();
        // out of order → BADSIG
        let mut ver = ResponseVerifier::new(key.clone(), mac.clone());
        ver.verify(&msgs[0], &Message::parse(&msgs[0]).unwrap(), NOW)
            .unwrap();
        assert_eq!(
            ver.verify(&msgs[2], &Message::parse(&msgs[2]).unwrap(), NOW),
            Err(ResponseError::BadSig)
        );
        // only first and last signed: allowed (RFC 8945 §5.3.1)
        let mut s = ResponseSigner::new(&v);
        let mut pending = Vec::new();
        let mut all = Vec::new();
        for i in 0..10u32 {
            let mut r = response(77, i);
            if i == 0 || i == 9 {
                s.sign_covering(&mut r, &pending, NOW);
                pending.clear();
            } else {
                pending.extend_from_slice(&r);
            }
            all.push(r);
        }
        let mut ver = ResponseVerifier::new(key.clone(), mac.clone());
        for r in &all {
            ver.verify(r, &Message::parse(r).unwrap(), NOW).unwrap();
        }
        ver.finish().unwrap();
        // first unsigned → error; 100 unsigned in a row → error; last unsigned → finish error
        let mut ver = ResponseVerifier::new(key.clone(), mac.clone());
        let r = response(77, 1);
        assert_eq!(
            ver.verify(&r, &Message::parse(&r).unwrap(), NOW),
            Err(ResponseError::FirstUnsigned)
        );
        let mut ver = ResponseVerifier::new(key.clone(), mac.clone());
        ver.verify(&msgs[0], &Message::parse(&msgs[0]).unwrap(), NOW)
            .unwrap();
        let pr = Message::parse(&r).unwrap();
        for _ in 0..MAX_UNSIGNED_IN_A_ROW {
            ver.verify(&r, &pr, NOW).unwrap();
        }
        assert_eq!(ver.finish(), Err(ResponseError::LastUnsigned));
        assert_eq!(
            ver.verify(&r, &pr, NOW),
            Err(ResponseError::TooManyUnsigned)
        );
    }

    impl ResponseSigner {
        /// Test helper: signs `msg` as the next signed message after the unsigned `pending`
        /// messages (a peer that signs only some messages).
        fn sign_covering(&mut self, msg: &mut Vec<u8>, pending: &[u8], now: u64) {
            if pending.is_empty() {
                return self.sign(msg, now);
            }
            let rec = TsigRecord {
                key_name: self.key.name.clone(),
                algorithm: self.key.algorithm_name(),
                time_signed: now,
                fudge: FUDGE,
                mac: Vec::new(),
                original_id: message_id(msg),
                error: 0,
                other: Vec::new(),
            };
            let mut data = Vec::new();
            data.extend_from_slice(&(self.prior_mac.len() as u16).to_be_bytes());
            data.extend_from_slice(&self.prior_mac);
            data.extend_from_slice(pending);
            data.extend_from_slice(msg);
            timers(&mut data, &rec);
            let mac = self.key.sign(&data);
            self.prior_mac = mac.clone();
            self.first = false;
            append_record(msg, &TsigRecord { mac, ..rec });
        }
    }
}
