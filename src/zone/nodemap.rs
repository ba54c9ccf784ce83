//! The ordered map of a zone's nodes: copy-on-write chunks, so that a clone costs one reference
//! count per chunk instead of a copy of every node.
//!
//! Why not `BTreeMap`: the signer keeps versions side by side — the version being served, the
//! one being built from it, the unsigned input and the upstream copy an IXFR applies to. With a
//! `BTreeMap` every new version of a one-record change began with a deep copy of the zone (about
//! a second at one million names) and ended with the old copy being freed (about as long). Here a
//! clone shares every chunk; a change copies only the chunks it touches ([`CHUNK_MAX`] entries at
//! most), so a new version costs in proportion to the change.
//!
//! Why not a persistent B-tree crate (`imbl::OrdMap`): the signer's other hot path is the full
//! signing of a large zone, which builds the map once from sorted nodes and walks it in order a
//! few times. A flat sorted vector of chunks is built from sorted input in one pass, with no
//! per-entry allocation, and walks memory in order; lookups are two binary searches.
//!
//! ```text
//!  NodeMap { chunks: [Arc<[n0 … n255]>, Arc<[n256 …]>, …], len }
//!  clone     → the Vec of Arcs is copied (n / 256 reference counts)
//!  get       → binary search on each chunk's last name, then inside the chunk
//!  get_mut / insert / remove → Arc::make_mut on one chunk (copied when shared), then Vec ops;
//!            a chunk over CHUNK_MAX is split in two; an empty chunk is dropped and a small one
//!            merged with its neighbour
//! ```
//!
//! The API is the subset of `BTreeMap<Name, Node>` the code base uses, with the same meaning
//! (insert replaces and returns the old value; iteration in key order; double-ended ranges).

use super::data::Node;
use crate::dns::name::Name;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Entries in a chunk right after a split or a bulk build: small enough that copying a shared
/// chunk for a one-record change is cheap (a few tens of microseconds), large enough that the
/// chunk list of a million-name zone stays a few thousand entries long.
pub const CHUNK_TARGET: usize = 256;
/// A chunk is split when it grows past this.
pub const CHUNK_MAX: usize = 2 * CHUNK_TARGET;
/// A chunk shrunk below this is merged into a neighbour (when the result is not over
/// [`CHUNK_TARGET`] + this), so that deletions do not leave thousands of tiny chunks.
pub const CHUNK_MIN: usize = CHUNK_TARGET / 8;

type Entries = Vec<(Name, Node)>;

/// A run of entries and the number of records they hold, counted on first demand and forgotten
/// whenever the chunk is changed, so that [`NodeMap::record_count`] after a small change
/// recounts only the chunks it touched.
#[derive(Default)]
struct Chunk {
    e: Entries,
    records: AtomicUsize,
}

/// `Chunk::records` when not counted yet.
const UNCOUNTED: usize = usize::MAX;

impl Chunk {
    fn new(e: Entries) -> Chunk {
        Chunk {
            e,
            records: AtomicUsize::new(UNCOUNTED),
        }
    }

    fn records(&self) -> usize {
        match self.records.load(Ordering::Relaxed) {
            UNCOUNTED => {
                let n = self
                    .e
                    .iter()
                    .map(|(_, v)| {
                        v.sigs.len() + v.rrsets.iter().map(|r| r.rdatas.len()).sum::<usize>()
                    })
                    .sum();
                self.records.store(n, Ordering::Relaxed);
                n
            }
            n => n,
        }
    }
}

impl Clone for Chunk {
    fn clone(&self) -> Chunk {
        Chunk {
            e: self.e.clone(),
            records: AtomicUsize::new(self.records.load(Ordering::Relaxed)),
        }
    }
}

impl std::ops::Deref for Chunk {
    type Target = Entries;
    fn deref(&self) -> &Entries {
        &self.e
    }
}

/// The entries of a chunk for changing: copied first when shared, count forgotten.
fn edit(c: &mut Arc<Chunk>) -> &mut Entries {
    let c = Arc::make_mut(c);
    *c.records.get_mut() = UNCOUNTED;
    &mut c.e
}

fn unwrap_chunk(c: Arc<Chunk>) -> Entries {
    match Arc::try_unwrap(c) {
        Ok(c) => c.e,
        Err(shared) => shared.e.clone(),
    }
}

/// An ordered map from owner name to node with copy-on-write chunks (see the module doc).
#[derive(Clone, Default)]
pub struct NodeMap {
    chunks: Vec<Arc<Chunk>>,
    len: usize,
}

/// A position: chunk index and offset in it. Normalised: `off < chunks[c].len()`, or
/// `(chunks.len(), 0)` for the end.
type Pos = (usize, usize);

impl NodeMap {
    pub fn new() -> NodeMap {
        NodeMap::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Builds the map from entries already sorted by name with no duplicates (checked: falls
    /// back to sorting when they are not).
    pub fn from_sorted(entries: Vec<(Name, Node)>) -> NodeMap {
        if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            return entries.into_iter().collect();
        }
        let len = entries.len();
        let mut chunks = Vec::with_capacity(len.div_ceil(CHUNK_TARGET));
        let mut it = entries.into_iter();
        loop {
            let c: Entries = it.by_ref().take(CHUNK_TARGET).collect();
            if c.is_empty() {
                break;
            }
            chunks.push(Arc::new(Chunk::new(c)));
        }
        NodeMap { chunks, len }
    }

    /// Index of the first chunk whose last key is >= `k` (`chunks.len()` if none).
    fn chunk_for(&self, k: &Name) -> usize {
        self.chunks
            .partition_point(|c| c.last().is_some_and(|(n, _)| n < k))
    }

    /// Where `k` is (Ok) or would be inserted (Err), as (chunk, offset).
    fn locate(&self, k: &Name) -> Result<Pos, Pos> {
        let c = self.chunk_for(k);
        let Some(chunk) = self.chunks.get(c) else {
            return Err((c, 0));
        };
        match chunk.binary_search_by(|(n, _)| n.cmp(k)) {
            Ok(o) => Ok((c, o)),
            Err(o) => Err((c, o)),
        }
    }

    fn norm(&self, (c, o): Pos) -> Pos {
        match self.chunks.get(c) {
            Some(ch) if o >= ch.len() => (c + 1, 0),
            _ => (c, o),
        }
    }

    /// First position whose key is >= `k` (`incl`) or > `k` (not `incl`).
    fn lower(&self, k: &Name, incl: bool) -> Pos {
        match self.locate(k) {
            Ok(p) if incl => p,
            Ok((c, o)) => self.norm((c, o + 1)),
            Err(p) => self.norm(p),
        }
    }

    fn end(&self) -> Pos {
        (self.chunks.len(), 0)
    }

    pub fn get(&self, k: &Name) -> Option<&Node> {
        self.get_key_value(k).map(|(_, v)| v)
    }

    pub fn get_key_value(&self, k: &Name) -> Option<(&Name, &Node)> {
        let (c, o) = self.locate(k).ok()?;
        let (n, v) = &self.chunks[c][o];
        Some((n, v))
    }

    pub fn contains_key(&self, k: &Name) -> bool {
        self.locate(k).is_ok()
    }

    pub fn get_mut(&mut self, k: &Name) -> Option<&mut Node> {
        let (c, o) = self.locate(k).ok()?;
        Some(&mut edit(&mut self.chunks[c])[o].1)
    }

    /// Inserts or replaces; returns the value that was there.
    pub fn insert(&mut self, k: Name, v: Node) -> Option<Node> {
        match self.locate(&k) {
            Ok((c, o)) => Some(std::mem::replace(&mut edit(&mut self.chunks[c])[o].1, v)),
            Err((c, o)) => {
                self.insert_at(c, o, k, v);
                None
            }
        }
    }

    /// Inserts a new entry where `locate` said it belongs; returns its position.
    fn insert_at(&mut self, c: usize, o: usize, k: Name, v: Node) -> Pos {
        self.len += 1;
        if self.chunks.is_empty() {
            self.chunks.push(Arc::new(Chunk::new(vec![(k, v)])));
            return (0, 0);
        }
        // past the last key: append to the last chunk
        let (c, o) = if c == self.chunks.len() {
            let last = c - 1;
            (last, self.chunks[last].len())
        } else {
            (c, o)
        };
        let chunk = edit(&mut self.chunks[c]);
        chunk.insert(o, (k, v));
        if chunk.len() > CHUNK_MAX {
            let tail = chunk.split_off(chunk.len() / 2);
            let head_len = chunk.len();
            self.chunks.insert(c + 1, Arc::new(Chunk::new(tail)));
            if o >= head_len {
                return (c + 1, o - head_len);
            }
        }
        (c, o)
    }

    pub fn remove(&mut self, k: &Name) -> Option<Node> {
        self.remove_entry(k).map(|(_, v)| v)
    }

    pub fn remove_entry(&mut self, k: &Name) -> Option<(Name, Node)> {
        let (c, o) = self.locate(k).ok()?;
        self.len -= 1;
        let chunk = edit(&mut self.chunks[c]);
        let out = chunk.remove(o);
        let n = chunk.len();
        if n == 0 {
            self.chunks.remove(c);
        } else if n < CHUNK_MIN {
            // merge with the smaller neighbour when the result stays moderate
            let next = self.chunks.get(c + 1).map(|x| x.len());
            let prev = c.checked_sub(1).map(|p| self.chunks[p].len());
            let pair = match (prev, next) {
                (Some(p), Some(x)) if p <= x => Some(c - 1),
                (_, Some(_)) => Some(c),
                (Some(_), None) => Some(c - 1),
                (None, None) => None,
            };
            if let Some(a) = pair {
                if self.chunks[a].len() + self.chunks[a + 1].len() <= CHUNK_TARGET + CHUNK_MIN {
                    let b = self.chunks.remove(a + 1);
                    let b = unwrap_chunk(b);
                    edit(&mut self.chunks[a]).extend(b);
                }
            }
        }
        Some(out)
    }

    /// The entry for `k`, BTreeMap style (`or_default`, `or_insert_with`, `or_insert`).
    pub fn entry(&mut self, k: Name) -> Entry<'_> {
        Entry { map: self, key: k }
    }

    pub fn first_key_value(&self) -> Option<(&Name, &Node)> {
        self.chunks
            .first()
            .and_then(|c| c.first())
            .map(|(n, v)| (n, v))
    }

    pub fn last_key_value(&self) -> Option<(&Name, &Node)> {
        self.chunks
            .last()
            .and_then(|c| c.last())
            .map(|(n, v)| (n, v))
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter {
            chunks: &self.chunks,
            front: (0, 0),
            back: self.end(),
        }
    }

    /// Entries whose name lies in `range`, in order (double-ended).
    pub fn range<R: RangeBounds<Name>>(&self, range: R) -> Iter<'_> {
        let front = match range.start_bound() {
            Bound::Included(k) => self.lower(k, true),
            Bound::Excluded(k) => self.lower(k, false),
            Bound::Unbounded => (0, 0),
        };
        let back = match range.end_bound() {
            Bound::Included(k) => self.lower(k, false),
            Bound::Excluded(k) => self.lower(k, true),
            Bound::Unbounded => self.end(),
        };
        // an empty or inverted range
        let back = if back < front { front } else { back };
        Iter {
            chunks: &self.chunks,
            front,
            back,
        }
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &Name> + '_ {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Node> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Every entry mutably: every shared chunk is copied first (a whole-zone rewrite).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Name, &mut Node)> + '_ {
        self.chunks
            .iter_mut()
            .flat_map(|c| edit(c).iter_mut().map(|(k, v)| (&*k, v)))
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Node> + '_ {
        self.iter_mut().map(|(_, v)| v)
    }

    /// Keeps the entries for which `f` is true.
    pub fn retain<F: FnMut(&Name, &mut Node) -> bool>(&mut self, mut f: F) {
        let entries: Vec<(Name, Node)> = std::mem::take(self)
            .into_iter()
            .filter_map(|(k, mut v)| f(&k, &mut v).then_some((k, v)))
            .collect();
        *self = NodeMap::from_sorted(entries);
    }

    /// The number of records (RRs of every RRset, and RRSIGs): counted per chunk and kept until
    /// the chunk changes, so a count after a small change costs what the change touched.
    pub fn record_count(&self) -> usize {
        self.chunks.iter().map(|c| c.records()).sum()
    }

    /// How many chunks this map shares with `other`.
    #[cfg(test)]
    fn shared_chunks(&self, other: &NodeMap) -> usize {
        self.chunks
            .iter()
            .filter(|c| other.chunks.iter().any(|o| Arc::ptr_eq(c, o)))
            .count()
    }

    /// Checks the invariants (tests).
    #[cfg(test)]
    fn check(&self) {
        let mut prev: Option<&Name> = None;
        let mut n = 0;
        for c in &self.chunks {
            assert!(!c.is_empty() && c.len() <= CHUNK_MAX);
            for (k, _) in c.iter() {
                if let Some(p) = prev {
                    assert!(p < k);
                }
                prev = Some(k);
                n += 1;
            }
        }
        assert_eq!(n, self.len);
        let slow: usize = self
            .iter()
            .map(|(_, v)| v.sigs.len() + v.rrsets.iter().map(|r| r.rdatas.len()).sum::<usize>())
            .sum();
        assert_eq!(self.record_count(), slow);
    }
}

/// A BTreeMap-style entry.
pub struct Entry<'a> {
    map: &'a mut NodeMap,
    key: Name,
}

impl<'a> Entry<'a> {
    pub fn or_insert_with<F: FnOnce() -> Node>(self, f: F) -> &'a mut Node {
        let (c, o) = match self.map.locate(&self.key) {
            Ok(p) => p,
            Err((c, o)) => self.map.insert_at(c, o, self.key, f()),
        };
        &mut edit(&mut self.map.chunks[c])[o].1
    }

    pub fn or_default(self) -> &'a mut Node {
        self.or_insert_with(Node::default)
    }

    pub fn or_insert(self, v: Node) -> &'a mut Node {
        self.or_insert_with(|| v)
    }

    pub fn key(&self) -> &Name {
        &self.key
    }
}

/// An in-order iterator over (a range of) a [`NodeMap`].
#[derive(Clone)]
pub struct Iter<'a> {
    chunks: &'a [Arc<Chunk>],
    /// Next position from the front (normalised).
    front: Pos,
    /// One past the last position from the back (normalised).
    back: Pos,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a Name, &'a Node);

    fn next(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        let (c, o) = self.front;
        let chunk = &self.chunks[c];
        let (k, v) = &chunk[o];
        self.front = if o + 1 >= chunk.len() {
            (c + 1, 0)
        } else {
            (c, o + 1)
        };
        Some((k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.front >= self.back {
            return (0, Some(0));
        }
        let (fc, fo) = self.front;
        let (bc, bo) = self.back;
        if fc == bc {
            return (bo - fo, Some(bo - fo));
        }
        let n = self.chunks[fc].len() - fo
            + self.chunks[fc + 1..bc]
                .iter()
                .map(|c| c.len())
                .sum::<usize>()
            + bo;
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        let (mut c, mut o) = self.back;
        if o == 0 {
            c -= 1;
            o = self.chunks[c].len();
        }
        o -= 1;
        self.back = (c, o);
        let (k, v) = &self.chunks[c][o];
        Some((k, v))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a NodeMap {
    type Item = (&'a Name, &'a Node);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for NodeMap {
    type Item = (Name, Node);
    type IntoIter = std::iter::Flatten<std::vec::IntoIter<Entries>>;
    fn into_iter(self) -> Self::IntoIter {
        self.chunks
            .into_iter()
            .map(unwrap_chunk)
            .collect::<Vec<Entries>>()
            .into_iter()
            .flatten()
    }
}

impl FromIterator<(Name, Node)> for NodeMap {
    /// BTreeMap semantics: for a repeated name the last value wins.
    fn from_iter<I: IntoIterator<Item = (Name, Node)>>(iter: I) -> NodeMap {
        let mut v: Vec<(Name, Node)> = iter.into_iter().collect();
        if !v.windows(2).all(|w| w[0].0 < w[1].0) {
            // stable: equal names keep their order, and the last of each run is kept
            v.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out: Vec<(Name, Node)> = Vec::with_capacity(v.len());
            for e in v {
                match out.last_mut() {
                    Some(l) if l.0 == e.0 => *l = e,
                    _ => out.push(e),
                }
            }
            v = out;
        }
        NodeMap::from_sorted(v)
    }
}

impl Extend<(Name, Node)> for NodeMap {
    fn extend<I: IntoIterator<Item = (Name, Node)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl std::ops::Index<&Name> for NodeMap {
    type Output = Node;
    /// Panics when the name is absent, as `BTreeMap` does (for tests and known names only).
    fn index(&self, k: &Name) -> &Node {
        match self.get(k) {
            Some(v) => v,
            None => panic!("no node at {k}"),
        }
    }
}

impl PartialEq for NodeMap {
    fn eq(&self, other: &NodeMap) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for NodeMap {}

impl std::fmt::Debug for NodeMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::data::RRset;
    use std::collections::BTreeMap;

    fn name(i: u64) -> Name {
        Name::parse(&format!("n{i}.x{}.example.", i % 7), None).unwrap()
    }

    fn node(i: u64) -> Node {
        Node {
            rrsets: vec![RRset {
                rtype: 16,
                ttl: i as u32,
                rdatas: vec![i.to_be_bytes().to_vec()],
            }],
            sigs: Vec::new(),
        }
    }

    /// Reproducible operations without a crate.
    use crate::signer::fixtures::XorShift as Rng;

    fn same(m: &NodeMap, b: &BTreeMap<Name, Node>) {
        m.check();
        assert_eq!(m.len(), b.len());
        assert!(m.iter().eq(b.iter()));
        assert!(m.iter().rev().eq(b.iter().rev()));
        assert_eq!(m.iter().len(), b.len());
    }

    /// Random inserts, removes, entries and mutations, checked against BTreeMap after every
    /// step, with clones taken along the way that must not change.
    #[test]
    fn behaves_like_btreemap() {
        let mut rng = Rng(0x9e3779b97f4a7c15);
        let mut m = NodeMap::new();
        let mut b = BTreeMap::new();
        let mut frozen: Vec<(NodeMap, BTreeMap<Name, Node>)> = Vec::new();
        for step in 0..20_000u64 {
            let i = rng.next_u64() % 3000;
            match rng.next_u64() % 6 {
                0 | 1 => assert_eq!(m.insert(name(i), node(step)), b.insert(name(i), node(step))),
                2 => assert_eq!(m.remove(&name(i)), b.remove(&name(i))),
                3 => {
                    let x = m.entry(name(i)).or_default();
                    x.sigs.clear();
                    let y = b.entry(name(i)).or_default();
                    y.sigs.clear();
                }
                4 => {
                    if let (Some(x), Some(y)) = (m.get_mut(&name(i)), b.get_mut(&name(i))) {
                        x.rrsets.clear();
                        y.rrsets.clear();
                    }
                }
                _ => assert_eq!(m.get(&name(i)), b.get(&name(i))),
            }
            if step % 997 == 0 {
                same(&m, &b);
                frozen.push((m.clone(), b.clone()));
            }
        }
        same(&m, &b);
        for (fm, fb) in &frozen {
            same(fm, fb);
        }
        // removals down to a handful: chunks merge and vanish
        let keys: Vec<Name> = b.keys().cloned().collect();
        for k in keys.iter().skip(5) {
            assert_eq!(m.remove(k), b.remove(k));
        }
        same(&m, &b);
        assert!(m.chunks.len() <= 1);
    }

    #[test]
    fn ranges_match_btreemap() {
        let b: BTreeMap<Name, Node> = (0..2000).map(|i| (name(i * 2), node(i))).collect();
        let m: NodeMap = b.clone().into_iter().collect();
        same(&m, &b);
        let mut rng = Rng(7);
        for _ in 0..2000 {
            let lo = name(rng.next_u64() % 4200);
            let hi = name(rng.next_u64() % 4200);
            let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
            assert!(m
                .range(lo.clone()..hi.clone())
                .eq(b.range(lo.clone()..hi.clone())));
            assert!(m
                .range(lo.clone()..=hi.clone())
                .eq(b.range(lo.clone()..=hi.clone())));
            assert!(m.range(..hi.clone()).rev().eq(b.range(..hi.clone()).rev()));
            assert!(m
                .range((Bound::Excluded(&lo), Bound::Unbounded))
                .eq(b.range((Bound::Excluded(&lo), Bound::Unbounded))));
            let mut r = m.range(lo.clone()..=hi.clone());
            let mut s = b.range(lo.clone()..=hi.clone());
            // alternate ends
            loop {
                let (x, y) = if rng.next_u64().is_multiple_of(2) {
                    (r.next(), s.next())
                } else {
                    (r.next_back(), s.next_back())
                };
                assert_eq!(x, y);
                if x.is_none() {
                    break;
                }
            }
        }
        assert_eq!(m.first_key_value(), b.first_key_value());
        assert_eq!(m.last_key_value(), b.last_key_value());
    }

    /// A clone shares every chunk; a change copies one.
    #[test]
    fn clones_share_until_changed() {
        let m: NodeMap = (0..10_000).map(|i| (name(i), node(i))).collect();
        let mut c = m.clone();
        assert_eq!(c.shared_chunks(&m), m.chunks.len());
        c.get_mut(&name(5)).unwrap().rrsets.clear();
        assert_eq!(c.shared_chunks(&m), m.chunks.len() - 1);
        assert_ne!(c, m);
        assert_eq!(m.get(&name(5)), Some(&node(5)));
    }

    #[test]
    fn from_iter_last_wins() {
        let m: NodeMap = vec![(name(1), node(1)), (name(1), node(2)), (name(0), node(0))]
            .into_iter()
            .collect();
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(&name(1)), Some(&node(2)));
        m.check();
    }
}
