//! The PKCS#11 keystore as a library, in-process against SoftHSM2 (issue 6): generation for
//! every algorithm, parallel signing through the session pool, zones kept apart, metadata
//! updates, purge (the token objects go too), import of BIND keys onto the token (including an
//! RSA-1024 key ring could not sign with), and recovery after the token disappears and comes
//! back, without reopening anything.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once per process, so this file has exactly one test that uses
//! the module.

mod common;
mod hsm_support;

use common::*;
use hsm_support::*;
use signet::config::PinSource;
use signet::keystore::{read_bind_key, verify_signature, KeyRole, Pkcs11Keystore, SigningKey};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn sign_verify(key: &Arc<dyn SigningKey>, msg: &[u8]) {
    let sig = key
        .sign(msg)
        .unwrap_or_else(|e| panic!("signing failed: {e}"));
    assert!(
        verify_signature(key.algorithm(), key.public_key(), msg, &sig),
        "signature of algorithm {} does not verify",
        key.algorithm()
    );
}

fn token_labels(hsm: &SoftHsm) -> Vec<String> {
    private_key_objects(&hsm.list_objects())
        .into_iter()
        .map(|(l, _)| l)
        .collect()
}

#[test]
fn keystore_lifecycle_in_process() {
    if !have_softhsm() {
        return;
    }
    require!("dnssec-keygen");
    let tmp = TempDir::new("hsm-lib");
    let hsm = SoftHsm::new(&tmp);
    // the only test of this binary that loads the module: setting the variable is safe here
    std::env::set_var("SOFTHSM2_CONF", &hsm.conf);
    let meta = tmp.join("state/keys-hsm");
    let pin = PinSource::Literal(PIN.into());
    let ks = Pkcs11Keystore::open("hsm", Path::new(MODULE), LABEL, &pin, &meta)
        .unwrap_or_else(|e| panic!("open: {e}"));
    assert_eq!(ks.token_label(), LABEL);

    // --- generation for every algorithm --------------------------------------------------------
    let none = HashSet::new();
    let mut made = Vec::new();
    for (i, (alg, role)) in [
        (13u8, KeyRole::Csk),
        (14, KeyRole::Ksk),
        (15, KeyRole::Zsk),
        (8, KeyRole::Ksk),
    ]
    .into_iter()
    .enumerate()
    {
        let k = ks
            .generate("Example.COM", role, alg, 1000 + i as u64, &none)
            .unwrap_or_else(|e| panic!("generate {alg}: {e}"));
        assert_eq!(k.zone, "example.com.");
        assert_eq!(k.flags, role.flags());
        let signer = ks.load_signer(&k).unwrap();
        assert_eq!(signer.public_key(), k.public_key.as_slice());
        sign_verify(&signer, b"hello");
        let r = ks.token_ref(&k).unwrap();
        assert_eq!(r.label, k.file_stem());
        assert_eq!(r.id.len(), 32);
        made.push(k);
    }
    assert_eq!(ks.list("example.com").unwrap(), made);
    assert_eq!(token_labels(&hsm).len(), 4);

    // a generated key never takes a tag the caller says is taken (another keystore's key)
    let taken: HashSet<u16> = (0..=u16::MAX).filter(|t| t % 2 == 0).collect();
    let k = ks
        .generate("example.com", KeyRole::Zsk, 13, 2000, &taken)
        .unwrap();
    assert!(k.tag % 2 == 1 && k.tag() % 2 == 1, "tag {}", k.tag);
    made.push(k);

    // --- parallel signing through the pool -------------------------------------------------------
    let p256 = ks.load_signer(&made[0]).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let key = Arc::clone(&p256);
            s.spawn(move || {
                for i in 0..100 {
                    sign_verify(&key, format!("thread {t} message {i}").as_bytes());
                }
            });
        }
    });

    // --- zones keep apart; a reopened keystore finds the same keys ------------------------------
    let net = ks
        .generate("example.net", KeyRole::Csk, 13, 3000, &none)
        .unwrap();
    let again = Pkcs11Keystore::open("hsm", Path::new(MODULE), LABEL, &pin, &meta).unwrap();
    assert_eq!(again.list("example.com").unwrap(), made);
    assert_eq!(again.list("example.net.").unwrap(), vec![net.clone()]);
    assert_ne!(
        ks.token_ref(&net).unwrap().id[..16],
        ks.token_ref(&made[0]).unwrap().id[..16],
        "the zone half of CKA_ID differs"
    );

    // --- metadata updates keep the token reference ----------------------------------------------
    let mut k = made[1].clone();
    k.state = "omnipresent".into();
    k.published = Some(5);
    k.flags |= 0x0080; // revoked: new tag, same files
    ks.save_meta(&k).unwrap();
    assert!(ks.list("example.com").unwrap().contains(&k));
    assert_eq!(ks.token_ref(&k).unwrap(), ks.token_ref(&made[1]).unwrap());
    let mut other = k.clone();
    other.public_key = net.public_key.clone();
    assert!(ks.save_meta(&other).is_err());

    // --- purge destroys the token objects, then the metadata ------------------------------------
    let ed = made[2].clone();
    let ed_label = ed.file_stem();
    assert!(token_labels(&hsm).contains(&ed_label));
    ks.purge(&ed).unwrap();
    assert!(!token_labels(&hsm).contains(&ed_label));
    assert!(!ks.list("example.com").unwrap().contains(&ed));
    ks.purge(&ed).unwrap(); // idempotent
    assert!(!meta.join(format!("{ed_label}.json")).exists());

    // --- BIND keys onto the token: P-256, Ed25519, and RSA-1024 (too small for ring) ------------
    let kdir = tmp.subdir("bind");
    for args in [
        vec!["-a", "ECDSAP256SHA256", "-f", "KSK"],
        vec!["-a", "ED25519"],
        vec!["-a", "RSASHA256", "-b", "1024"],
    ] {
        let mut full = vec!["-K", kdir.to_str().unwrap()];
        full.extend(args);
        full.push("import.example");
        let name = run_tool("dnssec-keygen", &full).expect_ok();
        let private = kdir.join(format!("{}.private", name.trim()));
        let bk = read_bind_key(&private).unwrap_or_else(|e| panic!("read: {e}"));
        let role = if bk.is_sep() {
            KeyRole::Ksk
        } else {
            KeyRole::Zsk
        };
        let k = ks
            .import(
                &bk.zone,
                role,
                bk.algorithm,
                &bk.material,
                &bk.public_key,
                7,
            )
            .unwrap_or_else(|e| panic!("import {}: {e}", private.display()));
        assert_eq!(k.tag, bk.tag);
        assert_eq!(k.dnskey_rdata(), bk.dnskey_rdata());
        let signer = ks.load_signer(&k).unwrap();
        sign_verify(&signer, b"imported");
        // the same key twice is refused
        let e = ks
            .import(
                &bk.zone,
                role,
                bk.algorithm,
                &bk.material,
                &bk.public_key,
                8,
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("already"), "{e}");
    }
    let listing = hsm.list_objects();
    for (label, block) in private_key_objects(&listing) {
        if label.starts_with("Kimport.example.") {
            assert!(block.contains("sensitive"), "{block}");
            assert!(!block.contains(", extractable"), "{block}");
        }
    }

    // --- the token disappears while keys are in use, and comes back ------------------------------
    let moved = tmp.join("softhsm/tokens.moved");
    std::fs::rename(&hsm.tokens, &moved).unwrap();
    let e = p256.sign(b"during the outage").unwrap_err().to_string();
    assert!(e.contains("keystore") || e.contains("token"), "{e}");
    // further calls fail too (one reconnection attempt, then fast failures), never panic
    for _ in 0..3 {
        assert!(p256.sign(b"still down").is_err());
    }
    assert!(ks.ping().is_err());
    std::fs::rename(&moved, &hsm.tokens).unwrap();
    // after the backoff the same signer object works again
    assert!(
        wait_until(Duration::from_secs(10), || p256.sign(b"back").is_ok()),
        "signing did not resume"
    );
    sign_verify(&p256, b"after recovery");
    ks.ping().unwrap();
    let k = ks
        .generate("example.org", KeyRole::Csk, 15, 4000, &none)
        .unwrap();
    sign_verify(&ks.load_signer(&k).unwrap(), b"new key after recovery");
}
