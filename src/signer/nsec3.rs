//! NSEC3 (RFC 5155 §5 hash, §7.1 zone signing) with RFC 9276 guidance: SHA-1, iterations and
//! salt from the policy (0 and empty by default), optional opt-out.

use super::NameKind;
use super::SignError;
use crate::dns::name::Name;
use crate::dns::rdata;
use crate::dns::rtype::t;
use crate::zone::data::{Node, RRset, Zone};
use data_encoding::BASE32HEX_NOPAD;
use ring::digest::{Context, SHA1_FOR_LEGACY_USE_ONLY};

/// RFC 5155 §5: IH(salt, x, 0) = H(x || salt); IH(salt, x, k) = H(IH(salt, x, k-1) || salt).
pub fn hash(name: &Name, salt: &[u8], iterations: u16) -> [u8; HASH_LEN] {
    let mut ctx = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&name.canonical_wire());
    ctx.update(salt);
    let mut h: [u8; 20] = [0; 20];
    h.copy_from_slice(ctx.finish().as_ref());
    for _ in 0..iterations {
        let mut ctx = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
        ctx.update(&h);
        ctx.update(salt);
        h.copy_from_slice(ctx.finish().as_ref());
    }
    h
}

/// The NSEC3 owner name of a hash: base32hex label under the zone apex.
pub fn owner_of(hash: &[u8], origin: &Name) -> Result<Name, String> {
    let label = BASE32HEX_NOPAD.encode(hash).to_ascii_lowercase();
    origin.prepend(label.as_bytes())
}

/// The types the NSEC3 record of a non-occluded node lists (RFC 5155 §7.1): a secure
/// delegation NS, DS, RRSIG; an insecure one NS, or `None` under opt-out (no NSEC3 record); any
/// other node its types, RRSIG when it has any. An NSEC3 or NSEC RRset at the node (an unsigned
/// name that happens to be an NSEC3 owner) does not count.
pub(crate) fn nsec3_types(kind: NameKind, node: &Node, opt_out: bool) -> Option<Vec<u16>> {
    match kind {
        NameKind::Occluded => None,
        NameKind::Delegation { secure } => {
            if !secure && opt_out {
                None
            } else if secure {
                Some(vec![t::NS, t::DS, t::RRSIG])
            } else {
                Some(vec![t::NS])
            }
        }
        NameKind::Auth => {
            let mut v: Vec<u16> = node
                .rrsets
                .iter()
                .map(|r| r.rtype)
                .filter(|t| !matches!(*t, t::NSEC3 | t::NSEC))
                .collect();
            if !v.is_empty() {
                v.push(t::RRSIG);
            }
            Some(v)
        }
    }
}

/// Octets of an NSEC3 hash (SHA-1, RFC 5155 §5).
pub const HASH_LEN: usize = 20;

/// NSEC3 RDATA (RFC 5155 §3.2): SHA-1, `flags` (1: opt-out), iterations, salt, next hash,
/// type bitmap.
pub(crate) fn nsec3_rdata(
    flags: u8,
    iterations: u16,
    salt: &[u8],
    next: &[u8; HASH_LEN],
    bitmap: &[u8],
) -> Vec<u8> {
    let mut rd = Vec::with_capacity(5 + salt.len() + 1 + HASH_LEN + bitmap.len());
    rd.push(1); // SHA-1
    rd.push(flags);
    rd.extend_from_slice(&iterations.to_be_bytes());
    rd.push(salt.len() as u8);
    rd.extend_from_slice(salt);
    rd.push(HASH_LEN as u8);
    rd.extend_from_slice(next);
    rd.extend_from_slice(bitmap);
    rd
}

/// The parts of an NSEC3 RDATA: (flags, next hash, type bitmap).
pub(crate) fn nsec3_parts(rd: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let flags = *rd.get(1)?;
    let salt_len = *rd.get(4)? as usize;
    let hl = *rd.get(5 + salt_len)? as usize;
    let start = 6 + salt_len;
    let next = rd.get(start..start + hl)?;
    Some((flags, next, rd.get(start + hl..)?))
}

/// The hash an NSEC3 owner name stands for (its first label, base32hex).
pub(crate) fn owner_hash(owner: &Name) -> Option<[u8; HASH_LEN]> {
    let label = owner.first_label()?.to_ascii_uppercase();
    let v = BASE32HEX_NOPAD.decode(&label).ok()?;
    v.try_into().ok()
}

/// Where an NSEC3 record's owner hash comes from (for the collision message).
/// The NSEC3 entries of a part of the zone: (hash, types bitmap, source) per owner, and the
/// empty non-terminals found above its names.
type Part<'a> = (Vec<([u8; 20], Vec<u8>, Source<'a>)>, Vec<Name>);

enum Source<'a> {
    Node(&'a Name),
    Ent(Name),
}

impl Source<'_> {
    fn name(&self) -> &Name {
        match self {
            Source::Node(n) => n,
            Source::Ent(n) => n,
        }
    }
}

/// Adds NSEC3 records for every authoritative name, delegation (unless opt-out skips an insecure
/// one) and empty non-terminal. Hashing runs on all cores.
pub fn add_nsec3_chain(
    zone: &mut Zone,
    kinds: &[NameKind],
    ttl: u32,
    iterations: u16,
    salt: &[u8],
    opt_out: bool,
) -> Result<(), SignError> {
    let mut phases = super::phase::Phases::new("nsec3");
    let origin = zone.origin.clone();
    let items: Vec<(&Name, &Node, &NameKind)> = zone
        .nodes
        .iter()
        .zip(kinds)
        .map(|((n, node), k)| (n, node, k))
        .collect();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let per = items.len().div_ceil(threads).max(1);
    // (hash, types bitmap, source) per owner, and the empty non-terminals seen, per part
    let parts: Vec<Part<'_>> = std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|part| {
                let (zone, origin) = (&*zone, &origin);
                s.spawn(move || {
                    let mut entries = Vec::with_capacity(part.len());
                    let mut ents = Vec::new();
                    for (name, node, kind) in part {
                        if matches!(kind, NameKind::Occluded) {
                            continue;
                        }
                        // None: an insecure delegation left out by opt-out, whose empty
                        // non-terminal ancestors are still recorded below
                        let types = nsec3_types(**kind, node, opt_out);
                        // ancestors between the name and the apex that hold nothing are empty
                        // non-terminals
                        if name.label_count() > origin.label_count() + 1 {
                            let mut anc = name.parent();
                            while let Some(a) = anc {
                                if !a.is_subdomain_of(origin) || &a == origin {
                                    break;
                                }
                                let next = a.parent();
                                if !zone.nodes.contains_key(&a) {
                                    ents.push(a);
                                }
                                anc = next;
                            }
                        }
                        let Some(mut types) = types else {
                            continue;
                        };
                        let bm = rdata::encode_bitmap(&mut types);
                        entries.push((hash(name, salt, iterations), bm, Source::Node(name)));
                    }
                    (entries, ents)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    });
    let mut entries = Vec::with_capacity(items.len());
    let mut ents: Vec<Name> = Vec::new();
    for (e, n) in parts {
        entries.extend(e);
        ents.extend(n);
    }
    // an empty non-terminal is by definition not a node, so never one of the entries above
    ents.sort_unstable();
    ents.dedup();
    for e in ents {
        entries.push((hash(&e, salt, iterations), Vec::new(), Source::Ent(e)));
    }
    phases.mark("hash");
    entries.sort_unstable_by_key(|e| e.0);
    for w in entries.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(SignError::Nsec3Collision(format!(
                "{} and {}",
                w[0].2.name(),
                w[1].2.name()
            )));
        }
    }
    let n = entries.len();
    let flags = if opt_out { 1u8 } else { 0 };
    let make = |i: usize| -> Result<(Name, RRset), SignError> {
        let next = &entries[(i + 1) % n].0;
        let (h, bm, _) = &entries[i];
        let rd = nsec3_rdata(flags, iterations, salt, next, bm);
        let owner = owner_of(h, &origin).map_err(SignError::Zone)?;
        Ok((
            owner,
            RRset {
                rtype: t::NSEC3,
                ttl,
                rdatas: vec![rd],
            },
        ))
    };
    let per = n.div_ceil(threads).max(1);
    let made: Vec<Result<Vec<(Name, RRset)>, SignError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(per)
            .map(|start| {
                let make = &make;
                s.spawn(move || (start..(start + per).min(n)).map(make).collect())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    });
    let mut records: Vec<(Name, RRset)> = Vec::with_capacity(n);
    for part in made {
        records.extend(part?);
    }
    phases.mark("records");
    drop(entries);
    drop(items);
    phases.mark("free");
    // hash order is the owners' canonical order (same length base32hex labels under the apex);
    // sort anyway if not, then merge with the zone's nodes in one pass
    if !records.windows(2).all(|w| w[0].0 < w[1].0) {
        records.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let old = std::mem::take(&mut zone.nodes);
    let mut merged: Vec<(Name, Node)> = Vec::with_capacity(old.len() + records.len());
    let mut new = records.into_iter().peekable();
    for (name, mut node) in old {
        while let Some((n, set)) = new.next_if(|(n, _)| n < &name) {
            let mut fresh = Node::default();
            fresh.put(set);
            merged.push((n, fresh));
        }
        if let Some((_, set)) = new.next_if(|(n, _)| n == &name) {
            node.put(set);
        }
        merged.push((name, node));
    }
    for (n, set) in new {
        let mut fresh = Node::default();
        fresh.put(set);
        merged.push((n, fresh));
    }
    phases.mark("merge");
    zone.nodes = merged.into_iter().collect();
    phases.mark("map");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5155_appendix_a_vectors() {
        let salt = [0xaa, 0xbb, 0xcc, 0xdd];
        let h = hash(&Name::parse("example.", None).unwrap(), &salt, 12);
        assert_eq!(
            BASE32HEX_NOPAD.encode(&h).to_ascii_lowercase(),
            "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"
        );
        let h = hash(&Name::parse("a.example.", None).unwrap(), &salt, 12);
        assert_eq!(
            BASE32HEX_NOPAD.encode(&h).to_ascii_lowercase(),
            "35mthgpgcu1qg68fab165klnsnk3dpvl"
        );
    }
}
