//! Issue 6, point 5: purging a key after `purge-keys` removes it from the token too. On the
//! simulated clock, a zone task whose ZSK lives on a SoftHSM token rolls the ZSK by lifetime;
//! once the old ZSK is gone from the zone and `purge-keys` has passed, its objects are gone
//! from the token (`pkcs11-tool --list-objects`) and its metadata file from the keystore's
//! directory, while the new ZSK's objects and metadata remain.

mod common;
mod hsm_support;

use common::*;
use hsm_support::*;
use signet::clock::{Clock, SimClock, SystemClock};
use signet::dns::name::Name;
use signet::dns::rtype::t;
use signet::keystore::key_tag;
use signet::publisher::Publisher;
use signet::zone::service::ZoneTask;
use signet::zone::status::ZoneCmdKind;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

const ZONE: &str = "example.net";
const DAY: u64 = 86_400;

/// (DNSKEY (tag, flags), CDS tags) of the served version.
fn apex(publisher: &Publisher, origin: &Name) -> (BTreeSet<(u16, u16)>, BTreeSet<u16>) {
    let Some(served) = publisher.get(origin) else {
        return Default::default();
    };
    let apex = served.zone.nodes.get(origin).expect("apex");
    let keys = apex
        .get(t::DNSKEY)
        .map(|s| {
            s.rdatas
                .iter()
                .map(|r| (key_tag(r), u16::from_be_bytes([r[0], r[1]])))
                .collect()
        })
        .unwrap_or_default();
    let cds = apex
        .get(t::CDS)
        .map(|s| {
            s.rdatas
                .iter()
                .map(|r| u16::from_be_bytes([r[0], r[1]]))
                .collect()
        })
        .unwrap_or_default();
    (keys, cds)
}

/// The metadata file stems (= token labels) in the HSM keystore's directory.
fn meta_stems(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| {
                let n = e.ok()?.file_name().to_string_lossy().to_string();
                n.strip_suffix(".json").map(str::to_string)
            })
            .collect()
        })
        .unwrap_or_default()
}

/// Every object label on the token.
fn token_labels(listing: &str) -> BTreeSet<String> {
    listing
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("label:")
                .map(|s| s.trim().to_string())
        })
        .collect()
}

fn tag_of(stem: &str) -> u16 {
    stem.rsplit('+').next().unwrap().parse().unwrap()
}

#[test]
fn purged_zsk_leaves_the_token() {
    if !have_softhsm() {
        return;
    }
    let tmp = TempDir::new("hsm-purge");
    let hsm = SoftHsm::new(&tmp);
    // SoftHSM reads its configuration when the module is initialised in this process
    std::env::set_var("SOFTHSM2_CONF", &hsm.conf);
    let zf = tmp.write("zone.db", zone_text(ZONE, 1));
    let keys = r#"[{ role = "ksk", algorithm = 13, lifetime = "unlimited", keystore = "files" },
        { role = "zsk", algorithm = 13, lifetime = "10d", keystore = "hsm" }]"#;
    let extra = "dnskey-ttl = \"300s\"\nmax-zone-ttl = \"300s\"\npublish-safety = \"60s\"\n\
                 retire-safety = \"60s\"\nzone-propagation-delay = \"60s\"\n\
                 parent-ds-ttl = \"600s\"\nparent-propagation-delay = \"60s\"\n\
                 purge-keys = \"1d\"\npublish-cdnskey = true\n";
    let conf = tmp.write(
        "signet.toml",
        config(tmp.path(), keys, &[(ZONE, &zf)], extra),
    );
    let meta_dir = tmp.join("state/keys-hsm");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let cfg = Arc::new(signet::config::load(&conf).unwrap());
        let clock = SimClock::new(SystemClock.now());
        let publisher = Arc::new(Publisher::new(Arc::new(clock.clone())));
        let (mut task, _st) = ZoneTask::new(
            cfg.clone(),
            cfg.zones[0].clone(),
            publisher.clone(),
            Arc::new(clock.clone()),
        )
        .unwrap();
        task.start();
        task.tick().await;
        let origin = Name::parse(&format!("{ZONE}."), None).unwrap();
        let mut parent: BTreeSet<u16> = BTreeSet::new();
        let t0 = clock.now();
        let mut zsks_seen: BTreeSet<u16> = BTreeSet::new();
        // runs every due event until `until`, with a parent that follows the CDS at once
        macro_rules! run_until {
            ($until:expr) => {{
                let until = $until;
                let mut guard = 0;
                loop {
                    let (keys, cds) = apex(&publisher, &origin);
                    zsks_seen.extend(keys.iter().filter(|(_, f)| *f == 256).map(|(t, _)| *t));
                    for tag in cds.difference(&parent.clone()) {
                        assert!(task.handle(ZoneCmdKind::DsSeen(*tag)).await.is_ok());
                        parent.insert(*tag);
                    }
                    for tag in parent.clone().difference(&cds) {
                        assert!(task.handle(ZoneCmdKind::DsGone(*tag)).await.is_ok());
                        parent.remove(tag);
                    }
                    let next = task.next_due().unwrap_or(until + 1);
                    if next > until {
                        break;
                    }
                    guard += 1;
                    assert!(guard < 5000, "no progress: {:?}", task.schedule());
                    clock.set(next.max(clock.now()));
                    task.tick().await;
                }
                clock.set(until);
            }};
        }

        run_until!(t0 + DAY);
        let stems0 = meta_stems(&meta_dir);
        assert_eq!(stems0.len(), 1, "one ZSK on the token: {stems0:?}");
        let old = stems0.iter().next().unwrap().clone();
        let (keys0, _) = apex(&publisher, &origin);
        assert!(keys0.contains(&(tag_of(&old), 256)), "{keys0:?} {old}");
        let labels0 = token_labels(&hsm.list_objects());
        assert!(
            labels0.contains(&old),
            "{old} not on the token: {labels0:?}"
        );
        assert_eq!(private_key_objects(&hsm.list_objects()).len(), 1);

        // the lifetime ends after 10 days; the old ZSK leaves the zone once the rollover is
        // done; purge-keys (1 day) later it is purged. Stop before the next rollover (day 20).
        run_until!(t0 + 12 * DAY);
        let (keys, _) = apex(&publisher, &origin);
        let zsk_now: BTreeSet<u16> = keys
            .iter()
            .filter(|(_, f)| *f == 256)
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(zsk_now.len(), 1, "{keys:?}");
        assert!(
            !zsk_now.contains(&tag_of(&old)),
            "the ZSK was not rolled: {keys:?}"
        );
        run_until!(t0 + 19 * DAY);
        let stems = meta_stems(&meta_dir);
        assert!(
            !stems.contains(&old),
            "the old ZSK's metadata is still there: {stems:?} (status {:?})",
            task.status().keys
        );
        let listing = hsm.list_objects();
        let labels = token_labels(&listing);
        assert!(
            !labels.contains(&old),
            "the purged ZSK {old} is still on the token:\n{listing}"
        );
        let (keys, _) = apex(&publisher, &origin);
        let current: Vec<u16> = keys
            .iter()
            .filter(|(_, f)| *f == 256)
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(current.len(), 1, "{keys:?}");
        let new = stems
            .iter()
            .find(|s| tag_of(s) == current[0])
            .unwrap_or_else(|| panic!("no metadata for the new ZSK {current:?}: {stems:?}"))
            .clone();
        assert!(
            labels.contains(&new),
            "{new} is not on the token:\n{listing}"
        );
        let privs = private_key_objects(&listing);
        assert!(
            privs.iter().any(|(l, _)| *l == new),
            "no private key object for {new}:\n{listing}"
        );
        assert!(
            privs.iter().all(|(l, _)| stems.contains(l)),
            "{privs:?} {stems:?}"
        );
        assert!(zsks_seen.len() >= 2, "{zsks_seen:?}");
    });
}
