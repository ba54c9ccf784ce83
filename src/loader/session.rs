//! The transfer state machine: every received message goes through [`Session::feed`], which
//! checks it (header, TSIG, RCODE, question, records) and moves the AXFR/IXFR state forward.
//! No I/O here, so the unit tests drive it with hand-built message sequences.
//!
//! ```text
//!  Start ── the first record must be the apex SOA(n), else Malformed
//!    ├─ AXFR ─────────────────────────────────────────────────────────────▶ Whole
//!    └─ IXFR ─▶ Opened
//!                ├─ the first message held SOA(n) alone, n not newer than ours ─▶ Done(UpToDate)
//!                ├─ SOA(n) again, n not newer than ours ────────────────────────▶ Done(UpToDate)
//!                ├─ any other record (an AXFR-style answer, RFC 1995 §4) ───────▶ Whole
//!                └─ SOA(ours) ─▶ Removing ◀────────────────────────────┐
//!                                  │ records… → diff.removed           │ SOA(b), b = the diff's
//!                                  │ SOA(b) → diff.added[0]            │ to-serial: the next
//!                                  ▼                                   │ diff starts
//!                                Adding ── records… → diff.added ──────┤
//!                                  │ SOA(n) after a diff ending at n
//!                                  ▼
//!                                Done(Incremental)
//!  Whole ── records… ── SOA(n), identical to the opening one ─────────────▶ Done(Full)
//! ```
//!
//! Any other SOA where a delimiter is expected is an [`XfrError::Ixfr`] (the diffs do not
//! start at our serial or do not chain) and the caller falls back to AXFR.

use super::{Diff, XfrError};
use crate::auth::tsig::{ResponseError, ResponseVerifier};
use crate::dns::message::{opcode, rcode, Message};
use crate::dns::name::Name;
use crate::dns::rdata;
use crate::dns::record::Record;
use crate::dns::rtype::{self, class, t};
use crate::zone::data::soa_field;

/// RFC 1982 serial number arithmetic: is `a` greater than (newer than) `b`?
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && (a.wrapping_sub(b) as i32) > 0
}

/// What a complete transfer carried (before it is turned into a [`super::Fetched`]).
#[derive(Debug)]
pub(crate) enum Outcome {
    UpToDate {
        serial: u32,
    },
    /// Every record, the opening SOA first, the closing SOA left out.
    Full {
        records: Vec<Record>,
        via_ixfr: bool,
    },
    Incremental {
        diffs: Vec<Diff>,
    },
}

#[derive(Debug)]
enum State {
    Start,
    Opened {
        first: Record,
        serial: u32,
    },
    Whole {
        first: Record,
        records: Vec<Record>,
        via_ixfr: bool,
    },
    Removing {
        first: Record,
        serial: u32,
        done: Vec<Diff>,
        diff: Diff,
    },
    Adding {
        first: Record,
        serial: u32,
        done: Vec<Diff>,
        diff: Diff,
    },
    Done(Outcome),
    /// Left behind while a transition holds the state by value; never observed after an `Ok`.
    Poisoned,
}

/// One AXFR or IXFR (or a single SOA answer) in progress.
#[derive(Debug)]
pub(crate) struct Session {
    origin: Name,
    qtype: u16,
    id: u16,
    /// IXFR: the serial of the version the diffs must start from.
    ours: Option<u32>,
    verifier: Option<ResponseVerifier>,
    max_records: u64,
    messages: u64,
    records: u64,
    state: State,
}

impl Session {
    /// A session for the answer to query `id` of type `qtype` (AXFR or IXFR) for `origin`.
    /// `ours` is the serial sent in an IXFR query; `verifier` is set when the query was signed.
    pub(crate) fn new(
        origin: Name,
        qtype: u16,
        id: u16,
        ours: Option<u32>,
        verifier: Option<ResponseVerifier>,
        max_records: u64,
    ) -> Session {
        Session {
            origin,
            qtype,
            id,
            ours,
            verifier,
            max_records,
            messages: 0,
            records: 0,
            state: State::Start,
        }
    }

    pub(crate) fn messages(&self) -> u64 {
        self.messages
    }

    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    fn kind(&self) -> &'static str {
        if self.qtype == t::IXFR {
            "IXFR"
        } else {
            "AXFR"
        }
    }

    /// Checks and consumes one message. `Ok(true)`: the transfer is complete (read no more).
    pub(crate) fn feed(&mut self, msg: &[u8], now: u64) -> Result<bool, XfrError> {
        self.messages += 1;
        let n = self.messages;
        let parsed = Message::parse(msg)
            .map_err(|e| XfrError::Malformed(format!("message {n}: {}", e.reason)))?;
        check_envelope(&parsed, self.id, n)?;
        if let Some(v) = self.verifier.as_mut() {
            v.verify(msg, &parsed, now)
                .map_err(|e| tsig_error(&e, &parsed, n))?;
        }
        let rc = parsed.rcode();
        if rc != rcode::NOERROR {
            return Err(XfrError::Refused { rcode: rc });
        }
        if parsed.header.tc() {
            return Err(XfrError::Malformed(format!(
                "message {n} has the TC bit set (a transfer over TCP is never truncated)"
            )));
        }
        check_question(&parsed, &self.origin, self.qtype, n > 1)?;
        if n == 1 && parsed.answers.is_empty() {
            return Err(XfrError::Malformed(format!(
                "the first message of the {} has no records (it must start with the SOA)",
                self.kind()
            )));
        }
        let count = parsed.answers.len();
        for (i, r) in parsed.answers.into_iter().enumerate() {
            if matches!(self.state, State::Done(_)) {
                return Err(XfrError::Malformed(format!(
                    "{} records after the closing SOA in message {n}",
                    count - i
                )));
            }
            self.records += 1;
            if self.records > self.max_records {
                return Err(XfrError::Limit(format!(
                    "more than {} records (max_records)",
                    self.max_records
                )));
            }
            check_record(&r, n)?;
            self.step(r)?;
        }
        if n == 1 {
            if let (State::Opened { serial, .. }, Some(ours)) = (&self.state, self.ours) {
                // RFC 1995 §4: a reply holding the current SOA alone means "up to date".
                if !serial_gt(*serial, ours) {
                    self.state = State::Done(Outcome::UpToDate { serial: *serial });
                }
            }
        }
        if matches!(self.state, State::Done(_)) {
            if let Some(v) = &self.verifier {
                v.finish().map_err(|e| XfrError::Tsig(e.to_string()))?;
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// The result, once [`Session::feed`] returned `Ok(true)`; else what was missing.
    pub(crate) fn outcome(self) -> Result<Outcome, XfrError> {
        match self.state {
            State::Done(o) => Ok(o),
            _ => Err(XfrError::Closed(format!(
                "the {} ended after {} messages and {} records, before the closing SOA",
                if self.qtype == t::IXFR {
                    "IXFR"
                } else {
                    "AXFR"
                },
                self.messages,
                self.records
            ))),
        }
    }

    /// The serial of `r` if it is the SOA at the apex (the delimiter of transfers).
    fn apex_soa(&self, r: &Record) -> Result<Option<u32>, XfrError> {
        if r.rtype != t::SOA || r.owner != self.origin {
            return Ok(None);
        }
        soa_field(&r.rdata, 0)
            .map(Some)
            .ok_or_else(|| XfrError::Malformed("SOA RDATA of the wrong length".into()))
    }

    fn step(&mut self, r: Record) -> Result<(), XfrError> {
        let soa = self.apex_soa(&r)?;
        let state = std::mem::replace(&mut self.state, State::Poisoned);
        self.state = match state {
            State::Start => {
                let Some(serial) = soa else {
                    return Err(XfrError::Malformed(format!(
                        "the {} starts with {} {}, not the SOA of {} (RFC 5936 §2.2)",
                        self.kind(),
                        r.owner,
                        rtype::type_name(r.rtype),
                        self.origin
                    )));
                };
                if self.qtype == t::IXFR {
                    State::Opened { first: r, serial }
                } else {
                    State::Whole {
                        first: r.clone(),
                        records: vec![r],
                        via_ixfr: false,
                    }
                }
            }
            State::Opened { first, serial } => {
                let ours = self.ours.unwrap_or(serial);
                match soa {
                    None => State::Whole {
                        records: vec![first.clone(), r],
                        first,
                        via_ixfr: true,
                    },
                    Some(s) if s == serial => {
                        // SOA(n) SOA(n): no difference sequence at all
                        if serial_gt(serial, ours) {
                            return Err(XfrError::Ixfr(format!(
                                "the answer for serial {serial} holds no differences from {ours}"
                            )));
                        }
                        check_same_soa(&first, &r)?;
                        State::Done(Outcome::UpToDate { serial })
                    }
                    Some(s) if s == ours => State::Removing {
                        first,
                        serial,
                        done: Vec::new(),
                        diff: Diff {
                            from_serial: s,
                            to_serial: s,
                            removed: vec![r],
                            added: Vec::new(),
                        },
                    },
                    Some(s) => {
                        return Err(XfrError::Ixfr(format!(
                            "the differences start at serial {s}, ours is {ours}"
                        )))
                    }
                }
            }
            State::Whole {
                first,
                mut records,
                via_ixfr,
            } => {
                if soa.is_some() {
                    check_same_soa(&first, &r)?;
                    State::Done(Outcome::Full { records, via_ixfr })
                } else {
                    records.push(r);
                    State::Whole {
                        first,
                        records,
                        via_ixfr,
                    }
                }
            }
            State::Removing {
                first,
                serial,
                done,
                mut diff,
            } => {
                if let Some(s) = soa {
                    diff.to_serial = s;
                    diff.added.push(r);
                    State::Adding {
                        first,
                        serial,
                        done,
                        diff,
                    }
                } else {
                    diff.removed.push(r);
                    State::Removing {
                        first,
                        serial,
                        done,
                        diff,
                    }
                }
            }
            State::Adding {
                first,
                serial,
                mut done,
                mut diff,
            } => match soa {
                None => {
                    diff.added.push(r);
                    State::Adding {
                        first,
                        serial,
                        done,
                        diff,
                    }
                }
                Some(s) if s == serial && diff.to_serial == serial => {
                    check_same_soa(&first, &r)?;
                    done.push(diff);
                    State::Done(Outcome::Incremental { diffs: done })
                }
                Some(s) if s == diff.to_serial => {
                    done.push(diff);
                    State::Removing {
                        first,
                        serial,
                        done,
                        diff: Diff {
                            from_serial: s,
                            to_serial: s,
                            removed: vec![r],
                            added: Vec::new(),
                        },
                    }
                }
                Some(s) => {
                    return Err(XfrError::Ixfr(format!(
                        "after the difference {}→{}, a SOA with serial {s} (expected {} or the closing {serial})",
                        diff.from_serial, diff.to_serial, diff.to_serial
                    )))
                }
            },
            State::Done(o) => {
                self.state = State::Done(o);
                return Err(XfrError::Malformed("records after the closing SOA".into()));
            }
            State::Poisoned => {
                return Err(XfrError::Malformed(
                    "transfer state lost after an earlier error".into(),
                ))
            }
        };
        Ok(())
    }
}

/// ID, QR and opcode of a response to query `id`.
fn check_envelope(m: &Message, id: u16, n: u64) -> Result<(), XfrError> {
    if m.header.id != id {
        return Err(XfrError::Malformed(format!(
            "message {n} has ID {}, the query had {id}",
            m.header.id
        )));
    }
    if !m.header.qr() {
        return Err(XfrError::Malformed(format!(
            "message {n} is not a response (QR clear)"
        )));
    }
    if m.header.opcode() != opcode::QUERY {
        return Err(XfrError::Malformed(format!(
            "message {n} has opcode {}, not QUERY",
            m.header.opcode()
        )));
    }
    Ok(())
}

/// RFC 5936 §2.2.1: the first message copies the question; later ones copy it or have none.
fn check_question(m: &Message, origin: &Name, qtype: u16, later: bool) -> Result<(), XfrError> {
    match m.questions.as_slice() {
        [] if later => Ok(()),
        [q] if q.name == *origin && q.qtype == qtype && q.qclass == class::IN => Ok(()),
        [] => Err(XfrError::Malformed(
            "the answer has no question section (RFC 5936 §2.2.1)".into(),
        )),
        [q] => Err(XfrError::Malformed(format!(
            "the answer is for {} {} {}, the query was {origin} IN {}",
            q.name,
            rtype::class_name(q.qclass),
            rtype::type_name(q.qtype),
            rtype::type_name(qtype)
        ))),
        qs => Err(XfrError::Malformed(format!(
            "the answer has {} questions",
            qs.len()
        ))),
    }
}

/// A record of the answer section of a transfer: class IN, and a type that can be zone data.
fn check_record(r: &Record, n: u64) -> Result<(), XfrError> {
    if r.class != class::IN {
        return Err(XfrError::Malformed(format!(
            "message {n}: {} {} of class {} (only IN is transferred)",
            r.owner,
            rtype::type_name(r.rtype),
            rtype::class_name(r.class)
        )));
    }
    if matches!(
        r.rtype,
        t::OPT | t::TSIG | t::TKEY | t::AXFR | t::IXFR | t::ANY
    ) {
        return Err(XfrError::Malformed(format!(
            "message {n}: {} record in the answer section",
            rtype::type_name(r.rtype)
        )));
    }
    Ok(())
}

/// RFC 5936 §2.2 / RFC 1995 §4: the closing SOA is the opening SOA.
fn check_same_soa(first: &Record, last: &Record) -> Result<(), XfrError> {
    if rdata::canonical(t::SOA, &first.rdata) == rdata::canonical(t::SOA, &last.rdata) {
        return Ok(());
    }
    let s = |r: &Record| soa_field(&r.rdata, 0).unwrap_or(0);
    Err(XfrError::Malformed(format!(
        "the closing SOA (serial {}) differs from the opening SOA (serial {}): the zone changed \
         during the transfer",
        s(last),
        s(first)
    )))
}

/// A TSIG failure as an error. An error answer without any TSIG record (knotd sends REFUSED
/// unsigned for a zone it does not serve) cannot be authenticated, but it carries no data
/// either: it is reported by its RCODE, which tells the operator more.
fn tsig_error(e: &ResponseError, m: &Message, n: u64) -> XfrError {
    let rc = m.rcode();
    if rc != rcode::NOERROR && m.tsig.is_none() {
        return XfrError::Refused { rcode: rc };
    }
    if rc != rcode::NOERROR {
        XfrError::Tsig(format!("{} answer: {e}", rcode::name(rc)))
    } else if n > 1 {
        XfrError::Tsig(format!("message {n}: {e}"))
    } else {
        XfrError::Tsig(e.to_string())
    }
}

/// Checks the answer to a SOA query and returns the serial: ID, QR, opcode, TSIG, RCODE,
/// question, AA, and exactly one SOA at the apex in the answer section.
pub(crate) fn soa_answer(
    msg: &[u8],
    id: u16,
    zone: &Name,
    verifier: Option<ResponseVerifier>,
    now: u64,
) -> Result<u32, XfrError> {
    let parsed = Message::parse(msg)
        .map_err(|e| XfrError::Malformed(format!("SOA answer: {}", e.reason)))?;
    check_envelope(&parsed, id, 1)?;
    if let Some(mut v) = verifier {
        v.verify(msg, &parsed, now)
            .and_then(|()| v.finish())
            .map_err(|e| tsig_error(&e, &parsed, 1))?;
    }
    let rc = parsed.rcode();
    if rc != rcode::NOERROR {
        return Err(XfrError::Refused { rcode: rc });
    }
    check_question(&parsed, zone, t::SOA, false)?;
    if !parsed.header.aa() {
        return Err(XfrError::Malformed(format!(
            "the SOA answer for {zone} is not authoritative (AA clear): the primary does not serve the zone"
        )));
    }
    let soas: Vec<&Record> = parsed
        .answers
        .iter()
        .filter(|r| r.rtype == t::SOA)
        .collect();
    match soas.as_slice() {
        [r] if r.owner == *zone && r.class == class::IN => soa_field(&r.rdata, 0)
            .ok_or_else(|| XfrError::Malformed("SOA RDATA of the wrong length".into())),
        [r] => Err(XfrError::Malformed(format!(
            "the SOA in the answer belongs to {} {}, not {zone} IN",
            r.owner,
            rtype::class_name(r.class)
        ))),
        [] => Err(XfrError::Malformed(format!(
            "the answer holds no SOA for {zone}"
        ))),
        more => Err(XfrError::Malformed(format!(
            "the answer holds {} SOA records",
            more.len()
        ))),
    }
}
