//! A zone's signing keys under its policy, and the signing parameters the policy implies.
//!
//! Until key rollovers arrive (issue 5) a zone's key set is simple: for each key the policy
//! names (role + algorithm + keystore), the newest matching key in the keystore that is not
//! retired is used; if there is none, one is generated and its metadata written (crash-safely,
//! by the keystore) before any DNSKEY that depends on it can be published.

use crate::config::{self, Config, KeystoreBackend, Policy, ZoneConfig};
use crate::keystore::{FileKeystore, KeyRole, StoredKey};
use crate::signer::{ActiveKey, Denial, SignParams};
use std::path::{Path, PathBuf};

/// The keys a zone signs with now, with their metadata.
pub struct ZoneKeys {
    pub active: Vec<ActiveKey>,
    pub stored: Vec<(String /* keystore */, StoredKey)>,
}

fn role_of(r: config::KeyRole) -> KeyRole {
    match r {
        config::KeyRole::Ksk => KeyRole::Ksk,
        config::KeyRole::Zsk => KeyRole::Zsk,
        config::KeyRole::Csk => KeyRole::Csk,
    }
}

/// Opens the files keystore `name` of the configuration.
pub fn open_keystore(cfg: &Config, name: &str) -> Result<FileKeystore, String> {
    let ks = cfg
        .keystores
        .get(name)
        .ok_or_else(|| format!("keystore {name} is not defined"))?;
    match &ks.backend {
        KeystoreBackend::Files { directory } => FileKeystore::open(directory)
            .map_err(|e| format!("keystore {name} ({}): {e}", directory.display())),
        KeystoreBackend::Pkcs11 { .. } => Err(format!(
            "keystore {name}: the pkcs11 backend is not available yet (issue 6); use backend = \"files\""
        )),
    }
}

/// Finds (or, with `create`, generates) the keys the policy asks for.
pub fn ensure_keys(
    cfg: &Config,
    zone: &ZoneConfig,
    policy: &Policy,
    now: u64,
    create: bool,
) -> Result<ZoneKeys, String> {
    let mut out = ZoneKeys {
        active: Vec::new(),
        stored: Vec::new(),
    };
    for spec in &policy.keys {
        let ks = open_keystore(cfg, &spec.keystore)?;
        let role = role_of(spec.role);
        let existing = ks
            .list(&zone.name)
            .map_err(|e| format!("zone {}: {e}", zone.name))?;
        let mut candidates: Vec<StoredKey> = existing
            .into_iter()
            .filter(|k| {
                k.role == role
                    && k.algorithm == spec.algorithm
                    && k.retired.is_none()
                    && k.removed.is_none()
            })
            .filter(|k| {
                !out.stored
                    .iter()
                    .any(|(_, s)| s.tag == k.tag && s.algorithm == k.algorithm)
            })
            .collect();
        candidates.sort_by_key(|k| std::cmp::Reverse(k.created));
        let key = match candidates.into_iter().next() {
            Some(k) => k,
            None if create => {
                let mut k = ks
                    .generate(&zone.name, role, spec.algorithm, now)
                    .map_err(|e| {
                        format!("zone {}: cannot generate a {role} key: {e}", zone.name)
                    })?;
                k.published = Some(now);
                k.active = Some(now);
                k.state = "active".into();
                ks.save_meta(&k)
                    .map_err(|e| format!("zone {}: {e}", zone.name))?;
                tracing::info!(zone = %zone.name, tag = k.tag, role = %role, algorithm = k.algorithm, "generated key");
                k
            }
            None => {
                return Err(format!(
                    "zone {}: no {role} key with algorithm {} in keystore {}",
                    zone.name, spec.algorithm, spec.keystore
                ))
            }
        };
        let signer = ks
            .load_signer(&key)
            .map_err(|e| format!("zone {}: key {}: {e}", zone.name, key.tag))?;
        out.active.push(ActiveKey {
            key: signer,
            dnskey: key.dnskey_rdata(),
            tag: key.tag(),
            signs_keys: role.signs_keys(),
            signs_zone: role.signs_zone(),
        });
        out.stored.push((spec.keystore.clone(), key));
    }
    Ok(out)
}

/// Where a zone keeps its state (signed copy, NSEC3 salt).
pub fn zone_state_dir(cfg: &Config, zone: &str) -> PathBuf {
    let n = zone.trim_end_matches('.');
    let n = if n.is_empty() { "root" } else { n };
    cfg.server.state_dir.join("zones").join(n)
}

/// The NSEC3 salt of a zone: kept in the state directory so that re-signing keeps the chain
/// (a new salt rewrites every NSEC3 record). An empty salt (RFC 9276) needs no file.
pub fn nsec3_salt(dir: &Path, len: u8) -> Result<Vec<u8>, String> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let path = dir.join("nsec3-salt");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Ok(v) = data_encoding::HEXLOWER_PERMISSIVE.decode(text.trim().as_bytes()) {
            if v.len() == len as usize {
                return Ok(v);
            }
        }
    }
    let mut salt = vec![0u8; len as usize];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .map_err(|_| "no randomness for the NSEC3 salt".to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    crate::keystore::write_atomic(
        dir,
        "nsec3-salt",
        data_encoding::HEXLOWER.encode(&salt).as_bytes(),
        0o644,
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(salt)
}

/// Signing parameters from a policy.
pub fn sign_params(policy: &Policy, salt: Vec<u8>) -> SignParams {
    let clamp = |v: u64| v.min(u32::MAX as u64) as u32;
    SignParams {
        denial: match &policy.nsec3 {
            None => Denial::Nsec,
            Some(n) => Denial::Nsec3 {
                iterations: n.iterations,
                salt,
                opt_out: n.opt_out,
            },
        },
        dnskey_ttl: clamp(policy.dnskey_ttl),
        validity: clamp(policy.signatures_validity),
        validity_dnskey: clamp(policy.signatures_validity_dnskey),
        jitter: clamp(policy.signatures_jitter),
        threads: 0,
    }
}
