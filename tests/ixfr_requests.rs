//! IXFR requests to signet's publisher at the network level (RFC 1995): dig and a raw TCP client
//! that checks the TSIG chain of every message. A zone goes through four versions (one of them
//! adds hundreds of names, so that the incremental answer spans many messages); the publisher
//! serves the last one with the journal's history.
//!
//! | request | answer |
//! |---|---|
//! | IXFR from a journaled serial (TCP) | one condensed difference sequence, many messages, TSIG on each; applied to the old version it gives the served one |
//! | IXFR from the previous serial | that one changeset |
//! | IXFR from a serial the journal does not hold | the whole zone (AXFR-style, RFC 1995 §4) |
//! | IXFR from a serial newer than ours, or ours | the SOA alone |
//! | IXFR over UDP | the SOA alone, whatever the serial (as BIND 9) |
//! | IXFR without a key, with a wrong secret, with an unknown key | refused |

mod common;
#[path = "ixfr_support.rs"]
mod ixfr_support;
#[path = "publisher_support.rs"]
mod support;

use common::*;
use ixfr_support::{Model, Rng, ZoneSigner};
use signet::auth::tsig::{sign_request, ResponseVerifier};
use signet::dns::message::{Header, Message, MessageWriter, Section, MAX_MESSAGE_LEN};
use signet::dns::record::Record;
use signet::dns::t;
use signet::journal::{apply, diff, same_content, Changeset, Journal, JournalLimits};
use signet::publisher::Served;
use signet::signer::Denial;
use signet::zone::data::{soa_field, Zone};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;
use support::*;

const ZONE: &str = "example.test";

struct Setup {
    _tmp: TempDir,
    running: Running,
    key: TsigKey,
    versions: Vec<Zone>,
}

fn setup() -> Setup {
    let tmp = TempDir::new("ixfr-req");
    let key = TsigKey::generate("xfr-key");
    let signer = ZoneSigner::new(Denial::Nsec);
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut model = Model::new(200);
    let mut versions = vec![signer.sign(&model)];
    let mut journal = Journal::open(
        &tmp.subdir("journal"),
        &name("example.test."),
        JournalLimits::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for step in 0..3 {
        if step == 1 {
            for i in 0..600 {
                model.put(&format!("bulk{i:04}"), "A", 300, "198.51.100.7");
            }
            model.serial += 1;
        } else {
            model.edit(&mut rng);
        }
        let next = signer.sign(&model);
        let cs = diff(&versions[versions.len() - 1], &next);
        journal.append(&cs).unwrap_or_else(|e| panic!("{e}"));
        versions.push(next);
    }
    let p = publisher();
    p.set_keys(keyring(vec![lib_key(&key.name, &key.secret)]));
    p.publish(Arc::new(
        Served::new(versions[3].clone(), vec![acl_key(&key.name)]).with_history(journal.history()),
    ));
    let running = start(p);
    Setup {
        _tmp: tmp,
        running,
        key,
        versions,
    }
}

/// An IXFR query for `serial` (SOA in the authority section, RFC 1995 §3).
fn ixfr_query(id: u16, serial: u32) -> Vec<u8> {
    let origin = name("example.test.");
    let mut soa = name("ns1.example.test.").as_wire().to_vec();
    soa.extend_from_slice(name("hostmaster.example.test.").as_wire());
    for x in [serial, 3600, 600, 86400, 300] {
        soa.extend_from_slice(&x.to_be_bytes());
    }
    let mut w = MessageWriter::new(Header { id, flags: 0 }, MAX_MESSAGE_LEN);
    w.question(&origin, t::IXFR, 1).expect("question");
    w.record(Section::Authority, &origin, t::SOA, 1, 300, &soa)
        .expect("authority");
    w.finish()
}

/// Sends a signed IXFR over TCP and reads the whole answer: every message is checked to carry
/// a TSIG that verifies in the chain. Returns (answer records, message count).
fn raw_ixfr(port: u16, key: &TsigKey, serial: u32) -> (Vec<Record>, usize) {
    let lib = lib_key(&key.name, &key.secret);
    let mut q = ixfr_query(4711, serial);
    let mac = sign_request(&mut q, &lib, now());
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut frame = (q.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(&q);
    s.write_all(&frame).expect("send");
    let mut v = ResponseVerifier::new(Arc::new(lib), mac);
    let mut records: Vec<Record> = Vec::new();
    let mut messages = 0;
    loop {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).expect("length");
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).expect("message");
        let m = Message::parse(&buf).unwrap_or_else(|e| panic!("unparsable message: {e}"));
        assert_eq!(m.header.id, 4711);
        assert_eq!(m.header.rcode(), 0, "rcode");
        assert!(m.tsig.is_some(), "message {messages} without TSIG");
        v.verify(&buf, &m, now())
            .unwrap_or_else(|e| panic!("TSIG chain at message {messages}: {e}"));
        messages += 1;
        records.extend(m.answers);
        if complete(&records) {
            break;
        }
        assert!(messages < 10_000, "the transfer does not end");
    }
    v.finish().expect("last message signed");
    (records, messages)
}

fn serial_of(r: &Record) -> Option<u32> {
    (r.rtype == t::SOA)
        .then(|| soa_field(&r.rdata, 0))
        .flatten()
}

/// Whether an IXFR answer is complete: the SOA alone, or (incremental) the current SOA three
/// times, or (AXFR-style) twice, the last record being one of them.
fn complete(records: &[Record]) -> bool {
    let Some(cur) = records.first().and_then(serial_of) else {
        return false;
    };
    if records.len() == 1 {
        return true;
    }
    let incremental = records[1].rtype == t::SOA;
    let n = records.iter().filter(|r| serial_of(r) == Some(cur)).count();
    records.last().and_then(serial_of) == Some(cur) && n == if incremental { 3 } else { 2 }
}

/// The difference sequences of an incremental answer.
fn sequences(records: &[Record]) -> Vec<Changeset> {
    let last = records.len() - 1;
    let mut out: Vec<Changeset> = Vec::new();
    let mut adding = true;
    for r in &records[1..last] {
        if let Some(s) = serial_of(r) {
            if adding {
                out.push(Changeset {
                    from: s,
                    to: 0,
                    removed: vec![r.clone()],
                    added: vec![],
                });
            } else if let Some(c) = out.last_mut() {
                c.to = s;
                c.added.push(r.clone());
            }
            adding = !adding;
        } else if let Some(c) = out.last_mut() {
            if adding {
                c.added.push(r.clone());
            } else {
                c.removed.push(r.clone());
            }
        }
    }
    out
}

fn dig_ixfr(port: u16, key: Option<&TsigKey>, serial: u32, extra: &[&str]) -> String {
    let mut args = vec![
        "@127.0.0.1".to_string(),
        "-p".to_string(),
        port.to_string(),
        "+time=10".to_string(),
        "+tries=1".to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    if let Some(k) = key {
        args.push("-y".into());
        args.push(k.dig_arg());
    }
    args.push(ZONE.into());
    args.push(format!("IXFR={serial}"));
    dig(&args)
}

/// `;; XFR size: N records (messages M, ...)` from dig's stats.
fn xfr_size(text: &str) -> Option<(usize, usize)> {
    let line = text.lines().find(|l| l.starts_with(";; XFR size:"))?;
    let nums: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    Some((*nums.first()?, *nums.get(1)?))
}

#[test]
fn incremental_answers_over_tcp() {
    require!("dig");
    let s = setup();
    let port = s.running.port;
    let v = &s.versions;

    // from the first version: one condensed sequence over many messages, each signed
    let (records, messages) = raw_ixfr(port, &s.key, 1);
    assert!(messages > 3, "{messages} messages");
    let seqs = sequences(&records);
    assert_eq!(seqs.len(), 1, "condensed into one difference sequence");
    assert_eq!((seqs[0].from, seqs[0].to), (1, 4));
    let got = apply(&v[0], &seqs[0]).unwrap_or_else(|e| panic!("{e}"));
    assert!(same_content(&got, &v[3]));
    let direct = diff(&v[0], &v[3]);
    assert_eq!(seqs[0].record_count(), direct.record_count());

    // from the previous version: that changeset alone
    let (records, _) = raw_ixfr(port, &s.key, 3);
    let seqs = sequences(&records);
    assert_eq!(seqs.len(), 1);
    assert_eq!((seqs[0].from, seqs[0].to), (3, 4));
    assert_eq!(seqs[0], diff(&v[2], &v[3]));

    // dig agrees: an incremental transfer, verified TSIG, far fewer records than the zone
    let text = dig_ixfr(port, Some(&s.key), 3, &[]);
    assert!(!text.contains("Transfer failed"), "{text}");
    assert!(!text.contains("Couldn't verify"), "{text}");
    let (n, _) = xfr_size(&text).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(n, diff(&v[2], &v[3]).record_count() + 2, "{text}");
    let text = dig_ixfr(port, Some(&s.key), 1, &[]);
    let (n, m) = xfr_size(&text).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(n, diff(&v[0], &v[3]).record_count() + 2, "{text}");
    assert!(m > 3);
}

#[test]
fn fallbacks_and_refusals() {
    require!("dig");
    let s = setup();
    let port = s.running.port;
    let full = s.versions[3].record_count() + 1;

    // a serial we never had (older by RFC 1982): the whole zone, AXFR-style
    for serial in [0u32, 3_000_000_000] {
        let (records, _) = raw_ixfr(port, &s.key, serial);
        assert_eq!(records.len(), full, "from {serial}");
        assert_ne!(records[1].rtype, t::SOA);
    }
    // ours, or newer than ours: the SOA alone
    for serial in [4u32, 5, 1000] {
        let (records, _) = raw_ixfr(port, &s.key, serial);
        assert_eq!(records.len(), 1, "from {serial}");
        assert_eq!(serial_of(&records[0]), Some(4));
    }
    // UDP: the SOA alone whatever the serial; the client retries over TCP (RFC 1995 §2)
    for serial in [1u32, 3, 0] {
        let text = dig_ixfr(port, Some(&s.key), serial, &["+notcp"]);
        let soas = text
            .lines()
            .filter(|l| !l.starts_with(';') && l.contains("\tSOA\t"))
            .count();
        assert_eq!(soas, 1, "UDP IXFR={serial}:\n{text}");
        assert!(!text.contains("\tRRSIG\t"), "{text}");
    }
    // a stranger (no key), a wrong secret, an unknown key: refused
    let text = dig_ixfr(port, None, 1, &[]);
    assert!(
        text.contains("Transfer failed") || text.contains("REFUSED"),
        "{text}"
    );
    let wrong = TsigKey::generate("xfr-key");
    let text = dig_ixfr(port, Some(&wrong), 1, &[]);
    assert!(
        text.contains("Transfer failed") || text.contains("BADSIG") || text.contains("NOTAUTH"),
        "{text}"
    );
    let unknown = TsigKey::generate("other-key");
    let text = dig_ixfr(port, Some(&unknown), 1, &[]);
    assert!(
        text.contains("Transfer failed") || text.contains("BADKEY") || text.contains("NOTAUTH"),
        "{text}"
    );
}
