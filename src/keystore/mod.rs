//! Signing keys: the [`SigningKey`] trait, soft keys held by ring, the file keystore
//! (`backend = "files"`), and DNSKEY/DS helpers.
//!
//! # Algorithms
//!
//! | number | mnemonic | generate | import | public key field |
//! |---|---|---|---|---|
//! | 8 | RSASHA256 | no | PKCS#8 or PKCS#1 DER, 2048–8192 bits | RFC 3110 (exponent length, e, n) |
//! | 10 | RSASHA512 | no | PKCS#8 or PKCS#1 DER, 2048–8192 bits | RFC 3110 |
//! | 13 | ECDSAP256SHA256 | yes | PKCS#8 | `X‖Y`, 64 octets (RFC 6605) |
//! | 14 | ECDSAP384SHA384 | yes | PKCS#8 | `X‖Y`, 96 octets |
//! | 15 | ED25519 | yes | PKCS#8 v1 or v2 | 32 octets (RFC 8080) |
//!
//! ring cannot generate RSA keys, and signet adds no crate for it: RSA keys can only be
//! imported, and ring refuses moduli below 2048 bits. ECDSA signatures are the fixed-width
//! `r‖s` DNSSEC wants (ring's `*_FIXED` algorithms), never ASN.1.
//!
//! # Layout on disk
//!
//! The keystore is one directory, mode 0700, shared by all zones. Each key is two files with
//! BIND's naming, the zone lowercase and with its trailing dot:
//!
//! ```text
//! keys/
//!   Kexample.com.+013+12345.pk8    private key, PKCS#8 DER, mode 0600
//!   Kexample.com.+013+12345.json   metadata, mode 0600
//!   K.+015+04711.pk8 / .json       a key of the root zone
//! ```
//!
//! The metadata ([`StoredKey`]) is JSON:
//!
//! ```json
//! {
//!   "zone": "example.com.", "role": "csk", "algorithm": 13, "tag": 12345, "flags": 257,
//!   "public_key": "<base64 DNSKEY public key field>",
//!   "created": 1700000000, "published": null, "active": null, "retired": null, "removed": null,
//!   "state": "new"
//! }
//! ```
//!
//! `tag` is the tag at creation and names the files; setting the REVOKE flag later changes the
//! DNSKEY's tag ([`StoredKey::tag`]) but not the file names. Key tags are unique within a zone,
//! with and without REVOKE: a generated key whose tag collides is discarded and another drawn
//! (as Knot's `keytag_conflict`), so that validators never have to try several keys for one
//! RRSIG (KeyTrap, CVE-2023-50387); a colliding import is refused.
//!
//! # Why PKCS#8
//!
//! PKCS#8 DER is the one private key format ring loads for every algorithm, OpenSSL writes it
//! (`openssl pkcs8 -topk8 -nocrypt -outform DER`), and it names its algorithm, so a key file
//! cannot silently be used with the wrong curve. PKCS#1 RSA keys are wrapped into PKCS#8 on
//! import; [`pkcs8`] builds PKCS#8 from raw components for importers of BIND `.private` files.
//!
//! # Crash safety
//!
//! Every file is written by [`write_atomic`]: a temporary file `.<name>.<pid>.<n>.tmp` in the same
//! directory, fsync, rename over the target, fsync of the directory. A reader therefore sees the
//! old or the new file in full, never a torn one. A key's private key is made durable before its
//! metadata, so every `.json` has its `.pk8`; a crash between the two leaves an orphan `.pk8`
//! that [`FileKeystore::list`] ignores (the key was never announced). [`FileKeystore::purge`]
//! removes in the opposite order. Temporary files of dead processes are removed on
//! [`FileKeystore::open`].
//!
//! # Threads
//!
//! [`SigningKey`] is `Send + Sync` and `sign` takes `&self`: one loaded key (an
//! `Arc<dyn SigningKey>`) serves all signing threads without locks.

pub mod bind_import;
pub mod dnskey;
mod files;
pub mod pkcs11;
pub mod pkcs8;
mod signing;

#[cfg(test)]
mod testkeys;

use std::fmt;
use std::path::{Path, PathBuf};

pub use bind_import::{read_bind_key, BindKey, KeyMaterial};
pub use dnskey::{dnskey_rdata, ds_rdata, key_tag};
pub use files::{normalize_zone, write_atomic, FileKeystore, KeyRole, StoredKey, STATE_NEW};
pub use pkcs11::{Pkcs11Keystore, Pkcs11SigningKey, TokenRef};
pub use signing::{
    generate_pkcs8, is_supported_algorithm, verify_signature, RingSigningKey, SigningKey,
};

/// Errors of the keystore. Every error about a file names it.
#[derive(Debug)]
pub enum KeyError {
    /// An I/O operation on a path failed.
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A key or metadata file exists but its content is unusable.
    BadFile { path: PathBuf, reason: String },
    /// The algorithm or operation is not supported (e.g. RSA generation).
    Unsupported(String),
    /// Key material was refused (wrong algorithm, malformed DER, RSA below 2048 bits).
    Rejected(String),
    /// A key tag collision or a duplicate key.
    Conflict(String),
    /// The zone name cannot be used.
    InvalidZone(String),
    /// Key generation or signing failed inside the crypto library.
    Crypto(String),
    /// An error from another key backend (e.g. PKCS#11).
    Backend(String),
}

impl KeyError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        KeyError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Io { op, path, source } => {
                write!(f, "{}: cannot {op}: {source}", path.display())
            }
            KeyError::BadFile { path, reason } => write!(f, "{}: {reason}", path.display()),
            KeyError::Unsupported(m)
            | KeyError::Rejected(m)
            | KeyError::Conflict(m)
            | KeyError::Crypto(m)
            | KeyError::Backend(m) => f.write_str(m),
            KeyError::InvalidZone(m) => write!(f, "invalid zone name {m}"),
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The keystore's result type.
pub type Result<T, E = KeyError> = std::result::Result<T, E>;
