//! The transfer state machine on hand-built message sequences: AXFR over several messages,
//! IXFR incremental (condensed and not), AXFR-style, single SOA, broken diffs, TSIG chains
//! with unsigned intermediate messages, and the record checks.

use super::session::{Outcome, Session};
use super::{apply, Diff, XfrError};
use crate::auth::tsig::{sign_request, ResponseSigner, ResponseVerifier, Verified};
use crate::auth::Key;
use crate::config::TsigAlgorithm;
use crate::dns::message::{build_query, Header, MessageWriter, Section, MAX_MESSAGE_LEN};
use crate::dns::name::Name;
use crate::dns::rdata;
use crate::dns::record::Record;
use crate::dns::rtype::{class, t};
use crate::zone::data::Zone;
use std::path::Path;
use std::sync::Arc;

const NOW: u64 = 1_700_000_000;
const ID: u16 = 4242;

fn origin() -> Name {
    Name::parse("example.test.", None).unwrap()
}

/// Records from zone-file text (relative to example.test.).
fn recs(text: &str) -> Vec<Record> {
    crate::zonefile::parse_str(text, Path::new("t.zone"), &origin())
        .unwrap()
        .records
}

fn rec(line: &str) -> Record {
    let mut v = recs(line);
    assert_eq!(v.len(), 1, "{line}");
    v.remove(0)
}

fn soa(serial: u32) -> Record {
    rec(&format!(
        "@ 3600 IN SOA ns1 hostmaster {serial} 3600 600 86400 300"
    ))
}

/// Version 1, 2 and 3 of a small zone.
const V1: &str = "
@ 3600 IN NS ns1
ns1 3600 IN A 192.0.2.1
www 300 IN A 192.0.2.10
www 300 IN A 192.0.2.11
mail 300 IN MX 10 mx.example.net.
";
const V2: &str = "
@ 3600 IN NS ns1
ns1 3600 IN A 192.0.2.1
www 300 IN A 192.0.2.10
www 300 IN AAAA 2001:db8::10
mail 300 IN MX 10 mx.example.net.
new 60 IN TXT \"hello\"
";
const V3: &str = "
@ 3600 IN NS ns1
ns1 3600 IN A 192.0.2.1
www 600 IN A 192.0.2.10
www 300 IN AAAA 2001:db8::10
new 60 IN TXT \"hello\"
";

fn zone(serial: u32, body: &str) -> Zone {
    let mut records = vec![soa(serial)];
    records.extend(recs(body));
    let mut w = Vec::new();
    Zone::from_records(origin(), records, None, &mut w).unwrap()
}

/// Sorted (owner, type, ttl, canonical RDATA): equal for equal zones whatever the order.
fn norm(z: &Zone) -> Vec<(String, u16, u32, Vec<u8>)> {
    let mut v: Vec<_> = z
        .records()
        .into_iter()
        .map(|r| {
            (
                r.owner.to_lowercase().to_string(),
                r.rtype,
                r.ttl,
                rdata::canonical(r.rtype, &r.rdata).into_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn key() -> Arc<Key> {
    Arc::new(Key::new(
        Name::parse("xfr-key.", None).unwrap(),
        TsigAlgorithm::HmacSha256,
        b"0123456789abcdef0123456789abcdef",
    ))
}

/// A response message: `question` copied or not, `answers` in the answer section.
fn msg(qtype: u16, question: bool, answers: &[Record]) -> Vec<u8> {
    let mut h = Header { id: ID, flags: 0 };
    h.set_qr(true);
    h.set_aa(true);
    let mut w = MessageWriter::new(h, MAX_MESSAGE_LEN);
    if question {
        w.question(&origin(), qtype, class::IN).unwrap();
    }
    for r in answers {
        w.add(Section::Answer, r).unwrap();
    }
    w.finish()
}

/// Splits `records` into messages of `per` records (question in the first only).
fn messages(qtype: u16, records: &[Record], per: usize) -> Vec<Vec<u8>> {
    records
        .chunks(per)
        .enumerate()
        .map(|(i, c)| msg(qtype, i == 0, c))
        .collect()
}

/// Feeds every message; the outcome, or the first error (with the index of the message).
fn run(mut s: Session, msgs: &[Vec<u8>]) -> Result<Outcome, (usize, XfrError)> {
    for (i, m) in msgs.iter().enumerate() {
        match s.feed(m, NOW) {
            Ok(true) => {
                assert_eq!(i + 1, msgs.len(), "done before the last message");
                return s.outcome().map_err(|e| (i, e));
            }
            Ok(false) => {}
            Err(e) => return Err((i, e)),
        }
    }
    s.outcome().map_err(|e| (msgs.len(), e))
}

fn axfr() -> Session {
    Session::new(origin(), t::AXFR, ID, None, None, 1000)
}

fn ixfr(ours: u32) -> Session {
    Session::new(origin(), t::IXFR, ID, Some(ours), None, 1000)
}

fn body(text: &str) -> Vec<Record> {
    recs(text)
}

// ---------------------------------------------------------------------------------------------
// AXFR

#[test]
fn axfr_over_several_messages() {
    let mut all = vec![soa(1)];
    all.extend(body(V1));
    all.push(soa(1));
    for per in [1, 2, 3, all.len()] {
        let out = run(axfr(), &messages(t::AXFR, &all, per)).unwrap();
        let Outcome::Full { records, via_ixfr } = out else {
            panic!("not full: {out:?}")
        };
        assert!(!via_ixfr);
        assert_eq!(records.len(), all.len() - 1, "closing SOA left out");
        let z = apply::full(origin(), records).unwrap();
        assert_eq!(norm(&z), norm(&zone(1, V1)));
    }
}

#[test]
fn axfr_broken_sequences() {
    let mut all = vec![soa(1)];
    all.extend(body(V1));
    all.push(soa(1));
    // the connection ends before the closing SOA: an error, never a zone
    let msgs = messages(t::AXFR, &all, 2);
    for cut in 0..msgs.len() {
        let e = run(axfr(), &msgs[..cut]).unwrap_err().1;
        assert!(matches!(e, XfrError::Closed(_)), "{cut}: {e}");
        assert!(e.to_string().contains("before the closing SOA"), "{e}");
    }
    // first record not the SOA
    let e = run(axfr(), &[msg(t::AXFR, true, &all[1..])]).unwrap_err().1;
    assert!(e.to_string().contains("starts with"), "{e}");
    // a SOA of another zone first
    let other = rec("@ 3600 IN SOA ns1 h 1 1 1 1 1")
        .owner
        .prepend(b"sub")
        .unwrap();
    let mut bad = soa(1);
    bad.owner = other;
    let e = run(axfr(), &[msg(t::AXFR, true, &[bad])]).unwrap_err().1;
    assert!(matches!(e, XfrError::Malformed(_)), "{e}");
    // records after the closing SOA
    let mut extra = all.clone();
    extra.push(rec("late 300 IN A 192.0.2.99"));
    let e = run(axfr(), &[msg(t::AXFR, true, &extra)]).unwrap_err().1;
    assert!(e.to_string().contains("after the closing SOA"), "{e}");
    // the closing SOA is another version
    let mut changed = all.clone();
    let last = changed.len() - 1;
    changed[last] = soa(2);
    let e = run(axfr(), &[msg(t::AXFR, true, &changed)]).unwrap_err().1;
    assert!(
        e.to_string().contains("differs from the opening SOA"),
        "{e}"
    );
    // an empty first message
    let e = run(axfr(), &[msg(t::AXFR, true, &[])]).unwrap_err().1;
    assert!(matches!(e, XfrError::Malformed(_)), "{e}");
}

#[test]
fn envelope_checks() {
    let mut all = vec![soa(1)];
    all.extend(body(V1));
    all.push(soa(1));
    let good = msg(t::AXFR, true, &all);
    // wrong ID
    let mut b = good.clone();
    b[0] ^= 1;
    let e = run(axfr(), &[b]).unwrap_err().1;
    assert!(e.to_string().contains("ID"), "{e}");
    // QR clear
    let mut b = good.clone();
    b[2] &= 0x7f;
    let e = run(axfr(), &[b]).unwrap_err().1;
    assert!(e.to_string().contains("QR"), "{e}");
    // TC set
    let mut b = good.clone();
    b[2] |= 0x02;
    let e = run(axfr(), &[b]).unwrap_err().1;
    assert!(e.to_string().contains("TC"), "{e}");
    // REFUSED
    let mut b = msg(t::AXFR, true, &[]);
    b[3] |= 5;
    assert_eq!(
        run(axfr(), &[b]).unwrap_err().1,
        XfrError::Refused { rcode: 5 }
    );
    // no question in the first message; another question; the second message may omit it
    let e = run(axfr(), &[msg(t::AXFR, false, &all)]).unwrap_err().1;
    assert!(e.to_string().contains("question"), "{e}");
    let e = run(axfr(), &[msg(t::IXFR, true, &all)]).unwrap_err().1;
    assert!(e.to_string().contains("the query was"), "{e}");
    let two = vec![msg(t::AXFR, true, &all[..2]), msg(t::AXFR, true, &all[2..])];
    assert!(run(axfr(), &two).is_ok());
    // garbage
    let e = run(axfr(), &[vec![1, 2, 3]]).unwrap_err().1;
    assert!(matches!(e, XfrError::Malformed(_)), "{e}");
}

#[test]
fn record_checks() {
    // another class in the answer section
    let mut ch = rec("www 300 IN A 192.0.2.10");
    ch.class = class::CH;
    let e = run(axfr(), &[msg(t::AXFR, true, &[soa(1), ch, soa(1)])])
        .unwrap_err()
        .1;
    assert!(e.to_string().contains("class CH"), "{e}");
    // a meta type in the answer section
    let mut any = rec("www 300 IN A 192.0.2.10");
    any.rtype = t::ANY;
    any.rdata = Vec::new();
    let e = run(axfr(), &[msg(t::AXFR, true, &[soa(1), any, soa(1)])])
        .unwrap_err()
        .1;
    assert!(matches!(e, XfrError::Malformed(_)), "{e}");
    // OPT or TSIG in the answer section: the message parser already refuses them
    let mut opt = rec("www 300 IN A 192.0.2.10");
    opt.rtype = t::OPT;
    opt.owner = Name::root();
    opt.rdata = Vec::new();
    let e = run(axfr(), &[msg(t::AXFR, true, &[soa(1), opt, soa(1)])])
        .unwrap_err()
        .1;
    assert!(matches!(e, XfrError::Malformed(_)), "{e}");
    // max_records
    let mut all = vec![soa(1)];
    all.extend(body(V1));
    all.push(soa(1));
    let s = Session::new(origin(), t::AXFR, ID, None, None, 4);
    let e = run(s, &messages(t::AXFR, &all, 2)).unwrap_err().1;
    assert!(matches!(e, XfrError::Limit(_)), "{e}");
    // a complete transfer of a broken zone: every problem reported
    let broken = vec![
        soa(1),
        rec("@ 3600 IN NS ns1"),
        rec("x 300 IN CNAME www"),
        rec("x 300 IN A 192.0.2.1"),
        rec("out.example.org. 300 IN A 192.0.2.2"),
        soa(1),
    ];
    let Outcome::Full { records, .. } = run(axfr(), &[msg(t::AXFR, true, &broken)]).unwrap() else {
        panic!()
    };
    let e = apply::full(origin(), records).unwrap_err();
    let XfrError::BadZone(ps) = &e else {
        panic!("{e}")
    };
    assert_eq!(ps.len(), 2, "{ps:?}");
    assert!(e.to_string().contains("CNAME beside other data"), "{e}");
    assert!(e.to_string().contains("outside the zone"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// IXFR

/// The removed and added records between two zones (SOA excluded), as an IXFR carries them.
fn delta(old: &Zone, new: &Zone) -> (Vec<Record>, Vec<Record>) {
    let key = |r: &Record| {
        (
            r.owner.to_lowercase().to_string(),
            r.rtype,
            r.ttl,
            rdata::canonical(r.rtype, &r.rdata).into_owned(),
        )
    };
    let o: Vec<Record> = old
        .records()
        .into_iter()
        .filter(|r| r.rtype != t::SOA)
        .collect();
    let n: Vec<Record> = new
        .records()
        .into_iter()
        .filter(|r| r.rtype != t::SOA)
        .collect();
    let ok: Vec<_> = o.iter().map(key).collect();
    let nk: Vec<_> = n.iter().map(key).collect();
    let removed = o
        .iter()
        .filter(|r| !nk.contains(&key(r)))
        .cloned()
        .collect();
    let added = n
        .iter()
        .filter(|r| !ok.contains(&key(r)))
        .cloned()
        .collect();
    (removed, added)
}

/// The IXFR record stream for `versions` (serial, body): one diff per step, or one condensed
/// diff from the first to the last.
fn ixfr_stream(versions: &[(u32, &str)], condensed: bool) -> Vec<Record> {
    let zones: Vec<Zone> = versions.iter().map(|(s, b)| zone(*s, b)).collect();
    let last = versions[versions.len() - 1].0;
    let mut out = vec![soa(last)];
    let steps: Vec<(usize, usize)> = if condensed {
        vec![(0, versions.len() - 1)]
    } else {
        (0..versions.len() - 1).map(|i| (i, i + 1)).collect()
    };
    for (a, b) in steps {
        let (rm, add) = delta(&zones[a], &zones[b]);
        out.push(soa(versions[a].0));
        out.extend(rm);
        out.push(soa(versions[b].0));
        out.extend(add);
    }
    out.push(soa(last));
    out
}

fn incremental(out: Outcome, base: &Zone) -> (Zone, Vec<Diff>) {
    let Outcome::Incremental { diffs } = out else {
        panic!("not incremental: {out:?}")
    };
    (
        apply::incremental(base.clone(), &diffs, 1000).unwrap(),
        diffs,
    )
}

#[test]
fn ixfr_not_condensed() {
    let base = zone(1, V1);
    let stream = ixfr_stream(&[(1, V1), (2, V2), (3, V3)], false);
    for per in [1, 3, stream.len()] {
        let out = run(ixfr(1), &messages(t::IXFR, &stream, per)).unwrap();
        let (z, diffs) = incremental(out, &base);
        assert_eq!(norm(&z), norm(&zone(3, V3)));
        assert_eq!(z.serial(), Some(3));
        assert_eq!(diffs.len(), 2);
        assert_eq!((diffs[0].from_serial, diffs[0].to_serial), (1, 2));
        assert_eq!((diffs[1].from_serial, diffs[1].to_serial), (2, 3));
        // SOAs lead each side; then the changes
        assert_eq!(diffs[0].removed[0], soa(1));
        assert_eq!(diffs[0].added[0], soa(2));
        assert_eq!(diffs[0].removed[1..], [rec("www 300 IN A 192.0.2.11")]);
        assert_eq!(diffs[0].added.len(), 3);
        // the TTL change of www A is a removal and an addition
        assert!(diffs[1].added.contains(&rec("www 600 IN A 192.0.2.10")));
    }
    // the base is untouched (the caller's version)
    assert_eq!(norm(&base), norm(&zone(1, V1)));
}

#[test]
fn ixfr_condensed() {
    let base = zone(1, V1);
    let stream = ixfr_stream(&[(1, V1), (3, V3)], true);
    let out = run(ixfr(1), &messages(t::IXFR, &stream, 2)).unwrap();
    let (z, diffs) = incremental(out, &base);
    assert_eq!(norm(&z), norm(&zone(3, V3)));
    assert_eq!(diffs.len(), 1);
    assert_eq!((diffs[0].from_serial, diffs[0].to_serial), (1, 3));
}

#[test]
fn ixfr_axfr_style() {
    let mut all = vec![soa(3)];
    all.extend(body(V3));
    all.push(soa(3));
    let out = run(ixfr(1), &messages(t::IXFR, &all, 2)).unwrap();
    let Outcome::Full { records, via_ixfr } = out else {
        panic!("{out:?}")
    };
    assert!(via_ixfr);
    assert_eq!(
        norm(&apply::full(origin(), records).unwrap()),
        norm(&zone(3, V3))
    );
}

#[test]
fn ixfr_single_soa() {
    // our serial: up to date
    let out = run(ixfr(5), &[msg(t::IXFR, true, &[soa(5)])]).unwrap();
    assert!(matches!(out, Outcome::UpToDate { serial: 5 }), "{out:?}");
    // an older serial is reported as it is (the caller decides about a serial going back)
    let out = run(ixfr(5), &[msg(t::IXFR, true, &[soa(4)])]).unwrap();
    assert!(matches!(out, Outcome::UpToDate { serial: 4 }), "{out:?}");
    // RFC 1982: 2 is newer than 0xffff_fff0
    let mut s = ixfr(0xffff_fff0);
    assert!(!s.feed(&msg(t::IXFR, true, &[soa(2)]), NOW).unwrap());
    // a newer SOA alone is not "up to date": the transfer goes on, and ends in error if the
    // connection closes there
    let e = run(ixfr(5), &[msg(t::IXFR, true, &[soa(6)])])
        .unwrap_err()
        .1;
    assert!(matches!(e, XfrError::Closed(_)), "{e}");
    assert!(e.ixfr_fallback());
    // ... but a first message with the SOA alone may be followed by the rest
    let stream = ixfr_stream(&[(1, V1), (2, V2)], false);
    let mut msgs = vec![msg(t::IXFR, true, &stream[..1])];
    msgs.extend(messages(t::IXFR, &stream[1..], 4));
    let (z, _) = incremental(run(ixfr(1), &msgs).unwrap(), &zone(1, V1));
    assert_eq!(norm(&z), norm(&zone(2, V2)));
    // SOA(n) SOA(n) with n ours: up to date
    let out = run(ixfr(5), &[msg(t::IXFR, true, &[soa(5), soa(5)])]).unwrap();
    assert!(matches!(out, Outcome::UpToDate { serial: 5 }), "{out:?}");
    // SOA(n) SOA(n) with n newer: no usable answer
    let e = run(ixfr(4), &[msg(t::IXFR, true, &[soa(5), soa(5)])])
        .unwrap_err()
        .1;
    assert!(matches!(e, XfrError::Ixfr(_)), "{e}");
}

#[test]
fn ixfr_that_does_not_fit() {
    // the diffs start at another serial than ours
    let stream = ixfr_stream(&[(2, V2), (3, V3)], false);
    let e = run(ixfr(1), &[msg(t::IXFR, true, &stream)]).unwrap_err().1;
    assert!(matches!(e, XfrError::Ixfr(_)), "{e}");
    assert!(
        e.to_string().contains("start at serial 2, ours is 1"),
        "{e}"
    );
    assert!(e.ixfr_fallback());
    // a broken chain: 1→2 then 3→4
    let mut s = vec![soa(4), soa(1), soa(2), soa(3), soa(4), soa(4)];
    let e = run(ixfr(1), &[msg(t::IXFR, true, &s)]).unwrap_err().1;
    assert!(matches!(e, XfrError::Ixfr(_)), "{e}");
    // a diff that ends short of the closing serial, then the closing SOA
    s = vec![soa(4), soa(1), soa(2), soa(4)];
    let e = run(ixfr(1), &[msg(t::IXFR, true, &s)]).unwrap_err().1;
    assert!(matches!(e, XfrError::Ixfr(_)), "{e}");
    // a removal of a record we do not have
    let base = zone(1, V1);
    let mut stream = ixfr_stream(&[(1, V1), (2, V2)], false);
    stream.insert(2, rec("ghost 300 IN A 192.0.2.66"));
    let Outcome::Incremental { diffs } = run(ixfr(1), &[msg(t::IXFR, true, &stream)]).unwrap()
    else {
        panic!()
    };
    let e = apply::incremental(base.clone(), &diffs, 1000).unwrap_err();
    assert!(matches!(e, XfrError::Ixfr(_)), "{e}");
    assert!(e.to_string().contains("ghost.example.test."), "{e}");
    // the old SOA in the diff is not our SOA (same serial, other fields)
    let mut stream = ixfr_stream(&[(1, V1), (2, V2)], false);
    stream[1] = rec("@ 3600 IN SOA ns1 hostmaster 1 7200 600 86400 300");
    let Outcome::Incremental { diffs } = run(ixfr(1), &[msg(t::IXFR, true, &stream)]).unwrap()
    else {
        panic!()
    };
    assert!(matches!(
        apply::incremental(base.clone(), &diffs, 1000),
        Err(XfrError::Ixfr(_))
    ));
    // an addition of a record we already have
    let mut stream = ixfr_stream(&[(1, V1), (2, V2)], false);
    let at = stream.len() - 1;
    stream.insert(at, rec("ns1 3600 IN A 192.0.2.1"));
    let Outcome::Incremental { diffs } = run(ixfr(1), &[msg(t::IXFR, true, &stream)]).unwrap()
    else {
        panic!()
    };
    assert!(matches!(
        apply::incremental(base.clone(), &diffs, 1000),
        Err(XfrError::Ixfr(_))
    ));
    // a result that breaks the zone rules (CNAME beside A)
    let mut stream = ixfr_stream(&[(1, V1), (2, V2)], false);
    let at = stream.len() - 1;
    stream.insert(at, rec("www 300 IN CNAME ns1"));
    let Outcome::Incremental { diffs } = run(ixfr(1), &[msg(t::IXFR, true, &stream)]).unwrap()
    else {
        panic!()
    };
    let e = apply::incremental(base.clone(), &diffs, 1000).unwrap_err();
    assert!(matches!(e, XfrError::BadZone(_)), "{e}");
    // a result above max_records
    let stream = ixfr_stream(&[(1, V1), (2, V2)], false);
    let Outcome::Incremental { diffs } = run(ixfr(1), &[msg(t::IXFR, true, &stream)]).unwrap()
    else {
        panic!()
    };
    let e = apply::incremental(base.clone(), &diffs, 5).unwrap_err();
    assert!(matches!(e, XfrError::Limit(_)), "{e}");
    // the base was never modified
    assert_eq!(norm(&base), norm(&zone(1, V1)));
}

// ---------------------------------------------------------------------------------------------
// TSIG

/// A signed query's MAC and a signer for its answers, as the primary would have.
fn signed_exchange() -> (Vec<u8>, ResponseSigner) {
    let mut q = build_query(ID, 0, &origin(), t::AXFR, None);
    let mac = sign_request(&mut q, &key(), NOW);
    let signer = ResponseSigner::new(&Verified {
        key: key(),
        mac: mac.clone(),
        time_signed: NOW,
    });
    (mac, signer)
}

/// Signs `msg` as the next signed message after the unsigned `pending` ones (RFC 8945 §4.3.2:
/// prior MAC, the unsigned messages, this message, the timers), written out here apart from
/// `auth::tsig` so the verifier is checked against an independent computation.
fn sign_after(msg: &mut Vec<u8>, prior: &[u8], pending: &[Vec<u8>]) -> Vec<u8> {
    let k = key();
    let mut data = Vec::new();
    data.extend_from_slice(&(prior.len() as u16).to_be_bytes());
    data.extend_from_slice(prior);
    for p in pending {
        data.extend_from_slice(p);
    }
    data.extend_from_slice(msg);
    data.extend_from_slice(&NOW.to_be_bytes()[2..8]);
    data.extend_from_slice(&300u16.to_be_bytes());
    let mac = k.sign(&data);
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let ar = u16::from_be_bytes([msg[10], msg[11]]) + 1;
    msg[10..12].copy_from_slice(&ar.to_be_bytes());
    msg.extend_from_slice(k.name.as_wire());
    msg.extend_from_slice(&t::TSIG.to_be_bytes());
    msg.extend_from_slice(&class::ANY.to_be_bytes());
    msg.extend_from_slice(&0u32.to_be_bytes());
    let mut rd = k.algorithm_name().as_wire().to_vec();
    rd.extend_from_slice(&NOW.to_be_bytes()[2..8]);
    rd.extend_from_slice(&300u16.to_be_bytes());
    rd.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    rd.extend_from_slice(&mac);
    rd.extend_from_slice(&id.to_be_bytes());
    rd.extend_from_slice(&[0, 0, 0, 0]);
    msg.extend_from_slice(&(rd.len() as u16).to_be_bytes());
    msg.extend_from_slice(&rd);
    mac
}

fn full_axfr() -> Vec<Record> {
    let mut all = vec![soa(1)];
    all.extend(body(V1));
    all.push(soa(1));
    all
}

#[test]
fn tsig_every_message() {
    let (mac, mut signer) = signed_exchange();
    let mut msgs = messages(t::AXFR, &full_axfr(), 2);
    for m in &mut msgs {
        signer.sign(m, NOW);
    }
    let s = Session::new(
        origin(),
        t::AXFR,
        ID,
        None,
        Some(ResponseVerifier::new(key(), mac.clone())),
        1000,
    );
    assert!(matches!(run(s, &msgs), Ok(Outcome::Full { .. })));
    // a flipped bit in the third message
    let mut bad = msgs.clone();
    bad[2][20] ^= 1;
    let s = Session::new(
        origin(),
        t::AXFR,
        ID,
        None,
        Some(ResponseVerifier::new(key(), mac.clone())),
        1000,
    );
    let (i, e) = run(s, &bad).unwrap_err();
    assert!(i == 2 && matches!(e, XfrError::Tsig(_)), "{i} {e}");
    // messages swapped
    let mut swapped = msgs.clone();
    swapped.swap(1, 2);
    let s = Session::new(
        origin(),
        t::AXFR,
        ID,
        None,
        Some(ResponseVerifier::new(key(), mac.clone())),
        1000,
    );
    assert!(matches!(run(s, &swapped), Err((1, XfrError::Tsig(_)))));
    // an answer to another query (other request MAC)
    let s = Session::new(
        origin(),
        t::AXFR,
        ID,
        None,
        Some(ResponseVerifier::new(key(), vec![0; 32])),
        1000,
    );
    assert!(matches!(run(s, &msgs), Err((0, XfrError::Tsig(_)))));
    // unsigned answer to a signed query
    let s = Session::new(
        origin(),
        t::AXFR,
        ID,
        None,
        Some(ResponseVerifier::new(key(), mac)),
        1000,
    );
    let e = run(s, &messages(t::AXFR, &full_axfr(), 2)).unwrap_err().1;
    assert!(e.to_string().contains("not TSIG-signed"), "{e}");
}

#[test]
fn tsig_unsigned_intermediate_messages() {
    let (mac, mut signer) = signed_exchange();
    let plain = messages(t::AXFR, &full_axfr(), 1);
    assert!(plain.len() >= 5);
    let last = plain.len() - 1;
    // first and last signed, the ones between unsigned (RFC 8945 §5.3.1)
    let mut msgs = plain.clone();
    let mut prior = mac.clone();
    signer.sign(&mut msgs[0], NOW);
    let m0 = crate::dns::message::Message::parse(&msgs[0]).unwrap();
    prior.clone_from(&m0.tsig.unwrap().record.mac);
    let pending: Vec<Vec<u8>> = plain[1..last].to_vec();
    sign_after(&mut msgs[last], &prior, &pending);
    let v = || Some(ResponseVerifier::new(key(), mac.clone()));
    let s = Session::new(origin(), t::AXFR, ID, None, v(), 1000);
    assert!(matches!(run(s, &msgs), Ok(Outcome::Full { .. })));
    // tampering with an unsigned message is caught by the next MAC
    let mut bad = msgs.clone();
    let l = bad[2].len();
    bad[2][l - 1] ^= 1;
    let s = Session::new(origin(), t::AXFR, ID, None, v(), 1000);
    let (i, e) = run(s, &bad).unwrap_err();
    assert!(i == last && matches!(e, XfrError::Tsig(_)), "{i} {e}");
    // the last message unsigned: the transfer is not accepted
    let mut unsigned_last = plain.clone();
    let (_, mut signer) = signed_exchange();
    signer.sign(&mut unsigned_last[0], NOW);
    let s = Session::new(origin(), t::AXFR, ID, None, v(), 1000);
    let e = run(s, &unsigned_last).unwrap_err().1;
    assert!(e.to_string().contains("last message"), "{e}");
    // only the first message signed and the rest unsigned, 100 in a row: refused at the 100th
    let mut many = vec![soa(1)];
    for i in 0..120 {
        many.push(rec(&format!("h{i} 300 IN A 192.0.2.1")));
    }
    many.push(rec("@ 3600 IN NS ns1"));
    many.push(soa(1));
    let mut ms = messages(t::AXFR, &many, 1);
    let (_, mut signer) = signed_exchange();
    signer.sign(&mut ms[0], NOW);
    let s = Session::new(origin(), t::AXFR, ID, None, v(), 1000);
    let (i, e) = run(s, &ms).unwrap_err();
    assert_eq!(i, 100);
    assert!(e.to_string().contains("unsigned messages in a row"), "{e}");
}

#[test]
fn tsig_error_answers() {
    // a BADSIG answer: NOTAUTH with an unsigned TSIG carrying the error
    let (mac, _) = signed_exchange();
    let mut m = msg(t::AXFR, true, &[]);
    m[3] = (m[3] & 0xf0) | 9;
    crate::auth::tsig::Failure::BadSig {
        key_name: key().name.clone(),
        algorithm: key().algorithm_name(),
    }
    .append_tsig(&mut m, NOW);
    let s = Session::new(
        origin(),
        t::AXFR,
        ID,
        None,
        Some(ResponseVerifier::new(key(), mac)),
        1000,
    );
    let e = run(s, &[m]).unwrap_err().1;
    assert!(matches!(e, XfrError::Tsig(_)), "{e}");
    assert!(
        e.to_string().contains("NOTAUTH") && e.to_string().contains("BADSIG"),
        "{e}"
    );
    assert!(!e.ixfr_fallback());
    // an unsigned REFUSED to a signed query: reported by its RCODE (it carries no data)
    let (mac, _) = signed_exchange();
    let mut m = msg(t::AXFR, true, &[]);
    m[3] = (m[3] & 0xf0) | 5;
    let s = Session::new(
        origin(),
        t::AXFR,
        ID,
        None,
        Some(ResponseVerifier::new(key(), mac)),
        1000,
    );
    let e = run(s, &[m]).unwrap_err().1;
    assert_eq!(e, XfrError::Refused { rcode: 5 });
    assert!(e.to_string().contains("REFUSED"), "{e}");
}

#[test]
fn soa_answer_checks() {
    use super::session::soa_answer;
    let answer = |aa: bool, recs: &[Record], qtype: u16| {
        let mut h = Header { id: ID, flags: 0 };
        h.set_qr(true);
        h.set_aa(aa);
        let mut w = MessageWriter::new(h, MAX_MESSAGE_LEN);
        w.question(&origin(), qtype, class::IN).unwrap();
        for r in recs {
            w.add(Section::Answer, r).unwrap();
        }
        w.finish()
    };
    assert_eq!(
        soa_answer(&answer(true, &[soa(7)], t::SOA), ID, &origin(), None, NOW),
        Ok(7)
    );
    let e = soa_answer(&answer(false, &[soa(7)], t::SOA), ID, &origin(), None, NOW).unwrap_err();
    assert!(e.to_string().contains("AA"), "{e}");
    let e = soa_answer(&answer(true, &[soa(7)], t::A), ID, &origin(), None, NOW).unwrap_err();
    assert!(e.to_string().contains("query was"), "{e}");
    let e = soa_answer(&answer(true, &[], t::SOA), ID, &origin(), None, NOW).unwrap_err();
    assert!(e.to_string().contains("no SOA"), "{e}");
    let e = soa_answer(
        &answer(true, &[soa(7), soa(8)], t::SOA),
        ID,
        &origin(),
        None,
        NOW,
    )
    .unwrap_err();
    assert!(e.to_string().contains("2 SOA"), "{e}");
    let e = soa_answer(
        &answer(true, &[soa(7)], t::SOA),
        ID + 1,
        &origin(),
        None,
        NOW,
    )
    .unwrap_err();
    assert!(e.to_string().contains("ID"), "{e}");
    // signed: verified
    let mut q = build_query(ID, 0, &origin(), t::SOA, None);
    let mac = sign_request(&mut q, &key(), NOW);
    let mut signer = ResponseSigner::new(&Verified {
        key: key(),
        mac: mac.clone(),
        time_signed: NOW,
    });
    let mut a = answer(true, &[soa(9)], t::SOA);
    signer.sign(&mut a, NOW);
    let v = || Some(ResponseVerifier::new(key(), mac.clone()));
    assert_eq!(soa_answer(&a, ID, &origin(), v(), NOW), Ok(9));
    // outside the time window
    assert!(matches!(
        soa_answer(&a, ID, &origin(), v(), NOW + 1000),
        Err(XfrError::Tsig(_))
    ));
    // unsigned
    let plain = answer(true, &[soa(9)], t::SOA);
    assert!(matches!(
        soa_answer(&plain, ID, &origin(), v(), NOW),
        Err(XfrError::Tsig(_))
    ));
}

#[test]
fn serial_arithmetic() {
    use super::serial_gt;
    assert!(serial_gt(2, 1));
    assert!(!serial_gt(1, 1));
    assert!(!serial_gt(1, 2));
    assert!(serial_gt(1, u32::MAX));
    assert!(serial_gt(0x7fff_ffff, 0));
    assert!(
        !serial_gt(0x8000_0000, 0),
        "undefined in RFC 1982: not greater"
    );
}
