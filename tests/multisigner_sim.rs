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
}

impl Sim {
    fn new() -> Sim {
        let dir = TempDir::new("ms-sim");
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
                "[server]\nlisten = [\"127.0.0.1:{port}\"]\nstate-dir = \"{}\"\n{}\n[keystore.files]\nbackend = \"files\"\ndirectory = \"{}\"\n[policy.p]\nkeys = [{{ role = \"ksk\", algorithm = \"ed25519\", lifetime = \"unlimited\" }}, {{ role = \"zsk\", algorithm = \"ed25519\", lifetime = \"30d\" }}]\ndnskey-ttl = \"300s\"\nmax-zone-ttl = \"300s\"\npublish-safety = \"60s\"\nretire-safety = \"60s\"\nzone-propagation-delay = \"60s\"\nparent-ds-ttl = \"600s\"\nparent-propagation-delay = \"60s\"\npurge-keys = \"1d\"\n[[zone]]\nname = \"{ZONE}\"\npolicy = \"p\"\nfile = \"{}\"\nupdate = {{ keys = [\"ctl\"] }}\n",
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
        let r = run_tool(
            "kzonecheck",
            &[
                "-o",
                ZONE,
                "-d",
                "on",
                "-t",
                &now.to_string(),
                &f.to_string_lossy(),
            ],
        );
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
            assert!(guard < 5000, "stuck: {:?}", self.task.schedule());
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
