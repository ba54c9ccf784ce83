//! Full-zone signing: RRSIG (RFC 4034 §3, RFC 4035 §2.2), NSEC (RFC 4034 §4, RFC 4035 §2.3),
//! NSEC3 (RFC 5155 §7.1, RFC 9276), with the key roles of RFC 6781 §3.1 (KSK signs the DNSKEY,
//! CDS and CDNSKEY RRsets; ZSK the rest; a CSK both).
//!
//! What is signed (RFC 4035 §2.2): every authoritative RRset. At a delegation point only DS and
//! NSEC are authoritative; NS there and glue below are not signed and get no NSEC; names below a
//! DNAME are occluded (RFC 6672 §2.3) and are left out the same way.
//!
//! The signing input is built here, not taken from hickory (research/crates.md §1): owner and
//! embedded names lowercased per RFC 4034 §6.2, RDATA sorted by canonical bytes and deduplicated
//! (§6.3).
//!
//! Timing: inception is backdated by [`INCEPTION_BACKDATE`]; expiration is `validity` minus a
//! jitter in `[0, jitter)` derived from a hash of owner and type, so that renewals of a large zone
//! spread over time and a given zone signs reproducibly at a given time.

pub mod canonical;
pub mod delta;
pub mod fixtures;
pub mod nsec3;
pub mod phase;
pub mod verify;

use crate::dns::name::Name;
use crate::dns::rdata;
use crate::dns::rtype::t;
use crate::keystore::SigningKey;
use crate::zone::data::{soa_field, Node, RRset, Sig, Zone};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Signatures start one hour in the past: resolvers with a slow clock still accept them
/// (BIND and Knot backdate by one hour too).
pub const INCEPTION_BACKDATE: u32 = 3600;

/// A key taking part in signing.
#[derive(Clone)]
pub struct ActiveKey {
    pub key: Arc<dyn SigningKey>,
    /// DNSKEY RDATA (flags, protocol, algorithm, public key).
    pub dnskey: Vec<u8>,
    pub tag: u16,
    /// Signs DNSKEY/CDS/CDNSKEY (KSK or CSK).
    pub signs_keys: bool,
    /// Signs the rest of the zone (ZSK or CSK).
    pub signs_zone: bool,
    /// Its DNSKEY is in the apex DNSKEY RRset. A key may sign without being published (the new
    /// algorithm of an algorithm rollover signs first) or be published without signing.
    pub publish: bool,
}

/// Denial of existence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denial {
    Nsec,
    Nsec3 {
        iterations: u16,
        salt: Vec<u8>,
        opt_out: bool,
    },
}

/// What the policy says about signing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignParams {
    pub denial: Denial,
    pub dnskey_ttl: u32,
    /// Seconds.
    pub validity: u32,
    pub validity_dnskey: u32,
    pub jitter: u32,
    /// Spread of the DNSKEY/CDS/CDNSKEY signatures' expirations (the policy's
    /// `signatures-jitter`; zone data may use a wider spread, see [`effective_jitter`]).
    pub dnskey_jitter: u32,
    /// Number of worker threads (0 = all cores).
    pub threads: usize,
}

impl Default for SignParams {
    fn default() -> Self {
        SignParams {
            denial: Denial::Nsec,
            dnskey_ttl: 3600,
            validity: 14 * 86400,
            validity_dnskey: 14 * 86400,
            jitter: 12 * 3600,
            dnskey_jitter: 12 * 3600,
            threads: 0,
        }
    }
}

/// Why signing failed.
#[derive(Debug)]
pub enum SignError {
    NoKeys(&'static str),
    Key(String),
    Zone(String),
    Nsec3Collision(String),
}

impl std::fmt::Display for SignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignError::NoKeys(w) => write!(f, "no active key {w}"),
            SignError::Key(m) => write!(f, "signing failed: {m}"),
            SignError::Zone(m) => write!(f, "{m}"),
            SignError::Nsec3Collision(m) => write!(
                f,
                "NSEC3 hash collision: {m} (RFC 5155 §7.1: change the salt)"
            ),
        }
    }
}

impl std::error::Error for SignError {}

/// How a name relates to the zone's authoritative data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    /// Authoritative data (includes the apex).
    Auth,
    /// A delegation point (NS below the apex): only DS/NSEC authoritative.
    Delegation { secure: bool },
    /// Glue or occluded data below a delegation or DNAME: not signed, not in the chain.
    Occluded,
}

/// Classifies every node of `zone` (canonical order makes this one pass: a cut is seen before
/// every name below it).
pub fn classify(zone: &Zone) -> Vec<NameKind> {
    let mut out = Vec::with_capacity(zone.nodes.len());
    let mut cut: Option<&Name> = None;
    for (name, node) in &zone.nodes {
        if let Some(c) = cut {
            if name.is_subdomain_of(c) && name != c {
                out.push(NameKind::Occluded);
                continue;
            }
            cut = None;
        }
        out.push(own_kind(&zone.origin, name, node));
        if is_cut(&zone.origin, name, node) {
            cut = Some(name);
        }
    }
    out
}

/// The kind of a name that no cut above occludes: a delegation (NS below the apex) or
/// authoritative.
fn own_kind(origin: &Name, name: &Name, node: &Node) -> NameKind {
    if name != origin && node.has(t::NS) {
        NameKind::Delegation {
            secure: node.has(t::DS),
        }
    } else {
        NameKind::Auth
    }
}

/// True when everything below `name` is occluded: a delegation point (NS below the apex) or a
/// DNAME owner (RFC 6672 §2.3).
pub(crate) fn is_cut(origin: &Name, name: &Name, node: &Node) -> bool {
    (name != origin && node.has(t::NS)) || node.has(t::DNAME)
}

/// The topmost cut strictly above `name` (at or below the apex), if `name` is occluded: the
/// per-name form of [`classify`], O(depth · log n).
pub(crate) fn occluding_cut(zone: &Zone, name: &Name) -> Option<Name> {
    let depth = name.label_count();
    let top = zone.origin.label_count();
    if depth <= top || !name.is_subdomain_of(&zone.origin) {
        return None;
    }
    for d in top..depth {
        let anc = name.strip_left(depth - d)?;
        if zone
            .nodes
            .get(&anc)
            .is_some_and(|node| is_cut(&zone.origin, &anc, node))
        {
            return Some(anc);
        }
    }
    None
}

/// What [`classify`] says of `name`, computed for that name alone (a name without a node is
/// classified as if it had an empty one).
pub(crate) fn kind_of(zone: &Zone, name: &Name) -> NameKind {
    if occluding_cut(zone, name).is_some() {
        return NameKind::Occluded;
    }
    match zone.nodes.get(name) {
        Some(node) => own_kind(&zone.origin, name, node),
        None => NameKind::Auth,
    }
}

/// Whether an RRset of type `rtype` at a name of kind `kind` is signed (RFC 4035 §2.2).
pub(crate) fn signs(kind: NameKind, rtype: u16) -> bool {
    match kind {
        NameKind::Auth => true,
        NameKind::Delegation { .. } => matches!(rtype, t::DS | t::NSEC),
        NameKind::Occluded => false,
    }
}

/// Whether the RRset is signed by the keys that sign keys (KSK/CSK) rather than the zone keys.
pub(crate) fn by_ksk(origin: &Name, owner: &Name, rtype: u16) -> bool {
    owner == origin && matches!(rtype, t::DNSKEY | t::CDS | t::CDNSKEY)
}

/// The types an NSEC record at a chain member lists (RFC 4034 §4.1.2): at a delegation only
/// NS and DS, elsewhere every type of the node; NSEC and RRSIG always. An NSEC3 RRset at the
/// node (an unsigned name that happens to be an NSEC3 owner) does not count.
pub(crate) fn nsec_types(kind: NameKind, node: &Node) -> Vec<u16> {
    let mut types: Vec<u16> = match kind {
        NameKind::Delegation { .. } => node
            .rrsets
            .iter()
            .map(|r| r.rtype)
            .filter(|t| matches!(*t, t::NS | t::DS))
            .collect(),
        _ => node
            .rrsets
            .iter()
            .map(|r| r.rtype)
            .filter(|t| *t != t::NSEC3)
            .collect(),
    };
    types.push(t::NSEC);
    types.push(t::RRSIG);
    types
}

/// The records signet adds at the apex: the DNSKEY RRset of the published keys and, for NSEC3,
/// the NSEC3PARAM record.
pub(crate) fn apex_sets(keys: &[ActiveKey], params: &SignParams, dttl: u32) -> Vec<RRset> {
    let mut dnskeys: Vec<Vec<u8>> = Vec::new();
    for k in keys.iter().filter(|k| k.publish) {
        if !dnskeys.contains(&k.dnskey) {
            dnskeys.push(k.dnskey.clone());
        }
    }
    let mut out = vec![RRset {
        rtype: t::DNSKEY,
        ttl: params.dnskey_ttl,
        rdatas: dnskeys,
    }];
    if let Denial::Nsec3 {
        iterations, salt, ..
    } = &params.denial
    {
        let mut rd = vec![1u8, 0];
        rd.extend_from_slice(&iterations.to_be_bytes());
        rd.push(salt.len() as u8);
        rd.extend_from_slice(salt);
        out.push(RRset {
            rtype: t::NSEC3PARAM,
            ttl: dttl,
            rdatas: vec![rd],
        });
    }
    out
}

/// The key checks every signing starts with.
pub(crate) fn check_keys(keys: &[ActiveKey]) -> Result<(), SignError> {
    if !keys.iter().any(|k| k.signs_keys) {
        return Err(SignError::NoKeys("to sign the DNSKEY RRset (KSK or CSK)"));
    }
    if !keys.iter().any(|k| k.signs_zone) {
        return Err(SignError::NoKeys("to sign the zone (ZSK or CSK)"));
    }
    Ok(())
}

/// Sorts a node's signatures as every signing path leaves them: by covered type, then RDATA.
pub(crate) fn sort_sigs(sigs: &mut [Sig]) {
    if sigs.len() > 1 {
        sigs.sort_by(|a, b| {
            a.covered
                .cmp(&b.covered)
                .then_with(|| a.rdata.cmp(&b.rdata))
        });
    }
}

/// TTL for NSEC/NSEC3/NSEC3PARAM: min(SOA TTL, SOA MINIMUM) (RFC 9077 §3).
pub fn denial_ttl(zone: &Zone) -> u32 {
    let soa_ttl = zone.soa_ttl().unwrap_or(3600);
    let min = zone.soa().and_then(|s| soa_field(s, 4)).unwrap_or(soa_ttl);
    soa_ttl.min(min)
}

/// Removes what a previous signer left (RRSIG, NSEC, NSEC3, NSEC3PARAM, and apex DNSKEY, which
/// signet manages). Returns a description of what was stripped, for a log line.
pub fn strip_dnssec(zone: &mut Zone) -> Vec<String> {
    // find first, then change only those nodes: the zone's chunks may be shared with another
    // version (copy-on-write), and a clean zone must not be copied
    let dirty: Vec<Name> = zone
        .nodes
        .iter()
        .filter(|(n, node)| needs_strip(&zone.origin, n, node))
        .map(|(n, _)| n.clone())
        .collect();
    strip_dnssec_names(zone, &dirty)
}

/// [`strip_dnssec`] restricted to `names`: after an IXFR to a version that was already clean,
/// only the names the differences touched can hold a previous signer's records.
pub fn strip_dnssec_names<'a, I: IntoIterator<Item = &'a Name>>(
    zone: &mut Zone,
    names: I,
) -> Vec<String> {
    let mut stripped = BTreeMap::<&'static str, usize>::new();
    let origin = zone.origin.clone();
    for name in names {
        let Some(node) = zone.nodes.get(name) else {
            continue;
        };
        if !needs_strip(&origin, name, node) {
            continue;
        }
        let Some(node) = zone.nodes.get_mut(name) else {
            continue;
        };
        if !node.sigs.is_empty() {
            *stripped.entry("RRSIG").or_default() += node.sigs.len();
            node.sigs.clear();
        }
        for (ty, label) in [
            (t::NSEC, "NSEC"),
            (t::NSEC3, "NSEC3"),
            (t::NSEC3PARAM, "NSEC3PARAM"),
        ] {
            if let Some(s) = node.remove(ty) {
                *stripped.entry(label).or_default() += s.rdatas.len();
            }
        }
        if name == &origin {
            if let Some(s) = node.remove(t::DNSKEY) {
                *stripped.entry("DNSKEY").or_default() += s.rdatas.len();
            }
        }
        if node.is_empty() {
            zone.nodes.remove(name);
        }
    }
    stripped
        .into_iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect()
}

fn needs_strip(origin: &Name, name: &Name, node: &Node) -> bool {
    !node.sigs.is_empty()
        || node.has(t::NSEC)
        || node.has(t::NSEC3)
        || node.has(t::NSEC3PARAM)
        || (name == origin && node.has(t::DNSKEY))
}

/// A chunk of signing work's result: (chunk number, its signatures with their node indices).
type ChunkSigs = (usize, Result<Vec<(usize, Sig)>, SignError>);

/// One RRset to sign: its node (index in canonical order) and type.
struct Task {
    node: usize,
    rtype: u16,
    by_ksk: bool,
}

/// Signs `unsigned` at time `now`: adds DNSKEY (and NSEC3PARAM), the NSEC or NSEC3 chain and
/// all RRSIGs. The input must be free of DNSSEC records ([`strip_dnssec`]).
pub fn sign_zone(
    unsigned: &Zone,
    keys: &[ActiveKey],
    params: &SignParams,
    now: u64,
) -> Result<Zone, SignError> {
    sign_zone_owned(unsigned.clone(), keys, params, now)
}

/// As [`sign_zone`], consuming the unsigned zone (no copy of a large zone).
pub fn sign_zone_owned(
    unsigned: Zone,
    keys: &[ActiveKey],
    params: &SignParams,
    now: u64,
) -> Result<Zone, SignError> {
    sign_zone_with(unsigned, None, keys, params, now)
}

/// Incremental signing (issue 4): as [`sign_zone_owned`], but every RRset that is unchanged
/// since `previous` (same TTL, same records) keeps its signature by each key when that
/// signature is still current and does not expire within `refresh` seconds. Only changed
/// RRsets, NSEC/NSEC3 records whose neighbourhood changed, the SOA, and signatures due for
/// refresh get new signatures; the result is the same zone content as a full signing.
pub fn sign_zone_incremental(
    unsigned: Zone,
    previous: &Zone,
    refresh: u32,
    keys: &[ActiveKey],
    params: &SignParams,
    now: u64,
) -> Result<Zone, SignError> {
    sign_zone_with(unsigned, Some((previous, refresh)), keys, params, now)
}

/// A signature in `node` (the owner's node in the previous version) that can stand for `set`
/// signed by `key` at `now`: the RRset is unchanged (TTL and canonical records), the signature
/// is by that key, already valid, and does not expire within `refresh` seconds.
pub(crate) fn reusable_in(
    node: &Node,
    set: &RRset,
    key: &ActiveKey,
    now: u64,
    refresh: u32,
) -> Option<Sig> {
    let old = node.get(set.rtype)?;
    if old.ttl != set.ttl || old.rdatas.len() != set.rdatas.len() {
        return None;
    }
    let canon = |v: &[Vec<u8>]| {
        let mut c: Vec<Vec<u8>> = v
            .iter()
            .map(|r| rdata::canonical(set.rtype, r).into_owned())
            .collect();
        c.sort_unstable();
        c
    };
    if canon(&old.rdatas) != canon(&set.rdatas) {
        return None;
    }
    let alg = key.key.algorithm();
    node.sigs
        .iter()
        .find(|s| {
            let r = &s.rdata;
            r.len() > 18
                && s.covered == set.rtype
                && r[2] == alg
                && u16::from_be_bytes([r[16], r[17]]) == key.tag
                && u32::from_be_bytes([r[4], r[5], r[6], r[7]]) == set.ttl
                && {
                    let exp = u32::from_be_bytes([r[8], r[9], r[10], r[11]]);
                    let inc = u32::from_be_bytes([r[12], r[13], r[14], r[15]]);
                    // RFC 1982 arithmetic on 32-bit times
                    (now as u32).wrapping_sub(inc) as i32 >= 0
                        && exp.wrapping_sub(now as u32) as i32 > refresh as i32
                }
        })
        .cloned()
}

/// Signs `set` at `owner` with every key of its role (`by_ksk`: the keys that sign keys),
/// handing each signature to `out`. With `previous` (the owner's node in the previous version,
/// if any, and the refresh margin) a reusable signature ([`reusable_in`]) is kept instead of a
/// new one, except for the SOA, which is always signed anew.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sign_set(
    owner: &Name,
    set: &RRset,
    by_ksk: bool,
    keys: &[ActiveKey],
    params: &SignParams,
    now: u64,
    previous: Option<(Option<&Node>, u32)>,
    signer: &Name,
    buf: &mut Vec<u8>,
    out: &mut impl FnMut(Sig),
) -> Result<(), SignError> {
    let (validity, jitter) = if by_ksk {
        (params.validity_dnskey, params.dnskey_jitter)
    } else {
        (params.validity, params.jitter)
    };
    let exp = expiration(now, validity, jitter, owner, set.rtype);
    let inc = (now as u32).wrapping_sub(INCEPTION_BACKDATE);
    for k in keys {
        if !(if by_ksk { k.signs_keys } else { k.signs_zone }) {
            continue;
        }
        if let Some((Some(prev), refresh)) = previous {
            if set.rtype != t::SOA {
                if let Some(sig) = reusable_in(prev, set, k, now, refresh) {
                    out(sig);
                    continue;
                }
            }
        }
        out(sign_rrset(owner, set, k, signer, inc, exp, buf)?);
    }
    Ok(())
}

fn sign_zone_with(
    unsigned: Zone,
    previous: Option<(&Zone, u32)>,
    keys: &[ActiveKey],
    params: &SignParams,
    now: u64,
) -> Result<Zone, SignError> {
    check_keys(keys)?;
    let mut phases = phase::Phases::new("sign");
    let mut zone = unsigned;
    let origin = zone.origin.clone();
    let dttl = denial_ttl(&zone);
    {
        let apex = zone.nodes.entry(origin.clone()).or_default();
        for set in apex_sets(keys, params, dttl) {
            apex.put(set);
        }
    }
    let mut kinds = classify(&zone);
    match &params.denial {
        // NSEC adds no names and no types that change a name's kind
        Denial::Nsec => add_nsec_chain(&mut zone, &kinds, dttl),
        Denial::Nsec3 {
            iterations,
            salt,
            opt_out,
        } => {
            nsec3::add_nsec3_chain(&mut zone, &kinds, dttl, *iterations, salt, *opt_out)?;
            // the chain added nodes: classify again
            kinds = classify(&zone);
        }
    }
    phases.mark("chain");
    let mut tasks = Vec::with_capacity(zone.nodes.len() * 2);
    let mut names: Vec<&Name> = Vec::with_capacity(zone.nodes.len());
    let mut nodes: Vec<&Node> = Vec::with_capacity(zone.nodes.len());
    for (i, ((name, node), kind)) in zone.nodes.iter().zip(kinds.iter()).enumerate() {
        names.push(name);
        nodes.push(node);
        for set in &node.rrsets {
            if signs(*kind, set.rtype) {
                tasks.push(Task {
                    node: i,
                    rtype: set.rtype,
                    by_ksk: by_ksk(&origin, name, set.rtype),
                });
            }
        }
    }
    drop(kinds);
    phases.mark("tasks");
    let signer_name = origin.to_lowercase();
    let threads = if params.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        params.threads
    };
    let chunk = tasks.len().div_ceil(threads * 8).max(64);
    // (chunk number, its signatures in task order, which is node order)
    let mut results: Vec<ChunkSigs> = {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let chunks: Vec<&[Task]> = tasks.chunks(chunk).collect();
        let out = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..threads.min(chunks.len().max(1)) {
                s.spawn(|| {
                    let mut buf = Vec::with_capacity(512);
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(c) = chunks.get(i) else { break };
                        let mut local = Vec::with_capacity(c.len() * 2);
                        let mut res = Ok(());
                        for task in c.iter() {
                            let node = nodes[task.node];
                            let owner = names[task.node];
                            let Some(set) = node.get(task.rtype) else {
                                continue;
                            };
                            let prev = previous.map(|(p, r)| (p.nodes.get(owner), r));
                            let node_no = task.node;
                            res = sign_set(
                                owner,
                                set,
                                task.by_ksk,
                                keys,
                                params,
                                now,
                                prev,
                                &signer_name,
                                &mut buf,
                                &mut |sig| local.push((node_no, sig)),
                            );
                            if res.is_err() {
                                break;
                            }
                        }
                        let mut o = match out.lock() {
                            Ok(o) => o,
                            Err(p) => p.into_inner(),
                        };
                        o.push((i, res.map(|_| local)));
                    }
                });
            }
        });
        match out.into_inner() {
            Ok(v) => v,
            Err(p) => p.into_inner(),
        }
    };
    drop(nodes);
    drop(names);
    drop(tasks);
    phases.mark("rrsig");
    results.sort_unstable_by_key(|r| r.0);
    let mut sigs = Vec::with_capacity(results.len());
    for (_, r) in results {
        sigs.push(r?);
    }
    // the chunks in order hold the signatures in node order: one merge pass
    let mut sigs = sigs.into_iter().flatten().peekable();
    for (i, node) in zone.nodes.values_mut().enumerate() {
        node.sigs.clear();
        while let Some((_, sig)) = sigs.next_if(|(n, _)| *n == i) {
            node.sigs.push(sig);
        }
        sort_sigs(&mut node.sigs);
    }
    phases.mark("attach");
    Ok(zone)
}

/// The spread of signature expirations signet uses: the policy's `signatures-jitter`, or half
/// of `validity − refresh` when that is larger. With BIND's defaults (14 d validity, 5 d
/// refresh, 12 h jitter) a jitter of 12 h would put a whole zone's renewals into one 12-hour
/// window every cycle (the "weekly full churn" operators complain about); spreading the
/// expirations over 4.5 days makes each day's renewals a fraction of the zone, and every
/// signature still lives at least `validity − spread` > `refresh` after it is made.
pub fn effective_jitter(jitter: u32, validity: u32, refresh: u32) -> u32 {
    jitter.max(validity.saturating_sub(refresh) / 2)
}

/// Expiration for an RRset: `now + validity - jitter(owner, type)`.
pub fn expiration(now: u64, validity: u32, jitter: u32, owner: &Name, rtype: u16) -> u32 {
    let j = if jitter == 0 {
        0
    } else {
        // FNV-1a over the lowercase owner and type: cheap, stable, well spread
        let mut h: u64 = 0xcbf29ce484222325;
        for b in owner
            .as_wire()
            .iter()
            .map(|b| b.to_ascii_lowercase())
            .chain(rtype.to_be_bytes())
        {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        (h % jitter as u64) as u32
    };
    (now as u32).wrapping_add(validity).wrapping_sub(j)
}

/// Signs one RRset with one key.
pub fn sign_rrset(
    owner: &Name,
    set: &RRset,
    key: &ActiveKey,
    signer: &Name,
    inception: u32,
    expiration: u32,
    buf: &mut Vec<u8>,
) -> Result<Sig, SignError> {
    let mut rd = canonical::rrsig_header(
        set.rtype,
        key.key.algorithm(),
        owner.rrsig_labels(),
        set.ttl,
        expiration,
        inception,
        key.tag,
        signer,
    );
    buf.clear();
    canonical::signing_input(buf, &rd, owner, set);
    let sig = key
        .key
        .sign(buf)
        .map_err(|e| SignError::Key(e.to_string()))?;
    rd.extend_from_slice(&sig);
    Ok(Sig {
        covered: set.rtype,
        ttl: set.ttl,
        rdata: rd,
    })
}

/// Adds the NSEC chain (RFC 4034 §4, RFC 4035 §2.3) over authoritative names and delegations.
fn add_nsec_chain(zone: &mut Zone, kinds: &[NameKind], ttl: u32) {
    // the NSEC RDATA of every name in the chain, in canonical order (None: not in the chain)
    let rdatas: Vec<Option<Vec<u8>>> = {
        let chain: Vec<(&Name, &Node, NameKind)> = zone
            .nodes
            .iter()
            .zip(kinds)
            .filter(|(_, k)| !matches!(k, NameKind::Occluded))
            .map(|((n, node), k)| (n, node, *k))
            .collect();
        let n = chain.len();
        let mut it = chain.iter().enumerate();
        kinds
            .iter()
            .map(|k| {
                if matches!(k, NameKind::Occluded) {
                    return None;
                }
                let (i, (_, node, kind)) = it.next()?;
                let bitmap = rdata::encode_bitmap(&mut nsec_types(*kind, node));
                let next = chain[(i + 1) % n].0;
                let mut rd = Vec::with_capacity(next.wire_len() + bitmap.len());
                rd.extend_from_slice(next.as_wire());
                rd.extend_from_slice(&bitmap);
                Some(rd)
            })
            .collect()
    };
    for (node, rd) in zone.nodes.values_mut().zip(rdatas) {
        if let Some(rd) = rd {
            node.put(RRset {
                rtype: t::NSEC,
                ttl,
                rdatas: vec![rd],
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ActiveKey {
        fixtures::ed25519_key(9, 257, true, true).unwrap()
    }

    fn zone(serial: u32, extra: &str) -> Zone {
        let origin = Name::parse("inc.test.", None).unwrap();
        let mut text =
            format!("$TTL 300\n@ SOA ns h {serial} 1 1 1 300\n@ NS ns\nns A 192.0.2.1\n");
        for i in 0..50 {
            text.push_str(&format!("h{i} A 192.0.2.{}\n", i + 2));
        }
        text.push_str(extra);
        let p = crate::zonefile::parse_str(&text, std::path::Path::new("z"), &origin).unwrap();
        crate::zonefile::zone_from_parsed(p, &origin).unwrap().0
    }

    fn sigs(z: &Zone) -> std::collections::BTreeSet<Vec<u8>> {
        z.nodes
            .values()
            .flat_map(|n| n.sigs.iter().map(|s| s.rdata.clone()))
            .collect()
    }

    #[test]
    fn incremental_keeps_valid_signatures_of_unchanged_rrsets() {
        for denial in [
            Denial::Nsec,
            Denial::Nsec3 {
                iterations: 0,
                salt: vec![],
                opt_out: false,
            },
        ] {
            let params = SignParams {
                denial,
                ..SignParams::default()
            };
            let k = [key()];
            let t0 = 1_704_067_200;
            let refresh = 5 * 86400;
            let v1 = sign_zone_owned(zone(1, ""), &k, &params, t0).unwrap();
            // one new name: its A RRset, the NSEC(3) records around it, the SOA are new
            let v2 = sign_zone_incremental(
                zone(2, "h25b A 192.0.2.200\n"),
                &v1,
                refresh,
                &k,
                &params,
                t0 + 60,
            )
            .unwrap();
            assert!(verify::check_zone(&v2, t0 + 60, true).is_empty());
            let fresh: Vec<_> = sigs(&v2).difference(&sigs(&v1)).cloned().collect();
            assert!(
                (3..=6).contains(&fresh.len()),
                "{} new signatures for a one-name change",
                fresh.len()
            );
            // the full signing gives the same content (records), only signatures differ
            let full =
                sign_zone_owned(zone(2, "h25b A 192.0.2.200\n"), &k, &params, t0 + 60).unwrap();
            let strip = |z: &Zone| -> Vec<_> {
                z.nodes
                    .iter()
                    .map(|(n, node)| (n.clone(), node.rrsets.clone()))
                    .collect()
            };
            assert_eq!(strip(&full), strip(&v2));
            // near expiry every signature is renewed
            let late = t0 + 14 * 86400 - refresh as u64 + 1;
            let v3 = sign_zone_incremental(
                zone(3, "h25b A 192.0.2.200\n"),
                &v2,
                refresh,
                &k,
                &params,
                late,
            )
            .unwrap();
            assert!(verify::check_zone(&v3, late, true).is_empty());
            assert!(sigs(&v3).is_disjoint(&sigs(&v2)));
            // half-way, only the ones whose jittered expiry falls within refresh are renewed
            let mid = t0 + 14 * 86400 - refresh as u64 - 6 * 3600;
            let v4 = sign_zone_incremental(
                zone(4, "h25b A 192.0.2.200\n"),
                &v2,
                refresh,
                &k,
                &params,
                mid,
            )
            .unwrap();
            let renewed = sigs(&v4).difference(&sigs(&v2)).count();
            let total = sigs(&v4).len();
            assert!(
                renewed > 1 && renewed < total,
                "{renewed} of {total} renewed"
            );
        }
    }
}
