//! Policy changes on reload, driven through the zone task on the simulated clock (issue 5): a
//! reload is what `signet reload` does to a zone whose policy changed — a new zone task on the
//! new configuration, resuming from the state directory (keys.json). An emulated parent follows
//! the CDS/CDNSKEY the zone publishes (RFC 7344, and RFC 8078 DELETE), reporting `ds-seen` /
//! `ds-gone`, unless frozen (a stale DS).
//!
//! At every version served:
//! * a signed version passes our verifier (`signer::verify::check_zone`, every signature
//!   checked) and `kzonecheck -t NOW`;
//! * it validates against **every DS set the parent published within the DS cache window**
//!   (`parent-ds-ttl + parent-propagation-delay` back from now, so any DS set a resolver may
//!   still hold): for each algorithm of the DS set, a DNSKEY with that DS signs the DNSKEY
//!   RRset and a key of the algorithm signs the zone. An algorithm change that were a flag
//!   day fails here (the old DS is cached while the old algorithm is gone);
//! * an unsigned version is served only once every DS set in that window is empty (going
//!   insecure never leaves a resolver with a DS and an unsigned zone).
//!
//! Scenarios: going insecure (policy → `insecure`) and coming back; ECDSAP256 → ED25519
//! (KSK+ZSK) and then KSK+ZSK → CSK; a stale DS during a KSK rollover (the rollover waits and
//! the status says for what); `ds-seen`/`ds-gone` for unknown keys and commands for unknown
//! zones change nothing.

mod common;

use common::*;
use signet::clock::{Clock, SimClock, SystemClock};
use signet::dns::name::Name;
use signet::dns::rtype::t;
use signet::keystore::{key_tag, KeyRole};
use signet::publisher::Publisher;
use signet::zone::data::Zone;
use signet::zone::service::ZoneTask;
use signet::zone::status::{Registry, ZoneCmdKind};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

const ZONE: &str = "example.org";
const DAY: u64 = 86_400;
/// parent-ds-ttl + parent-propagation-delay of the policies below: how long a resolver may
/// keep a DS set the parent no longer publishes.
const DS_WINDOW: u64 = 600 + 60;

/// (tag, algorithm) of a key.
type Key = (u16, u8);

fn policies() -> &'static str {
    r#"
[policy.p13]
keys = [{ role = "ksk", algorithm = "ecdsap256sha256" }, { role = "zsk", algorithm = "ecdsap256sha256" }]
TIMINGS
[policy.p15]
keys = [{ role = "ksk", algorithm = "ed25519" }, { role = "zsk", algorithm = "ed25519" }]
TIMINGS
[policy.csk15]
keys = [{ role = "csk", algorithm = "ed25519" }]
TIMINGS
[policy.insecure]
TIMINGS
"#
}

const TIMINGS: &str = "dnskey-ttl = \"300s\"\nmax-zone-ttl = \"300s\"\npublish-safety = \"60s\"\nretire-safety = \"60s\"\nzone-propagation-delay = \"60s\"\nparent-ds-ttl = \"600s\"\nparent-propagation-delay = \"60s\"\npurge-keys = \"1d\"";

/// What the apex of a served version holds.
#[derive(Debug, Default, Clone)]
struct Apex {
    /// DNSKEY (tag, alg) with flags.
    dnskeys: BTreeSet<(Key, u16)>,
    /// Keys signing the DNSKEY RRset.
    dnskey_signers: BTreeSet<Key>,
    /// Keys signing the SOA.
    zone_signers: BTreeSet<Key>,
    /// CDS (tag, alg); `None` when absent.
    cds: Option<BTreeSet<Key>>,
    cds_delete: bool,
    cdnskey_delete: bool,
    rrsigs: usize,
}

fn apex_of(zone: &Zone, origin: &Name) -> Apex {
    let apex = zone.nodes.get(origin).expect("apex");
    let mut a = Apex::default();
    if let Some(s) = apex.get(t::DNSKEY) {
        for r in &s.rdatas {
            a.dnskeys
                .insert(((key_tag(r), r[3]), u16::from_be_bytes([r[0], r[1]])));
        }
    }
    let signers = |rtype: u16| -> BTreeSet<Key> {
        apex.sigs
            .iter()
            .filter(|s| s.covered == rtype)
            .map(|s| (u16::from_be_bytes([s.rdata[16], s.rdata[17]]), s.rdata[2]))
            .collect()
    };
    a.dnskey_signers = signers(t::DNSKEY);
    a.zone_signers = signers(t::SOA);
    a.rrsigs = apex.sigs.len();
    if let Some(s) = apex.get(t::CDS) {
        let mut set = BTreeSet::new();
        for r in &s.rdatas {
            if r[2] == 0 {
                a.cds_delete = true;
            } else {
                set.insert((u16::from_be_bytes([r[0], r[1]]), r[2]));
            }
        }
        a.cds = Some(set);
    }
    if let Some(s) = apex.get(t::CDNSKEY) {
        a.cdnskey_delete = s.rdatas.iter().any(|r| r.get(3) == Some(&0));
    }
    a
}

/// Why `apex` does not validate with the DS set `ds`, if it does not.
fn chain_problem(apex: &Apex, ds: &BTreeSet<Key>) -> Option<String> {
    let algs: BTreeSet<u8> = ds.iter().map(|(_, a)| *a).collect();
    for alg in algs {
        let anchored = ds.iter().filter(|(_, a)| *a == alg).any(|k| {
            apex.dnskeys
                .iter()
                .any(|(d, flags)| d == k && flags & 1 == 1)
                && apex.dnskey_signers.contains(k)
        });
        if !anchored {
            return Some(format!(
                "no DNSKEY of algorithm {alg} with a DS in {ds:?} signs the DNSKEY RRset"
            ));
        }
        let signed = apex
            .zone_signers
            .iter()
            .any(|k| k.1 == alg && apex.dnskeys.iter().any(|(d, _)| d == k));
        if !signed {
            return Some(format!(
                "no published key of algorithm {alg} signs the zone"
            ));
        }
    }
    None
}

struct Run {
    dir: TempDir,
    zone_file: PathBuf,
    port: u16,
    task: ZoneTask,
    clock: SimClock,
    publisher: Arc<Publisher>,
    origin: Name,
    /// The DS set the emulated parent publishes now.
    parent: BTreeSet<Key>,
    /// Every DS set the parent published, with the time it started.
    parent_history: Vec<(u64, BTreeSet<Key>)>,
    /// The parent ignores CDS changes (a stale DS).
    frozen: bool,
    last_serial: Option<u32>,
    versions: usize,
    unsigned_versions: usize,
    /// Every apex served, with its time.
    history: Vec<(u64, Apex)>,
    kzonecheck: bool,
    /// Versions kzonecheck checked.
    kzonechecked: usize,
}

impl Run {
    fn new(label: &str, policy: &str) -> Run {
        let dir = TempDir::new(label);
        let port = free_port();
        let mut zone = String::from(
            "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 604800 300\n@ NS ns1\nns1 A 192.0.2.1\n",
        );
        for i in 0..10 {
            zone.push_str(&format!("h{i} A 198.51.100.{}\n", i + 1));
        }
        let zone_file = dir.write("zone.db", zone);
        let clock = SimClock::new(SystemClock.now());
        let publisher = Arc::new(Publisher::new(Arc::new(clock.clone())));
        let mut r = Run {
            task: Self::task_for(&dir, port, &zone_file, policy, &publisher, &clock),
            dir,
            zone_file,
            port,
            clock,
            publisher,
            origin: Name::parse("example.org.", None).unwrap(),
            parent: BTreeSet::new(),
            parent_history: vec![(0, BTreeSet::new())],
            frozen: false,
            last_serial: None,
            versions: 0,
            unsigned_versions: 0,
            history: Vec::new(),
            kzonecheck: true,
            kzonechecked: 0,
        };
        r.task.start();
        r
    }

    /// Writes the configuration with the zone under `policy` and makes a zone task of it.
    fn task_for(
        dir: &TempDir,
        port: u16,
        zone_file: &std::path::Path,
        policy: &str,
        publisher: &Arc<Publisher>,
        clock: &SimClock,
    ) -> ZoneTask {
        let text = format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\nstate-dir = \"{}\"\n[keystore.files]\nbackend = \"files\"\ndirectory = \"{}\"\n{}\n[[zone]]\nname = \"{ZONE}\"\npolicy = \"{policy}\"\nfile = \"{}\"\n",
            dir.join("state").display(),
            dir.join("keys").display(),
            policies().replace("TIMINGS", TIMINGS),
            zone_file.display(),
        );
        let conf = dir.write("signet.toml", text);
        let cfg = Arc::new(signet::config::load(&conf).unwrap());
        let zcfg = cfg.zones[0].clone();
        assert_eq!(cfg.policy_for(&zcfg).name, policy);
        ZoneTask::new(cfg, zcfg, publisher.clone(), Arc::new(clock.clone()))
            .unwrap()
            .0
    }

    /// `signet reload` after the zone's policy was changed to `policy`: the zone task restarts
    /// on the new configuration and resumes from the state directory.
    async fn reload(&mut self, policy: &str) {
        let mut task = Self::task_for(
            &self.dir,
            self.port,
            &self.zone_file,
            policy,
            &self.publisher,
            &self.clock,
        );
        task.start();
        task.tick().await;
        self.task = task;
    }

    fn keys_json(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("state/zones/example.org/keys.json")).unwrap_or_default()
    }

    fn set_parent(&mut self, ds: BTreeSet<Key>) {
        if ds != self.parent {
            self.parent = ds.clone();
            self.parent_history.push((self.clock.now(), ds));
        }
    }

    /// The DS sets a resolver may hold now.
    fn cached_ds_sets(&self, now: u64) -> Vec<BTreeSet<Key>> {
        let mut out = Vec::new();
        for (i, (since, ds)) in self.parent_history.iter().enumerate() {
            let until = self.parent_history.get(i + 1).map(|(t, _)| *t);
            let live = match until {
                None => true,
                Some(u) => u + DS_WINDOW > now,
            };
            if live && (*since <= now) {
                out.push(ds.clone());
            }
        }
        out
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
        let apex = apex_of(&served.zone, &self.origin);
        if apex.dnskeys.is_empty() {
            self.unsigned_versions += 1;
            assert_eq!(apex.rrsigs, 0, "at {now}: an unsigned version with RRSIGs");
            for ds in self.cached_ds_sets(now) {
                assert!(
                    ds.is_empty(),
                    "at {now}: served unsigned while a resolver may hold the DS set {ds:?}"
                );
            }
        } else {
            let problems = signet::signer::verify::check_zone(&served.zone, now, true);
            assert!(problems.is_empty(), "at {now}: {problems:?}");
            if self.kzonecheck {
                let f = self.dir.join(format!("v{}.zone", self.versions));
                signet::zone::offline::write_zone_atomic(&f, &served.zone).unwrap();
                // ldns: every signature, RFC 4035 chain and algorithm rules, at the simulated time
                let at: String = signet::kasp::fmt_time(now)
                    .chars()
                    .filter(char::is_ascii_digit)
                    .collect();
                let r = run_tool("ldns-verify-zone", &["-t", &at, &f.to_string_lossy()]);
                assert!(
                    r.ok(),
                    "version {} at {now}: ldns-verify-zone: {r}",
                    self.versions
                );
                // kzonecheck takes a SEP-flagged key signing zone data beside a key of the
                // algorithm that does not (a ZSK, or a KSK) for an error ("no valid signature
                // for a record"), which is no rule of RFC 4035 and happens legitimately while
                // a CSK replaces a KSK+ZSK (the old keys stay published until their signatures
                // left the caches); ldns-verify-zone and our verifier check those versions
                let knot_heuristic = a_sep_key_signs_data_beside_a_zsk(&apex);
                if !knot_heuristic {
                    let r = kzonecheck_at(ZONE, &f, now);
                    assert!(
                        r.ok(),
                        "version {} at {now}: kzonecheck: {r}",
                        self.versions
                    );
                    self.kzonechecked += 1;
                }
                let _ = std::fs::remove_file(&f);
            }
            for ds in self.cached_ds_sets(now) {
                if let Some(p) = chain_problem(&apex, &ds) {
                    panic!(
                        "version {} at {now} does not validate with the DS set {ds:?} a resolver may hold: {p}\napex {apex:?}",
                        self.versions
                    );
                }
            }
        }
        self.history.push((now, apex.clone()));
        if self.frozen {
            return;
        }
        // the parent publishes what the CDS asks for, at once
        let want: Option<BTreeSet<Key>> = if apex.cds_delete {
            Some(BTreeSet::new())
        } else {
            apex.cds.clone()
        };
        let Some(want) = want else {
            return;
        };
        for k in want.difference(&self.parent.clone()) {
            let r = self.task.handle(ZoneCmdKind::DsSeen(k.0)).await;
            assert!(r.is_ok(), "ds-seen {k:?}: {r:?}");
        }
        for k in self.parent.clone().difference(&want) {
            // a key purged meanwhile is unknown: that is fine for the parent
            let _ = self.task.handle(ZoneCmdKind::DsGone(k.0)).await;
        }
        self.set_parent(want);
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
        apex_of(
            &self.publisher.get(&self.origin).unwrap().zone,
            &self.origin,
        )
    }
}

/// A key with the SEP flag signs zone data while another key of its algorithm that kzonecheck
/// then expects to sign too does not: a published key without SEP, or a SEP key that signs
/// only the DNSKEY RRset (see `observe`).
fn a_sep_key_signs_data_beside_a_zsk(a: &Apex) -> bool {
    a.zone_signers.iter().any(|k| {
        a.dnskeys.contains(&(*k, 257))
            && a.dnskeys.iter().any(|(d, f)| {
                d.1 == k.1 && (*f == 256 || (*f == 257 && !a.zone_signers.contains(d)))
            })
    })
}

fn with_flags(a: &Apex, flags: u16) -> BTreeSet<Key> {
    a.dnskeys
        .iter()
        .filter(|(_, f)| *f == flags)
        .map(|(k, _)| *k)
        .collect()
}

fn algorithms(a: &Apex) -> BTreeSet<u8> {
    a.dnskeys.iter().map(|((_, alg), _)| *alg).collect()
}

#[test]
fn going_insecure_and_coming_back_on_reload() {
    require!("kzonecheck");
    require!("ldns-verify-zone");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut r = Run::new("kasp-insecure", "p15");
        r.task.tick().await;
        let t0 = r.clock.now();
        r.run_until(t0 + DAY).await;
        let a = r.current();
        let ksk0 = with_flags(&a, 257);
        assert_eq!(ksk0.len(), 1, "{a:?}");
        assert_eq!(r.parent, ksk0, "the parent holds the KSK's DS");

        // the policy becomes `insecure`
        r.reload("insecure").await;
        let t1 = r.clock.now();
        r.run_until(t1 + 60).await;
        let a = r.current();
        assert!(
            a.cds_delete && a.cdnskey_delete,
            "CDS/CDNSKEY DELETE published at once: {a:?}"
        );
        assert!(
            !a.dnskeys.is_empty(),
            "still signed while the DS is at the parent"
        );
        assert!(r.parent.is_empty(), "the parent followed the DELETE");
        r.run_until(t1 + DAY).await;
        let a = r.current();
        assert!(
            a.dnskeys.is_empty() && a.rrsigs == 0,
            "served unsigned: {a:?}"
        );
        assert!(a.cds.is_none(), "no CDS left: {a:?}");
        assert!(r.unsigned_versions >= 1);
        // unsigned only once the DS is out of every cache: DS gone at ~t1, plus the window
        let first_unsigned = r
            .history
            .iter()
            .find(|(_, a)| a.dnskeys.is_empty())
            .map(|(t, _)| *t)
            .unwrap();
        assert!(
            first_unsigned >= t1 + DS_WINDOW,
            "unsigned at {} < {} + {DS_WINDOW}",
            first_unsigned,
            t1
        );
        let st = r.task.status();
        assert!(st.served);
        assert_eq!(st.want_ds, Some(vec![]), "{st:?}");
        assert!(
            st.keys.iter().all(|k| k.goal == "hidden"),
            "every key retired: {:?}",
            st.keys
        );

        // and back: new keys, a new DS, signed again
        r.reload("p15").await;
        let t2 = r.clock.now();
        r.run_until(t2 + DAY).await;
        let a = r.current();
        let ksk = with_flags(&a, 257);
        let zsk = with_flags(&a, 256);
        assert_eq!((ksk.len(), zsk.len()), (1, 1), "{a:?}");
        assert!(ksk.is_disjoint(&ksk0), "a new KSK");
        assert_eq!(a.dnskey_signers, ksk);
        assert_eq!(a.zone_signers, zsk);
        assert_eq!(r.parent, ksk, "the parent holds the new DS");
        assert_eq!(a.cds, Some(ksk.clone()));
        assert!(!a.cds_delete);
        eprintln!(
            "{} versions served, {} unsigned",
            r.versions, r.unsigned_versions
        );
    });
}

#[test]
fn algorithm_change_and_csk_on_reload_are_rollovers_not_flag_days() {
    require!("kzonecheck");
    require!("ldns-verify-zone");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut r = Run::new("kasp-alg", "p13");
        r.task.tick().await;
        let t0 = r.clock.now();
        r.run_until(t0 + DAY).await;
        let a = r.current();
        assert_eq!(algorithms(&a), BTreeSet::from([13]));
        assert_eq!(r.parent.len(), 1);

        // ECDSAP256 → ED25519
        r.reload("p15").await;
        let t1 = r.clock.now();
        let before = r.history.len();
        r.run_until(t1 + 3 * DAY).await;
        let a = r.current();
        assert_eq!(
            algorithms(&a),
            BTreeSet::from([15]),
            "{a:?}\n{:#?}",
            r.task.status()
        );
        assert_eq!(with_flags(&a, 257).len(), 1);
        assert_eq!(with_flags(&a, 256).len(), 1);
        assert!(r.parent.iter().all(|(_, alg)| *alg == 15), "{:?}", r.parent);
        assert_eq!(r.parent, with_flags(&a, 257));
        // a rollover: versions with both algorithms in the DNSKEY set, each signing it all
        let both = r.history[before..]
            .iter()
            .filter(|(_, a)| algorithms(a).len() == 2)
            .count();
        assert!(both >= 2, "no version with both algorithms: not a rollover");
        for (t, a) in &r.history[before..] {
            let signing: BTreeSet<u8> = a.zone_signers.iter().map(|k| k.1).collect();
            assert!(
                algorithms(a).is_subset(&signing),
                "at {t}: an algorithm in the DNSKEY set does not sign the zone: {a:?}"
            );
        }
        // the parent held both algorithms' DS at no time, or the old one until the new was in
        let ds_changes: Vec<&BTreeSet<Key>> = r.parent_history.iter().map(|(_, d)| d).collect();
        assert!(ds_changes.iter().any(|d| d.iter().any(|k| k.1 == 15)));

        // KSK + ZSK → CSK, same algorithm
        r.reload("csk15").await;
        let t2 = r.clock.now();
        r.run_until(t2 + 3 * DAY).await;
        let a = r.current();
        assert_eq!(a.dnskeys.len(), 1, "one CSK left: {a:?}");
        let csk = with_flags(&a, 257);
        assert_eq!(csk.len(), 1);
        assert_eq!(a.dnskey_signers, csk);
        assert_eq!(a.zone_signers, csk, "the CSK signs the zone");
        assert_eq!(r.parent, csk);
        let st = r.task.status();
        let live: Vec<_> = st.keys.iter().filter(|k| k.goal == "omnipresent").collect();
        assert_eq!(live.len(), 1, "{:?}", st.keys);
        assert_eq!(live[0].role, "csk");
        assert!(
            r.kzonechecked * 2 > r.versions,
            "kzonecheck saw most versions"
        );
        eprintln!(
            "{} versions served, {} checked by kzonecheck",
            r.versions, r.kzonechecked
        );
    });
}

#[test]
fn stale_ds_holds_the_ksk_rollover_and_status_says_why() {
    require!("kzonecheck");
    require!("ldns-verify-zone");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut r = Run::new("kasp-stale", "p15");
        r.task.tick().await;
        let t0 = r.clock.now();
        r.run_until(t0 + DAY).await;
        let a0 = r.current();
        let ksk0 = with_flags(&a0, 257);
        // the registrar stops acting: the new KSK's DS never appears
        r.frozen = true;
        let out = r.task.handle(ZoneCmdKind::Rollover(KeyRole::Ksk)).await;
        assert!(out.is_ok(), "{out:?}");
        r.run_until(t0 + 6 * DAY).await;
        let a = r.current();
        let ksks = with_flags(&a, 257);
        assert_eq!(ksks.len(), 2, "both KSKs stay published: {a:?}");
        assert!(ksk0.is_subset(&ksks));
        let new = *ksks.difference(&ksk0).next().unwrap();
        assert_eq!(
            a.cds,
            Some(BTreeSet::from([new])),
            "CDS asks for the new DS"
        );
        assert!(
            a.dnskey_signers.is_superset(&ksk0),
            "the old KSK still signs"
        );
        assert_eq!(r.parent, ksk0, "the parent still has the old DS only");
        let st = r.task.status();
        assert!(
            st.waiting_for
                .iter()
                .any(|w| w.contains("the DS to appear at the parent")
                    && w.contains(&format!("--key {}", new.0))),
            "status says the rollover waits for the parent: {:?}",
            st.waiting_for
        );
        let k = st
            .keys
            .iter()
            .find(|k| k.tag == new.0)
            .expect("new KSK in status");
        let next = k.next.as_ref().expect("the new KSK has a next transition");
        assert_eq!(next.at, None, "no date: it waits for an event");
        assert!(
            next.waits_for.contains(&format!("ds-seen --key {}", new.0)),
            "{next:?}"
        );
        let ds_rec = k.records.iter().find(|x| x.record == "DS").unwrap();
        assert_eq!(ds_rec.state, "rumoured");
        assert_eq!(k.ds_seen, None);
        let old = st
            .keys
            .iter()
            .find(|k| ksk0.contains(&(k.tag, k.algorithm)))
            .unwrap();
        assert_eq!(old.goal, "hidden");
        assert_eq!(old.successor, Some(new.0));

        // the registrar catches up: the rollover completes
        r.frozen = false;
        r.last_serial = None; // let the parent look at the current CDS again
        r.versions -= 1;
        r.history.pop();
        r.observe().await;
        r.run_until(t0 + 8 * DAY).await;
        let a = r.current();
        assert_eq!(with_flags(&a, 257), BTreeSet::from([new]), "{a:?}");
        assert_eq!(r.parent, BTreeSet::from([new]));
        assert!(
            r.task.status().waiting_for.is_empty(),
            "{:?}",
            r.task.status().waiting_for
        );
    });
}

#[test]
fn commands_for_unknown_keys_or_zones_change_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut r = Run::new("kasp-unknown", "p15");
        r.kzonecheck = false;
        r.task.tick().await;
        let t0 = r.clock.now();
        r.run_until(t0 + DAY).await;
        let a = r.current();
        let before_state = r.keys_json();
        assert!(!before_state.is_empty());
        let serial = r.publisher.get(&r.origin).unwrap().serial();
        let tags: BTreeSet<u16> = a.dnskeys.iter().map(|((t, _), _)| *t).collect();
        let unknown = (1..=u16::MAX).find(|t| !tags.contains(t)).unwrap();
        for cmd in [ZoneCmdKind::DsSeen(unknown), ZoneCmdKind::DsGone(unknown)] {
            let e = r.task.handle(cmd).await.expect_err("unknown key refused");
            assert!(e.contains(&unknown.to_string()), "{e}");
        }
        // a ZSK has no DS
        let zsk = with_flags(&a, 256).into_iter().next().unwrap();
        let e = r
            .task
            .handle(ZoneCmdKind::DsSeen(zsk.0))
            .await
            .expect_err("a ZSK has no DS");
        assert!(e.contains(&zsk.0.to_string()), "{e}");
        // a role the policy does not have
        let e = r
            .task
            .handle(ZoneCmdKind::Rollover(KeyRole::Csk))
            .await
            .expect_err("no CSK to roll");
        assert!(e.to_lowercase().contains("csk"), "{e}");
        assert_eq!(r.keys_json(), before_state, "the key state is unchanged");
        assert_eq!(r.publisher.get(&r.origin).unwrap().serial(), serial);
        // unknown zones: the registry answers for the control socket
        let reg = Registry::new();
        for cmd in [
            ZoneCmdKind::Step,
            ZoneCmdKind::DsSeen(1),
            ZoneCmdKind::DsGone(1),
        ] {
            let e = reg.command("nope.example", cmd).await.unwrap_err();
            assert!(e.contains("nope.example is not configured"), "{e}");
        }
    });
}
