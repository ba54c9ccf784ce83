//! RFC 2136 dynamic UPDATE of the apex overlay, for multi-signer controllers (RFC 8901 model 2,
//! MUSIC): other signers' DNSKEYs, the combined CDS/CDNSKEY, CSYNC and (when enabled) NS.
//!
//! ```text
//!  UPDATE ─▶ [publisher, no waiting]  zone section (RFC 2136 §3.1) ─▶ TSIG with a key of the
//!            zone's `update.keys` (§3.3) ─▶ caps ─▶ prescan of both sections (§3.2.1, §3.4.1)
//!        ─▶ [zone task, one UPDATE at a time]  prerequisites on the served zone (§3.2)
//!            ─▶ policy: apex only, configured types (§3.3) ─▶ apply to a copy of the overlay
//!            (§3.4.2) ─▶ limits, key-tag hygiene ─▶ overlay.json (fsync) ─▶ sign, journal,
//!            publish, NOTIFY ─▶ answer (TSIG-signed)
//! ```
//!
//! | case | RCODE |
//! |---|---|
//! | zone section not exactly one SOA question | FORMERR |
//! | zone not served by signet (or class not IN) | NOTAUTH |
//! | zone served but without `update` | REFUSED |
//! | no TSIG, or a key not in the zone's `update.keys` | REFUSED (a bad TSIG is NOTAUTH + BADSIG/BADKEY/BADTIME, as for every request) |
//! | more than [`MAX_UPDATE_LEN`] octets or [`MAX_UPDATE_RECORDS`] records | REFUSED |
//! | a prerequisite or update owner outside the zone | NOTZONE |
//! | malformed prerequisite / update (class, TTL, RDLENGTH, meta type) | FORMERR |
//! | prerequisite "name in use" / "name not in use" unmet | NXDOMAIN / YXDOMAIN |
//! | prerequisite "RRset exists" (either form) / "RRset does not exist" unmet | NXRRSET / YXRRSET |
//! | update of a name other than the apex, or of a type not in `update.types` | REFUSED |
//! | foreign DNSKEY: not a zone key, protocol ≠ 3, an algorithm signet does not sign with, a key tag equal to another key's, above [`MAX_FOREIGN_KEYS`]; overlay above [`MAX_INJECTED_RECORDS`]; an injected CDS without its CDNSKEY or the reverse (when both RRsets exist) | REFUSED |
//! | too many UPDATEs queued for the zone, zone not loaded yet, signing or storing failed | SERVFAIL |
//! | applied, stored and published (or nothing to change) | NOERROR |
//!
//! An UPDATE is all-or-nothing: it is applied to a copy of the overlay, which replaces the
//! overlay only once it is stored; if signing the result fails, the previous overlay is put
//! back. Deletions act on the injected records only: signet's own DNSKEY/CDS/CDNSKEY come from
//! its key state and upstream's NS from upstream, and an UPDATE cannot remove them (a deletion
//! of something that is not in the overlay is not an error, RFC 2136 §3.4.2.4). Adding one of
//! signet's own DNSKEYs is accepted and changes nothing.
//!
//! The answer is sent once the zone task has stored the overlay and published the new signed
//! version (journal fsynced, NOTIFY sent), so a controller that gets NOERROR can query the new
//! DNSKEY set at once.

use super::{finish, Publisher, Reply, Request};
use crate::dns::message::{rcode, Header, MessageWriter};
use crate::dns::name::Name;
use crate::dns::record::Record;
use crate::dns::rtype::{self, class, t};
use crate::zone::data::Zone;
use crate::zone::overlay::{same_rdata, Injected, Overlay};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Largest UPDATE message accepted. MUSIC's updates carry a few DNSKEY/CDS/CDNSKEY records
/// (an RSA-4096 DNSKEY is about 530 octets); anything much larger is not a multi-signer
/// controller and would only cost parsing and memory.
pub const MAX_UPDATE_LEN: usize = 16 * 1024;

/// Most prerequisite + update records in one UPDATE: bounds the work one message causes in
/// the zone task (every record is compared with the overlay and the served apex).
pub const MAX_UPDATE_RECORDS: usize = 64;

/// Most foreign DNSKEYs in a zone. RFC 8901 setups have a handful of signers with one or two
/// ZSKs each (two during a rollover); more keys only enlarge the DNSKEY RRset every resolver
/// fetches and validates with, the cost KeyTrap (CVE-2023-50387) turned into an attack.
pub const MAX_FOREIGN_KEYS: usize = 8;

/// Most injected records of all types in a zone: bounds the apex RRsets and `overlay.json`.
pub const MAX_INJECTED_RECORDS: usize = 64;

/// UPDATEs waiting for one zone task; beyond this an UPDATE is answered SERVFAIL at once, so
/// an UPDATE flood cannot queue unbounded memory or signing work (queries never wait for
/// UPDATEs: they read the published version).
pub const UPDATE_QUEUE: usize = 16;

/// An UPDATE whose zone task has not answered after this long gets SERVFAIL (the zone task
/// may still apply it: the controller should query the state before retrying).
pub const UPDATE_ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a zone's UPDATEs go, and who may send them (set by the zone task at start).
#[derive(Debug, Clone)]
pub struct UpdateRoute {
    /// TSIG key names from `update.keys`.
    pub keys: Vec<Name>,
    pub tx: mpsc::Sender<UpdateJob>,
}

/// An authenticated, prescanned UPDATE for the zone task.
#[derive(Debug)]
pub struct UpdateJob {
    pub zone: Name,
    /// The TSIG key that signed it.
    pub key: Name,
    pub source: SocketAddr,
    /// Prerequisite section (RFC 2136 §2.4).
    pub prereqs: Vec<Record>,
    /// Update section (RFC 2136 §2.5).
    pub updates: Vec<Record>,
    pub reply: oneshot::Sender<UpdateOutcome>,
}

/// The zone task's answer to an UPDATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateOutcome {
    pub rcode: u16,
    /// What happened (logged; NOERROR: the summary of the change).
    pub message: String,
}

impl UpdateOutcome {
    pub fn new(rcode: u16, message: impl Into<String>) -> UpdateOutcome {
        UpdateOutcome {
            rcode,
            message: message.into(),
        }
    }
}

/// Handles an UPDATE request (see the module documentation): the checks that need only the
/// message are made here; the rest is the zone task's, and the answer waits for it.
pub(super) fn request(p: &Publisher, ctx: &Request<'_>, len: usize) -> Reply {
    let msg = ctx.msg;
    let Some(zq) = msg.question() else {
        return Reply::One(ctx.simple(rcode::FORMERR, false));
    };
    if zq.qtype != t::SOA {
        return Reply::One(ctx.simple(rcode::FORMERR, false));
    }
    let key = ctx.verified.as_ref().map(|v| v.key.name.clone());
    let refuse = |rc: u16, why: &str| {
        tracing::warn!(zone = %zq.name, client = %ctx.src, key = ?key.as_ref().map(|k| k.to_string()),
            rcode = %rcode::name(rc), "UPDATE refused: {why}");
        Reply::One(ctx.simple(rc, false))
    };
    if zq.qclass != class::IN {
        return refuse(rcode::NOTAUTH, "class is not IN");
    }
    let route = p.update_routes.load().get(&zq.name).cloned();
    let Some(route) = route else {
        return if p.get(&zq.name).is_some() {
            refuse(rcode::REFUSED, "the zone has no `update` option")
        } else {
            refuse(rcode::NOTAUTH, "not a zone signet serves")
        };
    };
    let Some(key) = key.clone() else {
        return refuse(rcode::REFUSED, "not TSIG-signed");
    };
    if !route.keys.contains(&key) {
        return refuse(rcode::REFUSED, "TSIG key not in the zone's update.keys");
    }
    if len > MAX_UPDATE_LEN {
        return refuse(rcode::REFUSED, "message larger than MAX_UPDATE_LEN");
    }
    if msg.answers.len() + msg.authority.len() > MAX_UPDATE_RECORDS {
        return refuse(rcode::REFUSED, "more records than MAX_UPDATE_RECORDS");
    }
    if let Err((rc, why)) = prescan(&zq.name, &msg.answers, &msg.authority) {
        return refuse(rc, &why);
    }
    let (tx, rx) = oneshot::channel();
    let job = UpdateJob {
        zone: zq.name.clone(),
        key,
        source: ctx.src,
        prereqs: msg.answers.clone(),
        updates: msg.authority.clone(),
        reply: tx,
    };
    if let Err(e) = route.tx.try_send(job) {
        let why = match e {
            mpsc::error::TrySendError::Full(_) => "too many UPDATEs queued (UPDATE_QUEUE)",
            mpsc::error::TrySendError::Closed(_) => "the zone task is not running",
        };
        return refuse(rcode::SERVFAIL, why);
    }
    let header = msg.header;
    let question = zq.clone();
    let edns = ctx.edns_out.clone();
    let mut signer = ctx.signer();
    let clock = p.clock().clone();
    let src = ctx.src;
    Reply::Later(Box::pin(async move {
        let outcome = match tokio::time::timeout(UPDATE_ANSWER_TIMEOUT, rx).await {
            Ok(Ok(o)) => o,
            Ok(Err(_)) => UpdateOutcome::new(rcode::SERVFAIL, "the zone task stopped"),
            Err(_) => UpdateOutcome::new(rcode::SERVFAIL, "the zone task did not answer in time"),
        };
        if outcome.rcode == rcode::NOERROR {
            tracing::info!(zone = %question.name, client = %src, "UPDATE: {}", outcome.message);
        } else {
            tracing::warn!(zone = %question.name, client = %src, rcode = %rcode::name(outcome.rcode),
                "UPDATE refused: {}", outcome.message);
        }
        let mut h = Header::response_to(&header);
        h.set_rcode(outcome.rcode);
        let mut w = MessageWriter::new(h, crate::dns::message::MAX_MESSAGE_LEN);
        let _ = w.question(&question.name, question.qtype, question.qclass);
        finish(
            w,
            outcome.rcode,
            edns.as_ref(),
            signer.as_mut(),
            clock.now(),
        )
    }))
}

/// Meta types that can never be data (RFC 2136 §3.4.1.2: ANY, AXFR, MAILA, MAILB; and the
/// pseudo-records).
fn is_meta(rtype: u16) -> bool {
    matches!(
        rtype,
        t::AXFR | t::IXFR | 253 | 254 | t::OPT | t::TSIG | t::TKEY
    )
}

/// Format checks of RFC 2136 §3.2.1 (prerequisites) and §3.4.1 (update section prescan).
pub fn prescan(zone: &Name, prereqs: &[Record], updates: &[Record]) -> Result<(), (u16, String)> {
    for r in prereqs {
        let what = || format!("prerequisite {} {}", r.owner, rtype::type_name(r.rtype));
        if !r.owner.is_subdomain_of(zone) {
            return Err((rcode::NOTZONE, format!("{} is outside the zone", what())));
        }
        if r.ttl != 0 {
            return Err((rcode::FORMERR, format!("{}: TTL must be 0", what())));
        }
        match r.class {
            class::ANY | class::NONE => {
                if !r.rdata.is_empty() {
                    return Err((rcode::FORMERR, format!("{}: RDATA must be empty", what())));
                }
                if is_meta(r.rtype) {
                    return Err((rcode::FORMERR, format!("{}: meta type", what())));
                }
            }
            class::IN => {
                if r.rtype == t::ANY || is_meta(r.rtype) {
                    return Err((rcode::FORMERR, format!("{}: meta type", what())));
                }
            }
            other => {
                return Err((
                    rcode::FORMERR,
                    format!("{}: class {}", what(), rtype::class_name(other)),
                ))
            }
        }
    }
    for r in updates {
        let what = || format!("update {} {}", r.owner, rtype::type_name(r.rtype));
        if !r.owner.is_subdomain_of(zone) {
            return Err((rcode::NOTZONE, format!("{} is outside the zone", what())));
        }
        match r.class {
            class::IN => {
                if r.rtype == t::ANY || is_meta(r.rtype) {
                    return Err((rcode::FORMERR, format!("{}: meta type", what())));
                }
            }
            class::ANY => {
                if r.ttl != 0 || !r.rdata.is_empty() || is_meta(r.rtype) {
                    return Err((
                        rcode::FORMERR,
                        format!("{}: a deletion needs TTL 0 and no RDATA", what()),
                    ));
                }
            }
            class::NONE => {
                if r.ttl != 0 || r.rtype == t::ANY || is_meta(r.rtype) {
                    return Err((
                        rcode::FORMERR,
                        format!("{}: a record deletion needs TTL 0 and a data type", what()),
                    ));
                }
            }
            other => {
                return Err((
                    rcode::FORMERR,
                    format!("{}: class {}", what(), rtype::class_name(other)),
                ))
            }
        }
    }
    Ok(())
}

/// What the zone task knows when it evaluates an UPDATE.
pub struct EvalContext<'a> {
    /// The served signed zone (prerequisites are checked against what secondaries see).
    pub served: &'a Zone,
    /// Types `update.types` allows.
    pub types: &'a [u16],
    /// Key tags of signet's own keys (all in the key state, published or not).
    pub own_tags: &'a [u16],
    /// Algorithms signet signs with.
    pub own_algorithms: &'a [u8],
    /// signet's own DNSKEY RDATAs (adding one of them is a no-op).
    pub own_dnskeys: &'a [Vec<u8>],
    pub now: u64,
}

/// Evaluates prerequisites (RFC 2136 §3.2) against the served zone, checks the policy and
/// applies the update section (§3.4.2) to a copy of `overlay`. Returns the new overlay and a
/// summary of what changed (empty when nothing did), or the refusal.
pub fn evaluate(
    job: &UpdateJob,
    overlay: &Overlay,
    cx: &EvalContext<'_>,
) -> Result<(Overlay, Vec<String>), UpdateOutcome> {
    check_prereqs(&job.prereqs, cx.served)?;
    let apex = &job.zone;
    let refuse = |why: String| Err(UpdateOutcome::new(rcode::REFUSED, why));
    let allowed = |rt: u16| cx.types.contains(&rt);
    let mut out = overlay.clone();
    let mut changes = Vec::new();
    let key = job.key.to_string();
    let source = job.source.ip().to_string();
    for r in &job.updates {
        let tname = rtype::type_name(r.rtype);
        if &r.owner != apex {
            return refuse(format!(
                "{} {tname}: only the zone apex {apex} may be updated",
                r.owner
            ));
        }
        if r.rtype != t::ANY && !allowed(r.rtype) {
            return refuse(format!(
                "{tname} may not be updated (update.types allows {})",
                cx.types
                    .iter()
                    .map(|x| rtype::type_name(*x))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        match r.class {
            class::IN => {
                if r.rtype == t::DNSKEY {
                    if cx
                        .own_dnskeys
                        .iter()
                        .any(|k| same_rdata(t::DNSKEY, k, &r.rdata))
                    {
                        continue; // signet's own key: already there, stays under its control
                    }
                    check_foreign_key(&r.rdata, &out, cx)?;
                }
                let rec = Injected::new(r.rtype, r.ttl, &r.rdata, &key, &source, cx.now);
                let text = format!("added {tname} {}", rec.text);
                if out.add(rec) {
                    changes.push(text);
                }
            }
            class::ANY if r.rtype == t::ANY => {
                let before = out.records.len();
                out.records.retain(|x| !allowed(x.rtype));
                let n = before - out.records.len();
                if n > 0 {
                    changes.push(format!("deleted {n} injected records"));
                }
            }
            class::ANY => {
                let n = out.remove_type(r.rtype);
                if n > 0 {
                    changes.push(format!("deleted the injected {tname} RRset ({n} records)"));
                }
            }
            _ => {
                if out.remove_rr(r.rtype, &r.rdata) {
                    changes.push(format!(
                        "deleted {tname} {}",
                        crate::dns::rdata::to_text(r.rtype, &r.rdata)
                    ));
                }
            }
        }
    }
    check_cds_consistency(apex, overlay, &out, cx.served)?;
    let foreign = out.foreign_keys().count();
    if foreign > MAX_FOREIGN_KEYS {
        return refuse(format!(
            "{foreign} foreign DNSKEYs would exceed MAX_FOREIGN_KEYS ({MAX_FOREIGN_KEYS})"
        ));
    }
    if out.records.len() > MAX_INJECTED_RECORDS {
        return refuse(format!(
            "{} injected records would exceed MAX_INJECTED_RECORDS ({MAX_INJECTED_RECORDS})",
            out.records.len()
        ));
    }
    Ok((out, changes))
}

/// A foreign DNSKEY must be a zone key (RFC 4034 §2.1.1) with protocol 3 (§2.1.2), of an
/// algorithm signet signs with (else the zone would break RFC 4035 §2.2: every algorithm in the
/// DNSKEY RRset signs every RRset), and its key tag must differ from every other key's: a
/// validator tries every key with a matching tag, and colliding tags are the lever of KeyTrap
/// (CVE-2023-50387). Knot (`keytag-modulo`) and BIND (`tag-range`) avoid collisions the same way.
fn check_foreign_key(rd: &[u8], out: &Overlay, cx: &EvalContext<'_>) -> Result<(), UpdateOutcome> {
    let refuse = |why: String| Err(UpdateOutcome::new(rcode::REFUSED, why));
    if rd.len() < 5 {
        return refuse("DNSKEY without a public key".into());
    }
    let flags = u16::from_be_bytes([rd[0], rd[1]]);
    if flags & 0x0100 == 0 {
        return refuse(format!("DNSKEY flags {flags}: not a zone key"));
    }
    if rd[2] != 3 {
        return refuse(format!("DNSKEY protocol {}: must be 3", rd[2]));
    }
    let alg = rd[3];
    if !cx.own_algorithms.contains(&alg) {
        return refuse(format!(
            "DNSKEY algorithm {alg}: signet signs this zone with {:?}; all signers must use the same algorithm (RFC 8901 §8)",
            cx.own_algorithms
        ));
    }
    let tag = crate::keystore::key_tag(rd);
    if cx.own_tags.contains(&tag) {
        return refuse(format!(
            "DNSKEY key tag {tag} collides with one of signet's own keys"
        ));
    }
    if out
        .foreign_keys()
        .any(|k| k.key_tag() == Some(tag) && !k.is(t::DNSKEY, rd))
    {
        return refuse(format!(
            "DNSKEY key tag {tag} collides with another foreign key"
        ));
    }
    Ok(())
}

/// After the update, the CDS and CDNSKEY RRsets (signet's own united with the injected ones)
/// must describe the same keys when both exist: every CDS matches a CDNSKEY (same key tag and
/// algorithm, and the digest of that key) and every CDNSKEY has a CDS. A parent that reads
/// both and finds them disagreeing ignores both (RFC 7344 §4, RFC 8078 §3). Only the injected
/// records are checked: signet's own are made consistent by construction. RFC 8078 DELETE
/// records are left aside.
fn check_cds_consistency(
    apex: &Name,
    old: &Overlay,
    new: &Overlay,
    served: &Zone,
) -> Result<(), UpdateOutcome> {
    let node = served.nodes.get(apex);
    let own = |rt: u16| -> Vec<Vec<u8>> {
        node.and_then(|n| n.get(rt))
            .map(|s| {
                s.rdatas
                    .iter()
                    .filter(|r| !old.contains(rt, r))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut cds = own(t::CDS);
    cds.extend(new.of_type(t::CDS).map(|r| r.wire()));
    let mut cdnskey = own(t::CDNSKEY);
    cdnskey.extend(new.of_type(t::CDNSKEY).map(|r| r.wire()));
    let is_delete = |rd: &[u8]| rd.get(2) == Some(&0) || rd.len() < 5;
    cds.retain(|r| !is_delete(r));
    cdnskey.retain(|r| !is_delete(r));
    if cds.is_empty() || cdnskey.is_empty() {
        return Ok(());
    }
    let owner = apex.canonical_wire();
    let matches = |ds: &[u8], key: &[u8]| {
        ds.len() > 4 && crate::keystore::ds_rdata(&owner, key, ds[3]).is_some_and(|want| want == ds)
    };
    for r in new.of_type(t::CDS) {
        let ds = r.wire();
        if !is_delete(&ds) && !cdnskey.iter().any(|k| matches(&ds, k)) {
            return Err(UpdateOutcome::new(
                rcode::REFUSED,
                format!(
                    "CDS {} matches no CDNSKEY: CDS and CDNSKEY must agree (send both together)",
                    r.text
                ),
            ));
        }
    }
    for r in new.of_type(t::CDNSKEY) {
        let key = r.wire();
        if !is_delete(&key) && !cds.iter().any(|ds| matches(ds, &key)) {
            return Err(UpdateOutcome::new(
                rcode::REFUSED,
                format!(
                    "CDNSKEY {} has no CDS: CDS and CDNSKEY must agree (send both together)",
                    r.text
                ),
            ));
        }
    }
    Ok(())
}

/// RFC 2136 §3.2: the prerequisites against the served zone.
fn check_prereqs(prereqs: &[Record], zone: &Zone) -> Result<(), UpdateOutcome> {
    let fail = |rc: u16, r: &Record, why: &str| {
        Err(UpdateOutcome::new(
            rc,
            format!(
                "prerequisite {} {} not met: {why}",
                r.owner,
                rtype::type_name(r.rtype)
            ),
        ))
    };
    // value-dependent prerequisites are compared per RRset, all records together (§3.2.3)
    let mut wanted: BTreeMap<(Name, u16), Vec<&Record>> = BTreeMap::new();
    for r in prereqs {
        let node = zone.nodes.get(&r.owner).filter(|n| !n.is_empty());
        let has = |rt: u16| match rt {
            t::RRSIG => node.is_some_and(|n| !n.sigs.is_empty()),
            _ => node.is_some_and(|n| n.has(rt)),
        };
        match (r.class, r.rtype) {
            (class::ANY, t::ANY) => {
                if node.is_none() {
                    return fail(rcode::NXDOMAIN, r, "name not in use");
                }
            }
            (class::ANY, rt) => {
                if !has(rt) {
                    return fail(rcode::NXRRSET, r, "RRset does not exist");
                }
            }
            (class::NONE, t::ANY) => {
                if node.is_some() {
                    return fail(rcode::YXDOMAIN, r, "name in use");
                }
            }
            (class::NONE, rt) => {
                if has(rt) {
                    return fail(rcode::YXRRSET, r, "RRset exists");
                }
            }
            _ => wanted
                .entry((r.owner.clone(), r.rtype))
                .or_default()
                .push(r),
        }
    }
    for ((owner, rt), recs) in wanted {
        let Some(first) = recs.first() else { continue };
        let have = zone.nodes.get(&owner).and_then(|n| n.get(rt));
        let Some(have) = have else {
            return fail(rcode::NXRRSET, first, "RRset does not exist");
        };
        let mut want: Vec<&[u8]> = Vec::new();
        for r in &recs {
            if !want.iter().any(|w| same_rdata(rt, w, &r.rdata)) {
                want.push(&r.rdata);
            }
        }
        let same = want.len() == have.rdatas.len()
            && want
                .iter()
                .all(|w| have.rdatas.iter().any(|h| same_rdata(rt, h, w)));
        if !same {
            return fail(rcode::NXRRSET, first, "RRset differs");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::data::{Node, RRset};

    fn name(s: &str) -> Name {
        Name::parse(s, None).unwrap()
    }

    fn rec(owner: &str, rtype: u16, cls: u16, ttl: u32, rdata: Vec<u8>) -> Record {
        Record {
            owner: name(owner),
            rtype,
            class: cls,
            ttl,
            rdata,
        }
    }

    fn key(flags: u16, seed: u8) -> Vec<u8> {
        crate::keystore::dnskey_rdata(flags, 13, &[seed; 64])
    }

    fn served(own: &[Vec<u8>]) -> Zone {
        let mut z = Zone::new(name("example."));
        let mut apex = Node::default();
        apex.put(RRset {
            rtype: t::DNSKEY,
            ttl: 3600,
            rdatas: own.to_vec(),
        });
        apex.put(RRset {
            rtype: t::NS,
            ttl: 3600,
            rdatas: vec![name("ns1.example.").as_wire().to_vec()],
        });
        z.nodes.insert(name("example."), apex);
        let mut www = Node::default();
        www.put(RRset {
            rtype: t::A,
            ttl: 300,
            rdatas: vec![vec![192, 0, 2, 1]],
        });
        z.nodes.insert(name("www.example."), www);
        z
    }

    fn job(prereqs: Vec<Record>, updates: Vec<Record>) -> UpdateJob {
        let (tx, _rx) = oneshot::channel();
        UpdateJob {
            zone: name("example."),
            key: name("ctl."),
            source: "127.0.0.1:1".parse().unwrap(),
            prereqs,
            updates,
            reply: tx,
        }
    }

    fn run(j: &UpdateJob, o: &Overlay) -> Result<(Overlay, Vec<String>), UpdateOutcome> {
        let own = vec![key(257, 1), key(256, 2)];
        let z = served(&own);
        let tags: Vec<u16> = own.iter().map(|k| crate::keystore::key_tag(k)).collect();
        let cx = EvalContext {
            served: &z,
            types: &[t::DNSKEY, t::CDS, t::CDNSKEY, t::CSYNC],
            own_tags: &tags,
            own_algorithms: &[13],
            own_dnskeys: &own,
            now: 10,
        };
        evaluate(j, o, &cx)
    }

    fn rc(r: Result<(Overlay, Vec<String>), UpdateOutcome>) -> u16 {
        match r {
            Ok(_) => rcode::NOERROR,
            Err(o) => o.rcode,
        }
    }

    #[test]
    fn prescan_rules() {
        let z = name("example.");
        let ok = rec("example.", t::DNSKEY, class::IN, 300, key(256, 9));
        assert!(prescan(&z, &[], std::slice::from_ref(&ok)).is_ok());
        let out = rec("example.org.", t::DNSKEY, class::IN, 300, key(256, 9));
        assert_eq!(prescan(&z, &[], &[out]).unwrap_err().0, rcode::NOTZONE);
        let bad_ttl = rec("example.", t::DNSKEY, class::ANY, 5, vec![]);
        assert_eq!(prescan(&z, &[], &[bad_ttl]).unwrap_err().0, rcode::FORMERR);
        let bad_class = rec("example.", t::DNSKEY, 3, 0, key(256, 9));
        assert_eq!(
            prescan(&z, &[], &[bad_class]).unwrap_err().0,
            rcode::FORMERR
        );
        let any_add = rec("example.", t::ANY, class::IN, 0, vec![]);
        assert_eq!(prescan(&z, &[], &[any_add]).unwrap_err().0, rcode::FORMERR);
        let pre_ttl = rec("example.", t::DNSKEY, class::ANY, 1, vec![]);
        assert_eq!(prescan(&z, &[pre_ttl], &[]).unwrap_err().0, rcode::FORMERR);
    }

    #[test]
    fn all_five_prerequisites() {
        let o = Overlay::default();
        let add = vec![rec("example.", t::DNSKEY, class::IN, 300, key(256, 9))];
        let cases = [
            (
                rec("www.example.", t::ANY, class::ANY, 0, vec![]),
                rcode::NOERROR,
            ),
            (
                rec("no.example.", t::ANY, class::ANY, 0, vec![]),
                rcode::NXDOMAIN,
            ),
            (
                rec("example.", t::NS, class::ANY, 0, vec![]),
                rcode::NOERROR,
            ),
            (
                rec("example.", t::CDS, class::ANY, 0, vec![]),
                rcode::NXRRSET,
            ),
            (
                rec("no.example.", t::ANY, class::NONE, 0, vec![]),
                rcode::NOERROR,
            ),
            (
                rec("www.example.", t::ANY, class::NONE, 0, vec![]),
                rcode::YXDOMAIN,
            ),
            (
                rec("example.", t::CDS, class::NONE, 0, vec![]),
                rcode::NOERROR,
            ),
            (
                rec("example.", t::DNSKEY, class::NONE, 0, vec![]),
                rcode::YXRRSET,
            ),
            (
                rec("www.example.", t::A, class::IN, 0, vec![192, 0, 2, 1]),
                rcode::NOERROR,
            ),
            (
                rec("www.example.", t::A, class::IN, 0, vec![192, 0, 2, 2]),
                rcode::NXRRSET,
            ),
        ];
        for (p, want) in cases {
            let j = job(vec![p.clone()], add.clone());
            assert_eq!(rc(run(&j, &o)), want, "{p}");
        }
        // value-dependent: the whole RRset must match
        let j = job(
            vec![
                rec("example.", t::DNSKEY, class::IN, 0, key(257, 1)),
                rec("example.", t::DNSKEY, class::IN, 0, key(256, 2)),
            ],
            add.clone(),
        );
        assert_eq!(rc(run(&j, &o)), rcode::NOERROR);
        let j = job(
            vec![rec("example.", t::DNSKEY, class::IN, 0, key(257, 1))],
            add,
        );
        assert_eq!(rc(run(&j, &o)), rcode::NXRRSET);
    }

    #[test]
    fn policy_limits_and_all_or_nothing() {
        let o = Overlay::default();
        let k = |s| rec("example.", t::DNSKEY, class::IN, 300, key(256, s));
        // non-apex, disallowed type: REFUSED and nothing applied
        let j = job(
            vec![],
            vec![
                k(9),
                rec("www.example.", t::DNSKEY, class::IN, 300, key(256, 8)),
            ],
        );
        assert_eq!(rc(run(&j, &o)), rcode::REFUSED);
        let j = job(
            vec![],
            vec![rec(
                "example.",
                t::NS,
                class::IN,
                300,
                name("ns.x.").as_wire().to_vec(),
            )],
        );
        assert_eq!(rc(run(&j, &o)), rcode::REFUSED);
        // not a zone key, other algorithm
        let j = job(
            vec![],
            vec![rec("example.", t::DNSKEY, class::IN, 300, key(0, 9))],
        );
        assert_eq!(rc(run(&j, &o)), rcode::REFUSED);
        let other_alg = crate::keystore::dnskey_rdata(256, 15, &[3; 32]);
        let j = job(
            vec![],
            vec![rec("example.", t::DNSKEY, class::IN, 300, other_alg)],
        );
        assert_eq!(rc(run(&j, &o)), rcode::REFUSED);
        // own key: accepted, nothing changes
        let j = job(
            vec![],
            vec![rec("example.", t::DNSKEY, class::IN, 300, key(256, 2))],
        );
        let (o2, ch) = run(&j, &o).unwrap();
        assert!(o2.is_empty() && ch.is_empty());
        // the cap
        let many: Vec<Record> = (10..10 + MAX_FOREIGN_KEYS as u8 + 1).map(k).collect();
        let j = job(vec![], many.clone());
        assert_eq!(rc(run(&j, &o)), rcode::REFUSED);
        let j = job(vec![], many[..MAX_FOREIGN_KEYS].to_vec());
        let (full, ch) = run(&j, &o).unwrap();
        assert_eq!(ch.len(), MAX_FOREIGN_KEYS);
        // delete one record, then the RRset, then everything
        let j = job(
            vec![],
            vec![rec("example.", t::DNSKEY, class::NONE, 0, key(256, 10))],
        );
        let (less, _) = run(&j, &full).unwrap();
        assert_eq!(less.foreign_keys().count(), MAX_FOREIGN_KEYS - 1);
        let j = job(
            vec![],
            vec![rec("example.", t::DNSKEY, class::ANY, 0, vec![])],
        );
        let (none, ch) = run(&j, &full).unwrap();
        assert!(none.is_empty() && ch.len() == 1);
        let j = job(vec![], vec![rec("example.", t::ANY, class::ANY, 0, vec![])]);
        assert!(run(&j, &full).unwrap().0.is_empty());
    }

    #[test]
    fn cds_and_cdnskey_must_agree() {
        let apex = name("example.");
        let ksk = key(257, 5);
        let ds = crate::keystore::ds_rdata(&apex.canonical_wire(), &ksk, 2).unwrap();
        let o = Overlay::default();
        // CDS alone: nothing to disagree with
        let j = job(
            vec![],
            vec![rec("example.", t::CDS, class::IN, 60, ds.clone())],
        );
        let (with_cds, _) = run(&j, &o).unwrap();
        // then a CDNSKEY of another key: refused
        let j = job(
            vec![],
            vec![rec("example.", t::CDNSKEY, class::IN, 60, key(257, 6))],
        );
        assert_eq!(rc(run(&j, &with_cds)), rcode::REFUSED);
        // the matching CDNSKEY: accepted; both together: accepted
        let j = job(
            vec![],
            vec![rec("example.", t::CDNSKEY, class::IN, 60, ksk.clone())],
        );
        assert_eq!(rc(run(&j, &with_cds)), rcode::NOERROR);
        let j = job(
            vec![],
            vec![
                rec("example.", t::CDS, class::IN, 60, ds),
                rec("example.", t::CDNSKEY, class::IN, 60, ksk),
            ],
        );
        assert_eq!(rc(run(&j, &o)), rcode::NOERROR);
    }

    #[test]
    fn key_tag_collisions_refused() {
        let own = key(256, 2);
        let own_tag = crate::keystore::key_tag(&own);
        // a different key with the same tag: move 0x0101 from one 16-bit word to the next
        // (the tag is a checksum of the words, RFC 4034 Appendix B)
        let mut pk = [2u8; 64];
        pk[..4].copy_from_slice(&[3, 3, 1, 1]);
        let c = crate::keystore::dnskey_rdata(256, 13, &pk);
        assert_ne!(c, own);
        assert_eq!(crate::keystore::key_tag(&c), own_tag);
        let j = job(vec![], vec![rec("example.", t::DNSKEY, class::IN, 300, c)]);
        let e = run(&j, &Overlay::default()).unwrap_err();
        assert_eq!(e.rcode, rcode::REFUSED);
        assert!(e.message.contains("collides"), "{}", e.message);
    }
}
