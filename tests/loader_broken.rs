//! Broken transfers: a real multi-message AXFR captured from knotd is replayed by a small
//! tokio TCP server in this test, which re-signs it for our query (TSIG on every message, or
//! only on some as RFC 8945 §5.3.1 allows) and then misbehaves: closes the connection before
//! the last message or inside it, stalls, or leaves the last message unsigned. The client must
//! return an error in each case, never a zone.

mod common;

use common::{KnotPrimary, TempDir, TsigKey};
use signet::auth::tsig::{sign_request, verify_request, ResponseSigner};
use signet::auth::{Key, Keyring};
use signet::config::TsigAlgorithm;
use signet::dns::message::{build_query, Message};
use signet::dns::name::Name;
use signet::dns::rdata;
use signet::dns::rtype::{class, t};
use signet::loader::{transfer, Fetched, Limits, XfrError};
use signet::zone::data::Zone;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ZONE: &str = "big.test";

fn origin() -> Name {
    Name::parse("big.test.", None).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn secret(k: &TsigKey) -> Vec<u8> {
    data_encoding::BASE64.decode(k.secret.as_bytes()).unwrap()
}

fn signet_key(k: &TsigKey) -> Key {
    Key::new(
        Name::parse(&k.name, Some(&Name::root())).unwrap(),
        TsigAlgorithm::HmacSha256,
        &secret(k),
    )
}

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

/// A zone of about 200 KiB: several transfer messages.
fn big_zone_text() -> String {
    let mut s = String::from(
        "$ORIGIN big.test.\n@ 3600 IN SOA ns1 hostmaster 42 3600 600 86400 300\n\
         @ 3600 IN NS ns1\nns1 3600 IN A 192.0.2.1\n",
    );
    for i in 0..3000 {
        s.push_str(&format!(
            "host{i} 300 IN A 10.0.{}.{}\nhost{i} 300 IN TXT \"record number {i} of the big zone\"\n",
            i / 256,
            i % 256
        ));
    }
    s
}

/// Raw AXFR messages from knotd (TSIG records included), read until the closing SOA, with a
/// plain blocking socket: independent of the client under test.
fn capture(port: u16, key: &Key) -> Vec<Vec<u8>> {
    let mut q = build_query(7, 0, &origin(), t::AXFR, None);
    sign_request(&mut q, key, now());
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    s.write_all(&framed).unwrap();
    let mut msgs = Vec::new();
    let mut soas = 0;
    while soas < 2 {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut m).unwrap();
        let parsed = Message::parse(&m).unwrap();
        assert_eq!(parsed.rcode(), 0, "knotd refused the capture AXFR");
        soas += parsed
            .answers
            .iter()
            .filter(|r| r.rtype == t::SOA && r.owner == origin())
            .count();
        msgs.push(m);
    }
    msgs
}

/// `m` without its TSIG record, with ID `id`: the message as the primary built it.
fn unsigned(m: &[u8], id: u16) -> Vec<u8> {
    let parsed = Message::parse(m).unwrap();
    let mut v = match &parsed.tsig {
        Some(found) => {
            let mut v = m[..found.offset].to_vec();
            let ar = u16::from_be_bytes([v[10], v[11]]) - 1;
            v[10..12].copy_from_slice(&ar.to_be_bytes());
            v
        }
        None => m.to_vec(),
    };
    v[0..2].copy_from_slice(&id.to_be_bytes());
    v
}

/// Appends a TSIG record whose MAC covers the prior MAC, the unsigned messages since, and this
/// message (RFC 8945 §4.3.2), computed here with ring directly. Returns the MAC.
fn sign_after(msg: &mut Vec<u8>, key: &TsigKey, prior: &[u8], pending: &[Vec<u8>]) -> Vec<u8> {
    let time = now();
    let hk = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret(key));
    let mut ctx = ring::hmac::Context::with_key(&hk);
    ctx.update(&(prior.len() as u16).to_be_bytes());
    ctx.update(prior);
    for p in pending {
        ctx.update(p);
    }
    ctx.update(msg);
    ctx.update(&time.to_be_bytes()[2..8]);
    ctx.update(&300u16.to_be_bytes());
    let mac = ctx.sign().as_ref().to_vec();
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let ar = u16::from_be_bytes([msg[10], msg[11]]) + 1;
    msg[10..12].copy_from_slice(&ar.to_be_bytes());
    let kname = Name::parse(&key.name, Some(&Name::root())).unwrap();
    msg.extend_from_slice(kname.as_wire());
    msg.extend_from_slice(&t::TSIG.to_be_bytes());
    msg.extend_from_slice(&class::ANY.to_be_bytes());
    msg.extend_from_slice(&0u32.to_be_bytes());
    let mut rd = Name::parse("hmac-sha256.", None)
        .unwrap()
        .as_wire()
        .to_vec();
    rd.extend_from_slice(&time.to_be_bytes()[2..8]);
    rd.extend_from_slice(&300u16.to_be_bytes());
    rd.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    rd.extend_from_slice(&mac);
    rd.extend_from_slice(&id.to_be_bytes());
    rd.extend_from_slice(&[0, 0, 0, 0]);
    msg.extend_from_slice(&(rd.len() as u16).to_be_bytes());
    msg.extend_from_slice(&rd);
    mac
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Everything, every message signed: the control case.
    Whole,
    /// Everything, TSIG on the first, every third and the last message only.
    Sparse,
    /// Close the connection before the last message.
    CloseBeforeLast,
    /// Close the connection in the middle of the last message.
    CloseInsideLast,
    /// Send the first message, then nothing (connection held open).
    Stall,
    /// Every message but the last signed.
    LastUnsigned,
}

/// Serves one transfer of `captured` on a fresh port, misbehaving as `mode` says.
async fn replay(captured: Arc<Vec<Vec<u8>>>, key: TsigKey, mode: Mode) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let mut len = [0u8; 2];
        if s.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
        if s.read_exact(&mut q).await.is_err() {
            return;
        }
        let qm = Message::parse(&q).unwrap();
        let mut ring = Keyring::new();
        ring.insert(signet_key(&key));
        let verified = verify_request(&q, &qm, &ring, now())
            .expect("the client's TSIG verifies")
            .expect("the client signs");
        let mut signer = ResponseSigner::new(&verified);
        let last = captured.len() - 1;
        let mut prior = verified.mac.clone();
        let mut pending: Vec<Vec<u8>> = Vec::new();
        for (i, m) in captured.iter().enumerate() {
            let mut out = unsigned(m, qm.header.id);
            match mode {
                Mode::Sparse => {
                    if i == 0 {
                        // the first message also covers the TSIG variables: the library signer
                        signer.sign(&mut out, now());
                        prior = Message::parse(&out).unwrap().tsig.unwrap().record.mac;
                    } else if i == last || i % 3 == 0 {
                        prior = sign_after(&mut out, &key, &prior, &pending);
                        pending.clear();
                    } else {
                        pending.push(out.clone());
                    }
                }
                Mode::LastUnsigned if i == last => {}
                _ => signer.sign(&mut out, now()),
            }
            let mut framed = (out.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&out);
            match mode {
                Mode::CloseBeforeLast if i == last => return,
                Mode::CloseInsideLast if i == last => {
                    let _ = s.write_all(&framed[..framed.len() / 2]).await;
                    return;
                }
                Mode::Stall if i == 1 => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                }
                _ => {}
            }
            if s.write_all(&framed).await.is_err() {
                return;
            }
        }
        // let the client close first
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_stalled_and_partly_signed_transfers() {
    require!("knotd", "knotc", "dig");
    let tmp = TempDir::new("loader-broken");
    let tk = TsigKey::generate("xfr-key");
    let key = Arc::new(signet_key(&tk));
    let text = big_zone_text();
    let knot = KnotPrimary::builder(&tk).zone(ZONE, &text).start(&tmp);
    let captured = Arc::new(capture(knot.port(), &key));
    assert!(
        captured.len() >= 3,
        "the zone should need several messages, got {}",
        captured.len()
    );
    let limits = Limits::default();
    // the real thing, through the client
    let direct = match transfer(
        SocketAddr::from(([127, 0, 0, 1], knot.port())),
        &origin(),
        Some(&key),
        None,
        false,
        &limits,
    )
    .await
    {
        Ok(Fetched::Full { zone, .. }) => zone,
        other => panic!("{other:?}"),
    };
    assert_eq!(direct.record_count(), 3 + 6000);
    drop(knot);

    // the replay itself is faithful: whole, and with unsigned intermediate messages
    for mode in [Mode::Whole, Mode::Sparse] {
        let at = replay(captured.clone(), tk.clone(), mode).await;
        match transfer(at, &origin(), Some(&key), None, false, &limits).await {
            Ok(Fetched::Full { zone, .. }) => assert_eq!(norm(&zone), norm(&direct), "{mode:?}"),
            other => panic!("{mode:?}: {other:?}"),
        }
    }

    // closed before the last message, or inside it: an error, not a zone
    for mode in [Mode::CloseBeforeLast, Mode::CloseInsideLast] {
        let at = replay(captured.clone(), tk.clone(), mode).await;
        let e = transfer(at, &origin(), Some(&key), None, false, &limits)
            .await
            .unwrap_err();
        assert!(matches!(e, XfrError::Closed(_)), "{mode:?}: {e}");
        eprintln!("{mode:?}: {e}");
    }

    // the last message unsigned: refused (RFC 8945 §5.3.1)
    let at = replay(captured.clone(), tk.clone(), Mode::LastUnsigned).await;
    let e = transfer(at, &origin(), Some(&key), None, false, &limits)
        .await
        .unwrap_err();
    assert!(matches!(e, XfrError::Tsig(_)), "{e}");
    eprintln!("LastUnsigned: {e}");

    // a stalled peer: the per-message idle timeout fires
    let at = replay(captured.clone(), tk.clone(), Mode::Stall).await;
    let short = Limits {
        idle_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let started = Instant::now();
    let e = transfer(at, &origin(), Some(&key), None, false, &short)
        .await
        .unwrap_err();
    assert!(matches!(e, XfrError::Timeout { .. }), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    eprintln!("Stall: {e}");
    // ... and max_duration bounds the whole transfer
    let at = replay(captured.clone(), tk.clone(), Mode::Stall).await;
    let short = Limits {
        max_duration: Duration::from_millis(700),
        ..Limits::default()
    };
    let e = transfer(at, &origin(), Some(&key), None, false, &short)
        .await
        .unwrap_err();
    assert!(matches!(e, XfrError::Limit(_)), "{e}");
    eprintln!("Stall with max_duration: {e}");
}
