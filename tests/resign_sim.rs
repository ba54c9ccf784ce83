//! Signature refresh on the simulated clock (issue 4): 60 days of a file-sourced zone with a real
//! BIND named secondary following by NOTIFY + IXFR. Every day: the secondary's copy validates at
//! the simulated time (kzonecheck -t), no signature it serves is inside the refresh window, and
//! the day's changes are a small fraction of the zone (no day rewrites every RRSIG).

mod common;

use common::*;
use signet::clock::{Clock, SimClock, SystemClock};
use signet::dns::name::Name;
use signet::publisher::Publisher;
use signet::zone::service::{unfold_time, ZoneTask};
use std::sync::Arc;
use std::time::Duration;

const ZONE: &str = "example.org";
const DAY: u64 = 86_400;

#[test]
fn sixty_days_of_signature_refresh() {
    require!("named", "dig", "kzonecheck");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = TempDir::new("resign-sim");
        let key = TsigKey::generate("xfr-key");
        let port = free_port();
        let sec_port = free_port();
        let mut zone = String::from("$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 604800 300\n@ NS ns1\nns1 A 192.0.2.1\n");
        for i in 0..400 {
            zone.push_str(&format!("h{i} A 198.51.100.{}\n", i % 250 + 1));
        }
        let zf = dir.write("zone.db", zone);
        let conf = dir.write(
            "signet.toml",
            format!(
                "[server]\nlisten = [\"127.0.0.1:{port}\"]\nstate-dir = \"{}\"\n{}\n[keystore.files]\nbackend = \"files\"\ndirectory = \"{}\"\n[policy.p]\nkeys = [{{ role = \"csk\", algorithm = \"ed25519\" }}]\nmax-zone-ttl = \"300s\"\n[[zone]]\nname = \"{ZONE}\"\npolicy = \"p\"\nfile = \"{}\"\nnotify = [\"127.0.0.1:{sec_port}\"]\nallow-transfer = [\"key:{}\"]\n",
                dir.join("state").display(),
                key.signet_toml(),
                dir.join("keys").display(),
                zf.display(),
                key.name
            ),
        );
        let cfg = signet::config::load(&conf).unwrap();
        let refresh = cfg.policy_for(&cfg.zones[0]).signatures_refresh;
        let clock = SimClock::new(SystemClock.now());
        // TSIG on the wire needs the real time; the zone task runs on the simulated clock
        let publisher = Arc::new(Publisher::new(Arc::new(SystemClock)));
        publisher.set_keys(signet::auth::Keyring::from_config(cfg.tsig.values()).unwrap());
        let server = signet::publisher::server::Server::bind(&cfg.server.listen, publisher.clone())
            .await
            .unwrap();
        let (_stop, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(server.run(stop_rx));
        let zcfg = cfg.zones[0].clone();
        let (mut task, _st) = ZoneTask::new(Arc::new(cfg), zcfg, publisher.clone(), Arc::new(clock.clone())).unwrap();
        task.start();
        task.tick().await;
        let origin = Name::parse("example.org.", None).unwrap();
        let serial = || publisher.get(&origin).and_then(|s| s.serial()).unwrap();
        let named = tokio::task::block_in_place(|| {
            NamedSecondary::builder(port, &key).zone(ZONE).port(sec_port).start(&dir)
        });
        let s0 = serial();
        named.wait_serial(ZONE, s0, Duration::from_secs(30)).unwrap();
        let total_sigs = publisher.get(&origin).unwrap().zone.nodes.values().map(|n| n.sigs.len()).sum::<usize>();
        let t0 = clock.now();
        let mut prev = publisher.get(&origin).unwrap();
        let mut worst_day = 0usize;
        for day in 1..=60u64 {
            let until = t0 + day * DAY;
            // run every event due today
            loop {
                let next = task.next_due().unwrap_or(until + 1);
                if next > until {
                    break;
                }
                clock.set(next.max(clock.now()));
                task.tick().await;
            }
            clock.set(until);
            let cur = publisher.get(&origin).unwrap();
            let now = clock.now();
            // the day's changes
            let cs = signet::journal::diff(&prev.zone, &cur.zone);
            let changed_sigs = cs.added.iter().filter(|r| r.rtype == signet::dns::rtype::t::RRSIG).count();
            worst_day = worst_day.max(changed_sigs);
            assert!(
                changed_sigs * 2 < total_sigs,
                "day {day}: {changed_sigs} of {total_sigs} signatures rewritten"
            );
            // nothing served is inside the refresh window
            for n in cur.zone.nodes.values() {
                for s in &n.sigs {
                    let exp = unfold_time(u32::from_be_bytes([s.rdata[8], s.rdata[9], s.rdata[10], s.rdata[11]]), now);
                    assert!(exp > now + refresh - 3600 * 2, "day {day}: a signature expires at {exp}, inside the refresh window (now {now})");
                }
            }
            // the secondary follows and its copy validates at the simulated time
            let s = serial();
            let n = tokio::task::block_in_place(|| named.wait_serial(ZONE, s, Duration::from_secs(30)));
            n.unwrap_or_else(|e| panic!("day {day}: {e}"));
            let f = dir.join(format!("day{day}.zone"));
            axfr_to_file(&tokio::task::block_in_place(|| named.axfr(ZONE)), &f);
            let r = run_tool("kzonecheck", &["-o", ZONE, "-d", "on", "-t", &now.to_string(), &f.to_string_lossy()]);
            assert!(r.ok(), "day {day}: named's copy does not validate at {now}: {r}");
            prev = cur;
        }
        eprintln!("60 days: at most {worst_day} of {total_sigs} signatures rewritten in a day");
    });
}
