//! The soft keystore (`backend = "files"`): PKCS#8 private keys and JSON metadata in one directory.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::dnskey::{
    dnskey_rdata, key_tag, ALG_RSASHA256, ALG_RSASHA512, FLAGS_KSK, FLAGS_ZSK, FLAG_REVOKE,
};
use super::signing::{generate_pkcs8, is_supported_algorithm, load_for_import, RingSigningKey};
use super::{KeyError, Result, SigningKey};

/// The state a key has when the keystore creates or imports it; key management moves it on.
pub const STATE_NEW: &str = "new";

/// Metadata files larger than this are refused as corrupt.
const MAX_META_SIZE: u64 = 1 << 20;
/// Private key files larger than this are refused as corrupt (an RSA-8192 PKCS#8 is ~4.8 KiB).
const MAX_KEY_SIZE: u64 = 64 << 10;
/// Attempts to draw a key whose tag does not collide before giving up.
const MAX_GENERATE_ATTEMPTS: usize = 64;

/// What a key signs: the DNSKEY RRset (KSK), everything else (ZSK), or both (CSK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyRole {
    Ksk,
    Zsk,
    Csk,
}

impl KeyRole {
    /// The DNSKEY flags: 257 (SEP) for KSK and CSK, 256 for ZSK.
    pub fn flags(self) -> u16 {
        match self {
            KeyRole::Ksk | KeyRole::Csk => FLAGS_KSK,
            KeyRole::Zsk => FLAGS_ZSK,
        }
    }

    /// `"ksk"`, `"zsk"` or `"csk"`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Ksk => "ksk",
            KeyRole::Zsk => "zsk",
            KeyRole::Csk => "csk",
        }
    }

    /// Whether the key signs the DNSKEY RRset (and CDS/CDNSKEY).
    pub fn signs_keys(self) -> bool {
        matches!(self, KeyRole::Ksk | KeyRole::Csk)
    }

    /// Whether the key signs the zone's other RRsets.
    pub fn signs_zone(self) -> bool {
        matches!(self, KeyRole::Zsk | KeyRole::Csk)
    }
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyRole {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "ksk" => Ok(KeyRole::Ksk),
            "zsk" => Ok(KeyRole::Zsk),
            "csk" => Ok(KeyRole::Csk),
            _ => Err(format!("unknown key role {s:?} (expected ksk, zsk or csk)")),
        }
    }
}

/// One key's metadata, as stored in `K<zone>+<alg>+<tag>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    /// Lowercase, fully qualified: `"example.com."`.
    pub zone: String,
    pub role: KeyRole,
    pub algorithm: u8,
    /// The key tag when the key was created (with `flags` minus REVOKE). It names the files and
    /// does not change; [`StoredKey::tag`] gives the tag of the current DNSKEY.
    pub tag: u16,
    /// Current DNSKEY flags: 256 or 257, plus 128 once revoked (RFC 5011).
    pub flags: u16,
    /// The DNSKEY public key field (base64 in the file).
    #[serde(with = "base64_bytes")]
    pub public_key: Vec<u8>,
    /// Unix seconds.
    pub created: u64,
    #[serde(default)]
    pub published: Option<u64>,
    #[serde(default)]
    pub active: Option<u64>,
    #[serde(default)]
    pub retired: Option<u64>,
    #[serde(default)]
    pub removed: Option<u64>,
    /// Free-form state for key management (KASP); [`STATE_NEW`] when created.
    #[serde(default)]
    pub state: String,
}

impl StoredKey {
    /// The DNSKEY RDATA with the current flags.
    pub fn dnskey_rdata(&self) -> Vec<u8> {
        dnskey_rdata(self.flags, self.algorithm, &self.public_key)
    }

    /// The key tag of the current DNSKEY (differs from the `tag` field once REVOKE is set).
    pub fn tag(&self) -> u16 {
        key_tag(&self.dnskey_rdata())
    }

    /// The file name stem, `K<zone>+<alg:03>+<tag:05>`, BIND style: `Kexample.com.+013+12345`.
    pub fn file_stem(&self) -> String {
        file_stem(&self.zone, self.algorithm, self.tag)
    }

    /// Tags this key answers to, with and without the REVOKE bit.
    fn tag_variants(&self) -> [u16; 2] {
        tag_variants(self.flags, self.algorithm, &self.public_key)
    }
}

/// The key tags of a key with and without the REVOKE bit.
pub(crate) fn tag_variants(flags: u16, algorithm: u8, public_key: &[u8]) -> [u16; 2] {
    [
        key_tag(&dnskey_rdata(flags & !FLAG_REVOKE, algorithm, public_key)),
        key_tag(&dnskey_rdata(flags | FLAG_REVOKE, algorithm, public_key)),
    ]
}

/// `K<zone>+<alg:03>+<tag:05>`, BIND's key file stem (also the PKCS#11 label).
pub(crate) fn file_stem(zone: &str, algorithm: u8, tag: u16) -> String {
    format!("K{zone}+{algorithm:03}+{tag:05}")
}

/// Splits `K<zone>+<alg>+<tag>` into its parts.
pub(crate) fn parse_stem(stem: &str) -> Option<(&str, u8, u16)> {
    let rest = stem.strip_prefix('K')?;
    let (rest, tag) = rest.rsplit_once('+')?;
    let (zone, alg) = rest.rsplit_once('+')?;
    if alg.len() != 3 || tag.len() != 5 || zone.is_empty() {
        return None;
    }
    Some((zone, alg.parse().ok()?, tag.parse().ok()?))
}

/// Lowercases a zone name and makes it fully qualified: `Example.COM` → `example.com.`.
/// Refuses names that cannot be a file name component or are not names at all.
pub fn normalize_zone(zone: &str) -> Result<String> {
    let bad = |why: &str| KeyError::InvalidZone(format!("{zone:?}: {why}"));
    if zone.is_empty() {
        return Err(bad("empty zone name"));
    }
    if zone == "." {
        return Ok(".".to_string());
    }
    let mut z = zone.to_ascii_lowercase();
    if !z.ends_with('.') {
        z.push('.');
    }
    if z.len() > 254 {
        return Err(bad("name longer than 255 octets"));
    }
    if let Some(c) = z
        .chars()
        .find(|c| !c.is_ascii() || c.is_ascii_control() || c.is_ascii_whitespace() || *c == '/')
    {
        return Err(bad(&format!("character {c:?} not allowed")));
    }
    for label in z[..z.len() - 1].split('.') {
        if label.is_empty() {
            return Err(bad("empty label"));
        }
        if label.len() > 63 {
            return Err(bad("label longer than 63 octets"));
        }
    }
    Ok(z)
}

mod base64_bytes {
    use data_encoding::BASE64;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        BASE64
            .decode(s.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("public_key: bad base64: {e}")))
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `name` in `dir` so that after a crash at any moment the file is either absent, its
/// old content, or its new content in full: a temporary file in the same directory is written
/// and fsynced, renamed over `name`, then the directory is fsynced so the rename is durable.
/// On error the temporary file is removed.
pub fn write_atomic(dir: &Path, name: &str, data: &[u8], mode: u32) -> Result<()> {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let target = dir.join(name);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| KeyError::io("create", &tmp, e))?;
        f.write_all(data)
            .map_err(|e| KeyError::io("write", &tmp, e))?;
        f.sync_all().map_err(|e| KeyError::io("fsync", &tmp, e))?;
        drop(f);
        fs::rename(&tmp, &target).map_err(|e| KeyError::io("rename into place", &target, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| KeyError::io("fsync directory", dir, e))
}

/// Reads a file of at most `max` bytes.
fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>> {
    let f = File::open(path).map_err(|e| KeyError::io("open", path, e))?;
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| KeyError::io("read", path, e))?;
    if buf.len() as u64 > max {
        return Err(KeyError::BadFile {
            path: path.to_path_buf(),
            reason: format!("larger than {max} bytes"),
        });
    }
    Ok(buf)
}

/// The soft keystore: one directory (mode 0700) of PKCS#8 private keys and JSON metadata.
#[derive(Debug)]
pub struct FileKeystore {
    dir: PathBuf,
    /// Serialises this process's writers, so two concurrent `generate` calls for a zone cannot
    /// both pick the same key tag.
    lock: Mutex<()>,
}

impl FileKeystore {
    /// Opens the keystore in `dir`, creating it (mode 0700) if missing. Temporary files that a
    /// crashed signet process left behind are removed.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        match fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {
                if m.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(
                        dir = %dir.display(),
                        mode = format_args!("{:o}", m.permissions().mode() & 0o777),
                        "keystore directory is accessible by group or others; 0700 recommended"
                    );
                }
            }
            Ok(_) => {
                return Err(KeyError::BadFile {
                    path: dir,
                    reason: "keystore path exists but is not a directory".into(),
                })
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&dir)
                    .map_err(|e| KeyError::io("create directory", &dir, e))?;
                // DirBuilder's mode is filtered by the umask; make sure of 0700.
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                    .map_err(|e| KeyError::io("chmod", &dir, e))?;
                if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    sync_dir(parent)?;
                }
            }
            Err(e) => return Err(KeyError::io("stat", &dir, e)),
        }
        let ks = FileKeystore {
            dir,
            lock: Mutex::new(()),
        };
        ks.remove_stale_temp_files();
        Ok(ks)
    }

    /// The keystore directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of a key's private key file (`<stem>.pk8`).
    pub fn private_key_path(&self, key: &StoredKey) -> PathBuf {
        self.dir.join(format!("{}.pk8", key.file_stem()))
    }

    /// The path of a key's metadata file (`<stem>.json`).
    pub fn meta_path(&self, key: &StoredKey) -> PathBuf {
        self.dir.join(format!("{}.json", key.file_stem()))
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes `.<name>.<pid>.<n>.tmp` files whose writer process no longer exists.
    fn remove_stale_temp_files(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
                continue;
            };
            let mut parts = inner.rsplitn(3, '.');
            let (Some(_n), Some(pid), Some(_name)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Ok(pid) = pid.parse::<u32>() else {
                continue;
            };
            if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            let path = entry.path();
            match fs::remove_file(&path) {
                Ok(()) => tracing::info!(file = %path.display(), "removed stale temporary file"),
                Err(e) => {
                    tracing::warn!(
                        file = %path.display(),
                        error = %e,
                        "cannot remove stale temporary file"
                    )
                }
            }
        }
    }

    /// Generates a key with ring (algorithms 13, 14, 15; RSA is import-only), stores it and
    /// returns its metadata. A key whose tag (with or without REVOKE) collides with a key of the
    /// same zone is thrown away and another drawn, so tags stay unique per zone.
    pub fn generate(
        &self,
        zone: &str,
        role: KeyRole,
        algorithm: u8,
        now: u64,
    ) -> Result<StoredKey> {
        self.generate_with(zone, role, algorithm, now, &mut || {
            generate_pkcs8(algorithm)
        })
    }

    fn generate_with(
        &self,
        zone: &str,
        role: KeyRole,
        algorithm: u8,
        now: u64,
        source: &mut dyn FnMut() -> Result<Vec<u8>>,
    ) -> Result<StoredKey> {
        let zone = normalize_zone(zone)?;
        if !is_supported_algorithm(algorithm) || matches!(algorithm, ALG_RSASHA256 | ALG_RSASHA512)
        {
            // Refuse before touching the directory; generate_pkcs8 phrases why.
            generate_pkcs8(algorithm)?;
        }
        let _g = self.guard();
        let taken = self.taken_tags(&zone)?;
        for _ in 0..MAX_GENERATE_ATTEMPTS {
            let der = source()?;
            let signer = RingSigningKey::from_der(algorithm, &der)?;
            let key = self.new_meta(&zone, role, algorithm, &signer, now);
            if key.tag_variants().iter().any(|t| taken.contains(t)) || self.files_exist(&key) {
                tracing::debug!(
                    zone,
                    tag = key.tag,
                    "key tag collision, drawing another key"
                );
                continue;
            }
            self.store(&key, &der)?;
            tracing::info!(zone, tag = key.tag, algorithm, role = %role, "generated key");
            return Ok(key);
        }
        Err(KeyError::Conflict(format!(
            "zone {zone}: no key without a key tag collision after {MAX_GENERATE_ATTEMPTS} attempts"
        )))
    }

    /// Imports an existing private key: PKCS#8 DER for every algorithm (OpenSSL v1 Ed25519
    /// documents included), or PKCS#1 `RSAPrivateKey` DER for RSA (stored wrapped as PKCS#8).
    /// Refused if the zone already has this key or a key with the same tag.
    pub fn import_pkcs8(
        &self,
        zone: &str,
        role: KeyRole,
        algorithm: u8,
        der: &[u8],
        now: u64,
    ) -> Result<StoredKey> {
        let zone = normalize_zone(zone)?;
        let (signer, stored) = load_for_import(algorithm, der)?;
        let _g = self.guard();
        let key = self.new_meta(&zone, role, algorithm, &signer, now);
        let existing = self.list_unlocked(&zone)?;
        if let Some(k) = existing
            .iter()
            .find(|k| k.algorithm == algorithm && k.public_key == key.public_key)
        {
            return Err(KeyError::Conflict(format!(
                "zone {zone}: this key is already in the keystore as {}",
                k.file_stem()
            )));
        }
        let mine = key.tag_variants();
        if let Some(k) = existing
            .iter()
            .find(|k| k.tag_variants().iter().any(|t| mine.contains(t)))
        {
            return Err(KeyError::Conflict(format!(
                "zone {zone}: key tag {} collides with existing key {}; \
                 keys of one zone must have distinct tags",
                key.tag,
                k.file_stem()
            )));
        }
        if self.files_exist(&key) {
            return Err(KeyError::Conflict(format!(
                "{} or {} already exists; remove the stray file first",
                self.private_key_path(&key).display(),
                self.meta_path(&key).display()
            )));
        }
        self.store(&key, &stored)?;
        tracing::info!(zone, tag = key.tag, algorithm, role = %role, "imported key");
        Ok(key)
    }

    fn new_meta(
        &self,
        zone: &str,
        role: KeyRole,
        algorithm: u8,
        signer: &RingSigningKey,
        now: u64,
    ) -> StoredKey {
        let flags = role.flags();
        let public_key = signer.public_key().to_vec();
        StoredKey {
            zone: zone.to_string(),
            role,
            algorithm,
            tag: key_tag(&dnskey_rdata(flags, algorithm, &public_key)),
            flags,
            public_key,
            created: now,
            published: None,
            active: None,
            retired: None,
            removed: None,
            state: STATE_NEW.to_string(),
        }
    }

    fn taken_tags(&self, zone: &str) -> Result<HashSet<u16>> {
        Ok(self
            .list_unlocked(zone)?
            .iter()
            .flat_map(|k| k.tag_variants())
            .collect())
    }

    fn files_exist(&self, key: &StoredKey) -> bool {
        self.private_key_path(key).exists() || self.meta_path(key).exists()
    }

    /// Private key first, then metadata: a metadata file always has its private key beside it.
    fn store(&self, key: &StoredKey, pkcs8: &[u8]) -> Result<()> {
        let stem = key.file_stem();
        write_atomic(&self.dir, &format!("{stem}.pk8"), pkcs8, 0o600)?;
        self.write_meta(key)
    }

    fn write_meta(&self, key: &StoredKey) -> Result<()> {
        let mut json = serde_json::to_vec_pretty(key)
            .map_err(|e| KeyError::Crypto(format!("cannot serialise key metadata: {e}")))?;
        json.push(b'\n');
        write_atomic(
            &self.dir,
            &format!("{}.json", key.file_stem()),
            &json,
            0o600,
        )
    }

    /// The keys of `zone`, oldest first. Files of other zones are skipped; a metadata file that
    /// cannot be read, parsed, or does not match its file name is an error naming the file.
    pub fn list(&self, zone: &str) -> Result<Vec<StoredKey>> {
        let zone = normalize_zone(zone)?;
        let _g = self.guard();
        self.list_unlocked(&zone)
    }

    fn list_unlocked(&self, zone: &str) -> Result<Vec<StoredKey>> {
        let entries =
            fs::read_dir(&self.dir).map_err(|e| KeyError::io("read directory", &self.dir, e))?;
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| KeyError::io("read directory", &self.dir, e))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            let path = entry.path();
            let Some((file_zone, alg, tag)) = parse_stem(stem) else {
                tracing::warn!(
                    file = %path.display(),
                    "ignoring file in keystore: name is not K<zone>+<alg>+<tag>.json"
                );
                continue;
            };
            if file_zone != zone {
                tracing::trace!(file = %path.display(), "key of another zone");
                continue;
            }
            let bad = |reason: String| KeyError::BadFile {
                path: path.clone(),
                reason,
            };
            let data = read_limited(&path, MAX_META_SIZE)?;
            let key: StoredKey = serde_json::from_slice(&data)
                .map_err(|e| bad(format!("corrupt key metadata: {e}")))?;
            if key.zone != zone || key.algorithm != alg || key.tag != tag {
                return Err(bad(format!(
                    "metadata says zone {}, algorithm {}, tag {}: does not match the file name",
                    key.zone, key.algorithm, key.tag
                )));
            }
            let computed = key_tag(&dnskey_rdata(
                key.flags & !FLAG_REVOKE,
                key.algorithm,
                &key.public_key,
            ));
            if computed != key.tag {
                return Err(bad(format!(
                    "public key and flags give key tag {computed}, not {}",
                    key.tag
                )));
            }
            keys.push(key);
        }
        keys.sort_by_key(|k| (k.created, k.tag, k.algorithm));
        Ok(keys)
    }

    /// Loads the private key of `key` for signing. The key must match the metadata's algorithm
    /// and public key; a missing, unreadable or corrupt `.pk8` is an error naming the file.
    pub fn load_signer(&self, key: &StoredKey) -> Result<Arc<dyn SigningKey>> {
        let path = self.private_key_path(key);
        let bad = |reason: String| KeyError::BadFile {
            path: path.clone(),
            reason,
        };
        if let Ok(m) = fs::metadata(&path) {
            if m.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    file = %path.display(),
                    mode = format_args!("{:o}", m.permissions().mode() & 0o777),
                    "private key file is accessible by group or others; 0600 expected"
                );
            }
        }
        let der = read_limited(&path, MAX_KEY_SIZE)?;
        let signer =
            RingSigningKey::from_der(key.algorithm, &der).map_err(|e| bad(e.to_string()))?;
        if signer.public_key() != key.public_key.as_slice() {
            return Err(bad(format!(
                "private key does not match the public key in {}",
                self.meta_path(key).display()
            )));
        }
        Ok(Arc::new(signer))
    }

    /// Rewrites a key's metadata (lifecycle timestamps, state, flags) crash-safely. The zone,
    /// algorithm and tag name the files and must be those of a stored key.
    pub fn save_meta(&self, key: &StoredKey) -> Result<()> {
        let zone = normalize_zone(&key.zone)?;
        if zone != key.zone {
            return Err(KeyError::InvalidZone(format!(
                "{:?}: key metadata must carry the normalised zone name {zone:?}",
                key.zone
            )));
        }
        let _g = self.guard();
        let pk8 = self.private_key_path(key);
        if !pk8.exists() {
            return Err(KeyError::BadFile {
                path: pk8,
                reason: "no such private key; refusing to write metadata for it".into(),
            });
        }
        let computed = key_tag(&dnskey_rdata(
            key.flags & !FLAG_REVOKE,
            key.algorithm,
            &key.public_key,
        ));
        if computed != key.tag {
            return Err(KeyError::Conflict(format!(
                "{}: public key and flags give key tag {computed}, not {}",
                key.file_stem(),
                key.tag
            )));
        }
        self.write_meta(key)
    }

    /// Deletes a key's files (after `purge-keys`): metadata first, so a crash in between leaves
    /// an orphan private key that `list` ignores, never metadata without its key.
    pub fn purge(&self, key: &StoredKey) -> Result<()> {
        let _g = self.guard();
        for path in [self.meta_path(key), self.private_key_path(key)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(KeyError::io("remove", &path, e)),
            }
        }
        sync_dir(&self.dir)?;
        tracing::info!(zone = key.zone, tag = key.tag, "purged key files");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::signing::tests::ring_verify;
    use super::super::testkeys::*;
    use super::*;
    use data_encoding::BASE64;
    use std::sync::atomic::AtomicUsize;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(name: &str) -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let p = std::env::temp_dir().join(format!(
                "signet-keystore-{name}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&p);
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn open_creates_0700() {
        let t = TempDir::new("open");
        let d = t.0.join("a/keys");
        let ks = FileKeystore::open(&d).unwrap();
        assert_eq!(ks.dir(), d.as_path());
        assert_eq!(mode(&d), 0o700);
        // reopening works; a file in the way does not
        FileKeystore::open(&d).unwrap();
        fs::write(t.0.join("file"), b"x").unwrap();
        let e = FileKeystore::open(t.0.join("file"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a directory"), "{e}");
    }

    #[test]
    fn generate_reload_sign_verify() {
        let t = TempDir::new("gen");
        let ks = FileKeystore::open(&t.0).unwrap();
        let mut made = vec![];
        for (alg, role) in [(13u8, KeyRole::Csk), (14, KeyRole::Ksk), (15, KeyRole::Zsk)] {
            let k = ks
                .generate("Example.COM", role, alg, 1000 + alg as u64)
                .unwrap();
            assert_eq!(k.zone, "example.com.");
            assert_eq!(k.state, STATE_NEW);
            assert_eq!(k.flags, role.flags());
            assert_eq!(k.tag, k.tag());
            assert_eq!(
                k.dnskey_rdata()[..4],
                [(k.flags >> 8) as u8, k.flags as u8, 3, alg]
            );
            let stem = format!("Kexample.com.+{alg:03}+{:05}", k.tag);
            assert_eq!(k.file_stem(), stem);
            assert_eq!(mode(&t.0.join(format!("{stem}.pk8"))), 0o600);
            assert_eq!(mode(&t.0.join(format!("{stem}.json"))), 0o600);
            made.push(k);
        }
        // no temporary files left behind
        assert!(
            names(&t.0).iter().all(|n| !n.starts_with('.')),
            "{:?}",
            names(&t.0)
        );
        assert_eq!(names(&t.0).len(), 6);

        // a fresh keystore object sees the same keys, in creation order
        let ks = FileKeystore::open(&t.0).unwrap();
        let listed = ks.list("example.com.").unwrap();
        assert_eq!(listed, made);
        for k in &listed {
            let s = ks.load_signer(k).unwrap();
            assert_eq!(s.algorithm(), k.algorithm);
            assert_eq!(s.public_key(), k.public_key.as_slice());
            let sig = s.sign(b"data").unwrap();
            assert!(ring_verify(k.algorithm, &k.public_key, b"data", &sig));
        }
    }

    #[test]
    fn rsa_generation_refused_and_import_works() {
        let t = TempDir::new("rsa");
        let ks = FileKeystore::open(&t.0).unwrap();
        let e = ks
            .generate("example.com", KeyRole::Zsk, 8, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("RSA keys can only be imported"), "{e}");
        assert!(names(&t.0).is_empty());

        let p1 = BASE64.decode(RSA2048_PKCS1.as_bytes()).unwrap();
        let p8 = BASE64.decode(RSA2048_PKCS8.as_bytes()).unwrap();
        let k = ks
            .import_pkcs8("example.com", KeyRole::Ksk, 8, &p1, 5)
            .unwrap();
        assert_eq!(
            fs::read(ks.private_key_path(&k)).unwrap(),
            p8,
            "stored as PKCS#8"
        );
        let s = ks.load_signer(&k).unwrap();
        let sig = s.sign(b"rsa").unwrap();
        assert!(ring_verify(8, &k.public_key, b"rsa", &sig));

        // the same key again
        let e = ks
            .import_pkcs8("example.com", KeyRole::Ksk, 8, &p8, 6)
            .unwrap_err()
            .to_string();
        assert!(e.contains("already in the keystore"), "{e}");
        // same key, other zone: fine
        ks.import_pkcs8("example.net", KeyRole::Ksk, 10, &p8, 6)
            .unwrap();
        assert_eq!(ks.list("example.com").unwrap().len(), 1);
        assert_eq!(ks.list("example.net").unwrap().len(), 1);
    }

    #[test]
    fn import_openssl_keys() {
        let t = TempDir::new("import");
        let ks = FileKeystore::open(&t.0).unwrap();
        for (alg, b64) in [(15u8, ED25519_PKCS8_V1), (13, P256_PKCS8), (14, P384_PKCS8)] {
            let der = BASE64.decode(b64.as_bytes()).unwrap();
            let k = ks
                .import_pkcs8("example.org.", KeyRole::Csk, alg, &der, 1)
                .unwrap();
            let s = ks.load_signer(&k).unwrap();
            let sig = s.sign(b"m").unwrap();
            assert!(ring_verify(alg, &k.public_key, b"m", &sig));
        }
        let der = BASE64.decode(P384_PKCS8.as_bytes()).unwrap();
        let e = ks
            .import_pkcs8("example.org", KeyRole::Csk, 13, &der, 1)
            .unwrap_err();
        assert!(matches!(e, KeyError::Rejected(_)), "{e}");
        assert_eq!(ks.list("example.org").unwrap().len(), 3);
    }

    #[test]
    fn tag_collision_regenerates() {
        let t = TempDir::new("collide");
        let ks = FileKeystore::open(&t.0).unwrap();
        let first = generate_pkcs8(13).unwrap();
        let existing = ks
            .import_pkcs8("example.com", KeyRole::Zsk, 13, &first, 1)
            .unwrap();
        // The source first hands out the existing key (same tag), then a fresh one.
        let mut calls = 0;
        let mut source = || {
            calls += 1;
            if calls == 1 {
                Ok(first.clone())
            } else {
                generate_pkcs8(13)
            }
        };
        let k = ks
            .generate_with("example.com", KeyRole::Zsk, 13, 2, &mut source)
            .unwrap();
        assert_eq!(calls, 2);
        assert_ne!(k.tag, existing.tag);
        assert_eq!(ks.list("example.com").unwrap().len(), 2);

        // a source that only ever collides gives up with a clear error
        let mut stuck = || Ok(first.clone());
        let e = ks
            .generate_with("example.com", KeyRole::Zsk, 13, 3, &mut stuck)
            .unwrap_err()
            .to_string();
        assert!(e.contains("collision"), "{e}");
        // another zone does not collide
        ks.generate_with("example.net", KeyRole::Zsk, 13, 3, &mut stuck)
            .unwrap();
    }

    #[test]
    fn corrupt_files_are_named() {
        let t = TempDir::new("corrupt");
        let ks = FileKeystore::open(&t.0).unwrap();
        let k = ks.generate("example.com", KeyRole::Csk, 13, 1).unwrap();
        let pk8 = ks.private_key_path(&k);
        fs::write(&pk8, b"not a key").unwrap();
        let e = ks.load_signer(&k).unwrap_err().to_string();
        assert!(e.contains(&pk8.display().to_string()), "{e}");
        assert!(e.contains("PKCS#8"), "{e}");

        // a valid key that is not the one in the metadata
        fs::write(&pk8, generate_pkcs8(13).unwrap()).unwrap();
        let e = ks.load_signer(&k).unwrap_err().to_string();
        assert!(e.contains("does not match"), "{e}");

        fs::remove_file(&pk8).unwrap();
        let e = ks.load_signer(&k).unwrap_err().to_string();
        assert!(e.contains(&pk8.display().to_string()), "{e}");

        let meta = ks.meta_path(&k);
        fs::write(&meta, b"{ not json").unwrap();
        let e = ks.list("example.com").unwrap_err().to_string();
        assert!(e.contains(&meta.display().to_string()), "{e}");
        // other zones are unaffected by it
        assert!(ks.list("example.net").unwrap().is_empty());
    }

    #[test]
    fn metadata_must_match_file_name() {
        let t = TempDir::new("mismatch");
        let ks = FileKeystore::open(&t.0).unwrap();
        let k = ks.generate("example.com", KeyRole::Csk, 13, 1).unwrap();
        let mut wrong = k.clone();
        wrong.tag ^= 1;
        let json = serde_json::to_vec(&wrong).unwrap();
        fs::write(ks.meta_path(&k), json).unwrap();
        let e = ks.list("example.com").unwrap_err().to_string();
        assert!(e.contains("does not match the file name"), "{e}");
    }

    #[test]
    fn save_meta_roundtrip_and_revoke() {
        let t = TempDir::new("save");
        let ks = FileKeystore::open(&t.0).unwrap();
        let mut k = ks.generate("example.com", KeyRole::Ksk, 15, 100).unwrap();
        k.published = Some(200);
        k.active = Some(300);
        k.retired = Some(400);
        k.state = "omnipresent".into();
        k.flags |= FLAG_REVOKE;
        ks.save_meta(&k).unwrap();
        assert!(names(&t.0).iter().all(|n| !n.starts_with('.')));
        let listed = ks.list("example.com").unwrap();
        assert_eq!(listed, vec![k.clone()]);
        assert_ne!(listed[0].tag(), listed[0].tag, "revoked key has a new tag");
        // the json is readable and has the documented fields
        let v: serde_json::Value =
            serde_json::from_slice(&fs::read(ks.meta_path(&k)).unwrap()).unwrap();
        assert_eq!(v["role"], "ksk");
        assert_eq!(v["removed"], serde_json::Value::Null);
        assert_eq!(v["public_key"], BASE64.encode(&k.public_key));

        // refusing nonsense
        let mut ghost = k.clone();
        ghost.tag ^= 1;
        assert!(ks.save_meta(&ghost).is_err());
        let mut unnormal = k.clone();
        unnormal.zone = "Example.com".into();
        assert!(ks.save_meta(&unnormal).is_err());

        ks.purge(&k).unwrap();
        assert!(names(&t.0).is_empty());
        assert!(ks.list("example.com").unwrap().is_empty());
    }

    #[test]
    fn other_files_are_ignored() {
        let t = TempDir::new("ignore");
        let ks = FileKeystore::open(&t.0).unwrap();
        let a = ks.generate("example.com", KeyRole::Csk, 13, 1).unwrap();
        ks.generate("sub.example.com", KeyRole::Csk, 13, 1).unwrap();
        ks.generate(".", KeyRole::Csk, 13, 1).unwrap();
        fs::write(t.0.join("README"), b"hello").unwrap();
        fs::write(t.0.join("notes.json"), b"{}").unwrap();
        fs::write(t.0.join(".Kexample.com.+013+00001.json.99.1.tmp"), b"x").unwrap();
        assert_eq!(ks.list("example.com").unwrap(), vec![a]);
        assert_eq!(ks.list("sub.example.com.").unwrap().len(), 1);
        let root = ks.list(".").unwrap();
        assert_eq!(root.len(), 1);
        assert!(root[0].file_stem().starts_with("K.+013+"));
    }

    #[test]
    fn stale_temp_files_removed_on_open() {
        let t = TempDir::new("stale");
        FileKeystore::open(&t.0).unwrap();
        // pid 0 never names a live process in /proc
        let stale = t.0.join(".Kexample.com.+013+00001.pk8.0.7.tmp");
        let mine = t.0.join(format!(".x.json.{}.1.tmp", std::process::id()));
        fs::write(&stale, b"x").unwrap();
        fs::write(&mine, b"x").unwrap();
        FileKeystore::open(&t.0).unwrap();
        assert!(!stale.exists());
        assert!(mine.exists());
    }

    #[test]
    fn write_atomic_replaces_and_cleans_up() {
        let t = TempDir::new("atomic");
        fs::create_dir_all(&t.0).unwrap();
        write_atomic(&t.0, "f", b"one", 0o600).unwrap();
        write_atomic(&t.0, "f", b"two", 0o600).unwrap();
        assert_eq!(fs::read(t.0.join("f")).unwrap(), b"two");
        assert_eq!(names(&t.0), vec!["f".to_string()]);
        // failure (target is a non-empty directory) removes the temporary file
        fs::create_dir_all(t.0.join("d/x")).unwrap();
        assert!(write_atomic(&t.0, "d", b"three", 0o600).is_err());
        assert_eq!(names(&t.0), vec!["d".to_string(), "f".to_string()]);
    }

    #[test]
    fn zone_names() {
        assert_eq!(normalize_zone("Example.COM").unwrap(), "example.com.");
        assert_eq!(normalize_zone("example.com.").unwrap(), "example.com.");
        assert_eq!(normalize_zone(".").unwrap(), ".");
        for bad in ["", "a..b", "../x", "a/b.", "a b", ".a", "x\u{e9}.com"] {
            assert!(normalize_zone(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_stem("Kexample.com.+013+01234"),
            Some(("example.com.", 13, 1234))
        );
        assert_eq!(parse_stem("Ka+b.+008+65535"), Some(("a+b.", 8, 65535)));
        assert_eq!(parse_stem("Kexample.com.+13+01234"), None);
        assert_eq!(parse_stem("example.com.+013+01234"), None);
        assert_eq!(parse_stem("K+013+01234"), None);
        assert_eq!("CSK".parse::<KeyRole>().unwrap(), KeyRole::Csk);
        assert!("foo".parse::<KeyRole>().is_err());
        assert!(KeyRole::Csk.signs_keys() && KeyRole::Csk.signs_zone());
        assert!(!KeyRole::Zsk.signs_keys() && !KeyRole::Ksk.signs_zone());
    }

    #[test]
    fn concurrent_signing_from_store() {
        let t = TempDir::new("threads");
        let ks = FileKeystore::open(&t.0).unwrap();
        let k = ks.generate("example.com", KeyRole::Csk, 15, 1).unwrap();
        let s = ks.load_signer(&k).unwrap();
        std::thread::scope(|scope| {
            for i in 0..4 {
                let s = Arc::clone(&s);
                let pk = k.public_key.clone();
                scope.spawn(move || {
                    for j in 0..50 {
                        let m = format!("{i}-{j}");
                        let sig = s.sign(m.as_bytes()).unwrap();
                        assert!(ring_verify(15, &pk, m.as_bytes(), &sig));
                    }
                });
            }
        });
    }
}
