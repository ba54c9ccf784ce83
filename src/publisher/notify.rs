//! NOTIFY out (RFC 1996): tell the secondaries that a new serial is published.
//!
//! One task per target sends `NOTIFY <zone> SOA` over UDP, with the current SOA in the answer
//! section (RFC 1996 §3.7) and a TSIG signature when a key is given, and waits for the matching
//! reply: same ID, QR set, opcode NOTIFY, from the target's address, and (with a key) a valid
//! TSIG. Without one it retries [`NOTIFY_TRIES`] times, the wait doubling from
//! [`NOTIFY_FIRST_TIMEOUT`] (RFC 1996 §3.6 asks for retransmission with a timeout). The caller
//! never waits: [`spawn`] returns at once with a handle that yields the outcome per target.

use super::Publisher;
use crate::auth::tsig::{sign_request, ResponseVerifier};
use crate::auth::Key;
use crate::clock::Clock;
use crate::dns::message::{
    opcode, rcode, Header, Message, MessageWriter, Section, MAX_MESSAGE_LEN,
};
use crate::dns::name::Name;
use crate::dns::rtype::{class, t};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// Sends per target before giving up: a secondary that is down for ~30 s (1+2+4+8+16) still
/// hears about the new serial; after that its own SOA refresh timer takes over.
pub const NOTIFY_TRIES: u32 = 5;

/// Wait for the first reply; doubled after each try.
pub const NOTIFY_FIRST_TIMEOUT: Duration = Duration::from_secs(1);

/// How one NOTIFY ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The target answered (NOERROR, or e.g. NOTAUTH/REFUSED: retrying would not help).
    Answered {
        target: SocketAddr,
        rcode: u16,
    },
    GaveUp {
        target: SocketAddr,
        reason: String,
    },
}

/// Starts NOTIFY for `origin` to `targets` (see [`Publisher::notify`]).
pub(super) fn spawn(
    p: &Publisher,
    origin: &Name,
    targets: Vec<SocketAddr>,
    key: Option<Arc<Key>>,
) -> Option<tokio::task::JoinHandle<Vec<Outcome>>> {
    let Some(served) = p.get(origin) else {
        tracing::warn!(zone = %origin, "NOTIFY not sent: the zone is not served");
        return None;
    };
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        tracing::error!(zone = %origin, "NOTIFY not sent: no async runtime");
        return None;
    };
    let apex = served.zone.nodes.get(&served.zone.origin)?;
    let soa = apex.get(t::SOA)?;
    let soa = (soa.ttl, soa.rdatas.first()?.clone());
    let origin = served.zone.origin.clone();
    let serial = served.serial();
    let clock = p.clock().clone();
    Some(rt.spawn(async move {
        let mut set = tokio::task::JoinSet::new();
        for target in targets {
            set.spawn(notify_one(
                origin.clone(),
                serial,
                soa.clone(),
                target,
                key.clone(),
                clock.clone(),
            ));
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(o) = r {
                out.push(o);
            }
        }
        out
    }))
}

fn random_id() -> u16 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 2];
    // a failing system RNG leaves a zero ID: still a valid NOTIFY
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    u16::from_be_bytes(b)
}

/// The NOTIFY message and its MAC (if signed).
fn build(
    origin: &Name,
    soa: &(u32, Vec<u8>),
    id: u16,
    key: Option<&Key>,
    now: u64,
) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut h = Header { id, flags: 0 };
    h.set_opcode(opcode::NOTIFY);
    h.set_aa(true);
    let mut w = MessageWriter::new(h, MAX_MESSAGE_LEN);
    let _ = w.question(origin, t::SOA, class::IN);
    let _ = w.record(Section::Answer, origin, t::SOA, class::IN, soa.0, &soa.1);
    let mut msg = w.finish();
    let mac = key.map(|k| sign_request(&mut msg, k, now));
    (msg, mac)
}

async fn notify_one(
    origin: Name,
    serial: Option<u32>,
    soa: (u32, Vec<u8>),
    target: SocketAddr,
    key: Option<Arc<Key>>,
    clock: Arc<dyn Clock>,
) -> Outcome {
    let give_up = |reason: String| {
        tracing::warn!(zone = %origin, target = %target, serial = ?serial, "giving up NOTIFY: {reason}");
        Outcome::GaveUp { target, reason }
    };
    let local: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = match UdpSocket::bind(local).await {
        Ok(s) => s,
        Err(e) => return give_up(format!("cannot open a UDP socket: {e}")),
    };
    let id = random_id();
    let mut wait = NOTIFY_FIRST_TIMEOUT;
    let mut buf = vec![0u8; MAX_MESSAGE_LEN];
    for attempt in 1..=NOTIFY_TRIES {
        // signed afresh each time: the TSIG time must be current
        let (msg, mac) = build(&origin, &soa, id, key.as_deref(), clock.now());
        if let Err(e) = sock.send_to(&msg, target).await {
            tracing::debug!(zone = %origin, target = %target, attempt, error = %e, "NOTIFY send failed");
        }
        let deadline = Instant::now() + wait;
        loop {
            let (n, from) = match tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await
            {
                Err(_) => break,
                Ok(Err(e)) => {
                    tracing::debug!(zone = %origin, target = %target, error = %e, "NOTIFY receive error");
                    tokio::time::sleep_until(deadline).await;
                    break;
                }
                Ok(Ok(x)) => x,
            };
            if from != target {
                continue;
            }
            let reply = &buf[..n];
            let Ok(m) = Message::parse(reply) else {
                continue;
            };
            if m.header.id != id || !m.header.qr() || m.header.opcode() != opcode::NOTIFY {
                continue;
            }
            if let (Some(k), Some(mac)) = (&key, &mac) {
                let mut v = ResponseVerifier::new(k.clone(), mac.clone());
                if let Err(e) = v.verify(reply, &m, clock.now()).and_then(|()| v.finish()) {
                    tracing::warn!(zone = %origin, target = %target, error = %e, "NOTIFY reply failed TSIG verification");
                    continue;
                }
            }
            let rc = m.rcode();
            if rc == rcode::NOERROR {
                tracing::info!(zone = %origin, target = %target, serial = ?serial, attempt, "NOTIFY acknowledged");
            } else {
                tracing::warn!(zone = %origin, target = %target, serial = ?serial, rcode = %rcode::name(rc),
                    "NOTIFY answered with an error");
            }
            return Outcome::Answered { target, rcode: rc };
        }
        wait *= 2;
    }
    give_up(format!("no answer after {NOTIFY_TRIES} tries"))
}
