//! Self-check of a signed zone before it is published (DESIGN.md property 2): every
//! authoritative RRset carries a valid, current signature for every algorithm in the DNSKEY RRset
//! (RFC 4035 §2.2), nothing non-authoritative is signed, and the NSEC/NSEC3 chain is closed.

use super::canonical;
use super::{classify, NameKind};
use crate::dns::name::Name;
use crate::dns::rtype::{self, t};
use crate::zone::data::{RRset, Sig, Zone};
use ring::signature;

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
    let Some(dnskeys) = zone.nodes.get(&zone.origin).and_then(|n| n.get(t::DNSKEY)) else {
        return vec!["no DNSKEY RRset at the apex".into()];
    };
    let mut algs: Vec<u8> = dnskeys
        .rdatas
        .iter()
        .filter_map(|k| k.get(3).copied())
        .collect();
    algs.sort_unstable();
    algs.dedup();
    let kinds = classify(zone);
    let nsec3 = zone
        .nodes
        .get(&zone.origin)
        .is_some_and(|n| n.has(t::NSEC3PARAM));
    let mut chain: Vec<(Name, Vec<u8>)> = Vec::new();
    let mut jobs: Vec<(&Name, &RRset, Vec<&Sig>)> = Vec::new();
    for ((name, node), kind) in zone.nodes.iter().zip(&kinds) {
        if problems.len() > 50 {
            problems.push("… more problems omitted".into());
            break;
        }
        for set in &node.rrsets {
            let must_sign = match kind {
                NameKind::Auth => true,
                NameKind::Delegation { .. } => matches!(set.rtype, t::DS | t::NSEC),
                NameKind::Occluded => false,
            };
            let sigs: Vec<&Sig> = node.sigs_for(set.rtype).collect();
            if !must_sign {
                if !sigs.is_empty() {
                    problems.push(format!(
                        "{name} {}: signed but not authoritative",
                        rtype::type_name(set.rtype)
                    ));
                }
                continue;
            }
            for alg in &algs {
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
            }
        }
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
        let Some(end) = crate::dns::wire::name_len(rd, 0) else {
            problems.push("malformed NSEC".into());
            continue;
        };
        let next = Name::from_wire(&rd[..end]).ok();
        let want = &chain[(i + 1) % chain.len()].0;
        if next.as_ref() != Some(want) {
            problems.push(format!("{}: NSEC next name is not {want}", chain[i].0));
        }
    }
    problems
}

/// Verifies signature jobs on all cores; returns the problems.
fn verify_jobs(jobs: &[(&Name, &RRset, Vec<&Sig>)], dnskeys: &[Vec<u8>], now: u32) -> Vec<String> {
    if jobs.is_empty() {
        return Vec::new();
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let chunk = jobs.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
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
                })
            })
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
