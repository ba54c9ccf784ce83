//! The publisher's answers checked by real validators: delv (BIND's validating resolver) with
//! the zone's DS as the only trust anchor, for every kind of answer RFC 4035 §3.1 and RFC 5155
//! §7.2 define, with NSEC, NSEC3 and NSEC3 opt-out; dig for the shape of referrals, TC over UDP
//! and the TCP retry, and TSIG on ordinary queries.
//!
//! The parent `example.test` delegates to `sub` (signed, served by the same server, so delv can
//! follow the chain of trust into it), `insecure` (unsigned, served too), and to `far` (DS) and
//! `nosec` (no DS), which are not served, to look at the referrals themselves.

mod common;
#[path = "publisher_support.rs"]
mod support;

use common::*;
use signet::clock::SimClock;
use signet::publisher::{Publisher, Served};
use signet::signer::Denial;
use std::sync::Arc;
use support::*;

const CHILD: &str = r#"$ORIGIN sub.example.test.
$TTL 300
@     SOA ns hostmaster 1 3600 600 86400 300
@     NS  ns
ns    A   127.0.0.1
www   A   192.0.2.150
"#;

const INSECURE: &str = r#"$ORIGIN insecure.example.test.
$TTL 300
@     SOA ns hostmaster 1 3600 600 86400 300
@     NS  ns
ns    A   127.0.0.1
www   A   192.0.2.160
"#;

fn parent_text(sub_ds: &str, serial: u32) -> String {
    let mut big = String::new();
    for i in 0..40 {
        big.push_str(&format!("big TXT \"record {i:02} {}\"\n", "x".repeat(60)));
    }
    format!(
        r#"$ORIGIN example.test.
$TTL 300
@           SOA   ns1 hostmaster {serial} 3600 600 86400 300
@           NS    ns1
@           MX    10 mail
ns1         A     127.0.0.1
www         A     192.0.2.2
www         AAAA  2001:db8::2
mail        A     192.0.2.25
txt         TXT   "hello world"
*.wild      A     192.0.2.100
*.wild      TXT   "wild"
cname       CNAME www
cname-chain CNAME cname
cname-nx    CNAME nothere
*.wcname    CNAME www
ext         CNAME www.example.org.
dn          DNAME target
host.target A     192.0.2.77
a.b.ent     A     192.0.2.88
sub         NS    ns.sub
sub         DS    {sub_ds}
ns.sub      A     127.0.0.1
insecure    NS    ns.insecure
ns.insecure A     127.0.0.1
far         NS    ns.far
far         DS    12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
ns.far      A     192.0.2.200
nosec       NS    ns.nosec
ns.nosec    A     192.0.2.201
{big}"#
    )
}

struct Setup {
    tmp: TempDir,
    running: Running,
    anchors: std::path::PathBuf,
}

fn setup(label: &str, denial: Denial) -> Setup {
    let tmp = TempDir::new(label);
    let keys = tmp.join("keys");
    let child = sign("sub.example.test.", CHILD, Denial::Nsec, &keys);
    let parent = sign(ORIGIN, &parent_text(&child.ds_rdata_text, 1), denial, &keys);
    let insecure = zone_from_text("insecure.example.test.", INSECURE);
    // the signer's output itself must be sound, or the rest says nothing
    let file = tmp.join("parent.signed");
    write_zone(&parent.zone, &file);
    verify_all("example.test", &file);
    let p = publisher();
    p.publish(Arc::new(Served::new(parent.zone, vec![])));
    p.publish(Arc::new(Served::new(child.zone, vec![])));
    p.publish(Arc::new(Served::new(insecure, vec![])));
    let running = start(p);
    let anchors = write_delv_anchor(tmp.path(), &parent.ds_line);
    Setup {
        tmp,
        running,
        anchors,
    }
}

/// dig's text with every run of blanks inside a line made one space.
fn norm(text: &str) -> String {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn dig_at(port: u16, args: &[&str]) -> String {
    let mut v = vec![
        "@127.0.0.1".to_string(),
        "-p".to_string(),
        port.to_string(),
        "+time=2".to_string(),
        "+tries=1".to_string(),
        "+norec".to_string(),
    ];
    v.extend(args.iter().map(|s| s.to_string()));
    dig(&v)
}

#[derive(Clone, Copy, Debug)]
enum Expect {
    /// "; fully validated" or "; negative response, fully validated"
    Validated,
    /// provably insecure: "; unsigned answer"
    Insecure,
    /// Either of the above: proofs that rest on an NSEC3 with the opt-out flag (RFC 5155 §6)
    /// only show that the name is not signed, and BIND's validator calls them insecure.
    Secure,
}

fn is_insecure(delv_output: &str) -> bool {
    delv_output
        .lines()
        .map(str::trim)
        .any(|l| l == "; unsigned answer" || l == "; negative response, unsigned answer")
}

fn check(s: &Setup, qname: &str, qtype: &str, status: &str, expect: Expect) {
    let d = dig_at(s.running.port, &["+dnssec", qname, qtype]);
    assert!(
        d.contains(&format!("status: {status}")),
        "{qname} {qtype}: expected status {status}:\n{d}"
    );
    if status == "NOERROR" || status == "NXDOMAIN" {
        assert!(
            d.contains("flags: qr aa"),
            "{qname} {qtype}: AA expected:\n{d}"
        );
    }
    let out = delv(s.running.port, &s.anchors, "example.test", qname, qtype);
    match expect {
        Expect::Validated => assert!(
            is_validated(&out),
            "{qname} {qtype}: delv did not validate:\n{out}\n--- dig +dnssec:\n{d}"
        ),
        Expect::Insecure => assert!(
            is_insecure(&out),
            "{qname} {qtype}: delv did not find a provably insecure answer:\n{out}\n--- dig:\n{d}"
        ),
        Expect::Secure => assert!(
            is_validated(&out) || is_insecure(&out),
            "{qname} {qtype}: delv neither validated nor proved insecure:\n{out}\n--- dig:\n{d}"
        ),
    }
}

fn all_answer_kinds(label: &str, denial: Denial, opt_out: bool) {
    require!(
        "delv",
        "dig",
        "ldns-verify-zone",
        "dnssec-verify",
        "kzonecheck"
    );
    let s = setup(label, denial);
    use Expect::*;
    // answers that rest on a covering NSEC3 are only "not insecure" with opt-out
    let cover = if opt_out { Secure } else { Validated };
    // positive
    check(&s, "www.example.test", "A", "NOERROR", Validated);
    check(&s, "example.test", "DNSKEY", "NOERROR", Validated);
    check(&s, "example.test", "MX", "NOERROR", Validated);
    // NXDOMAIN, NODATA, empty non-terminal
    check(&s, "nx.example.test", "A", "NXDOMAIN", cover);
    check(&s, "deep.nx.example.test", "AAAA", "NXDOMAIN", cover);
    check(&s, "www.example.test", "TXT", "NOERROR", Validated);
    check(&s, "b.ent.example.test", "A", "NOERROR", Validated);
    // wildcard: answer, deeper name, NODATA
    check(&s, "foo.wild.example.test", "A", "NOERROR", cover);
    check(&s, "x.y.wild.example.test", "TXT", "NOERROR", cover);
    check(&s, "foo.wild.example.test", "MX", "NOERROR", cover);
    // CNAME, chain, CNAME to a name that does not exist
    check(&s, "cname.example.test", "A", "NOERROR", Validated);
    check(&s, "cname-chain.example.test", "AAAA", "NOERROR", Validated);
    check(&s, "cname-nx.example.test", "A", "NXDOMAIN", cover);
    check(&s, "a.wcname.example.test", "A", "NOERROR", cover);
    // DNAME
    check(&s, "host.dn.example.test", "A", "NOERROR", Validated);
    // signed delegation: DS from the parent, data from the child
    check(&s, "sub.example.test", "DS", "NOERROR", Validated);
    check(&s, "www.sub.example.test", "A", "NOERROR", Validated);
    check(&s, "far.example.test", "DS", "NOERROR", Validated);
    // unsigned delegation: no DS, proven
    let insecure = if opt_out { Secure } else { Validated };
    check(&s, "insecure.example.test", "DS", "NOERROR", insecure);
    check(&s, "nosec.example.test", "DS", "NOERROR", insecure);
    check(&s, "www.insecure.example.test", "A", "NOERROR", Insecure);

    // DNAME answer shape: DNAME + synthesized CNAME (TTL of the DNAME) + target
    let d = norm(&dig_at(
        s.running.port,
        &["+dnssec", "host.dn.example.test", "A"],
    ));
    assert!(
        d.contains("\ndn.example.test. 300 IN DNAME target.example.test."),
        "{d}"
    );
    assert!(
        d.contains("\nhost.dn.example.test. 300 IN CNAME host.target.example.test."),
        "{d}"
    );
    assert!(
        d.contains("\nhost.target.example.test. 300 IN A 192.0.2.77"),
        "{d}"
    );

    // referrals: NS in authority, no AA, glue, DS + RRSIG or the proof of no DS
    let d = norm(&dig_at(
        s.running.port,
        &["+dnssec", "www.far.example.test", "A"],
    ));
    assert!(
        d.contains("status: NOERROR") && !d.contains("flags: qr aa"),
        "{d}"
    );
    assert!(
        d.contains("AUTHORITY SECTION:\nfar.example.test. 300 IN NS ns.far.example.test."),
        "{d}"
    );
    assert!(
        d.contains("\nfar.example.test. 300 IN DS 12345 13 2"),
        "{d}"
    );
    assert!(d.contains("\nfar.example.test. 300 IN RRSIG DS "), "{d}");
    assert!(
        d.contains("ADDITIONAL SECTION:\nns.far.example.test. 300 IN A 192.0.2.200"),
        "glue: {d}"
    );
    let d = norm(&dig_at(
        s.running.port,
        &["+dnssec", "www.nosec.example.test", "A"],
    ));
    assert!(
        d.contains("AUTHORITY SECTION:\nnosec.example.test. 300 IN NS ns.nosec.example.test."),
        "{d}"
    );
    assert!(!d.contains(" IN DS "), "{d}");
    let proof = if label.contains("nsec3") {
        " IN NSEC3 1 "
    } else {
        "\nnosec.example.test. 300 IN NSEC "
    };
    assert!(d.contains(proof), "no-DS proof missing: {d}");
    assert!(
        d.contains("ADDITIONAL SECTION:\nns.nosec.example.test. 300 IN A 192.0.2.201"),
        "glue: {d}"
    );
    // without DO: no DNSSEC records at all
    let d = norm(&dig_at(s.running.port, &["nx.example.test", "A"]));
    assert!(
        d.contains("status: NXDOMAIN") && !d.contains("RRSIG") && !d.contains("NSEC"),
        "{d}"
    );
    // negative answers: SOA TTL = min(SOA TTL, MINIMUM) = 300
    assert!(
        d.contains("AUTHORITY SECTION:\nexample.test. 300 IN SOA ns1.example.test."),
        "{d}"
    );
    // a CNAME out of the zone: the CNAME alone, authoritative
    let d = norm(&dig_at(s.running.port, &["ext.example.test", "A"]));
    assert!(
        d.contains("flags: qr aa") && d.contains("ANSWER: 1,"),
        "{d}"
    );
    assert!(
        d.contains("\next.example.test. 300 IN CNAME www.example.org."),
        "{d}"
    );
    // not our zone
    let d = dig_at(s.running.port, &["www.example.org", "A"]);
    assert!(d.contains("status: REFUSED"), "{d}");
    drop(s.tmp);
}

#[test]
fn answers_validate_with_nsec() {
    all_answer_kinds("pub-nsec", Denial::Nsec, false);
}

#[test]
fn answers_validate_with_nsec3() {
    all_answer_kinds("pub-nsec3", nsec3(false), false);
}

#[test]
fn answers_validate_with_nsec3_opt_out() {
    all_answer_kinds("pub-nsec3-optout", nsec3(true), true);
}

/// A big answer is cut over UDP with TC (no partial RRset), and dig's automatic retry over TCP
/// gets all of it; without EDNS the limit is 512.
#[test]
fn truncation_and_tcp_retry() {
    require!("dig");
    let s = setup("pub-tc", Denial::Nsec);
    let port = s.running.port;
    let d = dig_at(
        port,
        &[
            "+dnssec",
            "+ignore",
            "+bufsize=1232",
            "big.example.test",
            "TXT",
        ],
    );
    assert!(d.contains("flags: qr aa tc"), "{d}");
    assert!(d.contains("ANSWER: 0"), "{d}");
    let d = dig_at(port, &["+dnssec", "big.example.test", "TXT"]);
    assert!(d.contains("Truncated, retrying in TCP mode"), "{d}");
    assert!(d.contains("ANSWER: 41"), "40 TXT + RRSIG over TCP: {d}");
    let d = dig_at(port, &["+tcp", "big.example.test", "TXT"]);
    assert!(d.contains("ANSWER: 40"), "{d}");
    // no EDNS: 512 octets
    let d = dig_at(port, &["+noedns", "+ignore", "big.example.test", "TXT"]);
    assert!(d.contains("flags: qr aa tc"), "{d}");
    // small answers are not truncated, and the OPT echoes our size and the DO bit
    let d = dig_at(port, &["+dnssec", "www.example.test", "A"]);
    assert!(!d.contains(" tc"), "{d}");
    assert!(d.contains("flags: do; udp: 1232"), "{d}");
    // several queries on one TCP connection, in order
    let d = dig_at(
        port,
        &[
            "+tcp",
            "+keepopen",
            "www.example.test",
            "A",
            "mail.example.test",
            "A",
        ],
    );
    assert!(d.contains("192.0.2.2") && d.contains("192.0.2.25"), "{d}");
}

/// TSIG on an ordinary query: dig signs, we verify and sign the answer, dig verifies it; a
/// wrong secret is BADSIG, an unknown key BADKEY, a skewed clock BADTIME.
#[test]
fn tsig_on_queries() {
    require!("dig");
    let tmp = TempDir::new("pub-tsig-q");
    let key = TsigKey::generate("q-key");
    let parent = sign(
        ORIGIN,
        &parent_text("1 13 2 00", 1),
        Denial::Nsec,
        &tmp.join("keys"),
    );
    let zone = parent.zone;
    for (skew, expect) in [(0i64, "ok"), (1000, "BADTIME")] {
        let clock = Arc::new(SimClock::new((now() as i64 + skew) as u64));
        let p = Arc::new(Publisher::new(clock));
        p.set_keys(keyring(vec![lib_key(&key.name, &key.secret)]));
        p.publish(Arc::new(Served::new(zone.clone(), vec![])));
        let r = start(p);
        let d = dig_at(r.port, &["-y", &key.dig_arg(), "www.example.test", "A"]);
        if expect == "ok" {
            assert!(
                d.contains("status: NOERROR") && d.contains("192.0.2.2"),
                "{d}"
            );
            assert!(
                d.contains("TSIG PSEUDOSECTION") && d.contains("NOERROR 0"),
                "{d}"
            );
            assert!(
                !d.to_lowercase().contains("failure") && !d.contains("Couldn't verify"),
                "{d}"
            );
            // wrong secret → BADSIG; unknown key → BADKEY
            let wrong = TsigKey::generate("q-key");
            let d = dig_at(r.port, &["-y", &wrong.dig_arg(), "www.example.test", "A"]);
            assert!(d.contains("status: NOTAUTH"), "{d}");
            assert!(
                norm(&d).contains(" BADSIG 0"),
                "unsigned TSIG with BADSIG: {d}"
            );
            let other = TsigKey::generate("unknown-key");
            let d = dig_at(r.port, &["-y", &other.dig_arg(), "www.example.test", "A"]);
            assert!(d.contains("status: NOTAUTH"), "{d}");
            assert!(
                norm(&d).contains(" BADKEY 0"),
                "unsigned TSIG with BADKEY: {d}"
            );
        } else {
            // the BADTIME answer is signed: dig checks its MAC, then reports the clock skew
            assert!(d.contains("status: NOTAUTH"), "{d}");
            assert!(norm(&d).contains(" BADTIME 6 "), "{d}");
            assert!(d.contains("clocks are unsynchronized"), "{d}");
        }
    }
}
