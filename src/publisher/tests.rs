//! Request handling through [`Publisher::handle`], without a network: the shapes of answers
//! and, for NSEC3, that every proof record really matches or covers the hash it must (the
//! integration tests in `tests/publisher_*.rs` run the same answers through delv and dig).

use super::*;
use crate::clock::SimClock;
use crate::dns::message::{build_query, Edns, Message};
use crate::dns::record::Record;
use crate::keystore::{dnskey_rdata, generate_pkcs8, RingSigningKey, SigningKey};
use crate::signer::{sign_zone, ActiveKey, Denial, SignParams};
use data_encoding::BASE32HEX_NOPAD;
use std::path::Path;

const NOW: u64 = 1_700_000_000;

const TEXT: &str = r#"$ORIGIN example.test.
$TTL 300
@        SOA   ns1 hostmaster 1 3600 600 86400 120
@        NS    ns1
@        MX    10 mail
ns1      A     192.0.2.53
www      A     192.0.2.2
mail     A     192.0.2.25
*.wild   A     192.0.2.100
cname    CNAME www
loop1    CNAME loop2
loop2    CNAME loop1
dn       DNAME target
host.target A  192.0.2.77
a.b.ent  A     192.0.2.88
sub      NS    ns.sub
sub      DS    12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
ns.sub   A     192.0.2.54
nosec    NS    ns.nosec
ns.nosec A     192.0.2.55
"#;

fn n(s: &str) -> Name {
    Name::parse(s, None).unwrap()
}

fn signed(denial: Denial, extra: &str) -> Zone {
    let origin = n("example.test.");
    let text = format!("{TEXT}{extra}");
    let parsed = crate::zonefile::parse_str(&text, Path::new("t.zone"), &origin).unwrap();
    let (zone, _) = crate::zonefile::zone_from_parsed(parsed, &origin).unwrap();
    let der = generate_pkcs8(15).unwrap();
    let k = RingSigningKey::from_der(15, &der).unwrap();
    let dnskey = dnskey_rdata(257, 15, k.public_key());
    let key = ActiveKey {
        tag: crate::keystore::key_tag(&dnskey),
        dnskey,
        key: Arc::new(k),
        signs_keys: true,
        signs_zone: true,
        publish: true,
    };
    let params = SignParams {
        denial,
        ..SignParams::default()
    };
    sign_zone(&zone, &[key], &params, NOW).unwrap()
}

fn nsec3() -> Denial {
    Denial::Nsec3 {
        iterations: 0,
        salt: vec![],
        opt_out: false,
    }
}

fn publisher_with(zone: Zone) -> Publisher {
    let p = Publisher::new(Arc::new(SimClock::new(NOW)));
    p.publish(Arc::new(Served::new(zone, vec![])));
    p
}

fn src() -> SocketAddr {
    "127.0.0.1:5555".parse().unwrap()
}

fn ask_with(p: &Publisher, qname: &str, qtype: u16, edns: Option<Edns>, tr: Transport) -> Message {
    let q = build_query(1, 0, &n(qname), qtype, edns.as_ref());
    match p.handle(&q, src(), tr) {
        Reply::One(b) => Message::parse(&b).unwrap(),
        Reply::Drop => panic!("dropped"),
        Reply::Transfer(_) => panic!("transfer"),
        Reply::Later(_) => panic!("deferred answer"),
    }
}

fn ask(p: &Publisher, qname: &str, qtype: u16) -> Message {
    let e = Edns {
        udp_size: 4096,
        dnssec_ok: true,
        ..Edns::default()
    };
    ask_with(p, qname, qtype, Some(e), Transport::Udp)
}

fn types(rs: &[Record]) -> Vec<u16> {
    rs.iter().map(|r| r.rtype).collect()
}

#[test]
fn positive_nxdomain_nodata_nsec() {
    let p = publisher_with(signed(Denial::Nsec, ""));
    let m = ask(&p, "www.example.test.", t::A);
    assert!(m.header.aa());
    assert_eq!(types(&m.answers), vec![t::A, t::RRSIG]);
    assert!(m.edns.as_ref().unwrap().dnssec_ok);

    let m = ask(&p, "nx.example.test.", t::A);
    assert_eq!(m.rcode(), rcode::NXDOMAIN);
    assert!(m.answers.is_empty());
    let soa = &m.authority[0];
    assert_eq!(
        (soa.rtype, soa.ttl),
        (t::SOA, 120),
        "negative TTL = min(300, 120)"
    );
    assert_eq!(m.authority[1].rtype, t::RRSIG);
    assert_eq!(m.authority[1].ttl, 120);
    // NSEC covering nx (ns1 → sub) and NSEC covering *.example.test (apex → a.b.ent)
    let owners: Vec<String> = m
        .authority
        .iter()
        .filter(|r| r.rtype == t::NSEC)
        .map(|r| r.owner.to_string())
        .collect();
    assert_eq!(owners, vec!["ns1.example.test.", "example.test."]);

    let m = ask(&p, "www.example.test.", t::TXT);
    assert_eq!(m.rcode(), rcode::NOERROR);
    assert!(m.answers.is_empty());
    assert!(m
        .authority
        .iter()
        .any(|r| r.rtype == t::NSEC && r.owner == n("www.example.test.")));
    // empty non-terminal: the NSEC of the name before it
    let m = ask(&p, "b.ent.example.test.", t::A);
    assert_eq!(m.rcode(), rcode::NOERROR);
    assert!(m.authority.iter().any(|r| r.rtype == t::NSEC));
    // without DO: no DNSSEC records
    let m = ask_with(&p, "nx.example.test.", t::A, None, Transport::Udp);
    assert_eq!(types(&m.authority), vec![t::SOA]);
    assert!(m.edns.is_none());
}

/// NSEC3 next-hash field and the owner's hash.
fn nsec3_range(r: &Record) -> ([u8; 20], [u8; 20]) {
    let label = r.owner.first_label().unwrap().to_ascii_uppercase();
    let own: [u8; 20] = BASE32HEX_NOPAD.decode(&label).unwrap().try_into().unwrap();
    let salt_len = r.rdata[4] as usize;
    let p = 5 + salt_len;
    let hlen = r.rdata[p] as usize;
    let next: [u8; 20] = r.rdata[p + 1..p + 1 + hlen].try_into().unwrap();
    (own, next)
}

fn covers(r: &Record, h: &[u8; 20]) -> bool {
    let (own, next) = nsec3_range(r);
    if own < next {
        own < *h && *h < next
    } else {
        *h > own || *h < next
    }
}

fn matches(r: &Record, h: &[u8; 20]) -> bool {
    nsec3_range(r).0 == *h
}

fn h(name: &str) -> [u8; 20] {
    crate::signer::nsec3::hash(&n(name), &[], 0)
}

#[test]
fn nsec3_proofs_match_and_cover() {
    let p = publisher_with(signed(nsec3(), ""));
    let n3 = |m: &Message| -> Vec<Record> {
        m.authority
            .iter()
            .filter(|r| r.rtype == t::NSEC3)
            .cloned()
            .collect()
    };
    // NXDOMAIN x.nx: closest encloser = apex (match), next closer nx (cover), *.apex (cover)
    let m = ask(&p, "x.nx.example.test.", t::A);
    assert_eq!(m.rcode(), rcode::NXDOMAIN);
    let rs = n3(&m);
    assert!(rs.iter().any(|r| matches(r, &h("example.test."))));
    assert!(rs.iter().any(|r| covers(r, &h("nx.example.test."))));
    assert!(rs.iter().any(|r| covers(r, &h("*.example.test."))));
    // NODATA: the matching NSEC3
    let m = ask(&p, "www.example.test.", t::TXT);
    assert!(n3(&m).iter().any(|r| matches(r, &h("www.example.test."))));
    // ENT NODATA: matching NSEC3 of the ENT
    let m = ask(&p, "b.ent.example.test.", t::A);
    assert!(n3(&m).iter().any(|r| matches(r, &h("b.ent.example.test."))));
    // wildcard answer: RRSIG labels 3, next closer (foo.wild's ancestor below wild) covered
    let m = ask(&p, "a.foo.wild.example.test.", t::A);
    assert_eq!(types(&m.answers), vec![t::A, t::RRSIG]);
    assert_eq!(m.answers[0].owner, n("a.foo.wild.example.test."));
    assert_eq!(m.answers[1].rdata[3], 3);
    let rs = n3(&m);
    assert_eq!(rs.len(), 1);
    assert!(covers(&rs[0], &h("foo.wild.example.test.")));
    // wildcard NODATA: closest encloser wild (match), next closer covered, wildcard matched
    let m = ask(&p, "foo.wild.example.test.", t::MX);
    let rs = n3(&m);
    assert!(rs.iter().any(|r| matches(r, &h("wild.example.test."))));
    assert!(rs.iter().any(|r| covers(r, &h("foo.wild.example.test."))));
    assert!(rs.iter().any(|r| matches(r, &h("*.wild.example.test."))));
    // referral without DS: the delegation's matching NSEC3
    let m = ask(&p, "www.nosec.example.test.", t::A);
    assert!(!m.header.aa());
    assert!(n3(&m).iter().any(|r| matches(r, &h("nosec.example.test."))));
    // an NSEC3 owner name is not a name of the zone (RFC 5155 §7.2.8)
    let owner = rs[0].owner.to_string();
    let m = ask(&p, &owner, t::NSEC3);
    assert_eq!(m.rcode(), rcode::NXDOMAIN);
}

#[test]
fn opt_out_ds_at_insecure_delegation() {
    let p = publisher_with(signed(
        Denial::Nsec3 {
            iterations: 0,
            salt: vec![],
            opt_out: true,
        },
        "",
    ));
    // nosec has no NSEC3: closest provable encloser (apex) + covering NSEC3 with opt-out
    let m = ask(&p, "nosec.example.test.", t::DS);
    assert!(m.answers.is_empty() && m.header.aa());
    let rs: Vec<&Record> = m.authority.iter().filter(|r| r.rtype == t::NSEC3).collect();
    assert!(rs.iter().any(|r| matches(r, &h("example.test."))));
    let cover = rs
        .iter()
        .find(|r| covers(r, &h("nosec.example.test.")))
        .expect("covering NSEC3");
    assert_eq!(cover.rdata[1] & 1, 1, "opt-out flag");
}

#[test]
fn referral_ds_cname_dname_loops() {
    let p = publisher_with(signed(Denial::Nsec, ""));
    // referral: not AA, NS in authority, DS + RRSIG, glue
    let m = ask(&p, "www.sub.example.test.", t::A);
    assert!(!m.header.aa());
    assert!(m.answers.is_empty());
    assert_eq!(types(&m.authority), vec![t::NS, t::DS, t::RRSIG]);
    assert_eq!(types(&m.additional), vec![t::A]);
    assert_eq!(m.additional[0].owner, n("ns.sub.example.test."));
    // DS at the cut: the parent answers authoritatively
    let m = ask(&p, "sub.example.test.", t::DS);
    assert!(m.header.aa());
    assert_eq!(types(&m.answers), vec![t::DS, t::RRSIG]);
    // CNAME followed inside the zone
    let m = ask(&p, "cname.example.test.", t::A);
    assert_eq!(types(&m.answers), vec![t::CNAME, t::RRSIG, t::A, t::RRSIG]);
    // a CNAME loop ends
    let m = ask(&p, "loop1.example.test.", t::A);
    assert_eq!(m.rcode(), rcode::NOERROR);
    assert_eq!(
        types(&m.answers),
        vec![t::CNAME, t::RRSIG, t::CNAME, t::RRSIG]
    );
    // DNAME: signed DNAME, unsigned synthesized CNAME with the DNAME's TTL, then the target
    let m = ask(&p, "host.dn.example.test.", t::A);
    assert_eq!(
        types(&m.answers),
        vec![t::DNAME, t::RRSIG, t::CNAME, t::A, t::RRSIG]
    );
    assert_eq!(m.answers[2].owner, n("host.dn.example.test."));
    assert_eq!(m.answers[2].rdata, n("host.target.example.test.").as_wire());
    // names below the DNAME that the substitution leads nowhere: NXDOMAIN from the target
    let m = ask(&p, "nothing.dn.example.test.", t::A);
    assert_eq!(m.rcode(), rcode::NXDOMAIN);
    // MX answer brings the in-zone address of its target
    let m = ask(&p, "example.test.", t::MX);
    assert!(m
        .additional
        .iter()
        .any(|r| r.rtype == t::A && r.owner == n("mail.example.test.")));
    // ANY: every RRset at the name
    let m = ask(&p, "www.example.test.", t::ANY);
    assert!(types(&m.answers).contains(&t::A) && types(&m.answers).contains(&t::NSEC));
}

#[test]
fn truncation_zones_and_transfers() {
    let mut big = String::new();
    for i in 0..40 {
        big.push_str(&format!("big TXT \"{i:02} {}\"\n", "y".repeat(60)));
    }
    let p = publisher_with(signed(Denial::Nsec, &big));
    // UDP without EDNS: 512 → TC, no partial answer; with EDNS 1232 still too big; TCP: all
    let m = ask_with(&p, "big.example.test.", t::TXT, None, Transport::Udp);
    assert!(m.header.tc() && m.answers.is_empty() && m.authority.is_empty());
    let e = Edns {
        udp_size: 65000,
        dnssec_ok: true,
        ..Edns::default()
    };
    let q = build_query(1, 0, &n("big.example.test."), t::TXT, Some(&e));
    let Reply::One(b) = p.handle(&q, src(), Transport::Udp) else {
        panic!()
    };
    assert!(
        b.len() <= usize::from(EDNS_UDP_SIZE),
        "our UDP size caps the client's"
    );
    assert!(Message::parse(&b).unwrap().header.tc());
    let m = ask_with(&p, "big.example.test.", t::TXT, Some(e), Transport::Tcp);
    assert!(!m.header.tc());
    assert_eq!(m.answers.len(), 41);
    // additional data that does not fit is dropped without TC
    let m = ask_with(&p, "example.test.", t::MX, None, Transport::Udp);
    assert!(!m.header.tc());

    // not our zone / withdrawn: REFUSED
    assert_eq!(ask(&p, "www.example.org.", t::A).rcode(), rcode::REFUSED);
    assert!(p.withdraw(&n("example.test.")));
    assert_eq!(ask(&p, "www.example.test.", t::A).rcode(), rcode::REFUSED);

    // transfers: refused by the empty ACL; FORMERR over UDP when allowed; a plan over TCP
    let zone = signed(Denial::Nsec, "");
    p.publish(Arc::new(Served::new(zone, vec![])));
    assert_eq!(ask(&p, "example.test.", t::AXFR).rcode(), rcode::REFUSED);
    let zone = signed(Denial::Nsec, "");
    p.publish(Arc::new(Served::new(
        zone,
        vec![AclEntry::Addr("127.0.0.0".parse().unwrap(), 8)],
    )));
    assert_eq!(ask(&p, "example.test.", t::AXFR).rcode(), rcode::FORMERR);
    let q = build_query(1, 0, &n("example.test."), t::AXFR, None);
    assert!(matches!(
        p.handle(&q, src(), Transport::Tcp),
        Reply::Transfer(_)
    ));
}

#[test]
fn parent_answers_ds_for_a_child_it_also_serves() {
    let parent = signed(Denial::Nsec, "");
    let child_text = "$ORIGIN sub.example.test.\n$TTL 300\n@ SOA ns hm 1 3600 600 86400 300\n@ NS ns\nns A 192.0.2.54\n";
    let origin = n("sub.example.test.");
    let parsed = crate::zonefile::parse_str(child_text, Path::new("c"), &origin).unwrap();
    let (child, _) = crate::zonefile::zone_from_parsed(parsed, &origin).unwrap();
    let p = publisher_with(parent);
    p.publish(Arc::new(Served::new(child, vec![])));
    assert_eq!(
        p.find_zone(&origin, t::DS).unwrap().origin(),
        &n("example.test.")
    );
    assert_eq!(p.find_zone(&origin, t::SOA).unwrap().origin(), &origin);
    let m = ask(&p, "sub.example.test.", t::DS);
    assert_eq!(types(&m.answers), vec![t::DS, t::RRSIG]);
    let m = ask(&p, "ns.sub.example.test.", t::A);
    assert!(m.header.aa(), "the child answers its own names");
}

/// NXDOMAIN proofs stay right when other names sort among the NSEC3 owners: first-level labels
/// `0` … `99` with subtrees (as in a reverse zone), a label that looks like a hash with names
/// below it, and labels after `v`: for hundreds of names the answer holds an NSEC3 covering the
/// next closer name and one covering the wildcard (the covering NSEC3 is found by stepping over
/// those subtrees, see `nsec3_before`).
#[test]
fn nsec3_cover_among_names_that_sort_between_hashes() {
    let mut extra = String::new();
    for i in 0..100 {
        for j in 0..20 {
            extra.push_str(&format!("x{j}.{i} A 192.0.2.1\n"));
        }
    }
    extra.push_str("a.0123456789abcdefghijklmnopqrstuv A 192.0.2.2\n");
    extra.push_str("b.c.0123456789abcdefghijklmnopqrstuv A 192.0.2.3\n");
    extra.push_str("zz A 192.0.2.4\nw.zz A 192.0.2.5\nzzz.zz A 192.0.2.6\n");
    for opt_out in [false, true] {
        let p = publisher_with(signed(
            Denial::Nsec3 {
                iterations: 0,
                salt: vec![],
                opt_out,
            },
            &extra,
        ));
        for k in 0..400 {
            let q = format!("nx{k}.example.test.");
            let m = ask(&p, &format!("deep.{q}"), t::A);
            assert_eq!(m.rcode(), rcode::NXDOMAIN, "{q}");
            let rs: Vec<&Record> = m.authority.iter().filter(|r| r.rtype == t::NSEC3).collect();
            assert!(
                rs.iter().any(|r| covers(r, &h(&q))),
                "{q}: no NSEC3 covers the next closer name"
            );
            assert!(
                rs.iter().any(|r| covers(r, &h("*.example.test."))),
                "{q}: no NSEC3 covers the wildcard"
            );
        }
    }
}
