//! Reading BIND key pairs: `Kname.+alg+tag.private` (private-key format v1.2/v1.3) and the
//! matching `Kname.+alg+tag.key` (the DNSKEY record), for `signet keys import`.
//!
//! ```text
//! Private-key-format: v1.3            Kexample.com.+013+12345.key:
//! Algorithm: 13 (ECDSAP256SHA256)     ; This is a key-signing key, keyid 12345, for example.com.
//! PrivateKey: <base64 scalar>         example.com. 3600 IN DNSKEY 257 3 13 <base64 X||Y>
//! Created: 20240101000000
//! Publish: 20240101000000
//! Activate: 20240101000000
//! ```
//!
//! RSA keys carry `Modulus`, `PublicExponent`, `PrivateExponent`, `Prime1`, `Prime2`,
//! `Exponent1`, `Exponent2`, `Coefficient`; ECDSA and Ed25519 keys `PrivateKey` (the scalar, the
//! 32-octet seed). Keys that BIND itself kept in an HSM (`Label:`/`Engine:` instead of key
//! material) cannot be imported from files.
//!
//! [`read_bind_key`] checks that the private key belongs to the public key of the `.key` file
//! (ring recomputes the public half for ECDSA and Ed25519; for RSA the modulus and exponent must
//! be those of the DNSKEY, and whoever loads the key — ring, or the HSM's test signature —
//! proves the rest), so an import can never change the zone's DNSKEY set or DS.
//!
//! The key material is wiped from memory when dropped.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use data_encoding::BASE64;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair};

use super::dnskey::{
    dnskey_rdata, key_tag, rsa_public_key_rfc3110, strip_leading_zeros, ALG_ECDSAP256SHA256,
    ALG_ECDSAP384SHA384, ALG_ED25519, ALG_RSASHA256, ALG_RSASHA512, FLAG_REVOKE, FLAG_SEP,
    FLAG_ZONE,
};
use super::files::normalize_zone;
use super::pkcs8::{ecdsa_pkcs8, ed25519_pkcs8, rsa_pkcs1_from_components, RsaPrivateComponents};
use super::KeyError;

/// BIND files larger than this are refused (an RSA-4096 `.private` is about 3.3 KiB).
const MAX_FILE_SIZE: u64 = 64 << 10;

/// Private key material, as raw components. Zeroed on drop; `Debug` shows no secret.
pub enum KeyMaterial {
    /// RSA (algorithms 8 and 10): big-endian unsigned integers.
    Rsa {
        modulus: Vec<u8>,
        public_exponent: Vec<u8>,
        private_exponent: Vec<u8>,
        prime1: Vec<u8>,
        prime2: Vec<u8>,
        exponent1: Vec<u8>,
        exponent2: Vec<u8>,
        coefficient: Vec<u8>,
    },
    /// ECDSA P-256 (13) or P-384 (14): the private scalar, left-padded to the curve size.
    Ecdsa { scalar: Vec<u8> },
    /// Ed25519 (15): the 32-octet seed (RFC 8032 private key).
    Ed25519 { seed: [u8; 32] },
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyMaterial::Rsa { modulus, .. } => f
                .debug_struct("Rsa")
                .field("bits", &rsa_bits(modulus))
                .finish_non_exhaustive(),
            KeyMaterial::Ecdsa { scalar } => f
                .debug_struct("Ecdsa")
                .field("scalar_len", &scalar.len())
                .finish_non_exhaustive(),
            KeyMaterial::Ed25519 { .. } => f.debug_struct("Ed25519").finish_non_exhaustive(),
        }
    }
}

impl Drop for KeyMaterial {
    fn drop(&mut self) {
        match self {
            KeyMaterial::Rsa {
                modulus,
                public_exponent,
                private_exponent,
                prime1,
                prime2,
                exponent1,
                exponent2,
                coefficient,
            } => {
                for v in [
                    modulus,
                    public_exponent,
                    private_exponent,
                    prime1,
                    prime2,
                    exponent1,
                    exponent2,
                    coefficient,
                ] {
                    wipe(v);
                }
            }
            KeyMaterial::Ecdsa { scalar } => wipe(scalar),
            KeyMaterial::Ed25519 { seed } => {
                for b in seed.iter_mut() {
                    // SAFETY-free volatile-ish wipe: write through a reference the optimiser
                    // cannot prove dead because of the black_box below.
                    *b = 0;
                }
                std::hint::black_box(&seed);
            }
        }
    }
}

fn wipe(v: &mut [u8]) {
    for b in v.iter_mut() {
        *b = 0;
    }
    std::hint::black_box(&v);
}

/// Number of significant bits of a big-endian unsigned integer.
pub fn rsa_bits(modulus: &[u8]) -> usize {
    let m = strip_leading_zeros(modulus);
    match m.first() {
        Some(b) => (m.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
        None => 0,
    }
}

impl KeyMaterial {
    /// The modulus size of an RSA key.
    pub fn rsa_bits(&self) -> Option<usize> {
        match self {
            KeyMaterial::Rsa { modulus, .. } => Some(rsa_bits(modulus)),
            _ => None,
        }
    }

    /// DER for [`super::FileKeystore::import_pkcs8`]: PKCS#1 `RSAPrivateKey` for RSA, PKCS#8 for
    /// ECDSA (with the public point `X||Y`) and Ed25519.
    pub fn to_der(&self, algorithm: u8, public_key: &[u8]) -> Result<Vec<u8>, KeyError> {
        match self {
            KeyMaterial::Rsa {
                modulus,
                public_exponent,
                private_exponent,
                prime1,
                prime2,
                exponent1,
                exponent2,
                coefficient,
            } => Ok(rsa_pkcs1_from_components(&RsaPrivateComponents {
                modulus,
                public_exponent,
                private_exponent,
                prime1,
                prime2,
                exponent1,
                exponent2,
                coefficient,
            })),
            KeyMaterial::Ecdsa { scalar } => {
                ecdsa_pkcs8(algorithm, scalar, public_key).ok_or_else(|| {
                    KeyError::Rejected(format!(
                        "ECDSA key of algorithm {algorithm}: scalar or public point has the wrong size"
                    ))
                })
            }
            KeyMaterial::Ed25519 { seed } => Ok(ed25519_pkcs8(seed)),
        }
    }
}

/// A BIND key pair read from disk.
#[derive(Debug)]
pub struct BindKey {
    /// Owner of the DNSKEY in the `.key` file, normalised (`example.com.`).
    pub zone: String,
    pub algorithm: u8,
    /// DNSKEY flags from the `.key` file: 257 (SEP) or 256.
    pub flags: u16,
    /// TTL of the DNSKEY record in the `.key` file, if it has one.
    pub ttl: Option<u32>,
    /// The DNSKEY public key field, exactly as BIND published it.
    pub public_key: Vec<u8>,
    /// Key tag of the DNSKEY.
    pub tag: u16,
    pub material: KeyMaterial,
    /// `Private-key-format` (e.g. `v1.3`).
    pub format: String,
    /// Timing metadata of the `.private` file (Unix seconds).
    pub created: Option<u64>,
    pub publish: Option<u64>,
    pub activate: Option<u64>,
    pub inactive: Option<u64>,
    pub delete: Option<u64>,
    pub private_path: PathBuf,
    pub key_path: PathBuf,
}

impl BindKey {
    /// The DNSKEY RDATA of the key.
    pub fn dnskey_rdata(&self) -> Vec<u8> {
        dnskey_rdata(self.flags, self.algorithm, &self.public_key)
    }

    /// Whether the SEP bit is set (BIND's KSKs and CSKs).
    pub fn is_sep(&self) -> bool {
        self.flags & FLAG_SEP != 0
    }
}

fn bad(path: &Path, reason: impl Into<String>) -> KeyError {
    KeyError::BadFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_small(path: &Path) -> Result<String, KeyError> {
    let f = File::open(path).map_err(|e| KeyError::io("open", path, e))?;
    let mut buf = Vec::new();
    f.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| KeyError::io("read", path, e))?;
    if buf.len() as u64 > MAX_FILE_SIZE {
        return Err(bad(path, format!("larger than {MAX_FILE_SIZE} bytes")));
    }
    String::from_utf8(buf).map_err(|_| bad(path, "not UTF-8 text"))
}

/// The `.private` and `.key` paths for a path naming either file or their common stem.
pub fn bind_key_paths(path: &Path) -> (PathBuf, PathBuf) {
    let s = path.to_string_lossy();
    let stem = s
        .strip_suffix(".private")
        .or_else(|| s.strip_suffix(".key"))
        .unwrap_or(&s)
        .to_string();
    (
        PathBuf::from(format!("{stem}.private")),
        PathBuf::from(format!("{stem}.key")),
    )
}

/// Reads and cross-checks a BIND key pair. `path` names the `.private` file (or the `.key`
/// file, or their common stem); the other file must sit beside it.
pub fn read_bind_key(path: &Path) -> Result<BindKey, KeyError> {
    let (private_path, key_path) = bind_key_paths(path);
    let private_text = read_small(&private_path)?;
    let key_text = read_small(&key_path)?;
    let key = parse_key_file(&key_text).map_err(|e| bad(&key_path, e))?;
    let private = parse_private(&private_text).map_err(|e| bad(&private_path, e))?;
    if private.algorithm != key.algorithm {
        return Err(bad(
            &private_path,
            format!(
                "algorithm {} does not match the algorithm {} of {}",
                private.algorithm,
                key.algorithm,
                key_path.display()
            ),
        ));
    }
    check_pair(key.algorithm, &private.material, &key.public_key).map_err(|e| {
        bad(
            &private_path,
            format!("{e} (public key from {})", key_path.display()),
        )
    })?;
    let tag = key_tag(&dnskey_rdata(key.flags, key.algorithm, &key.public_key));
    if let Some(name_tag) = file_name_tag(&private_path) {
        if name_tag != tag {
            return Err(bad(
                &key_path,
                format!("the DNSKEY has key tag {tag}, the file name says {name_tag}"),
            ));
        }
    }
    let zone = normalize_zone(&key.owner)?;
    Ok(BindKey {
        zone,
        algorithm: key.algorithm,
        flags: key.flags,
        ttl: key.ttl,
        public_key: key.public_key,
        tag,
        format: private.format.clone(),
        created: private.created,
        publish: private.publish,
        activate: private.activate,
        inactive: private.inactive,
        delete: private.delete,
        material: private.material,
        private_path,
        key_path,
    })
}

/// `Kexample.com.+013+12345.private` → 12345.
fn file_name_tag(path: &Path) -> Option<u16> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".private")?;
    let (_, tag) = stem.rsplit_once('+')?;
    if tag.len() != 5 {
        return None;
    }
    tag.parse().ok()
}

/// Checks that `material` is the private half of `public_key` (the DNSKEY public key field).
pub fn check_pair(algorithm: u8, material: &KeyMaterial, public_key: &[u8]) -> Result<(), String> {
    match (algorithm, material) {
        (
            ALG_RSASHA256 | ALG_RSASHA512,
            KeyMaterial::Rsa {
                modulus,
                public_exponent,
                ..
            },
        ) => {
            if rsa_public_key_rfc3110(public_exponent, modulus) != public_key {
                return Err("the RSA modulus or exponent is not that of the DNSKEY".into());
            }
            Ok(())
        }
        (ALG_ECDSAP256SHA256 | ALG_ECDSAP384SHA384, KeyMaterial::Ecdsa { scalar }) => {
            let alg = if algorithm == ALG_ECDSAP256SHA256 {
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING
            };
            let der = ecdsa_pkcs8(algorithm, scalar, public_key)
                .ok_or("the private scalar or the public key has the wrong size for the curve")?;
            // ring checks that d·G equals the public point of the document.
            EcdsaKeyPair::from_pkcs8(alg, &der, &ring::rand::SystemRandom::new())
                .map(|_| ())
                .map_err(|e| format!("the private key does not match the DNSKEY: {e}"))
        }
        (ALG_ED25519, KeyMaterial::Ed25519 { seed }) => {
            Ed25519KeyPair::from_seed_and_public_key(seed, public_key)
                .map(|_| ())
                .map_err(|e| format!("the private key does not match the DNSKEY: {e}"))
        }
        _ => Err(format!("key material does not fit algorithm {algorithm}")),
    }
}

/// The DNSKEY of a `.key` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFile {
    pub owner: String,
    pub ttl: Option<u32>,
    pub flags: u16,
    pub algorithm: u8,
    pub public_key: Vec<u8>,
}

/// Parses a BIND `.key` file: comment lines (`;`) and one DNSKEY record
/// `owner [TTL] [IN] DNSKEY flags 3 algorithm base64…`.
pub fn parse_key_file(text: &str) -> Result<KeyFile, String> {
    let mut records = Vec::new();
    let mut joined = String::new();
    let mut depth = 0i32;
    for line in text.lines() {
        let line = match line.find(';') {
            Some(i) => &line[..i],
            None => line,
        };
        depth += line.matches('(').count() as i32 - line.matches(')').count() as i32;
        joined.push(' ');
        joined.push_str(&line.replace(['(', ')'], " "));
        if depth <= 0 {
            if !joined.trim().is_empty() {
                records.push(std::mem::take(&mut joined));
            }
            joined.clear();
            depth = 0;
        }
    }
    if !joined.trim().is_empty() {
        records.push(joined);
    }
    let mut found = None;
    for rec in &records {
        let tokens: Vec<&str> = rec.split_whitespace().collect();
        let Some(pos) = tokens.iter().position(|t| t.eq_ignore_ascii_case("DNSKEY")) else {
            continue;
        };
        if found.is_some() {
            return Err("more than one DNSKEY record".into());
        }
        let owner = tokens.first().copied().ok_or("no owner name")?;
        if pos == 0 {
            return Err("no owner name before DNSKEY".into());
        }
        let mut ttl = None;
        for t in &tokens[1..pos] {
            if let Ok(v) = t.parse::<u32>() {
                ttl = Some(v);
            } else if !t.eq_ignore_ascii_case("IN") {
                return Err(format!("unexpected {t:?} before DNSKEY"));
            }
        }
        let rest = &tokens[pos + 1..];
        if rest.len() < 4 {
            return Err("DNSKEY needs flags, protocol, algorithm and a public key".into());
        }
        let flags: u16 = rest[0]
            .parse()
            .map_err(|_| format!("bad DNSKEY flags {:?}", rest[0]))?;
        if rest[1] != "3" {
            return Err(format!("DNSKEY protocol {:?}, expected 3", rest[1]));
        }
        let algorithm = parse_algorithm(rest[2])
            .ok_or_else(|| format!("unknown DNSKEY algorithm {:?}", rest[2]))?;
        let b64: String = rest[3..].concat();
        let public_key = BASE64
            .decode(b64.as_bytes())
            .map_err(|e| format!("bad base64 in the DNSKEY public key: {e}"))?;
        if public_key.is_empty() {
            return Err("empty DNSKEY public key".into());
        }
        found = Some(KeyFile {
            owner: owner.to_string(),
            ttl,
            flags,
            algorithm,
            public_key,
        });
    }
    let key = found.ok_or("no DNSKEY record")?;
    if key.flags & FLAG_ZONE == 0 {
        return Err(format!(
            "DNSKEY flags {} lack the Zone Key bit: not a zone signing key",
            key.flags
        ));
    }
    if key.flags & FLAG_REVOKE != 0 {
        return Err(format!(
            "DNSKEY flags {} have the REVOKE bit: a revoked key cannot be imported",
            key.flags
        ));
    }
    if key.flags & !(FLAG_ZONE | FLAG_SEP) != 0 {
        return Err(format!("DNSKEY flags {} have unknown bits set", key.flags));
    }
    Ok(key)
}

fn parse_algorithm(s: &str) -> Option<u8> {
    if let Ok(n) = s.parse::<u8>() {
        return Some(n);
    }
    super::dnskey::algorithm_from_name(s)
}

/// The content of a `.private` file.
#[derive(Debug)]
pub struct PrivateFile {
    pub format: String,
    pub algorithm: u8,
    pub material: KeyMaterial,
    pub created: Option<u64>,
    pub publish: Option<u64>,
    pub activate: Option<u64>,
    pub inactive: Option<u64>,
    pub delete: Option<u64>,
}

/// Parses a BIND `.private` file (formats v1.2 and v1.3) for algorithms 8, 10, 13, 14, 15.
pub fn parse_private(text: &str) -> Result<PrivateFile, String> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("line {}: expected `Field: value`", n + 1))?;
        let k = k.trim();
        if fields.iter().any(|(f, _)| f.eq_ignore_ascii_case(k)) {
            return Err(format!("line {}: field {k} appears twice", n + 1));
        }
        fields.push((k.to_string(), v.trim().to_string()));
    }
    let get = |name: &str| -> Option<&str> {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let format = get("Private-key-format").ok_or("no Private-key-format line")?;
    let version = format
        .strip_prefix('v')
        .and_then(|v| v.split_once('.'))
        .and_then(|(major, _)| major.parse::<u32>().ok());
    if version != Some(1) {
        return Err(format!(
            "Private-key-format {format:?} is not supported (v1.2 and v1.3 are)"
        ));
    }
    let alg_field = get("Algorithm").ok_or("no Algorithm line")?;
    let algorithm: u8 = alg_field
        .split_whitespace()
        .next()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("bad Algorithm {alg_field:?}"))?;
    if get("Label").is_some() || get("Engine").is_some() {
        return Err(
            "the key lives in BIND's HSM (Label/Engine), the file has no key material to import"
                .into(),
        );
    }
    let b64 = |name: &str| -> Result<Vec<u8>, String> {
        let v = get(name).ok_or_else(|| format!("no {name} line"))?;
        let compact: String = v.split_whitespace().collect();
        let out = BASE64
            .decode(compact.as_bytes())
            .map_err(|e| format!("{name}: bad base64: {e}"))?;
        if out.is_empty() {
            return Err(format!("{name} is empty"));
        }
        Ok(out)
    };
    let material = match algorithm {
        ALG_RSASHA256 | ALG_RSASHA512 => KeyMaterial::Rsa {
            modulus: b64("Modulus")?,
            public_exponent: b64("PublicExponent")?,
            private_exponent: b64("PrivateExponent")?,
            prime1: b64("Prime1")?,
            prime2: b64("Prime2")?,
            exponent1: b64("Exponent1")?,
            exponent2: b64("Exponent2")?,
            coefficient: b64("Coefficient")?,
        },
        ALG_ECDSAP256SHA256 | ALG_ECDSAP384SHA384 => {
            let len = if algorithm == ALG_ECDSAP256SHA256 {
                32
            } else {
                48
            };
            let mut d = b64("PrivateKey")?;
            let s = strip_leading_zeros(&d).to_vec();
            wipe(&mut d);
            if s.is_empty() || s.len() > len {
                return Err(format!(
                    "PrivateKey has {} octets, expected {len} for algorithm {algorithm}",
                    s.len()
                ));
            }
            let mut scalar = vec![0u8; len - s.len()];
            scalar.extend_from_slice(&s);
            let mut s = s;
            wipe(&mut s);
            KeyMaterial::Ecdsa { scalar }
        }
        ALG_ED25519 => {
            let mut d = b64("PrivateKey")?;
            if d.len() != 32 {
                let n = d.len();
                wipe(&mut d);
                return Err(format!(
                    "PrivateKey has {n} octets, expected 32 for Ed25519"
                ));
            }
            let mut seed = [0u8; 32];
            seed.copy_from_slice(&d);
            wipe(&mut d);
            KeyMaterial::Ed25519 { seed }
        }
        other => {
            return Err(format!(
                "algorithm {other} cannot be imported (supported: 8, 10, 13, 14, 15)"
            ))
        }
    };
    let time = |name: &str| -> Result<Option<u64>, String> {
        match get(name) {
            None => Ok(None),
            Some(v) => parse_bind_time(v)
                .map(Some)
                .ok_or_else(|| format!("{name}: bad time {v:?} (expected YYYYMMDDHHMMSS)")),
        }
    };
    Ok(PrivateFile {
        format: format.to_string(),
        algorithm,
        material,
        created: time("Created")?,
        publish: time("Publish")?,
        activate: time("Activate")?,
        inactive: time("Inactive")?,
        delete: time("Delete")?,
    })
}

/// `YYYYMMDDHHMMSS` (UTC) → Unix seconds. BIND writes timing metadata this way.
pub fn parse_bind_time(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|v| v.parse::<u64>().ok());
    let (y, mo, d, h, mi, se) = (
        n(0..4)?,
        n(4..6)?,
        n(6..8)?,
        n(8..10)?,
        n(10..12)?,
        n(12..14)?,
    );
    if y < 1970 || !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60
    {
        return None;
    }
    // days from civil (Howard Hinnant's algorithm), proleptic Gregorian, UTC
    let (y, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe;
    let days = days.checked_sub(719_468)?;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::KeyPair;

    // Generated with `dnssec-keygen -a ECDSAP256SHA256 -f KSK example.com` (BIND 9.18).
    const EC_KEY: &str = "; This is a key-signing key, keyid 14158, for example.com.\n\
        ; Created: 20240101000000 (Mon Jan  1 00:00:00 2024)\n\
        example.com. IN DNSKEY 257 3 13 ";

    #[test]
    fn times() {
        assert_eq!(parse_bind_time("19700101000000"), Some(0));
        assert_eq!(parse_bind_time("20240101000000"), Some(1_704_067_200));
        assert_eq!(parse_bind_time("20240229123456"), Some(1_709_210_096));
        assert_eq!(parse_bind_time("2024010100000"), None);
        assert_eq!(parse_bind_time("20241301000000"), None);
        assert_eq!(parse_bind_time("1969123100000x"), None);
    }

    #[test]
    fn key_file_shapes() {
        let k = parse_key_file(&format!("{EC_KEY}AAAA BBBB\n")).unwrap();
        assert_eq!(k.owner, "example.com.");
        assert_eq!(k.flags, 257);
        assert_eq!(k.algorithm, 13);
        assert_eq!(k.ttl, None);
        assert_eq!(k.public_key.len(), 6);
        let k = parse_key_file("x.example 3600 IN DNSKEY 256 3 ECDSAP256SHA256 ( AAAA\n BBBB )\n")
            .unwrap();
        assert_eq!((k.ttl, k.flags, k.algorithm), (Some(3600), 256, 13));
        assert!(parse_key_file("; nothing\n").is_err());
        assert!(parse_key_file("x. IN DNSKEY 385 3 13 AAAA\n")
            .unwrap_err()
            .contains("REVOKE"));
        assert!(parse_key_file("x. IN DNSKEY 1 3 13 AAAA\n")
            .unwrap_err()
            .contains("Zone Key"));
        assert!(parse_key_file("x. IN DNSKEY 257 4 13 AAAA\n").is_err());
        assert!(parse_key_file("x. IN DNSKEY 257 3 13 A!AA\n").is_err());
        assert!(
            parse_key_file("x. IN DNSKEY 257 3 13 AAAA\nx. IN DNSKEY 257 3 13 AAAA\n").is_err()
        );
    }

    #[test]
    fn private_file_shapes() {
        let seed = BASE64.encode(&[7u8; 32]);
        let p = parse_private(&format!(
            "Private-key-format: v1.3\nAlgorithm: 15 (ED25519)\nPrivateKey: {seed}\n\
             Created: 20240101000000\nPublish: 20240102000000\nActivate: 20240103000000\n"
        ))
        .unwrap();
        assert_eq!(p.algorithm, 15);
        assert_eq!(p.created, Some(1_704_067_200));
        assert_eq!(p.activate, Some(1_704_067_200 + 2 * 86_400));
        assert!(matches!(p.material, KeyMaterial::Ed25519 { seed } if seed == [7u8; 32]));
        assert!(!format!("{:?}", p.material).contains('7'));
        // P-256 scalar with a leading zero octet dropped by the writer is padded back
        let d = BASE64.encode(&[9u8; 31]);
        let p = parse_private(&format!(
            "Private-key-format: v1.2\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: {d}\n"
        ))
        .unwrap();
        assert!(
            matches!(&p.material, KeyMaterial::Ecdsa { scalar } if scalar.len() == 32 && scalar[0] == 0)
        );
        for bad in [
            "Algorithm: 13\nPrivateKey: AAAA\n",
            "Private-key-format: v2.0\nAlgorithm: 13\nPrivateKey: AAAA\n",
            "Private-key-format: v1.3\nAlgorithm: 5 (RSASHA1)\nModulus: AAAA\n",
            "Private-key-format: v1.3\nAlgorithm: 8 (RSASHA256)\nModulus: AAAA\n",
            "Private-key-format: v1.3\nAlgorithm: 13\nLabel: pkcs11:object=x\n",
            "Private-key-format: v1.3\nAlgorithm: 15\nPrivateKey: AAAA\n",
            "Private-key-format: v1.3\nAlgorithm: 13\nPrivateKey: AAAA\nCreated: soon\n",
            "Private-key-format: v1.3\nAlgorithm: 13\nAlgorithm: 13\n",
            "garbage\n",
        ] {
            assert!(parse_private(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pair_check() {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let kp = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        // the seed of a ring v2 document sits at offset 16
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&doc.as_ref()[16..48]);
        let m = KeyMaterial::Ed25519 { seed };
        check_pair(15, &m, kp.public_key().as_ref()).unwrap();
        assert!(check_pair(15, &m, &[0u8; 32]).is_err());
        assert!(check_pair(13, &m, kp.public_key().as_ref()).is_err());
        assert_eq!(rsa_bits(&[0, 0x80, 0]), 16);
        assert_eq!(rsa_bits(&[0x01, 0]), 9);
        assert_eq!(
            file_name_tag(Path::new("/x/Kexample.com.+013+01234.private")),
            Some(1234)
        );
        assert_eq!(
            bind_key_paths(Path::new("K.+013+01234.key")),
            (
                PathBuf::from("K.+013+01234.private"),
                PathBuf::from("K.+013+01234.key")
            )
        );
    }
}
