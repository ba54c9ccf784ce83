//! Building the new version: a whole zone from an AXFR, or IXFR differences applied to a copy
//! of the current version (RFC 1995 §4: "the deletions and additions are applied in order").
//! Either way the result goes through [`Zone::from_records`], the same rules as a zone file.

use super::{Diff, XfrError};
use crate::dns::name::Name;
use crate::dns::rdata;
use crate::dns::record::Record;
use crate::dns::rtype::t;
use crate::zone::data::{RRset, Sig, Zone};

/// A zone from the records of an AXFR (opening SOA first).
pub(crate) fn full(origin: Name, records: Vec<Record>) -> Result<Zone, XfrError> {
    validate(origin, records)
}

/// `diffs` applied in order to `zone` (a copy the caller gave away: with copy-on-write nodes it
/// shares everything but what the differences touch), then re-checked where they touched it:
/// every added record as a zone file record would be, and the zone rules at the touched names
/// and the apex ([`Zone::check_names`]). The rest of the zone passed those checks when it came.
pub(crate) fn incremental(
    mut zone: Zone,
    diffs: &[Diff],
    max_records: u64,
) -> Result<Zone, XfrError> {
    let mut net: i64 = 0;
    for d in diffs {
        for r in &d.removed {
            remove(&mut zone, r, d)?;
            net -= 1;
        }
        for r in &d.added {
            admissible(&zone.origin, r)?;
            add(&mut zone, r, d)?;
            net += 1;
        }
    }
    // only growth can cross the limit: count the zone then (a linear pass over the nodes)
    if net > 0 {
        let n = zone.record_count() as u64;
        if n > max_records {
            return Err(XfrError::Limit(format!(
                "the zone would have {n} records after the IXFR, more than {max_records} (max_records)"
            )));
        }
    }
    let touched: std::collections::BTreeSet<&Name> = diffs
        .iter()
        .flat_map(|d| d.removed.iter().chain(d.added.iter()))
        .map(|r| &r.owner)
        .collect();
    zone.check_names(touched.iter().copied())
        .map_err(|ps| XfrError::BadZone(ps.into_iter().map(|p| p.message).collect()))?;
    Ok(zone)
}

/// What [`Zone::from_records`] refuses in a record: another class, an owner outside the zone,
/// a meta type.
fn admissible(origin: &Name, r: &Record) -> Result<(), XfrError> {
    let bad = |why: String| Err(XfrError::BadZone(vec![format!("{}: {why}", show(r))]));
    if r.class != crate::dns::rtype::class::IN {
        return bad("class is not IN".into());
    }
    if !r.owner.is_subdomain_of(origin) {
        return bad(format!("outside the zone {origin}"));
    }
    if matches!(
        r.rtype,
        t::OPT | t::TSIG | t::TKEY | t::AXFR | t::IXFR | t::ANY
    ) {
        return bad("this type cannot appear in a zone".into());
    }
    Ok(())
}

fn validate(origin: Name, records: Vec<Record>) -> Result<Zone, XfrError> {
    let mut warnings = Vec::new();
    let zone = Zone::from_records(origin.clone(), records, None, &mut warnings)
        .map_err(|ps| XfrError::BadZone(ps.into_iter().map(|p| p.message).collect()))?;
    for w in warnings.iter().take(20) {
        tracing::warn!(zone = %origin, "transferred zone: {}", w.message);
    }
    Ok(zone)
}

/// One line naming a record, shortened for the log.
fn show(r: &Record) -> String {
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

fn remove(zone: &mut Zone, r: &Record, d: &Diff) -> Result<(), XfrError> {
    let missing = || {
        XfrError::Ixfr(format!(
            "the difference {}→{} removes `{}`, which our version does not hold",
            d.from_serial,
            d.to_serial,
            show(r)
        ))
    };
    let node = zone.nodes.get_mut(&r.owner).ok_or_else(missing)?;
    let want = rdata::canonical(r.rtype, &r.rdata);
    if r.rtype == t::RRSIG {
        let i = node
            .sigs
            .iter()
            .position(|s| rdata::canonical(t::RRSIG, &s.rdata) == want)
            .ok_or_else(missing)?;
        node.sigs.remove(i);
    } else {
        let j = node
            .rrsets
            .binary_search_by_key(&r.rtype, |s| s.rtype)
            .map_err(|_| missing())?;
        let set = &mut node.rrsets[j];
        let i = set
            .rdatas
            .iter()
            .position(|x| rdata::canonical(r.rtype, x) == want)
            .ok_or_else(missing)?;
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

fn add(zone: &mut Zone, r: &Record, d: &Diff) -> Result<(), XfrError> {
    let present = || {
        XfrError::Ixfr(format!(
            "the difference {}→{} adds `{}`, which our version already holds",
            d.from_serial,
            d.to_serial,
            show(r)
        ))
    };
    let node = zone.nodes.entry(r.owner.clone()).or_default();
    let want = rdata::canonical(r.rtype, &r.rdata);
    if r.rtype == t::RRSIG {
        if node
            .sigs
            .iter()
            .any(|s| rdata::canonical(t::RRSIG, &s.rdata) == want)
        {
            return Err(present());
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
                return Err(present());
            }
            // an RRset has one TTL (RFC 2181 §5.2): the latest addition sets it
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
