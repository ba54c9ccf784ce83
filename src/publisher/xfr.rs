//! Zone transfers out: AXFR (RFC 5936) and IXFR (RFC 1995) to the secondaries.
//!
//! ```text
//!  AXFR/IXFR request ─▶ zone served? ─no─▶ REFUSED
//!                     ─▶ allow-transfer ACL (address or verified TSIG key) ─no─▶ REFUSED (warning)
//!                     ─▶ UDP? AXFR: FORMERR ("attempted AXFR over UDP", as BIND)
//!                             IXFR: the current SOA only (RFC 1995 §2: retry over TCP)
//!                     ─▶ IXFR with the client's serial ≥ ours: the current SOA only (up to date)
//!                     ─▶ otherwise: SOA, every record, SOA, in messages of at most
//!                        XFR_MESSAGE_SIZE octets, each one TSIG-signed when the request was
//! ```
//!
//! IXFR is answered AXFR-style (RFC 1995 §4 allows a full zone in an IXFR answer); incremental
//! answers from the journal come with the journal. Records are packed into messages as they
//! are read from the `Arc<Served>` the transfer started with, so memory stays at one message
//! however large the zone, and a publish during the transfer does not change what this client
//! receives.

use super::{Publisher, Reply, Request, Served, Transport};
use crate::auth::allowed;
use crate::auth::tsig::ResponseSigner;
use crate::dns::message::{rcode, Edns, Header, MessageWriter, Question, Section, MAX_MESSAGE_LEN};
use crate::dns::name::Name;
use crate::dns::rtype::{class, t};
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

/// A transfer to run over a TCP connection ([`send`]).
pub struct Transfer {
    served: Arc<Served>,
    id: u16,
    question: Question,
    signer: Option<ResponseSigner>,
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
        }
    }
    Reply::Transfer(Transfer {
        served,
        id: ctx.msg.header.id,
        question: q.clone(),
        signer: ctx.verified.as_ref().map(ResponseSigner::new),
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

/// Writes the transfer to `out` (2-octet framed TCP messages). Logs one line when done.
pub async fn send<W: AsyncWrite + Unpin>(
    out: &mut W,
    tr: Transfer,
    clock: Arc<dyn crate::clock::Clock>,
) -> std::io::Result<Stats> {
    let started = Instant::now();
    let served = tr.served.clone();
    let kind = if tr.question.qtype == t::AXFR {
        "AXFR"
    } else {
        "IXFR (full)"
    };
    let client = tr.client;
    let key = tr
        .key
        .as_ref()
        .map(|k| k.to_string())
        .unwrap_or_else(|| "none".into());
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
        p.emit(origin, t::SOA, soa.0, soa.1).await?;
        if let Some(w) = p.writer.take() {
            p.flush(w).await?;
        }
        p.out.flush().await?;
        Ok::<(), std::io::Error>(())
    }
    .await;
    let stats = p.stats;
    match &result {
        Ok(()) => tracing::info!(
            zone = %served.zone.origin,
            serial = ?served.serial(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic() {
        assert!(serial_ge(5, 5));
        assert!(serial_ge(6, 5));
        assert!(!serial_ge(4, 5));
        assert!(serial_ge(1, u32::MAX));
        assert!(!serial_ge(u32::MAX, 1));
    }
}
