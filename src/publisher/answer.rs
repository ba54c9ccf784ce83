//! Authoritative answers from a signed zone: RFC 1034 §4.3.2 with the DNSSEC additions of
//! RFC 4035 §3.1 and RFC 5155 §7.2.
//!
//! ```text
//!  qname ─▶ walk down from the apex: a zone cut? ──yes──▶ referral (NS, DS or proof of no DS, glue)
//!           (DS at the cut itself is answered here, by the parent side: RFC 4035 §3.1.4.1)
//!           a DNAME above qname? ──yes──▶ DNAME + synthesized CNAME (RFC 6672 §3.1), follow
//!        ─▶ node at qname? ──yes──▶ CNAME? follow : RRset? answer : NODATA (SOA + NSEC / NSEC3)
//!        ─▶ empty non-terminal? ──yes──▶ NODATA
//!        ─▶ wildcard at the closest encloser? ──yes──▶ synthesize (RFC 4592) + proof of no closer match
//!        ─▶ NXDOMAIN: SOA + NSEC covering qname + NSEC covering the wildcard,
//!                     or the NSEC3 closest encloser proof + NSEC3 covering the wildcard
//! ```
//!
//! CNAME and DNAME chains are followed inside the zone up to [`MAX_CHAIN`] links; the RCODE is
//! that of the last link (RFC 6604). DNSSEC records (RRSIG, NSEC, NSEC3) are added only when the
//! query has the DO bit. The SOA of a negative answer has TTL min(SOA TTL, SOA MINIMUM)
//! (RFC 2308 §3, RFC 9077). NSEC3 owner names are not names of the zone for lookups
//! (RFC 5155 §7.2.8): a query for one is answered as for any name that does not exist.

use super::Served;
use crate::dns::message::rcode;
use crate::dns::name::Name;
use crate::dns::rdata;
use crate::dns::rtype::t;
use crate::zone::data::{soa_field, Node, Zone};
use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Bound;

/// CNAME/DNAME links followed inside one zone before giving up: answers a CNAME loop, and a
/// long chain built to amplify one query into a big answer.
pub const MAX_CHAIN: usize = 12;

/// Targets of NS/MX/SRV answers whose addresses are added to the additional section: bounds
/// the work and the size of one answer.
pub const MAX_ADDITIONAL_TARGETS: usize = 16;

/// One record of an answer; owner and RDATA borrow from the zone where they can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rr<'a> {
    pub owner: Cow<'a, Name>,
    pub rtype: u16,
    pub ttl: u32,
    pub rdata: Cow<'a, [u8]>,
}

/// An RRset with its RRSIGs: the unit that is put in a message whole or not at all.
pub type Unit<'a> = Vec<Rr<'a>>;

/// The sections of an answer, before encoding.
#[derive(Debug, Default)]
pub struct Answer<'a> {
    pub rcode: u16,
    pub aa: bool,
    pub answer: Vec<Unit<'a>>,
    pub authority: Vec<Unit<'a>>,
    pub additional: Vec<Unit<'a>>,
}

/// Answers `qname`/`qtype` (class IN) from `served`, which must be the zone holding `qname`.
pub fn answer<'a>(served: &'a Served, qname: &Name, qtype: u16, dnssec: bool) -> Answer<'a> {
    let mut l = Lookup {
        s: served,
        z: &served.zone,
        dnssec,
        out: Answer {
            aa: true,
            ..Answer::default()
        },
        seen: HashSet::new(),
        referral: false,
    };
    let mut name = qname.clone();
    let mut visited: Vec<Name> = Vec::new();
    for hop in 0..=MAX_CHAIN {
        match l.step(&name, qtype) {
            Step::Done => break,
            Step::Follow(target) => {
                if hop == MAX_CHAIN
                    || !target.is_subdomain_of(&l.z.origin)
                    || target == name
                    || visited.contains(&target)
                {
                    break;
                }
                visited.push(std::mem::replace(&mut name, target));
            }
        }
    }
    if l.referral && l.out.answer.is_empty() {
        l.out.aa = false;
    }
    l.out
}

enum Step {
    Done,
    /// Continue with this name (CNAME target or DNAME substitution).
    Follow(Name),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sec {
    Answer,
    Authority,
    Additional,
}

struct Lookup<'a> {
    s: &'a Served,
    z: &'a Zone,
    dnssec: bool,
    out: Answer<'a>,
    /// (section, owner, type) already added: an NSEC that both covers qname and the wildcard
    /// goes in once.
    seen: HashSet<(u8, Name, u16)>,
    referral: bool,
}

impl<'a> Lookup<'a> {
    // ----------------------------------------------------------------------------- lookups

    /// The node at `name`, unless it holds only NSEC3 records.
    fn node(&self, name: &Name) -> Option<(&'a Name, &'a Node)> {
        let (k, n) = self.z.nodes.get_key_value(name)?;
        if !n.rrsets.is_empty() && n.rrsets.iter().all(|r| r.rtype == t::NSEC3) {
            return None;
        }
        Some((k, n))
    }

    /// An empty non-terminal: no node, but names below it (they follow it in canonical order).
    fn is_ent(&self, name: &Name) -> bool {
        self.z
            .nodes
            .range((Bound::Excluded(name), Bound::Unbounded))
            .next()
            .is_some_and(|(k, _)| k.is_subdomain_of(name))
    }

    fn exists(&self, name: &Name) -> bool {
        self.node(name).is_some() || self.is_ent(name)
    }

    /// The longest existing ancestor of a name that does not exist (the apex at least).
    fn closest_encloser(&self, name: &Name) -> Name {
        let mut cur = name.parent();
        while let Some(c) = cur {
            if c == self.z.origin || !c.is_subdomain_of(&self.z.origin) || self.exists(&c) {
                return c;
            }
            cur = c.parent();
        }
        self.z.origin.clone()
    }

    /// The NSEC whose owner is the last name ≤ `name` in canonical order.
    fn nsec_covering(&self, name: &Name) -> Option<(&'a Name, &'a Node)> {
        self.z
            .nodes
            .range(..=name)
            .rev()
            .find(|(_, n)| n.has(t::NSEC))
    }

    fn nsec3_hash(&self, name: &Name) -> Option<[u8; 20]> {
        let idx = self.s.nsec3.as_ref()?;
        Some(crate::signer::nsec3::hash(name, &idx.salt, idx.iterations))
    }

    /// The owner name of the NSEC3 for hash `h`: `<base32hex(h)>.<origin>`.
    fn nsec3_owner(&self, h: &[u8; 20]) -> Option<Name> {
        crate::signer::nsec3::owner_of(h, &self.z.origin).ok()
    }

    /// Whether `(owner, node)` is a member of the NSEC3 chain.
    fn is_nsec3(&self, owner: &Name, node: &Node) -> bool {
        node.has(t::NSEC3)
            && owner.label_count() == self.z.origin.label_count() + 1
            && owner.is_subdomain_of(&self.z.origin)
    }

    /// The NSEC3 whose hash equals the hash of `name`.
    fn nsec3_match(&self, name: &Name) -> Option<(&'a Name, &'a Node)> {
        let h = self.nsec3_hash(name)?;
        let owner = self.nsec3_owner(&h)?;
        self.z
            .nodes
            .get_key_value(&owner)
            .filter(|(o, n)| self.is_nsec3(o, n))
    }

    /// The NSEC3 covering the hash of `name`: the last one with a smaller hash, wrapping.
    fn nsec3_cover(&self, name: &Name) -> Option<(&'a Name, &'a Node)> {
        let h = self.nsec3_hash(name)?;
        let owner = self.nsec3_owner(&h)?;
        self.nsec3_before(Some(owner))
            .or_else(|| self.nsec3_before(None))
    }

    /// The last NSEC3 owner before `end` (exclusive; None: the end of the zone). Other names may
    /// sort between NSEC3 owners (first labels that look like hashes, and their subtrees): a
    /// subtree is stepped over in one lookup, since its top name sorts before everything below
    /// it, so the cost is the number of first-level names in the gap, not the size of their
    /// subtrees (a reverse zone's `1` … `255` would otherwise make every NXDOMAIN whose hash
    /// falls next to them walk their whole subtree).
    fn nsec3_before(&self, mut end: Option<Name>) -> Option<(&'a Name, &'a Node)> {
        let z = self.z;
        let depth = z.origin.label_count() + 1;
        loop {
            let (n, node) = match &end {
                Some(e) => z.nodes.range(..e).next_back()?,
                None => z.nodes.iter().next_back()?,
            };
            if self.is_nsec3(n, node) {
                return Some((n, node));
            }
            if n.label_count() > depth && n.is_subdomain_of(&z.origin) {
                // inside a first-level subtree: its top name next, then what sorts before it
                let top = n.strip_left(n.label_count() - depth)?;
                if let Some((t, tn)) = z.nodes.get_key_value(&top) {
                    if self.is_nsec3(t, tn) {
                        return Some((t, tn));
                    }
                }
                end = Some(top);
            } else {
                end = Some(n.clone());
            }
        }
    }

    // ----------------------------------------------------------------------------- output

    /// `rtype` at `node` as a unit with owner `owner` (and its RRSIGs with DO).
    fn unit(&self, owner: Cow<'a, Name>, node: &'a Node, rtype: u16, ttl: Option<u32>) -> Unit<'a> {
        let Some(set) = node.get(rtype) else {
            return Vec::new();
        };
        let mut u: Unit<'a> = set
            .rdatas
            .iter()
            .map(|rd| Rr {
                owner: owner.clone(),
                rtype,
                ttl: ttl.unwrap_or(set.ttl),
                rdata: Cow::Borrowed(rd.as_slice()),
            })
            .collect();
        if self.dnssec {
            for s in node.sigs_for(rtype) {
                u.push(Rr {
                    owner: owner.clone(),
                    rtype: t::RRSIG,
                    ttl: ttl.unwrap_or(s.ttl),
                    rdata: Cow::Borrowed(s.rdata.as_slice()),
                });
            }
        }
        u
    }

    fn push(&mut self, sec: Sec, unit: Unit<'a>) {
        let Some(first) = unit.first() else {
            return;
        };
        let key = (sec as u8, first.owner.clone().into_owned(), first.rtype);
        if !self.seen.insert(key) {
            return;
        }
        match sec {
            Sec::Answer => self.out.answer.push(unit),
            Sec::Authority => self.out.authority.push(unit),
            Sec::Additional => self.out.additional.push(unit),
        }
    }

    fn add(&mut self, sec: Sec, owner: &'a Name, node: &'a Node, rtype: u16) {
        let u = self.unit(Cow::Borrowed(owner), node, rtype, None);
        self.push(sec, u);
    }

    /// The apex SOA for a negative answer: TTL min(SOA TTL, MINIMUM) (RFC 2308 §3).
    fn negative_soa(&mut self) {
        let Some((apex, node)) = self.z.nodes.get_key_value(&self.z.origin) else {
            return;
        };
        let Some(set) = node.get(t::SOA) else {
            return;
        };
        let min = set
            .rdatas
            .first()
            .and_then(|rd| soa_field(rd, 4))
            .unwrap_or(set.ttl);
        let u = self.unit(Cow::Borrowed(apex), node, t::SOA, Some(set.ttl.min(min)));
        self.push(Sec::Authority, u);
    }

    /// A/AAAA of the in-zone targets of NS/MX/SRV records, for the additional section.
    fn additional_for(&mut self, rtype: u16, rdatas: &[Vec<u8>], glue_only: bool) {
        if !matches!(rtype, t::NS | t::MX | t::SRV) {
            return;
        }
        for rd in rdatas.iter().take(MAX_ADDITIONAL_TARGETS) {
            let Some(target) = rdata::target_name(rtype, rd) else {
                continue;
            };
            if !target.is_subdomain_of(&self.z.origin) {
                continue;
            }
            let Some((owner, node)) = self.z.nodes.get_key_value(&target) else {
                continue;
            };
            for at in [t::A, t::AAAA] {
                let mut u = self.unit(Cow::Borrowed(owner), node, at, None);
                if glue_only {
                    u.retain(|r| r.rtype != t::RRSIG);
                }
                self.push(Sec::Additional, u);
            }
        }
    }

    fn add_nsec(&mut self, found: Option<(&'a Name, &'a Node)>, rtype: u16) {
        if let Some((owner, node)) = found {
            self.add(Sec::Authority, owner, node, rtype);
        }
    }

    /// RFC 5155 §7.2.1 (and §7.2.4 for opt-out): the NSEC3 matching the closest *provable*
    /// encloser of `name` and the one covering the next closer name. Returns the encloser.
    fn nsec3_closest_proof(&mut self, name: &Name) -> Option<Name> {
        let mut next_closer: Option<Name> = None;
        let mut cand = name.clone();
        loop {
            if let Some(m) = self.nsec3_match(&cand) {
                self.add_nsec(Some(m), t::NSEC3);
                if let Some(nc) = next_closer {
                    let c = self.nsec3_cover(&nc);
                    self.add_nsec(c, t::NSEC3);
                }
                return Some(cand);
            }
            if cand == self.z.origin {
                return None;
            }
            let parent = cand.parent()?;
            next_closer = Some(cand);
            cand = parent;
        }
    }

    // ----------------------------------------------------------------------------- steps

    fn step(&mut self, qname: &Name, qtype: u16) -> Step {
        let apex = self.z.origin.label_count();
        let depth = qname.label_count();
        // zone cuts and DNAMEs on the way down (RFC 1034 §4.3.2 step 3b, RFC 6672 §3.2)
        for d in apex..=depth {
            let Some(anc) = qname.strip_left(depth - d) else {
                break;
            };
            let Some((aname, node)) = self.node(&anc) else {
                continue;
            };
            if d > apex && node.has(t::NS) {
                if d == depth && qtype == t::DS {
                    break; // the parent side answers DS at a cut (RFC 4035 §3.1.4.1)
                }
                self.referral(aname, node);
                return Step::Done;
            }
            if d < depth && node.has(t::DNAME) {
                return self.dname(aname, node, qname);
            }
        }
        if let Some((owner, node)) = self.node(qname) {
            return self.at_node(Cow::Borrowed(owner), owner, node, qname, qtype, None);
        }
        if self.is_ent(qname) {
            self.nodata(qname, None);
            return Step::Done;
        }
        let ce = self.closest_encloser(qname);
        if let Ok(wc) = ce.wildcard_child() {
            if let Some((wname, wnode)) = self.node(&wc) {
                let owner = Cow::Owned(qname.clone());
                return self.at_node(owner, wname, wnode, qname, qtype, Some(&ce));
            }
        }
        self.nxdomain(qname, &ce);
        Step::Done
    }

    /// Answers from `node` (found at `node_name`; for a wildcard `owner` is the query name and
    /// `wild` the closest encloser).
    fn at_node(
        &mut self,
        owner: Cow<'a, Name>,
        node_name: &'a Name,
        node: &'a Node,
        qname: &Name,
        qtype: u16,
        wild: Option<&Name>,
    ) -> Step {
        if qtype != t::CNAME && node.has(t::CNAME) {
            let u = self.unit(owner, node, t::CNAME, None);
            self.push(Sec::Answer, u);
            self.wildcard_proof(qname, wild);
            let target = node
                .get(t::CNAME)
                .and_then(|s| s.rdatas.first())
                .and_then(|rd| rdata::target_name(t::CNAME, rd));
            return match target {
                Some(tn) => Step::Follow(tn),
                None => Step::Done,
            };
        }
        match qtype {
            t::ANY => {
                for set in &node.rrsets {
                    let u = self.unit(owner.clone(), node, set.rtype, None);
                    self.push(Sec::Answer, u);
                }
                self.wildcard_proof(qname, wild);
            }
            t::RRSIG if !node.sigs.is_empty() => {
                let u = node
                    .sigs
                    .iter()
                    .map(|s| Rr {
                        owner: owner.clone(),
                        rtype: t::RRSIG,
                        ttl: s.ttl,
                        rdata: Cow::Borrowed(s.rdata.as_slice()),
                    })
                    .collect();
                self.push(Sec::Answer, u);
            }
            _ => {
                if let Some(set) = node.get(qtype) {
                    let u = self.unit(owner, node, qtype, None);
                    self.push(Sec::Answer, u);
                    self.wildcard_proof(qname, wild);
                    self.additional_for(qtype, &set.rdatas, false);
                } else if let Some(ce) = wild {
                    self.wildcard_nodata(qname, ce, node_name, node);
                } else {
                    self.nodata(qname, Some((node_name, node)));
                }
            }
        }
        Step::Done
    }

    /// With a wildcard answer: proof that no closer name matches (RFC 4035 §3.1.3.3, RFC 5155
    /// §7.2.6).
    fn wildcard_proof(&mut self, qname: &Name, wild: Option<&Name>) {
        let Some(ce) = wild else {
            return;
        };
        if !self.dnssec {
            return;
        }
        if self.s.nsec3.is_some() {
            let extra = qname.label_count().saturating_sub(ce.label_count() + 1);
            if let Some(nc) = qname.strip_left(extra) {
                let c = self.nsec3_cover(&nc);
                self.add_nsec(c, t::NSEC3);
            }
        } else {
            let c = self.nsec_covering(qname);
            self.add_nsec(c, t::NSEC);
        }
    }

    /// Wildcard NODATA (RFC 4035 §3.1.3.4, RFC 5155 §7.2.5).
    fn wildcard_nodata(&mut self, qname: &Name, _ce: &Name, wname: &'a Name, wnode: &'a Node) {
        self.negative_soa();
        if !self.dnssec {
            return;
        }
        if self.s.nsec3.is_some() {
            self.nsec3_closest_proof(qname);
            let m = self.nsec3_match(wname);
            self.add_nsec(m, t::NSEC3);
        } else {
            let c = self.nsec_covering(qname);
            self.add_nsec(c, t::NSEC);
            self.add(Sec::Authority, wname, wnode, t::NSEC);
        }
    }

    /// NODATA at an existing name (`node`) or an empty non-terminal (`None`): RFC 4035
    /// §3.1.3.1, RFC 5155 §7.2.3 and §7.2.4 (DS at an opt-out delegation).
    fn nodata(&mut self, qname: &Name, node: Option<(&'a Name, &'a Node)>) {
        self.negative_soa();
        if !self.dnssec {
            return;
        }
        if self.s.nsec3.is_some() {
            if let Some(m) = self.nsec3_match(qname) {
                self.add_nsec(Some(m), t::NSEC3);
            } else {
                self.nsec3_closest_proof(qname);
            }
        } else {
            match node {
                Some((owner, n)) if n.has(t::NSEC) => self.add(Sec::Authority, owner, n, t::NSEC),
                _ => {
                    let c = self.nsec_covering(qname);
                    self.add_nsec(c, t::NSEC);
                }
            }
        }
    }

    /// Name error (RFC 4035 §3.1.3.2, RFC 5155 §7.2.2).
    fn nxdomain(&mut self, qname: &Name, ce: &Name) {
        self.out.rcode = rcode::NXDOMAIN;
        self.negative_soa();
        if !self.dnssec {
            return;
        }
        if self.s.nsec3.is_some() {
            if let Some(pce) = self.nsec3_closest_proof(qname) {
                if let Ok(wc) = pce.wildcard_child() {
                    let c = self.nsec3_cover(&wc);
                    self.add_nsec(c, t::NSEC3);
                }
            }
        } else {
            let c = self.nsec_covering(qname);
            self.add_nsec(c, t::NSEC);
            if let Ok(wc) = ce.wildcard_child() {
                let c = self.nsec_covering(&wc);
                self.add_nsec(c, t::NSEC);
            }
        }
    }

    /// Referral to the zone cut at `cut` (RFC 1034 §4.3.2, RFC 4035 §3.1.4): NS, then DS with
    /// its RRSIG or the proof that there is no DS, glue in the additional section.
    fn referral(&mut self, cut: &'a Name, node: &'a Node) {
        self.referral = true;
        let mut ns = self.unit(Cow::Borrowed(cut), node, t::NS, None);
        ns.retain(|r| r.rtype != t::RRSIG);
        self.push(Sec::Authority, ns);
        if self.dnssec {
            if node.has(t::DS) {
                self.add(Sec::Authority, cut, node, t::DS);
            } else if self.s.nsec3.is_some() {
                if let Some(m) = self.nsec3_match(cut) {
                    self.add_nsec(Some(m), t::NSEC3);
                } else {
                    self.nsec3_closest_proof(cut); // opt-out (RFC 5155 §7.2.7)
                }
            } else {
                self.add(Sec::Authority, cut, node, t::NSEC);
            }
        }
        if let Some(set) = node.get(t::NS) {
            self.additional_for(t::NS, &set.rdatas, true);
        }
    }

    /// DNAME at `owner` above `qname` (RFC 6672 §3.1): the DNAME (signed), a synthesized CNAME
    /// with the DNAME's TTL (unsigned), then the substituted name is followed.
    fn dname(&mut self, owner: &'a Name, node: &'a Node, qname: &Name) -> Step {
        let Some(set) = node.get(t::DNAME) else {
            return Step::Done;
        };
        let Some(target) = set
            .rdatas
            .first()
            .and_then(|rd| rdata::target_name(t::DNAME, rd))
        else {
            return Step::Done;
        };
        let u = self.unit(Cow::Borrowed(owner), node, t::DNAME, None);
        self.push(Sec::Answer, u);
        let keep = qname.label_count() - owner.label_count();
        let Ok(new) = Name::from_labels(qname.labels().take(keep).chain(target.labels())) else {
            // RFC 6672 §2.2: the substituted name is too long
            self.out.rcode = rcode::YXDOMAIN;
            return Step::Done;
        };
        self.push(
            Sec::Answer,
            vec![Rr {
                owner: Cow::Owned(qname.clone()),
                rtype: t::CNAME,
                ttl: set.ttl,
                rdata: Cow::Owned(new.as_wire().to_vec()),
            }],
        );
        Step::Follow(new)
    }
}
