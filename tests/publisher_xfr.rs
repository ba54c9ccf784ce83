//! Zone transfers out and NOTIFY out, against real peers: dig (AXFR/IXFR with TSIG, multi-message
//! transfers above 64 KiB), the three zone validators on what was transferred, and a BIND named
//! secondary that transfers with TSIG, is told about a new serial by our NOTIFY and transfers it.

mod common;
#[path = "publisher_support.rs"]
mod support;

use common::*;
use signet::auth::tsig::{sign_request, ResponseVerifier};
use signet::dns::message::{build_query, Message};
use signet::dns::t;
use signet::publisher::notify::Outcome;
use signet::publisher::Served;
use signet::signer::Denial;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;
use support::*;

const ZONE: &str = "example.test";

/// A zone with `hosts` extra names (each an A and a TXT record) at `serial`.
fn zone_text(serial: u32, hosts: usize) -> String {
    let mut s = format!(
        r#"$ORIGIN example.test.
$TTL 300
@        SOA   ns1 hostmaster {serial} 3600 600 86400 300
@        NS    ns1
@        NS    ns2
ns1      A     127.0.0.1
ns2      A     127.0.0.2
www      A     192.0.2.2
*.wild   A     192.0.2.100
sub      NS    ns.sub
ns.sub   A     192.0.2.53
"#
    );
    for i in 0..hosts {
        s.push_str(&format!(
            "host{i:05} A 192.0.2.{}\nhost{i:05} TXT \"host number {i}\"\n",
            i % 250 + 1
        ));
    }
    s
}

/// `;; XFR size: N records (messages M, bytes B)` from dig's stats.
fn xfr_size(dig_text: &str) -> Option<(usize, usize, usize)> {
    let line = dig_text.lines().find(|l| l.starts_with(";; XFR size:"))?;
    let nums: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    Some((*nums.first()?, *nums.get(1)?, *nums.get(2)?))
}

fn dig_xfr(port: u16, key: Option<&TsigKey>, qtype: &str) -> String {
    let mut args = vec![
        "@127.0.0.1".to_string(),
        "-p".to_string(),
        port.to_string(),
        "+time=10".to_string(),
        "+tries=1".to_string(),
    ];
    if let Some(k) = key {
        args.push("-y".into());
        args.push(k.dig_arg());
    }
    args.push(ZONE.into());
    args.push(qtype.into());
    dig(&args)
}

#[test]
fn axfr_with_tsig_multi_message_and_acl() {
    require!("dig", "ldns-verify-zone", "dnssec-verify", "kzonecheck");
    let tmp = TempDir::new("pub-axfr");
    let key = TsigKey::generate("xfr-key");
    let signed = sign(
        "example.test.",
        &zone_text(1, 3000),
        nsec3(false),
        &tmp.join("keys"),
    );
    let records = signed.zone.record_count();
    let p = publisher();
    p.set_keys(keyring(vec![lib_key(&key.name, &key.secret)]));
    p.publish(Arc::new(Served::new(signed.zone, vec![acl_key(&key.name)])));
    // a second zone, allowed by address
    let small = sign(
        "addr.test.",
        "$ORIGIN addr.test.\n$TTL 300\n@ SOA ns hm 7 3600 600 86400 300\n@ NS ns\nns A 127.0.0.1\n",
        Denial::Nsec,
        &tmp.join("keys"),
    );
    p.publish(Arc::new(Served::new(
        small.zone,
        vec![acl_addr("127.0.0.1")],
    )));
    let r = start(p);

    // signed AXFR: many messages, all verified by dig, the whole zone
    let text = dig_xfr(r.port, Some(&key), "AXFR");
    assert!(!axfr_failed(&text), "{text}");
    assert!(
        !text.contains("Couldn't verify") && !text.contains("tsig verify failure"),
        "{text}"
    );
    let (n, msgs, bytes) = xfr_size(&text).unwrap_or_else(|| panic!("no XFR size in {text}"));
    assert_eq!(n, records + 1, "every record plus the closing SOA");
    assert!(bytes > 65536 && msgs > 4, "{msgs} messages, {bytes} bytes");
    let file = tmp.join("axfr.zone");
    axfr_to_file(&text, &file);
    verify_all(ZONE, &file);

    // every message carries a TSIG, and the chain verifies with our verifier too
    let lib = lib_key(&key.name, &key.secret);
    let mut q = build_query(4242, 0, &name("example.test."), t::AXFR, None);
    let mac = sign_request(&mut q, &lib, now());
    let msgs_raw = read_transfer(r.port, &q);
    assert!(msgs_raw.len() > 4);
    let mut v = ResponseVerifier::new(Arc::new(lib), mac);
    for raw in &msgs_raw {
        let m = Message::parse(raw).expect("parse");
        assert!(m.tsig.is_some(), "unsigned transfer message");
        v.verify(raw, &m, now())
            .unwrap_or_else(|e| panic!("TSIG chain: {e}"));
    }
    v.finish().expect("last message signed");

    // refused: no key, wrong secret, unknown key
    let text = dig_xfr(r.port, None, "AXFR");
    assert!(
        axfr_failed(&text) && text.contains("Transfer failed"),
        "{text}"
    );
    let wrong = TsigKey::generate("xfr-key");
    assert!(axfr_failed(&dig_xfr(r.port, Some(&wrong), "AXFR")));
    let unknown = TsigKey::generate("other-key");
    assert!(axfr_failed(&dig_xfr(r.port, Some(&unknown), "AXFR")));

    // IXFR: up to date → one SOA; older serial → the whole zone (AXFR-style, RFC 1995 §4)
    let text = dig_xfr(r.port, Some(&key), "IXFR=1");
    assert!(!text.contains("Transfer failed"), "{text}");
    let (n, _, _) = xfr_size(&text).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(n, 1, "{text}");
    let text = dig_xfr(r.port, Some(&key), "IXFR=0");
    let (n, _, _) = xfr_size(&text).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(n, records + 1, "{}", &text[..text.len().min(2000)]);

    // address ACL: allowed without a key
    let text = dig(&[
        "@127.0.0.1",
        "-p",
        &r.port.to_string(),
        "+time=5",
        "+tries=1",
        "addr.test",
        "AXFR",
    ]);
    assert!(!axfr_failed(&text), "{text}");
}

/// Sends `query` over TCP and reads messages until the second SOA.
fn read_transfer(port: u16, query: &[u8]) -> Vec<Vec<u8>> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut frame = (query.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(query);
    s.write_all(&frame).expect("send");
    let mut out = Vec::new();
    let mut soas = 0;
    while soas < 2 {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).expect("length");
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).expect("message");
        let m = Message::parse(&buf).unwrap_or_else(|e| panic!("unparsable message: {e}"));
        soas += m.answers.iter().filter(|r| r.rtype == t::SOA).count();
        out.push(buf);
        assert!(out.len() < 10_000, "transfer does not end");
    }
    out
}

#[test]
fn named_secondary_transfers_validates_and_follows_notify() {
    require!(
        "named",
        "dig",
        "ldns-verify-zone",
        "dnssec-verify",
        "kzonecheck"
    );
    let tmp = TempDir::new("pub-named");
    let key = TsigKey::generate("xfr-key");
    let keys = tmp.join("keys");
    let v1 = sign("example.test.", &zone_text(1, 1500), Denial::Nsec, &keys);
    let p = publisher();
    p.set_keys(keyring(vec![lib_key(&key.name, &key.secret)]));
    p.publish(Arc::new(Served::new(v1.zone, vec![acl_key(&key.name)])));
    let r = start(p.clone());

    let sec = NamedSecondary::builder(r.port, &key).zone(ZONE).start(&tmp);
    sec.wait_serial(ZONE, 1, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        sec.proc().log().contains("Transfer completed"),
        "{}",
        sec.proc().log_tail(40)
    );
    let file = tmp.join("named-copy-1.zone");
    axfr_to_file(&sec.axfr(ZONE), &file);
    verify_all(ZONE, &file);

    // a new serial, then NOTIFY (TSIG-signed): named answers, refreshes and transfers it
    let v2 = sign("example.test.", &zone_text(2, 1600), Denial::Nsec, &keys);
    p.publish(Arc::new(Served::new(v2.zone, vec![acl_key(&key.name)])));
    let target: std::net::SocketAddr = format!("127.0.0.1:{}", sec.port()).parse().expect("addr");
    let handle = {
        let _rt = r.enter();
        p.notify(
            &name("example.test."),
            vec![target],
            Some(Arc::new(lib_key(&key.name, &key.secret))),
        )
        .expect("notify task")
    };
    let outcomes = r.block_on(handle).expect("notify task ran");
    assert_eq!(
        outcomes,
        vec![Outcome::Answered { target, rcode: 0 }],
        "{}",
        sec.proc().log_tail(30)
    );
    sec.wait_serial(ZONE, 2, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let log = sec.proc().log();
    assert!(
        log.contains("notify from 127.0.0.1"),
        "{}",
        sec.proc().log_tail(40)
    );
    let file = tmp.join("named-copy-2.zone");
    axfr_to_file(&sec.axfr(ZONE), &file);
    verify_all(ZONE, &file);
    assert!(read_file(&file).contains("host01599.example.test."));
}
