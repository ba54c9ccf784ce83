//! Unit tests: diff/apply/condense as properties over random zones; the journal file's append,
//! reopen, torn tails at every byte offset, damage, bounds, reset and recovery.

use super::*;
use crate::dns::rtype::t;
use std::path::PathBuf;

/// xorshift64*: reproducible random data without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn name(s: &str) -> Name {
    Name::parse(s, None).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn soa_rdata(serial: u32) -> Vec<u8> {
    let mut rd = name("ns.example.").as_wire().to_vec();
    rd.extend_from_slice(name("hostmaster.example.").as_wire());
    for v in [serial, 3600, 600, 86400, 300] {
        rd.extend_from_slice(&v.to_be_bytes());
    }
    rd
}

fn rrsig_rdata(covered: u16, rng: &mut Rng) -> Vec<u8> {
    let mut rd = covered.to_be_bytes().to_vec();
    rd.extend_from_slice(&[13, 2]);
    rd.extend_from_slice(&300u32.to_be_bytes());
    rd.extend_from_slice(&2_000_000_000u32.to_be_bytes());
    rd.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    rd.extend_from_slice(&4242u16.to_be_bytes());
    rd.extend_from_slice(name("example.").as_wire());
    for _ in 0..8 {
        rd.extend_from_slice(&rng.next().to_be_bytes());
    }
    rd
}

/// A random zone of `names` names at `serial`: A, AAAA, TXT, MX and NS RRsets, RRSIGs.
fn random_zone(rng: &mut Rng, serial: u32, names: usize) -> Zone {
    let origin = name("example.");
    let mut z = Zone::new(origin.clone());
    let mut apex = Node::default();
    apex.put(RRset {
        rtype: t::SOA,
        ttl: 300,
        rdatas: vec![soa_rdata(serial)],
    });
    apex.put(RRset {
        rtype: t::NS,
        ttl: 300,
        rdatas: vec![name("ns.example.").as_wire().to_vec()],
    });
    z.nodes.insert(origin, apex);
    for _ in 0..names {
        let owner = random_owner(rng);
        let node = z.nodes.entry(owner).or_default();
        random_rrset(rng, node);
    }
    z
}

fn random_owner(rng: &mut Rng) -> Name {
    let depth = 1 + rng.below(2);
    let mut s = String::new();
    for _ in 0..depth {
        s.push_str(&format!("n{}.", rng.below(40)));
    }
    if rng.chance(10) {
        s = s.to_uppercase();
    }
    name(&format!("{s}example."))
}

fn random_rdata(rng: &mut Rng, rtype: u16) -> Vec<u8> {
    match rtype {
        t::A => (rng.next() as u32).to_be_bytes().to_vec(),
        t::AAAA => {
            let mut v = rng.next().to_be_bytes().to_vec();
            v.extend_from_slice(&rng.next().to_be_bytes());
            v
        }
        t::MX => {
            let mut v = (rng.below(50) as u16).to_be_bytes().to_vec();
            let target = if rng.chance(50) {
                "MAIL.example."
            } else {
                "mail.example."
            };
            v.extend_from_slice(name(target).as_wire());
            v
        }
        _ => {
            let n = rng.below(20) as usize;
            let mut v = vec![n as u8];
            v.extend((0..n).map(|_| b'a' + rng.below(26) as u8));
            v
        }
    }
}

fn random_rrset(rng: &mut Rng, node: &mut Node) {
    let rtype = [t::A, t::AAAA, t::TXT, t::MX][rng.below(4) as usize];
    let ttl = [300, 600, 3600][rng.below(3) as usize];
    let n = 1 + rng.below(4) as usize;
    let mut rdatas: Vec<Vec<u8>> = Vec::new();
    for _ in 0..n {
        let rd = random_rdata(rng, rtype);
        let canon = rdata::canonical(rtype, &rd).into_owned();
        if !rdatas
            .iter()
            .any(|x| rdata::canonical(rtype, x).as_ref() == canon.as_slice())
        {
            rdatas.push(rd);
        }
    }
    node.sigs.retain(|s| s.covered != rtype);
    node.put(RRset { rtype, ttl, rdatas });
    for _ in 0..1 + rng.below(2) {
        node.sigs.push(Sig {
            covered: rtype,
            ttl,
            rdata: rrsig_rdata(rtype, rng),
        });
    }
}

/// The next version: some RRsets removed, added, changed (records, TTL), RRSIGs renewed.
fn mutate(rng: &mut Rng, old: &Zone, serial: u32) -> Zone {
    let mut z = old.clone();
    z.set_serial(serial);
    let origin = z.origin.clone();
    let names: Vec<Name> = z.nodes.keys().filter(|n| **n != origin).cloned().collect();
    for n in &names {
        if !rng.chance(15) {
            continue;
        }
        let Some(node) = z.nodes.get_mut(n) else {
            continue;
        };
        match rng.below(6) {
            0 => {
                z.nodes.remove(n);
            }
            1 => {
                // TTL change of one RRset (and its signatures)
                if let Some(set) = node.rrsets.first_mut() {
                    set.ttl += 1;
                    let rt = set.rtype;
                    let ttl = set.ttl;
                    for s in node.sigs.iter_mut().filter(|s| s.covered == rt) {
                        s.ttl = ttl;
                    }
                }
            }
            2 => {
                // one record more or less
                if let Some(set) = node.rrsets.first_mut() {
                    if set.rdatas.len() > 1 && rng.chance(50) {
                        set.rdatas.remove(0);
                    } else {
                        let rd = random_rdata(rng, set.rtype);
                        let c = rdata::canonical(set.rtype, &rd).into_owned();
                        if !set
                            .rdatas
                            .iter()
                            .any(|x| rdata::canonical(set.rtype, x).as_ref() == c.as_slice())
                        {
                            set.rdatas.push(rd);
                        }
                    }
                }
            }
            3 => {
                // signature renewal
                if let Some(s) = node.sigs.first_mut() {
                    s.rdata = rrsig_rdata(s.covered, rng);
                }
            }
            _ => random_rrset(rng, node),
        }
    }
    for _ in 0..rng.below(5) {
        let owner = random_owner(rng);
        random_rrset(rng, z.nodes.entry(owner).or_default());
    }
    // apex signature renewal, as a real re-sign does with the SOA
    if let Some(apex) = z.nodes.get_mut(&origin) {
        apex.sigs.retain(|s| s.covered != t::SOA);
        apex.sigs.push(Sig {
            covered: t::SOA,
            ttl: 300,
            rdata: rrsig_rdata(t::SOA, rng),
        });
    }
    z
}

#[test]
fn diff_then_apply_gives_the_new_version() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..200 {
        let old = random_zone(&mut rng, 1000 + round, 30 + round as usize % 50);
        let new = mutate(&mut rng, &old, 1001 + round);
        let cs = diff(&old, &new);
        cs.check().unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(cs.from, 1000 + round);
        assert_eq!(cs.to, 1001 + round);
        let got = apply(&old, &cs).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(same_content(&got, &new), "round {round}");
        // and backwards: the inverse changeset gives the old version
        let back = diff(&new, &old);
        let got = apply(&new, &back).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(same_content(&got, &old), "round {round} (backwards)");
    }
}

#[test]
fn diff_names_equals_diff_over_the_touched_names() {
    let mut rng = Rng(0x51ed_2701);
    for round in 0..100 {
        let old = random_zone(&mut rng, 1, 40);
        let new = mutate(&mut rng, &old, 2);
        let touched: Vec<Name> = old
            .nodes
            .iter()
            .filter(|(n, node)| new.nodes.get(n) != Some(*node))
            .map(|(n, _)| n.clone())
            .chain(
                new.nodes
                    .keys()
                    .filter(|n| !old.nodes.contains_key(n))
                    .cloned(),
            )
            .collect();
        // plus some untouched names, in any order, with duplicates
        let mut owners: Vec<Name> = touched.iter().rev().cloned().collect();
        owners.extend(old.nodes.keys().take(5).cloned());
        owners.extend(touched.iter().take(2).cloned());
        assert_eq!(
            diff_names(&old, &new, &owners),
            diff(&old, &new),
            "round {round}"
        );
    }
}

#[test]
fn diff_of_equal_versions_is_the_soa_only() {
    let mut rng = Rng(7);
    let z = random_zone(&mut rng, 5, 40);
    let cs = diff(&z, &z);
    assert_eq!(cs.removed.len(), 1);
    assert_eq!(cs.added.len(), 1);
    assert_eq!(cs.removed[0].rtype, t::SOA);
}

#[test]
fn diff_is_minimal_for_one_changed_record() {
    let mut rng = Rng(11);
    let old = random_zone(&mut rng, 1, 50);
    let mut new = old.clone();
    new.set_serial(2);
    let owner = name("www.example.");
    new.nodes.entry(owner.clone()).or_default().put(RRset {
        rtype: t::A,
        ttl: 300,
        rdatas: vec![vec![192, 0, 2, 1]],
    });
    let cs = diff(&old, &new);
    assert_eq!(cs.removed.len(), 1, "{:?}", cs.removed);
    assert_eq!(cs.added.len(), 2);
    assert_eq!(cs.added[1].owner, owner);
    // the apex SOA is first and only first
    assert_eq!(soa_field(&cs.added[0].rdata, 0), Some(2));
}

#[test]
fn apply_refuses_what_does_not_fit() {
    let mut rng = Rng(3);
    let old = random_zone(&mut rng, 1, 20);
    let new = mutate(&mut rng, &old, 2);
    let cs = diff(&old, &new);
    // not at the zone's serial
    assert!(apply(&new, &cs).is_err());
    // removes a record that is not there
    let mut bad = cs.clone();
    bad.removed.push(Record::new(
        name("nothere.example."),
        t::A,
        300,
        vec![1, 2, 3, 4],
    ));
    assert!(apply(&old, &bad).unwrap_err().contains("does not hold"));
    // adds one that is
    let mut bad = cs.clone();
    let existing = old
        .records()
        .into_iter()
        .find(|r| r.rtype == t::NS)
        .expect("apex NS");
    bad.added.push(existing);
    assert!(apply(&old, &bad).unwrap_err().contains("already holds"));
    // no SOA first
    let mut bad = cs;
    bad.removed.remove(0);
    assert!(apply(&old, &bad).is_err());
}

#[test]
fn condense_has_the_net_effect_of_the_chain() {
    let mut rng = Rng(0xdead_beef);
    for round in 0..60 {
        let mut versions = vec![random_zone(&mut rng, 10, 40)];
        let steps = 2 + rng.below(6) as u32;
        for i in 0..steps {
            let next = mutate(&mut rng, &versions[versions.len() - 1], 11 + i);
            versions.push(next);
        }
        let chain: Vec<Arc<Changeset>> = versions
            .windows(2)
            .map(|w| Arc::new(diff(&w[0], &w[1])))
            .collect();
        let total: usize = chain.iter().map(|c| c.record_count()).sum();
        let c = condense(&chain).unwrap_or_else(|e| panic!("round {round}: {e}"));
        c.check().unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!((c.from, c.to), (10, 10 + steps));
        assert!(c.record_count() <= total);
        let got = apply(&versions[0], &c).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let last = &versions[versions.len() - 1];
        assert!(same_content(&got, last), "round {round}");
        // and it is exactly the direct diff, as a set
        let direct = diff(&versions[0], last);
        let set = |v: &[Record]| {
            let mut v: Vec<_> = v
                .iter()
                .map(|r| (r.owner.clone(), r.rtype, r.ttl, r.rdata.clone()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(set(&c.removed), set(&direct.removed), "round {round}");
        assert_eq!(set(&c.added), set(&direct.added), "round {round}");
    }
}

#[test]
fn condense_cancels_add_then_remove_and_refuses_a_broken_chain() {
    let mut rng = Rng(5);
    let v1 = random_zone(&mut rng, 1, 10);
    let mut v2 = v1.clone();
    v2.set_serial(2);
    v2.nodes
        .entry(name("tmp.example."))
        .or_default()
        .put(RRset {
            rtype: t::A,
            ttl: 60,
            rdatas: vec![vec![10, 0, 0, 1]],
        });
    let mut v3 = v1.clone();
    v3.set_serial(3);
    let chain = [diff(&v1, &v2), diff(&v2, &v3)];
    let c = condense(&chain).expect("condense");
    assert_eq!(c.record_count(), 2, "only the SOAs are left: {c:?}");
    // a gap
    let gap = [diff(&v1, &v2), diff(&v1, &v3)];
    assert!(condense(&gap).is_err());
}

#[test]
fn history_chains() {
    let mut rng = Rng(9);
    let mut versions = vec![random_zone(&mut rng, 100, 10)];
    for s in 101..106 {
        let next = mutate(&mut rng, &versions[versions.len() - 1], s);
        versions.push(next);
    }
    let h = History::new(
        versions
            .windows(2)
            .map(|w| Arc::new(diff(&w[0], &w[1])))
            .collect(),
    );
    assert_eq!(h.oldest_serial(), Some(100));
    assert_eq!(h.newest_serial(), Some(105));
    assert_eq!(h.chain(100, 105).map(|c| c.len()), Some(5));
    assert_eq!(h.chain(103, 105).map(|c| c.len()), Some(2));
    assert_eq!(h.chain(103, 104).map(|c| c.len()), Some(1));
    assert!(h.chain(105, 105).is_none());
    assert!(h.chain(99, 105).is_none());
    assert!(h.chain(100, 107).is_none());
    assert!(History::default().chain(1, 2).is_none());
}

// ------------------------------------------------------------------------------ journal file

struct Tmp(PathBuf);

impl Tmp {
    fn new(label: &str) -> Tmp {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("signet-journal-{label}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("temp dir");
        Tmp(p)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

use std::fs;

/// `n` versions from serial `first`, and their changesets.
fn versions(seed: u64, first: u32, n: usize) -> (Vec<Zone>, Vec<Changeset>) {
    let mut rng = Rng(seed);
    let mut v = vec![random_zone(&mut rng, first, 30)];
    for i in 1..n {
        let next = mutate(&mut rng, &v[i - 1], first + i as u32);
        v.push(next);
    }
    let cs = v.windows(2).map(|w| diff(&w[0], &w[1])).collect();
    (v, cs)
}

fn origin() -> Name {
    name("example.")
}

fn open(dir: &Path, limits: JournalLimits) -> Journal {
    Journal::open(dir, &origin(), limits).unwrap_or_else(|e| panic!("open: {e}"))
}

use std::path::Path;

#[test]
fn append_and_reopen() {
    let tmp = Tmp::new("reopen");
    let (_, cs) = versions(1, 10, 6);
    let mut j = open(&tmp.0, JournalLimits::default());
    assert_eq!(j.last_serial(), None);
    assert!(
        !j.path().exists(),
        "nothing is written before the first append"
    );
    for c in &cs {
        j.append(c).unwrap_or_else(|e| panic!("append: {e}"));
    }
    assert_eq!(j.last_serial(), Some(15));
    assert_eq!(j.len(), 5);
    let size = fs::metadata(j.path()).expect("file").len();
    assert_eq!(size, j.size());
    drop(j);
    let j = open(&tmp.0, JournalLimits::default());
    assert_eq!(j.len(), 5);
    assert_eq!(j.first_serial(), Some(10));
    assert_eq!(j.last_serial(), Some(15));
    let all = j.since(10).expect("covered");
    assert_eq!(all.len(), 5);
    for (a, b) in all.iter().zip(&cs) {
        assert_eq!(**a, *b);
    }
    assert_eq!(j.since(13).map(|v| v.len()), Some(2));
    assert_eq!(j.since(15).map(|v| v.len()), Some(0));
    assert!(j.since(9).is_none());
    assert!(j.since(16).is_none());
    assert_eq!(j.history().len(), 5);
}

#[test]
fn append_refuses_what_does_not_chain() {
    let tmp = Tmp::new("chain");
    let (_, cs) = versions(2, 10, 4);
    let mut j = open(&tmp.0, JournalLimits::default());
    j.append(&cs[0]).expect("append");
    assert!(matches!(
        j.append(&cs[2]),
        Err(JournalError::NotChained { last: 11, from: 12 })
    ));
    let mut back = cs[1].clone();
    back.to = 5;
    assert!(j.append(&back).is_err());
    let mut bad = cs[1].clone();
    bad.added.remove(0);
    assert!(matches!(j.append(&bad), Err(JournalError::Malformed(_))));
    // nothing of that reached the file
    let j = open(&tmp.0, JournalLimits::default());
    assert_eq!(j.len(), 1);
    assert_eq!(j.last_serial(), Some(11));
}

#[test]
fn truncation_at_every_offset_of_the_last_entry_keeps_the_complete_ones() {
    let tmp = Tmp::new("torn");
    let (_, cs) = versions(3, 1, 4);
    let mut j = open(&tmp.0, JournalLimits::default());
    for c in &cs[..2] {
        j.append(c).expect("append");
    }
    let before = j.size();
    j.append(&cs[2]).expect("append");
    let path = j.path().to_path_buf();
    drop(j);
    let full = fs::read(&path).expect("read");
    for cut in before..full.len() as u64 {
        fs::write(&path, &full[..cut as usize]).expect("write");
        let mut j = open(&tmp.0, JournalLimits::default());
        assert_eq!(j.len(), 2, "cut at {cut}");
        assert_eq!(j.last_serial(), Some(3), "cut at {cut}");
        assert_eq!(
            fs::metadata(&path).expect("file").len(),
            before,
            "the torn tail is truncated away (cut at {cut})"
        );
        // and appending goes on from there
        j.append(&cs[2])
            .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        drop(j);
        let j = open(&tmp.0, JournalLimits::default());
        assert_eq!(j.len(), 3, "cut at {cut}");
    }
    // a cut inside the header: an empty journal, no error
    for cut in [0usize, 3, 8, 12, 20] {
        fs::write(&path, &full[..cut]).expect("write");
        let mut j = open(&tmp.0, JournalLimits::default());
        assert_eq!(j.len(), 0);
        assert_eq!(j.last_serial(), None);
        j.append(&cs[0]).expect("append after a damaged header");
        assert_eq!(open(&tmp.0, JournalLimits::default()).len(), 1);
    }
}

#[test]
fn garbage_tail_and_damage_in_the_middle() {
    let tmp = Tmp::new("garbage");
    let (_, cs) = versions(4, 1, 6);
    let mut j = open(&tmp.0, JournalLimits::default());
    let mut offsets = Vec::new();
    for c in &cs {
        offsets.push(j.size());
        j.append(c).expect("append");
    }
    let path = j.path().to_path_buf();
    drop(j);
    let good = fs::read(&path).expect("read");

    // garbage after the last entry
    let mut data = good.clone();
    data.extend_from_slice(b"\x00\x00\x01\x00garbage garbage garbage");
    fs::write(&path, &data).expect("write");
    let j = open(&tmp.0, JournalLimits::default());
    assert_eq!(j.len(), 5);
    assert_eq!(fs::read(&path).expect("read"), good);
    drop(j);

    // a flipped bit in the last entry's payload: torn, dropped
    let mut data = good.clone();
    let n = data.len();
    data[n - 3] ^= 0x40;
    fs::write(&path, &data).expect("write");
    let j = open(&tmp.0, JournalLimits::default());
    assert_eq!(j.len(), 4);
    assert_eq!(j.last_serial(), Some(5));
    drop(j);

    // a flipped bit in the third entry: the entries after it are the valid suffix
    let mut data = good.clone();
    let third = offsets[2] as usize + file::ENTRY_HEAD + 20;
    data[third] ^= 0x01;
    fs::write(&path, &data).expect("write");
    let j = open(&tmp.0, JournalLimits::default());
    assert_eq!(j.len(), 2, "entries 4→5 and 5→6 survive");
    assert_eq!(j.first_serial(), Some(4));
    assert_eq!(j.last_serial(), Some(6));
    assert!(j.since(1).is_none());
    drop(j);
    // and the file was rewritten: it opens clean with the same content
    let j = open(&tmp.0, JournalLimits::default());
    assert_eq!((j.first_serial(), j.len()), (Some(4), 2));
}

#[test]
fn bounds_drop_the_oldest() {
    let tmp = Tmp::new("bounds");
    let (_, cs) = versions(5, 1, 30);
    let limits = JournalLimits {
        max_bytes: MAX_BYTES,
        max_entries: 8,
    };
    let mut j = open(&tmp.0, limits);
    for c in &cs {
        j.append(c).expect("append");
        assert!(j.len() <= 8);
        assert_eq!(j.last_serial(), Some(c.to));
        assert_eq!(fs::metadata(j.path()).expect("file").len(), j.size());
    }
    assert!(j.len() >= 6);
    let first = j.first_serial().expect("entries");
    assert_eq!(j.since(first).map(|v| v.len()), Some(j.len()));
    assert!(j.since(1).is_none(), "the oldest are gone");
    drop(j);
    let j = open(&tmp.0, limits);
    assert_eq!(j.last_serial(), Some(30));
    assert_eq!(j.first_serial(), Some(first));

    // by size: each entry is a few KiB; the file stays under the bound
    let tmp = Tmp::new("bounds-bytes");
    let limits = JournalLimits {
        max_bytes: 20_000,
        max_entries: MAX_ENTRIES,
    };
    let mut j = open(&tmp.0, limits);
    for c in &cs {
        j.append(c).expect("append");
        assert!(j.size() <= 20_000 || j.len() == 1, "{} bytes", j.size());
    }
    assert_eq!(j.last_serial(), Some(30));

    // one changeset larger than the bound: an empty history at its serial
    let tmp = Tmp::new("bounds-huge");
    let limits = JournalLimits {
        max_bytes: 100,
        max_entries: MAX_ENTRIES,
    };
    let mut j = open(&tmp.0, limits);
    j.append(&cs[0]).expect("append");
    assert_eq!(j.len(), 0);
    assert_eq!(j.last_serial(), Some(2));
    j.append(&cs[1]).expect("append chains on the base serial");
    drop(j);
    assert_eq!(open(&tmp.0, limits).last_serial(), Some(3));
}

#[test]
fn reset_and_recover() {
    let tmp = Tmp::new("recover");
    let (v, cs) = versions(6, 1, 5);
    let mut j = open(&tmp.0, JournalLimits::default());
    // a fresh journal adopts the snapshot
    let z = j.recover(v[0].clone()).expect("recover");
    assert_eq!(z.serial(), Some(1));
    assert_eq!(j.last_serial(), Some(1));
    for c in &cs {
        j.append(c).expect("append");
    }
    drop(j);
    // crash after the journal append, before the snapshot: the journal brings it forward
    let mut j = open(&tmp.0, JournalLimits::default());
    let z = j.recover(v[2].clone()).expect("recover");
    assert!(same_content(&z, &v[4]));
    assert_eq!(j.len(), 4, "history kept");
    // the snapshot is the last version: as it is
    let z = j.recover(v[4].clone()).expect("recover");
    assert!(same_content(&z, &v[4]));
    // a snapshot the journal does not know: reset to it
    let mut other = v[4].clone();
    other.set_serial(77);
    let z = j.recover(other).expect("recover");
    assert_eq!(z.serial(), Some(77));
    assert_eq!((j.len(), j.last_serial()), (0, Some(77)));
    drop(j);
    let mut j = open(&tmp.0, JournalLimits::default());
    assert_eq!((j.len(), j.last_serial()), (0, Some(77)));
    j.reset(1000).expect("reset");
    assert!(matches!(
        j.append(&cs[0]),
        Err(JournalError::NotChained { last: 1000, .. })
    ));
}

#[test]
fn a_journal_of_another_zone_is_not_used() {
    let tmp = Tmp::new("other-zone");
    let (_, cs) = versions(7, 1, 3);
    let mut j = open(&tmp.0, JournalLimits::default());
    for c in &cs {
        j.append(c).expect("append");
    }
    drop(j);
    let j = Journal::open(&tmp.0, &name("other."), JournalLimits::default()).expect("open");
    assert_eq!(j.len(), 0);
    assert_eq!(j.last_serial(), None);
}

#[test]
fn the_pin_keeps_what_the_snapshot_needs() {
    let tmp = Tmp::new("pin");
    let (v, cs) = versions(8, 1, 31);
    let limits = JournalLimits {
        max_bytes: MAX_BYTES,
        max_entries: 8,
    };
    let mut j = open(&tmp.0, limits);
    // the snapshot on disk is version 1: nothing after it may go
    let z = j.recover(v[0].clone()).expect("recover");
    assert_eq!(z.serial(), Some(1));
    assert_eq!(j.keep_from(), Some(1));
    for c in &cs[..20] {
        j.append(c).expect("append");
    }
    assert_eq!(j.len(), 20, "held above the bound of 8 by the pin");
    assert!(j.over_limits());
    assert_eq!(j.since_keep().0, 20);
    assert_eq!(fs::metadata(j.path()).expect("file").len(), j.size());
    // a crash now: the snapshot (version 1) and the journal still give the last version
    drop(j);
    let mut j = open(&tmp.0, limits);
    assert_eq!(
        j.len(),
        20,
        "open does not compact: the pin is not known yet"
    );
    let z = j.recover(v[0].clone()).expect("recover");
    assert!(same_content(&z, &v[20]));
    // a newer snapshot (version 15) moves the pin: the next append compacts, keeping 15→
    j.set_keep_from(Some(15));
    assert_eq!(j.since_keep().0, 6);
    j.append(&cs[20]).expect("append");
    assert!(j.len() <= 8, "compacted to {} entries", j.len());
    assert!(!j.over_limits());
    assert!(j.first_serial().is_some_and(|f| f <= 15));
    let z = apply_chain(&v[14], &j.since(15).expect("15 still covered"));
    assert!(same_content(&z, &v[21]));
    // pinned at the last serial: everything may go
    j.set_keep_from(Some(22));
    assert_eq!(j.since_keep(), (0, 0));
    // a pin the journal does not know keeps everything (safe) ...
    j.set_keep_from(Some(9999));
    let n = j.len();
    for c in &cs[21..29] {
        j.append(c).expect("append");
    }
    assert_eq!(j.len(), n + 8);
    // ... and no pin is the old behaviour
    j.set_keep_from(None);
    j.append(&cs[29]).expect("append");
    assert!(j.len() <= 8);
    // reset pins at its serial
    j.reset(500).expect("reset");
    assert_eq!(j.keep_from(), Some(500));
}

#[test]
fn a_huge_changeset_stays_while_pinned() {
    let tmp = Tmp::new("pin-huge");
    let (v, cs) = versions(9, 1, 3);
    let limits = JournalLimits {
        max_bytes: 100,
        max_entries: MAX_ENTRIES,
    };
    let mut j = open(&tmp.0, limits);
    j.recover(v[0].clone()).expect("recover");
    j.append(&cs[0]).expect("append");
    assert_eq!(j.len(), 1, "the snapshot needs it");
    assert!(j.over_limits());
    j.set_keep_from(Some(2));
    j.append(&cs[1]).expect("append");
    // once the snapshot moved, 1→2 may go; 2→3 is what the snapshot at 2 needs
    assert_eq!(j.len(), 1);
    assert_eq!((j.first_serial(), j.last_serial()), (Some(2), Some(3)));
    j.set_keep_from(Some(3));
    j.reset(3).expect("reset");
    assert_eq!(j.len(), 0);
}

#[test]
fn a_second_journal_file_beside_the_first() {
    let tmp = Tmp::new("second");
    let (v, cs) = versions(10, 1, 6);
    let mut a = open(&tmp.0, JournalLimits::default());
    let mut b = Journal::open_file(
        &tmp.0,
        UNSIGNED_JOURNAL_FILE,
        &origin(),
        JournalLimits::default(),
    )
    .expect("open");
    assert_eq!(
        b.path().file_name().and_then(|f| f.to_str()),
        Some(UNSIGNED_JOURNAL_FILE)
    );
    for c in &cs[..3] {
        a.append(c).expect("append");
    }
    b.recover(v[0].clone()).expect("recover");
    for c in &cs {
        b.append(c).expect("append");
    }
    drop((a, b));
    let a = open(&tmp.0, JournalLimits::default());
    assert_eq!(a.last_serial(), Some(4));
    let mut b = Journal::open_file(
        &tmp.0,
        UNSIGNED_JOURNAL_FILE,
        &origin(),
        JournalLimits::default(),
    )
    .expect("open");
    assert_eq!(b.last_serial(), Some(6));
    let z = b.recover(v[2].clone()).expect("recover");
    assert!(same_content(&z, &v[5]));
    // a torn tail in one file does not touch the other
    let path = b.path().to_path_buf();
    drop(b);
    let mut data = fs::read(&path).expect("read");
    data.truncate(data.len() - 5);
    fs::write(&path, data).expect("write");
    let b = Journal::open_file(
        &tmp.0,
        UNSIGNED_JOURNAL_FILE,
        &origin(),
        JournalLimits::default(),
    )
    .expect("open");
    assert_eq!(b.last_serial(), Some(5));
    assert_eq!(
        open(&tmp.0, JournalLimits::default()).last_serial(),
        Some(4)
    );
}

fn apply_chain(z: &Zone, chain: &[std::sync::Arc<Changeset>]) -> Zone {
    let mut z = z.clone();
    for cs in chain {
        z = apply(&z, cs).unwrap_or_else(|e| panic!("apply: {e}"));
    }
    z
}
