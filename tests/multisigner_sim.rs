//! Multi-signer on the simulated clock (issue 7): a foreign ZSK injected by UPDATE into a zone
//! task stays in every version served over 70 simulated days while signet rolls its own ZSK
//! twice by lifetime and its KSK once by command (with a "parent" following signet's own CDS),
//! and across a restart of the zone task; it is never used to sign, signet's own keys never
//! take its key tag, and removing it by UPDATE takes it out of the next version. At every
//! version: `signer::verify::check_zone` and `kzonecheck -t` at the simulated time pass.

mod common;

use common::*;
use signet::clock::{Clock, SimClock, SystemClock};
use signet::dns::message::rcode;
use signet::dns::name::Name;
use signet::dns::record::Record;
use signet::dns::rtype::{class, t};
use signet::keystore::{dnskey_rdata, key_tag, KeyRole};
use signet::publisher::update::{UpdateJob, UpdateOutcome};
use signet::publisher::Publisher;
use signet::zone::service::ZoneTask;
use signet::zone::status::ZoneCmdKind;
use std::collections::BTreeSet;
use std::sync::Arc;

const ZONE: &str = "example.org";
const DAY: u64 = 86_400;

struct Sim {
    dir: TempDir,
    cfg: Arc<signet::config::Config>,
    task: ZoneTask,
    clock: SimClock,
    publisher: Arc<Publisher>,
    origin: Name,
    parent: BTreeSet<u16>,
    own_tags: BTreeSet<u16>,
    last_serial: Option<u32>,
    versions: usize,
    /// The foreign DNSKEY every version must carry (once injected).
    foreign: Option<Vec<u8>>,
    ctl: TsigKey,
}

impl Sim {
    fn new() -> Sim {
        Sim::with("ms-sim", "ed25519", "")
    }

    fn with(label: &str, alg: &str, update_extra: &str) -> Sim {
        let dir = TempDir::new(label);
        let port = free_port();
        let mut zone = String::from(
            "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 604800 300\n@ NS ns1\nns1 A 192.0.2.1\n",
        );
        for i in 0..10 {
            zone.push_str(&format!("h{i} A 198.51.100.{}\n", i + 1));
        }
        let zf = dir.write("zone.db", zone);
        let ctl = TsigKey::generate("ctl");
        let conf = dir.write(
            "signet.toml",
            format!(
                "[server]\nlisten = [\"127.0.0.1:{port}\"]\nstate-dir = \"{}\"\n{}\n[keystore.files]\nbackend = \"files\"\ndirectory = \"{}\"\n[policy.p]\nkeys = [{{ role = \"ksk\", algorithm = \"{alg}\", lifetime = \"unlimited\" }}, {{ role = \"zsk\", algorithm = \"{alg}\", lifetime = \"30d\" }}]\ndnskey-ttl = \"300s\"\nmax-zone-ttl = \"300s\"\npublish-safety = \"60s\"\nretire-safety = \"60s\"\nzone-propagation-delay = \"60s\"\nparent-ds-ttl = \"600s\"\nparent-propagation-delay = \"60s\"\npurge-keys = \"1d\"\n[[zone]]\nname = \"{ZONE}\"\npolicy = \"p\"\nfile = \"{}\"\nupdate = {{ keys = [\"ctl\"]{update_extra} }}\n",
                dir.join("state").display(),
                ctl.signet_toml(),
                dir.join("keys").display(),
                zf.display(),
            ),
        );
        let cfg = Arc::new(signet::config::load(&conf).unwrap());
        let clock = SimClock::new(SystemClock.now());
        let publisher = Arc::new(Publisher::new(Arc::new(clock.clone())));
        let task = Self::task(&cfg, &publisher, &clock);
        Sim {
            dir,
            cfg,
            task,
            clock,
            publisher,
            origin: Name::parse(&format!("{ZONE}."), None).unwrap(),
            parent: BTreeSet::new(),
            own_tags: BTreeSet::new(),
            last_serial: None,
            versions: 0,
            foreign: None,
            ctl,
        }
    }

    fn task(cfg: &Arc<signet::config::Config>, p: &Arc<Publisher>, clock: &SimClock) -> ZoneTask {
        let (mut task, _st) = ZoneTask::new(
            cfg.clone(),
            cfg.zones[0].clone(),
            p.clone(),
            Arc::new(clock.clone()),
        )
        .unwrap();
        task.start();
        task
    }

    async fn update(&mut self, updates: Vec<Record>) -> UpdateOutcome {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = UpdateJob {
            zone: self.origin.clone(),
            key: Name::parse("ctl.", None).unwrap(),
            source: "127.0.0.1:53000".parse().unwrap(),
            prereqs: Vec::new(),
            updates,
            reply: tx,
        };
        self.task.update(job).await;
        let out = rx.await.unwrap();
        self.observe().await;
        out
    }

    fn apex(&self) -> (Vec<Vec<u8>>, BTreeSet<u16>, BTreeSet<u16>, BTreeSet<u16>) {
        let served = self.publisher.get(&self.origin).expect("served");
        let apex = served.zone.nodes.get(&self.origin).expect("apex");
        let dnskeys = apex
            .get(t::DNSKEY)
            .map(|s| s.rdatas.clone())
            .unwrap_or_default();
        let signers = |rt: u16| -> BTreeSet<u16> {
            apex.sigs
                .iter()
                .filter(|s| s.covered == rt)
                .map(|s| u16::from_be_bytes([s.rdata[16], s.rdata[17]]))
                .collect()
        };
        let cds = apex
            .get(t::CDS)
            .map(|s| {
                s.rdatas
                    .iter()
                    .map(|r| u16::from_be_bytes([r[0], r[1]]))
                    .collect()
            })
            .unwrap_or_default();
        (dnskeys, signers(t::DNSKEY), signers(t::SOA), cds)
    }

    /// Checks a newly served version; the parent follows signet's own CDS.
    async fn observe(&mut self) {
        let Some(served) = self.publisher.get(&self.origin) else {
            return;
        };
        if served.serial() == self.last_serial {
            return;
        }
        self.last_serial = served.serial();
        self.versions += 1;
        let now = self.clock.now();
        let problems = signet::signer::verify::check_zone(&served.zone, now, true);
        assert!(problems.is_empty(), "at {now}: {problems:?}");
        let f = self.dir.join(format!("v{}.zone", self.versions));
        signet::zone::offline::write_zone_atomic(&f, &served.zone).unwrap();
        let r = kzonecheck_at(ZONE, &f, now);
        assert!(
            r.ok(),
            "version {} at {now}: kzonecheck: {r}",
            self.versions
        );
        let (dnskeys, ksigners, zsigners, cds) = self.apex();
        for k in &dnskeys {
            if Some(k) != self.foreign.as_ref() {
                self.own_tags.insert(key_tag(k));
            }
        }
        if let Some(f) = &self.foreign {
            let ft = key_tag(f);
            assert!(
                dnskeys.contains(f),
                "version {}: the foreign key is gone",
                self.versions
            );
            assert!(
                !ksigners.contains(&ft) && !zsigners.contains(&ft),
                "the foreign key signs"
            );
            assert!(
                !self.own_tags.contains(&ft),
                "an own key took the foreign key's tag {ft}"
            );
        }
        for tag in cds.difference(&self.parent.clone()) {
            let r = self.task.handle(ZoneCmdKind::DsSeen(*tag)).await;
            assert!(r.is_ok(), "ds-seen {tag}: {r:?}");
            self.parent.insert(*tag);
        }
        for tag in self.parent.clone().difference(&cds) {
            let r = self.task.handle(ZoneCmdKind::DsGone(*tag)).await;
            assert!(r.is_ok(), "ds-gone {tag}: {r:?}");
            self.parent.remove(tag);
        }
    }

    async fn run_until(&mut self, until: u64) {
        let mut guard = 0;
        loop {
            self.observe().await;
            let next = self.task.next_due().unwrap_or(until + 1);
            if next > until {
                break;
            }
            guard += 1;
            assert!(guard < 20000, "stuck: {:?}", self.task.schedule());
            self.clock.set(next.max(self.clock.now()));
            self.task.tick().await;
        }
        self.clock.set(until);
        self.observe().await;
    }
}

fn apex_record(origin: &Name, rtype: u16, cls: u16, ttl: u32, rdata: Vec<u8>) -> Record {
    Record {
        owner: origin.clone(),
        rtype,
        class: cls,
        ttl,
        rdata,
    }
}

fn zsk_flags(rd: &[u8]) -> u16 {
    u16::from_be_bytes([rd[0], rd[1]])
}

#[test]
fn foreign_key_survives_seventy_days_of_own_rollovers_and_a_restart() {
    require!("kzonecheck");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut s = Sim::new();
        s.task.tick().await;
        let t0 = s.clock.now();
        s.run_until(t0 + DAY).await;
        let (own0, _, zs0, _) = s.apex();
        // a real Ed25519 key of "the other signer"
        let pkcs8 =
            ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                .unwrap();
        let kp = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        use ring::signature::KeyPair;
        let foreign = dnskey_rdata(256, 15, kp.public_key().as_ref());
        let o = s.origin.clone();
        s.foreign = Some(foreign.clone());
        let out = s
            .update(vec![apex_record(
                &o,
                t::DNSKEY,
                class::IN,
                300,
                foreign.clone(),
            )])
            .await;
        assert_eq!(out.rcode, rcode::NOERROR, "{out:?}");
        let (with, ..) = s.apex();
        assert_eq!(with.len(), own0.len() + 1);
        assert!(s.task.status().keys.iter().any(|k| k.role == "foreign"
            && k.tag == key_tag(&foreign)
            && k.state.contains("ctl.")));

        // two ZSK rollovers by lifetime, a KSK rollover by command, a restart in between
        let mut zsks: BTreeSet<u16> = zs0.clone();
        for day in 2..=35u64 {
            s.run_until(t0 + day * DAY).await;
            zsks.extend(s.apex().2);
        }
        let r = s.task.handle(ZoneCmdKind::Rollover(KeyRole::Ksk)).await;
        assert!(r.is_ok(), "{r:?}");
        s.run_until(t0 + 36 * DAY).await;
        s.task = Sim::task(&s.cfg, &s.publisher, &s.clock);
        s.task.tick().await;
        for day in 37..=70u64 {
            s.run_until(t0 + day * DAY).await;
            zsks.extend(s.apex().2);
        }
        let (keys, ksigners, zsigners, _) = s.apex();
        assert!(zsks.len() >= 3, "two ZSK rollovers: {zsks:?}");
        assert!(zsigners.is_disjoint(&zs0), "the first ZSK was replaced");
        assert!(keys.contains(&foreign));
        let own: Vec<&Vec<u8>> = keys.iter().filter(|k| **k != foreign).collect();
        assert_eq!(own.iter().filter(|k| zsk_flags(k) == 257).count(), 1);
        assert!(ksigners.len() == 1 && !ksigners.contains(&key_tag(&foreign)));
        eprintln!("{} versions served, ZSKs {zsks:?}", s.versions);

        // removal by UPDATE: gone from the next version
        s.foreign = None;
        let out = s
            .update(vec![apex_record(
                &o,
                t::DNSKEY,
                class::NONE,
                0,
                foreign.clone(),
            )])
            .await;
        assert_eq!(out.rcode, rcode::NOERROR, "{out:?}");
        assert!(!s.apex().0.contains(&foreign));
        assert!(!s.task.status().keys.iter().any(|k| k.role == "foreign"));
    });
}

/// knotd signing the same zone as the other provider (`dnskey-management: incremental`), with
/// UPDATE allowed for `ctl`: the peer a rollover waits for.
fn knot_peer(tmp: &TempDir, ctl: &TsigKey) -> (Proc, u16) {
    let port = free_port();
    let dir = tmp.subdir("knot-peer");
    mkdir(&dir.join("db"));
    write_file(
        &dir.join("zone"),
        format!("$TTL 300\n$ORIGIN {ZONE}.\n@ SOA ns1 hostmaster 1 3600 600 604800 300\n@ NS ns1\nns1 A 192.0.2.1\n"),
    );
    let d = dir.display();
    let conf = dir.join("knot.conf");
    write_file(
        &conf,
        format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n    background-workers: 1\n    udp-workers: 1\n    tcp-workers: 1\nlog:\n  - target: stderr\n    any: info\ndatabase:\n    storage: \"{d}/db\"\ncontrol:\n    listen: \"{d}/knot.sock\"\nkey:\n  - id: {kn}\n    algorithm: {ka}\n    secret: {ks}\nacl:\n  - id: upd\n    address: 127.0.0.0/8\n    key: {kn}\n    action: update\npolicy:\n  - id: ms\n    algorithm: ecdsap256sha256\n    nsec3: off\n    dnskey-ttl: 300\n    zone-max-ttl: 300\n    dnskey-management: incremental\n    delete-delay: 1d\ntemplate:\n  - id: default\n    storage: \"{d}\"\n    zonefile-sync: -1\n    zonefile-load: difference-no-serial\n    journal-content: all\nzone:\n  - domain: {ZONE}\n    file: zone\n    dnssec-signing: on\n    dnssec-policy: ms\n    acl: upd\n",
            kn = ctl.name,
            ka = ctl.algorithm,
            ks = ctl.secret,
        ),
    );
    let mut cmd = std::process::Command::new(bin("knotd"));
    cmd.arg("-c").arg(&conf);
    let proc = Proc::spawn("knot-peer", cmd, &dir);
    proc.wait_for_log("server started", START_TIMEOUT)
        .unwrap_or_else(|e| panic!("knotd peer: {e}"));
    assert!(wait_until(START_TIMEOUT, || peer_tags(port).len() >= 2));
    (proc, port)
}

/// Key tags in the peer's DNSKEY RRset.
fn peer_tags(port: u16) -> BTreeSet<u16> {
    dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        "+tcp",
        "+short",
        ZONE,
        "DNSKEY",
    ])
    .lines()
    .filter_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 3).then(|| {
            let pk = data_encoding::BASE64
                .decode(f[3..].concat().as_bytes())
                .ok()?;
            Some(key_tag(&dnskey_rdata(
                f[0].parse().ok()?,
                f[2].parse().ok()?,
                &pk,
            )))
        })?
    })
    .collect()
}

fn presentation(rd: &[u8]) -> String {
    format!(
        "{} {} {} {}",
        u16::from_be_bytes([rd[0], rd[1]]),
        rd[2],
        rd[3],
        data_encoding::BASE64.encode(&rd[4..])
    )
}

/// Issue 7 point 4: with `update.peers`, signet's own new ZSK is published but does not sign
/// until the other signer (a real knotd) publishes it too, plus the DNSKEY TTL wait; the
/// status says what it waits for. At every version, every key that signs the zone is in the
/// peer's DNSKEY RRset, so a resolver holding the peer's DNSKEY set validates signet's answers.
#[test]
fn own_zsk_rollover_waits_for_the_other_signer() {
    require!("kzonecheck", "knotd", "nsupdate", "dig");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let tmp = TempDir::new("ms-peer-knot");
        let ctl = TsigKey::generate("ctl");
        let (_knot, kport) = knot_peer(&tmp, &ctl);
        let mut s = Sim::with(
            "ms-peer",
            "ecdsap256sha256",
            &format!(", peers = [\"127.0.0.1:{kport}\"]"),
        );
        s.ctl = ctl.clone();
        s.task.tick().await;
        let t0 = s.clock.now();
        s.run_until(t0 + DAY).await;
        let (keys0, _, zs0, _) = s.apex();
        // the controller: our ZSK into the peer
        let zsk0 = keys0.iter().find(|k| zsk_flags(k) == 256).unwrap().clone();
        nsupdate_peer(kport, &ctl, &zsk0);
        // walk through the lifetime end; the successor is published but held
        let mut now = t0 + DAY;
        let mut successor = None;
        while now < t0 + 31 * DAY {
            now += 3600;
            s.run_until(now).await;
            assert_peer_has_signers(&s, kport);
            let (keys, _, zs, _) = s.apex();
            if let Some(k) = keys.iter().find(|k| zsk_flags(k) == 256 && **k != zsk0) {
                successor.get_or_insert(k.clone());
                assert_eq!(zs, zs0, "the new ZSK signs before the peer publishes it");
            }
        }
        let successor = successor.expect("no successor ZSK published by day 31");
        let st = s.task.status();
        assert!(
            st.waiting_for.iter().any(|w| w.contains("other signers")),
            "{:?}",
            st.waiting_for
        );
        // the controller copies the new ZSK; after the peer's TTL wait it signs
        nsupdate_peer(kport, &ctl, &successor);
        let seen_at = s.clock.now();
        let mut signed_at = None;
        while now < seen_at + 3 * 3600 {
            now += 300;
            s.run_until(now).await;
            assert_peer_has_signers(&s, kport);
            if s.apex().2.contains(&key_tag(&successor)) {
                signed_at.get_or_insert(s.clock.now());
            }
        }
        let signed_at = signed_at.expect("the new ZSK never signed after the peer published it");
        assert!(
            signed_at >= seen_at + 300 + 60 + 60,
            "signed {}s after the peer published it: less than its DNSKEY TTL wait",
            signed_at - seen_at
        );
        eprintln!(
            "{} versions; new ZSK signs {}s after the peer published it",
            s.versions,
            signed_at - seen_at
        );
    });
}

fn nsupdate_peer(port: u16, ctl: &TsigKey, dnskey: &[u8]) {
    let script = format!(
        "server 127.0.0.1 {port}\nzone {ZONE}.\nupdate add {ZONE}. 300 IN DNSKEY {}\nsend\n",
        presentation(dnskey)
    );
    let f = std::env::temp_dir().join(format!(
        "signet-peer-{}-{}",
        std::process::id(),
        free_port()
    ));
    write_file(&f, script);
    let out = run_tool(
        "nsupdate",
        &[
            "-y".to_string(),
            ctl.dig_arg(),
            f.to_string_lossy().into_owned(),
        ],
    );
    let _ = std::fs::remove_file(&f);
    assert!(out.ok(), "nsupdate to knotd: {out}");
    let tag = key_tag(dnskey);
    assert!(wait_until(std::time::Duration::from_secs(10), || {
        peer_tags(port).contains(&tag)
    }));
}

fn assert_peer_has_signers(s: &Sim, kport: u16) {
    let (_, _, zs, _) = s.apex();
    let peer = peer_tags(kport);
    assert!(
        zs.is_subset(&peer),
        "a key signs the zone that the peer does not publish: {zs:?} vs {peer:?}"
    );
}
