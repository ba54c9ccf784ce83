//! A zone's signing keys under its policy, and the signing parameters the policy implies.
//!
//! Until key rollovers arrive (issue 5) a zone's key set is simple: for each key the policy
//! names (role + algorithm + keystore), the newest matching key in the keystore that is not
//! retired is used; if there is none, one is generated and its metadata written (crash-safely,
//! by the keystore) before any DNSKEY that depends on it can be published.
//!
//! A policy may mix keystores (KSK on an HSM, ZSK in files): each key is looked up and
//! generated in its own keystore, and key tags stay unique across all of the zone's keystores.
//! PKCS#11 keystores ([`Pkcs11Keystore`]) keep their metadata in `<state-dir>/keys-<name>/`.
//!
//! [`import_bind_key`] brings an existing BIND key pair under the zone's policy
//! (`signet keys import`).

use crate::config::{self, Config, KeystoreBackend, Policy, ZoneConfig};
use crate::kasp::{KeyPlan, KeyRef, KeyRequest, ZoneKeyState};
use crate::keystore::{
    dnskey_rdata, key_tag, read_bind_key, FileKeystore, KeyError, KeyRole, Pkcs11Keystore,
    SigningKey, StoredKey,
};
use crate::signer::{ActiveKey, Denial, SignParams};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// An open keystore of either backend.
#[derive(Debug)]
pub enum Keystore {
    /// `backend = "files"`: PKCS#8 files.
    Files(FileKeystore),
    /// `backend = "pkcs11"`: keys on a token, metadata in `<state-dir>/keys-<name>/`.
    Pkcs11(Arc<Pkcs11Keystore>),
}

/// How many times a generated key whose tag collides with a key of the zone in another
/// keystore is thrown away and another drawn.
const CROSS_STORE_ATTEMPTS: usize = 16;

/// The DNSKEY tags a key answers to, with and without REVOKE.
pub fn tag_variants(key: &StoredKey) -> [u16; 2] {
    [
        key_tag(&dnskey_rdata(
            key.flags & !0x0080,
            key.algorithm,
            &key.public_key,
        )),
        key_tag(&dnskey_rdata(
            key.flags | 0x0080,
            key.algorithm,
            &key.public_key,
        )),
    ]
}

impl Keystore {
    /// `"files"` or `"pkcs11"`.
    pub fn backend(&self) -> &'static str {
        match self {
            Keystore::Files(_) => "files",
            Keystore::Pkcs11(_) => "pkcs11",
        }
    }

    /// The zone's keys in this keystore, oldest first.
    pub fn list(&self, zone: &str) -> Result<Vec<StoredKey>, KeyError> {
        match self {
            Keystore::Files(f) => f.list(zone),
            Keystore::Pkcs11(p) => p.list(zone),
        }
    }

    /// Generates a key (on the token for PKCS#11) whose tags are not in `taken` (the zone's keys
    /// in other keystores) nor among the zone's keys in this keystore.
    pub fn generate(
        &self,
        zone: &str,
        role: KeyRole,
        algorithm: u8,
        now: u64,
        taken: &HashSet<u16>,
    ) -> Result<StoredKey, KeyError> {
        match self {
            Keystore::Pkcs11(p) => p.generate(zone, role, algorithm, now, taken),
            Keystore::Files(f) => {
                for _ in 0..CROSS_STORE_ATTEMPTS {
                    let k = f.generate(zone, role, algorithm, now)?;
                    if tag_variants(&k).iter().any(|t| taken.contains(t)) {
                        f.purge(&k)?;
                        continue;
                    }
                    return Ok(k);
                }
                Err(KeyError::Conflict(format!(
                    "zone {zone}: no key without a key tag collision after {CROSS_STORE_ATTEMPTS} attempts"
                )))
            }
        }
    }

    /// The signer of a stored key.
    pub fn load_signer(&self, key: &StoredKey) -> Result<Arc<dyn SigningKey>, KeyError> {
        match self {
            Keystore::Files(f) => f.load_signer(key),
            Keystore::Pkcs11(p) => p.load_signer(key),
        }
    }

    /// Rewrites a key's metadata crash-safely.
    pub fn save_meta(&self, key: &StoredKey) -> Result<(), KeyError> {
        match self {
            Keystore::Files(f) => f.save_meta(key),
            Keystore::Pkcs11(p) => p.save_meta(key),
        }
    }

    /// Deletes a key: its files, or its token objects and then its metadata.
    pub fn purge(&self, key: &StoredKey) -> Result<(), KeyError> {
        match self {
            Keystore::Files(f) => f.purge(key),
            Keystore::Pkcs11(p) => p.purge(key),
        }
    }
}

/// Where a PKCS#11 keystore keeps its key metadata: `<state-dir>/keys-<name>/`.
pub fn pkcs11_meta_dir(cfg: &Config, name: &str) -> PathBuf {
    cfg.server.state_dir.join(format!("keys-{name}"))
}

/// Opens the keystore `name` of the configuration. A PKCS#11 keystore is opened for real:
/// the module loaded, the token found, the PIN read and the login done (once per process;
/// later calls check the connection and reconnect after a failure), so a missing module, a
/// missing token or a wrong PIN is an error here.
pub fn open_keystore(cfg: &Config, name: &str) -> Result<Keystore, String> {
    let ks = cfg
        .keystores
        .get(name)
        .ok_or_else(|| format!("keystore {name} is not defined"))?;
    match &ks.backend {
        KeystoreBackend::Files { directory } => FileKeystore::open(directory)
            .map(Keystore::Files)
            .map_err(|e| format!("keystore {name} ({}): {e}", directory.display())),
        KeystoreBackend::Pkcs11 {
            module,
            token_label,
            pin,
        } => Pkcs11Keystore::open(name, module, token_label, pin, &pkcs11_meta_dir(cfg, name))
            .map(Keystore::Pkcs11)
            .map_err(|e| e.to_string()),
    }
}

/// The distinct keystores of a policy, opened, in the order the policy names them.
fn policy_keystores(cfg: &Config, policy: &Policy) -> Result<Vec<(String, Keystore)>, String> {
    let mut out: Vec<(String, Keystore)> = Vec::new();
    for spec in &policy.keys {
        if out.iter().any(|(n, _)| *n == spec.keystore) {
            continue;
        }
        out.push((spec.keystore.clone(), open_keystore(cfg, &spec.keystore)?));
    }
    Ok(out)
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
    let stores = policy_keystores(cfg, policy)?;
    let mut listed: Vec<(String, Vec<StoredKey>)> = Vec::new();
    let mut taken: HashSet<u16> = HashSet::new();
    for (name, ks) in &stores {
        let keys = ks
            .list(&zone.name)
            .map_err(|e| format!("zone {}: keystore {name}: {e}", zone.name))?;
        for k in &keys {
            taken.extend(tag_variants(k));
        }
        listed.push((name.clone(), keys));
    }
    for spec in &policy.keys {
        let Some((_, ks)) = stores.iter().find(|(n, _)| *n == spec.keystore) else {
            return Err(format!("keystore {} is not defined", spec.keystore));
        };
        let role = role_of(spec.role);
        let existing = listed
            .iter()
            .find(|(n, _)| *n == spec.keystore)
            .map(|(_, k)| k.clone())
            .unwrap_or_default();
        let mut candidates: Vec<StoredKey> = existing
            .into_iter()
            .filter(|k| {
                k.role == role
                    && k.algorithm == spec.algorithm
                    && k.retired.is_none()
                    && k.removed.is_none()
            })
            .filter(|k| {
                !out.stored.iter().any(|(n, s)| {
                    *n == spec.keystore && s.tag == k.tag && s.algorithm == k.algorithm
                })
            })
            .collect();
        candidates.sort_by_key(|k| std::cmp::Reverse(k.created));
        let key = match candidates.into_iter().next() {
            Some(k) => k,
            None if create => {
                let mut k = ks
                    .generate(&zone.name, role, spec.algorithm, now, &taken)
                    .map_err(|e| {
                        format!(
                            "zone {}: cannot generate a {role} key in keystore {}: {e}",
                            zone.name, spec.keystore
                        )
                    })?;
                k.published = Some(now);
                k.active = Some(now);
                k.state = "active".into();
                ks.save_meta(&k)
                    .map_err(|e| format!("zone {}: {e}", zone.name))?;
                taken.extend(tag_variants(&k));
                tracing::info!(zone = %zone.name, tag = k.tag, role = %role, algorithm = k.algorithm, keystore = %spec.keystore, "generated key");
                k
            }
            None => {
                return Err(format!(
                    "zone {}: no {role} key with algorithm {} in keystore {}",
                    zone.name, spec.algorithm, spec.keystore
                ))
            }
        };
        let signer = ks.load_signer(&key).map_err(|e| {
            format!(
                "zone {}: key {} in keystore {}: {e}",
                zone.name, key.tag, spec.keystore
            )
        })?;
        out.active.push(ActiveKey {
            key: signer,
            dnskey: key.dnskey_rdata(),
            tag: key.tag(),
            signs_keys: role.signs_keys(),
            signs_zone: role.signs_zone(),
            publish: true,
        });
        out.stored.push((spec.keystore.clone(), key));
    }
    Ok(out)
}

/// Deletes a key from its keystore for good (after `purge-keys`): the files, or the objects on
/// the token and then the metadata. Idempotent for PKCS#11 keys whose objects are already gone.
pub fn purge_key(cfg: &Config, keystore: &str, key: &StoredKey) -> Result<(), String> {
    let ks = open_keystore(cfg, keystore)?;
    ks.purge(key)
        .map_err(|e| format!("zone {}: purging key {}: {e}", key.zone, key.tag))
}

/// What [`import_bind_key`] did.
#[derive(Debug)]
pub struct Imported {
    /// The keystore that holds the key now.
    pub keystore: String,
    /// Its metadata, as stored.
    pub key: StoredKey,
    /// Things the operator should know (timing that signet ignores, TTL differences).
    pub warnings: Vec<String>,
}

fn fmt_time(t: u64) -> String {
    let days = t / 86_400;
    let rem = t % 86_400;
    // civil from days (Howard Hinnant)
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Imports a BIND key pair (`Kname.+alg+tag.private` with its `.key` beside it) for `zone`
/// into the keystore the zone's policy keeps keys of that role and algorithm in (or the one
/// named by `keystore`, which must be such a keystore), so that signet signs with it from now
/// on instead of generating a key.
///
/// The role follows the DNSKEY flags and the policy: a key with the SEP bit (257) becomes the
/// policy's CSK if the policy has a CSK of that algorithm, else its KSK; a key without it (256)
/// becomes the ZSK. A policy with no key of that role and algorithm is an error (the key
/// would never be used), as is a zone that already has a usable key of that role and algorithm
/// (signet would keep signing with that one). The key is marked active and published at
/// BIND's Publish/Activate times (or now); BIND's Inactive/Delete times are not carried over:
/// the policy decides when the key is rolled.
pub fn import_bind_key(
    cfg: &Config,
    zone: &str,
    path: &Path,
    keystore: Option<&str>,
    now: u64,
) -> Result<Imported, String> {
    let zcfg = cfg
        .zone(zone)
        .ok_or_else(|| format!("zone {zone} is not in the configuration"))?;
    let policy = cfg.policy_for(zcfg);
    let bk = read_bind_key(path).map_err(|e| e.to_string())?;
    if bk.zone != zcfg.name {
        return Err(format!(
            "{}: the key belongs to zone {}, not {}",
            bk.key_path.display(),
            bk.zone,
            zcfg.name
        ));
    }
    let wanted: &[config::KeyRole] = if bk.is_sep() {
        &[config::KeyRole::Csk, config::KeyRole::Ksk]
    } else {
        &[config::KeyRole::Zsk]
    };
    let spec = wanted
        .iter()
        .find_map(|r| {
            policy.keys.iter().find(|s| {
                s.role == *r
                    && s.algorithm == bk.algorithm
                    && keystore.is_none_or(|k| k == s.keystore)
            })
        })
        .ok_or_else(|| {
            format!(
                "zone {}: policy {} has no {} with algorithm {}{}: the imported key (flags {}) would never be used",
                zcfg.name,
                policy.name,
                if bk.is_sep() { "KSK or CSK" } else { "ZSK" },
                bk.algorithm,
                keystore.map(|k| format!(" in keystore {k}")).unwrap_or_default(),
                bk.flags
            )
        })?;
    let role = role_of(spec.role);
    let stores = policy_keystores(cfg, policy)?;
    let mut taken = HashSet::new();
    for (name, ks) in &stores {
        let keys = ks
            .list(&zcfg.name)
            .map_err(|e| format!("zone {}: keystore {name}: {e}", zcfg.name))?;
        for k in &keys {
            if k.algorithm == bk.algorithm && k.public_key == bk.public_key {
                return Err(format!(
                    "zone {}: this key is already imported ({} in keystore {name})",
                    zcfg.name,
                    k.file_stem()
                ));
            }
            if *name == spec.keystore
                && k.role == role
                && k.algorithm == bk.algorithm
                && k.retired.is_none()
                && k.removed.is_none()
            {
                return Err(format!(
                    "zone {}: keystore {name} already has a usable {role} with algorithm {}                      ({}), which signet would keep signing with; import before signet creates                      keys for the zone, or remove that key first",
                    zcfg.name,
                    bk.algorithm,
                    k.file_stem()
                ));
            }
            taken.extend(tag_variants(k));
        }
    }
    if taken.contains(&bk.tag) {
        return Err(format!(
            "zone {}: key tag {} collides with a key the zone already has; keys of one zone must have distinct tags",
            zcfg.name, bk.tag
        ));
    }
    let Some((_, ks)) = stores.iter().find(|(n, _)| *n == spec.keystore) else {
        return Err(format!("keystore {} is not defined", spec.keystore));
    };
    let created = bk.created.unwrap_or(now);
    let mut key = match ks {
        Keystore::Files(f) => {
            if let Some(bits) = bk.material.rsa_bits() {
                if bits < 2048 {
                    return Err(format!(
                        "{}: RSA key of {bits} bits: the files keystore signs with ring, which                          needs 2048 to 8192 bits; import it into a pkcs11 keystore or roll it to                          a larger key in BIND first",
                        bk.private_path.display()
                    ));
                }
            }
            let der = bk
                .material
                .to_der(bk.algorithm, &bk.public_key)
                .map_err(|e| format!("{}: {e}", bk.private_path.display()))?;
            let k = f
                .import_pkcs8(&zcfg.name, role, bk.algorithm, &der, created)
                .map_err(|e| format!("{}: {e}", bk.private_path.display()))?;
            if k.public_key != bk.public_key || k.flags != bk.flags {
                let _ = f.purge(&k);
                return Err(format!(
                    "{}: the stored key does not reproduce the DNSKEY of {}",
                    bk.private_path.display(),
                    bk.key_path.display()
                ));
            }
            k
        }
        Keystore::Pkcs11(p) => p
            .import(
                &zcfg.name,
                role,
                bk.algorithm,
                &bk.material,
                &bk.public_key,
                created,
            )
            .map_err(|e| format!("{}: {e}", bk.private_path.display()))?,
    };
    let mut warnings = Vec::new();
    if let Some(a) = bk.activate.filter(|a| *a > now) {
        warnings.push(format!(
            "BIND schedules activation at {}; signet signs with the key from now on",
            fmt_time(a)
        ));
    }
    for (what, t) in [("Inactive", bk.inactive), ("Delete", bk.delete)] {
        if let Some(t) = t {
            warnings.push(format!(
                "BIND's {what} time ({}) is not carried over: the policy decides when the key is rolled",
                fmt_time(t)
            ));
        }
    }
    if let Some(ttl) = bk.ttl {
        if u64::from(ttl) != policy.dnskey_ttl {
            warnings.push(format!(
                "the .key file has DNSKEY TTL {ttl}; the zone's policy publishes the DNSKEY RRset with TTL {}",
                policy.dnskey_ttl
            ));
        }
    }
    key.created = created;
    key.published = Some(bk.publish.unwrap_or(created).min(now));
    key.active = Some(bk.activate.unwrap_or(now).min(now));
    key.state = "active".into();
    ks.save_meta(&key)
        .map_err(|e| format!("zone {}: {e}", zcfg.name))?;
    tracing::info!(zone = %zcfg.name, tag = key.tag, role = %role, algorithm = key.algorithm, keystore = %spec.keystore, "imported BIND key");
    Ok(Imported {
        keystore: spec.keystore.clone(),
        key,
        warnings,
    })
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
        dnskey_jitter: clamp(policy.signatures_jitter),
        threads: 0,
    }
}

// ------------------------------------------------------------------ key state (kasp)

/// The zone's key state file in its state directory (`state-dir/zones/NAME/keys.json`).
pub const KEY_STATE_FILE: &str = "keys.json";

/// Loads the zone's key state from `dir`, or starts one. A new state adopts the keys the zone
/// already has in its policy's keystores (the newest usable key per policy entry, as
/// [`ensure_keys`] picks them), as in service since their activation and with their DS at the
/// parent, so that an existing deployment keeps its keys and its chain of trust. A state file
/// that cannot be read is an error (starting afresh would replace every key at once).
pub fn load_key_state(
    cfg: &Config,
    zone: &ZoneConfig,
    policy: &Policy,
    dir: &Path,
    now: u64,
) -> Result<ZoneKeyState, String> {
    let path = dir.join(KEY_STATE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            return ZoneKeyState::from_json(&text)
                .map_err(|e| format!("zone {}: {}: {e}", zone.name, path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("zone {}: {}: {e}", zone.name, path.display())),
    }
    let mut state = ZoneKeyState::new();
    let stores = policy_keystores(cfg, policy)?;
    for spec in &policy.keys {
        let Some((_, ks)) = stores.iter().find(|(n, _)| *n == spec.keystore) else {
            return Err(format!("keystore {} is not defined", spec.keystore));
        };
        let role = role_of(spec.role);
        let mut candidates: Vec<StoredKey> = ks
            .list(&zone.name)
            .map_err(|e| format!("zone {}: keystore {}: {e}", zone.name, spec.keystore))?
            .into_iter()
            .filter(|k| {
                k.role == role
                    && k.algorithm == spec.algorithm
                    && k.retired.is_none()
                    && k.removed.is_none()
                    && !state.tag_in_use(k.tag())
            })
            .collect();
        candidates.sort_by_key(|k| std::cmp::Reverse(k.created));
        if let Some(k) = candidates.first() {
            let since = k.active.or(k.published).unwrap_or(k.created).min(now);
            let key = KeyRef {
                algorithm: k.algorithm,
                tag: k.tag(),
            };
            state
                .adopt_key(key, role, &spec.keystore, spec.lifetime.secs(), since, true)
                .map_err(|e| format!("zone {}: {e}", zone.name))?;
            tracing::info!(zone = %zone.name, key = %key, role = %role, keystore = %spec.keystore, "key state: adopted a key already in service");
        }
    }
    Ok(state)
}

/// Writes the zone's key state crash-safely (temp + fsync + rename).
pub fn save_key_state(dir: &Path, state: &ZoneKeyState) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    crate::keystore::write_atomic(dir, KEY_STATE_FILE, state.to_json().as_bytes(), 0o644)
        .map_err(|e| format!("{}: {e}", dir.join(KEY_STATE_FILE).display()))
}

/// Generates the key `request` asks for in its keystore, with a tag used by no key of the
/// zone (in any of the policy's keystores, nor in `state`), and stores its metadata.
pub fn generate_key(
    cfg: &Config,
    zone: &str,
    policy: &Policy,
    request: &KeyRequest,
    state: &ZoneKeyState,
    now: u64,
) -> Result<KeyRef, String> {
    let ks = open_keystore(cfg, &request.keystore)?;
    let mut taken: HashSet<u16> = state.keys.iter().map(|k| k.key.tag).collect();
    // nor with the other signers' keys in the multi-signer overlay
    if let Ok(o) = super::overlay::Overlay::load(&zone_state_dir(cfg, zone)) {
        taken.extend(o.foreign_keys().filter_map(|k| k.key_tag()));
    }
    let mut names: Vec<&str> = policy.keys.iter().map(|s| s.keystore.as_str()).collect();
    names.push(&request.keystore);
    names.sort_unstable();
    names.dedup();
    for name in names {
        let listed = if name == request.keystore {
            ks.list(zone)
        } else {
            open_keystore(cfg, name)?.list(zone)
        }
        .map_err(|e| format!("zone {zone}: keystore {name}: {e}"))?;
        for k in &listed {
            taken.extend(tag_variants(k));
        }
    }
    let mut k = ks
        .generate(zone, request.role, request.algorithm, now, &taken)
        .map_err(|e| {
            format!(
                "zone {zone}: cannot generate a {} key in keystore {}: {e}",
                request.role, request.keystore
            )
        })?;
    k.published = Some(now);
    k.active = Some(now);
    k.state = "active".into();
    ks.save_meta(&k).map_err(|e| format!("zone {zone}: {e}"))?;
    let key = KeyRef {
        algorithm: k.algorithm,
        tag: k.tag(),
    };
    tracing::info!(zone = %zone, key = %key, role = %request.role, keystore = %request.keystore, reason = %request.reason, "generated key");
    Ok(key)
}

/// The signer's keys for `plan` (every key published, signing, or with a CDS), loaded from
/// the keystores `state` names.
pub fn plan_keys(
    cfg: &Config,
    zone: &str,
    state: &ZoneKeyState,
    plan: &KeyPlan,
) -> Result<Vec<ActiveKey>, String> {
    let mut wanted = plan.keys();
    wanted.extend(plan.cds.iter().copied());
    wanted.sort();
    wanted.dedup();
    let mut stores: Vec<(String, Keystore, Vec<StoredKey>)> = Vec::new();
    let mut out = Vec::new();
    for k in wanted {
        let entry = state
            .key(k)
            .ok_or_else(|| format!("zone {zone}: key {k} is not in the key state"))?;
        let idx = match stores.iter().position(|(n, _, _)| *n == entry.keystore) {
            Some(i) => i,
            None => {
                let ks = open_keystore(cfg, &entry.keystore)?;
                let listed = ks
                    .list(zone)
                    .map_err(|e| format!("zone {zone}: keystore {}: {e}", entry.keystore))?;
                stores.push((entry.keystore.clone(), ks, listed));
                stores.len() - 1
            }
        };
        let (name, ks, listed) = &stores[idx];
        let stored = listed
            .iter()
            .find(|s| s.algorithm == k.algorithm && s.tag() == k.tag)
            .ok_or_else(|| format!("zone {zone}: key {k} is missing from keystore {name}"))?;
        let signer = ks
            .load_signer(stored)
            .map_err(|e| format!("zone {zone}: key {k} in keystore {name}: {e}"))?;
        let (publish, signs_keys, signs_zone) = plan.usage(k);
        out.push(ActiveKey {
            key: signer,
            dnskey: stored.dnskey_rdata(),
            tag: stored.tag(),
            signs_keys,
            signs_zone,
            // Every signing key's DNSKEY is published, even where the plan would sign without
            // it (the new algorithm of an algorithm rollover; a rollover in a zone whose DS is
            // not at the parent yet, where the rules allow anything that validates as
            // insecure): the self-check (signer::verify) and validators like kzonecheck
            // require a DNSKEY for every RRSIG.
            publish: publish || signs_keys || signs_zone,
        });
    }
    cover_forced_algorithms(&mut out);
    Ok(out)
}

/// A DNSKEY published only because its key still signs (see `plan_keys`) brings its algorithm
/// into the DNSKEY RRset, and RFC 4035 §2.2 then wants that algorithm to sign both the DNSKEY
/// RRset and the zone — which the plan may no longer have (the end of an algorithm rollover:
/// the old DNSKEYs are withdrawn before the old zone signatures, RFC 6781 §4.1.4, and the
/// old KSK stops signing with its DNSKEY). For such an algorithm, its published keys also sign
/// what it lacks. Extra signatures by published keys only add ways to validate; the key state
/// machine's model (what caches may hold) is unaffected.
fn cover_forced_algorithms(keys: &mut [ActiveKey]) {
    let algs: Vec<u8> = keys
        .iter()
        .filter(|k| k.publish)
        .map(|k| k.key.algorithm())
        .collect();
    for alg in algs {
        let of = |k: &ActiveKey| k.publish && k.key.algorithm() == alg;
        if !keys.iter().any(|k| of(k) && k.signs_keys) {
            for k in keys.iter_mut().filter(|k| of(k)) {
                k.signs_keys = true;
            }
        }
        if !keys.iter().any(|k| of(k) && k.signs_zone) {
            for k in keys.iter_mut().filter(|k| of(k)) {
                k.signs_zone = true;
            }
        }
    }
}

/// Deletes the material of a key the state machine purges (then [`ZoneKeyState::forget`] it).
/// A key already gone from its keystore is not an error.
pub fn purge_state_key(
    cfg: &Config,
    zone: &str,
    state: &ZoneKeyState,
    key: KeyRef,
) -> Result<(), String> {
    let Some(entry) = state.key(key) else {
        return Ok(());
    };
    let ks = open_keystore(cfg, &entry.keystore)?;
    let listed = ks
        .list(zone)
        .map_err(|e| format!("zone {zone}: keystore {}: {e}", entry.keystore))?;
    if let Some(stored) = listed
        .iter()
        .find(|s| s.algorithm == key.algorithm && s.tag() == key.tag)
    {
        ks.purge(stored)
            .map_err(|e| format!("zone {zone}: purging key {key}: {e}"))?;
        tracing::info!(zone = %zone, key = %key, keystore = %entry.keystore, "purged key");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_utc() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_time(1_709_210_096), "2024-02-29 12:34:56 UTC");
        assert_eq!(fmt_time(951_782_400), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn revoke_variants() {
        let key = StoredKey {
            zone: "example.com.".into(),
            role: KeyRole::Ksk,
            algorithm: 13,
            tag: 0,
            flags: 257,
            public_key: vec![1; 64],
            created: 0,
            published: None,
            active: None,
            retired: None,
            removed: None,
            state: String::new(),
        };
        let [plain, revoked] = tag_variants(&key);
        assert_eq!(plain, key.tag());
        assert_ne!(plain, revoked);
        let mut r = key.clone();
        r.flags |= 0x0080;
        assert_eq!(tag_variants(&r), [plain, revoked]);
    }
}
