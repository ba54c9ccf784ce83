//! Benchmark (ignored by default; run with
//! `cargo test --release --test hsm_bench -- --ignored --nocapture`): signatures per second
//! through SoftHSM2 with 1 and 2 signing threads (one pooled session each) beside the files
//! keystore, for ECDSA P-256, Ed25519 and RSA-2048, and the time `signet sign-zone` takes for a
//! zone of `SIGNET_BENCH_NAMES` names (default 100 000, made by
//! `/work/shared/bench/genzone.py` when it exists) with KSK and ZSK on the token.

mod common;
mod hsm_support;

use common::*;
use hsm_support::*;
use signet::config::PinSource;
use signet::keystore::{generate_pkcs8, KeyRole, Pkcs11Keystore, RingSigningKey, SigningKey};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
#[ignore]
fn signatures_per_second_and_full_sign() {
    if !have_softhsm() {
        return;
    }
    let tmp = TempDir::new("hsm-bench");
    let hsm = SoftHsm::new(&tmp);
    std::env::set_var("SOFTHSM2_CONF", &hsm.conf);
    let ks = Pkcs11Keystore::open(
        "hsm",
        Path::new(MODULE),
        LABEL,
        &PinSource::Literal(PIN.into()),
        &tmp.join("meta"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let count = 4000;
    println!("algorithm  keystore  threads  signatures/s");
    for (alg, name) in [(13u8, "P-256"), (15, "Ed25519"), (8, "RSA-2048")] {
        let k = ks
            .generate("bench.example", KeyRole::Zsk, alg, 1, &HashSet::new())
            .unwrap();
        let hsm_key = ks.load_signer(&k).unwrap();
        let n = if alg == 8 { count / 8 } else { count };
        for threads in [1, 2] {
            let r = Pkcs11Keystore::bench(&hsm_key, threads, n).unwrap();
            println!("{name:<10} pkcs11    {threads:>7}  {r:>12.0}");
        }
        if alg != 8 {
            let soft: Arc<dyn SigningKey> =
                Arc::new(RingSigningKey::from_der(alg, &generate_pkcs8(alg).unwrap()).unwrap());
            for threads in [1, 2] {
                let r = Pkcs11Keystore::bench(&soft, threads, count * 4).unwrap();
                println!("{name:<10} files     {threads:>7}  {r:>12.0}");
            }
        }
    }

    // full signing of a large zone with KSK + ZSK on the token
    let names: usize = std::env::var("SIGNET_BENCH_NAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let genzone = Path::new("/work/shared/bench/genzone.py");
    let zone_file = tmp.join("big.zone");
    if genzone.exists() {
        let o = run(
            std::process::Command::new("python3")
                .arg(genzone)
                .arg("example.com")
                .arg(names.to_string()),
            Duration::from_secs(300),
        );
        assert!(o.ok(), "{o}");
        write_file(&zone_file, o.stdout);
    } else {
        let mut z = zone_text("example.com", 1);
        for i in 0..names {
            z.push_str(&format!("h{i} IN A 192.0.2.{}\n", i % 250 + 1));
        }
        write_file(&zone_file, z);
    }
    let keys = r#"[{ role = "ksk", algorithm = 13, lifetime = "unlimited", keystore = "hsm" },
                   { role = "zsk", algorithm = 13, lifetime = "unlimited", keystore = "hsm" }]"#;
    let conf = tmp.write(
        "signet.toml",
        config(tmp.path(), keys, &[("example.com", &zone_file)], ""),
    );
    let out = tmp.join("big.signed");
    // first run creates the keys; the second is the measurement
    sign_zone(&hsm, &conf, "example.com", &zone_file, &out);
    let t0 = Instant::now();
    let log = sign_zone(&hsm, &conf, "example.com", &zone_file, &out);
    let took = t0.elapsed();
    let rrsigs = read_file(&out)
        .lines()
        .filter(|l| l.split_whitespace().nth(3) == Some("RRSIG"))
        .count();
    println!(
        "full sign, {names} names, KSK+ZSK P-256 on SoftHSM: {:.1} s for {rrsigs} RRSIGs ({:.0}/s)\n{}",
        took.as_secs_f64(),
        rrsigs as f64 / took.as_secs_f64(),
        log.trim()
    );
    // the same with the keys in files, for comparison
    let soft = r#"[{ role = "ksk", algorithm = 13, lifetime = "unlimited", keystore = "files" },
                   { role = "zsk", algorithm = 13, lifetime = "unlimited", keystore = "files" }]"#;
    let conf = tmp.write(
        "soft.toml",
        config(tmp.path(), soft, &[("example.com", &zone_file)], ""),
    );
    sign_zone(&hsm, &conf, "example.com", &zone_file, &out);
    let t0 = Instant::now();
    sign_zone(&hsm, &conf, "example.com", &zone_file, &out);
    println!(
        "full sign, {names} names, KSK+ZSK P-256 in files: {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}
