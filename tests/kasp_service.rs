//! The key state machine wired into the zone task (issue 5), on the simulated clock: a ZSK
//! rollover by lifetime over two months, and a KSK rollover started by `rollover`, with a
//! "parent" (this test) that publishes exactly the CDS it sees (`ds-seen` / `ds-gone`).
//! At every version served: `signer::verify::check_zone` and `kzonecheck -t` at the
//! simulated time pass; a ZSK appears in the DNSKEY set before it signs and leaves it only
//! after it stopped signing; the run ends with the new keys only.

mod common;

use common::*;
use signet::clock::{Clock, SimClock, SystemClock};
use signet::dns::name::Name;
use signet::dns::rtype::t;
use signet::keystore::{key_tag, KeyRole};
use signet::publisher::Publisher;
use signet::zone::data::Zone;
use signet::zone::service::ZoneTask;
use signet::zone::status::ZoneCmdKind;
use std::collections::BTreeSet;
use std::sync::Arc;

const ZONE: &str = "example.org";
const DAY: u64 = 86_400;

/// (DNSKEY tags with flags, tags signing the SOA, tags signing DNSKEY, CDS tags).
type Apex = (
    BTreeSet<(u16, u16)>,
    BTreeSet<u16>,
    BTreeSet<u16>,
    BTreeSet<u16>,
);
type Version = (BTreeSet<(u16, u16)>, BTreeSet<u16>, BTreeSet<u16>);

struct Run {
    dir: TempDir,
    cfg: Arc<signet::config::Config>,
    task: ZoneTask,
    clock: SimClock,
    publisher: Arc<Publisher>,
    origin: Name,
    /// The DS set the emulated parent publishes (key tags).
    parent: BTreeSet<u16>,
    last_serial: Option<u32>,
    versions: usize,
    /// Per version served: (DNSKEY tags with flags, tags signing the SOA, tags signing DNSKEY).
    history: Vec<Version>,
}

fn tags_of(zone: &Zone, origin: &Name) -> Apex {
    let apex = zone.nodes.get(origin).expect("apex");
    let dnskeys: BTreeSet<(u16, u16)> = apex
        .get(t::DNSKEY)
        .map(|s| {
            s.rdatas
                .iter()
                .map(|r| (key_tag(r), u16::from_be_bytes([r[0], r[1]])))
                .collect()
        })
        .unwrap_or_default();
    let signers = |rtype: u16| -> BTreeSet<u16> {
        apex.sigs
            .iter()
            .filter(|s| s.covered == rtype)
            .map(|s| u16::from_be_bytes([s.rdata[16], s.rdata[17]]))
            .collect()
    };
    let cds: BTreeSet<u16> = apex
        .get(t::CDS)
        .map(|s| {
            s.rdatas
                .iter()
                .map(|r| u16::from_be_bytes([r[0], r[1]]))
                .collect()
        })
        .unwrap_or_default();
    (dnskeys, signers(t::SOA), signers(t::DNSKEY), cds)
}

impl Run {
    fn new(label: &str, keys: &str) -> Run {
        let dir = TempDir::new(label);
        let port = free_port();
        let mut zone = String::from(
            "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 604800 300\n@ NS ns1\nns1 A 192.0.2.1\n",
        );
        for i in 0..20 {
            zone.push_str(&format!("h{i} A 198.51.100.{}\n", i + 1));
        }
        let zf = dir.write("zone.db", zone);
        let conf = dir.write(
            "signet.toml",
            format!(
                "[server]\nlisten = [\"127.0.0.1:{port}\"]\nstate-dir = \"{}\"\n[keystore.files]\nbackend = \"files\"\ndirectory = \"{}\"\n[policy.p]\nkeys = [{keys}]\ndnskey-ttl = \"300s\"\nmax-zone-ttl = \"300s\"\npublish-safety = \"60s\"\nretire-safety = \"60s\"\nzone-propagation-delay = \"60s\"\nparent-ds-ttl = \"600s\"\nparent-propagation-delay = \"60s\"\npurge-keys = \"1d\"\npublish-cdnskey = true\n[[zone]]\nname = \"{ZONE}\"\npolicy = \"p\"\nfile = \"{}\"\n",
                dir.join("state").display(),
                dir.join("keys").display(),
                zf.display(),
            ),
        );
        let cfg = signet::config::load(&conf).unwrap();
        let clock = SimClock::new(SystemClock.now());
        let publisher = Arc::new(Publisher::new(Arc::new(clock.clone())));
        let zcfg = cfg.zones[0].clone();
        let cfg = Arc::new(cfg);
        let (mut task, _st) = ZoneTask::new(
            cfg.clone(),
            zcfg,
            publisher.clone(),
            Arc::new(clock.clone()),
        )
        .unwrap();
        task.start();
        let origin = Name::parse("example.org.", None).unwrap();
        Run {
            dir,
            cfg,
            task,
            clock,
            publisher,
            origin,
            parent: BTreeSet::new(),
            last_serial: None,
            versions: 0,
            history: Vec::new(),
        }
    }

    /// Checks a newly served version and lets the parent follow its CDS.
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
        let (dnskeys, zsigners, ksigners, cds) = tags_of(&served.zone, &self.origin);
        let dtags: BTreeSet<u16> = dnskeys.iter().map(|(t, _)| *t).collect();
        assert!(
            zsigners.is_subset(&dtags),
            "at {now}: a zone signer is not published: {zsigners:?} {dtags:?}"
        );
        assert!(
            ksigners.is_subset(&dtags),
            "at {now}: a DNSKEY signer is not published"
        );
        // a ZSK signs only once it was published in an earlier version, and leaves the DNSKEY
        // set only after a version in which it no longer signed
        if let Some((prev_keys, prev_z, _)) = self.history.last() {
            let prev_tags: BTreeSet<u16> = prev_keys.iter().map(|(t, _)| *t).collect();
            for z in zsigners.difference(prev_z) {
                assert!(
                    prev_tags.contains(z),
                    "at {now}: key {z} signs the zone in the version that publishes it"
                );
            }
            for (gone, flags) in prev_keys.iter().filter(|(t, _)| !dtags.contains(t)) {
                if *flags == 256 {
                    assert!(
                        !prev_z.contains(gone),
                        "at {now}: ZSK {gone} left the DNSKEY set while still signing"
                    );
                }
            }
        }
        self.history.push((dnskeys, zsigners, ksigners));
        // the parent publishes what the CDS asks for, at once
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

    /// A restart: a new zone task from what the state directory holds.
    async fn restart(&mut self) {
        let (mut task, _st) = ZoneTask::new(
            self.cfg.clone(),
            self.cfg.zones[0].clone(),
            self.publisher.clone(),
            Arc::new(self.clock.clone()),
        )
        .unwrap();
        task.start();
        task.tick().await;
        self.task = task;
    }

    /// Runs every event due until `until`, observing each version.
    async fn run_until(&mut self, until: u64) {
        let mut guard = 0;
        loop {
            self.observe().await;
            let next = self.task.next_due().unwrap_or(until + 1);
            if next > until {
                break;
            }
            guard += 1;
            assert!(
                guard < 5000,
                "the schedule does not advance: {:?}",
                self.task.schedule()
            );
            self.clock.set(next.max(self.clock.now()));
            self.task.tick().await;
        }
        self.clock.set(until);
        self.observe().await;
    }

    fn current(&self) -> Apex {
        tags_of(
            &self.publisher.get(&self.origin).unwrap().zone,
            &self.origin,
        )
    }
}

fn with_flags(keys: &BTreeSet<(u16, u16)>, flags: u16) -> BTreeSet<u16> {
    keys.iter()
        .filter(|(_, f)| *f == flags)
        .map(|(t, _)| *t)
        .collect()
}

#[test]
fn zsk_rollover_by_lifetime_over_two_months() {
    require!("kzonecheck");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut r = Run::new(
            "kasp-zsk",
            r#"{ role = "ksk", algorithm = "ed25519", lifetime = "unlimited" }, { role = "zsk", algorithm = "ed25519", lifetime = "30d" }"#,
        );
        r.task.tick().await;
        let t0 = r.clock.now();
        r.run_until(t0 + 2 * DAY).await;
        let (keys0, z0, _, cds0) = r.current();
        let ksk0 = with_flags(&keys0, 257);
        let zsk0 = with_flags(&keys0, 256);
        assert_eq!(ksk0.len(), 1);
        assert_eq!(zsk0.len(), 1);
        assert_eq!(z0, zsk0);
        assert_eq!(cds0, ksk0, "CDS for the KSK");
        assert_eq!(r.parent, ksk0);
        let status = r.task.status();
        assert!(status.waiting_for.iter().any(|w| !w.is_empty()) || status.events.iter().any(|e| e.event == "key-event"), "{status:?}");
        let mut zsks: BTreeSet<u16> = zsk0.clone();
        for day in 3..=65u64 {
            r.run_until(t0 + day * DAY).await;
            let (keys, _, _, _) = r.current();
            zsks.extend(with_flags(&keys, 256));
        }
        let (keys, z, k, cds) = r.current();
        assert_eq!(with_flags(&keys, 257), ksk0, "the KSK stays");
        assert_eq!(k, ksk0);
        assert_eq!(cds, ksk0);
        let zsk_now = with_flags(&keys, 256);
        assert_eq!(zsk_now.len(), 1, "one ZSK at the end: {keys:?}");
        assert!(zsk_now.is_disjoint(&zsk0), "the ZSK was replaced");
        assert_eq!(z, zsk_now, "only the new ZSK signs");
        assert!(zsks.len() >= 3, "two rollovers in 65 days with a 30-day lifetime: {zsks:?}");
        eprintln!("{} versions served; ZSKs {zsks:?}", r.versions);
    });
}

#[test]
fn ksk_rollover_by_command_with_the_parent_following_cds() {
    require!("kzonecheck");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut r = Run::new(
            "kasp-ksk",
            r#"{ role = "ksk", algorithm = "ed25519", lifetime = "unlimited" }, { role = "zsk", algorithm = "ed25519", lifetime = "unlimited" }"#,
        );
        r.task.tick().await;
        let t0 = r.clock.now();
        r.run_until(t0 + DAY).await;
        let (keys0, z0, _, _) = r.current();
        let ksk0 = with_flags(&keys0, 257);
        assert_eq!(r.parent, ksk0);
        // an unknown key is refused and changes nothing
        let bad = (0..=u16::MAX).find(|t| !keys0.iter().any(|(k, _)| k == t)).unwrap();
        assert!(r.task.handle(ZoneCmdKind::DsSeen(bad)).await.is_err());
        let out = r.task.handle(ZoneCmdKind::Rollover(KeyRole::Ksk)).await;
        assert!(out.is_ok(), "{out:?}");
        r.run_until(t0 + DAY + 60).await;
        let (keys1, _, k1, _) = r.current();
        let ksk1 = with_flags(&keys1, 257);
        assert_eq!(ksk1.len(), 2, "the new KSK is published beside the old one: {keys1:?}");
        assert_eq!(k1, ksk1, "both sign the DNSKEY set");
        let status = r.task.status();
        assert_eq!(status.keys.len(), 3, "{:?}", status.keys);
        assert!(!status.waiting_for.is_empty(), "the status says what the rollover waits for");
        // a restart in the middle of the rollover: the key state is read back
        r.restart().await;
        let status = r.task.status();
        assert_eq!(status.keys.len(), 3, "after the restart: {:?}", status.keys);
        assert_eq!(r.current().0, keys1, "the restart does not change the DNSKEY set");
        r.run_until(t0 + 10 * DAY).await;
        let (keys, z, k, cds) = r.current();
        let ksk = with_flags(&keys, 257);
        assert_eq!(ksk.len(), 1, "{keys:?}");
        assert!(ksk.is_disjoint(&ksk0), "the KSK was replaced");
        assert_eq!(k, ksk);
        assert_eq!(cds, ksk);
        assert_eq!(r.parent, ksk, "the parent holds the new DS only");
        assert_eq!(z, z0, "the ZSK is unchanged");
        assert_eq!(r.task.status().want_ds, Some(ksk.iter().copied().collect::<Vec<_>>()));
        eprintln!("{} versions served", r.versions);
    });
}
