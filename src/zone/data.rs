//! A zone's content: nodes in canonical order, each with its RRsets and RRSIGs.
//!
//! The same structure holds the unsigned input and the signed output. Building one from
//! records enforces what every zone must satisfy (RFC 1035 §5.2, RFC 2181 §10.1, RFC 1034 §3.6.2):
//! exactly one SOA at the apex, nothing outside the origin, no CNAME beside other data, one TTL
//! per RRset, no duplicate records.

use super::nodemap::NodeMap;
use crate::dns::name::Name;
use crate::dns::rdata;
use crate::dns::record::Record;
use crate::dns::rtype::{self, t};

/// One RRset: records of one type at one owner, with one TTL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RRset {
    pub rtype: u16,
    pub ttl: u32,
    pub rdatas: Vec<Vec<u8>>,
}

/// An RRSIG record at a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sig {
    pub covered: u16,
    pub ttl: u32,
    pub rdata: Vec<u8>,
}

/// Everything at one owner name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    /// Sorted by type number, one entry per type (RRSIG kept apart in `sigs`).
    pub rrsets: Vec<RRset>,
    pub sigs: Vec<Sig>,
}

impl Node {
    pub fn get(&self, rtype: u16) -> Option<&RRset> {
        self.rrsets
            .binary_search_by_key(&rtype, |r| r.rtype)
            .ok()
            .map(|i| &self.rrsets[i])
    }

    pub fn has(&self, rtype: u16) -> bool {
        self.get(rtype).is_some()
    }

    /// Inserts or replaces the RRset of its type.
    pub fn put(&mut self, set: RRset) {
        match self.rrsets.binary_search_by_key(&set.rtype, |r| r.rtype) {
            Ok(i) => self.rrsets[i] = set,
            Err(i) => self.rrsets.insert(i, set),
        }
    }

    pub fn remove(&mut self, rtype: u16) -> Option<RRset> {
        match self.rrsets.binary_search_by_key(&rtype, |r| r.rtype) {
            Ok(i) => Some(self.rrsets.remove(i)),
            Err(_) => None,
        }
    }

    /// RRSIGs covering `rtype`.
    pub fn sigs_for(&self, rtype: u16) -> impl Iterator<Item = &Sig> {
        self.sigs.iter().filter(move |s| s.covered == rtype)
    }

    pub fn is_empty(&self) -> bool {
        self.rrsets.is_empty() && self.sigs.is_empty()
    }
}

/// A zone: origin, class and nodes in canonical order (RFC 4034 §6.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    pub origin: Name,
    pub class: u16,
    pub nodes: NodeMap,
}

/// How a zone's records were found wanting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneProblem {
    /// Line in the source file, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl Zone {
    pub fn new(origin: Name) -> Zone {
        Zone {
            origin,
            class: rtype::class::IN,
            nodes: NodeMap::new(),
        }
    }

    /// Builds a zone from records, checking the rules in the module doc. `lines[i]` (if given)
    /// is the source line of `records[i]` for error messages. TTL differences inside an RRset
    /// are resolved as BIND does (the first TTL wins) and reported in `warnings`.
    pub fn from_records(
        origin: Name,
        records: Vec<Record>,
        lines: Option<&[usize]>,
        warnings: &mut Vec<ZoneProblem>,
    ) -> Result<Zone, Vec<ZoneProblem>> {
        let mut zone = Zone::new(origin.clone());
        let mut problems = Vec::new();
        let line_of = |i: usize| lines.and_then(|l| l.get(i).copied());
        let mut cur: Option<(Name, Node)> = None;
        for (i, rec) in records.into_iter().enumerate() {
            if rec.class != rtype::class::IN {
                problems.push(ZoneProblem {
                    line: line_of(i),
                    message: format!(
                        "{}: class {} is not IN",
                        rec.owner,
                        rtype::class_name(rec.class)
                    ),
                });
                continue;
            }
            if !rec.owner.is_subdomain_of(&origin) {
                problems.push(ZoneProblem {
                    line: line_of(i),
                    message: format!("{} is outside the zone {}", rec.owner, origin),
                });
                continue;
            }
            if matches!(
                rec.rtype,
                t::OPT | t::TSIG | t::TKEY | t::AXFR | t::IXFR | t::ANY
            ) {
                problems.push(ZoneProblem {
                    line: line_of(i),
                    message: format!(
                        "{}: type {} cannot appear in a zone",
                        rec.owner,
                        rtype::type_name(rec.rtype)
                    ),
                });
                continue;
            }
            // zone files and transfers group records by owner: keep filling the same node
            // until the owner changes, instead of a map lookup per record
            if cur.as_ref().is_none_or(|(n, _)| n != &rec.owner) {
                if let Some((n, node)) = cur.take() {
                    merge_node(&mut zone.nodes, n, node);
                }
                let existing = zone.nodes.remove(&rec.owner).unwrap_or_default();
                cur = Some((rec.owner.clone(), existing));
            }
            let Some((_, node)) = cur.as_mut() else {
                continue;
            };
            if rec.rtype == t::RRSIG {
                let covered = rec.rrsig_covered().unwrap_or(0);
                node.sigs.push(Sig {
                    covered,
                    ttl: rec.ttl,
                    rdata: rec.rdata,
                });
                continue;
            }
            match node.rrsets.binary_search_by_key(&rec.rtype, |r| r.rtype) {
                Ok(j) => {
                    let set = &mut node.rrsets[j];
                    let canon = rdata::canonical(rec.rtype, &rec.rdata);
                    if set
                        .rdatas
                        .iter()
                        .any(|r| rdata::canonical(rec.rtype, r) == canon)
                    {
                        // RFC 2181 §5: duplicates are one record
                        continue;
                    }
                    if set.ttl != rec.ttl {
                        warnings.push(ZoneProblem {
                            line: line_of(i),
                            message: format!(
                                "{} {}: TTL {} differs from the RRset's TTL {} (RFC 2181 §5.2); using {}",
                                rec.owner,
                                rtype::type_name(rec.rtype),
                                rec.ttl,
                                set.ttl,
                                set.ttl
                            ),
                        });
                    }
                    set.rdatas.push(rec.rdata);
                }
                Err(j) => node.rrsets.insert(
                    j,
                    RRset {
                        rtype: rec.rtype,
                        ttl: rec.ttl,
                        rdatas: vec![rec.rdata],
                    },
                ),
            }
        }
        if let Some((n, node)) = cur.take() {
            merge_node(&mut zone.nodes, n, node);
        }
        // zone-wide rules
        problems.extend(zone.rule_problems());
        if problems.is_empty() {
            Ok(zone)
        } else {
            Err(problems)
        }
    }

    /// The apex rules: exactly one SOA, and NS records.
    fn apex_problems(&self, problems: &mut Vec<ZoneProblem>) {
        let zone = self;
        let origin = &self.origin;
        match zone.nodes.get(origin).and_then(|n| n.get(t::SOA)) {
            None => problems.push(ZoneProblem {
                line: None,
                message: format!("zone {origin} has no SOA record at its apex"),
            }),
            Some(s) if s.rdatas.len() != 1 => problems.push(ZoneProblem {
                line: None,
                message: format!(
                    "zone {origin} has {} SOA records (exactly one allowed)",
                    s.rdatas.len()
                ),
            }),
            _ => {}
        }
        if !zone.nodes.get(origin).is_some_and(|n| n.has(t::NS)) {
            problems.push(ZoneProblem {
                line: None,
                message: format!("zone {origin} has no NS records at its apex"),
            });
        }
    }

    /// The zone-wide rules (apex and every node) that [`Zone::from_records`] checks after
    /// taking the records in; also used by the parallel zone file loader.
    pub fn rule_problems(&self) -> Vec<ZoneProblem> {
        let mut problems = Vec::new();
        self.apex_problems(&mut problems);
        for (name, node) in &self.nodes {
            node_problems(&self.origin, name, node, &mut problems);
        }
        problems
    }

    /// The zone rules checked only where a change touched the zone (the apex rules always):
    /// what an IXFR applied to a version that passed [`Zone::from_records`] has to re-check.
    pub fn check_names<'a, I: IntoIterator<Item = &'a Name>>(
        &self,
        names: I,
    ) -> Result<(), Vec<ZoneProblem>> {
        let mut problems = Vec::new();
        self.apex_problems(&mut problems);
        for name in names {
            if !name.is_subdomain_of(&self.origin) {
                problems.push(ZoneProblem {
                    line: None,
                    message: format!("{} is outside the zone {}", name, self.origin),
                });
                continue;
            }
            if let Some(node) = self.nodes.get(name) {
                node_problems(&self.origin, name, node, &mut problems);
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The SOA RDATA.
    pub fn soa(&self) -> Option<&[u8]> {
        self.nodes
            .get(&self.origin)
            .and_then(|n| n.get(t::SOA))
            .and_then(|s| s.rdatas.first())
            .map(|v| v.as_slice())
    }

    /// The SOA TTL.
    pub fn soa_ttl(&self) -> Option<u32> {
        self.nodes
            .get(&self.origin)
            .and_then(|n| n.get(t::SOA))
            .map(|s| s.ttl)
    }

    /// The SOA serial.
    pub fn serial(&self) -> Option<u32> {
        soa_field(self.soa()?, 0)
    }

    /// Replaces the SOA serial.
    pub fn set_serial(&mut self, serial: u32) {
        let origin = self.origin.clone();
        if let Some(set) = self
            .nodes
            .get_mut(&origin)
            .and_then(|n| n.rrsets.iter_mut().find(|r| r.rtype == t::SOA))
        {
            if let Some(rd) = set.rdatas.first_mut() {
                if let Some(off) = soa_fields_offset(rd) {
                    rd[off..off + 4].copy_from_slice(&serial.to_be_bytes());
                }
            }
        }
    }

    /// All records in canonical order (SOA first, as a transfer or zone file wants it).
    pub fn records(&self) -> Vec<Record> {
        let mut out = Vec::new();
        if let Some(apex) = self.nodes.get(&self.origin) {
            if let Some(soa) = apex.get(t::SOA) {
                for rd in &soa.rdatas {
                    out.push(Record::new(
                        self.origin.clone(),
                        t::SOA,
                        soa.ttl,
                        rd.clone(),
                    ));
                }
            }
        }
        for (name, node) in &self.nodes {
            for set in &node.rrsets {
                if set.rtype == t::SOA && name == &self.origin {
                    continue;
                }
                for rd in &set.rdatas {
                    out.push(Record::new(name.clone(), set.rtype, set.ttl, rd.clone()));
                }
            }
            for s in &node.sigs {
                out.push(Record::new(name.clone(), t::RRSIG, s.ttl, s.rdata.clone()));
            }
        }
        out
    }

    /// Number of records, RRSIGs included.
    pub fn record_count(&self) -> usize {
        self.nodes.record_count()
    }

    /// The zone cut at or above `name` (strictly below the apex), if `name` is at or below a
    /// delegation.
    pub fn delegation_of(&self, name: &Name) -> Option<Name> {
        let depth = name.label_count();
        let apex_depth = self.origin.label_count();
        // walk from just below the apex down to name
        for d in (apex_depth + 1)..=depth {
            let anc = name.strip_left(depth - d)?;
            if self.nodes.get(&anc).is_some_and(|n| n.has(t::NS)) {
                return Some(anc);
            }
        }
        None
    }
}

/// The rules for one node: no SOA below the apex, one CNAME and nothing beside it, one DNAME.
fn node_problems(origin: &Name, name: &Name, node: &Node, problems: &mut Vec<ZoneProblem>) {
    if name != origin && node.has(t::SOA) {
        problems.push(ZoneProblem {
            line: None,
            message: format!("{name}: SOA record below the apex"),
        });
    }
    if let Some(c) = node.get(t::CNAME) {
        if c.rdatas.len() > 1 {
            problems.push(ZoneProblem {
                line: None,
                message: format!("{name}: more than one CNAME record (RFC 2181 §10.1)"),
            });
        }
        let others: Vec<String> = node
            .rrsets
            .iter()
            .filter(|r| !matches!(r.rtype, t::CNAME | t::NSEC | t::NSEC3 | t::RRSIG))
            .map(|r| rtype::type_name(r.rtype))
            .collect();
        if !others.is_empty() {
            problems.push(ZoneProblem {
                line: None,
                message: format!(
                    "{name}: CNAME beside other data ({}) (RFC 1034 §3.6.2)",
                    others.join(", ")
                ),
            });
        }
    }
    if let Some(d) = node.get(t::DNAME) {
        if d.rdatas.len() > 1 {
            problems.push(ZoneProblem {
                line: None,
                message: format!("{name}: more than one DNAME record (RFC 6672 §2.4)"),
            });
        }
    }
}

fn merge_node(nodes: &mut NodeMap, name: Name, node: Node) {
    nodes.insert(name, node);
}

/// SOA fields after MNAME and RNAME: index 0 serial, 1 refresh, 2 retry, 3 expire, 4 minimum.
pub fn soa_field(rdata: &[u8], idx: usize) -> Option<u32> {
    let off = soa_fields_offset(rdata)? + idx * 4;
    Some(u32::from_be_bytes(
        rdata.get(off..off + 4)?.try_into().ok()?,
    ))
}

fn soa_fields_offset(rdata: &[u8]) -> Option<usize> {
    let m = crate::dns::wire::name_len(rdata, 0)?;
    let r = crate::dns::wire::name_len(rdata, m)?;
    if rdata.len() != r + 20 {
        return None;
    }
    Some(r)
}
