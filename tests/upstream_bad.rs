//! Bad input from upstream changes nothing that was good (issue 3, point 3 and 5): NOTIFY from a
//! stranger or without the configured key is refused; a NOTIFY storm causes at most a couple of
//! refreshes; a broken upstream zone (CNAME beside other data, data outside the zone, a serial
//! that went backwards) keeps the last good version served and says why; DNSSEC records of a
//! previous signer in the unsigned input are stripped with a log line.
//!
//! knotd and named refuse to load such broken zones themselves, so the "bad primary" here is
//! signet's own authoritative server (`Publisher`, a real DNS server on a real socket) serving
//! hand-built zones; the zone task under test talks to it over the network like to any primary.

mod common;

use common::*;
use signet::auth::{tsig, Key};
use signet::clock::{Clock, SimClock, SystemClock};
use signet::config::TsigAlgorithm;
use signet::dns::message::{opcode, Header, Message, MessageWriter};
use signet::dns::name::Name;
use signet::dns::rtype::{class, t};
use signet::publisher::{Publisher, Served};
use signet::zone::data::{Node, RRset, Zone};
use signet::zone::service::ZoneTask;
use std::net::UdpSocket;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const ZONE: &str = "example.net";

fn origin() -> Name {
    Name::parse("example.net.", None).unwrap()
}

fn good_zone(serial: u32) -> Zone {
    let text = format!(
        "$TTL 300\n@ SOA ns1 hostmaster {serial} 3600 600 604800 300\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.2\nalias CNAME www\n"
    );
    let p = signet::zonefile::parse_str(&text, std::path::Path::new("up"), &origin()).unwrap();
    signet::zonefile::zone_from_parsed(p, &origin()).unwrap().0
}

fn name(s: &str) -> Name {
    Name::parse(s, None).unwrap()
}

fn a(ip: [u8; 4]) -> RRset {
    RRset {
        rtype: t::A,
        ttl: 300,
        rdatas: vec![ip.to_vec()],
    }
}

fn conf(dir: &TempDir, port: u16, primary: u16, key: Option<&TsigKey>) -> std::path::PathBuf {
    let (tsig, tt) = match key {
        Some(k) => (k.signet_toml(), format!("transfer-tsig = \"{}\"", k.name)),
        None => (String::new(), String::new()),
    };
    dir.write(
        "signet.toml",
        format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\nstate-dir = \"{}\"\n{tsig}\n[keystore.files]\nbackend = \"files\"\ndirectory = \"{}\"\n[[zone]]\nname = \"{ZONE}\"\nprimaries = [\"127.0.0.1:{primary}\"]\n{tt}\n",
            dir.join("state").display(),
            dir.join("keys").display(),
        ),
    )
}

#[test]
fn bad_upstream_zones_keep_the_last_good_version() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = TempDir::new("up-bad");
        // the "primary": our own server on a free port
        let up = Arc::new(Publisher::new(Arc::new(SystemClock)));
        let server =
            signet::publisher::server::Server::bind(&["127.0.0.1:0".parse().unwrap()], up.clone())
                .await
                .unwrap();
        let uport = server.local_addrs()[0].port();
        let (_stop, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(server.run(stop_rx));
        let serve_up = |z: Zone| {
            up.publish(Arc::new(Served::new(
                z,
                vec![signet::config::AclEntry::Addr(
                    "127.0.0.1".parse().unwrap(),
                    32,
                )],
            )))
        };
        serve_up(good_zone(10));

        let cfgp = conf(&dir, 0, uport, None);
        let cfg = signet::config::load(&cfgp).unwrap();
        let clock = SimClock::new(SystemClock.now());
        let me = Arc::new(Publisher::new(Arc::new(clock.clone())));
        let (mut task, _st) = ZoneTask::new(
            Arc::new(cfg.clone()),
            cfg.zones[0].clone(),
            me.clone(),
            Arc::new(clock.clone()),
        )
        .unwrap();
        task.start();
        task.tick().await;
        let served_serial = || me.get(&origin()).and_then(|s| s.serial());
        let first = served_serial().expect("first transfer");
        assert_eq!(task.status().upstream_serial, Some(10));

        // CNAME beside other data
        let mut z = good_zone(11);
        z.nodes
            .entry(name("alias.example.net."))
            .or_default()
            .put(a([192, 0, 2, 9]));
        serve_up(z);
        let e = task
            .handle(signet::zone::status::ZoneCmdKind::Reload)
            .await
            .unwrap_err();
        assert!(e.contains("CNAME beside other data"), "{e}");
        assert_eq!(served_serial(), Some(first));
        assert_eq!(task.status().upstream_serial, Some(10));
        assert!(task.status().last_refresh_result.unwrap().contains("CNAME"));

        // data outside the zone
        let mut z = good_zone(12);
        let mut n = Node::default();
        n.put(a([192, 0, 2, 10]));
        z.nodes.insert(name("www.example.org."), n);
        serve_up(z);
        let e = task
            .handle(signet::zone::status::ZoneCmdKind::Reload)
            .await
            .unwrap_err();
        assert!(e.contains("outside"), "{e}");
        assert_eq!(served_serial(), Some(first));

        // serial went backwards
        serve_up(good_zone(9));
        let e = task
            .handle(signet::zone::status::ZoneCmdKind::Reload)
            .await
            .unwrap_err();
        assert!(e.contains("older than ours"), "{e}");
        assert_eq!(served_serial(), Some(first));
        assert_eq!(task.status().upstream_serial, Some(10));

        // DNSSEC records of a previous signer: stripped, the zone is signed with our keys
        let mut z = good_zone(13);
        let apex = z.nodes.get_mut(&origin()).unwrap();
        apex.put(RRset {
            rtype: t::DNSKEY,
            ttl: 300,
            rdatas: vec![signet::keystore::dnskey_rdata(257, 13, &[7u8; 64])],
        });
        apex.put(RRset {
            rtype: t::NSEC,
            ttl: 300,
            rdatas: vec![[name("ns1.example.net.").as_wire(), &[0, 1, 0x40][..]].concat()],
        });
        serve_up(z);
        let ok = task
            .handle(signet::zone::status::ZoneCmdKind::Reload)
            .await
            .unwrap();
        assert!(ok.contains("serial 13"), "{ok}");
        let served = me.get(&origin()).unwrap();
        let dnskeys = served
            .zone
            .nodes
            .get(&origin())
            .unwrap()
            .get(t::DNSKEY)
            .unwrap();
        assert!(
            !dnskeys.rdatas.iter().any(|k| k.ends_with(&[7u8; 64])),
            "a foreign DNSKEY survived"
        );
        assert!(signet::signer::verify::check_zone(&served.zone, clock.now(), true).is_empty());

        // upstream unreachable: the last good version stays
        drop(_stop);
        up.withdraw(&origin());
        let e = task
            .handle(signet::zone::status::ZoneCmdKind::Reload)
            .await
            .unwrap_err();
        assert!(!e.is_empty());
        assert!(me.get(&origin()).is_some());
    });
}

fn notify_msg(id: u16) -> Vec<u8> {
    let mut h = Header { id, flags: 0 };
    h.set_opcode(opcode::NOTIFY);
    h.set_aa(true);
    let mut w = MessageWriter::new(h, 512);
    w.question(&origin(), t::SOA, class::IN).unwrap();
    w.finish()
}

fn send(from: &str, port: u16, msg: &[u8]) -> Option<u16> {
    let s = UdpSocket::bind(format!("{from}:0")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.send_to(msg, ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 4096];
    let n = s.recv(&mut buf).ok()?;
    Some(Message::parse(&buf[..n]).ok()?.rcode())
}

#[test]
fn notify_acl_key_and_storm() {
    require!("knotd", "knotc", "dig");
    let dir = TempDir::new("up-notify");
    let key = TsigKey::generate("xfr-key");
    let port = free_port();
    let kport = free_port();
    let _knot = KnotPrimary::builder(&key)
        .zone(
            ZONE,
            "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 604800 300\n@ NS ns1\nns1 A 192.0.2.1\n",
        )
        .port(kport)
        .start(&dir);
    let c = conf(&dir, port, kport, Some(&key));
    let mut cmd = Command::new(signet_bin());
    cmd.arg("serve")
        .arg("-c")
        .arg(&c)
        .env("SIGNET_LOG", "signet=debug");
    let signet = Proc::spawn("signet", cmd, dir.path());
    wait_serial(port, ZONE, 1, Duration::from_secs(30)).unwrap();

    // a stranger (127.0.0.2 is not a primary), and a primary without the key: REFUSED
    assert_eq!(
        send("127.0.0.2", port, &notify_msg(1)),
        Some(5),
        "stranger's NOTIFY not refused"
    );
    assert_eq!(
        send("127.0.0.1", port, &notify_msg(2)),
        Some(5),
        "unsigned NOTIFY not refused"
    );
    // a NOTIFY for a zone we do not have: REFUSED
    let mut h = Header { id: 3, flags: 0 };
    h.set_opcode(opcode::NOTIFY);
    let mut w = MessageWriter::new(h, 512);
    w.question(&name("other.example."), t::SOA, class::IN)
        .unwrap();
    assert_eq!(send("127.0.0.1", port, &w.finish()), Some(5));

    // signed with the key from the primary's address: accepted
    let k = Key::new(
        Name::parse(&format!("{}.", key.name), None).unwrap(),
        TsigAlgorithm::HmacSha256,
        &data_encoding::BASE64.decode(key.secret.as_bytes()).unwrap(),
    );
    let refreshes = |log: &str| {
        log.lines()
            .filter(|l| l.contains("refresh: asking upstream"))
            .count()
    };
    let before = refreshes(&signet.log());
    let mut m = notify_msg(4);
    tsig::sign_request(&mut m, &k, SystemClock.now());
    assert_eq!(
        send("127.0.0.1", port, &m),
        Some(0),
        "signed NOTIFY from the primary not accepted"
    );

    // a storm: 500 signed NOTIFYs as fast as we can send them
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..500u16 {
        let mut m = notify_msg(100 + i);
        tsig::sign_request(&mut m, &k, SystemClock.now());
        s.send_to(&m, ("127.0.0.1", port)).unwrap();
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = refreshes(&signet.log());
    assert!(
        after - before <= 3,
        "{} refreshes for 501 NOTIFYs (expected at most a few)",
        after - before
    );
    assert!(after - before >= 1, "the accepted NOTIFY caused no refresh");
}
