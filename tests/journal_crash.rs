//! The journal under kill -9: a child process (this test binary, re-run with an environment
//! variable) appends changesets as fast as it can, with bounds small enough that compaction
//! rewrites the file every few appends, and prints `ACK serial` after each `append` returned.
//! The parent kills it with SIGKILL at random moments, many times, and after each kill checks
//! that the journal opens without error, holds every acknowledged serial, stays within its
//! bounds, chains, replays from its oldest version to exactly its newest, and that no temporary
//! file of an interrupted rewrite is left behind. The child then goes on from where the journal
//! ends, as the zone task does after a restart.
//!
//! (A torn entry at every byte offset, which a power loss rather than a process kill can leave,
//! is covered by the unit tests in `src/journal/tests.rs`.)

use signet::dns::name::Name;
use signet::dns::rtype::t;
use signet::journal::{apply, diff, same_content, Journal, JournalLimits};
use signet::zone::data::{RRset, Zone};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const ENV: &str = "SIGNET_JOURNAL_CRASH_DIR";

const LIMITS: JournalLimits = JournalLimits {
    max_bytes: 256 * 1024,
    max_entries: 10,
};

fn name(s: &str) -> Name {
    Name::parse(s, None).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn origin() -> Name {
    name("example.")
}

fn soa(serial: u32) -> Vec<u8> {
    let mut rd = name("ns.example.").as_wire().to_vec();
    rd.extend_from_slice(name("hostmaster.example.").as_wire());
    for v in [serial, 3600, 600, 86400, 300] {
        rd.extend_from_slice(&v.to_be_bytes());
    }
    rd
}

fn put(z: &mut Zone, owner: &str, rtype: u16, rdata: Vec<u8>) {
    z.nodes.entry(name(owner)).or_default().put(RRset {
        rtype,
        ttl: 300,
        rdatas: vec![rdata],
    });
}

/// Version `k`, a pure function of `k`: host `i` changes every `i + 1` versions, `s{k}` exists
/// only in version `k`, and every seventh version carries 300 extra names (a large entry).
fn version(k: u32) -> Zone {
    let mut z = Zone::new(origin());
    put(&mut z, "example.", t::SOA, soa(k));
    put(
        &mut z,
        "example.",
        t::NS,
        name("ns.example.").as_wire().to_vec(),
    );
    for i in 0..60u32 {
        let v = k / (i + 1);
        put(
            &mut z,
            &format!("h{i}.example."),
            t::A,
            vec![10, (v >> 8) as u8, v as u8, i as u8],
        );
    }
    put(
        &mut z,
        &format!("s{k}.example."),
        t::TXT,
        b"\x04once".to_vec(),
    );
    if k.is_multiple_of(7) {
        for j in 0..300 {
            put(
                &mut z,
                &format!("bulk{j}.example."),
                t::TXT,
                format!("\x10bulk record {j:04}").into_bytes(),
            );
        }
    }
    z
}

/// The child: appends forever (until killed), acknowledging each durable append.
#[test]
#[ignore = "run by kill_9_during_appends_never_loses_an_acknowledged_entry"]
fn child_writer() {
    let Ok(dir) = std::env::var(ENV) else {
        return;
    };
    let mut j = Journal::open(Path::new(&dir), &origin(), LIMITS)
        .unwrap_or_else(|e| panic!("child open: {e}"));
    let mut serial = match j.last_serial() {
        Some(s) => s,
        None => {
            j.reset(1).unwrap_or_else(|e| panic!("reset: {e}"));
            1
        }
    };
    let mut cur = version(serial);
    loop {
        let next = version(serial + 1);
        let cs = diff(&cur, &next);
        j.append(&cs).unwrap_or_else(|e| panic!("append: {e}"));
        serial += 1;
        println!("ACK {serial}");
        cur = next;
    }
}

#[test]
fn kill_9_during_appends_never_loses_an_acknowledged_entry() {
    let dir = std::env::temp_dir().join(format!("signet-journal-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let mut rnd: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    let mut acked = 0u32;
    let mut kills = 0;
    for round in 0..40 {
        let mut child = Command::new(&exe)
            .args([
                "child_writer",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        rnd ^= rnd << 13;
        rnd ^= rnd >> 7;
        rnd ^= rnd << 17;
        std::thread::sleep(Duration::from_millis(20 + rnd % 150));
        // SIGKILL: no destructor, no flush, no chance to finish the write in progress
        let _ = child.kill();
        let _ = child.wait();
        kills += 1;
        let mut out = String::new();
        if let Some(mut so) = child.stdout.take() {
            let _ = so.read_to_string(&mut out);
        }
        if let Some(max) = out
            .lines()
            .filter_map(|l| l.strip_prefix("ACK ")?.trim().parse::<u32>().ok())
            .max()
        {
            acked = acked.max(max);
        }

        let j = Journal::open(&dir, &origin(), LIMITS)
            .unwrap_or_else(|e| panic!("round {round}: open after kill -9 failed: {e}"));
        let last = j.last_serial().unwrap_or(0);
        assert!(
            last >= acked,
            "round {round}: acknowledged serial {acked} lost (journal ends at {last})"
        );
        assert!(j.len() <= LIMITS.max_entries, "round {round}");
        assert!(j.size() <= LIMITS.max_bytes + 64 * 1024, "round {round}");
        if let Some(first) = j.first_serial() {
            let chain = j
                .since(first)
                .unwrap_or_else(|| panic!("round {round}: no chain from the first serial"));
            let mut z = version(first);
            for cs in &chain {
                z = apply(&z, cs).unwrap_or_else(|e| panic!("round {round}: {e}"));
            }
            assert!(
                same_content(&z, &version(last)),
                "round {round}: replaying {first}..{last} does not give version {last}"
            );
        }
        let leftovers: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".tmp"))
                    .collect()
            })
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "round {round}: {leftovers:?}");
    }
    eprintln!("{kills} kills, last acknowledged serial {acked}");
    assert!(acked > 40, "the child made too little progress ({acked})");
    let _ = std::fs::remove_dir_all(&dir);
}
