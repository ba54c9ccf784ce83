//! DNS messages (RFC 1035 §4): parsing received messages and writing responses.
//!
//! # Reading
//!
//! [`Message::parse`] reads a whole message: header, questions and the records of the three
//! record sections. RDATA goes through [`rdata::read_wire`], so embedded names are decompressed
//! and every received record is held in the same uncompressed, case-preserving form as zone data.
//! Two pseudo-records are taken out of the additional section:
//!
//! * OPT (RFC 6891 §6.1): at most one, owner the root → [`Message::edns`];
//! * TSIG (RFC 8945 §5.1): at most one, and it must be the last record → [`Message::tsig`], with
//!   the offset where it starts in the message so that the MAC can be checked over the bytes that
//!   precede it.
//!
//! Every length and count is checked against the bytes actually present; nothing here panics on
//! any input (a unit test feeds it many thousands of random buffers). A failure carries the header
//! when one could be read, so that the server can answer FORMERR with the right ID.
//!
//! # Writing
//!
//! [`MessageWriter`] builds a message section by section with name compression (RFC 1035
//! §4.1.4): owner names are always compressed, names inside RDATA only where RFC 3597 §4 allows it
//! ([`rdata::Seg::Name`] with `compress`). The compression table is a hash map keyed by
//! `(lowercase label, offset of the rest of the name)`, so writing a name costs time linear in its
//! length, whatever the message holds (RUSTSEC-2026-0119 was an O(n²) encoder).
//!
//! The writer has a size limit: a record that would not fit is not written ([`WriteError::Full`])
//! and the caller decides: drop additional data, or roll back to a [`Mark`] and set TC. Space can
//! be reserved for an OPT or TSIG record that is added after the limit check.

use super::name::Name;
use super::rdata::{self, Seg};
use super::record::Record;
use super::rtype::{class, t};
use super::wire;
use std::collections::HashMap;

/// Size of the fixed message header.
pub const HEADER_LEN: usize = 12;

/// The largest DNS message (two-octet TCP length prefix, RFC 1035 §4.2.2).
pub const MAX_MESSAGE_LEN: usize = 65535;

/// UDP payload limit without EDNS (RFC 1035 §4.2.1).
pub const UDP_LIMIT_NO_EDNS: usize = 512;

/// Operation codes (RFC 1035 §4.1.1, RFC 1996, RFC 2136).
pub mod opcode {
    pub const QUERY: u8 = 0;
    pub const IQUERY: u8 = 1;
    pub const STATUS: u8 = 2;
    pub const NOTIFY: u8 = 4;
    pub const UPDATE: u8 = 5;
}

/// Response codes (RFC 1035 §4.1.1, RFC 2136, RFC 6891, RFC 8945). Values above 15 need EDNS
/// (BADVERS) or live in the TSIG error field (BADSIG and up).
pub mod rcode {
    pub const NOERROR: u16 = 0;
    pub const FORMERR: u16 = 1;
    pub const SERVFAIL: u16 = 2;
    pub const NXDOMAIN: u16 = 3;
    pub const NOTIMP: u16 = 4;
    pub const REFUSED: u16 = 5;
    pub const YXDOMAIN: u16 = 6;
    pub const YXRRSET: u16 = 7;
    pub const NXRRSET: u16 = 8;
    pub const NOTAUTH: u16 = 9;
    pub const NOTZONE: u16 = 10;
    /// RFC 6891 §9 (extended RCODE, in OPT).
    pub const BADVERS: u16 = 16;
    /// RFC 8945 §5.3.2 (TSIG error field).
    pub const BADSIG: u16 = 16;
    pub const BADKEY: u16 = 17;
    pub const BADTIME: u16 = 18;
    pub const BADTRUNC: u16 = 22;

    /// Mnemonic for logs.
    pub fn name(rcode: u16) -> String {
        match rcode {
            NOERROR => "NOERROR".into(),
            FORMERR => "FORMERR".into(),
            SERVFAIL => "SERVFAIL".into(),
            NXDOMAIN => "NXDOMAIN".into(),
            NOTIMP => "NOTIMP".into(),
            REFUSED => "REFUSED".into(),
            YXDOMAIN => "YXDOMAIN".into(),
            YXRRSET => "YXRRSET".into(),
            NXRRSET => "NXRRSET".into(),
            NOTAUTH => "NOTAUTH".into(),
            NOTZONE => "NOTZONE".into(),
            16 => "BADVERS/BADSIG".into(),
            BADKEY => "BADKEY".into(),
            BADTIME => "BADTIME".into(),
            BADTRUNC => "BADTRUNC".into(),
            other => format!("RCODE{other}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Header

/// The fixed header: ID and the flags word (counts are derived from the sections).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    /// QR(1) Opcode(4) AA TC RD RA Z AD CD RCODE(4), RFC 1035 §4.1.1 and RFC 4035 §3.2.
    pub flags: u16,
}

const QR: u16 = 0x8000;
const AA: u16 = 0x0400;
const TC: u16 = 0x0200;
const RD: u16 = 0x0100;
const RA: u16 = 0x0080;
const AD: u16 = 0x0020;
const CD: u16 = 0x0010;

macro_rules! flag {
    ($get:ident, $set:ident, $bit:expr) => {
        pub fn $get(&self) -> bool {
            self.flags & $bit != 0
        }
        pub fn $set(&mut self, on: bool) {
            if on {
                self.flags |= $bit
            } else {
                self.flags &= !$bit
            }
        }
    };
}

impl Header {
    flag!(qr, set_qr, QR);
    flag!(aa, set_aa, AA);
    flag!(tc, set_tc, TC);
    flag!(rd, set_rd, RD);
    flag!(ra, set_ra, RA);
    flag!(ad, set_ad, AD);
    flag!(cd, set_cd, CD);

    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }

    pub fn set_opcode(&mut self, op: u8) {
        self.flags = (self.flags & !0x7800) | ((u16::from(op) & 0xf) << 11);
    }

    /// The low four bits of the RCODE.
    pub fn rcode(&self) -> u16 {
        self.flags & 0xf
    }

    /// Sets the low four bits of the RCODE (the rest goes into OPT, see [`Edns::ext_rcode`]).
    pub fn set_rcode(&mut self, rcode: u16) {
        self.flags = (self.flags & !0xf) | (rcode & 0xf);
    }

    /// A response header for `request`: same ID, opcode and RD; QR set; everything else clear.
    pub fn response_to(request: &Header) -> Header {
        let mut h = Header {
            id: request.id,
            flags: QR | (request.flags & (0x7800 | RD | CD)),
        };
        h.set_qr(true);
        h
    }

    /// Reads the header of `buf`, if it has 12 octets.
    pub fn peek(buf: &[u8]) -> Option<Header> {
        let b = buf.get(..HEADER_LEN)?;
        Some(Header {
            id: u16::from_be_bytes([b[0], b[1]]),
            flags: u16::from_be_bytes([b[2], b[3]]),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Question, EDNS, TSIG

/// One entry of the question section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub qtype: u16,
    pub qclass: u16,
}

/// The OPT pseudo-record (RFC 6891 §6.1.2–§6.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Edns {
    /// Requestor's UDP payload size (the CLASS field).
    pub udp_size: u16,
    /// Upper eight bits of the 12-bit RCODE.
    pub ext_rcode: u8,
    pub version: u8,
    /// The DO bit (RFC 3225).
    pub dnssec_ok: bool,
    /// The rest of the flags field, kept as received.
    pub z: u16,
    /// Options as (code, data), in message order.
    pub options: Vec<(u16, Vec<u8>)>,
}

impl Edns {
    /// Parses OPT from its CLASS, TTL and RDATA.
    fn from_parts(class: u16, ttl: u32, rdata: &[u8]) -> Result<Edns, String> {
        let mut options = Vec::new();
        let mut p = 0usize;
        while p < rdata.len() {
            let hdr = rdata.get(p..p + 4).ok_or("truncated EDNS option header")?;
            let code = u16::from_be_bytes([hdr[0], hdr[1]]);
            let len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
            let data = rdata
                .get(p + 4..p + 4 + len)
                .ok_or("EDNS option runs past the OPT record")?;
            options.push((code, data.to_vec()));
            p += 4 + len;
        }
        Ok(Edns {
            udp_size: class,
            ext_rcode: (ttl >> 24) as u8,
            version: (ttl >> 16) as u8,
            dnssec_ok: ttl & 0x8000 != 0,
            z: (ttl & 0x7fff) as u16,
            options,
        })
    }

    /// The OPT TTL field.
    pub fn ttl(&self) -> u32 {
        (u32::from(self.ext_rcode) << 24)
            | (u32::from(self.version) << 16)
            | if self.dnssec_ok { 0x8000 } else { 0 }
            | u32::from(self.z & 0x7fff)
    }

    /// The OPT RDATA.
    pub fn rdata(&self) -> Vec<u8> {
        let mut v = Vec::new();
        for (code, data) in &self.options {
            v.extend_from_slice(&code.to_be_bytes());
            v.extend_from_slice(&(data.len() as u16).to_be_bytes());
            v.extend_from_slice(data);
        }
        v
    }

    /// Wire size of the whole OPT record.
    pub fn wire_len(&self) -> usize {
        11 + self.options.iter().map(|(_, d)| 4 + d.len()).sum::<usize>()
    }
}

/// The TSIG pseudo-record's fields (RFC 8945 §4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsigRecord {
    /// The key name (the record's owner).
    pub key_name: Name,
    pub algorithm: Name,
    /// Seconds since the epoch, 48 bits.
    pub time_signed: u64,
    pub fudge: u16,
    pub mac: Vec<u8>,
    pub original_id: u16,
    pub error: u16,
    pub other: Vec<u8>,
}

impl TsigRecord {
    /// Parses TSIG RDATA (the algorithm name is never compressed, RFC 8945 §4.2).
    pub fn from_rdata(key_name: Name, rd: &[u8]) -> Result<TsigRecord, String> {
        let end = wire::name_len(rd, 0).ok_or("bad TSIG algorithm name")?;
        let algorithm = Name::from_wire(&rd[..end])?;
        let mut p = end;
        let mut take = |n: usize| -> Result<&[u8], String> {
            let s = rd.get(p..p + n).ok_or("TSIG RDATA too short")?;
            p += n;
            Ok(s)
        };
        let ts = take(6)?;
        let time_signed = ts.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let f = take(2)?;
        let fudge = u16::from_be_bytes([f[0], f[1]]);
        let m = take(2)?;
        let mac_len = u16::from_be_bytes([m[0], m[1]]) as usize;
        let mac = take(mac_len)?.to_vec();
        let o = take(2)?;
        let original_id = u16::from_be_bytes([o[0], o[1]]);
        let e = take(2)?;
        let error = u16::from_be_bytes([e[0], e[1]]);
        let ol = take(2)?;
        let other_len = u16::from_be_bytes([ol[0], ol[1]]) as usize;
        let other = take(other_len)?.to_vec();
        if p != rd.len() {
            return Err("trailing bytes after TSIG RDATA".into());
        }
        Ok(TsigRecord {
            key_name,
            algorithm,
            time_signed,
            fudge,
            mac,
            original_id,
            error,
            other,
        })
    }

    /// The RDATA in wire form (algorithm name as stored, uncompressed).
    pub fn rdata(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(32 + self.mac.len() + self.other.len());
        v.extend_from_slice(self.algorithm.as_wire());
        v.extend_from_slice(&self.time_signed.to_be_bytes()[2..8]);
        v.extend_from_slice(&self.fudge.to_be_bytes());
        v.extend_from_slice(&(self.mac.len() as u16).to_be_bytes());
        v.extend_from_slice(&self.mac);
        v.extend_from_slice(&self.original_id.to_be_bytes());
        v.extend_from_slice(&self.error.to_be_bytes());
        v.extend_from_slice(&(self.other.len() as u16).to_be_bytes());
        v.extend_from_slice(&self.other);
        v
    }

    /// The whole record in wire form: owner (uncompressed), TYPE TSIG, CLASS ANY, TTL 0, RDATA.
    pub fn to_wire(&self) -> Vec<u8> {
        let rd = self.rdata();
        let mut v = Vec::with_capacity(self.key_name.wire_len() + 10 + rd.len());
        v.extend_from_slice(self.key_name.as_wire());
        v.extend_from_slice(&t::TSIG.to_be_bytes());
        v.extend_from_slice(&class::ANY.to_be_bytes());
        v.extend_from_slice(&0u32.to_be_bytes());
        v.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        v.extend_from_slice(&rd);
        v
    }
}

/// A TSIG record found in a received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsigFound {
    pub record: TsigRecord,
    /// Offset of the TSIG record's first octet: the MAC covers `msg[..offset]`.
    pub offset: usize,
}

// ---------------------------------------------------------------------------------------------
// Message

/// A parsed DNS message.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Message {
    pub header: Header,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    /// The additional section without OPT and TSIG.
    pub additional: Vec<Record>,
    pub edns: Option<Edns>,
    pub tsig: Option<TsigFound>,
}

/// Why a message could not be parsed (the caller answers FORMERR, RFC 1035 §4.1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub reason: String,
    /// The header, when the first 12 octets were there.
    pub header: Option<Header>,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed DNS message: {}", self.reason)
    }
}

impl std::error::Error for ParseError {}

impl Message {
    /// Parses a complete message. See the module documentation for the rules.
    pub fn parse(buf: &[u8]) -> Result<Message, ParseError> {
        let header = Header::peek(buf);
        let fail = |reason: String| ParseError { reason, header };
        let Some(header) = header else {
            return Err(fail("shorter than the 12-octet header".into()));
        };
        if buf.len() > MAX_MESSAGE_LEN {
            return Err(fail("longer than 65535 octets".into()));
        }
        let count = |i: usize| u16::from_be_bytes([buf[4 + 2 * i], buf[5 + 2 * i]]) as usize;
        let (qd, an, ns, ar) = (count(0), count(1), count(2), count(3));
        // A question takes at least 5 octets, a record at least 11: counts that cannot fit are
        // refused before anything is allocated.
        let room = buf.len() - HEADER_LEN;
        if qd * 5 + (an + ns + ar) * 11 > room {
            return Err(fail(format!(
                "counts (QD {qd}, AN {an}, NS {ns}, AR {ar}) exceed the {room} octets present"
            )));
        }
        let mut msg = Message {
            header,
            questions: Vec::with_capacity(qd),
            answers: Vec::with_capacity(an),
            authority: Vec::with_capacity(ns),
            additional: Vec::with_capacity(ar),
            edns: None,
            tsig: None,
        };
        let mut pos = HEADER_LEN;
        for _ in 0..qd {
            let (name, next) =
                wire::read_name(buf, pos).map_err(|e| fail(format!("question: {e}")))?;
            let f = buf
                .get(next..next + 4)
                .ok_or_else(|| fail("question runs past the message".into()))?;
            msg.questions.push(Question {
                name,
                qtype: u16::from_be_bytes([f[0], f[1]]),
                qclass: u16::from_be_bytes([f[2], f[3]]),
            });
            pos = next + 4;
        }
        for (section, n) in [(1, an), (2, ns), (3, ar)] {
            for i in 0..n {
                let start = pos;
                let (rec, next) = read_record(buf, pos).map_err(fail)?;
                pos = next;
                match (section, rec.rtype) {
                    (3, t::OPT) => {
                        if msg.edns.is_some() {
                            return Err(fail("more than one OPT record (RFC 6891 §6.1.1)".into()));
                        }
                        if !rec.owner.is_root() {
                            return Err(fail("OPT owner is not the root (RFC 6891 §6.1.2)".into()));
                        }
                        msg.edns =
                            Some(Edns::from_parts(rec.class, rec.ttl, &rec.rdata).map_err(fail)?);
                    }
                    (3, t::TSIG) => {
                        if i + 1 != n {
                            return Err(fail("TSIG is not the last record (RFC 8945 §5.1)".into()));
                        }
                        let record = TsigRecord::from_rdata(rec.owner, &rec.rdata)
                            .map_err(|e| fail(format!("TSIG: {e}")))?;
                        msg.tsig = Some(TsigFound {
                            record,
                            offset: start,
                        });
                    }
                    (_, t::OPT) | (_, t::TSIG) => {
                        return Err(fail(format!(
                            "{} outside the additional section",
                            if rec.rtype == t::OPT { "OPT" } else { "TSIG" }
                        )));
                    }
                    (1, _) => msg.answers.push(rec),
                    (2, _) => msg.authority.push(rec),
                    _ => msg.additional.push(rec),
                }
            }
        }
        if pos != buf.len() {
            return Err(fail(format!("{} trailing octets", buf.len() - pos)));
        }
        Ok(msg)
    }

    /// The full 12-bit RCODE (header plus the OPT extension).
    pub fn rcode(&self) -> u16 {
        let ext = self
            .edns
            .as_ref()
            .map(|e| u16::from(e.ext_rcode))
            .unwrap_or(0);
        (ext << 4) | self.header.rcode()
    }

    /// The single question, if there is exactly one.
    pub fn question(&self) -> Option<&Question> {
        match self.questions.as_slice() {
            [q] => Some(q),
            _ => None,
        }
    }
}

/// Reads one resource record at `pos`; returns it and the position after it.
fn read_record(buf: &[u8], pos: usize) -> Result<(Record, usize), String> {
    let (owner, next) = wire::read_name(buf, pos).map_err(|e| format!("record owner: {e}"))?;
    let f = buf
        .get(next..next + 10)
        .ok_or("record header runs past the message")?;
    let rtype = u16::from_be_bytes([f[0], f[1]]);
    let rclass = u16::from_be_bytes([f[2], f[3]]);
    let ttl = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
    let rdlen = u16::from_be_bytes([f[8], f[9]]) as usize;
    let start = next + 10;
    if start + rdlen > buf.len() {
        return Err(format!(
            "{owner} {}: RDATA of {rdlen} octets runs past the message",
            super::rtype::type_name(rtype)
        ));
    }
    let rdata = if rdlen == 0 && matches!(rclass, class::ANY | class::NONE) {
        // RFC 2136 §2.5: UPDATE deletions and prerequisites carry empty RDATA.
        Vec::new()
    } else {
        match rtype {
            // no layout checks for pseudo-records; parsed by their own code
            t::OPT | t::TSIG => buf[start..start + rdlen].to_vec(),
            _ => rdata::read_wire(rtype, buf, start, rdlen)
                .map_err(|e| format!("{owner} {}: {e}", super::rtype::type_name(rtype)))?,
        }
    };
    Ok((
        Record {
            owner,
            rtype,
            class: rclass,
            ttl,
            rdata,
        },
        start + rdlen,
    ))
}

// ---------------------------------------------------------------------------------------------
// Writer

/// A message section that holds records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Answer = 1,
    Authority = 2,
    Additional = 3,
}

/// Why a write did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// The record does not fit under the size limit; nothing was written.
    Full,
    /// Sections must be written in order: question, answer, authority, additional.
    OutOfOrder,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Full => write!(f, "message size limit reached"),
            WriteError::OutOfOrder => write!(f, "message sections written out of order"),
        }
    }
}

impl std::error::Error for WriteError {}

/// A point to roll a [`MessageWriter`] back to.
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    len: usize,
    counts: [u16; 4],
    section: u8,
    log: usize,
}

/// Compression-table key: (lowercase label, offset of the rest of the name or [`ROOT`]).
type CompKey = (Box<[u8]>, u16);

/// "The rest of the name is the root": never a real offset (offsets are below 0x4000).
const ROOT: u16 = 0xffff;

/// Builds a message with name compression and a size limit. See the module documentation.
pub struct MessageWriter {
    buf: Vec<u8>,
    limit: usize,
    reserved: usize,
    section: u8,
    counts: [u16; 4],
    comp: HashMap<CompKey, u16>,
    /// Keys inserted into `comp`, in order, so a rollback can remove them.
    log: Vec<CompKey>,
}

impl MessageWriter {
    /// A writer for a message with `header` that may grow to `limit` octets (at most 65535).
    pub fn new(header: Header, limit: usize) -> MessageWriter {
        let mut buf = Vec::with_capacity(limit.clamp(HEADER_LEN, 4096));
        buf.extend_from_slice(&header.id.to_be_bytes());
        buf.extend_from_slice(&header.flags.to_be_bytes());
        buf.extend_from_slice(&[0; 8]);
        MessageWriter {
            buf,
            limit: limit.min(MAX_MESSAGE_LEN),
            reserved: 0,
            section: 0,
            counts: [0; 4],
            comp: HashMap::new(),
            log: Vec::new(),
        }
    }

    /// Keeps `n` more octets free below the limit, for records added later without a check
    /// (OPT, TSIG).
    pub fn reserve(&mut self, n: usize) {
        self.reserved += n;
    }

    /// Gives back reserved space (before writing what it was reserved for).
    pub fn unreserve(&mut self, n: usize) {
        self.reserved = self.reserved.saturating_sub(n);
    }

    /// The header as it stands.
    pub fn header(&self) -> Header {
        Header {
            id: u16::from_be_bytes([self.buf[0], self.buf[1]]),
            flags: u16::from_be_bytes([self.buf[2], self.buf[3]]),
        }
    }

    /// Replaces the header's ID and flags.
    pub fn set_header(&mut self, h: Header) {
        self.buf[0..2].copy_from_slice(&h.id.to_be_bytes());
        self.buf[2..4].copy_from_slice(&h.flags.to_be_bytes());
    }

    /// Current size in octets.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when only the header has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.len() == HEADER_LEN
    }

    /// Records written to `section` so far.
    pub fn count(&self, section: Section) -> u16 {
        self.counts[section as usize]
    }

    /// Room left before the limit (reserved space excluded).
    pub fn remaining(&self) -> usize {
        self.limit.saturating_sub(self.reserved + self.buf.len())
    }

    pub fn mark(&self) -> Mark {
        Mark {
            len: self.buf.len(),
            counts: self.counts,
            section: self.section,
            log: self.log.len(),
        }
    }

    /// Forgets everything written after `m`.
    pub fn rollback(&mut self, m: Mark) {
        self.buf.truncate(m.len);
        self.counts = m.counts;
        self.section = m.section;
        for key in self.log.drain(m.log..) {
            self.comp.remove(&key);
        }
    }

    fn fits(&self) -> bool {
        self.buf.len() + self.reserved <= self.limit
    }

    /// Adds a question.
    pub fn question(&mut self, name: &Name, qtype: u16, qclass: u16) -> Result<(), WriteError> {
        if self.section > 0 {
            return Err(WriteError::OutOfOrder);
        }
        let m = self.mark();
        self.name(name.as_wire(), true);
        self.buf.extend_from_slice(&qtype.to_be_bytes());
        self.buf.extend_from_slice(&qclass.to_be_bytes());
        if !self.fits() {
            self.rollback(m);
            return Err(WriteError::Full);
        }
        self.counts[0] += 1;
        Ok(())
    }

    /// Adds a record to `section`, compressing the owner and the compressible RDATA names.
    pub fn record(
        &mut self,
        section: Section,
        owner: &Name,
        rtype: u16,
        rclass: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> Result<(), WriteError> {
        let s = section as u8;
        if s < self.section {
            return Err(WriteError::OutOfOrder);
        }
        if self.counts[s as usize] == u16::MAX {
            return Err(WriteError::Full);
        }
        let m = self.mark();
        self.section = s;
        self.name(owner.as_wire(), true);
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&rclass.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.rdata(rtype, rdata);
        let rdlen = self.buf.len() - len_at - 2;
        if rdlen > usize::from(u16::MAX) || !self.fits() {
            self.rollback(m);
            return Err(WriteError::Full);
        }
        self.buf[len_at..len_at + 2].copy_from_slice(&(rdlen as u16).to_be_bytes());
        self.counts[s as usize] += 1;
        Ok(())
    }

    /// Adds a [`Record`].
    pub fn add(&mut self, section: Section, r: &Record) -> Result<(), WriteError> {
        self.record(section, &r.owner, r.rtype, r.class, r.ttl, &r.rdata)
    }

    /// Adds the OPT record. It ignores the limit: reserve its size ([`Edns::wire_len`]) first.
    pub fn opt(&mut self, edns: &Edns) {
        self.section = Section::Additional as u8;
        self.buf.push(0);
        self.buf.extend_from_slice(&t::OPT.to_be_bytes());
        self.buf.extend_from_slice(&edns.udp_size.to_be_bytes());
        self.buf.extend_from_slice(&edns.ttl().to_be_bytes());
        let rd = edns.rdata();
        self.buf.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(&rd);
        self.counts[3] = self.counts[3].saturating_add(1);
    }

    /// The finished message.
    pub fn finish(mut self) -> Vec<u8> {
        for (i, c) in self.counts.iter().enumerate() {
            self.buf[4 + 2 * i..6 + 2 * i].copy_from_slice(&c.to_be_bytes());
        }
        self.buf
    }

    fn rdata(&mut self, rtype: u16, rdata: &[u8]) {
        let mut segs: Vec<(bool, &[u8], bool)> = Vec::with_capacity(4);
        let ok = rdata::walk(rtype, rdata, &mut |seg| match seg {
            Seg::Bytes(b) => segs.push((false, b, false)),
            Seg::Name { wire, compress, .. } => segs.push((true, wire, compress)),
        });
        if ok.is_err() {
            // data we cannot lay out is written as is, never compressed
            self.buf.extend_from_slice(rdata);
            return;
        }
        for (is_name, bytes, compress) in segs {
            if is_name {
                self.name(bytes, compress);
            } else {
                self.buf.extend_from_slice(bytes);
            }
        }
    }

    /// Writes a wire name, using a pointer for the longest suffix already in the message when
    /// `compress`; registers the new suffixes either way.
    fn name(&mut self, wire: &[u8], compress: bool) {
        let mut offs = [0usize; 128];
        let mut n = 0;
        let mut p = 0;
        while p < wire.len() && wire[p] != 0 && n < 128 {
            offs[n] = p;
            n += 1;
            p += 1 + wire[p] as usize;
        }
        let label = |i: usize| -> &[u8] {
            let s = offs[i];
            let l = wire[s] as usize;
            wire.get(s + 1..s + 1 + l).unwrap_or(&[])
        };
        // longest known suffix
        let mut k = n;
        let mut parent = ROOT;
        if compress {
            while k > 0 {
                let key: CompKey = (label(k - 1).to_ascii_lowercase().into(), parent);
                match self.comp.get(&key) {
                    Some(&off) => {
                        parent = off;
                        k -= 1;
                    }
                    None => break,
                }
            }
        }
        let mut pos = [0usize; 128];
        for (i, slot) in pos.iter_mut().enumerate().take(k) {
            *slot = self.buf.len();
            let l = label(i);
            self.buf.push(l.len() as u8);
            self.buf.extend_from_slice(l);
        }
        if k == n {
            self.buf.push(0);
        } else {
            self.buf
                .extend_from_slice(&(0xc000 | (parent & 0x3fff)).to_be_bytes());
        }
        // register right to left: each new label's rest is the next label (or the matched part)
        let mut rest = parent;
        for i in (0..k).rev() {
            if pos[i] >= 0x4000 {
                // not addressable by a pointer; labels further left are further out too
                break;
            }
            let key: CompKey = (label(i).to_ascii_lowercase().into(), rest);
            let off = pos[i] as u16;
            if let std::collections::hash_map::Entry::Vacant(e) = self.comp.entry(key.clone()) {
                e.insert(off);
                self.log.push(key);
            }
            rest = off;
        }
    }
}

/// A query message (for NOTIFY out, tests and the future transfer client): one question, RD
/// clear, optional EDNS.
pub fn build_query(id: u16, opcode: u8, name: &Name, qtype: u16, edns: Option<&Edns>) -> Vec<u8> {
    let mut h = Header { id, flags: 0 };
    h.set_opcode(opcode);
    let mut w = MessageWriter::new(h, MAX_MESSAGE_LEN);
    // cannot fail: a name is at most 255 octets
    let _ = w.question(name, qtype, class::IN);
    if let Some(e) = edns {
        w.opt(e);
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::parse(s, None).unwrap()
    }

    fn sample() -> Vec<u8> {
        let mut h = Header {
            id: 0x1234,
            flags: 0,
        };
        h.set_qr(true);
        h.set_aa(true);
        let mut w = MessageWriter::new(h, MAX_MESSAGE_LEN);
        w.question(&n("www.Example.com."), t::A, class::IN).unwrap();
        w.record(
            Section::Answer,
            &n("www.example.com."),
            t::CNAME,
            class::IN,
            300,
            n("web.example.COM.").as_wire(),
        )
        .unwrap();
        w.record(
            Section::Answer,
            &n("web.example.com."),
            t::A,
            class::IN,
            300,
            &[192, 0, 2, 1],
        )
        .unwrap();
        let mut soa = n("ns1.example.com.").as_wire().to_vec();
        soa.extend_from_slice(n("hostmaster.example.com.").as_wire());
        soa.extend_from_slice(&[0; 20]);
        w.record(
            Section::Authority,
            &n("example.com."),
            t::SOA,
            class::IN,
            300,
            &soa,
        )
        .unwrap();
        // NSEC next name must not be compressed (RFC 3597 §4, RFC 4034 §4.1.1)
        let mut nsec = n("zz.example.com.").as_wire().to_vec();
        nsec.extend_from_slice(&[0, 1, 0x40]);
        w.record(
            Section::Authority,
            &n("example.com."),
            t::NSEC,
            class::IN,
            300,
            &nsec,
        )
        .unwrap();
        w.reserve(11);
        w.unreserve(11);
        w.opt(&Edns {
            udp_size: 1232,
            dnssec_ok: true,
            ..Default::default()
        });
        w.finish()
    }

    #[test]
    fn round_trip_with_compression() {
        let buf = sample();
        let m = Message::parse(&buf).unwrap();
        assert_eq!(m.header.id, 0x1234);
        assert!(m.header.qr() && m.header.aa());
        assert_eq!(m.questions[0].name.to_string(), "www.Example.com.");
        assert_eq!(m.answers.len(), 2);
        assert_eq!(
            m.answers[0].owner.to_string(),
            "www.Example.com.",
            "case of the first occurrence"
        );
        // compression is case-insensitive (RFC 4343 §4.1): the pointer may carry other case
        assert!(m.answers[0]
            .rdata
            .eq_ignore_ascii_case(n("web.example.COM.").as_wire()));
        assert_eq!(m.authority.len(), 2);
        assert_eq!(
            m.authority[1].rdata[..n("zz.example.com.").wire_len()],
            *n("zz.example.com.").as_wire()
        );
        let e = m.edns.unwrap();
        assert!(e.dnssec_ok);
        assert_eq!(e.udp_size, 1232);
        // "example.com" appears in full in the question and inside the NSEC next name (never
        // compressed); every other occurrence is a pointer
        let full = b"\x07example\x03com\x00";
        let count = buf
            .windows(full.len())
            .filter(|w| w.eq_ignore_ascii_case(full))
            .count();
        assert_eq!(count, 2, "{buf:?}");
        // the NSEC next name is written in full, not as a pointer
        assert!(buf.windows(3).any(|w| w == b"\x02zz"));
        let zz_at = buf.windows(3).position(|w| w == b"\x02zz").unwrap();
        assert_eq!(&buf[zz_at + 3..zz_at + 3 + full.len()], full);
    }

    #[test]
    fn size_limit_and_rollback() {
        let mut w = MessageWriter::new(Header::default(), 100);
        w.question(&n("a.example."), t::TXT, class::IN).unwrap();
        let m = w.mark();
        let mut ok = 0;
        loop {
            match w.record(
                Section::Answer,
                &n("a.example."),
                t::TXT,
                class::IN,
                1,
                b"\x0501234",
            ) {
                Ok(()) => ok += 1,
                Err(e) => {
                    assert_eq!(e, WriteError::Full);
                    break;
                }
            }
        }
        assert!(w.len() <= 100);
        assert!(ok > 3);
        w.rollback(m);
        assert_eq!(w.count(Section::Answer), 0);
        // after rollback the compression table must not point into discarded bytes
        w.record(
            Section::Answer,
            &n("b.a.example."),
            t::A,
            class::IN,
            1,
            &[1, 2, 3, 4],
        )
        .unwrap();
        let buf = w.finish();
        let msg = Message::parse(&buf).unwrap();
        assert_eq!(msg.answers[0].owner.to_string(), "b.a.example.");
        // out of order
        let mut w = MessageWriter::new(Header::default(), 512);
        w.record(
            Section::Authority,
            &n("x."),
            t::A,
            class::IN,
            1,
            &[1, 2, 3, 4],
        )
        .unwrap();
        assert_eq!(
            w.record(Section::Answer, &n("x."), t::A, class::IN, 1, &[1, 2, 3, 4]),
            Err(WriteError::OutOfOrder)
        );
    }

    #[test]
    fn compression_is_linear_for_many_names() {
        // 10k distinct owners under one zone: must be fast and every name must round-trip
        let mut w = MessageWriter::new(Header::default(), MAX_MESSAGE_LEN);
        let start = std::time::Instant::now();
        let mut written = 0;
        for i in 0..10_000 {
            let owner = n(&format!("h{i}.sub.example.com."));
            if w.record(Section::Answer, &owner, t::A, class::IN, 1, &[1, 2, 3, 4])
                .is_err()
            {
                break;
            }
            written += 1;
        }
        let buf = w.finish();
        assert!(start.elapsed().as_secs() < 2);
        let m = Message::parse(&buf).unwrap();
        assert_eq!(m.answers.len(), written);
        assert_eq!(
            m.answers[written - 1].owner,
            n(&format!("h{}.sub.example.com.", written - 1))
        );
    }

    #[test]
    fn rejects_bad_messages() {
        let good = sample();
        // truncated anywhere: error, never panic
        for cut in 0..good.len() {
            assert!(Message::parse(&good[..cut]).is_err(), "cut at {cut}");
        }
        // counts larger than the data
        let mut b = good.clone();
        b[6] = 0xff;
        let e = Message::parse(&b).unwrap_err();
        assert_eq!(e.header.unwrap().id, 0x1234);
        // trailing garbage
        let mut b = good.clone();
        b.push(0);
        assert!(Message::parse(&b).is_err());
        // compression loop in the question
        let mut q = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert!(Message::parse(&q).is_err());
        // two OPT records
        let mut w = MessageWriter::new(Header::default(), 512);
        w.opt(&Edns::default());
        w.opt(&Edns::default());
        assert!(Message::parse(&w.finish()).is_err());
        // TSIG not last
        let tsig = TsigRecord {
            key_name: n("k."),
            algorithm: n("hmac-sha256."),
            time_signed: 1,
            fudge: 300,
            mac: vec![1; 32],
            original_id: 0,
            error: 0,
            other: vec![],
        };
        let mut w = MessageWriter::new(Header::default(), 512);
        w.record(
            Section::Additional,
            &n("k."),
            t::TSIG,
            class::ANY,
            0,
            &tsig.rdata(),
        )
        .unwrap();
        w.record(
            Section::Additional,
            &n("k."),
            t::A,
            class::IN,
            0,
            &[1, 2, 3, 4],
        )
        .unwrap();
        assert!(Message::parse(&w.finish()).is_err());
        let mut w = MessageWriter::new(Header::default(), 512);
        w.record(
            Section::Additional,
            &n("k."),
            t::TSIG,
            class::ANY,
            0,
            &tsig.rdata(),
        )
        .unwrap();
        let buf = w.finish();
        let m = Message::parse(&buf).unwrap();
        assert_eq!(m.tsig.as_ref().unwrap().record, tsig);
        assert_eq!(m.tsig.unwrap().offset, HEADER_LEN);
        // bad A RDATA length
        let mut w = MessageWriter::new(Header::default(), 512);
        w.record(Section::Answer, &n("k."), t::A, class::IN, 0, &[1, 2, 3])
            .unwrap();
        assert!(Message::parse(&w.finish()).is_err());
    }

    #[test]
    fn header_flags() {
        let mut h = Header::default();
        h.set_opcode(opcode::NOTIFY);
        h.set_rd(true);
        h.set_rcode(rcode::REFUSED);
        assert_eq!(h.opcode(), 4);
        assert_eq!(h.rcode(), 5);
        let r = Header::response_to(&h);
        assert!(r.qr() && r.rd() && !r.aa());
        assert_eq!(r.opcode(), 4);
        assert_eq!(r.rcode(), 0);
    }

    /// Deterministic xorshift64* so the property test is reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let good = sample();
        for i in 0..60_000 {
            let len = (rng.next() % 300) as usize;
            let mut buf: Vec<u8> = if i % 2 == 0 {
                (0..len).map(|_| rng.next() as u8).collect()
            } else {
                // mutate a valid message: more interesting paths
                let mut b = good.clone();
                for _ in 0..1 + rng.next() % 4 {
                    let at = (rng.next() as usize) % b.len();
                    b[at] = rng.next() as u8;
                }
                b
            };
            if i % 3 == 0 && buf.len() >= 12 {
                // small counts so the parser gets past the header check
                for (c, byte) in buf.iter_mut().enumerate().take(12).skip(4) {
                    *byte = if c % 2 == 1 {
                        (rng.next() % 4) as u8
                    } else {
                        0
                    };
                }
            }
            if let Ok(m) = Message::parse(&buf) {
                // whatever parses must be writable again
                let mut w = MessageWriter::new(m.header, MAX_MESSAGE_LEN);
                for q in &m.questions {
                    let _ = w.question(&q.name, q.qtype, q.qclass);
                }
                for r in &m.answers {
                    let _ = w.add(Section::Answer, r);
                }
                let _ = w.finish();
            }
        }
    }
}
