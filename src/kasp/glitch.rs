//! The glitch-freedom checker: given what was published when, decides whether any resolver,
//! whatever it cached, could have failed to validate at any instant.
//!
//! It shares no code with the rules behind [`super::step`] on purpose: it is the specification
//! the state machine is tested against, written over plain sets of keys.
//!
//! # Model
//!
//! A [`History`] has three timelines of *versions*, each current from its start until the next
//! version starts:
//!
//! * the child's DNSKEY RRset with the set of keys whose RRSIG over it is served (one response,
//!   cached together under the DNSKEY TTL);
//! * the child's zone data, represented by the set of keys whose RRSIG is on it (any RRset,
//!   positive or NSEC/NSEC3 denial alike, cached under at most the max zone TTL);
//! * the parent's DS RRset for the child.
//!
//! A resolver may hold, at instant `T`, any version that was current at the primary at some
//! time in `(T − W, T]`, where `W` = TTL + propagation delay of that timeline (a secondary may
//! lag the primary by the propagation delay, and the cache keeps the answer for the TTL; a
//! cache entry is gone at exactly fetch + TTL). The three are cached independently.
//!
//! # What is checked
//!
//! At every instant at which some version starts (the set of possible caches only grows
//! then, so these instants cover every moment), for every combination (DS set `D`, DNSKEY
//! version `K` with signers `S`, zone version `Z`) that may be cached:
//!
//! * `D` empty: an insecure delegation, nothing can fail (reported separately when it follows
//!   a secure one: [`Report::insecure_after_secure`]);
//! * otherwise, for **each algorithm** named in `D` (RFC 4035 §2.2 read strictly — a
//!   validator may insist on every DS algorithm): some DS of that algorithm matches a key in
//!   `K` that is in `S` (it signs the DNSKEY RRset), and some key of that algorithm in `K`
//!   signs the zone data (`Z`);
//! * with [`Options::strict_dnskey_algorithms`], also for each algorithm present in `K`: `S` and
//!   `Z` contain a key of that algorithm (validators that apply RFC 4035 §2.2 to the DNSKEY
//!   RRset's algorithms).
//!
//! And for each published version of the zone (DNSKEY version and zone version published
//! together): a signed zone has both a DNSKEY RRset and zone signatures, and every algorithm
//! in its DNSKEY RRset signs both ([`Report::published_problems`]).
//!
//! # What it does not check
//!
//! Signature validity periods (the signer's refresh policy keeps every served signature valid
//! for longer than it may be cached), cryptography, DS digests and key tags (a key is its
//! [`KeyRef`]), negative caching of the DS or DNSKEY RRsets, a parent that serves a DS set
//! other than its recorded history, resolvers that ignore TTLs, and trust anchors configured
//! below the parent (RFC 5011). The zone-data timeline stands for every RRset: the checker
//! assumes each version signs all RRsets with the same keys, which signet's signer does.

use std::collections::BTreeSet;
use std::fmt;

use crate::config::Policy;

use super::state::KeyRef;
use super::time::fmt_time;

/// TTLs and propagation delays of the world the history was served in (the truth, which a
/// broken test may hide from the state machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub dnskey_ttl: u64,
    pub max_zone_ttl: u64,
    pub zone_propagation_delay: u64,
    pub parent_ds_ttl: u64,
    pub parent_propagation_delay: u64,
}

impl Timings {
    /// The policy's values.
    pub fn from_policy(p: &Policy) -> Timings {
        Timings {
            dnskey_ttl: p.dnskey_ttl,
            max_zone_ttl: p.max_zone_ttl,
            zone_propagation_delay: p.zone_propagation_delay,
            parent_ds_ttl: p.parent_ds_ttl,
            parent_propagation_delay: p.parent_propagation_delay,
        }
    }

    fn dnskey_window(&self) -> u64 {
        self.dnskey_ttl + self.zone_propagation_delay
    }
    fn zone_window(&self) -> u64 {
        self.max_zone_ttl + self.zone_propagation_delay
    }
    fn ds_window(&self) -> u64 {
        self.parent_ds_ttl + self.parent_propagation_delay
    }
}

/// One version of the DNSKEY RRset: its keys and the keys whose RRSIG covers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct DnskeyVersion {
    pub keys: BTreeSet<KeyRef>,
    pub signers: BTreeSet<KeyRef>,
}

/// What was published when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// (start, DNSKEY version).
    pub dnskey: Vec<(u64, DnskeyVersion)>,
    /// (start, keys signing the zone data).
    pub zone: Vec<(u64, BTreeSet<KeyRef>)>,
    /// (start, keys with a DS at the parent).
    pub ds: Vec<(u64, BTreeSet<KeyRef>)>,
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

fn push<T: PartialEq>(v: &mut Vec<(u64, T)>, at: u64, x: T) {
    if let Some(last) = v.last_mut() {
        if last.1 == x {
            return;
        }
        if last.0 == at {
            // Replaced at the same instant: never served.
            last.1 = x;
            let n = v.len();
            if n >= 2 && v[n - 2].1 == v[n - 1].1 {
                v.pop();
            }
            return;
        }
    }
    v.push((at, x));
}

impl History {
    /// An unsigned zone without DS since time 0.
    pub fn new() -> History {
        History {
            dnskey: vec![(0, DnskeyVersion::default())],
            zone: vec![(0, BTreeSet::new())],
            ds: vec![(0, BTreeSet::new())],
        }
    }

    /// The child publishes (on its primary) a version at `at`. Times must not go backwards;
    /// a version replaced at the same instant was never served.
    pub fn publish_zone(&mut self, at: u64, dnskey: DnskeyVersion, zone: BTreeSet<KeyRef>) {
        push(&mut self.dnskey, at, dnskey);
        push(&mut self.zone, at, zone);
    }

    /// The parent publishes a DS set at `at`.
    pub fn publish_ds(&mut self, at: u64, ds: BTreeSet<KeyRef>) {
        push(&mut self.ds, at, ds);
    }
}

/// Checker options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Also require, per cached DNSKEY RRset, that each of its algorithms signs it and the zone.
    pub strict_dnskey_algorithms: bool,
    /// Stop collecting glitches after this many.
    pub max_glitches: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            strict_dnskey_algorithms: false,
            max_glitches: 20,
        }
    }
}

/// A combination of cached data that does not validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glitch {
    /// The first instant the combination may be cached.
    pub at: u64,
    /// (start of the version, its content).
    pub ds: (u64, BTreeSet<KeyRef>),
    pub dnskey: (u64, DnskeyVersion),
    pub zone: (u64, BTreeSet<KeyRef>),
    pub reason: String,
}

fn set(s: &BTreeSet<KeyRef>) -> String {
    let v: Vec<String> = s.iter().map(|k| k.tag.to_string()).collect();
    format!("{{{}}}", v.join(","))
}

impl fmt::Display for Glitch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: a resolver may hold DS {} (served from {}), DNSKEY {} signed by {} (from {}), zone data signed by {} (from {}): {}",
            fmt_time(self.at),
            set(&self.ds.1),
            fmt_time(self.ds.0),
            set(&self.dnskey.1.keys),
            set(&self.dnskey.1.signers),
            fmt_time(self.dnskey.0),
            set(&self.zone.1),
            fmt_time(self.zone.0),
            self.reason
        )
    }
}

/// The checker's findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub glitches: Vec<Glitch>,
    /// Problems of single published versions: (time, message).
    pub published_problems: Vec<(u64, String)>,
    /// Start times of empty parent DS sets that follow a non-empty one.
    pub insecure_after_secure: Vec<u64>,
    /// Instants evaluated.
    pub instants: usize,
    /// Distinct combinations evaluated.
    pub combinations: usize,
}

impl Report {
    /// No glitch and no bad published version.
    pub fn clean(&self) -> bool {
        self.glitches.is_empty() && self.published_problems.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} instants, {} combinations, {} glitches, {} bad published versions",
            self.instants,
            self.combinations,
            self.glitches.len(),
            self.published_problems.len()
        )?;
        for g in &self.glitches {
            writeln!(f, "  glitch: {g}")?;
        }
        for (t, p) in &self.published_problems {
            writeln!(f, "  published {}: {p}", fmt_time(*t))?;
        }
        Ok(())
    }
}

/// Indices of the versions of `v` that a cache may hold at `t`: current at some time in
/// `(t − w, t]`.
fn possible<T>(v: &[(u64, T)], t: u64, w: u64) -> std::ops::Range<usize> {
    let last = v.partition_point(|(s, _)| *s <= t);
    // Version i ends when i+1 starts and may be held while end + w > t; ends are sorted, so
    // the versions that ended too long ago form a prefix.
    let first = v
        .get(1..)
        .unwrap_or(&[])
        .partition_point(|(end, _)| end.saturating_add(w) <= t)
        .min(last);
    first..last
}

/// Why the combination fails, if it does.
fn problem(
    d: &BTreeSet<KeyRef>,
    k: &DnskeyVersion,
    z: &BTreeSet<KeyRef>,
    strict: bool,
) -> Option<String> {
    if d.is_empty() {
        return None;
    }
    let algs: BTreeSet<u8> = d.iter().map(|x| x.algorithm).collect();
    for a in algs {
        let ds_chain = d
            .iter()
            .any(|x| x.algorithm == a && k.keys.contains(x) && k.signers.contains(x));
        if !ds_chain {
            return Some(format!(
                "no DS of algorithm {a} matches a DNSKEY that signs the DNSKEY RRset"
            ));
        }
        let zone_chain = k.keys.iter().any(|x| x.algorithm == a && z.contains(x));
        if !zone_chain {
            return Some(format!(
                "no key of algorithm {a} in the DNSKEY RRset signs the zone data"
            ));
        }
    }
    if strict {
        let algs: BTreeSet<u8> = k.keys.iter().map(|x| x.algorithm).collect();
        for a in algs {
            if !k.signers.iter().any(|x| x.algorithm == a) || !z.iter().any(|x| x.algorithm == a) {
                return Some(format!(
                    "algorithm {a} is in the DNSKEY RRset but does not sign both it and the zone data"
                ));
            }
        }
    }
    None
}

/// Checks a history: see the module documentation.
pub fn check(history: &History, timings: &Timings, options: &Options) -> Report {
    let mut report = Report::default();
    // published versions: the DNSKEY and zone versions current at each publication
    let at = |t: u64| {
        let k = history
            .dnskey
            .iter()
            .rev()
            .find(|(s, _)| *s <= t)
            .map(|(_, k)| k.clone())
            .unwrap_or_default();
        let z = history
            .zone
            .iter()
            .rev()
            .find(|(s, _)| *s <= t)
            .map(|(_, z)| z.clone())
            .unwrap_or_default();
        (k, z)
    };
    let published: BTreeSet<u64> = history
        .dnskey
        .iter()
        .map(|v| v.0)
        .chain(history.zone.iter().map(|v| v.0))
        .collect();
    for t in published {
        let (k, z) = at(t);
        let signed = !k.keys.is_empty() || !k.signers.is_empty() || !z.is_empty();
        if !signed {
            continue;
        }
        if k.keys.is_empty() || k.signers.is_empty() || z.is_empty() {
            report.published_problems.push((
                t,
                format!(
                    "partially signed: DNSKEY {} signed by {}, zone signed by {}",
                    set(&k.keys),
                    set(&k.signers),
                    set(&z)
                ),
            ));
            continue;
        }
        let algs: BTreeSet<u8> = k.keys.iter().map(|x| x.algorithm).collect();
        for a in algs {
            if !k.signers.iter().any(|x| x.algorithm == a) || !z.iter().any(|x| x.algorithm == a) {
                report.published_problems.push((
                    t,
                    format!("algorithm {a} is in the DNSKEY RRset but does not sign both it and the zone (RFC 4035 §2.2)"),
                ));
            }
        }
    }
    for w in history.ds.windows(2) {
        if !w[0].1.is_empty() && w[1].1.is_empty() {
            report.insecure_after_secure.push(w[1].0);
        }
    }
    // every instant at which a version starts
    let instants: BTreeSet<u64> = history
        .dnskey
        .iter()
        .map(|v| v.0)
        .chain(history.zone.iter().map(|v| v.0))
        .chain(history.ds.iter().map(|v| v.0))
        .collect();
    let mut seen: BTreeSet<(usize, usize, usize)> = BTreeSet::new();
    for &t in &instants {
        report.instants += 1;
        let ds = possible(&history.ds, t, timings.ds_window());
        let dk = possible(&history.dnskey, t, timings.dnskey_window());
        let zs = possible(&history.zone, t, timings.zone_window());
        for di in ds.clone() {
            for ki in dk.clone() {
                for zi in zs.clone() {
                    if !seen.insert((di, ki, zi)) {
                        continue;
                    }
                    report.combinations += 1;
                    let (d, k, z) = (&history.ds[di], &history.dnskey[ki], &history.zone[zi]);
                    if let Some(reason) =
                        problem(&d.1, &k.1, &z.1, options.strict_dnskey_algorithms)
                    {
                        if report.glitches.len() < options.max_glitches {
                            report.glitches.push(Glitch {
                                at: t,
                                ds: d.clone(),
                                dnskey: k.clone(),
                                zone: z.clone(),
                                reason,
                            });
                        }
                    }
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(tag: u16) -> KeyRef {
        KeyRef { algorithm: 13, tag }
    }
    fn s(v: &[u16]) -> BTreeSet<KeyRef> {
        v.iter().map(|t| k(*t)).collect()
    }
    fn dk(keys: &[u16], signers: &[u16]) -> DnskeyVersion {
        DnskeyVersion {
            keys: s(keys),
            signers: s(signers),
        }
    }
    const T: Timings = Timings {
        dnskey_ttl: 100,
        max_zone_ttl: 200,
        zone_propagation_delay: 10,
        parent_ds_ttl: 300,
        parent_propagation_delay: 20,
    };

    #[test]
    fn possible_versions() {
        let v = vec![(0u64, ()), (100, ()), (200, ())];
        assert_eq!(possible(&v, 50, 10), 0..1);
        assert_eq!(possible(&v, 100, 10), 0..2);
        assert_eq!(possible(&v, 109, 10), 0..2);
        assert_eq!(possible(&v, 110, 10), 1..2);
        assert_eq!(possible(&v, 250, 100), 1..3);
    }

    #[test]
    fn zsk_swap_without_prepublication_is_caught() {
        let mut h = History::new();
        h.publish_zone(0, dk(&[1, 2], &[1]), s(&[2]));
        h.publish_ds(1000, s(&[1]));
        // new ZSK 3 published and used at once: a cached DNSKEY {1,2} + new zone data fails
        h.publish_zone(5000, dk(&[1, 2, 3], &[1]), s(&[3]));
        let r = check(&h, &T, &Options::default());
        assert!(!r.glitches.is_empty(), "{r}");
        // with pre-publication it is fine
        let mut h = History::new();
        h.publish_zone(0, dk(&[1, 2], &[1]), s(&[2]));
        h.publish_ds(1000, s(&[1]));
        h.publish_zone(5000, dk(&[1, 2, 3], &[1]), s(&[2]));
        h.publish_zone(5110, dk(&[1, 2, 3], &[1]), s(&[3]));
        h.publish_zone(5320, dk(&[1, 3], &[1]), s(&[3]));
        let r = check(&h, &T, &Options::default());
        assert!(r.clean(), "{r}");
        // one second too early for the old signatures to expire
        let mut h = History::new();
        h.publish_zone(0, dk(&[1, 2], &[1]), s(&[2]));
        h.publish_ds(1000, s(&[1]));
        h.publish_zone(5000, dk(&[1, 2, 3], &[1]), s(&[2]));
        h.publish_zone(5110, dk(&[1, 2, 3], &[1]), s(&[3]));
        h.publish_zone(5319, dk(&[1, 3], &[1]), s(&[3]));
        assert!(!check(&h, &T, &Options::default()).glitches.is_empty());
    }

    #[test]
    fn ksk_removed_while_ds_cached_is_caught() {
        let mut h = History::new();
        h.publish_zone(0, dk(&[1, 2], &[1]), s(&[2]));
        h.publish_ds(1000, s(&[1]));
        h.publish_zone(2000, dk(&[1, 2, 3], &[1, 3]), s(&[2]));
        h.publish_ds(3000, s(&[3]));
        h.publish_zone(3319, dk(&[2, 3], &[3]), s(&[2]));
        let r = check(&h, &T, &Options::default());
        assert!(!r.glitches.is_empty());
        let mut h2 = History::new();
        h2.publish_zone(0, dk(&[1, 2], &[1]), s(&[2]));
        h2.publish_ds(1000, s(&[1]));
        h2.publish_zone(2000, dk(&[1, 2, 3], &[1, 3]), s(&[2]));
        h2.publish_ds(3000, s(&[3]));
        h2.publish_zone(3320, dk(&[2, 3], &[3]), s(&[2]));
        assert!(check(&h2, &T, &Options::default()).clean());
    }

    #[test]
    fn per_algorithm_and_strict() {
        let k15 = |t| KeyRef {
            algorithm: 15,
            tag: t,
        };
        let mut h = History::new();
        h.publish_zone(0, dk(&[1], &[1]), s(&[1]));
        h.publish_ds(1000, s(&[1]));
        // alg 15 CSK published with its signatures at once: fine per DS algorithm, not strict
        let mut v = dk(&[1], &[1]);
        v.keys.insert(k15(9));
        v.signers.insert(k15(9));
        let mut z = s(&[1]);
        z.insert(k15(9));
        h.publish_zone(2000, v, z);
        assert!(check(&h, &T, &Options::default()).clean());
        let strict = Options {
            strict_dnskey_algorithms: true,
            ..Options::default()
        };
        assert!(!check(&h, &T, &strict).glitches.is_empty());
        // a DS of algorithm 15 too early: its chain needs zone signatures of alg 15 everywhere
        let mut ds = s(&[1]);
        ds.insert(k15(9));
        h.publish_ds(2100, ds);
        let r = check(&h, &T, &Options::default());
        assert!(
            r.glitches.iter().any(|g| g.reason.contains("algorithm 15")),
            "{r}"
        );
    }

    #[test]
    fn published_problems() {
        let mut h = History::new();
        h.publish_zone(1000, dk(&[1], &[1]), s(&[]));
        let r = check(&h, &T, &Options::default());
        assert_eq!(r.published_problems.len(), 1);
        let mut h = History::new();
        h.publish_ds(100, s(&[1]));
        h.publish_ds(200, s(&[]));
        assert_eq!(
            check(&h, &T, &Options::default()).insecure_after_secure,
            vec![200]
        );
    }
}
