//! The I/O side: UDP and TCP exchanges with the primary, under the [`Limits`].

use super::session::{self, Outcome, Session};
use super::{apply, Fetched, Limits, XfrError};
use crate::auth::tsig::{sign_request, ResponseVerifier};
use crate::auth::Key;
use crate::clock::{Clock, SystemClock};
use crate::dns::message::{build_query, opcode, Header, MessageWriter, Section, MAX_MESSAGE_LEN};
use crate::dns::name::Name;
use crate::dns::record::Record;
use crate::dns::rtype::{class, t};
use crate::zone::data::{soa_field, Zone};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};

fn now() -> u64 {
    SystemClock.now()
}

/// A query ID from the system's random source (RFC 5452 §9.2: unpredictable IDs).
fn random_id() -> u16 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 2];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        return (nanos ^ (nanos >> 16)) as u16;
    }
    u16::from_be_bytes(b)
}

/// The query, signed when a key is given; with the verifier for its answer.
fn query(
    id: u16,
    zone: &Name,
    qtype: u16,
    soa: Option<&Record>,
    key: Option<&Arc<Key>>,
) -> (Vec<u8>, Option<ResponseVerifier>) {
    let mut msg = match soa {
        // RFC 1995 §3: the IXFR query carries our SOA in the authority section
        Some(soa) => {
            let mut h = Header { id, flags: 0 };
            h.set_opcode(opcode::QUERY);
            let mut w = MessageWriter::new(h, MAX_MESSAGE_LEN);
            // a name and a SOA always fit in an empty 64 KiB message
            let _ = w.question(zone, qtype, class::IN);
            let _ = w.add(Section::Authority, soa);
            w.finish()
        }
        None => build_query(id, opcode::QUERY, zone, qtype, None),
    };
    let verifier = key.map(|k| {
        let mac = sign_request(&mut msg, k, now());
        ResponseVerifier::new(k.clone(), mac)
    });
    (msg, verifier)
}

// ---------------------------------------------------------------------------------------------
// TCP

/// One TCP connection to the primary, reading length-prefixed messages under the limits.
struct Tcp {
    primary: SocketAddr,
    stream: BufReader<TcpStream>,
    idle: Duration,
    deadline: Instant,
    max_duration: Duration,
    max_bytes: u64,
    bytes: u64,
}

impl Tcp {
    async fn connect(
        primary: SocketAddr,
        limits: &Limits,
        deadline: Instant,
    ) -> Result<Tcp, XfrError> {
        let until = deadline.min(Instant::now() + limits.connect_timeout);
        let stream = match timeout_at(until, TcpStream::connect(primary)).await {
            Err(_) => {
                return Err(XfrError::Timeout {
                    what: format!(
                        "connecting to {primary} over TCP ({:?})",
                        limits.connect_timeout
                    ),
                })
            }
            Ok(Err(e)) => return Err(XfrError::Connect(format!("{primary} (TCP): {e}"))),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        Ok(Tcp {
            primary,
            stream: BufReader::with_capacity(64 * 1024, stream),
            idle: limits.idle_timeout,
            deadline,
            max_duration: limits.max_duration,
            max_bytes: limits.max_bytes,
            bytes: 0,
        })
    }

    /// The next wait: the idle timeout, cut short by the overall deadline.
    fn until(&self) -> (Instant, bool) {
        let idle_end = Instant::now() + self.idle;
        if idle_end < self.deadline {
            (idle_end, true)
        } else {
            (self.deadline, false)
        }
    }

    fn expired(&self, idle: bool, what: String) -> XfrError {
        if idle {
            XfrError::Timeout {
                what: format!(
                    "waiting for {what} from {} ({:?} idle timeout)",
                    self.primary, self.idle
                ),
            }
        } else {
            XfrError::Limit(format!(
                "the transfer from {} took longer than {:?} (max_duration)",
                self.primary, self.max_duration
            ))
        }
    }

    async fn send(&mut self, msg: &[u8]) -> Result<(), XfrError> {
        let mut framed = Vec::with_capacity(msg.len() + 2);
        framed.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        framed.extend_from_slice(msg);
        let (until, idle) = self.until();
        match timeout_at(until, self.stream.get_mut().write_all(&framed)).await {
            Err(_) => Err(self.expired(idle, "the query to be sent".into())),
            Ok(Err(e)) => Err(XfrError::Connect(format!(
                "{}: sending the query: {e}",
                self.primary
            ))),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// The next message; `None` when the peer closed the connection between messages.
    async fn read(&mut self, what: String) -> Result<Option<Vec<u8>>, XfrError> {
        let (until, idle) = self.until();
        let room = self.max_bytes.saturating_sub(self.bytes);
        match timeout_at(until, read_frame(&mut self.stream, room)).await {
            Err(_) => Err(self.expired(idle, what)),
            Ok(Err(Frame::Eof)) => Ok(None),
            Ok(Err(Frame::EofInside)) => Err(XfrError::Closed(format!(
                "the connection was closed in the middle of {what}"
            ))),
            Ok(Err(Frame::Empty)) => Err(XfrError::Malformed(format!("{what} has length 0"))),
            Ok(Err(Frame::TooBig(len))) => Err(XfrError::Limit(format!(
                "{what} ({len} octets) would pass {} octets of messages (max_bytes)",
                self.max_bytes
            ))),
            Ok(Err(Frame::Io(e))) => Err(XfrError::Closed(format!(
                "connection error while reading {what}: {e}"
            ))),
            Ok(Ok(buf)) => {
                self.bytes += buf.len() as u64;
                Ok(Some(buf))
            }
        }
    }
}

enum Frame {
    /// Closed cleanly before a new message.
    Eof,
    /// Closed inside a length prefix or a message.
    EofInside,
    Empty,
    TooBig(usize),
    Io(std::io::Error),
}

async fn read_frame(s: &mut BufReader<TcpStream>, room: u64) -> Result<Vec<u8>, Frame> {
    let eof = |e: std::io::Error, inside: bool| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            if inside {
                Frame::EofInside
            } else {
                Frame::Eof
            }
        } else {
            Frame::Io(e)
        }
    };
    let hi = s.read_u8().await.map_err(|e| eof(e, false))?;
    let lo = s.read_u8().await.map_err(|e| eof(e, true))?;
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if len == 0 {
        return Err(Frame::Empty);
    }
    if len as u64 > room {
        return Err(Frame::TooBig(len));
    }
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).await.map_err(|e| eof(e, true))?;
    Ok(buf)
}

// ---------------------------------------------------------------------------------------------
// Transfer

pub(crate) async fn transfer(
    primary: SocketAddr,
    zone: &Name,
    key: Option<&Arc<Key>>,
    base: Option<&Zone>,
    limits: &Limits,
) -> Result<Fetched, XfrError> {
    let started = Instant::now();
    let deadline = started + limits.max_duration;
    // IXFR from `base` when it has a SOA (a zone always has)
    let ours = base.and_then(|z| {
        let rdata = z.soa()?;
        let serial = soa_field(rdata, 0)?;
        Some((
            serial,
            Record::new(
                zone.clone(),
                t::SOA,
                z.soa_ttl().unwrap_or(0),
                rdata.to_vec(),
            ),
        ))
    });
    let qtype = if ours.is_some() { t::IXFR } else { t::AXFR };
    let kind = if ours.is_some() { "IXFR" } else { "AXFR" };
    let id = random_id();
    let (req, verifier) = query(id, zone, qtype, ours.as_ref().map(|(_, r)| r), key);
    let mut session = Session::new(
        zone.clone(),
        qtype,
        id,
        ours.as_ref().map(|(s, _)| *s),
        verifier,
        limits.max_records,
    );
    let mut conn = Tcp::connect(primary, limits, deadline).await?;
    conn.send(&req).await?;
    loop {
        let what = format!("message {} of the {kind}", session.messages() + 1);
        match conn.read(what).await? {
            None => {
                return Err(session
                    .outcome()
                    .err()
                    .unwrap_or_else(|| XfrError::Closed("the connection was closed".into())))
            }
            Some(msg) => {
                if session.feed(&msg, now())? {
                    break;
                }
            }
        }
    }
    let (messages, records, bytes) = (session.messages(), session.records(), conn.bytes);
    drop(conn);
    tracing::debug!(
        zone = %zone, %primary, kind, messages, records, bytes,
        ms = started.elapsed().as_millis() as u64,
        "transfer received"
    );
    let max_records = limits.max_records;
    match session.outcome()? {
        Outcome::UpToDate { serial } => Ok(Fetched::UpToDate { serial }),
        Outcome::Full { records, via_ixfr } => {
            let origin = zone.clone();
            let zone = blocking(move || apply::full(origin, records)).await?;
            Ok(Fetched::Full { zone, via_ixfr })
        }
        Outcome::Incremental { diffs } => {
            // the copy is made here; `base` itself is never touched
            let copy = base.cloned().ok_or_else(|| {
                XfrError::Malformed("an incremental answer to an AXFR query".into())
            })?;
            let (zone, diffs) =
                blocking(move || apply::incremental(copy, &diffs, max_records).map(|z| (z, diffs)))
                    .await?;
            Ok(Fetched::Incremental { zone, diffs })
        }
    }
}

/// Runs the CPU-bound zone build off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, XfrError> + Send + 'static,
) -> Result<T, XfrError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| XfrError::BadZone(vec![format!("building the new version failed: {e}")]))?
}

// ---------------------------------------------------------------------------------------------
// SOA query

pub(crate) async fn query_soa(
    primary: SocketAddr,
    zone: &Name,
    key: Option<&Arc<Key>>,
    limits: &Limits,
) -> Result<u32, XfrError> {
    let id = random_id();
    let mut req = build_query(id, opcode::QUERY, zone, t::SOA, None);
    let mac = key.map(|k| sign_request(&mut req, k, now()));
    let verifier = || match (key, &mac) {
        (Some(k), Some(m)) => Some(ResponseVerifier::new(k.clone(), m.clone())),
        _ => None,
    };
    match udp_soa(primary, &req, id, zone, verifier(), limits).await {
        Udp::Answer(result) => return result,
        Udp::Truncated => {
            tracing::debug!(zone = %zone, %primary, "SOA answer truncated over UDP; asking over TCP")
        }
        Udp::NoAnswer(why) => {
            tracing::debug!(zone = %zone, %primary, "no SOA answer over UDP ({why}); asking over TCP")
        }
    }
    let deadline = Instant::now() + limits.connect_timeout + limits.idle_timeout;
    let mut conn = Tcp::connect(primary, limits, deadline).await?;
    conn.send(&req).await?;
    let msg = conn.read("the SOA answer".into()).await?.ok_or_else(|| {
        XfrError::Closed(format!(
            "{primary} closed the connection without answering the SOA query"
        ))
    })?;
    session::soa_answer(&msg, id, zone, verifier(), now())
}

enum Udp {
    Answer(Result<u32, XfrError>),
    Truncated,
    NoAnswer(String),
}

/// The SOA query over UDP: sent up to three times within [`Limits::connect_timeout`]. Datagrams
/// from elsewhere are dropped by the connected socket; ones with another ID are ignored (a
/// late answer to an earlier query, or spoofing).
async fn udp_soa(
    primary: SocketAddr,
    req: &[u8],
    id: u16,
    zone: &Name,
    verifier: Option<ResponseVerifier>,
    limits: &Limits,
) -> Udp {
    let local: SocketAddr = if primary.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let sock = match UdpSocket::bind(local).await {
        Ok(s) => s,
        Err(e) => return Udp::NoAnswer(format!("UDP socket: {e}")),
    };
    if let Err(e) = sock.connect(primary).await {
        return Udp::NoAnswer(format!("UDP connect: {e}"));
    }
    const TRIES: u32 = 3;
    let deadline = Instant::now() + limits.connect_timeout;
    let step = limits.connect_timeout / TRIES;
    let mut buf = vec![0u8; MAX_MESSAGE_LEN];
    let mut verifier = verifier;
    for attempt in 1..=TRIES {
        if let Err(e) = sock.send(req).await {
            return Udp::NoAnswer(format!("UDP send: {e}"));
        }
        let until = if attempt == TRIES {
            deadline
        } else {
            deadline.min(Instant::now() + step)
        };
        loop {
            match timeout_at(until, sock.recv(&mut buf)).await {
                Err(_) => break,
                // ICMP port unreachable and the like: nobody listens on UDP
                Ok(Err(e)) => return Udp::NoAnswer(format!("UDP: {e}")),
                Ok(Ok(n)) => {
                    let pkt = &buf[..n];
                    match Header::peek(pkt) {
                        Some(h) if h.id == id && h.qr() => {
                            if h.tc() {
                                return Udp::Truncated;
                            }
                            return Udp::Answer(session::soa_answer(
                                pkt,
                                id,
                                zone,
                                verifier.take(),
                                now(),
                            ));
                        }
                        _ => continue,
                    }
                }
            }
        }
    }
    Udp::NoAnswer(format!("nothing within {:?}", limits.connect_timeout))
}
