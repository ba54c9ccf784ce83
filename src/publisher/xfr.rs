//! Zone transfers out: AXFR (RFC 5936) and IXFR (RFC 1995) to the secondaries.
//!
//! ```text
//!  AXFR/IXFR request ─▶ zone served? ─no─▶ REFUSED
//!                     ─▶ allow-transfer ACL (address or verified TSIG key) ─no─▶ REFUSED (warning)
//!                     ─▶ UDP? AXFR: FORMERR ("attempted AXFR over UDP", as BIND)
//!                             IXFR: the current SOA only (RFC 1995 §2: retry over TCP; BIND 9
//!                                   does the same whatever the client's serial)
//!                     ─▶ IXFR with the client's serial ≥ ours: the current SOA only (up to date)
//!                     ─▶ IXFR with a serial the served history covers: incremental
//!                        SOA(ours) [SOA(old) removed… SOA(new) added…]… SOA(ours),
//!                        one condensed difference sequence when the chain composes
//!                     ─▶ otherwise (AXFR, or IXFR not covered): SOA, every record, SOA
//!  every answer is cut into messages of at most XFR_MESSAGE_SIZE octets, each one TSIG-signed
//!  when the request was
//! ```
//!
//! An incremental answer condenses the journaled chain from the client's serial into one
//! difference sequence ([`crate::journal::condense`], off the async runtime): records added
//! and removed again on the way never reach the secondary. If that answer would carry more
//! records than the zone ([`IXFR_MAX_RATIO_PERCENT`], BIND's `max-ixfr-ratio`), the whole zone is
//! sent instead (AXFR-style, RFC 1995 §4), as it is when the history does not cover the client's
//! serial (compacted, reset, or never ours).
//!
//! Records are packed into messages as they are read from the `Arc<Served>` the transfer
//! started with (and the `Arc`ed changesets of its history), so memory stays at one message
//! however large the zone, and a publish during the transfer does not change what this client
//! receives.

use super::{Publisher, Reply, Request, Served, Transport};
use crate::auth::allowed;
use crate::auth::tsig::ResponseSigner;
use crate::dns::message::{rcode, Edns, Header, MessageWriter, Question, Section, MAX_MESSAGE_LEN};
use crate::dns::name::Name;
use crate::dns::rtype::{class, t};
use crate::journal::{condense, Changeset};
use crate::zone::data::soa_field;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Target size of one transfer message. Well below the 65535 limit so that a TSIG record and
/// OPT always fit, and small enough that a slow secondary holds little memory per connection.
pub const XFR_MESSAGE_SIZE: usize = 16 * 1024;

/// A client must accept each message within this time: a secondary that stops reading (or an
/// attacker that opens transfers and never reads) would otherwise hold a connection slot and the
/// zone version forever.
pub const XFR_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// An incremental IXFR answer may carry at most this percentage of the zone's record count;
/// beyond, the whole zone is sent (AXFR-style): it is smaller, and a secondary loads it in one
/// step. 100 % is BIND's `max-ixfr-ratio` default.
pub const IXFR_MAX_RATIO_PERCENT: usize = 100;

/// What a transfer sends.
enum Plan {
    /// The whole zone (AXFR, or IXFR answered AXFR-style).
    Full,
    /// The changesets from the client's serial to the served one.
    Incremental { chain: Box<[Arc<Changeset>]> },
}

/// A transfer to run over a TCP connection ([`send`]).
pub struct Transfer {
    served: Arc<Served>,
    plan: Plan,
    id: u16,
    question: Question,
    signer: Option<Box<ResponseSigner>>,
    edns: Option<Edns>,
    client: SocketAddr,
    key: Option<Name>,
}

/// What a finished transfer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub records: usize,
    pub messages: usize,
    pub bytes: usize,
}

/// RFC 1982: `a` is at or after `b`.
fn serial_ge(a: u32, b: u32) -> bool {
    a == b || (a.wrapping_sub(b) as i32) > 0
}

/// Decides on an AXFR/IXFR request (see the module documentation).
pub fn request(p: &Publisher, ctx: &Request<'_>, q: &Question) -> Reply {
    let kind = if q.qtype == t::AXFR { "AXFR" } else { "IXFR" };
    let key = ctx.verified.as_ref().map(|v| v.key.name.clone());
    let key_text = key
        .as_ref()
        .map(|k| k.to_string())
        .unwrap_or_else(|| "none".into());
    let Some(served) = p.get(&q.name) else {
        tracing::warn!(zone = %q.name, client = %ctx.src, key = %key_text, "{kind} refused: zone not served");
        return Reply::One(ctx.simple(rcode::REFUSED, false));
    };
    if !allowed(&served.allow_transfer, ctx.src.ip(), key.as_ref()) {
        tracing::warn!(zone = %q.name, client = %ctx.src, key = %key_text, "{kind} refused by allow-transfer");
        return Reply::One(ctx.simple(rcode::REFUSED, false));
    }
    let Some(soa) = soa_answer(&served) else {
        return Reply::One(ctx.simple(rcode::SERVFAIL, false));
    };
    if ctx.transport == Transport::Udp {
        if q.qtype == t::AXFR {
            tracing::warn!(zone = %q.name, client = %ctx.src, "attempted AXFR over UDP: FORMERR");
            return Reply::One(ctx.simple(rcode::FORMERR, false));
        }
        return Reply::One(ctx.encode(&soa));
    }
    let mut plan = Plan::Full;
    if q.qtype == t::IXFR {
        let client_serial = ctx
            .msg
            .authority
            .iter()
            .find(|r| r.rtype == t::SOA)
            .and_then(|r| soa_field(&r.rdata, 0));
        if let (Some(theirs), Some(ours)) = (client_serial, served.serial()) {
            if serial_ge(theirs, ours) {
                tracing::info!(zone = %q.name, client = %ctx.src, serial = ours, "IXFR: client is up to date");
                return Reply::One(ctx.encode(&soa));
            }
            if let Some(chain) = served.history.as_ref().and_then(|h| h.chain(theirs, ours)) {
                plan = Plan::Incremental {
                    chain: chain.into(),
                };
            } else {
                tracing::info!(zone = %q.name, client = %ctx.src, from = theirs, serial = ours,
                    oldest = ?served.history.as_ref().and_then(|h| h.oldest_serial()),
                    "IXFR: the client's serial is not in the history: AXFR-style answer");
            }
        }
    }
    Reply::Transfer(Transfer {
        served,
        plan,
        id: ctx.msg.header.id,
        question: q.clone(),
        signer: ctx
            .verified
            .as_ref()
            .map(|v| Box::new(ResponseSigner::new(v))),
        edns: ctx.edns_out.clone(),
        client: ctx.src,
        key,
    })
}

/// An answer holding only the zone's SOA.
fn soa_answer(served: &Served) -> Option<super::answer::Answer<'_>> {
    let (origin, apex) = served.zone.nodes.get_key_value(&served.zone.origin)?;
    let set = apex.get(t::SOA)?;
    let rd = set.rdatas.first()?;
    Some(super::answer::Answer {
        rcode: rcode::NOERROR,
        aa: true,
        answer: vec![vec![super::answer::Rr {
            owner: Cow::Borrowed(origin),
            rtype: t::SOA,
            ttl: set.ttl,
            rdata: Cow::Borrowed(rd.as_slice()),
        }]],
        ..Default::default()
    })
}

/// Packs records into messages and writes them.
struct Packer<'w, W> {
    out: &'w mut W,
    tr: Transfer,
    writer: Option<MessageWriter>,
    first: bool,
    stats: Stats,
    clock: Arc<dyn crate::clock::Clock>,
}

impl<W: AsyncWrite + Unpin> Packer<'_, W> {
    fn new_writer(&self, limit: usize) -> MessageWriter {
        let mut h = Header {
            id: self.tr.id,
            flags: 0,
        };
        h.set_qr(true);
        h.set_aa(true);
        let mut w = MessageWriter::new(h, limit);
        w.reserve(self.overhead());
        if self.first {
            let q = &self.tr.question;
            let _ = w.question(&q.name, q.qtype, q.qclass);
        }
        w
    }

    fn overhead(&self) -> usize {
        self.tr.edns.as_ref().map(|e| e.wire_len()).unwrap_or(0)
            + self.tr.signer.as_ref().map(|s| s.overhead()).unwrap_or(0)
    }

    async fn emit(
        &mut self,
        owner: &Name,
        rtype: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> std::io::Result<()> {
        for attempt in 0..3 {
            let mut w = match self.writer.take() {
                Some(w) => w,
                None => self.new_writer(if attempt < 2 {
                    XFR_MESSAGE_SIZE
                } else {
                    MAX_MESSAGE_LEN
                }),
            };
            if w.record(Section::Answer, owner, rtype, class::IN, ttl, rdata)
                .is_ok()
            {
                self.writer = Some(w);
                self.stats.records += 1;
                return Ok(());
            }
            if w.count(Section::Answer) > 0 {
                self.flush(w).await?;
            }
            // else: too big for an empty message of this size: retry with the maximum size
        }
        Err(std::io::Error::other(format!(
            "record {owner} {} does not fit in a DNS message",
            crate::dns::rtype::type_name(rtype)
        )))
    }

    async fn flush(&mut self, mut w: MessageWriter) -> std::io::Result<()> {
        let ov = self.overhead();
        w.unreserve(ov);
        if let Some(e) = &self.tr.edns {
            w.opt(e);
        }
        let mut msg = w.finish();
        if let Some(s) = self.tr.signer.as_mut() {
            s.sign(&mut msg, self.clock.now());
        }
        self.first = false;
        let mut frame = Vec::with_capacity(msg.len() + 2);
        frame.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        frame.extend_from_slice(&msg);
        match tokio::time::timeout(XFR_WRITE_TIMEOUT, self.out.write_all(&frame)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the client did not read a transfer message in time",
                ))
            }
        }
        self.stats.messages += 1;
        self.stats.bytes += frame.len();
        Ok(())
    }
}

/// Writes the transfer to `out` (2-octet framed TCP messages). Logs one line when done:
/// `AXFR out`, or `IXFR out` with `style` = `incremental` (and the serial it started from) or
/// `axfr-style`.
pub async fn send<W: AsyncWrite + Unpin>(
    out: &mut W,
    mut tr: Transfer,
    clock: Arc<dyn crate::clock::Clock>,
) -> std::io::Result<Stats> {
    let started = Instant::now();
    let served = tr.served.clone();
    let plan = std::mem::replace(&mut tr.plan, Plan::Full);
    let is_axfr = tr.question.qtype == t::AXFR;
    let client = tr.client;
    let key = tr
        .key
        .as_ref()
        .map(|k| k.to_string())
        .unwrap_or_else(|| "none".into());
    let diffs = match plan {
        Plan::Full => None,
        Plan::Incremental { chain } => incremental(&served, chain.into_vec(), client).await,
    };
    let style = match (&diffs, is_axfr) {
        (_, true) => "full",
        (Some(_), false) => "incremental",
        (None, false) => "axfr-style",
    };
    let from_serial = diffs.as_ref().and_then(|d| d.first()).map(|c| c.from);
    let mut p = Packer {
        out,
        tr,
        writer: None,
        first: true,
        stats: Stats {
            records: 0,
            messages: 0,
            bytes: 0,
        },
        clock,
    };
    let result = async {
        let zone = &served.zone;
        let (origin, apex) = zone
            .nodes
            .get_key_value(&zone.origin)
            .ok_or_else(|| std::io::Error::other("zone has no apex"))?;
        let soa = apex
            .get(t::SOA)
            .and_then(|s| Some((s.ttl, s.rdatas.first()?)))
            .ok_or_else(|| std::io::Error::other("zone has no SOA"))?;
        p.emit(origin, t::SOA, soa.0, soa.1).await?;
        match &diffs {
            Some(chain) => {
                // RFC 1995 §4: each difference sequence is the old SOA, the removed records,
                // the new SOA, the added records; Changeset keeps them in that order
                for cs in chain {
                    for r in cs.removed.iter().chain(cs.added.iter()) {
                        p.emit(&r.owner, r.rtype, r.ttl, &r.rdata).await?;
                    }
                }
            }
            None => {
                for (name, node) in &zone.nodes {
                    for set in &node.rrsets {
                        if set.rtype == t::SOA && name == origin {
                            continue;
                        }
                        for rd in &set.rdatas {
                            p.emit(name, set.rtype, set.ttl, rd).await?;
                        }
                    }
                    for s in &node.sigs {
                        p.emit(name, t::RRSIG, s.ttl, &s.rdata).await?;
                    }
                }
            }
        }
        p.emit(origin, t::SOA, soa.0, soa.1).await?;
        if let Some(w) = p.writer.take() {
            p.flush(w).await?;
        }
        p.out.flush().await?;
        Ok::<(), std::io::Error>(())
    }
    .await;
    let stats = p.stats;
    let kind = if is_axfr { "AXFR" } else { "IXFR" };
    match &result {
        Ok(()) => tracing::info!(
            zone = %served.zone.origin,
            serial = ?served.serial(),
            style,
            from_serial = ?from_serial,
            client = %client,
            key = %key,
            records = stats.records,
            messages = stats.messages,
            bytes = stats.bytes,
            ms = started.elapsed().as_millis() as u64,
            "{kind} out"
        ),
        Err(e) => tracing::warn!(
            zone = %served.zone.origin,
            style,
            client = %client,
            key = %key,
            records = stats.records,
            messages = stats.messages,
            error = %e,
            "{kind} out aborted"
        ),
    }
    result.map(|()| stats)
}

/// The difference sequences to send for `chain`: one condensed changeset when the chain
/// composes (else the chain as journaled), or `None` when an AXFR-style answer is smaller
/// ([`IXFR_MAX_RATIO_PERCENT`]).
async fn incremental(
    served: &Served,
    chain: Vec<Arc<Changeset>>,
    client: SocketAddr,
) -> Option<Vec<Arc<Changeset>>> {
    let chain = if chain.len() > 1 {
        // a long chain of big changesets is real work: keep it off the async workers
        let c = chain.clone();
        match tokio::task::spawn_blocking(move || condense(&c)).await {
            Ok(Ok(cs)) => vec![Arc::new(cs)],
            Ok(Err(e)) => {
                tracing::warn!(zone = %served.zone.origin, client = %client, error = %e,
                    "IXFR: the journaled chain does not condense; sending it as it is");
                chain
            }
            Err(e) => {
                tracing::warn!(zone = %served.zone.origin, client = %client, error = %e,
                    "IXFR: condensing failed; sending the chain as it is");
                chain
            }
        }
    } else {
        chain
    };
    let n: usize = chain.iter().map(|c| c.record_count()).sum();
    // a zone has at least one record per node: compare with the exact count only when needed
    let names = served.zone.nodes.len();
    if n.saturating_mul(100) > names.saturating_mul(IXFR_MAX_RATIO_PERCENT)
        && n.saturating_mul(100)
            > served
                .zone
                .record_count()
                .saturating_mul(IXFR_MAX_RATIO_PERCENT)
    {
        tracing::info!(zone = %served.zone.origin, client = %client, records = n,
            "IXFR: the difference is larger than the zone: AXFR-style answer");
        return None;
    }
    Some(chain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SimClock;
    use crate::dns::message::Message;
    use crate::dns::record::Record;
    use crate::journal::{apply, diff, same_content, History};
    use crate::zone::data::{RRset, Zone};

    #[test]
    fn serial_arithmetic() {
        assert!(serial_ge(5, 5));
        assert!(serial_ge(6, 5));
        assert!(!serial_ge(4, 5));
        assert!(serial_ge(1, u32::MAX));
        assert!(!serial_ge(u32::MAX, 1));
    }

    fn n(s: &str) -> Name {
        Name::parse(s, None).unwrap()
    }

    const TEXT: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 120\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.2\n";

    fn base() -> Zone {
        let origin = n("example.test.");
        let parsed =
            crate::zonefile::parse_str(TEXT, std::path::Path::new("t.zone"), &origin).unwrap();
        let mut z = crate::zonefile::zone_from_parsed(parsed, &origin)
            .unwrap()
            .0;
        for i in 0..50u8 {
            z.nodes
                .entry(n(&format!("h{i}.example.test.")))
                .or_default()
                .put(RRset {
                    rtype: t::A,
                    ttl: 300,
                    rdatas: vec![vec![10, 0, 0, i]],
                });
        }
        z
    }

    /// Version `serial`: the previous one with `h{serial}` changed, `x{serial}` added and
    /// `x{serial-1}` removed (so a condensed answer is smaller than the chain).
    fn next(prev: &Zone, serial: u32) -> Zone {
        let mut z = prev.clone();
        z.set_serial(serial);
        let s = serial as u8;
        if let Some(node) = z.nodes.get_mut(&n(&format!("h{s}.example.test."))) {
            node.put(RRset {
                rtype: t::A,
                ttl: 300,
                rdatas: vec![vec![10, 1, 0, s]],
            });
        }
        z.nodes.remove(&n(&format!("x{}.example.test.", s - 1)));
        z.nodes
            .entry(n(&format!("x{s}.example.test.")))
            .or_default()
            .put(RRset {
                rtype: t::TXT,
                ttl: 60,
                rdatas: vec![b"\x03new".to_vec()],
            });
        z
    }

    /// Versions 1..=5 and the publisher serving version 5 with the history 1→5.
    fn setup() -> (Vec<Zone>, Publisher) {
        let mut v = vec![base()];
        for s in 2..=5 {
            let z = next(&v[v.len() - 1], s);
            v.push(z);
        }
        let chain = v.windows(2).map(|w| Arc::new(diff(&w[0], &w[1]))).collect();
        let p = Publisher::new(Arc::new(SimClock::new(1_700_000_000)));
        p.publish(Arc::new(
            Served::new(
                v[4].clone(),
                vec![crate::config::AclEntry::Addr(
                    "127.0.0.1".parse().unwrap(),
                    32,
                )],
            )
            .with_history(History::new(chain)),
        ));
        (v, p)
    }

    fn ixfr_query(serial: u32) -> Vec<u8> {
        let origin = n("example.test.");
        let mut soa = n("ns1.example.test.").as_wire().to_vec();
        soa.extend_from_slice(n("hostmaster.example.test.").as_wire());
        for x in [serial, 3600, 600, 86400, 120] {
            soa.extend_from_slice(&x.to_be_bytes());
        }
        let mut w = MessageWriter::new(Header { id: 77, flags: 0 }, MAX_MESSAGE_LEN);
        w.question(&origin, t::IXFR, class::IN).unwrap();
        w.record(Section::Authority, &origin, t::SOA, class::IN, 300, &soa)
            .unwrap();
        w.finish()
    }

    fn src() -> SocketAddr {
        "127.0.0.1:5353".parse().unwrap()
    }

    /// The answer records of a TCP IXFR from `serial` (all messages).
    fn tcp_ixfr(p: &Publisher, serial: u32) -> Vec<Record> {
        match p.handle(&ixfr_query(serial), src(), Transport::Tcp) {
            Reply::One(b) => Message::parse(&b).unwrap().answers,
            Reply::Drop => panic!("dropped"),
            Reply::Later(_) => panic!("deferred answer"),
            Reply::Transfer(tr) => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let mut out: Vec<u8> = Vec::new();
                rt.block_on(send(&mut out, tr, p.clock().clone())).unwrap();
                let mut records = Vec::new();
                let mut pos = 0;
                while pos < out.len() {
                    let len = u16::from_be_bytes([out[pos], out[pos + 1]]) as usize;
                    let m = Message::parse(&out[pos + 2..pos + 2 + len]).unwrap();
                    assert_eq!(m.header.id, 77);
                    records.extend(m.answers);
                    pos += 2 + len;
                }
                records
            }
        }
    }

    /// Parses an incremental IXFR answer (RFC 1995 §4) into its difference sequences.
    fn sequences(records: &[Record]) -> Vec<Changeset> {
        let serial = |r: &Record| soa_field(&r.rdata, 0).unwrap();
        assert_eq!(records[0].rtype, t::SOA);
        let last = records.len() - 1;
        assert_eq!(records[last].rtype, t::SOA);
        assert_eq!(serial(&records[0]), serial(&records[last]));
        let mut out: Vec<Changeset> = Vec::new();
        // an SOA after additions (or at the start) opens a sequence; the next one closes its
        // removals
        let mut adding = true;
        for r in &records[1..last] {
            if r.rtype == t::SOA {
                if adding {
                    out.push(Changeset {
                        from: serial(r),
                        to: 0,
                        removed: vec![r.clone()],
                        added: vec![],
                    });
                } else {
                    let c = out.last_mut().unwrap();
                    c.to = serial(r);
                    c.added.push(r.clone());
                }
                adding = !adding;
            } else {
                let c = out.last_mut().unwrap();
                if adding {
                    c.added.push(r.clone());
                } else {
                    c.removed.push(r.clone());
                }
            }
        }
        out
    }

    #[test]
    fn ixfr_from_a_covered_serial_is_one_condensed_sequence() {
        let (v, p) = setup();
        let records = tcp_ixfr(&p, 1);
        let seqs = sequences(&records);
        assert_eq!(seqs.len(), 1, "condensed: {records:?}");
        assert_eq!((seqs[0].from, seqs[0].to), (1, 5));
        // the chain carries x2, x3, x4 added and removed again; the condensed one does not
        assert!(!records.iter().any(|r| r.owner == n("x3.example.test.")));
        let got = apply(&v[0], &seqs[0]).unwrap();
        assert!(same_content(&got, &v[4]));
        // from 4: the last changeset only
        let records = tcp_ixfr(&p, 4);
        let seqs = sequences(&records);
        assert_eq!(seqs.len(), 1);
        assert_eq!((seqs[0].from, seqs[0].to), (4, 5));
        assert!(same_content(&apply(&v[3], &seqs[0]).unwrap(), &v[4]));
    }

    #[test]
    fn ixfr_outside_the_history_is_axfr_style_and_up_to_date_is_one_soa() {
        let (v, p) = setup();
        let full = v[4].record_count() + 1;
        for serial in [0u32, 3_000_000_000] {
            let records = tcp_ixfr(&p, serial);
            assert_eq!(records.len(), full, "from {serial}");
            assert!(records[1].rtype != t::SOA, "AXFR-style: no second SOA");
        }
        for serial in [5u32, 6, 42] {
            let records = tcp_ixfr(&p, serial);
            assert_eq!(records.len(), 1, "from {serial}");
            assert_eq!(soa_field(&records[0].rdata, 0), Some(5));
        }
        // UDP: the SOA only, whatever the serial (as BIND 9)
        for serial in [1u32, 4, 0] {
            match p.handle(&ixfr_query(serial), src(), Transport::Udp) {
                Reply::One(b) => {
                    let m = Message::parse(&b).unwrap();
                    assert_eq!(m.answers.len(), 1);
                    assert_eq!(m.answers[0].rtype, t::SOA);
                    assert_eq!(m.header.rcode(), rcode::NOERROR);
                }
                _ => panic!("UDP IXFR must be one message"),
            }
        }
    }

    #[test]
    fn an_ixfr_larger_than_the_zone_is_sent_axfr_style() {
        let v1 = base();
        // every record changes: the difference is twice the zone
        let mut v2 = v1.clone();
        v2.set_serial(2);
        for node in v2.nodes.values_mut() {
            for set in node.rrsets.iter_mut().filter(|s| s.rtype != t::SOA) {
                set.ttl += 1;
            }
        }
        let chain = vec![Arc::new(diff(&v1, &v2))];
        let p = Publisher::new(Arc::new(SimClock::new(1_700_000_000)));
        p.publish(Arc::new(
            Served::new(
                v2.clone(),
                vec![crate::config::AclEntry::Addr(
                    "127.0.0.1".parse().unwrap(),
                    32,
                )],
            )
            .with_history(History::new(chain)),
        ));
        let records = tcp_ixfr(&p, 1);
        assert_eq!(records.len(), v2.record_count() + 1);
    }

    #[test]
    fn a_history_that_does_not_reach_the_served_serial_is_not_used() {
        let (v, _) = setup();
        let chain = v[..4]
            .windows(2)
            .map(|w| Arc::new(diff(&w[0], &w[1])))
            .collect();
        let p = Publisher::new(Arc::new(SimClock::new(1_700_000_000)));
        p.publish(Arc::new(
            Served::new(
                v[4].clone(),
                vec![crate::config::AclEntry::Addr(
                    "127.0.0.1".parse().unwrap(),
                    32,
                )],
            )
            .with_history(History::new(chain)),
        ));
        assert_eq!(tcp_ixfr(&p, 1).len(), v[4].record_count() + 1);
    }
}
