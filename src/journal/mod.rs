//! The journal: signed changesets, their crash-safe file, and the IXFR history served to the
//! secondaries (RFC 1995; DESIGN.md property 4, "journal before NOTIFY").
//!
//! ```text
//!  zone task: signed version N ──┐
//!             signed version N+1 ┴─ diff() ─▶ Changeset N→N+1 ─▶ Journal::append (write + fsync)
//!                                                                     │ only then:
//!             (later, in the background) snapshot signed.zone ◀───────┤
//!             Served::new(N+1).with_history(journal.history()) ─▶ publish ─▶ NOTIFY
//!  restart:   snapshot ─▶ Journal::recover ─▶ the last journaled version, and its history
//!  secondary: IXFR (serial S) ─▶ publisher::xfr ─▶ History::chain(S, N+1) ─▶ condense ─▶ IXFR
//! ```
//!
//! ## Use from the zone task
//!
//! ```text
//!  start:     let mut journal = Journal::open(&zone_state_dir, &origin, JournalLimits::default())?;
//!             let current = journal.recover(snapshot_from_signed_zone_file)?;
//!             publisher.publish(Arc::new(Served::new(current, acl).with_history(journal.history())));
//!  new version (old → new, both signed and verified):
//!             let cs = journal::diff_names(&old, &new, touched_owners);  // or diff(&old, &new)
//!             journal.append(&cs)?;      // fsynced when it returns; on Err do NOT publish:
//!                                        // keep serving `old`, raise the alarm, retry later
//!             (signed.zone is written later, in the background: zone::persist; once it is
//!              renamed into place, journal.set_keep_from(its serial))
//!             publisher.publish(Arc::new(Served::new(new, acl).with_history(journal.history())));
//!             notify the secondaries
//!  no old version to diff from (the first version ever, or a version that does not follow
//!  the journal, e.g. an older snapshot restored by hand):
//!             write signed.zone first, then
//!             journal.reset(new_serial)?  // an empty history: IXFR from older serials gets AXFR
//!                                         // (pinned at new_serial: the snapshot's)
//! ```
//!
//! A full re-sign is an ordinary changeset (large: every RRSIG): append it like any other; if
//! it is larger than the journal's bound the history simply empties at its serial.
//! [`JournalError::NotChained`] from `append` means the caller's `old` is not the journal's last
//! version: `reset` to the new serial.
//!
//! ## Changesets
//!
//! A [`Changeset`] is one IXFR difference sequence (RFC 1995 §4): the records removed from version
//! `from` and the records added to make version `to`, the old SOA first in `removed` and the new
//! SOA first in `added`, exactly in the order an IXFR carries them. [`diff`] computes it from two
//! signed versions in one merge walk over both node maps (both in canonical order: O(n) in the
//! number of names, no lookups), comparing RRsets and RRSIGs. An RRset whose TTL changed is
//! removed and added whole, since an RRset has one TTL (RFC 2181 §5.2). [`apply`] applies one to
//! a zone, checking that every removed record is there and no added record already is; it is how
//! a restart rebuilds the last version from the snapshot, and how the tests check
//! `apply(old, diff(old, new)) == new`. [`diff_names`] is the same comparison restricted to
//! the names a caller knows it touched: the incremental signer's hot path.
//!
//! [`condense`] turns a chain of changesets into one with the same net effect (records added
//! then removed again cancel out): what a secondary many versions behind receives.
//!
//! ## The journal file ([`Journal`])
//!
//! One file per zone, `DIR/ixfr.journal`, in the zone's state directory beside the snapshot
//! (`signed.zone`). All integers are big-endian.
//!
//! ```text
//!  header  "SIGNETJ1"                     8 octets, magic and format version
//!          flags                          1 octet: bit 0 = a base serial follows is valid
//!          base serial                    4 octets: the serial before the first entry (or the
//!                                          current serial when there is no entry)
//!          origin length, origin          1 + n octets, uncompressed wire form, lowercase
//!          check                          16 octets: SHA-256 of the header so far, truncated
//!  entry   payload length L               4 octets
//!          check                          16 octets: SHA-256(L ‖ payload), truncated
//!          payload                        L octets:
//!            from, to                       4 + 4 octets: the serials
//!            removed count, added count     4 + 4 octets
//!            records (removed, then added): owner length (1), owner (uncompressed wire),
//!                                           type (2), class (2), TTL (4), RDLENGTH (2), RDATA
//!  entry   …
//! ```
//!
//! A compact binary form rather than DNS messages: no compression pointers to follow, every
//! length checked against what is left of the payload before anything is allocated.
//!
//! ## Crash safety
//!
//! * [`Journal::append`] writes one entry at the end of the file with a single `write` and
//!   `fdatasync`s before it returns: when the zone task publishes and NOTIFYs, the changeset is
//!   on disk.
//! * The header and every rewrite (first entry, [`Journal::reset`], compaction, repair) go
//!   through a temporary file, fsync, rename and a directory fsync: the file is the old one or
//!   the new one, never a mix.
//! * A crash during an append (kill -9, power loss) can leave a torn last entry: a short length,
//!   a short payload, or a bad check. [`Journal::open`] truncates it away with a warning and keeps
//!   every complete entry before it. A bad entry in the middle, entries that do not chain (each
//!   `from` must be the previous `to`) or a damaged header keep the longest valid suffix that
//!   reaches the end (or nothing), with a warning: the journal is a history for IXFR, the
//!   snapshot is the zone, so damage costs secondaries an AXFR, never the zone.
//! * [`Journal::recover`] brings a snapshot up to the journal's last version (the journal is
//!   written first, so a crash between the two leaves the journal ahead) or, when the journal
//!   does not connect to the snapshot, resets it to the snapshot's serial.
//!
//! ## Bounds ([`JournalLimits`]) and the snapshot pin
//!
//! At most [`MAX_ENTRIES`] entries and [`MAX_BYTES`] octets of file. When an append goes over,
//! the oldest entries are dropped down to [`COMPACT_TO_PERCENT`] of both limits (so that the
//! rewrite is not repeated at every following append) by rewriting the file — but never a
//! changeset newer than the snapshot on disk: the zone task writes `signed.zone` in the
//! background, seldom (`zone::persist`), and a restart rolls that snapshot forward with the
//! journal. [`Journal::set_keep_from`] pins the snapshot's serial ([`Journal::recover`] and
//! [`Journal::reset`] set it); while the pin holds the journal above its bounds it grows, and
//! [`Journal::over_limits`] tells the zone task to write a newer snapshot and move the pin.
//! [`Journal::open`] does not compact (the pin is not known yet); the next append does.
//!
//! The same code keeps a second journal per zone, [`UNSIGNED_JOURNAL_FILE`]
//! ([`Journal::open_file`]): the upstream diffs of the unsigned copy, rolled forward onto
//! `unsigned.zone` at restart. A single changeset
//! larger than `max_bytes` (a full re-sign of a big zone) leaves an empty history at its serial:
//! secondaries then get AXFR, which is smaller than such an IXFR anyway.
//!
//! ## IXFR out choices (RFC 1995), implemented in `publisher::xfr`
//!
//! * The client's serial is covered by the history and the chain reaches the served serial: one
//!   condensed difference sequence (the net effect, cheaper for the secondary); the chain as
//!   journaled if it cannot be condensed (it does not compose: a bug, logged).
//! * The incremental answer would hold more records than the zone itself (BIND's
//!   `max-ixfr-ratio` default of 100 %): the full zone instead (AXFR-style, RFC 1995 §4).
//! * Not covered (compacted away, reset, or a serial we never had): AXFR-style.
//! * Over UDP: the current SOA only, always, as BIND 9 does ("use TCP", RFC 1995 §2): an
//!   incremental answer over UDP saves one round trip at best, and a secondary has to be able to
//!   retry over TCP anyway.

mod file;

pub use file::{
    Journal, JournalError, JournalLimits, COMPACT_TO_PERCENT, JOURNAL_FILE, MAX_BYTES, MAX_ENTRIES,
    UNSIGNED_JOURNAL_FILE,
};

use crate::dns::name::Name;
use crate::dns::rdata;
use crate::dns::record::Record;
use crate::dns::rtype::{self, t};
use crate::zone::data::{soa_field, Node, RRset, Sig, Zone};
use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// One IXFR difference sequence (RFC 1995 §4): `removed` turns version `from` into a version
/// without them, `added` then makes version `to`. `removed[0]` is the SOA of `from` and
/// `added[0]` the SOA of `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changeset {
    pub from: u32,
    pub to: u32,
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
}

impl Changeset {
    /// Records in both lists (SOAs included): what an IXFR of it carries.
    pub fn record_count(&self) -> usize {
        self.removed.len() + self.added.len()
    }

    /// Checks the RFC 1995 shape: `removed` starts with an SOA of serial `from`, `added` with
    /// an SOA of serial `to`, both at the same owner, and no other SOA appears.
    pub fn check(&self) -> Result<(), String> {
        let first_soa = |list: &[Record], what: &str, serial: u32| -> Result<Name, String> {
            let r = list
                .first()
                .ok_or_else(|| format!("no {what} SOA (RFC 1995 §4: each list starts with one)"))?;
            if r.rtype != t::SOA {
                return Err(format!(
                    "the {what} list starts with {} instead of the SOA (RFC 1995 §4)",
                    rtype::type_name(r.rtype)
                ));
            }
            match soa_field(&r.rdata, 0) {
                Some(s) if s == serial => Ok(r.owner.clone()),
                Some(s) => Err(format!(
                    "the {what} SOA has serial {s}, the changeset says {serial}"
                )),
                None => Err(format!("the {what} SOA RDATA is malformed")),
            }
        };
        let a = first_soa(&self.removed, "removed", self.from)?;
        let b = first_soa(&self.added, "added", self.to)?;
        if a != b {
            return Err(format!("the SOAs are at different owners ({a}, {b})"));
        }
        if self
            .removed
            .iter()
            .skip(1)
            .chain(self.added.iter().skip(1))
            .any(|r| r.rtype == t::SOA)
        {
            return Err("an SOA appears beyond the first record of a list".into());
        }
        if let Some(r) = self
            .removed
            .iter()
            .chain(self.added.iter())
            .find(|r| r.rdata.len() > usize::from(u16::MAX))
        {
            return Err(format!("{} has RDATA longer than 65535 octets", r.owner));
        }
        Ok(())
    }
}

/// RFC 1982: `a` is after `b`.
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && (a.wrapping_sub(b) as i32) > 0
}

// ---------------------------------------------------------------------------------------------
// diff

/// The changeset from `old` to `new` (see the module documentation). Both are complete zones of
/// the same origin; a zone without an SOA (never the case for a signed version) gives serial 0
/// and no SOA record, which [`Changeset::check`] and [`Journal::append`] reject.
pub fn diff(old: &Zone, new: &Zone) -> Changeset {
    let mut removed = Vec::new();
    let mut added = Vec::new();
    push_soa(old, &mut removed);
    push_soa(new, &mut added);
    let mut a = old.nodes.iter().peekable();
    let mut b = new.nodes.iter().peekable();
    loop {
        let ord = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((na, _)), Some((nb, _))) => na.cmp(nb),
        };
        match ord {
            std::cmp::Ordering::Less => {
                if let Some((name, node)) = a.next() {
                    node_records(name, node, name == &old.origin, &mut removed);
                }
            }
            std::cmp::Ordering::Greater => {
                if let Some((name, node)) = b.next() {
                    node_records(name, node, name == &new.origin, &mut added);
                }
            }
            std::cmp::Ordering::Equal => {
                if let (Some((name, na)), Some((_, nb))) = (a.next(), b.next()) {
                    if na != nb {
                        diff_node(name, na, nb, name == &old.origin, &mut removed, &mut added);
                    }
                }
            }
        }
    }
    Changeset {
        from: old.serial().unwrap_or(0),
        to: new.serial().unwrap_or(0),
        removed,
        added,
    }
}

/// [`diff`] restricted to `owners` (and the apex): for a caller that knows which names it
/// touched (the incremental signer: the changed RRsets, the NSEC/NSEC3 records around them, the
/// apex SOA and its RRSIG), in O(k log n) instead of a walk over the whole zone — a full
/// [`diff`] of a million names costs about 160 ms (release build, 2 cores), this one
/// microseconds. Names not in `owners` are assumed unchanged and are not looked at; the result
/// equals [`diff`] when that assumption holds.
pub fn diff_names<'a, I: IntoIterator<Item = &'a Name>>(
    old: &Zone,
    new: &Zone,
    owners: I,
) -> Changeset {
    let mut names: Vec<&Name> = owners.into_iter().collect();
    names.push(&old.origin);
    names.sort();
    names.dedup();
    let mut removed = Vec::new();
    let mut added = Vec::new();
    push_soa(old, &mut removed);
    push_soa(new, &mut added);
    for name in names {
        let apex = name == &old.origin;
        match (old.nodes.get(name), new.nodes.get(name)) {
            (Some(a), Some(b)) => {
                if a != b {
                    diff_node(name, a, b, apex, &mut removed, &mut added);
                }
            }
            (Some(a), None) => node_records(name, a, apex, &mut removed),
            (None, Some(b)) => node_records(name, b, apex, &mut added),
            (None, None) => {}
        }
    }
    Changeset {
        from: old.serial().unwrap_or(0),
        to: new.serial().unwrap_or(0),
        removed,
        added,
    }
}

fn push_soa(zone: &Zone, out: &mut Vec<Record>) {
    if let Some(set) = zone.nodes.get(&zone.origin).and_then(|n| n.get(t::SOA)) {
        for rd in &set.rdatas {
            out.push(Record::new(
                zone.origin.clone(),
                t::SOA,
                set.ttl,
                rd.clone(),
            ));
        }
    }
}

/// Every record of a node (the apex SOA left out: it is handled first).
fn node_records(name: &Name, node: &Node, apex: bool, out: &mut Vec<Record>) {
    for set in &node.rrsets {
        if apex && set.rtype == t::SOA {
            continue;
        }
        set_records(name, set, out);
    }
    for s in &node.sigs {
        out.push(sig_record(name, s));
    }
}

fn set_records(name: &Name, set: &RRset, out: &mut Vec<Record>) {
    for rd in &set.rdatas {
        out.push(Record::new(name.clone(), set.rtype, set.ttl, rd.clone()));
    }
}

fn sig_record(name: &Name, s: &Sig) -> Record {
    Record::new(name.clone(), t::RRSIG, s.ttl, s.rdata.clone())
}

/// RDATA of `from` missing in `other` (octet comparison: a change of case is a change).
fn missing<'a>(from: &'a [Vec<u8>], other: &[Vec<u8>]) -> Vec<&'a Vec<u8>> {
    if other.len() <= 8 {
        from.iter().filter(|r| !other.contains(r)).collect()
    } else {
        let set: HashSet<&[u8]> = other.iter().map(|r| r.as_slice()).collect();
        from.iter()
            .filter(|r| !set.contains(r.as_slice()))
            .collect()
    }
}

fn diff_node(
    name: &Name,
    old: &Node,
    new: &Node,
    apex: bool,
    removed: &mut Vec<Record>,
    added: &mut Vec<Record>,
) {
    // RRsets: both sorted by type
    let (mut i, mut j) = (0, 0);
    while i < old.rrsets.len() || j < new.rrsets.len() {
        let (sa, sb) = (old.rrsets.get(i), new.rrsets.get(j));
        let ord = match (sa, sb) {
            (Some(x), Some(y)) => x.rtype.cmp(&y.rtype),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match (ord, sa, sb) {
            (std::cmp::Ordering::Less, Some(x), _) => {
                i += 1;
                if !(apex && x.rtype == t::SOA) {
                    set_records(name, x, removed);
                }
            }
            (std::cmp::Ordering::Greater, _, Some(y)) => {
                j += 1;
                if !(apex && y.rtype == t::SOA) {
                    set_records(name, y, added);
                }
            }
            (std::cmp::Ordering::Equal, Some(x), Some(y)) => {
                i += 1;
                j += 1;
                if (apex && x.rtype == t::SOA) || x == y {
                    continue;
                }
                if x.ttl != y.ttl {
                    // one TTL per RRset (RFC 2181 §5.2): replace the whole set
                    set_records(name, x, removed);
                    set_records(name, y, added);
                } else {
                    for rd in missing(&x.rdatas, &y.rdatas) {
                        removed.push(Record::new(name.clone(), x.rtype, x.ttl, rd.clone()));
                    }
                    for rd in missing(&y.rdatas, &x.rdatas) {
                        added.push(Record::new(name.clone(), y.rtype, y.ttl, rd.clone()));
                    }
                }
            }
            _ => break, // unreachable: the match above covers every case with progress
        }
    }
    // RRSIGs: a multiset of (TTL, RDATA)
    if old.sigs != new.sigs {
        let key = |s: &Sig| (s.ttl, s.rdata.clone());
        let in_new: HashSet<(u32, Vec<u8>)> = new.sigs.iter().map(key).collect();
        let in_old: HashSet<(u32, Vec<u8>)> = old.sigs.iter().map(key).collect();
        for s in &old.sigs {
            if !in_new.contains(&key(s)) {
                removed.push(sig_record(name, s));
            }
        }
        for s in &new.sigs {
            if !in_old.contains(&key(s)) {
                added.push(sig_record(name, s));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// apply

/// `cs` applied to a copy of `zone`: every removed record must be present (RDATA compared in
/// canonical form, TTL ignored, as secondaries do) and no added record may already be. The
/// serial of `zone` must be `cs.from`. Nodes left empty are dropped.
pub fn apply(zone: &Zone, cs: &Changeset) -> Result<Zone, String> {
    let mut z = zone.clone();
    apply_in_place(&mut z, cs)?;
    Ok(z)
}

/// [`apply`] on the zone itself (on error the zone is half-changed: use a copy).
pub fn apply_in_place(z: &mut Zone, cs: &Changeset) -> Result<(), String> {
    cs.check()?;
    match z.serial() {
        Some(s) if s == cs.from => {}
        other => {
            return Err(format!(
                "the changeset {}→{} does not start at the zone's serial {}",
                cs.from,
                cs.to,
                other
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "(none)".into())
            ))
        }
    }
    for r in &cs.removed {
        remove_record(z, r).map_err(|()| {
            format!(
                "the changeset {}→{} removes `{}`, which the zone does not hold",
                cs.from,
                cs.to,
                short(r)
            )
        })?;
    }
    for r in &cs.added {
        add_record(z, r).map_err(|()| {
            format!(
                "the changeset {}→{} adds `{}`, which the zone already holds",
                cs.from,
                cs.to,
                short(r)
            )
        })?;
    }
    Ok(())
}

/// A record for an error message, cut to a sensible length.
fn short(r: &Record) -> String {
    let mut s = r.to_string().replace('\t', " ");
    if s.len() > 160 {
        let mut cut = 157;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

fn remove_record(zone: &mut Zone, r: &Record) -> Result<(), ()> {
    let node = zone.nodes.get_mut(&r.owner).ok_or(())?;
    let want = rdata::canonical(r.rtype, &r.rdata);
    if r.rtype == t::RRSIG {
        let i = node
            .sigs
            .iter()
            .position(|s| rdata::canonical(t::RRSIG, &s.rdata) == want)
            .ok_or(())?;
        node.sigs.remove(i);
    } else {
        let j = node
            .rrsets
            .binary_search_by_key(&r.rtype, |s| s.rtype)
            .map_err(|_| ())?;
        let set = &mut node.rrsets[j];
        let i = set
            .rdatas
            .iter()
            .position(|x| rdata::canonical(r.rtype, x) == want)
            .ok_or(())?;
        set.rdatas.remove(i);
        if set.rdatas.is_empty() {
            node.rrsets.remove(j);
        }
    }
    if node.is_empty() {
        zone.nodes.remove(&r.owner);
    }
    Ok(())
}

fn add_record(zone: &mut Zone, r: &Record) -> Result<(), ()> {
    let node = zone.nodes.entry(r.owner.clone()).or_default();
    let want = rdata::canonical(r.rtype, &r.rdata);
    if r.rtype == t::RRSIG {
        if node
            .sigs
            .iter()
            .any(|s| rdata::canonical(t::RRSIG, &s.rdata) == want)
        {
            return Err(());
        }
        node.sigs.push(Sig {
            covered: r.rrsig_covered().unwrap_or(0),
            ttl: r.ttl,
            rdata: r.rdata.clone(),
        });
        return Ok(());
    }
    match node.rrsets.binary_search_by_key(&r.rtype, |s| s.rtype) {
        Ok(j) => {
            let set = &mut node.rrsets[j];
            if set
                .rdatas
                .iter()
                .any(|x| rdata::canonical(r.rtype, x) == want)
            {
                return Err(());
            }
            // one TTL per RRset: the latest addition sets it
            set.ttl = r.ttl;
            set.rdatas.push(r.rdata.clone());
        }
        Err(j) => node.rrsets.insert(
            j,
            RRset {
                rtype: r.rtype,
                ttl: r.ttl,
                rdatas: vec![r.rdata.clone()],
            },
        ),
    }
    Ok(())
}

/// Whether two zones hold the same records (RRset and RRSIG order inside a node ignored):
/// what "equal versions" means for [`apply`]`(old, `[`diff`]`(old, new))` and `new`.
pub fn same_content(a: &Zone, b: &Zone) -> bool {
    if a.origin != b.origin {
        return false;
    }
    let norm = |z: &Zone| {
        let mut v: Vec<(Name, u16, u32, Vec<u8>)> = z
            .records()
            .into_iter()
            .map(|r| (r.owner, r.rtype, r.ttl, r.rdata))
            .collect();
        v.sort();
        v
    };
    norm(a) == norm(b)
}

// ---------------------------------------------------------------------------------------------
// condense

/// One changeset with the net effect of `chain` (consecutive changesets): a record added and
/// later removed is in neither list, one removed and later added back (same TTL) in neither.
/// The result starts with the first `from` SOA and the last `to` SOA; the other records are in
/// canonical order. An error when the chain does not compose (a serial gap, a record added
/// twice or removed twice): then send the chain as it is.
pub fn condense<C: Borrow<Changeset>>(chain: &[C]) -> Result<Changeset, String> {
    let chain: Vec<&Changeset> = chain.iter().map(|c| c.borrow()).collect();
    let (Some(&first), Some(&last)) = (chain.first(), chain.last()) else {
        return Err("empty chain".into());
    };
    if chain.len() == 1 {
        return Ok(first.clone());
    }
    for w in chain.windows(2) {
        if w[0].to != w[1].from {
            return Err(format!(
                "the chain breaks between {}→{} and {}→{}",
                w[0].from, w[0].to, w[1].from, w[1].to
            ));
        }
    }
    // per (owner, type, canonical RDATA): the net removal (from the first version) and the
    // net addition (in the last version)
    type Key = (Name, u16, Vec<u8>);
    #[derive(Default)]
    struct Net {
        removed: Option<Record>,
        added: Option<Record>,
    }
    let mut net: HashMap<Key, Net> = HashMap::new();
    let key = |r: &Record| -> Key {
        (
            r.owner.clone(),
            r.rtype,
            rdata::canonical(r.rtype, &r.rdata).into_owned(),
        )
    };
    for cs in &chain {
        for r in cs.removed.iter().filter(|r| r.rtype != t::SOA) {
            let e = net.entry(key(r)).or_default();
            if e.added.is_some() {
                // added by an earlier changeset: it never existed in the first version
                e.added = None;
            } else if e.removed.is_none() {
                e.removed = Some(r.clone());
            } else {
                return Err(format!(
                    "{}→{} removes `{}` a second time",
                    cs.from,
                    cs.to,
                    short(r)
                ));
            }
        }
        for r in cs.added.iter().filter(|r| r.rtype != t::SOA) {
            let e = net.entry(key(r)).or_default();
            if e.added.is_some() {
                return Err(format!(
                    "{}→{} adds `{}` a second time",
                    cs.from,
                    cs.to,
                    short(r)
                ));
            }
            match &e.removed {
                Some(old) if old.ttl == r.ttl && old.rdata == r.rdata => e.removed = None,
                _ => e.added = Some(r.clone()),
            }
        }
    }
    let mut removed = Vec::new();
    let mut added = Vec::new();
    for (_, n) in net {
        if let Some(r) = n.removed {
            removed.push(r);
        }
        if let Some(r) = n.added {
            added.push(r);
        }
    }
    let order = |a: &Record, b: &Record| {
        a.owner
            .cmp(&b.owner)
            .then(a.rtype.cmp(&b.rtype))
            .then_with(|| a.rdata.cmp(&b.rdata))
    };
    removed.sort_by(order);
    added.sort_by(order);
    let soa = |list: &[Record]| list.first().filter(|r| r.rtype == t::SOA).cloned();
    if let Some(s) = soa(&first.removed) {
        removed.insert(0, s);
    }
    if let Some(s) = soa(&last.added) {
        added.insert(0, s);
    }
    Ok(Changeset {
        from: first.from,
        to: last.to,
        removed,
        added,
    })
}

// ---------------------------------------------------------------------------------------------
// history

/// The journaled changesets of a served version, oldest first, each `to` the next `from`:
/// immutable and cheap to clone (one `Arc`), handed to the publisher with
/// `Served::with_history` and read by IXFR out.
#[derive(Clone, Debug, Default)]
pub struct History {
    chain: Arc<[Arc<Changeset>]>,
}

impl History {
    /// A history from consecutive changesets, oldest first.
    pub fn new(chain: Vec<Arc<Changeset>>) -> History {
        History {
            chain: chain.into(),
        }
    }

    pub fn len(&self) -> usize {
        self.chain.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chain.is_empty()
    }

    /// The oldest serial an IXFR can start from.
    pub fn oldest_serial(&self) -> Option<u32> {
        self.chain.first().map(|c| c.from)
    }

    /// The serial the history leads to.
    pub fn newest_serial(&self) -> Option<u32> {
        self.chain.last().map(|c| c.to)
    }

    /// All changesets, oldest first.
    pub fn changesets(&self) -> &[Arc<Changeset>] {
        &self.chain
    }

    /// The changesets that lead from `from` to `to`, when the history holds that whole chain
    /// (`None` for `from == to`).
    pub fn chain(&self, from: u32, to: u32) -> Option<&[Arc<Changeset>]> {
        if from == to {
            return None;
        }
        // the latest entry starting at `from` (serials are unique in a journal: they increase)
        let start = self.chain.iter().rposition(|c| c.from == from)?;
        let end = start + self.chain[start..].iter().position(|c| c.to == to)?;
        let part = &self.chain[start..=end];
        if part.windows(2).all(|w| w[0].to == w[1].from) {
            Some(part)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests;
