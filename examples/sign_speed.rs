//! "The time the signatures alone cost" (issue 2's benchmark goal: `sign-zone` within 1.5× of
//! count × one-core signing time ÷ cores), measured on this machine:
//!
//! 1. the raw signature: ring signing a typical RRSIG signing input (~110 octets) on one core;
//! 2. `signer::sign_rrset` (signing input built, RRSIG RDATA assembled) over RRsets shaped like
//!    the benchmark zone's (`genzone.py`: A/AAAA/TXT/MX RRsets of one or two records at
//!    random owners), on one core;
//!
//! then prints count × (1) ÷ cores, the bound `sign-zone` is compared with.
//!
//! ```sh
//! cargo run --release --example sign_speed -- [--alg 13] [--n 100000] [--count 2378989] [--cores 2]
//! ```
//! `--count` is the number of RRSIGs of the signed zone (2,378,989 for the 1M-name benchmark
//! zone, 237,727 for 100k; `grep -c RRSIG` of a signed output gives it). The machine is shared:
//! run it beside `sign-zone` and prefer the lowest of a few runs (CPU time is less noisy than
//! wall time; both are printed).

use signet::dns::name::Name;
use signet::dns::rtype::t;
use signet::keystore::{dnskey_rdata, key_tag};
use signet::keystore::{generate_pkcs8, RingSigningKey, SigningKey};
use signet::signer::{sign_rrset, ActiveKey};
use signet::zone::data::RRset;
use std::sync::Arc;
use std::time::Instant;

fn arg(args: &[String], flag: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{flag}: not a number: {v}"))
        })
        .unwrap_or(default)
}

/// xorshift: deterministic "random" owners and addresses.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// RRsets shaped like the benchmark zone's, with their owners.
fn rrsets(n: usize, origin: &Name) -> Vec<(Name, RRset)> {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| {
            let len = 5 + (rng.next() % 9) as usize;
            let label: Vec<u8> = (0..len)
                .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
                .collect();
            let owner = origin.prepend(&label).expect("label");
            let count = 1 + (rng.next() % 2) as usize;
            let set = match rng.next() % 4 {
                0 | 1 => RRset {
                    rtype: t::A,
                    ttl: 3600,
                    rdatas: (0..count)
                        .map(|_| (rng.next() as u32).to_be_bytes().to_vec())
                        .collect(),
                },
                2 => RRset {
                    rtype: t::AAAA,
                    ttl: 3600,
                    rdatas: vec![(rng.next() as u128).to_be_bytes().to_vec()],
                },
                _ => {
                    let text = format!("id={:016x}", rng.next());
                    let mut rd = vec![text.len() as u8];
                    rd.extend_from_slice(text.as_bytes());
                    RRset {
                        rtype: t::TXT,
                        ttl: 3600,
                        rdatas: vec![rd],
                    }
                }
            };
            (owner, set)
        })
        .collect()
}

/// CPU seconds of this process (user + system), for the per-signature cost on a busy machine.
fn cpu() -> f64 {
    signet::signer::phase::process_cpu_seconds().unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let alg = arg(&args, "--alg", 13) as u8;
    let n = arg(&args, "--n", 100_000) as usize;
    let count = arg(&args, "--count", 2_378_989);
    let cores = arg(&args, "--cores", 2).max(1);

    let der = generate_pkcs8(alg).expect("key generation");
    let key = RingSigningKey::from_der(alg, &der).expect("key");
    let dnskey = dnskey_rdata(256, alg, key.public_key());
    let active = ActiveKey {
        tag: key_tag(&dnskey),
        dnskey,
        key: Arc::new(key),
        signs_keys: false,
        signs_zone: true,
        publish: true,
    };
    let origin = Name::parse("example.com.", None).expect("origin");
    let sets = rrsets(n, &origin);

    // 1. raw signatures over inputs of a typical length
    let inputs: Vec<Vec<u8>> = (0..n.min(4096))
        .map(|i| {
            let mut v = vec![0u8; 110];
            v[..8].copy_from_slice(&(i as u64).to_be_bytes());
            v
        })
        .collect();
    let (w0, c0) = (Instant::now(), cpu());
    for i in 0..n {
        let s = active.key.sign(&inputs[i % inputs.len()]).expect("sign");
        std::hint::black_box(s);
    }
    let raw_wall = w0.elapsed().as_secs_f64() / n as f64;
    let raw_cpu = (cpu() - c0) / n as f64;

    // 2. sign_rrset over benchmark-shaped RRsets
    let mut buf = Vec::with_capacity(512);
    let (w0, c0) = (Instant::now(), cpu());
    for (owner, set) in &sets {
        let sig = sign_rrset(owner, set, &active, &origin, 1_000_000, 2_000_000, &mut buf)
            .expect("sign_rrset");
        std::hint::black_box(sig);
    }
    let rr_wall = w0.elapsed().as_secs_f64() / n as f64;
    let rr_cpu = (cpu() - c0) / n as f64;

    println!("algorithm {alg}, {n} signatures per measurement, one core");
    println!(
        "raw signature      {:8.2} µs wall  {:8.2} µs CPU  ({:.0}/s)",
        raw_wall * 1e6,
        raw_cpu * 1e6,
        1.0 / raw_wall
    );
    println!(
        "sign_rrset         {:8.2} µs wall  {:8.2} µs CPU  ({:.0}/s)",
        rr_wall * 1e6,
        rr_cpu * 1e6,
        1.0 / rr_wall
    );
    // the lower of wall and CPU per signature: wall includes waiting for a busy core, CPU has a
    // 10 ms resolution (negligible over many signatures)
    let per = if raw_cpu.is_finite() {
        raw_cpu.min(raw_wall)
    } else {
        raw_wall
    };
    let alone_cpu = count as f64 * per;
    println!(
        "signatures alone for {count} RRSIGs: {:.1} CPU-s, {:.1} s on {cores} cores; 1.5x = {:.1} s",
        alone_cpu,
        alone_cpu / cores as f64,
        1.5 * alone_cpu / cores as f64
    );
}
