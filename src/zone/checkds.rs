//! checkds: asking the zone's `parental-agents` for the DS set of the zone, so that the key
//! state machine learns from the parent itself — not from the operator's `ds-seen` /
//! `ds-gone` — when a DS it asked for (CDS) is published and when one it asked away is gone.
//!
//! ## When, and what is concluded
//!
//! While a KSK/CSK's DS waits for the parent ([`crate::kasp`]: DS *rumoured* without an
//! observation, or *unretentive* without one), the zone task queries **every** parental agent
//! for `ZONE DS` every [`poll_interval`] (on its clock, so the simulated clock drives it too).
//! [`compare`] then decides, key by key, as BIND's checkds does (and Knot's `ksk-submission`:
//! "all of them must have a corresponding DS for the rollover to continue", knot.conf(5)):
//!
//! * a DS that should appear is **seen** when every agent answers with a DS that matches the
//!   key: same key tag and algorithm, a digest type of the policy's `cds-digest-types` (any
//!   type signet can compute when that list is empty), and the digest of the key's DNSKEY as
//!   served. A DS with the right tag and a wrong digest does not count (it would not validate
//!   anything), nor one of another digest type (a validator may not support it);
//! * a DS that should go is **gone** when every agent answers and none shows a DS with the
//!   key's tag and algorithm (a mismatching digest still counts as present: the conservative
//!   side);
//! * a query that fails (no answer within [`QUERY_TIMEOUT`], an RCODE other than NOERROR,
//!   an answer neither authoritative nor validated, or malformed) concludes nothing for any
//!   key: the failure is reported, and the next poll asks again.
//!
//! An agent is either one of the parent's authoritative servers (the answer must have AA) or,
//! as BIND's documentation suggests since the DS answer is not otherwise authenticated (and
//! Knot's: "a DNSSEC-validating resolver can be set as a parent"), a
//! validating resolver (the answer must have AD; the query sets RD and AD, RFC 6840 §5.7). A
//! resolver's cache only ever lags behind the parent, which delays a conclusion but never
//! makes a wrong one: signet waits for the new state, and a lagging answer shows the old.
//!
//! Each conclusion has the effect of `signet ds-seen` / `signet ds-gone` for that key. An
//! observation made late is always safe: the state machine's DS timers start at the
//! observation, so a slower poll only lengthens the rollover.
//!
//! ## What it reports
//!
//! Each poll produces a [`CheckDsStatus`]: per agent, the DS records it showed (`tag/alg/
//! digest-type`, marked when they match no key or the wrong digest) or why the query failed,
//! and one sentence per agent that is not yet where it should be, e.g. `parent 127.0.0.1:5300
//! has DS 12345/13/2 and 23456/13/2; waiting for it to drop 12345`. The sentences join
//! `waiting_for` in `signet status` and `signet keys` (text and JSON), the report is the
//! zone's `parent_ds` in `signet status --json`, and every change of the sentences is logged
//! at info (and repeated every [`LOG_REPEAT`] while unchanged), so a stale DS never stalls a
//! rollover silently.

use crate::config::Policy;
use crate::dns::message::{opcode, rcode, Edns, Header, Message, MessageWriter, MAX_MESSAGE_LEN};
use crate::dns::name::Name;
use crate::dns::rtype::{class, t};
use crate::kasp::{KeyRef, RecordState, ZoneKeyState};
use crate::keystore::{ds_rdata, key_tag};
use serde::Serialize;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};

/// Never poll more often than every second: one DS query per agent per second is negligible
/// load, and the tests' policies (parent propagation delays of 1–2 s) need no faster.
pub const CHECKDS_MIN_INTERVAL: u64 = 1;

/// Never poll less often than hourly while a DS change is awaited: Knot's `ksk-submission`
/// `check-interval` default (1 h, knot.conf(5) of Knot 3.2), which BIND's default
/// `parent-propagation-delay` (1 h) also gives here.
pub const CHECKDS_MAX_INTERVAL: u64 = 3600;

/// Time for one agent to answer (UDP, then TCP when truncated, each within this): a parent
/// server is normally close to its operator's network; a slower one is reported as failing
/// and asked again at the next poll. The agents are asked at once, so a poll holds the zone
/// task at most twice this.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(3);

/// EDNS UDP payload size of the query (the DNS flag day 2020 value): a DS RRset with its
/// signatures fits, a larger answer comes truncated and is asked again over TCP.
pub const EDNS_UDP_SIZE: u16 = 1232;

/// An unchanged "waiting for the parent" message is logged again after this long, so that a
/// stale DS shows in the log at least hourly, without a line every poll.
pub const LOG_REPEAT: u64 = 3600;

/// How often the parental agents are asked while a DS change is awaited: the policy's
/// `parent-propagation-delay` — the time the parent is expected to take to bring a change to
/// all its servers, so polling faster would mostly learn nothing new — within
/// [`CHECKDS_MIN_INTERVAL`]..=[`CHECKDS_MAX_INTERVAL`].
pub fn poll_interval(policy: &Policy) -> u64 {
    policy
        .parent_propagation_delay
        .clamp(CHECKDS_MIN_INTERVAL, CHECKDS_MAX_INTERVAL)
}

/// What an agent said when asked for the zone's DS RRset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The DS RDATAs of an authoritative (AA) or validated (AD) NOERROR answer (empty:
    /// NODATA, no DS).
    Ds(Vec<Vec<u8>>),
    /// No usable answer, and why.
    Failed(String),
}

/// What the parent must show for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The DS was asked for (CDS) and not yet seen.
    Present,
    /// The DS was asked away and not yet seen gone.
    Absent,
}

/// One key the parent is waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pub key: KeyRef,
    pub want: Want,
    /// The key's DNSKEY RDATA as served (to check DS digests); `None` if it is not served.
    pub dnskey: Option<Vec<u8>>,
}

/// The keys whose DS the parent is waited for now: DS rumoured without `ds_seen`, or
/// unretentive without `ds_gone`. `dnskeys` is the apex DNSKEY RRset as served.
pub fn expectations(st: &ZoneKeyState, dnskeys: &[Vec<u8>]) -> Vec<Expectation> {
    let mut v = Vec::new();
    for k in &st.keys {
        let Some(ds) = &k.ds else { continue };
        let want = match ds.state {
            RecordState::Rumoured if k.ds_seen.is_none() => Want::Present,
            RecordState::Unretentive if k.ds_gone.is_none() => Want::Absent,
            _ => continue,
        };
        let dnskey = dnskeys
            .iter()
            .find(|d| d.len() > 4 && d[3] == k.key.algorithm && key_tag(d) == k.key.tag)
            .cloned();
        v.push(Expectation {
            key: k.key,
            want,
            dnskey,
        });
    }
    v
}

/// One DS record as an agent showed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShownDs {
    pub tag: u16,
    pub algorithm: u8,
    pub digest_type: u8,
    /// What it is to signet: `ok` (matches a key), `wrong digest for key N`, `unknown key`.
    pub note: String,
}

impl fmt::Display for ShownDs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.tag, self.algorithm, self.digest_type)?;
        if self.note != "ok" {
            write!(f, " ({})", self.note)?;
        }
        Ok(())
    }
}

/// One agent's part of the last poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentReport {
    pub agent: SocketAddr,
    /// The DS records shown; `None` when the query failed.
    pub ds: Option<Vec<ShownDs>>,
    pub error: Option<String>,
    /// The sentence for `waiting_for`, when this agent is not yet where it should be.
    pub waiting: Option<String>,
}

/// The outcome of one poll (`parent_ds` in `signet status --json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckDsStatus {
    /// When the agents were asked (Unix seconds).
    pub checked_at: u64,
    /// When they are asked next, while a DS change is awaited.
    pub next_check: Option<u64>,
    /// Tags of the keys whose DS the parent should publish now.
    pub expected: Vec<u16>,
    pub agents: Vec<AgentReport>,
    /// Keys this poll saw published at every agent (as `ds-seen`).
    pub seen: Vec<u16>,
    /// Keys this poll saw removed at every agent (as `ds-gone`).
    pub gone: Vec<u16>,
}

impl CheckDsStatus {
    /// The waiting sentences, one per agent not yet where it should be.
    pub fn waiting(&self) -> Vec<String> {
        self.agents
            .iter()
            .filter_map(|a| a.waiting.clone())
            .collect()
    }
}

/// Parses a DS RDATA header: (tag, algorithm, digest type).
fn ds_header(rd: &[u8]) -> Option<(u16, u8, u8)> {
    let h = rd.get(..4)?;
    Some((u16::from_be_bytes([h[0], h[1]]), h[2], h[3]))
}

/// Whether DS `rd` is the digest of `dnskey` (owner `owner_wire`, canonical).
fn ds_matches(owner_wire: &[u8], rd: &[u8], dnskey: &[u8]) -> bool {
    let Some((_, _, dt)) = ds_header(rd) else {
        return false;
    };
    match ds_rdata(owner_wire, dnskey, dt) {
        // digests compare case-insensitively only in presentation; on the wire, exactly
        Some(want) => want == rd,
        None => false,
    }
}

/// "a", "a and b", "a, b and c".
fn and_list(items: &[String]) -> String {
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        n => format!("{} and {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

/// Compares what each agent showed with what is expected. `owner_wire` is the zone's name in
/// canonical wire form; `wanted` the tags of the keys whose DS the parent should hold now
/// (for the report); `known` every key of the zone with its served DNSKEY, if any (to name
/// what the parent shows); `digest_types` the policy's `cds-digest-types` (a DS counts as
/// published only with one of them; any type when empty). A key is concluded only when
/// `answers` is not empty and every agent answered and agrees.
pub fn compare(
    owner_wire: &[u8],
    expect: &[Expectation],
    wanted: &[u16],
    known: &[(KeyRef, Option<Vec<u8>>)],
    answers: &[(SocketAddr, Answer)],
    digest_types: &[u8],
    now: u64,
) -> CheckDsStatus {
    let type_ok = |dt: u8| digest_types.is_empty() || digest_types.contains(&dt);
    let mut agents = Vec::new();
    // per expectation: how many agents agree
    let mut agree = vec![0usize; expect.len()];
    for (agent, answer) in answers {
        let rds = match answer {
            Answer::Failed(why) => {
                agents.push(AgentReport {
                    agent: *agent,
                    ds: None,
                    error: Some(why.clone()),
                    waiting: (!expect.is_empty()).then(|| {
                        format!("parent {agent} did not answer the DS query ({why}); nothing is concluded until it does")
                    }),
                });
                continue;
            }
            Answer::Ds(rds) => rds,
        };
        let shown: Vec<ShownDs> = rds
            .iter()
            .filter_map(|rd| {
                let (tag, algorithm, digest_type) = ds_header(rd)?;
                let key = known
                    .iter()
                    .find(|(k, _)| k.tag == tag && k.algorithm == algorithm);
                let note = match key {
                    None => "unknown key".to_string(),
                    Some((_, Some(dnskey))) if ds_matches(owner_wire, rd, dnskey) => {
                        if type_ok(digest_type) {
                            "ok".to_string()
                        } else {
                            format!("digest type {digest_type} not in cds-digest-types")
                        }
                    }
                    Some((_, Some(_))) => format!("wrong digest for key {tag}"),
                    Some((_, None)) => "key not served, digest unchecked".to_string(),
                };
                Some(ShownDs {
                    tag,
                    algorithm,
                    digest_type,
                    note,
                })
            })
            .collect();
        let mut publish = Vec::new();
        let mut drop = Vec::new();
        for (i, e) in expect.iter().enumerate() {
            let same_key = |rd: &&Vec<u8>| {
                ds_header(rd)
                    .is_some_and(|(tag, alg, _)| tag == e.key.tag && alg == e.key.algorithm)
            };
            let ok = match e.want {
                Want::Present => match &e.dnskey {
                    Some(dnskey) => rds
                        .iter()
                        .filter(same_key)
                        .filter(|rd| ds_header(rd).is_some_and(|(_, _, dt)| type_ok(dt)))
                        .any(|rd| ds_matches(owner_wire, rd, dnskey)),
                    None => false,
                },
                Want::Absent => !rds.iter().any(|rd| same_key(&rd)),
            };
            if ok {
                agree[i] += 1;
            } else if e.want == Want::Present {
                publish.push(e.key.tag.to_string());
            } else {
                drop.push(e.key.tag.to_string());
            }
        }
        let waiting = if publish.is_empty() && drop.is_empty() {
            None
        } else {
            let has = if shown.is_empty() {
                "has no DS".to_string()
            } else {
                let s: Vec<String> = shown.iter().map(|d| d.to_string()).collect();
                format!("has DS {}", and_list(&s))
            };
            let mut w = Vec::new();
            if !publish.is_empty() {
                w.push(format!("publish {}", and_list(&publish)));
            }
            if !drop.is_empty() {
                w.push(format!("drop {}", and_list(&drop)));
            }
            Some(format!(
                "parent {agent} {has}; waiting for it to {}",
                w.join(" and ")
            ))
        };
        agents.push(AgentReport {
            agent: *agent,
            ds: Some(shown),
            error: None,
            waiting,
        });
    }
    let mut seen = Vec::new();
    let mut gone = Vec::new();
    for (i, e) in expect.iter().enumerate() {
        if !answers.is_empty() && agree[i] == answers.len() {
            match e.want {
                Want::Present => seen.push(e.key.tag),
                Want::Absent => gone.push(e.key.tag),
            }
        }
    }
    CheckDsStatus {
        checked_at: now,
        next_check: None,
        expected: wanted.to_vec(),
        agents,
        seen,
        gone,
    }
}

/// A query ID from the system's random source (RFC 5452 §9.2).
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

/// Checks an answer to our DS query and takes the DS RDATAs out of it.
fn read_answer(pkt: &[u8], id: u16, zone: &Name) -> Answer {
    let msg = match Message::parse(pkt) {
        Ok(m) => m,
        Err(e) => return Answer::Failed(e.to_string()),
    };
    if msg.header.id != id || !msg.header.qr() {
        return Answer::Failed("the answer does not match the query".into());
    }
    match msg.question() {
        Some(q) if q.name == *zone && q.qtype == t::DS && q.qclass == class::IN => {}
        _ => return Answer::Failed("the answer does not echo the question".into()),
    }
    if msg.rcode() != rcode::NOERROR {
        return Answer::Failed(rcode::name(msg.rcode()));
    }
    if !msg.header.aa() && !msg.header.ad() {
        return Answer::Failed(
            "the answer is neither authoritative (AA) nor validated (AD): a parental agent is \
             a server of the parent zone or a validating resolver"
                .into(),
        );
    }
    Answer::Ds(
        msg.answers
            .iter()
            .filter(|r| r.owner == *zone && r.rtype == t::DS && r.class == class::IN)
            .map(|r| r.rdata.clone())
            .collect(),
    )
}

/// Asks `agent` for the DS RRset of `zone`: over UDP (EDNS, [`EDNS_UDP_SIZE`]; sent up to
/// three times), over TCP when the answer is truncated; each within [`QUERY_TIMEOUT`].
pub async fn query_ds(agent: SocketAddr, zone: &Name) -> Answer {
    let id = random_id();
    let edns = Edns {
        udp_size: EDNS_UDP_SIZE,
        ..Edns::default()
    };
    let mut h = Header { id, flags: 0 };
    h.set_opcode(opcode::QUERY);
    // RD for a validating resolver as agent (an authoritative server ignores it); AD asks it
    // to say whether it validated the answer (RFC 6840 §5.7)
    h.set_rd(true);
    h.set_ad(true);
    let mut w = MessageWriter::new(h, MAX_MESSAGE_LEN);
    // cannot fail: one name in an empty 64 KiB message
    let _ = w.question(zone, t::DS, class::IN);
    w.opt(&edns);
    let req = w.finish();
    match udp(agent, &req, id, zone).await {
        Ok(Some(a)) => a,
        Ok(None) => tcp(agent, &req, id, zone).await,
        Err(e) => Answer::Failed(e),
    }
}

/// `Ok(None)`: truncated, ask over TCP.
async fn udp(
    agent: SocketAddr,
    req: &[u8],
    id: u16,
    zone: &Name,
) -> Result<Option<Answer>, String> {
    let local: SocketAddr = if agent.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let sock = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("UDP socket: {e}"))?;
    sock.connect(agent)
        .await
        .map_err(|e| format!("UDP connect: {e}"))?;
    const TRIES: u32 = 3;
    let deadline = Instant::now() + QUERY_TIMEOUT;
    let mut buf = vec![0u8; MAX_MESSAGE_LEN];
    for attempt in 1..=TRIES {
        sock.send(req).await.map_err(|e| format!("UDP send: {e}"))?;
        let until = if attempt == TRIES {
            deadline
        } else {
            deadline.min(Instant::now() + QUERY_TIMEOUT / TRIES)
        };
        loop {
            match timeout_at(until, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(format!("UDP: {e}")),
                Ok(Ok(n)) => {
                    let pkt = &buf[..n];
                    match Header::peek(pkt) {
                        Some(h) if h.id == id && h.qr() => {
                            if h.tc() {
                                return Ok(None);
                            }
                            return Ok(Some(read_answer(pkt, id, zone)));
                        }
                        // another ID: a late answer to an earlier try, or spoofing
                        _ => continue,
                    }
                }
            }
        }
    }
    Err(format!("no answer within {QUERY_TIMEOUT:?}"))
}

async fn tcp(agent: SocketAddr, req: &[u8], id: u16, zone: &Name) -> Answer {
    let deadline = Instant::now() + QUERY_TIMEOUT;
    let exchange = async {
        let mut s = TcpStream::connect(agent)
            .await
            .map_err(|e| format!("TCP connect: {e}"))?;
        let mut out = Vec::with_capacity(req.len() + 2);
        out.extend_from_slice(&(req.len() as u16).to_be_bytes());
        out.extend_from_slice(req);
        s.write_all(&out).await.map_err(|e| format!("TCP: {e}"))?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len)
            .await
            .map_err(|e| format!("TCP: {e}"))?;
        let mut pkt = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut pkt)
            .await
            .map_err(|e| format!("TCP: {e}"))?;
        Ok::<_, String>(pkt)
    };
    match timeout_at(deadline, exchange).await {
        Err(_) => Answer::Failed(format!("no answer over TCP within {QUERY_TIMEOUT:?}")),
        Ok(Err(e)) => Answer::Failed(e),
        Ok(Ok(pkt)) => read_answer(&pkt, id, zone),
    }
}

/// Asks every agent at once; answers in the agents' order.
pub async fn query_all(agents: &[SocketAddr], zone: &Name) -> Vec<(SocketAddr, Answer)> {
    let handles: Vec<_> = agents
        .iter()
        .map(|a| {
            let (a, z) = (*a, zone.clone());
            (a, tokio::spawn(async move { query_ds(a, &z).await }))
        })
        .collect();
    let mut out = Vec::with_capacity(handles.len());
    for (a, h) in handles {
        let ans = h
            .await
            .unwrap_or_else(|e| Answer::Failed(format!("query task failed: {e}")));
        out.push((a, ans));
    }
    out
}

/// The zone task's checkds state: when to poll next, the last report, what was logged.
#[derive(Debug, Default)]
pub struct Tracker {
    next_at: Option<u64>,
    last: Option<CheckDsStatus>,
    logged: Option<(Vec<String>, u64)>,
}

impl Tracker {
    /// When the agents are to be asked next: `None` without agents or when no DS change is
    /// awaited; at once when one starts being awaited and no poll is scheduled.
    pub fn due(&self, agents: &[SocketAddr], st: Option<&ZoneKeyState>) -> Option<u64> {
        let st = st?;
        if agents.is_empty() || expectations(st, &[]).is_empty() {
            return None;
        }
        Some(self.next_at.unwrap_or(0))
    }

    /// The last report, with the next poll time.
    pub fn status(&self, due: Option<u64>) -> Option<CheckDsStatus> {
        self.last.clone().map(|mut s| {
            s.next_check = due;
            s
        })
    }

    /// The sentences for `waiting_for` while a DS change is awaited.
    pub fn waiting(&self, due: Option<u64>) -> Vec<String> {
        match (&self.last, due) {
            (Some(s), Some(_)) => s.waiting(),
            _ => Vec::new(),
        }
    }

    /// One poll: asks every agent for the DS RRset of `origin`, compares with `st` (the
    /// DNSKEYs as served in `dnskeys`), logs what changed, schedules the next poll. Returns
    /// the keys seen published and seen gone at every agent: the caller applies them as
    /// `ds-seen` / `ds-gone`.
    pub async fn poll(
        &mut self,
        origin: &Name,
        agents: &[SocketAddr],
        st: &ZoneKeyState,
        dnskeys: &[Vec<u8>],
        policy: &Policy,
        now: u64,
    ) -> (Vec<u16>, Vec<u16>) {
        let zone = origin.to_string();
        let expect = expectations(st, dnskeys);
        let answers = query_all(agents, origin).await;
        let known: Vec<(KeyRef, Option<Vec<u8>>)> = st
            .keys
            .iter()
            .map(|k| {
                let d = dnskeys
                    .iter()
                    .find(|d| d.len() > 4 && d[3] == k.key.algorithm && key_tag(d) == k.key.tag)
                    .cloned();
                (k.key, d)
            })
            .collect();
        let wanted: Vec<u16> = crate::kasp::plan(st)
            .want_ds
            .iter()
            .map(|k| k.tag)
            .collect();
        let report = compare(
            &origin.canonical_wire(),
            &expect,
            &wanted,
            &known,
            &answers,
            &policy.cds_digest_types,
            now,
        );
        for a in &report.agents {
            match (&a.ds, &a.error) {
                (Some(ds), _) => {
                    let d: Vec<String> = ds.iter().map(|d| d.to_string()).collect();
                    tracing::debug!(zone = %zone, agent = %a.agent, ds = %d.join(", "), "checkds");
                }
                (None, Some(e)) => {
                    tracing::debug!(zone = %zone, agent = %a.agent, error = %e, "checkds query failed")
                }
                _ => {}
            }
        }
        let waiting = report.waiting();
        let repeat = match &self.logged {
            Some((w, at)) => *w != waiting || now >= at.saturating_add(LOG_REPEAT),
            None => true,
        };
        if repeat && !waiting.is_empty() {
            for w in &waiting {
                tracing::info!(zone = %zone, "checkds: {w}");
            }
        }
        if repeat {
            self.logged = Some((waiting, now));
        }
        for t in &report.seen {
            tracing::info!(zone = %zone, "checkds: every parental agent publishes the DS of key {t}");
        }
        for t in &report.gone {
            tracing::info!(zone = %zone, "checkds: no parental agent publishes the DS of key {t} any more");
        }
        let out = (report.seen.clone(), report.gone.clone());
        self.last = Some(report);
        self.next_at = Some(now.saturating_add(poll_interval(policy)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kasp::{KeyEntry, Record};
    use crate::keystore::KeyRole;

    fn owner() -> Vec<u8> {
        Name::parse("child.test.", None).unwrap().canonical_wire()
    }

    /// A DNSKEY RDATA (KSK flags, protocol 3, `alg`) with some key bytes; its tag.
    fn dnskey(alg: u8, seed: u8) -> (Vec<u8>, u16) {
        let mut rd = vec![1, 1, 3, alg];
        rd.extend((0..64).map(|i: u8| i.wrapping_mul(seed).wrapping_add(seed)));
        let tag = key_tag(&rd);
        (rd, tag)
    }

    fn agent(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    struct Fixture {
        old: (Vec<u8>, KeyRef),
        new: (Vec<u8>, KeyRef),
    }

    fn fixture() -> Fixture {
        let (a, ta) = dnskey(13, 3);
        let (b, tb) = dnskey(13, 7);
        assert_ne!(ta, tb);
        Fixture {
            old: (
                a,
                KeyRef {
                    algorithm: 13,
                    tag: ta,
                },
            ),
            new: (
                b,
                KeyRef {
                    algorithm: 13,
                    tag: tb,
                },
            ),
        }
    }

    fn ds(f: &(Vec<u8>, KeyRef), dt: u8) -> Vec<u8> {
        ds_rdata(&owner(), &f.0, dt).unwrap()
    }

    type Known = (KeyRef, Option<Vec<u8>>);

    /// A KSK rollover at the DS swap: the new DS asked for, the old asked away.
    fn swap(f: &Fixture) -> (Vec<Expectation>, Vec<Known>) {
        let expect = vec![
            Expectation {
                key: f.new.1,
                want: Want::Present,
                dnskey: Some(f.new.0.clone()),
            },
            Expectation {
                key: f.old.1,
                want: Want::Absent,
                dnskey: Some(f.old.0.clone()),
            },
        ];
        let known = vec![
            (f.old.1, Some(f.old.0.clone())),
            (f.new.1, Some(f.new.0.clone())),
        ];
        (expect, known)
    }

    #[test]
    fn every_agent_must_show_the_change() {
        let f = fixture();
        let (expect, known) = swap(&f);
        let wanted = [f.new.1.tag];
        // one agent already switched, the other still has the old DS only
        let answers = vec![
            (agent(1), Answer::Ds(vec![ds(&f.new, 2)])),
            (agent(2), Answer::Ds(vec![ds(&f.old, 2)])),
        ];
        let r = compare(&owner(), &expect, &wanted, &known, &answers, &[2, 4], 100);
        assert!(r.seen.is_empty() && r.gone.is_empty(), "{r:?}");
        let w = r.waiting();
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(
            w[0],
            format!(
                "parent 127.0.0.1:2 has DS {}/13/2; waiting for it to publish {} and drop {}",
                f.old.1.tag, f.new.1.tag, f.old.1.tag
            )
        );
        // both switched: seen and gone at once
        let answers = vec![
            (agent(1), Answer::Ds(vec![ds(&f.new, 2)])),
            (agent(2), Answer::Ds(vec![ds(&f.new, 4), ds(&f.new, 2)])),
        ];
        let r = compare(&owner(), &expect, &wanted, &known, &answers, &[2, 4], 100);
        assert_eq!(r.seen, vec![f.new.1.tag]);
        assert_eq!(r.gone, vec![f.old.1.tag]);
        assert!(r.waiting().is_empty(), "{r:?}");
    }

    #[test]
    fn a_stale_ds_holds_only_its_own_removal() {
        let f = fixture();
        let (expect, known) = swap(&f);
        let answers = vec![(agent(1), Answer::Ds(vec![ds(&f.old, 2), ds(&f.new, 2)]))];
        let r = compare(
            &owner(),
            &expect,
            &[f.new.1.tag],
            &known,
            &answers,
            &[2, 4],
            5,
        );
        assert_eq!(r.seen, vec![f.new.1.tag]);
        assert!(r.gone.is_empty());
        assert_eq!(
            r.waiting(),
            vec![format!(
                "parent 127.0.0.1:1 has DS {}/13/2 and {}/13/2; waiting for it to drop {}",
                f.old.1.tag, f.new.1.tag, f.old.1.tag
            )]
        );
        let shown = r.agents[0].ds.as_ref().unwrap();
        assert!(shown.iter().all(|d| d.note == "ok"), "{shown:?}");
    }

    #[test]
    fn a_wrong_digest_is_not_seen_but_still_blocks_removal() {
        let f = fixture();
        let (expect, known) = swap(&f);
        let mut bad_new = ds(&f.new, 2);
        let last = bad_new.len() - 1;
        bad_new[last] ^= 1;
        let mut bad_old = ds(&f.old, 2);
        bad_old[last] ^= 1;
        let answers = vec![(agent(1), Answer::Ds(vec![bad_new, bad_old]))];
        let r = compare(
            &owner(),
            &expect,
            &[f.new.1.tag],
            &known,
            &answers,
            &[2, 4],
            5,
        );
        assert!(r.seen.is_empty() && r.gone.is_empty(), "{r:?}");
        let w = r.waiting();
        assert!(
            w[0].contains(&format!("wrong digest for key {}", f.new.1.tag))
                && w[0].contains(&format!("publish {}", f.new.1.tag))
                && w[0].contains(&format!("drop {}", f.old.1.tag)),
            "{w:?}"
        );
        // a DS of another algorithm with the same tag is not the key's
        let mut other_alg = ds(&f.old, 2);
        other_alg[2] = 8;
        let answers = vec![(agent(1), Answer::Ds(vec![ds(&f.new, 2), other_alg]))];
        let r = compare(
            &owner(),
            &expect,
            &[f.new.1.tag],
            &known,
            &answers,
            &[2, 4],
            5,
        );
        assert_eq!(r.gone, vec![f.old.1.tag]);
        assert!(r.agents[0].ds.as_ref().unwrap()[1].note == "unknown key");
    }

    #[test]
    fn only_the_digest_types_of_the_policy_count() {
        let f = fixture();
        let (expect, known) = swap(&f);
        // the parent made a SHA-1 DS of the new key; the policy asks for SHA-256
        let answers = vec![(agent(1), Answer::Ds(vec![ds(&f.new, 1)]))];
        let r = compare(&owner(), &expect, &[f.new.1.tag], &known, &answers, &[2], 5);
        assert!(r.seen.is_empty(), "{r:?}");
        assert_eq!(
            r.agents[0].ds.as_ref().unwrap()[0].note,
            "digest type 1 not in cds-digest-types"
        );
        assert!(r.waiting()[0].contains(&format!("publish {}", f.new.1.tag)));
        // no CDS digest types in the policy: any correct digest counts
        let r = compare(&owner(), &expect, &[f.new.1.tag], &known, &answers, &[], 5);
        assert_eq!(r.seen, vec![f.new.1.tag]);
        // an old DS of any digest type still has to go
        let answers = vec![(agent(1), Answer::Ds(vec![ds(&f.new, 2), ds(&f.old, 1)]))];
        let r = compare(&owner(), &expect, &[f.new.1.tag], &known, &answers, &[2], 5);
        assert_eq!(r.seen, vec![f.new.1.tag]);
        assert!(r.gone.is_empty(), "{r:?}");
    }

    #[test]
    fn failures_conclude_nothing_and_are_reported() {
        let f = fixture();
        let (expect, known) = swap(&f);
        let answers = vec![
            (agent(1), Answer::Ds(vec![ds(&f.new, 2)])),
            (agent(2), Answer::Failed("SERVFAIL".into())),
        ];
        let r = compare(
            &owner(),
            &expect,
            &[f.new.1.tag],
            &known,
            &answers,
            &[2, 4],
            5,
        );
        assert!(r.seen.is_empty() && r.gone.is_empty(), "{r:?}");
        let w = r.waiting();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("127.0.0.1:2 did not answer") && w[0].contains("SERVFAIL"));
        // no agents at all: nothing is concluded either
        let r = compare(&owner(), &expect, &[f.new.1.tag], &known, &[], &[2, 4], 5);
        assert!(r.seen.is_empty() && r.gone.is_empty());
        // a DS asked for whose DNSKEY is not served cannot be checked, so it is not seen
        let mut e = expect.clone();
        e[0].dnskey = None;
        let answers = vec![(agent(1), Answer::Ds(vec![ds(&f.new, 2)]))];
        let r = compare(&owner(), &e, &[f.new.1.tag], &known, &answers, &[2, 4], 5);
        assert!(r.seen.is_empty(), "{r:?}");
    }

    #[test]
    fn nodata_means_gone_and_not_seen() {
        let f = fixture();
        let (expect, known) = swap(&f);
        let answers = vec![(agent(1), Answer::Ds(vec![]))];
        let r = compare(
            &owner(),
            &expect,
            &[f.new.1.tag],
            &known,
            &answers,
            &[2, 4],
            5,
        );
        assert!(r.seen.is_empty());
        assert_eq!(r.gone, vec![f.old.1.tag]);
        assert_eq!(
            r.waiting(),
            vec![format!(
                "parent 127.0.0.1:1 has no DS; waiting for it to publish {}",
                f.new.1.tag
            )]
        );
    }

    #[test]
    fn expectations_follow_the_ds_states() {
        let f = fixture();
        let mut st = ZoneKeyState::new();
        let mut old = KeyEntry::new(f.old.1, KeyRole::Ksk, "files", 0);
        old.ds = Some(Record::new(RecordState::Unretentive, 10));
        let mut new = KeyEntry::new(f.new.1, KeyRole::Ksk, "files", 0);
        new.ds = Some(Record::new(RecordState::Rumoured, 10));
        st.keys = vec![old, new];
        let e = expectations(&st, std::slice::from_ref(&f.new.0));
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].key, e[0].want, e[0].dnskey.is_none()),
            (f.old.1, Want::Absent, true)
        );
        assert_eq!(
            (e[1].key, e[1].want, e[1].dnskey.clone()),
            (f.new.1, Want::Present, Some(f.new.0.clone()))
        );
        // once observed, nothing is awaited
        st.keys[0].ds_gone = Some(11);
        st.keys[1].ds_seen = Some(11);
        assert!(expectations(&st, std::slice::from_ref(&f.new.0)).is_empty());
        // omnipresent and hidden DS are not polled for
        st.keys[1].ds_seen = None;
        st.keys[1].ds = Some(Record::new(RecordState::Omnipresent, 10));
        assert!(expectations(&st, &[]).is_empty());
    }

    #[test]
    fn without_agents_or_awaited_ds_nothing_is_polled() {
        let f = fixture();
        let mut st = ZoneKeyState::new();
        let mut k = KeyEntry::new(f.new.1, KeyRole::Csk, "files", 0);
        k.ds = Some(Record::new(RecordState::Rumoured, 10));
        st.keys = vec![k];
        let t = Tracker::default();
        // no parental agents: ds-seen / ds-gone stay the only way, nothing is scheduled
        assert_eq!(t.due(&[], Some(&st)), None);
        assert_eq!(t.due(&[agent(1)], None), None);
        // a DS awaited: at once, the first time
        assert_eq!(t.due(&[agent(1)], Some(&st)), Some(0));
        assert!(t.waiting(Some(0)).is_empty() && t.status(Some(0)).is_none());
        // seen: nothing awaited any more
        st.keys[0].ds_seen = Some(11);
        assert_eq!(t.due(&[agent(1)], Some(&st)), None);
    }

    #[test]
    fn poll_interval_follows_the_parent_propagation_delay() {
        let mut p = Policy::default();
        assert_eq!(poll_interval(&p), 3600);
        p.parent_propagation_delay = 2;
        assert_eq!(poll_interval(&p), 2);
        p.parent_propagation_delay = 0;
        assert_eq!(poll_interval(&p), CHECKDS_MIN_INTERVAL);
        p.parent_propagation_delay = 86400;
        assert_eq!(poll_interval(&p), CHECKDS_MAX_INTERVAL);
    }

    #[test]
    fn answers_are_checked() {
        use crate::dns::message::{MessageWriter, Section};
        let zone = Name::parse("child.test.", None).unwrap();
        let f = fixture();
        let build_ad = |id: u16, aa: bool, ad: bool, rc: u16, qname: &Name| {
            let mut h = Header { id, flags: 0 };
            h.set_qr(true);
            h.set_aa(aa);
            h.set_ad(ad);
            h.set_rcode(rc);
            let mut w = MessageWriter::new(h, MAX_MESSAGE_LEN);
            w.question(qname, t::DS, class::IN).unwrap();
            w.record(Section::Answer, &zone, t::DS, class::IN, 3, &ds(&f.new, 2))
                .unwrap();
            w.finish()
        };
        let build = |id: u16, aa: bool, rc: u16, qname: &Name| build_ad(id, aa, false, rc, qname);
        // a validating resolver's answer: AD without AA
        assert_eq!(
            read_answer(&build_ad(7, false, true, 0, &zone), 7, &zone),
            Answer::Ds(vec![ds(&f.new, 2)])
        );
        assert_eq!(
            read_answer(&build(7, true, 0, &zone), 7, &zone),
            Answer::Ds(vec![ds(&f.new, 2)])
        );
        assert!(matches!(
            read_answer(&build(8, true, 0, &zone), 7, &zone),
            Answer::Failed(_)
        ));
        assert!(
            matches!(read_answer(&build(7, false, 0, &zone), 7, &zone), Answer::Failed(e) if e.contains("authoritative"))
        );
        assert!(
            matches!(read_answer(&build(7, true, rcode::SERVFAIL, &zone), 7, &zone), Answer::Failed(e) if e == "SERVFAIL")
        );
        let other = Name::parse("other.test.", None).unwrap();
        assert!(matches!(
            read_answer(&build(7, true, 0, &other), 7, &zone),
            Answer::Failed(_)
        ));
        assert!(matches!(
            read_answer(&[1, 2, 3], 7, &zone),
            Answer::Failed(_)
        ));
    }
}
