//! Golden files: a fixed zone signed with a fixed Ed25519 key (deterministic signatures, RFC 8032)
//! at a fixed time gives exactly the expected output, for NSEC, NSEC3 and NSEC3 opt-out.
//! `SIGNET_BLESS=1 cargo test --test golden` rewrites the expected files after a deliberate
//! change; each expected file was also checked with kzonecheck at the signing time (below).

mod common;

use signet::dns::name::Name;
use signet::keystore::{dnskey_rdata, key_tag, pkcs8, RingSigningKey, SigningKey};
use signet::signer::{self, ActiveKey, Denial, SignParams};
use signet::zonefile;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const NOW: u64 = 1_704_067_200; // 2024-01-01T00:00:00Z

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(p)
}

fn golden(denial: Denial, name: &str) {
    let origin = Name::parse("golden.test.", None).unwrap();
    let (zone, _) = zonefile::load_zone(&data("golden.zone"), &origin).unwrap();
    let der = pkcs8::ed25519_pkcs8(&[42u8; 32]);
    let key = RingSigningKey::from_der(15, &der).unwrap();
    let dnskey = dnskey_rdata(257, 15, key.public_key());
    let active = ActiveKey {
        tag: key_tag(&dnskey),
        dnskey,
        key: Arc::new(key),
        signs_keys: true,
        signs_zone: true,
        publish: true,
    };
    let params = SignParams {
        denial,
        dnskey_ttl: 3600,
        validity: 14 * 86400,
        validity_dnskey: 14 * 86400,
        jitter: 12 * 3600,
        dnskey_jitter: 12 * 3600,
        threads: 2,
    };
    let signed = signer::sign_zone(&zone, &[active], &params, NOW).unwrap();
    assert!(signer::verify::check_zone(&signed, NOW, true).is_empty());
    let mut out = Vec::new();
    zonefile::write_zone(&mut out, &signed).unwrap();
    let out = String::from_utf8(out).unwrap();
    let path = data(&format!("golden/{name}.signed"));
    if std::env::var("SIGNET_BLESS").is_ok() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &out).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        want == out,
        "{name}: output differs from {} (SIGNET_BLESS=1 to accept a deliberate change)\n--- got ---\n{out}",
        path.display()
    );
    // an independent check of the golden file itself, at the signing time
    if common::require("kzonecheck", "knot-dnssecutils").is_some() {
        let r = common::run_tool(
            "kzonecheck",
            &[
                "-o",
                "golden.test",
                "-d",
                "on",
                "-t",
                &(NOW + 60).to_string(),
                &path.to_string_lossy(),
            ],
        );
        assert!(r.ok(), "kzonecheck rejects {}: {r}", path.display());
    }
}

#[test]
fn golden_nsec() {
    golden(Denial::Nsec, "nsec");
}

#[test]
fn golden_nsec3() {
    golden(
        Denial::Nsec3 {
            iterations: 0,
            salt: vec![],
            opt_out: false,
        },
        "nsec3",
    );
}

#[test]
fn golden_nsec3_optout() {
    golden(
        Denial::Nsec3 {
            iterations: 0,
            salt: vec![0xab, 0xcd],
            opt_out: true,
        },
        "nsec3-optout",
    );
}
