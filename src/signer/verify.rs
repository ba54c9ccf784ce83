//! Self-check of a signed zone before it is published (DESIGN.md property 2): every
//! authoritative RRset carries a valid, current signature for every algorithm in the DNSKEY RRset
//! (RFC 4035 §2.2), nothing non-authoritative is signed, and the NSEC/NSEC3 chain is closed.

use super::canonical;
use super::delta::{is_member, nsec3_neighbour, nsec_next_member, nsec_prev_member};
use super::{classify, kind_of, nsec3, nsec_types, NameKind};
use crate::dns::name::Name;
use crate::dns::rdata;
use crate::dns::rtype::{self, t};
use crate::zone::data::{Node, RRset, Sig, Zone};
use ring::signature;
use std::collections::BTreeSet;
use std::ops::Bound::{Excluded, Unbounded};

/// Verifies one signature over `signed_data` with a DNSKEY RDATA. Unknown algorithms fail.
pub fn verify_signature(dnskey: &[u8], signed_data: &[u8], sig: &[u8]) -> bool {
    if dnskey.len() < 4 {
        return false;
    }
    let alg = dnskey[3];
    let pk = &dnskey[4..];
    match alg {
        13 | 14 => {
            let mut point = Vec::with_capacity(pk.len() + 1);
            point.push(4);
            point.extend_from_slice(pk);
            let a: &dyn signature::VerificationAlgorithm = if alg == 13 {
                &signature::ECDSA_P256_SHA256_FIXED
            } else {
                &signature::ECDSA_P384_SHA384_FIXED
            };
            signature::UnparsedPublicKey::new(a, &point)
                .verify(signed_data, sig)
                .is_ok()
        }
        15 => signature::UnparsedPublicKey::new(&signature::ED25519, pk)
            .verify(signed_data, sig)
            .is_ok(),
        8 | 10 => {
            let Some((e, n)) = rsa_parts(pk) else {
                return false;
            };
            let params = if alg == 8 {
                &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY
            } else {
                &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY
            };
            signature::RsaPublicKeyComponents { n, e }
                .verify(params, signed_data, sig)
                .is_ok()
        }
        _ => false,
    }
}

fn rsa_parts(pk: &[u8]) -> Option<(&[u8], &[u8])> {
    let first = *pk.first()? as usize;
    if first == 0 {
        let l = u16::from_be_bytes([*pk.get(1)?, *pk.get(2)?]) as usize;
        Some((pk.get(3..3 + l)?, pk.get(3 + l..)?))
    } else {
        Some((pk.get(1..1 + first)?, pk.get(1 + first..)?))
    }
}

/// Verifies one RRSIG RDATA over `set` at `owner` against the DNSKEYs. Returns the reason on
/// failure.
pub fn verify_rrsig(
    owner: &Name,
    set: &RRset,
    rrsig: &[u8],
    dnskeys: &[Vec<u8>],
    now: u32,
) -> Result<(), String> {
    let hl = canonical::rrsig_header_len(rrsig).ok_or("malformed RRSIG")?;
    let alg = rrsig[2];
    let tag = u16::from_be_bytes([rrsig[16], rrsig[17]]);
    let exp = u32::from_be_bytes([rrsig[8], rrsig[9], rrsig[10], rrsig[11]]);
    let inc = u32::from_be_bytes([rrsig[12], rrsig[13], rrsig[14], rrsig[15]]);
    // RFC 4034 §3.1.5 serial arithmetic
    if (now.wrapping_sub(inc) as i32) < 0 {
        return Err("signature not yet valid".into());
    }
    if (exp.wrapping_sub(now) as i32) < 0 {
        return Err("signature expired".into());
    }
    let mut buf = Vec::new();
    canonical::signing_input(&mut buf, &rrsig[..hl], owner, set);
    for k in dnskeys {
        if k.len() > 4
            && k[3] == alg
            && crate::keystore::key_tag(k) == tag
            && verify_signature(k, &buf, &rrsig[hl..])
        {
            return Ok(());
        }
    }
    Err(format!(
        "no DNSKEY with tag {tag} algorithm {alg} verifies it"
    ))
}

/// Checks a signed zone at time `now`, verifying every signature cryptographically when
/// `crypto` is set. Returns every problem found (empty = good).
pub fn check_zone(zone: &Zone, now: u64, crypto: bool) -> Vec<String> {
    check_zone_sampled(zone, now, if crypto { 1 } else { 0 })
}

/// As [`check_zone`], verifying the signatures of the apex and of one RRset in `every`
/// (0: none, 1: all) cryptographically, chosen by a hash of owner and type so that the choice
/// is spread over the zone and reproducible. The structure checks always cover everything.
pub fn check_zone_sampled(zone: &Zone, now: u64, every: u64) -> Vec<String> {
    check_zone_inner(zone, now, every, None)
}

/// As [`check_zone`] with every signature verified, except those carried over unchanged from
/// `previous` (same RRSIG over the same RRset at the same owner): those were verified when
/// `previous` was made. After a small change this verifies only the diff.
pub fn check_zone_since(zone: &Zone, now: u64, previous: Option<&Zone>) -> Vec<String> {
    check_zone_inner(zone, now, 1, previous)
}

fn check_zone_inner(zone: &Zone, now: u64, every: u64, previous: Option<&Zone>) -> Vec<String> {
    let crypto = every > 0;
    let mut problems = Vec::new();
    let now32 = now as u32;
    let (dnskeys, algs) = match apex_keys(zone) {
        Ok(v) => v,
        Err(e) => return vec![e],
    };
    let kinds = classify(zone);
    let nsec3 = zone
        .nodes
        .get(&zone.origin)
        .is_some_and(|n| n.has(t::NSEC3PARAM));
    let mut chain: Vec<(Name, Vec<u8>)> = Vec::new();
    let mut jobs: Vec<(&Name, &RRset, Vec<&Sig>)> = Vec::new();
    for ((name, node), kind) in zone.nodes.iter().zip(&kinds) {
        if problems.len() > MAX_PROBLEMS {
            problems.push("… more problems omitted".into());
            break;
        }
        check_node(name, node, *kind, &algs, &mut problems, |set, mine| {
            let mine: Vec<&Sig> = match previous.and_then(|p| p.nodes.get(name)) {
                Some(pn) if pn.get(set.rtype) == Some(set) => mine
                    .into_iter()
                    .filter(|s| !pn.sigs.iter().any(|o| o.rdata == s.rdata))
                    .collect(),
                _ => mine,
            };
            if crypto
                && !mine.is_empty()
                && (every == 1
                    || name == &zone.origin
                    || sample_hash(name, set.rtype).is_multiple_of(every))
            {
                jobs.push((name, set, mine));
            }
        });
        if let Some(n) = node.get(t::NSEC) {
            if let Some(rd) = n.rdatas.first() {
                chain.push((name.clone(), rd.clone()));
            }
        }
        if !matches!(kind, NameKind::Occluded) && !nsec3 && !node.has(t::NSEC) {
            problems.push(format!("{name}: no NSEC record"));
        }
    }
    problems.extend(verify_jobs(&jobs, &dnskeys.rdatas, now32));
    // NSEC chain closure: each next name is the following owner, the last points to the apex
    for (i, (_, rd)) in chain.iter().enumerate() {
        let next = nsec_next_name(rd);
        let want = &chain[(i + 1) % chain.len()].0;
        if next.as_ref() != Some(want) {
            problems.push(format!("{}: NSEC next name is not {want}", chain[i].0));
        }
    }
    problems
}

/// Problems listed before the check gives up on a broken zone.
const MAX_PROBLEMS: usize = 50;

/// The apex DNSKEY RRset and the algorithms it holds (sorted, unique).
fn apex_keys(zone: &Zone) -> Result<(&RRset, Vec<u8>), String> {
    let Some(dnskeys) = zone.nodes.get(&zone.origin).and_then(|n| n.get(t::DNSKEY)) else {
        return Err("no DNSKEY RRset at the apex".into());
    };
    let mut algs: Vec<u8> = dnskeys
        .rdatas
        .iter()
        .filter_map(|k| k.get(3).copied())
        .collect();
    algs.sort_unstable();
    algs.dedup();
    Ok((dnskeys, algs))
}

/// The signature checks of one node of kind `kind`: nothing non-authoritative is signed, and
/// every authoritative RRset has a signature by each algorithm of `algs`; those signatures,
/// per RRset and algorithm, go to `verify` for the cryptographic check.
fn check_node<'a>(
    name: &Name,
    node: &'a Node,
    kind: NameKind,
    algs: &[u8],
    problems: &mut Vec<String>,
    mut verify: impl FnMut(&'a RRset, Vec<&'a Sig>),
) {
    for set in &node.rrsets {
        let sigs: Vec<&Sig> = node.sigs_for(set.rtype).collect();
        if !super::signs(kind, set.rtype) {
            if !sigs.is_empty() {
                problems.push(format!(
                    "{name} {}: signed but not authoritative",
                    rtype::type_name(set.rtype)
                ));
            }
            continue;
        }
        for alg in algs {
            let mine: Vec<&Sig> = sigs
                .iter()
                .copied()
                .filter(|s| s.rdata.get(2) == Some(alg))
                .collect();
            if mine.is_empty() {
                problems.push(format!(
                    "{name} {}: no RRSIG with algorithm {alg}",
                    rtype::type_name(set.rtype)
                ));
                continue;
            }
            verify(set, mine);
        }
    }
}

/// The next owner name of an NSEC RDATA.
fn nsec_next_name(rd: &[u8]) -> Option<Name> {
    let end = crate::dns::wire::name_len(rd, 0)?;
    Name::from_wire(&rd[..end]).ok()
}

/// The self-check of [`check_zone`] restricted to the names of `changed` (from
/// [`super::delta::sign_zone_delta`]), at a cost proportional to that set: at each changed
/// name every RRSIG verifies (each one, by a key of the apex DNSKEY RRset, inside its validity
/// window) and covers an RRset of the node; every authoritative RRset is signed by every
/// algorithm of the DNSKEY RRset; nothing non-authoritative is signed; and the NSEC or NSEC3
/// chain is consistent there: a chain member has its record, its next name is the next member
/// and its bitmap the node's types; the member before each changed name points to the member
/// after it; NSEC3 records exist exactly for the changed names and the empty non-terminals
/// above them that the chain must hold. The first name below each changed name (other than
/// the apex) is checked for signatures and chain membership as well: a cut added or removed
/// changes the whole subtree, and a subtree the signer missed shows there. Beyond that the
/// check trusts `changed` to list every name that changed.
pub fn check_zone_delta(zone: &Zone, now: u64, changed: &BTreeSet<Name>) -> Vec<String> {
    let (dnskeys, algs) = match apex_keys(zone) {
        Ok(v) => v,
        Err(e) => return vec![e],
    };
    let origin = &zone.origin;
    let mut problems = Vec::new();
    let mut jobs: Vec<(&Name, &RRset, Vec<&Sig>)> = Vec::new();
    // NSEC3: (iterations, salt, opt-out) from the NSEC3PARAM and the apex's NSEC3 record
    let nsec3 = match zone.nodes.get(origin).and_then(|n| n.get(t::NSEC3PARAM)) {
        None => None,
        Some(p) => {
            let Some(rd) = p.rdatas.first().filter(|rd| rd.len() >= 5) else {
                return vec!["malformed NSEC3PARAM".into()];
            };
            let iterations = u16::from_be_bytes([rd[2], rd[3]]);
            let salt = rd.get(5..5 + rd[4] as usize).unwrap_or_default().to_vec();
            let apex_hash = nsec3::hash(origin, &salt, iterations);
            let flags = nsec3::owner_of(&apex_hash, origin)
                .ok()
                .and_then(|o| nsec3_at(zone, &o))
                .and_then(|rd| nsec3::nsec3_parts(rd))
                .map(|(f, _, _)| f);
            let Some(flags) = flags else {
                return vec![format!("{origin}: no NSEC3 record for the apex")];
            };
            Some((iterations, salt, flags & 1 == 1))
        }
    };
    let mut seen: BTreeSet<Name> = BTreeSet::new();
    for name in changed {
        if problems.len() > MAX_PROBLEMS {
            problems.push("… more problems omitted".into());
            break;
        }
        if !name.is_subdomain_of(origin) {
            problems.push(format!("{name}: outside the zone"));
            continue;
        }
        if let Some(node) = zone.nodes.get(name) {
            let kind = kind_of(zone, name);
            // each signature on its own: every one must verify
            check_node(name, node, kind, &algs, &mut problems, |set, mine| {
                jobs.extend(mine.into_iter().map(|s| (name, set, vec![s])));
            });
            for s in &node.sigs {
                if !node.has(s.covered) {
                    problems.push(format!(
                        "{name}: RRSIG over {}, which the node does not hold",
                        rtype::type_name(s.covered)
                    ));
                }
            }
            match &nsec3 {
                None => match (is_member(zone, name, node), node.get(t::NSEC)) {
                    (true, None) => problems.push(format!("{name}: no NSEC record")),
                    (false, Some(_)) => {
                        problems.push(format!("{name}: NSEC record outside the chain"))
                    }
                    (true, Some(set)) => {
                        let rd = set.rdatas.first().map(|v| v.as_slice()).unwrap_or_default();
                        let want = nsec_next_member(zone, name);
                        if nsec_next_name(rd).as_ref() != Some(&want) {
                            problems.push(format!("{name}: NSEC next name is not {want}"));
                        }
                        let end = crate::dns::wire::name_len(rd, 0).unwrap_or(rd.len());
                        let bitmap = rdata::encode_bitmap(&mut nsec_types(kind, node));
                        if rd[end..] != bitmap[..] {
                            problems.push(format!("{name}: NSEC bitmap is not the node's types"));
                        }
                    }
                    (false, None) => {}
                },
                Some((iterations, salt, opt_out)) => {
                    if node.has(t::NSEC) {
                        problems.push(format!("{name}: NSEC record in an NSEC3 zone"));
                    }
                    if let Some(rd) = nsec3_at(zone, name) {
                        problems.extend(check_nsec3_record(
                            zone,
                            name,
                            rd,
                            *iterations,
                            salt,
                            *opt_out,
                        ));
                    }
                }
            }
        }
        // a change of kind reaches the whole subtree below a name (a cut added or removed):
        // the first name below it, when unchanged, must agree with its kind too. Not the
        // subtree of the apex: that is the zone.
        if name != origin {
            let below = zone
                .nodes
                .range((Excluded(name), Unbounded))
                .next()
                .filter(|(y, _)| y.is_subdomain_of(name) && !changed.contains(*y));
            if let Some((y, node)) = below {
                let kind = kind_of(zone, y);
                check_node(y, node, kind, &algs, &mut problems, |_, _| {});
                let (has, want) = match &nsec3 {
                    None => (node.has(t::NSEC), is_member(zone, y, node)),
                    Some((iterations, salt, opt_out)) => (
                        nsec3::owner_of(&nsec3::hash(y, salt, *iterations), origin)
                            .ok()
                            .and_then(|o| nsec3_at(zone, &o))
                            .is_some(),
                        super::delta::nsec3_entry(zone, y, *opt_out).is_some(),
                    ),
                };
                if has != want {
                    problems.push(format!(
                        "{y}: below a changed name, {} the chain",
                        if want { "missing from" } else { "wrongly in" }
                    ));
                }
            }
        }
        match &nsec3 {
            None => {
                // the member before the name points to the member after it
                let p = nsec_prev_member(zone, name);
                let next = zone
                    .nodes
                    .get(&p)
                    .and_then(|n| n.get(t::NSEC))
                    .and_then(|s| s.rdatas.first())
                    .and_then(|rd| nsec_next_name(rd));
                let want = nsec_next_member(zone, &p);
                if next.as_ref() != Some(&want) {
                    problems.push(format!("{p}: NSEC next name is not {want}"));
                }
            }
            Some((iterations, salt, opt_out)) => {
                // where an NSEC3 owner went away, the owner before it now points past it
                if name.label_count() == origin.label_count() + 1 && nsec3_at(zone, name).is_none()
                {
                    if let Some(p) = nsec3_neighbour(zone, name, false) {
                        if let Some(rd) = nsec3_at(zone, &p) {
                            problems.extend(check_nsec3_record(
                                zone,
                                &p,
                                rd,
                                *iterations,
                                salt,
                                *opt_out,
                            ));
                        }
                    }
                }
                // the entries of the name and of the ancestors whose existence follows it
                let mut a = Some(name.clone());
                while let Some(x) = a {
                    if !seen.insert(x.clone()) {
                        break;
                    }
                    let want = super::delta::nsec3_entry(zone, &x, *opt_out);
                    let h = nsec3::hash(&x, salt, *iterations);
                    let owner = match nsec3::owner_of(&h, origin) {
                        Ok(o) => o,
                        Err(e) => {
                            problems.push(format!("{x}: {e}"));
                            break;
                        }
                    };
                    match (want, nsec3_at(zone, &owner)) {
                        (Some(mut types), Some(rd)) => {
                            let bitmap = rdata::encode_bitmap(&mut types);
                            if nsec3::nsec3_parts(rd).map(|p| p.2) != Some(&bitmap[..]) {
                                problems.push(format!(
                                    "{x}: NSEC3 bitmap at {owner} is not the node's types"
                                ));
                            }
                        }
                        (Some(_), None) => problems.push(format!("{x}: no NSEC3 record")),
                        (None, Some(_)) => problems.push(format!(
                            "{x}: NSEC3 record at {owner} for a name outside the chain"
                        )),
                        (None, None) => {}
                    }
                    a = if &x == origin { None } else { x.parent() };
                }
            }
        }
    }
    problems.extend(verify_jobs(&jobs, &dnskeys.rdatas, now as u32));
    problems
}

/// The NSEC3 RDATA at `owner`, if any.
fn nsec3_at<'a>(zone: &'a Zone, owner: &Name) -> Option<&'a [u8]> {
    zone.nodes
        .get(owner)
        .and_then(|n| n.get(t::NSEC3))
        .and_then(|s| s.rdatas.first())
        .map(|v| v.as_slice())
}

/// One NSEC3 record at `owner`: the zone's parameters, and its next hash is the next NSEC3
/// owner's in hash order, and the owner before it points to it.
fn check_nsec3_record(
    zone: &Zone,
    owner: &Name,
    rd: &[u8],
    iterations: u16,
    salt: &[u8],
    opt_out: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    let Some((flags, next, _)) = nsec3::nsec3_parts(rd) else {
        return vec![format!("{owner}: malformed NSEC3")];
    };
    if rd[0] != 1
        || u16::from_be_bytes([rd[2], rd[3]]) != iterations
        || rd.get(5..5 + rd[4] as usize) != Some(salt)
        || flags != u8::from(opt_out)
    {
        problems.push(format!("{owner}: NSEC3 parameters differ from NSEC3PARAM"));
    }
    let want = nsec3_neighbour(zone, owner, true).and_then(|n| nsec3::owner_hash(&n));
    if want.as_ref().map(|h| &h[..]) != Some(next) {
        problems.push(format!("{owner}: NSEC3 next hash is not the next owner's"));
    }
    let Some(here) = nsec3::owner_hash(owner) else {
        return vec![format!("{owner}: NSEC3 owner is not a hash")];
    };
    let prev_next = nsec3_neighbour(zone, owner, false)
        .and_then(|p| nsec3_at(zone, &p))
        .and_then(|rd| nsec3::nsec3_parts(rd))
        .map(|p| p.1);
    if prev_next != Some(&here[..]) {
        problems.push(format!(
            "{owner}: the NSEC3 owner before it does not point to it"
        ));
    }
    problems
}

/// Up to this many signature jobs (a small delta) are verified on the calling thread: starting
/// threads would cost more than the checks.
const INLINE_JOBS: usize = 32;

/// Verifies signature jobs on all cores; returns the problems.
fn verify_jobs(jobs: &[(&Name, &RRset, Vec<&Sig>)], dnskeys: &[Vec<u8>], now: u32) -> Vec<String> {
    if jobs.is_empty() {
        return Vec::new();
    }
    let part_problems = |part: &[(&Name, &RRset, Vec<&Sig>)]| {
        let mut out = Vec::new();
        for (name, set, sigs) in part {
            let results: Vec<Result<(), String>> = sigs
                .iter()
                .map(|s| verify_rrsig(name, set, &s.rdata, dnskeys, now))
                .collect();
            if !results.iter().any(|r| r.is_ok()) {
                let why = results
                    .into_iter()
                    .filter_map(|r| r.err())
                    .collect::<Vec<_>>()
                    .join("; ");
                out.push(format!("{name} {}: {why}", rtype::type_name(set.rtype)));
            }
        }
        out
    };
    if jobs.len() <= INLINE_JOBS {
        return part_problems(jobs);
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let chunk = jobs.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| s.spawn(move || part_problems(part)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec!["verifier thread panicked".into()])
            })
            .collect()
    })
}

fn sample_hash(name: &Name, rtype: u16) -> u64 {
    let mut h: u64 = 0x84222325cbf29ce4;
    for b in name
        .as_wire()
        .iter()
        .map(|b| b.to_ascii_lowercase())
        .chain(rtype.to_be_bytes())
    {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}
