//! Malformed and unusual requests at the network level: garbage, truncated headers, compression
//! loops, responses, unknown opcodes, EDNS versions, wrong classes, transfers over UDP, NOTIFY
//! in, TCP framing abuse and idle connections. The server must answer FORMERR/NOTIMP/REFUSED/
//! BADVERS or stay silent, never panic, and keep answering dig afterwards.

mod common;
#[path = "publisher_support.rs"]
mod support;

use common::*;
use signet::clock::SystemClock;
use signet::dns::message::{build_query, opcode, rcode, Edns, Header, Message};
use signet::dns::t;
use signet::publisher::{NotifyIn, Publisher, Served};
use signet::signer::Denial;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

const TEXT: &str = r#"$ORIGIN example.test.
$TTL 300
@     SOA ns1 hostmaster 5 3600 600 86400 300
@     NS  ns1
ns1   A   127.0.0.1
www   A   192.0.2.2
"#;

struct Env {
    _tmp: TempDir,
    r: Running,
    notifies: tokio::sync::mpsc::Receiver<NotifyIn>,
}

fn env(label: &str) -> Env {
    let tmp = TempDir::new(label);
    let signed = sign(ORIGIN, TEXT, Denial::Nsec, &tmp.join("keys"));
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let p = Arc::new(Publisher::new(Arc::new(SystemClock)).with_notify_hook(tx));
    p.publish(Arc::new(
        Served::new(signed.zone, vec![acl_addr("127.0.0.1")])
            .with_allow_notify(vec![acl_addr("127.0.0.1")]),
    ));
    Env {
        _tmp: tmp,
        r: start(p),
        notifies: rx,
    }
}

fn udp(port: u16) -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    s
}

/// Sends one datagram; the answer, if one comes within 500 ms.
fn ask(port: u16, msg: &[u8]) -> Option<Vec<u8>> {
    let s = udp(port);
    s.send(msg).expect("send");
    let mut buf = vec![0u8; 65535];
    match s.recv(&mut buf) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

fn answer_of(port: u16, msg: &[u8]) -> Message {
    let a = ask(port, msg).unwrap_or_else(|| panic!("no answer to {msg:?}"));
    Message::parse(&a).unwrap_or_else(|e| panic!("unparsable answer {a:?}: {e}"))
}

fn query(id: u16, op: u8, qname: &str, qtype: u16) -> Vec<u8> {
    build_query(id, op, &name(qname), qtype, None)
}

fn still_alive(port: u16) {
    let d = dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        "+time=2",
        "+tries=1",
        "www.example.test",
        "A",
    ]);
    assert!(
        d.contains("status: NOERROR") && d.contains("192.0.2.2"),
        "{d}"
    );
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn malformed_and_unusual_requests() {
    require!("dig");
    let e = env("pub-robust");
    let port = e.r.port;

    // shorter than a header: silence
    assert!(ask(port, &[1, 2, 3, 4, 5]).is_none());
    // a response (QR set): silence, never answer an answer
    let mut resp = query(7, opcode::QUERY, "www.example.test.", t::A);
    resp[2] |= 0x80;
    assert!(ask(port, &resp).is_none());
    // header claims a question that is not there: FORMERR with the ID echoed
    let m = answer_of(port, &[0xab, 0xcd, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!((m.header.id, m.rcode()), (0xabcd, rcode::FORMERR));
    assert!(m.header.qr());
    // compression loop in the question name
    let mut lp = vec![0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    lp.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    assert_eq!(answer_of(port, &lp).rcode(), rcode::FORMERR);
    // forward pointer, bad label type, trailing bytes
    let mut fp = vec![0, 10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    fp.extend_from_slice(&[0xc0, 20, 0, 1, 0, 1]);
    assert_eq!(answer_of(port, &fp).rcode(), rcode::FORMERR);
    let mut bl = vec![0, 11, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    bl.extend_from_slice(&[0x40, 0, 1, 0, 1]);
    assert_eq!(answer_of(port, &bl).rcode(), rcode::FORMERR);
    let mut tr = query(12, opcode::QUERY, "www.example.test.", t::A);
    tr.push(0);
    assert_eq!(answer_of(port, &tr).rcode(), rcode::FORMERR);
    // two questions
    let mut two = query(13, opcode::QUERY, "www.example.test.", t::A);
    two[5] = 2;
    two.extend_from_slice(&[3, b'w', b'w', b'w', 0xc0, 16, 0, 1, 0, 1]);
    assert_eq!(answer_of(port, &two).rcode(), rcode::FORMERR);
    // unknown opcodes: NOTIMP
    for op in [opcode::IQUERY, opcode::STATUS, 3, 15] {
        let m = answer_of(port, &query(20, op, "example.test.", t::SOA));
        assert_eq!(m.rcode(), rcode::NOTIMP, "opcode {op}");
        assert_eq!(m.header.opcode(), op);
    }
    // UPDATE of a zone without `update` (issue 7): REFUSED
    let m = answer_of(port, &query(21, opcode::UPDATE, "example.test.", t::SOA));
    assert_eq!(m.rcode(), rcode::REFUSED);
    assert_eq!(m.header.opcode(), opcode::UPDATE);
    // EDNS version 1: BADVERS with an OPT of version 0
    let e1 = Edns {
        udp_size: 1232,
        version: 1,
        ..Edns::default()
    };
    let m = answer_of(
        port,
        &build_query(21, 0, &name("www.example.test."), t::A, Some(&e1)),
    );
    assert_eq!(m.rcode(), rcode::BADVERS);
    assert_eq!(m.edns.as_ref().map(|e| e.version), Some(0));
    // class CH, a name outside our zones: REFUSED
    let mut ch = query(22, opcode::QUERY, "version.bind.", t::TXT);
    let l = ch.len();
    ch[l - 1] = 3;
    assert_eq!(answer_of(port, &ch).rcode(), rcode::REFUSED);
    assert_eq!(
        answer_of(port, &query(23, 0, "www.example.org.", t::A)).rcode(),
        rcode::REFUSED
    );
    // meta types as a question
    assert_eq!(
        answer_of(port, &query(24, 0, "example.test.", t::OPT)).rcode(),
        rcode::FORMERR
    );
    // AXFR over UDP: FORMERR (as BIND); IXFR over UDP: the SOA alone
    assert_eq!(
        answer_of(port, &query(25, 0, "example.test.", t::AXFR)).rcode(),
        rcode::FORMERR
    );
    let m = answer_of(port, &query(26, 0, "example.test.", t::IXFR));
    assert_eq!(m.rcode(), rcode::NOERROR);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].rtype, t::SOA);

    // NOTIFY in: unknown zone refused; served zone from an allowed address accepted and handed
    // to the loader's channel
    let m = answer_of(port, &query(30, opcode::NOTIFY, "example.org.", t::SOA));
    assert_eq!(m.rcode(), rcode::REFUSED);
    let m = answer_of(port, &query(31, opcode::NOTIFY, "example.test.", t::SOA));
    assert_eq!(m.rcode(), rcode::NOERROR);
    assert!(m.header.aa() && m.header.opcode() == opcode::NOTIFY);
    let mut rx = e.notifies;
    let got = rx.try_recv().expect("the NOTIFY reached the hook");
    assert_eq!(got.zone, name("example.test."));

    // random bytes and mutated queries: an answer, when there is one, is a well-formed response
    let s = udp(port);
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut rng = Rng(0x5151_f00d);
    let base = query(40, 0, "www.example.test.", t::A);
    let mut answered = 0;
    let mut buf = vec![0u8; 65535];
    for batch in 0..60 {
        for i in 0..50 {
            let pkt: Vec<u8> = if (batch + i) % 2 == 0 {
                let len = (rng.next() % 80) as usize;
                (0..len).map(|_| rng.next() as u8).collect()
            } else {
                let mut b = base.clone();
                for _ in 0..1 + rng.next() % 3 {
                    let at = (rng.next() as usize) % b.len();
                    b[at] = rng.next() as u8;
                }
                b[2] &= 0x7f; // keep QR clear so that most get an answer
                b
            };
            s.send(&pkt).expect("send");
        }
        while let Ok(n) = s.recv(&mut buf) {
            answered += 1;
            let h = Header::peek(&buf[..n]).expect("an answer has a header");
            assert!(h.qr(), "answer without QR");
            if let Err(err) = Message::parse(&buf[..n]) {
                panic!("our own answer does not parse: {err}: {:?}", &buf[..n]);
            }
        }
    }
    assert!(answered > 1000, "only {answered} answers");
    still_alive(port);
}

#[test]
fn tcp_framing_abuse_and_idle_timeout() {
    require!("dig");
    let e = env("pub-tcp");
    let port = e.r.port;
    // garbage in a frame: FORMERR, and the connection goes on to answer the next query
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let send = |s: &mut TcpStream, m: &[u8]| {
        let mut f = (m.len() as u16).to_be_bytes().to_vec();
        f.extend_from_slice(m);
        s.write_all(&f).expect("write");
    };
    let recv = |s: &mut TcpStream| -> Message {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).expect("length");
        let mut b = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut b).expect("body");
        Message::parse(&b).expect("parse")
    };
    send(&mut s, &[0, 77, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12]);
    let m = recv(&mut s);
    assert_eq!((m.header.id, m.rcode()), (77, rcode::FORMERR));
    send(&mut s, &query(78, 0, "www.example.test.", t::A));
    let m = recv(&mut s);
    assert_eq!((m.header.id, m.rcode(), m.answers.len()), (78, 0, 1));
    // pipelined queries are answered in order
    let mut both = Vec::new();
    for id in [90u16, 91] {
        let q = query(id, 0, "www.example.test.", t::A);
        both.extend_from_slice(&(q.len() as u16).to_be_bytes());
        both.extend_from_slice(&q);
    }
    s.write_all(&both).expect("write");
    assert_eq!(recv(&mut s).header.id, 90);
    assert_eq!(recv(&mut s).header.id, 91);
    // a frame announced but cut short, then the peer goes away: nothing breaks
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.write_all(&[0x01, 0x00, 1, 2, 3]).expect("write");
    drop(c);
    // an idle connection is closed by the server after TCP_IDLE_TIMEOUT
    let mut idle = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let started = Instant::now();
    let mut b = [0u8; 1];
    let n = idle.read(&mut b).unwrap_or(0);
    let waited = started.elapsed();
    assert_eq!(n, 0, "idle connection not closed");
    let limit = signet::publisher::server::TCP_IDLE_TIMEOUT;
    assert!(
        waited >= limit - Duration::from_secs(1) && waited < limit + Duration::from_secs(5),
        "closed after {waited:?}"
    );
    still_alive(port);
}
