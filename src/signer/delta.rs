//! Diff-driven signing (issue 4): a change of a few names upstream re-signs only what that
//! change touches, at a cost proportional to the change, not to the zone.
//!
//! [`sign_zone_delta`] updates the previous signed version in place into the signed version of
//! the new unsigned input. The result is exactly what [`super::sign_zone_incremental`] makes
//! from the same input (same records, same reused and new signatures), provided no signature
//! of the previous version outside the change is due for refresh.
//!
//! What a change reaches, and how it is found without walking the zone:
//!
//! - the touched names themselves (their data, their kind);
//! - every name below a touched name that becomes or stops being a zone cut (a delegation or a
//!   DNAME owner): it changes between authoritative and occluded. Those names are contiguous in
//!   canonical order and found with one `range()`;
//! - NSEC: the predecessor in the chain of every such name (its next name may change), found by
//!   walking back from the name, a whole occluded subtree at a time;
//! - NSEC3: the NSEC3 entries of those names and of their ancestors (empty non-terminals come
//!   and go with the names below them), and the predecessor in hash order of every entry added
//!   or removed, found by walking the NSEC3 owners around the hash in the signed zone itself.
//!
//! Every node so reached is rebuilt as the full signer would build it, and its signatures are
//! kept where [`super::reusable_in`] allows or made anew; the names whose node actually changed
//! are returned, for `journal::diff_names` and [`super::verify::check_zone_delta`].
//!
//! A change the delta cannot express cheaply — another SOA TTL or MINIMUM (every NSEC/NSEC3
//! TTL follows them), other keys or NSEC3 parameters than the previous version was signed
//! with, a DNAME at the apex — falls back to the full [`super::sign_zone_incremental`] and a
//! comparison of the two versions (a walk over the zone, once).

use super::nsec3::{self, HASH_LEN};
use super::{
    apex_sets, by_ksk, check_keys, denial_ttl, is_cut, kind_of, nsec_types, occluding_cut,
    sign_set, sort_sigs, ActiveKey, Denial, SignError, SignParams,
};
use crate::dns::name::{Name, MAX_LABEL_LEN};
use crate::dns::rdata;
use crate::dns::rtype::t;
use crate::zone::data::{Node, RRset, Zone};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound::{self, Excluded, Included, Unbounded};

/// Updates `signed` (the previous signed version, made by [`super::sign_zone`] or
/// [`super::sign_zone_incremental`] with the same `keys` and `params`) in place into the signed
/// version of `unsigned`, and returns the owner names whose node changed (added, removed or
/// modified, NSEC3 owners included).
///
/// `unsigned` is the input [`super::sign_zone_incremental`] would get (serial set, apex
/// overlays merged, no DNSSEC records, no empty nodes); `touched` holds every owner whose
/// unsigned content may differ from the previous version (the apex is always treated as
/// touched). The result equals `sign_zone_incremental(unsigned.clone(), &previous, refresh,
/// keys, params, now)` as long as no signature of `previous` outside the change is due for
/// refresh at `now` (earliest expiration − `refresh` after `now`): the caller checks that and
/// takes the full path otherwise. On error (a key that fails to sign, an NSEC3 hash collision)
/// `signed` is left as it was.
pub fn sign_zone_delta(
    signed: &mut Zone,
    unsigned: &Zone,
    touched: &BTreeSet<Name>,
    keys: &[ActiveKey],
    params: &SignParams,
    now: u64,
    refresh: u32,
) -> Result<BTreeSet<Name>, SignError> {
    check_keys(keys)?;
    let origin = unsigned.origin.clone();
    if signed.origin != origin {
        return Err(SignError::Zone(format!(
            "previous version is of {}, not {origin}",
            signed.origin
        )));
    }
    let dttl = denial_ttl(unsigned);
    let apex_add = apex_sets(keys, params, dttl);
    if !delta_applies(signed, unsigned, &apex_add, keys, params, dttl) {
        return full_fallback(signed, unsigned, keys, params, now, refresh);
    }
    let mut d = Delta {
        zone: signed,
        saved: BTreeMap::new(),
    };

    // the names whose data or kind may change
    let mut reach: BTreeSet<Name> = touched
        .iter()
        .filter(|n| n.is_subdomain_of(&origin))
        .cloned()
        .collect();
    reach.insert(origin.clone());
    let mut below = Vec::new();
    for x in &reach {
        if x == &origin {
            continue;
        }
        let was = d.zone.nodes.get(x).is_some_and(|n| is_cut(&origin, x, n));
        let is = unsigned.nodes.get(x).is_some_and(|n| is_cut(&origin, x, n));
        if was != is {
            below.extend(descendants(d.zone, x));
            below.extend(descendants(unsigned, x));
        }
    }
    reach.extend(below);

    // NSEC3: the chain entries that may change are those of the names reached and of their
    // ancestors (empty non-terminals); their membership in the previous chain, before the
    // zone changes
    let nsec3 = match &params.denial {
        Denial::Nsec => None,
        Denial::Nsec3 {
            iterations,
            salt,
            opt_out,
        } => {
            let mut cands: BTreeSet<Name> = BTreeSet::new();
            for x in &reach {
                let mut a = Some(x.clone());
                while let Some(n) = a {
                    if n == origin || !cands.insert(n.clone()) {
                        break;
                    }
                    a = n.parent();
                }
            }
            cands.insert(origin.clone());
            let entries: Vec<Entry> = cands
                .into_iter()
                .map(|name| Entry {
                    hash: nsec3::hash(&name, salt, *iterations),
                    was: nsec3_entry(d.zone, &name, *opt_out).is_some(),
                    name,
                })
                .collect();
            Some((entries, *iterations, salt.as_slice(), *opt_out))
        }
    };

    // the unsigned data of the names reached
    for x in &reach {
        d.set_data(x, unsigned, &apex_add);
    }

    let chain = match nsec3 {
        None => {
            d.nsec_chain(&reach, dttl);
            Ok(())
        }
        Some((entries, iterations, salt, opt_out)) => {
            d.nsec3_chain(entries, iterations, salt, opt_out, dttl)
        }
    };
    let result = chain.and_then(|()| d.sign_saved(keys, params, now, refresh));
    if result.is_err() {
        d.restore();
    }
    result
}

/// No signature [`sign_zone_delta`] (or any signing) makes at `now` expires before this time:
/// `now + validity − jitter` for zone data, the DNSKEY values for the DNSKEY/CDS/CDNSKEY
/// RRsets. With the earliest expiration of the previous version, `min(previous, this)` bounds
/// the new version's earliest expiration from below without walking it (the bound the delta
/// path's refresh precondition is checked against).
pub fn earliest_new_expiration(params: &SignParams, now: u64) -> u64 {
    let zone = u64::from(params.validity.saturating_sub(params.jitter));
    let keys = u64::from(params.validity_dnskey.saturating_sub(params.dnskey_jitter));
    now + zone.min(keys)
}

/// One NSEC3 entry that may change: its source name, hash, and whether the previous chain had
/// it.
struct Entry {
    name: Name,
    hash: [u8; HASH_LEN],
    was: bool,
}

/// The zone being updated, and the previous content of every node changed so far (`None`: it
/// did not exist): the signatures to reuse come from there.
struct Delta<'a> {
    zone: &'a mut Zone,
    saved: BTreeMap<Name, Option<Node>>,
}

impl Delta<'_> {
    /// Signs every node changed so far, keeping the previous signatures where reusable, and
    /// returns the names whose node differs from the previous version.
    fn sign_saved(
        &mut self,
        keys: &[ActiveKey],
        params: &SignParams,
        now: u64,
        refresh: u32,
    ) -> Result<BTreeSet<Name>, SignError> {
        let origin = self.zone.origin.clone();
        let signer = origin.to_lowercase();
        let mut changed = BTreeSet::new();
        let mut buf = Vec::with_capacity(512);
        for (name, old) in &self.saved {
            let kind = kind_of(self.zone, name);
            let Some(node) = self.zone.nodes.get(name) else {
                if old.is_some() {
                    changed.insert(name.clone());
                }
                continue;
            };
            if node.rrsets.is_empty() {
                self.zone.nodes.remove(name);
                if old.is_some() {
                    changed.insert(name.clone());
                }
                continue;
            }
            let mut sigs = Vec::new();
            for set in &node.rrsets {
                if !super::signs(kind, set.rtype) {
                    continue;
                }
                sign_set(
                    name,
                    set,
                    by_ksk(&origin, name, set.rtype),
                    keys,
                    params,
                    now,
                    Some((old.as_ref(), refresh)),
                    &signer,
                    &mut buf,
                    &mut |s| sigs.push(s),
                )?;
            }
            sort_sigs(&mut sigs);
            if let Some(node) = self.zone.nodes.get_mut(name) {
                node.sigs = sigs;
                if old.as_ref() != Some(&*node) {
                    changed.insert(name.clone());
                }
            }
        }
        Ok(changed)
    }

    /// Puts back the previous content of every node changed (after an error).
    fn restore(&mut self) {
        for (name, old) in std::mem::take(&mut self.saved) {
            self.zone.nodes.remove(&name);
            if let Some(old) = old {
                self.zone.nodes.insert(name, old);
            }
        }
    }

    /// Remembers the previous content of `name` before its first change.
    fn save(&mut self, name: &Name) {
        if !self.saved.contains_key(name) {
            let old = self.zone.nodes.get(name).cloned();
            self.saved.insert(name.clone(), old);
        }
    }

    /// Gives `x` the unsigned data of `unsigned` (and, at the apex, the DNSKEY/NSEC3PARAM
    /// RRsets), keeping an NSEC3 RRset it may own and dropping its NSEC (rebuilt later).
    fn set_data(&mut self, x: &Name, unsigned: &Zone, apex_add: &[RRset]) {
        let src = unsigned.nodes.get_key_value(x);
        if src.is_none() && !self.zone.nodes.contains_key(x) {
            return;
        }
        let mut node = Node {
            rrsets: src.map(|(_, n)| n.rrsets.clone()).unwrap_or_default(),
            sigs: Vec::new(),
        };
        if x == &unsigned.origin {
            for set in apex_add {
                node.put(set.clone());
            }
        }
        if let Some(n3) = self.zone.nodes.get(x).and_then(|n| n.get(t::NSEC3)) {
            node.put(n3.clone());
        }
        self.save(x);
        self.zone.nodes.remove(x);
        if !node.rrsets.is_empty() {
            // the owner name keeps the case the new version spells it with
            let key = src.map(|(k, _)| k.clone()).unwrap_or_else(|| x.clone());
            self.zone.nodes.insert(key, node);
        }
    }

    /// NSEC: rebuilds the records of the names reached and of their predecessors in the chain.
    fn nsec_chain(&mut self, reach: &BTreeSet<Name>, ttl: u32) {
        let mut targets: BTreeSet<Name> = reach.clone();
        for x in reach {
            targets.insert(nsec_prev_member(self.zone, x));
        }
        for x in targets {
            let rd = match self.zone.nodes.get(&x) {
                Some(node) if is_member(self.zone, &x, node) => {
                    let kind = kind_of(self.zone, &x);
                    let next = nsec_next_member(self.zone, &x);
                    let bitmap = rdata::encode_bitmap(&mut nsec_types(kind, node));
                    let mut rd = Vec::with_capacity(next.wire_len() + bitmap.len());
                    rd.extend_from_slice(next.as_wire());
                    rd.extend_from_slice(&bitmap);
                    Some(rd)
                }
                Some(node) if node.has(t::NSEC) => None,
                _ => continue,
            };
            let set = rd.map(|rd| RRset {
                rtype: t::NSEC,
                ttl,
                rdatas: vec![rd],
            });
            if self.zone.nodes.get(&x).and_then(|n| n.get(t::NSEC)) == set.as_ref() {
                continue;
            }
            self.save(&x);
            if let Some(node) = self.zone.nodes.get_mut(&x) {
                match set {
                    Some(set) => node.put(set),
                    None => {
                        node.remove(t::NSEC);
                    }
                }
            }
        }
    }

    /// NSEC3: applies the entries' new state, then sets the next hash of every entry added or
    /// changed and of the predecessor of every entry added or removed.
    fn nsec3_chain(
        &mut self,
        entries: Vec<Entry>,
        iterations: u16,
        salt: &[u8],
        opt_out: bool,
        ttl: u32,
    ) -> Result<(), SignError> {
        let origin = self.zone.origin.clone();
        let now: Vec<(Entry, Option<Vec<u16>>)> = entries
            .into_iter()
            .map(|e| {
                let types = nsec3_entry(self.zone, &e.name, opt_out);
                (e, types)
            })
            .collect();
        // collisions (RFC 5155 §7.1): two new entries with one hash, or a new entry on the hash
        // of an entry of the previous chain that stays
        let mut fresh: BTreeMap<[u8; HASH_LEN], &Name> = BTreeMap::new();
        let left: BTreeSet<[u8; HASH_LEN]> = now
            .iter()
            .filter(|(e, _)| e.was)
            .map(|(e, _)| e.hash)
            .collect();
        for (e, types) in &now {
            if types.is_none() {
                continue;
            }
            if let Some(other) = fresh.insert(e.hash, &e.name) {
                return Err(SignError::Nsec3Collision(format!("{other} and {}", e.name)));
            }
            if !left.contains(&e.hash) {
                let owner = nsec3::owner_of(&e.hash, &origin).map_err(SignError::Zone)?;
                if self.zone.nodes.get(&owner).is_some_and(|n| n.has(t::NSEC3)) {
                    return Err(SignError::Nsec3Collision(format!(
                        "{} and a name of the zone hashed to {owner}",
                        e.name
                    )));
                }
            }
        }
        let flags = u8::from(opt_out);
        let mut moved: Vec<Name> = Vec::new();
        let mut dirty: BTreeSet<Name> = BTreeSet::new();
        // removals first: a hash may pass from one source name to another
        for (e, types) in &now {
            if e.was && types.is_none() && !fresh.contains_key(&e.hash) {
                let owner = nsec3::owner_of(&e.hash, &origin).map_err(SignError::Zone)?;
                if self.zone.nodes.get(&owner).is_some_and(|n| n.has(t::NSEC3)) {
                    self.save(&owner);
                    if let Some(node) = self.zone.nodes.get_mut(&owner) {
                        node.remove(t::NSEC3);
                        if node.rrsets.is_empty() {
                            self.zone.nodes.remove(&owner);
                        }
                    }
                    moved.push(owner);
                }
            }
        }
        for (e, types) in now {
            let Some(mut types) = types else { continue };
            let owner = nsec3::owner_of(&e.hash, &origin).map_err(SignError::Zone)?;
            let bitmap = rdata::encode_bitmap(&mut types);
            // the next hash is set below; keep the current one meanwhile
            let cur = self
                .zone
                .nodes
                .get(&owner)
                .and_then(|n| n.get(t::NSEC3))
                .and_then(|s| s.rdatas.first())
                .and_then(|rd| nsec3::nsec3_parts(rd))
                .and_then(|(_, next, _)| <[u8; HASH_LEN]>::try_from(next).ok());
            if cur.is_none() {
                moved.push(owner.clone());
            }
            let rd = nsec3::nsec3_rdata(flags, iterations, salt, &cur.unwrap_or(e.hash), &bitmap);
            let set = RRset {
                rtype: t::NSEC3,
                ttl,
                rdatas: vec![rd],
            };
            if self.zone.nodes.get(&owner).and_then(|n| n.get(t::NSEC3)) != Some(&set) {
                self.save(&owner);
                self.zone.nodes.entry(owner.clone()).or_default().put(set);
            }
            dirty.insert(owner);
        }
        for m in &moved {
            if let Some(p) = nsec3_neighbour(self.zone, m, false) {
                dirty.insert(p);
            }
        }
        for owner in dirty {
            let Some(next) = nsec3_neighbour(self.zone, &owner, true) else {
                continue;
            };
            let Some(next_hash) = nsec3::owner_hash(&next) else {
                return Err(SignError::Zone(format!("{next}: not an NSEC3 owner name")));
            };
            let Some(rd) = self
                .zone
                .nodes
                .get(&owner)
                .and_then(|n| n.get(t::NSEC3))
                .and_then(|s| s.rdatas.first())
            else {
                continue;
            };
            let start = 6 + salt.len();
            if rd.get(start..start + HASH_LEN) == Some(&next_hash[..]) {
                continue;
            }
            self.save(&owner);
            if let Some(rd) = self
                .zone
                .nodes
                .get_mut(&owner)
                .and_then(|n| n.rrsets.iter_mut().find(|s| s.rtype == t::NSEC3))
                .and_then(|s| s.rdatas.first_mut())
            {
                if let Some(f) = rd.get_mut(start..start + HASH_LEN) {
                    f.copy_from_slice(&next_hash);
                }
            }
        }
        Ok(())
    }
}

/// The whole map as a range (typed bounds: no turbofish, so any map with a `range` over
/// name bounds serves).
const ALL: (Bound<&Name>, Bound<&Name>) = (Unbounded, Unbounded);

/// Names strictly below `x` with a node, in canonical order (a contiguous range).
fn descendants(zone: &Zone, x: &Name) -> Vec<Name> {
    zone.nodes
        .range((Excluded(x), Unbounded))
        .map(|(n, _)| n)
        .take_while(|n| n.is_subdomain_of(x))
        .cloned()
        .collect()
}

/// A name greater than every name below `x` that does not sit under the largest possible
/// label (`\255` × 63), or `None` when such a name would be too long.
fn past_subtree(x: &Name) -> Option<Name> {
    x.prepend(&[0xff; MAX_LABEL_LEN]).ok()
}

/// The node holds data of the unsigned zone (not only an NSEC3 or NSEC record signet made).
pub(crate) fn is_data_node(origin: &Name, name: &Name, node: &Node) -> bool {
    name == origin
        || node
            .rrsets
            .iter()
            .any(|r| !matches!(r.rtype, t::NSEC | t::NSEC3))
}

/// The node is a member of the NSEC chain: data of the zone, not occluded.
pub(crate) fn is_member(zone: &Zone, name: &Name, node: &Node) -> bool {
    is_data_node(&zone.origin, name, node) && occluding_cut(zone, name).is_none()
}

/// The NSEC chain member following `after` (wrapping to the apex), skipping occluded subtrees
/// whole.
pub(crate) fn nsec_next_member(zone: &Zone, after: &Name) -> Name {
    let mut from = after.clone();
    loop {
        let Some((y, node)) = zone.nodes.range((Excluded(&from), Unbounded)).next() else {
            return zone.origin.clone();
        };
        if !is_data_node(&zone.origin, y, node) {
            from = y.clone();
            continue;
        }
        match occluding_cut(zone, y) {
            None => return y.clone(),
            Some(c) => {
                from = match past_subtree(&c) {
                    Some(p) if &p > y => p,
                    _ => y.clone(),
                }
            }
        }
    }
}

/// The NSEC chain member before `before` (wrapping to the last member).
pub(crate) fn nsec_prev_member(zone: &Zone, before: &Name) -> Name {
    let mut to: Option<Name> = Some(before.clone());
    loop {
        let found = match &to {
            Some(b) => zone.nodes.range((Unbounded, Excluded(b))).next_back(),
            None => zone.nodes.range(ALL).next_back(),
        };
        let Some((y, node)) = found else {
            if to.is_none() {
                return zone.origin.clone();
            }
            to = None;
            continue;
        };
        if !is_data_node(&zone.origin, y, node) {
            to = Some(y.clone());
            continue;
        }
        // everything between a cut and the names below it is below it too: the cut precedes
        return occluding_cut(zone, y).unwrap_or_else(|| y.clone());
    }
}

/// The NSEC3 entry of `name` in `zone` (its bitmap's types; an empty non-terminal has none),
/// or `None` when the chain has no entry for it: as [`nsec3::add_nsec3_chain`] decides, reading
/// only the data of the unsigned zone (NSEC3 records and their owners are ignored).
pub(crate) fn nsec3_entry(zone: &Zone, name: &Name, opt_out: bool) -> Option<Vec<u16>> {
    let origin = &zone.origin;
    if !name.is_subdomain_of(origin) || occluding_cut(zone, name).is_some() {
        return None;
    }
    match zone.nodes.get(name) {
        Some(node) if is_data_node(origin, name, node) => {
            nsec3::nsec3_types(kind_of(zone, name), node, opt_out)
        }
        _ => {
            // an empty non-terminal: below the apex, with a node below it (not occluded, as
            // nothing above it is a cut and the first name below it has no cut above it
            // either). NSEC3 owners sit right below the apex, never below another name.
            if name == origin {
                return None;
            }
            let below = zone
                .nodes
                .range((Excluded(name), Unbounded))
                .next()
                .is_some_and(|(n, _)| n.is_subdomain_of(name));
            below.then(Vec::new)
        }
    }
}

/// The next (`forward`) or previous NSEC3 owner around `owner` in hash order, wrapping around;
/// `owner` itself when it is the only one. Nodes without an NSEC3 RRset are skipped, names
/// deeper than the NSEC3 owners a whole subtree at a time.
pub(crate) fn nsec3_neighbour(zone: &Zone, owner: &Name, forward: bool) -> Option<Name> {
    let depth = zone.origin.label_count() + 1;
    let mut bound: Option<Name> = Some(owner.clone());
    let mut inclusive = false;
    let mut wrapped = false;
    loop {
        let found = match (&bound, forward, inclusive) {
            (Some(b), true, _) => zone.nodes.range((Excluded(b), Unbounded)).next(),
            (Some(b), false, false) => zone.nodes.range((Unbounded, Excluded(b))).next_back(),
            (Some(b), false, true) => zone.nodes.range((Unbounded, Included(b))).next_back(),
            (None, true, _) => zone.nodes.range(ALL).next(),
            (None, false, _) => zone.nodes.range(ALL).next_back(),
        };
        inclusive = false;
        let Some((y, node)) = found else {
            if wrapped {
                return None;
            }
            wrapped = true;
            bound = None;
            continue;
        };
        if node.has(t::NSEC3) {
            return Some(y.clone());
        }
        let d = y.label_count();
        if d > depth {
            // skip the subtree of the name right below the apex that holds y
            let top = y.strip_left(d - depth)?;
            if forward {
                bound = Some(match past_subtree(&top) {
                    Some(p) if &p > y => p,
                    _ => y.clone(),
                });
            } else {
                bound = Some(top);
                inclusive = true;
            }
        } else {
            bound = Some(y.clone());
        }
    }
}

/// Whether the previous version can be updated by a delta: same SOA TTL and MINIMUM (the
/// NSEC/NSEC3 TTL), same DNSKEY RRset, NSEC3PARAM and opt-out, same signing keys, no DNAME at
/// the apex (which occludes the whole zone).
fn delta_applies(
    signed: &Zone,
    unsigned: &Zone,
    apex_add: &[RRset],
    keys: &[ActiveKey],
    params: &SignParams,
    dttl: u32,
) -> bool {
    let origin = &signed.origin;
    let Some(apex) = signed.nodes.get(origin) else {
        return false;
    };
    if denial_ttl(signed) != dttl
        || apex.has(t::DNAME)
        || unsigned.nodes.get(origin).is_none_or(|n| n.has(t::DNAME))
    {
        return false;
    }
    for set in apex_add {
        if apex.get(set.rtype) != Some(set) {
            return false;
        }
    }
    match &params.denial {
        Denial::Nsec => {
            if apex.has(t::NSEC3PARAM) || !apex.has(t::NSEC) {
                return false;
            }
        }
        Denial::Nsec3 {
            iterations,
            salt,
            opt_out,
        } => {
            let h = nsec3::hash(origin, salt, *iterations);
            let Ok(owner) = nsec3::owner_of(&h, origin) else {
                return false;
            };
            let flags = signed
                .nodes
                .get(&owner)
                .and_then(|n| n.get(t::NSEC3))
                .and_then(|s| s.rdatas.first())
                .and_then(|rd| nsec3::nsec3_parts(rd))
                .map(|(f, _, _)| f);
            if flags != Some(u8::from(*opt_out)) {
                return false;
            }
        }
    }
    // the keys that signed the SOA and the DNSKEY RRset are the keys of each role now
    let signers = |rtype: u16| -> BTreeSet<(u8, u16)> {
        apex.sigs_for(rtype)
            .filter(|s| s.rdata.len() > 18)
            .map(|s| (s.rdata[2], u16::from_be_bytes([s.rdata[16], s.rdata[17]])))
            .collect()
    };
    let role = |ksk: bool| -> BTreeSet<(u8, u16)> {
        keys.iter()
            .filter(|k| if ksk { k.signs_keys } else { k.signs_zone })
            .map(|k| (k.key.algorithm(), k.tag))
            .collect()
    };
    signers(t::SOA) == role(false) && signers(t::DNSKEY) == role(true)
}

/// The full path, for a change the delta does not cover: signs anew with reuse and compares
/// the versions.
fn full_fallback(
    signed: &mut Zone,
    unsigned: &Zone,
    keys: &[ActiveKey],
    params: &SignParams,
    now: u64,
    refresh: u32,
) -> Result<BTreeSet<Name>, SignError> {
    let new = super::sign_zone_incremental(unsigned.clone(), signed, refresh, keys, params, now)?;
    let changed = changed_names(signed, &new);
    *signed = new;
    Ok(changed)
}

/// The names whose node differs between two versions (a walk over both).
pub(crate) fn changed_names(old: &Zone, new: &Zone) -> BTreeSet<Name> {
    let mut changed = BTreeSet::new();
    for (name, node) in &old.nodes {
        if new.nodes.get(name) != Some(node) {
            changed.insert(name.clone());
        }
    }
    for name in new.nodes.keys() {
        if !old.nodes.contains_key(name) {
            changed.insert(name.clone());
        }
    }
    changed
}

#[cfg(test)]
#[path = "delta_tests.rs"]
mod tests;
