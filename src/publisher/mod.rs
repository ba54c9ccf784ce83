//! The publisher: signet's authoritative server for the signed zones.
//!
//! It answers queries (RFC 1034 §4.3.2, RFC 4035 §3.1, RFC 5155 §7.2: [`answer`]), serves
//! AXFR and IXFR to the secondaries (RFC 5936, RFC 1995: [`xfr`]), sends NOTIFY when a new serial
//! is published (RFC 1996: [`notify`]), and accepts NOTIFY for the zones it serves, handing them
//! to the loader through a channel. UDP and TCP listeners live in [`server`].
//!
//! ```text
//!   zone actor ── publish(Arc<Served>) ──▶ ArcSwap<zones> ◀── load() ── every query/transfer
//!              ── notify(origin, secondaries, key) ──▶ spawned task: NOTIFY, retries, log
//!   loader     ◀── mpsc<NotifyIn> ── NOTIFY in (zone known, allow-notify ACL passed)
//! ```
//!
//! Queries never wait for signing: a published zone is an immutable `Arc<Served>` behind an
//! [`arc_swap::ArcSwap`]; publishing swaps the whole map in one step, so a query or a transfer
//! sees either the old version or the new one, never a mix, and a transfer that started on the
//! old version finishes on it.
//!
//! Request handling ([`Publisher::handle`]), the same for UDP and TCP:
//!
//! | request | answer |
//! |---|---|
//! | shorter than a header, or QR set | dropped (never answer a response: no loops) |
//! | malformed (bad counts, compression loop, trailing bytes…) | FORMERR |
//! | EDNS version > 0 | BADVERS (RFC 6891 §6.1.3) |
//! | bad TSIG | NOTAUTH + TSIG error (BADKEY/BADSIG/BADTIME/BADTRUNC), FORMERR for a malformed MAC |
//! | opcode QUERY, class IN, name in a served zone | the answer; REFUSED outside our zones; REFUSED for other classes |
//! | QUERY AXFR/IXFR | ACL (allow-transfer), then: TCP → transfer (IXFR: incremental from the served version's history when it covers the client's serial, else AXFR-style); UDP AXFR → FORMERR (as BIND: "attempted AXFR over UDP"); UDP IXFR → the SOA only (RFC 1995 §2: "use TCP", as BIND 9) |
//! | NOTIFY | NOERROR if the zone is served and allow-notify passes (and the loader is told), else REFUSED |
//! | UPDATE | RFC 2136 on the apex overlay, for zones with `update` ([`update`]: TSIG with a key of `update.keys`, apex only, configured types); answered once the zone task has published the result |
//! | other opcodes | NOTIMP |
//!
//! A TSIG-signed request gets a signed answer, and every message of a transfer is signed.

pub mod answer;
pub mod notify;
pub mod server;
pub mod update;
pub mod xfr;

pub use server::{serve, Server};

use crate::auth::tsig::{self, ResponseSigner, Verified};
use crate::auth::{allowed, Keyring};
use crate::clock::Clock;
use crate::config::AclEntry;
use crate::dns::message::{
    opcode, rcode, Edns, Header, Message, MessageWriter, Question, Section, UDP_LIMIT_NO_EDNS,
};
use crate::dns::name::Name;
use crate::dns::rtype::{class, t};
use crate::journal::History;
use crate::zone::data::{soa_field, Zone};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Our EDNS UDP payload size (DNS flag day 2020): answers over UDP are cut at
/// min(requestor's size, this) and get TC when the answer does not fit. Larger UDP answers
/// fragment, and fragments are the vector of cache-poisoning and amplification attacks.
pub const EDNS_UDP_SIZE: u16 = 1232;

/// Whether a request came over UDP or TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// A zone as served: the signed zone and who may transfer it or NOTIFY about it.
#[derive(Debug)]
pub struct Served {
    pub zone: Zone,
    /// Who may AXFR/IXFR this zone (any entry matches; empty: nobody).
    pub allow_transfer: Vec<AclEntry>,
    /// Who may send NOTIFY for this zone (the loader's primaries and `allow-notify`; empty:
    /// nobody).
    pub allow_notify: Vec<AclEntry>,
    /// The journaled changesets leading to this version, for incremental IXFR out (RFC 1995);
    /// without it every IXFR that is not up to date is answered AXFR-style.
    pub history: Option<History>,
    /// The NSEC3 parameters, when the zone is NSEC3-signed.
    nsec3: Option<Nsec3Params>,
}

/// How names are hashed for the NSEC3 chain (from NSEC3PARAM). The chain itself needs no index:
/// its owners are `<base32hex(hash)>.<origin>`, one label of equal length each, so the zone's
/// canonical order among them is hash order (base32hex keeps the order of the bits) and the
/// answer code finds a hash's NSEC3 by a lookup or a backwards range walk in the node map.
/// Publishing a version therefore costs nothing proportional to the zone.
#[derive(Debug)]
struct Nsec3Params {
    iterations: u16,
    salt: Vec<u8>,
}

impl Served {
    /// Prepares a signed (or unsigned) zone for serving: finds the NSEC3 parameters (the chain
    /// needs no index, see [`Nsec3Params`]). Costs nothing proportional to the zone.
    pub fn new(zone: Zone, allow_transfer: Vec<AclEntry>) -> Served {
        let nsec3 = Self::index_nsec3(&zone);
        Served {
            zone,
            allow_transfer,
            allow_notify: Vec::new(),
            history: None,
            nsec3,
        }
    }

    /// Sets the IXFR history: the zone task passes `journal.history()` after appending the
    /// changeset that made this version. Only a history whose newest serial is this version's
    /// is used for incremental answers.
    pub fn with_history(mut self, history: History) -> Served {
        self.history = Some(history);
        self
    }

    /// Sets the NOTIFY ACL.
    pub fn with_allow_notify(mut self, acl: Vec<AclEntry>) -> Served {
        self.allow_notify = acl;
        self
    }

    pub fn origin(&self) -> &Name {
        &self.zone.origin
    }

    pub fn serial(&self) -> Option<u32> {
        self.zone.serial()
    }

    fn index_nsec3(zone: &Zone) -> Option<Nsec3Params> {
        let param = zone
            .nodes
            .get(&zone.origin)?
            .get(t::NSEC3PARAM)?
            .rdatas
            .first()?;
        // hash alg (1), flags (1), iterations (2), salt length (1), salt
        let iterations = u16::from_be_bytes([*param.get(2)?, *param.get(3)?]);
        let salt_len = *param.get(4)? as usize;
        let salt = param.get(5..5 + salt_len)?.to_vec();
        Some(Nsec3Params { iterations, salt })
    }
}

/// A NOTIFY that passed the checks, for the loader (issue 3): refresh `zone` now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyIn {
    pub zone: Name,
    pub source: SocketAddr,
    /// The serial in the NOTIFY's answer section, if any (a hint only, RFC 1996 §3.7).
    pub serial: Option<u32>,
    /// The TSIG key that signed it.
    pub key: Option<Name>,
}

/// What to send back for one request.
pub enum Reply {
    /// Nothing (not a request we answer).
    Drop,
    /// One message.
    One(Vec<u8>),
    /// A zone transfer: many messages, written by [`xfr::send`] (TCP only).
    Transfer(xfr::Transfer),
    /// One message, once another task has done its part (an UPDATE waits for its zone task).
    Later(std::pin::Pin<Box<dyn std::future::Future<Output = Vec<u8>> + Send>>),
}

/// Who may NOTIFY a zone we follow (set by the zone's task, whether or not the zone is served
/// yet): the source must match `acl` AND, when `key` is set, the NOTIFY must be signed with
/// that TSIG key (issue 3: "accepted only from the primaries or allow-notify, and with the
/// TSIG key when one is configured").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyPolicy {
    pub acl: Vec<AclEntry>,
    pub key: Option<Name>,
}

/// The served zones, the TSIG keys and the NOTIFY hook. Share it as `Arc<Publisher>`.
pub struct Publisher {
    zones: ArcSwap<HashMap<Name, Arc<Served>>>,
    notify_policies: ArcSwap<HashMap<Name, NotifyPolicy>>,
    keys: ArcSwap<Keyring>,
    clock: Arc<dyn Clock>,
    notify_hook: Option<mpsc::Sender<NotifyIn>>,
    /// Zones that accept UPDATE, and their zone tasks ([`update::UpdateRoute`]).
    update_routes: ArcSwap<HashMap<Name, update::UpdateRoute>>,
}

impl Publisher {
    pub fn new(clock: Arc<dyn Clock>) -> Publisher {
        Publisher {
            zones: ArcSwap::from_pointee(HashMap::new()),
            notify_policies: ArcSwap::from_pointee(HashMap::new()),
            keys: ArcSwap::from_pointee(Keyring::new()),
            clock,
            notify_hook: None,
            update_routes: ArcSwap::from_pointee(HashMap::new()),
        }
    }

    /// Where accepted NOTIFYs go (a bounded channel; when it is full the NOTIFY is still
    /// answered and dropped: a refresh is already pending).
    pub fn with_notify_hook(mut self, tx: mpsc::Sender<NotifyIn>) -> Publisher {
        self.notify_hook = Some(tx);
        self
    }

    /// Sets (or with `None` removes) who may NOTIFY `origin`; see [`NotifyPolicy`]. Without a
    /// policy, the served zone's `allow_notify` decides.
    pub fn set_notify_policy(&self, origin: &Name, policy: Option<NotifyPolicy>) {
        self.notify_policies.rcu(|m| {
            let mut m = HashMap::clone(m);
            match &policy {
                Some(p) => {
                    m.insert(origin.clone(), p.clone());
                }
                None => {
                    m.remove(origin);
                }
            }
            m
        });
    }

    /// Sets (or with `None` removes) where `origin`'s UPDATEs go and which keys may send them.
    pub fn set_update_route(&self, origin: &Name, route: Option<update::UpdateRoute>) {
        self.update_routes.rcu(|m| {
            let mut m = HashMap::clone(m);
            match &route {
                Some(r) => {
                    m.insert(origin.clone(), r.clone());
                }
                None => {
                    m.remove(origin);
                }
            }
            m
        });
    }

    /// Replaces the TSIG keys (configuration reload).
    pub fn set_keys(&self, keys: Keyring) {
        self.keys.store(Arc::new(keys));
    }

    pub fn keys(&self) -> Arc<Keyring> {
        self.keys.load_full()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Serves `served` from now on, replacing the previous version of its zone atomically.
    pub fn publish(&self, served: Arc<Served>) {
        let origin = served.zone.origin.clone();
        tracing::info!(zone = %origin, serial = ?served.serial(), "published");
        self.zones.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.insert(origin.clone(), served.clone());
            m
        });
    }

    /// Stops serving a zone; returns whether it was served.
    pub fn withdraw(&self, origin: &Name) -> bool {
        let mut was = false;
        self.zones.rcu(|m| {
            let mut m = HashMap::clone(m);
            was = m.remove(origin).is_some();
            m
        });
        if was {
            tracing::warn!(zone = %origin, "withdrawn: no longer served");
        }
        was
    }

    /// The served version of a zone.
    pub fn get(&self, origin: &Name) -> Option<Arc<Served>> {
        self.zones.load().get(origin).cloned()
    }

    /// Origins of the served zones.
    pub fn zones(&self) -> Vec<Name> {
        self.zones.load().keys().cloned().collect()
    }

    /// The zone that answers `qname`: the served zone with the longest origin containing it.
    /// For DS at a zone apex the parent zone answers if we serve it (RFC 4035 §3.1.4.1).
    pub fn find_zone(&self, qname: &Name, qtype: u16) -> Option<Arc<Served>> {
        let zones = self.zones.load();
        let mut cur = Some(qname.clone());
        let mut found: Option<Arc<Served>> = None;
        while let Some(n) = cur {
            if let Some(z) = zones.get(&n) {
                if found.is_none() {
                    found = Some(z.clone());
                    if !(qtype == t::DS && &n == qname && !n.is_root()) {
                        return found;
                    }
                } else {
                    return Some(z.clone()); // the parent of the zone, for DS
                }
            }
            cur = n.parent();
        }
        found
    }

    /// Sends NOTIFY for `origin` to every target (RFC 1996), signed with `key` if given. Runs
    /// in spawned tasks (retries: [`notify::NOTIFY_TRIES`]); returns their handle, or `None`
    /// when the zone is not served or there is no Tokio runtime.
    pub fn notify(
        &self,
        origin: &Name,
        targets: Vec<SocketAddr>,
        key: Option<Arc<crate::auth::Key>>,
    ) -> Option<tokio::task::JoinHandle<Vec<notify::Outcome>>> {
        notify::spawn(self, origin, targets, key)
    }

    // ------------------------------------------------------------------------- requests

    /// Handles one request from `src`. See the module documentation for the table of answers.
    pub fn handle(&self, buf: &[u8], src: SocketAddr, transport: Transport) -> Reply {
        let Some(h) = Header::peek(buf) else {
            return Reply::Drop;
        };
        if h.qr() {
            return Reply::Drop;
        }
        let msg = match Message::parse(buf) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(client = %src, error = %e, "FORMERR");
                return Reply::One(error_response(&h, None, rcode::FORMERR, None));
            }
        };
        let edns_out = msg.edns.as_ref().map(|e| Edns {
            udp_size: EDNS_UDP_SIZE,
            dnssec_ok: e.dnssec_ok,
            ..Edns::default()
        });
        if let Some(e) = &msg.edns {
            if e.version > 0 {
                return Reply::One(error_response(
                    &h,
                    msg.question(),
                    rcode::BADVERS,
                    edns_out.as_ref(),
                ));
            }
        }
        let now = self.clock.now();
        let keys = self.keys.load();
        let verified = match tsig::verify_request(buf, &msg, &keys, now) {
            Ok(v) => v,
            Err(f) => {
                tracing::warn!(client = %src, error = %f, "TSIG verification failed");
                let mut resp = error_response(&h, msg.question(), f.rcode(), edns_out.as_ref());
                f.append_tsig(&mut resp, now);
                return Reply::One(resp);
            }
        };
        let ctx = Request {
            msg: &msg,
            src,
            transport,
            edns_out,
            verified,
            now,
        };
        match h.opcode() {
            opcode::QUERY => self.query(&ctx),
            opcode::NOTIFY => self.notify_in(&ctx),
            opcode::UPDATE => update::request(self, &ctx, buf.len()),
            _ => Reply::One(ctx.simple(rcode::NOTIMP, false)),
        }
    }

    fn query(&self, ctx: &Request<'_>) -> Reply {
        let Some(q) = ctx.msg.question() else {
            return Reply::One(ctx.simple(rcode::FORMERR, false));
        };
        if q.qclass != class::IN {
            return Reply::One(ctx.simple(rcode::REFUSED, false));
        }
        match q.qtype {
            t::AXFR | t::IXFR => return xfr::request(self, ctx, q),
            t::OPT | t::TSIG | t::TKEY => return Reply::One(ctx.simple(rcode::FORMERR, false)),
            _ => {}
        }
        let Some(served) = self.find_zone(&q.name, q.qtype) else {
            return Reply::One(ctx.simple(rcode::REFUSED, false));
        };
        let dnssec = ctx.edns_out.as_ref().is_some_and(|e| e.dnssec_ok);
        let ans = answer::answer(&served, &q.name, q.qtype, dnssec);
        Reply::One(ctx.encode(&ans))
    }

    fn notify_in(&self, ctx: &Request<'_>) -> Reply {
        let Some(q) = ctx.msg.question() else {
            return Reply::One(ctx.simple(rcode::FORMERR, false));
        };
        let key = ctx.verified.as_ref().map(|v| v.key.name.clone());
        let ok = q.qtype == t::SOA
            && match self.notify_policies.load().get(&q.name) {
                Some(p) => {
                    allowed(&p.acl, ctx.src.ip(), key.as_ref())
                        && p.key.as_ref().is_none_or(|want| key.as_ref() == Some(want))
                }
                None => self
                    .get(&q.name)
                    .is_some_and(|s| allowed(&s.allow_notify, ctx.src.ip(), key.as_ref())),
            };
        if !ok {
            tracing::warn!(zone = %q.name, client = %ctx.src, key = ?key.as_ref().map(|k| k.to_string()),
                "NOTIFY refused (zone not served or not in allow-notify)");
            return Reply::One(ctx.simple(rcode::REFUSED, false));
        }
        let serial = ctx
            .msg
            .answers
            .iter()
            .find(|r| r.rtype == t::SOA)
            .and_then(|r| soa_field(&r.rdata, 0));
        tracing::info!(zone = %q.name, client = %ctx.src, serial = ?serial, "NOTIFY received");
        if let Some(tx) = &self.notify_hook {
            let _ = tx.try_send(NotifyIn {
                zone: q.name.clone(),
                source: ctx.src,
                serial,
                key,
            });
        }
        Reply::One(ctx.simple(rcode::NOERROR, true))
    }
}

/// A parsed, authenticated request and what its answers need.
pub struct Request<'m> {
    pub msg: &'m Message,
    pub src: SocketAddr,
    pub transport: Transport,
    /// The OPT to put in answers (requests with EDNS get EDNS back).
    pub edns_out: Option<Edns>,
    pub verified: Option<Verified>,
    pub now: u64,
}

impl Request<'_> {
    /// Size limit for one answer: 65535 over TCP; over UDP the requestor's EDNS size capped at
    /// [`EDNS_UDP_SIZE`], 512 without EDNS.
    pub fn limit(&self) -> usize {
        match self.transport {
            Transport::Tcp => crate::dns::message::MAX_MESSAGE_LEN,
            Transport::Udp => match &self.msg.edns {
                Some(e) => usize::from(e.udp_size.clamp(512, EDNS_UDP_SIZE)),
                None => UDP_LIMIT_NO_EDNS,
            },
        }
    }

    fn signer(&self) -> Option<ResponseSigner> {
        self.verified.as_ref().map(ResponseSigner::new)
    }

    /// A header-and-question answer with `rc` (signed if the request was).
    pub fn simple(&self, rc: u16, aa: bool) -> Vec<u8> {
        let ans = answer::Answer {
            rcode: rc,
            aa,
            ..Default::default()
        };
        self.encode(&ans)
    }

    /// Encodes `ans` under [`Request::limit`]: an answer or authority section that does not fit
    /// leaves only the question and sets TC; additional data that does not fit is left out.
    pub fn encode(&self, ans: &answer::Answer<'_>) -> Vec<u8> {
        let mut h = Header::response_to(&self.msg.header);
        h.set_aa(ans.aa);
        h.set_rcode(ans.rcode);
        let mut w = MessageWriter::new(h, self.limit());
        let mut signer = self.signer();
        let opt_len = self.edns_out.as_ref().map(|e| e.wire_len()).unwrap_or(0);
        let sig_len = signer.as_ref().map(|s| s.overhead()).unwrap_or(0);
        w.reserve(opt_len + sig_len);
        if let Some(q) = self.msg.question() {
            let _ = w.question(&q.name, q.qtype, q.qclass);
        }
        let after_question = w.mark();
        let mut truncated = false;
        'sections: for (sec, units) in [
            (Section::Answer, &ans.answer),
            (Section::Authority, &ans.authority),
        ] {
            for unit in units {
                for rr in unit {
                    if w.record(sec, &rr.owner, rr.rtype, class::IN, rr.ttl, &rr.rdata)
                        .is_err()
                    {
                        truncated = true;
                        break 'sections;
                    }
                }
            }
        }
        if truncated {
            w.rollback(after_question);
            let mut h = w.header();
            h.set_tc(true);
            w.set_header(h);
        } else {
            for unit in &ans.additional {
                let m = w.mark();
                let fits = unit.iter().all(|rr| {
                    w.record(
                        Section::Additional,
                        &rr.owner,
                        rr.rtype,
                        class::IN,
                        rr.ttl,
                        &rr.rdata,
                    )
                    .is_ok()
                });
                if !fits {
                    w.rollback(m);
                    break;
                }
            }
        }
        w.unreserve(opt_len + sig_len);
        finish(
            w,
            ans.rcode,
            self.edns_out.as_ref(),
            signer.as_mut(),
            self.now,
        )
    }
}

/// Adds OPT (with the extended RCODE bits) and signs.
fn finish(
    mut w: MessageWriter,
    rc: u16,
    edns: Option<&Edns>,
    signer: Option<&mut ResponseSigner>,
    now: u64,
) -> Vec<u8> {
    if let Some(e) = edns {
        let mut e = e.clone();
        e.ext_rcode = (rc >> 4) as u8;
        w.opt(&e);
    }
    let mut buf = w.finish();
    if let Some(s) = signer {
        s.sign(&mut buf, now);
    }
    buf
}

/// An error answer built from the request header alone (FORMERR, BADVERS, TSIG errors).
fn error_response(req: &Header, q: Option<&Question>, rc: u16, edns: Option<&Edns>) -> Vec<u8> {
    let mut h = Header::response_to(req);
    h.set_rcode(rc);
    let mut w = MessageWriter::new(h, crate::dns::message::MAX_MESSAGE_LEN);
    if let Some(q) = q {
        let _ = w.question(&q.name, q.qtype, q.qclass);
    }
    if rc > 15 && edns.is_none() {
        // BADVERS needs OPT to be expressed
        let e = Edns {
            udp_size: EDNS_UDP_SIZE,
            ..Edns::default()
        };
        return finish(w, rc, Some(&e), None, 0);
    }
    finish(w, rc, edns, None, 0)
}

#[cfg(test)]
mod tests;
