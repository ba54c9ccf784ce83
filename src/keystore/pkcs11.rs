//! The PKCS#11 keystore (`backend = "pkcs11"`): private keys generated and kept on an HSM token,
//! used through any PKCS#11 module (SoftHSM2 in the tests) with the cryptoki crate.
//!
//! # On the token
//!
//! Every key is a private key object and its public key object, both token objects
//! (`CKA_TOKEN`), sharing one `CKA_ID` and `CKA_LABEL`:
//!
//! * `CKA_ID` — 16 octets: the first 8 octets of SHA-256 of the zone name (lowercase, with its
//!   trailing dot), then 8 random octets. A key is found by its ID alone, and the zone prefix is
//!   checked on every load, so two zones' keys can never be confused even on a shared token.
//! * `CKA_LABEL` — `K<zone>+<alg>+<tag>`, the BIND file name stem (`Kexample.com.+013+12345`),
//!   for operators listing the token with `pkcs11-tool --list-objects`.
//! * private keys are `CKA_PRIVATE`, `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`, `CKA_SIGN` only.
//!   Generated keys therefore show as *always sensitive, never extractable, local*; imported
//!   keys (`signet keys import`) are sensitive and not extractable from then on.
//!
//! # Metadata
//!
//! The key metadata — role, algorithm, tag, public key, timing, state — is kept off the token,
//! as JSON in the files keystore's scheme ([`StoredKey`]), one file per key in a directory of
//! its own (by default `<state-dir>/keys-<keystore name>/`, mode 0700), plus where the key
//! lives on the token:
//!
//! ```json
//! { "zone": "example.com.", "role": "ksk", "algorithm": 13, "tag": 12345, "flags": 257,
//!   "public_key": "…", "created": 1700000000, …, "state": "active",
//!   "pkcs11": { "token": "signet", "id": "9c56cc51b374c3ba0123456789abcdef",
//!               "label": "Kexample.com.+013+12345" } }
//! ```
//!
//! The token objects are created first, the metadata written after them (crash-safely, with
//! [`write_atomic`]); only then does a DNSKEY depend on the key. A crash in between leaves
//! orphan objects on the token that no metadata names (they are never used). Purging destroys
//! the token objects first and then the metadata, so a purged key's material never stays on the
//! token while signet has forgotten it.
//!
//! # Sessions and threads
//!
//! One module is loaded and initialised once per process (C_Initialize may not be repeated).
//! Per token, signet logs in once and keeps a pool of sessions: a signing thread takes a
//! session out of the pool, signs, and puts it back, so the signer's worker threads sign in
//! parallel, each on its own session ([`cryptoki::session::Session`] is not `Sync`). All calls
//! are blocking FFI; callers run them on blocking threads, never on the async runtime.
//!
//! ECDSA is hashed in software and the digest signed with `CKM_ECDSA` (SoftHSM 2.6 has no
//! `CKM_ECDSA_SHA256`, and it sends less data to the HSM); Ed25519 signs with `CKM_EDDSA`, RSA
//! with `CKM_SHA256_RSA_PKCS` / `CKM_SHA512_RSA_PKCS`.
//!
//! # Failures
//!
//! A missing module, a missing token, a PIN that cannot be read or that the token refuses are
//! one-line errors naming the keystore. A PIN the token refused is not tried again until it
//! changes (so that retries cannot lock the token). When a call fails with a device, session or
//! handle error, the token is marked broken; the next call re-initialises the module
//! (C_Finalize + C_Initialize), finds the token again and logs in, at most once every
//! [`RECONNECT_BACKOFF`] — in between, calls fail fast with the last error. Once the HSM is back,
//! signing resumes without a restart.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use data_encoding::HEXLOWER;
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::bind_import::KeyMaterial;
use super::dnskey::{
    dnskey_rdata, key_tag, rsa_public_key_rfc3110, ALG_ECDSAP256SHA256, ALG_ECDSAP384SHA384,
    ALG_ED25519, ALG_RSASHA256, ALG_RSASHA512, FLAG_REVOKE,
};
use super::files::{normalize_zone, write_atomic, KeyRole, StoredKey, STATE_NEW};
use super::signing::verify_signature;
use super::{KeyError, Result, SigningKey};
use crate::config::PinSource;

/// After a failed (re)connection, calls fail fast with the same error for this long.
pub const RECONNECT_BACKOFF: Duration = Duration::from_secs(2);
/// Most sessions one token's pool opens (the signer uses one per worker thread).
const MAX_SESSIONS: usize = 32;
/// Size of generated RSA keys.
const RSA_BITS: u64 = 2048;
/// Metadata files larger than this are refused as corrupt.
const MAX_META_SIZE: u64 = 1 << 20;
/// Attempts to draw a key whose tag does not collide before giving up.
const MAX_GENERATE_ATTEMPTS: usize = 16;

/// DER OID of prime256v1.
const EC_PARAMS_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER OID of secp384r1.
const EC_PARAMS_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// PrintableString "edwards25519" (PKCS#11 3.0 §2.3.10; what SoftHSM understands).
const EC_PARAMS_ED25519: &[u8] = &[
    0x13, 0x0c, b'e', b'd', b'w', b'a', b'r', b'd', b's', b'2', b'5', b'5', b'1', b'9',
];
/// DER OID id-Ed25519 (1.3.101.112), what RFC 8410-minded modules want instead.
const EC_PARAMS_ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn backend(msg: impl Into<String>) -> KeyError {
    KeyError::Backend(msg.into())
}

/// `PinIncorrect` → `CKR_PIN_INCORRECT`.
fn rv_name(rv: &RvError) -> String {
    let camel = format!("{rv:?}");
    let mut out = String::from("CKR");
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// A cryptoki error in one short line (`C_Login: CKR_PIN_INCORRECT`).
fn ck_text(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, f) => format!("C_{f:?}: {}", rv_name(rv)),
        CkError::LibraryLoading(e) => format!("cannot load the module: {e}"),
        other => other.to_string(),
    }
}

/// Whether an error means the connection (module, token, session or object handles) can no
/// longer be trusted, as opposed to a refused request.
fn is_connection_error(e: &CkError) -> bool {
    match e {
        CkError::Pkcs11(rv, _) => !matches!(
            rv,
            RvError::MechanismInvalid
                | RvError::MechanismParamInvalid
                | RvError::AttributeTypeInvalid
                | RvError::AttributeValueInvalid
                | RvError::AttributeReadOnly
                | RvError::AttributeSensitive
                | RvError::TemplateIncomplete
                | RvError::TemplateInconsistent
                | RvError::DataInvalid
                | RvError::DataLenRange
                | RvError::KeyTypeInconsistent
                | RvError::KeySizeRange
                | RvError::KeyFunctionNotPermitted
                | RvError::FunctionNotSupported
                | RvError::CurveNotSupported
                | RvError::DomainParamsInvalid
                | RvError::ArgumentsBad
                | RvError::BufferTooSmall
                | RvError::TokenWriteProtected
                | RvError::ActionProhibited
                | RvError::PinIncorrect
                | RvError::PinInvalid
                | RvError::PinLenRange
                | RvError::PinExpired
                | RvError::PinLocked
                | RvError::UserPinNotInitialized
                | RvError::SessionCount
                | RvError::PublicKeyInvalid
                | RvError::FunctionRejected
        ),
        CkError::LibraryLoading(_) | CkError::NullFunctionPointer | CkError::MissingSymbol(_) => {
            true
        }
        _ => false,
    }
}

/// Why an operation on a session failed.
enum OpError {
    /// A PKCS#11 call failed.
    Ck(CkError),
    /// A key signet's metadata names is not on the token (after a token outage, the module's
    /// view can be stale: treated like a connection error).
    Missing(String),
    /// Anything else (bad data from the token, a key that does not verify).
    Other(String),
}

impl From<CkError> for OpError {
    fn from(e: CkError) -> Self {
        OpError::Ck(e)
    }
}

impl OpError {
    fn breaks_connection(&self) -> bool {
        match self {
            OpError::Ck(e) => is_connection_error(e),
            OpError::Missing(_) => true,
            OpError::Other(_) => false,
        }
    }

    fn text(&self) -> String {
        match self {
            OpError::Ck(e) => ck_text(e),
            OpError::Missing(m) | OpError::Other(m) => m.clone(),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Modules: loaded and initialised once per process
// ------------------------------------------------------------------------------------------------

struct Module {
    path: PathBuf,
    ctx: Pkcs11,
    /// The initialisation generation. Every PKCS#11 call on a session holds the read lock;
    /// re-initialisation holds the write lock, so no call runs across a C_Finalize.
    generation: RwLock<u64>,
}

impl Module {
    fn generation(&self) -> u64 {
        *self.generation.read().unwrap_or_else(|p| p.into_inner())
    }

    /// C_Finalize + C_Initialize, unless someone else did it since `seen` was current. All
    /// sessions of the old generation are gone afterwards.
    fn reinitialize(&self, seen: u64) -> Result<()> {
        let mut g = self.generation.write().unwrap_or_else(|p| p.into_inner());
        if *g != seen {
            return Ok(());
        }
        tracing::warn!(module = %self.path.display(), "re-initialising the PKCS#11 module");
        if let Err(e) = self.ctx.clone().finalize() {
            tracing::debug!(error = %ck_text(&e), "C_Finalize failed");
        }
        *g += 1;
        initialize(&self.ctx, &self.path)
    }
}

fn initialize(ctx: &Pkcs11, path: &Path) -> Result<()> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(backend(format!(
            "PKCS#11 module {}: {}",
            path.display(),
            ck_text(&e)
        ))),
    }
}

fn load_module(path: &Path) -> Result<Arc<Module>> {
    let canon = fs::canonicalize(path).map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            backend(format!("PKCS#11 module {} does not exist", path.display()))
        } else {
            backend(format!("PKCS#11 module {}: {e}", path.display()))
        }
    })?;
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();
    let mut modules = lock(MODULES.get_or_init(Default::default));
    if let Some(m) = modules.get(&canon) {
        return Ok(Arc::clone(m));
    }
    let ctx = Pkcs11::new(&canon).map_err(|e| {
        backend(format!(
            "cannot load PKCS#11 module {}: {}",
            path.display(),
            match &e {
                CkError::LibraryLoading(l) => l.to_string(),
                other => ck_text(other),
            }
        ))
    })?;
    initialize(&ctx, path)?;
    let m = Arc::new(Module {
        path: path.to_path_buf(),
        ctx,
        generation: RwLock::new(0),
    });
    // Kept for the life of the process: unloading a module that may still have sessions is
    // not safe, and C_Initialize cannot be repeated without C_Finalize.
    modules.insert(canon, Arc::clone(&m));
    Ok(m)
}

// ------------------------------------------------------------------------------------------------
// Tokens: login and the session pool
// ------------------------------------------------------------------------------------------------

fn read_pin(source: &PinSource) -> Result<String> {
    match source {
        PinSource::File(p) => {
            let f =
                fs::File::open(p).map_err(|e| backend(format!("PIN file {}: {e}", p.display())))?;
            let mut buf = Vec::new();
            f.take(4096)
                .read_to_end(&mut buf)
                .map_err(|e| backend(format!("PIN file {}: {e}", p.display())))?;
            let text = String::from_utf8(buf)
                .map_err(|_| backend(format!("PIN file {}: not UTF-8 text", p.display())))?;
            let pin = text.lines().next().unwrap_or("").trim_end_matches('\r');
            if pin.is_empty() {
                return Err(backend(format!(
                    "PIN file {}: the first line is empty",
                    p.display()
                )));
            }
            Ok(pin.to_string())
        }
        PinSource::Env(v) => match std::env::var(v) {
            Ok(pin) if !pin.is_empty() => Ok(pin),
            Ok(_) => Err(backend(format!(
                "environment variable {v} (the PIN) is empty"
            ))),
            Err(_) => Err(backend(format!(
                "environment variable {v} (the PIN) is not set"
            ))),
        },
        PinSource::Literal(p) => Ok(p.clone()),
    }
}

struct Pool {
    /// Module generation the sessions belong to.
    generation: u64,
    idle: Vec<Session>,
    /// Sessions of this generation, idle or in use.
    open: usize,
    /// A call failed with a connection error in this generation.
    broken: bool,
}

struct TokenState {
    /// Module generation and slot of the current login.
    ready: Option<(u64, Slot)>,
    /// The next connection must re-initialise the module first.
    reinit: bool,
    /// When the last (re)connection failed, and why.
    last_failure: Option<(Instant, String)>,
    /// SHA-256 of a PIN the token refused: not tried again.
    refused_pin: Option<Vec<u8>>,
}

/// One token of one module, shared by every keystore naming it.
struct Token {
    module: Arc<Module>,
    label: String,
    state: Mutex<TokenState>,
    pool: Mutex<Pool>,
    freed: Condvar,
}

fn token(module: Arc<Module>, label: &str) -> Arc<Token> {
    static TOKENS: OnceLock<Mutex<Vec<Arc<Token>>>> = OnceLock::new();
    let mut tokens = lock(TOKENS.get_or_init(Default::default));
    if let Some(t) = tokens
        .iter()
        .find(|t| Arc::ptr_eq(&t.module, &module) && t.label == label)
    {
        return Arc::clone(t);
    }
    let t = Arc::new(Token {
        module,
        label: label.to_string(),
        state: Mutex::new(TokenState {
            ready: None,
            reinit: false,
            last_failure: None,
            refused_pin: None,
        }),
        pool: Mutex::new(Pool {
            generation: u64::MAX,
            idle: Vec::new(),
            open: 0,
            broken: false,
        }),
        freed: Condvar::new(),
    });
    tokens.push(Arc::clone(&t));
    t
}

impl Token {
    fn what(&self) -> String {
        format!("token {:?} of {}", self.label, self.module.path.display())
    }

    /// Logged in and usable: the generation and slot to use. Connects (re-initialising the
    /// module first if the connection broke) when needed, at most once per backoff period.
    fn ready(&self, pin: &PinSource) -> Result<(u64, Slot)> {
        let mut st = lock(&self.state);
        let generation = self.module.generation();
        let broken = {
            let p = lock(&self.pool);
            p.broken && p.generation == generation
        };
        if let Some((g, slot)) = st.ready {
            if g == generation && !broken {
                return Ok((g, slot));
            }
            if g == generation {
                st.reinit = true;
            }
        }
        if let Some((at, why)) = &st.last_failure {
            if at.elapsed() < RECONNECT_BACKOFF {
                return Err(backend(why.clone()));
            }
        }
        match self.connect(&mut st, pin) {
            Ok(r) => {
                st.last_failure = None;
                st.reinit = false;
                Ok(r)
            }
            Err(e) => {
                st.ready = None;
                st.reinit = true;
                st.last_failure = Some((Instant::now(), e.to_string()));
                Err(e)
            }
        }
    }

    fn connect(&self, st: &mut TokenState, pin_source: &PinSource) -> Result<(u64, Slot)> {
        let pin = read_pin(pin_source)?;
        let pin_hash = digest::digest(&digest::SHA256, pin.as_bytes())
            .as_ref()
            .to_vec();
        if st.refused_pin.as_deref() == Some(pin_hash.as_slice()) {
            return Err(backend(format!(
                "{}: the token refused this PIN (CKR_PIN_INCORRECT); not trying it again until \
                 the PIN changes",
                self.what()
            )));
        }
        if st.reinit {
            let seen = self.module.generation();
            self.module.reinitialize(seen)?;
        }
        let ctx = &self.module.ctx;
        let g = self
            .module
            .generation
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| backend(format!("{}: {}", self.what(), ck_text(&e))))?;
        let mut labels = Vec::new();
        let mut found = None;
        for slot in slots {
            match ctx.get_token_info(slot) {
                Ok(info) if info.token_initialized() => {
                    let l = info.label().trim_end().to_string();
                    if l == self.label {
                        found = Some(slot);
                        break;
                    }
                    labels.push(l);
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(backend(format!("{}: {}", self.what(), ck_text(&e))));
                }
            }
        }
        let slot = found.ok_or_else(|| {
            backend(format!(
                "no token labelled {:?} in PKCS#11 module {} (tokens found: {})",
                self.label,
                self.module.path.display(),
                if labels.is_empty() {
                    "none".to_string()
                } else {
                    labels
                        .iter()
                        .map(|l| format!("{l:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ))
        })?;
        let session = ctx
            .open_rw_session_no_drop(slot)
            .map_err(|e| backend(format!("{}: {}", self.what(), ck_text(&e))))?;
        let auth = AuthPin::new(pin.into_boxed_str());
        match session.login(UserType::User, Some(&auth)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => {
                let _ = session.close();
                if matches!(e, CkError::Pkcs11(RvError::PinIncorrect, _)) {
                    st.refused_pin = Some(pin_hash);
                    return Err(backend(format!(
                        "{}: login refused: wrong PIN (CKR_PIN_INCORRECT)",
                        self.what()
                    )));
                }
                return Err(backend(format!(
                    "{}: login failed: {}",
                    self.what(),
                    ck_text(&e)
                )));
            }
        }
        st.refused_pin = None;
        {
            let mut p = lock(&self.pool);
            p.generation = *g;
            p.idle = vec![session];
            p.open = 1;
            p.broken = false;
        }
        self.freed.notify_all();
        st.ready = Some((*g, slot));
        if st.reinit {
            tracing::info!(token = %self.label, module = %self.module.path.display(), "reconnected to the PKCS#11 token");
        } else {
            tracing::debug!(token = %self.label, module = %self.module.path.display(), "logged in to the PKCS#11 token");
        }
        Ok((*g, slot))
    }

    /// Runs `f` on a session of the pool. A connection error marks the token broken: the next
    /// call reconnects.
    fn with_session<T>(
        &self,
        pin: &PinSource,
        f: impl FnOnce(&Session, u64) -> std::result::Result<T, OpError>,
    ) -> Result<T> {
        let mut f = Some(f);
        for _ in 0..3 {
            let (generation, slot) = self.ready(pin)?;
            let g = self
                .module
                .generation
                .read()
                .unwrap_or_else(|p| p.into_inner());
            if *g != generation {
                continue; // re-initialised meanwhile
            }
            let session = self.checkout(generation, slot)?;
            let Some(f) = f.take() else {
                break;
            };
            let r = f(&session, generation);
            match r {
                Ok(v) => {
                    self.checkin(session, generation, false);
                    return Ok(v);
                }
                Err(e) => {
                    let broken = e.breaks_connection();
                    self.checkin(session, generation, broken);
                    if broken {
                        tracing::warn!(token = %self.label, error = %e.text(), "PKCS#11 token failed; reconnecting on the next use");
                    }
                    return Err(backend(format!("{}: {}", self.what(), e.text())));
                }
            }
        }
        Err(backend(format!(
            "{}: the module was re-initialised repeatedly",
            self.what()
        )))
    }

    fn checkout(&self, generation: u64, slot: Slot) -> Result<Session> {
        let mut p = lock(&self.pool);
        loop {
            if p.generation != generation || p.broken {
                return Err(backend(format!(
                    "{}: the connection was lost; retrying later",
                    self.what()
                )));
            }
            if let Some(s) = p.idle.pop() {
                return Ok(s);
            }
            if p.open < MAX_SESSIONS {
                p.open += 1;
                drop(p);
                return match self.module.ctx.open_rw_session_no_drop(slot) {
                    Ok(s) => Ok(s),
                    Err(e) => {
                        let mut p = lock(&self.pool);
                        if p.generation == generation {
                            p.open = p.open.saturating_sub(1);
                            if is_connection_error(&e) {
                                p.broken = true;
                            }
                        }
                        self.freed.notify_all();
                        Err(backend(format!("{}: {}", self.what(), ck_text(&e))))
                    }
                };
            }
            p = self.freed.wait(p).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Returns a session to the pool, or abandons it when the connection broke (the module's
    /// re-initialisation closes it).
    fn checkin(&self, session: Session, generation: u64, broken: bool) {
        let mut p = lock(&self.pool);
        if p.generation == generation {
            if broken {
                p.broken = true;
            }
            if p.broken {
                p.open = p.open.saturating_sub(1);
            } else {
                p.idle.push(session);
            }
        }
        drop(p);
        self.freed.notify_all();
    }
}

// ------------------------------------------------------------------------------------------------
// Keys on the token
// ------------------------------------------------------------------------------------------------

/// Where a key lives on the token (stored in the key's metadata).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRef {
    /// The token's label.
    pub token: String,
    /// `CKA_ID`, hex.
    pub id: String,
    /// `CKA_LABEL`.
    pub label: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct HsmMeta {
    #[serde(flatten)]
    key: StoredKey,
    pkcs11: TokenRef,
}

/// The zone half of a `CKA_ID`: SHA-256 of the normalised zone name, 8 octets.
fn zone_id_prefix(zone: &str) -> [u8; 8] {
    let d = digest::digest(&digest::SHA256, zone.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&d.as_ref()[..8]);
    out
}

fn new_id(zone: &str) -> Result<Vec<u8>> {
    let mut id = zone_id_prefix(zone).to_vec();
    let mut r = [0u8; 8];
    SystemRandom::new()
        .fill(&mut r)
        .map_err(|_| KeyError::Crypto("no randomness for a key ID".into()))?;
    id.extend_from_slice(&r);
    Ok(id)
}

fn key_type(algorithm: u8) -> Option<KeyType> {
    match algorithm {
        ALG_ECDSAP256SHA256 | ALG_ECDSAP384SHA384 => Some(KeyType::EC),
        ALG_ED25519 => Some(KeyType::EC_EDWARDS),
        ALG_RSASHA256 | ALG_RSASHA512 => Some(KeyType::RSA),
        _ => None,
    }
}

fn unsupported(algorithm: u8) -> KeyError {
    KeyError::Unsupported(format!(
        "DNSSEC algorithm {algorithm} is not supported on a PKCS#11 token (supported: 8, 10, 13, 14, 15)"
    ))
}

/// Strips the DER OCTET STRING around a `CKA_EC_POINT` if there is one.
fn unwrap_octet_string(v: &[u8], want: usize) -> Option<&[u8]> {
    if v.len() == want {
        return Some(v);
    }
    match v {
        [0x04, n, rest @ ..] if (*n as usize) == rest.len() && rest.len() == want => Some(rest),
        [0x04, 0x81, n, rest @ ..] if (*n as usize) == rest.len() && rest.len() == want => {
            Some(rest)
        }
        _ => None,
    }
}

/// The DNSKEY public key field from the token's public key object.
fn read_public_key(
    s: &Session,
    handle: ObjectHandle,
    algorithm: u8,
) -> std::result::Result<Vec<u8>, OpError> {
    match algorithm {
        ALG_ECDSAP256SHA256 | ALG_ECDSAP384SHA384 | ALG_ED25519 => {
            let attrs = s.get_attributes(handle, &[AttributeType::EcPoint])?;
            let point = attrs
                .into_iter()
                .find_map(|a| match a {
                    Attribute::EcPoint(p) => Some(p),
                    _ => None,
                })
                .ok_or_else(|| OpError::Other("the public key has no CKA_EC_POINT".into()))?;
            let (want, uncompressed) = match algorithm {
                ALG_ECDSAP256SHA256 => (65, true),
                ALG_ECDSAP384SHA384 => (97, true),
                _ => (32, false),
            };
            let raw = unwrap_octet_string(&point, want).ok_or_else(|| {
                OpError::Other(format!(
                    "unexpected CKA_EC_POINT of {} octets for algorithm {algorithm}",
                    point.len()
                ))
            })?;
            if uncompressed {
                match raw.split_first() {
                    Some((0x04, xy)) => Ok(xy.to_vec()),
                    _ => Err(OpError::Other("EC point is not uncompressed".into())),
                }
            } else {
                Ok(raw.to_vec())
            }
        }
        ALG_RSASHA256 | ALG_RSASHA512 => {
            let attrs = s.get_attributes(
                handle,
                &[AttributeType::Modulus, AttributeType::PublicExponent],
            )?;
            let mut n = None;
            let mut e = None;
            for a in attrs {
                match a {
                    Attribute::Modulus(v) => n = Some(v),
                    Attribute::PublicExponent(v) => e = Some(v),
                    _ => {}
                }
            }
            match (n, e) {
                (Some(n), Some(e)) => Ok(rsa_public_key_rfc3110(&e, &n)),
                _ => Err(OpError::Other(
                    "the public key has no modulus or exponent".into(),
                )),
            }
        }
        _ => Err(OpError::Other(format!("algorithm {algorithm}"))),
    }
}

fn find_one(
    s: &Session,
    class: ObjectClass,
    id: &[u8],
    what: &str,
) -> std::result::Result<ObjectHandle, OpError> {
    let found = s.find_objects(&[Attribute::Class(class), Attribute::Id(id.to_vec())])?;
    match found.as_slice() {
        [h] => Ok(*h),
        [] => Err(OpError::Missing(format!(
            "{what} (CKA_ID {}) is not on the token",
            HEXLOWER.encode(id)
        ))),
        _ => Err(OpError::Other(format!(
            "{what}: {} objects on the token have CKA_ID {}",
            found.len(),
            HEXLOWER.encode(id)
        ))),
    }
}

/// A private key on a PKCS#11 token. Signing takes a session from the token's pool, so many
/// threads sign at once; the object handle is looked up once per module generation.
pub struct Pkcs11SigningKey {
    keystore: String,
    token: Arc<Token>,
    pin: PinSource,
    id: Vec<u8>,
    stem: String,
    algorithm: u8,
    public_key: Vec<u8>,
    handle: Mutex<Option<(u64, ObjectHandle)>>,
}

impl std::fmt::Debug for Pkcs11SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11SigningKey")
            .field("key", &self.stem)
            .field("id", &HEXLOWER.encode(&self.id))
            .finish_non_exhaustive()
    }
}

impl Pkcs11SigningKey {
    /// `generation`: the module generation the caller's session belongs to (the caller holds
    /// the generation's read lock, which must not be taken twice).
    fn private_handle(
        &self,
        s: &Session,
        generation: u64,
    ) -> std::result::Result<ObjectHandle, OpError> {
        if let Some((g, h)) = *lock(&self.handle) {
            if g == generation {
                return Ok(h);
            }
        }
        let h = find_one(s, ObjectClass::PRIVATE_KEY, &self.id, &self.stem)?;
        *lock(&self.handle) = Some((generation, h));
        Ok(h)
    }

    fn sign_on(
        &self,
        s: &Session,
        generation: u64,
        data: &[u8],
    ) -> std::result::Result<Vec<u8>, OpError> {
        let h = self.private_handle(s, generation)?;
        let sig = match self.algorithm {
            ALG_ECDSAP256SHA256 => s.sign(
                &Mechanism::Ecdsa,
                h,
                digest::digest(&digest::SHA256, data).as_ref(),
            )?,
            ALG_ECDSAP384SHA384 => s.sign(
                &Mechanism::Ecdsa,
                h,
                digest::digest(&digest::SHA384, data).as_ref(),
            )?,
            ALG_ED25519 => s.sign(
                &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                h,
                data,
            )?,
            ALG_RSASHA256 => s.sign(&Mechanism::Sha256RsaPkcs, h, data)?,
            ALG_RSASHA512 => s.sign(&Mechanism::Sha512RsaPkcs, h, data)?,
            a => return Err(OpError::Other(format!("algorithm {a}"))),
        };
        let want = match self.algorithm {
            ALG_ECDSAP256SHA256 | ALG_ED25519 => Some(64),
            ALG_ECDSAP384SHA384 => Some(96),
            _ => None,
        };
        if let Some(w) = want {
            if sig.len() != w {
                return Err(OpError::Other(format!(
                    "the token returned a {}-octet signature, expected {w}",
                    sig.len()
                )));
            }
        }
        Ok(sig)
    }

    /// Signs a test message and checks it against the public key (after generation, import and
    /// the first load), so a wrong object or a wrong point encoding is found before any RRSIG.
    fn self_test(&self) -> Result<()> {
        let msg = b"signet pkcs11 key self-test";
        let sig = self.sign(msg)?;
        if !verify_signature(self.algorithm, &self.public_key, msg, &sig) {
            return Err(KeyError::Rejected(format!(
                "{}: a test signature by the token does not verify with the public key",
                self.stem
            )));
        }
        Ok(())
    }
}

impl SigningKey for Pkcs11SigningKey {
    fn algorithm(&self) -> u8 {
        self.algorithm
    }

    fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>> {
        self.token
            .with_session(&self.pin, |s, g| self.sign_on(s, g, data))
            .map_err(|e| {
                backend(format!(
                    "keystore {}: key {}: {e}",
                    self.keystore, self.stem
                ))
            })
    }
}

// ------------------------------------------------------------------------------------------------
// The keystore
// ------------------------------------------------------------------------------------------------

/// A `backend = "pkcs11"` keystore: keys on a token, metadata in a directory.
pub struct Pkcs11Keystore {
    name: String,
    token: Arc<Token>,
    pin: PinSource,
    meta_dir: PathBuf,
    /// Serialises this process's writers of this keystore.
    write_lock: Mutex<()>,
    /// Loaded keys by CKA_ID, checked once against the token.
    signers: Mutex<HashMap<Vec<u8>, Arc<Pkcs11SigningKey>>>,
}

impl std::fmt::Debug for Pkcs11Keystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Keystore")
            .field("name", &self.name)
            .field("token", &self.token.label)
            .field("module", &self.token.module.path)
            .field("meta_dir", &self.meta_dir)
            .finish_non_exhaustive()
    }
}

/// What identifies an open keystore in the process-wide registry.
struct Registered {
    name: String,
    module: PathBuf,
    label: String,
    pin: PinSource,
    meta_dir: PathBuf,
    ks: Arc<Pkcs11Keystore>,
}

impl Pkcs11Keystore {
    /// Opens (or finds already open in this process) the keystore `name`: loads the module,
    /// finds the token by its label and logs in with the PIN. Every failure is one line naming
    /// the keystore. The metadata lives in `meta_dir` (created when the first key is written).
    pub fn open(
        name: &str,
        module: &Path,
        token_label: &str,
        pin: &PinSource,
        meta_dir: &Path,
    ) -> Result<Arc<Self>> {
        static OPEN: OnceLock<Mutex<Vec<Registered>>> = OnceLock::new();
        let ks = {
            let found = lock(OPEN.get_or_init(Default::default))
                .iter()
                .find(|r| {
                    r.name == name
                        && r.module == module
                        && r.label == token_label
                        && &r.pin == pin
                        && r.meta_dir == meta_dir
                })
                .map(|r| Arc::clone(&r.ks));
            match found {
                Some(ks) => ks,
                None => {
                    let m = load_module(module)
                        .map_err(|e| backend(format!("keystore {name}: {e}")))?;
                    let ks = Arc::new(Pkcs11Keystore {
                        name: name.to_string(),
                        token: token(m, token_label),
                        pin: pin.clone(),
                        meta_dir: meta_dir.to_path_buf(),
                        write_lock: Mutex::new(()),
                        signers: Mutex::new(HashMap::new()),
                    });
                    let mut open = lock(OPEN.get_or_init(Default::default));
                    open.push(Registered {
                        name: name.to_string(),
                        module: module.to_path_buf(),
                        label: token_label.to_string(),
                        pin: pin.clone(),
                        meta_dir: meta_dir.to_path_buf(),
                        ks: Arc::clone(&ks),
                    });
                    ks
                }
            }
        };
        ks.ping()?;
        Ok(ks)
    }

    /// The keystore's name in the configuration.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The metadata directory.
    pub fn meta_dir(&self) -> &Path {
        &self.meta_dir
    }

    /// The token's label.
    pub fn token_label(&self) -> &str {
        &self.token.label
    }

    fn err(&self, e: KeyError) -> KeyError {
        match e {
            KeyError::Backend(m) if !m.starts_with("keystore ") => {
                backend(format!("keystore {}: {m}", self.name))
            }
            other => other,
        }
    }

    /// Checks that the token is reachable and logged in (reconnecting if needed).
    pub fn ping(&self) -> Result<()> {
        self.token
            .ready(&self.pin)
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn meta_path(&self, zone: &str, algorithm: u8, tag: u16) -> PathBuf {
        self.meta_dir
            .join(format!("{}.json", stem(zone, algorithm, tag)))
    }

    fn ensure_meta_dir(&self) -> Result<()> {
        match fs::metadata(&self.meta_dir) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(KeyError::BadFile {
                path: self.meta_dir.clone(),
                reason: "key metadata path exists but is not a directory".into(),
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&self.meta_dir)
                    .map_err(|e| KeyError::io("create directory", &self.meta_dir, e))?;
                fs::set_permissions(&self.meta_dir, fs::Permissions::from_mode(0o700))
                    .map_err(|e| KeyError::io("chmod", &self.meta_dir, e))
            }
            Err(e) => Err(KeyError::io("stat", &self.meta_dir, e)),
        }
    }

    fn write_meta(&self, meta: &HsmMeta) -> Result<()> {
        self.ensure_meta_dir()?;
        let mut json = serde_json::to_vec_pretty(meta)
            .map_err(|e| KeyError::Crypto(format!("cannot serialise key metadata: {e}")))?;
        json.push(b'\n');
        write_atomic(
            &self.meta_dir,
            &format!("{}.json", meta.key.file_stem()),
            &json,
            0o600,
        )
    }

    fn list_full(&self, zone: &str) -> Result<Vec<HsmMeta>> {
        let entries = match fs::read_dir(&self.meta_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(KeyError::io("read directory", &self.meta_dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| KeyError::io("read directory", &self.meta_dir, e))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let Some(s) = name.strip_suffix(".json") else {
                continue;
            };
            let Some((file_zone, alg, tag)) = parse_stem(s) else {
                continue;
            };
            if file_zone != zone {
                continue;
            }
            let path = entry.path();
            let meta = read_meta(&path)?;
            let k = &meta.key;
            if k.zone != zone || k.algorithm != alg || k.tag != tag {
                return Err(KeyError::BadFile {
                    path,
                    reason: format!(
                        "metadata says zone {}, algorithm {}, tag {}: does not match the file name",
                        k.zone, k.algorithm, k.tag
                    ),
                });
            }
            let computed = key_tag(&dnskey_rdata(
                k.flags & !FLAG_REVOKE,
                k.algorithm,
                &k.public_key,
            ));
            if computed != k.tag {
                return Err(KeyError::BadFile {
                    path,
                    reason: format!(
                        "public key and flags give key tag {computed}, not {}",
                        k.tag
                    ),
                });
            }
            out.push(meta);
        }
        out.sort_by_key(|m| (m.key.created, m.key.tag, m.key.algorithm));
        Ok(out)
    }

    /// The keys of `zone` (from the metadata; the token is not asked), oldest first.
    pub fn list(&self, zone: &str) -> Result<Vec<StoredKey>> {
        let zone = normalize_zone(zone)?;
        let _g = lock(&self.write_lock);
        Ok(self.list_full(&zone)?.into_iter().map(|m| m.key).collect())
    }

    /// Where a key lives on the token, from its metadata.
    pub fn token_ref(&self, key: &StoredKey) -> Result<TokenRef> {
        Ok(read_meta(&self.meta_path(&key.zone, key.algorithm, key.tag))?.pkcs11)
    }

    fn signer_for(&self, meta: &HsmMeta) -> Result<Arc<Pkcs11SigningKey>> {
        let id = HEXLOWER
            .decode(meta.pkcs11.id.as_bytes())
            .ok()
            .filter(|id| id.len() >= 8)
            .ok_or_else(|| KeyError::BadFile {
                path: self.meta_path(&meta.key.zone, meta.key.algorithm, meta.key.tag),
                reason: format!("bad pkcs11.id {:?}", meta.pkcs11.id),
            })?;
        if id[..8] != zone_id_prefix(&meta.key.zone) {
            return Err(KeyError::BadFile {
                path: self.meta_path(&meta.key.zone, meta.key.algorithm, meta.key.tag),
                reason: format!(
                    "pkcs11.id {} does not belong to zone {}",
                    meta.pkcs11.id, meta.key.zone
                ),
            });
        }
        if meta.pkcs11.token != self.token.label {
            return Err(KeyError::Conflict(format!(
                "key {} is on token {:?}, keystore {} uses token {:?}",
                meta.key.file_stem(),
                meta.pkcs11.token,
                self.name,
                self.token.label
            )));
        }
        Ok(Arc::new(Pkcs11SigningKey {
            keystore: self.name.clone(),
            token: Arc::clone(&self.token),
            pin: self.pin.clone(),
            id,
            stem: meta.key.file_stem(),
            algorithm: meta.key.algorithm,
            public_key: meta.key.public_key.clone(),
            handle: Mutex::new(None),
        }))
    }

    /// The signer of a stored key. The first load in a process checks that the token's public
    /// key object is the metadata's public key and that a test signature verifies.
    pub fn load_signer(&self, key: &StoredKey) -> Result<Arc<dyn SigningKey>> {
        let meta = read_meta(&self.meta_path(&key.zone, key.algorithm, key.tag))?;
        if meta.key.public_key != key.public_key {
            return Err(KeyError::Conflict(format!(
                "key {}: the metadata on disk has another public key",
                key.file_stem()
            )));
        }
        let signer = self.signer_for(&meta)?;
        if let Some(s) = lock(&self.signers).get(&signer.id) {
            if s.public_key == key.public_key && s.algorithm == key.algorithm {
                return Ok(Arc::clone(s) as Arc<dyn SigningKey>);
            }
        }
        let stem = key.file_stem();
        let on_token = self
            .token
            .with_session(&self.pin, |s, _| {
                let h = find_one(s, ObjectClass::PUBLIC_KEY, &signer.id, &stem)?;
                read_public_key(s, h, key.algorithm)
            })
            .map_err(|e| self.err(e))?;
        if on_token != key.public_key {
            return Err(KeyError::Conflict(format!(
                "keystore {}: the token's key with CKA_ID {} is not key {} of the metadata",
                self.name, meta.pkcs11.id, stem
            )));
        }
        signer.self_test().map_err(|e| self.err(e))?;
        lock(&self.signers).insert(signer.id.clone(), Arc::clone(&signer));
        Ok(signer)
    }

    /// Generates a key pair on the token (`CKA_TOKEN`, sensitive, not extractable) and writes
    /// its metadata. A key whose tag, with or without REVOKE, is among the zone's keys in this
    /// keystore or in `taken` (the zone's keys elsewhere) is destroyed and another drawn.
    pub fn generate(
        &self,
        zone: &str,
        role: KeyRole,
        algorithm: u8,
        now: u64,
        taken: &HashSet<u16>,
    ) -> Result<StoredKey> {
        let zone = normalize_zone(zone)?;
        key_type(algorithm).ok_or_else(|| unsupported(algorithm))?;
        let _g = lock(&self.write_lock);
        let mut taken = taken.clone();
        for m in self.list_full(&zone)? {
            taken.extend(tag_variants(
                m.key.flags,
                m.key.algorithm,
                &m.key.public_key,
            ));
        }
        let flags = role.flags();
        for _ in 0..MAX_GENERATE_ATTEMPTS {
            let id = new_id(&zone)?;
            let provisional = format!("signet {zone} (new)");
            let (public_key, label) = self
                .token
                .with_session(&self.pin, |s, _| {
                    let (pub_h, priv_h) = generate_pair(s, algorithm, &id, &provisional)?;
                    let pk = match read_public_key(s, pub_h, algorithm) {
                        Ok(pk) => pk,
                        Err(e) => {
                            destroy_quietly(s, &[pub_h, priv_h]);
                            return Err(e);
                        }
                    };
                    let tag = key_tag(&dnskey_rdata(flags, algorithm, &pk));
                    if tag_variants(flags, algorithm, &pk)
                        .iter()
                        .any(|t| taken.contains(t))
                    {
                        destroy_quietly(s, &[pub_h, priv_h]);
                        return Ok((None, String::new()));
                    }
                    let label = stem(&zone, algorithm, tag);
                    for h in [pub_h, priv_h] {
                        if let Err(e) =
                            s.update_attributes(h, &[Attribute::Label(label.as_bytes().to_vec())])
                        {
                            tracing::warn!(key = %label, error = %ck_text(&e), "cannot set CKA_LABEL; the key keeps its provisional label");
                        }
                    }
                    Ok((Some(pk), label))
                })
                .map_err(|e| self.err(e))?;
            let Some(public_key) = public_key else {
                tracing::debug!(zone, "key tag collision, drawing another key");
                continue;
            };
            let key = StoredKey {
                zone: zone.clone(),
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
            };
            let meta = HsmMeta {
                pkcs11: TokenRef {
                    token: self.token.label.clone(),
                    id: HEXLOWER.encode(&id),
                    label,
                },
                key,
            };
            let signer = self.signer_for(&meta)?;
            if let Err(e) = signer.self_test() {
                let _ = self.destroy_objects(&id);
                return Err(self.err(e));
            }
            if let Err(e) = self.write_meta(&meta) {
                // never announced: do not leave the key material behind
                let _ = self.destroy_objects(&id);
                return Err(e);
            }
            lock(&self.signers).insert(id, signer);
            tracing::info!(keystore = %self.name, zone, tag = meta.key.tag, algorithm, role = %role, "generated key on the PKCS#11 token");
            return Ok(meta.key);
        }
        Err(KeyError::Conflict(format!(
            "zone {zone}: no key without a key tag collision after {MAX_GENERATE_ATTEMPTS} attempts"
        )))
    }

    /// Puts an existing private key (from a BIND `.private` file) on the token with
    /// C_CreateObject — sensitive and not extractable from then on — next to its public key,
    /// checks with a test signature that it is the private half of `public_key`, and writes the
    /// metadata (state [`STATE_NEW`]; the caller sets timing and state with [`Self::save_meta`]).
    /// RSA keys below 2048 bits are accepted if the token accepts them.
    pub fn import(
        &self,
        zone: &str,
        role: KeyRole,
        algorithm: u8,
        material: &KeyMaterial,
        public_key: &[u8],
        now: u64,
    ) -> Result<StoredKey> {
        let zone = normalize_zone(zone)?;
        key_type(algorithm).ok_or_else(|| unsupported(algorithm))?;
        let flags = role.flags();
        let tag = key_tag(&dnskey_rdata(flags, algorithm, public_key));
        let _g = lock(&self.write_lock);
        let existing = self.list_full(&zone)?;
        if let Some(m) = existing
            .iter()
            .find(|m| m.key.algorithm == algorithm && m.key.public_key == public_key)
        {
            return Err(KeyError::Conflict(format!(
                "zone {zone}: this key is already in keystore {} as {}",
                self.name,
                m.key.file_stem()
            )));
        }
        let mine = tag_variants(flags, algorithm, public_key);
        if let Some(m) = existing.iter().find(|m| {
            tag_variants(m.key.flags, m.key.algorithm, &m.key.public_key)
                .iter()
                .any(|t| mine.contains(t))
        }) {
            return Err(KeyError::Conflict(format!(
                "zone {zone}: key tag {tag} collides with existing key {}; keys of one zone must \
                 have distinct tags",
                m.key.file_stem()
            )));
        }
        let id = new_id(&zone)?;
        let label = stem(&zone, algorithm, tag);
        let (private_t, public_t) = import_templates(algorithm, material, public_key, &id, &label)
            .map_err(|e| self.err(e))?;
        self.token
            .with_session(&self.pin, |s, _| {
                let pub_h = s.create_object(&public_t)?;
                match s.create_object(&private_t) {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        destroy_quietly(s, &[pub_h]);
                        Err(OpError::Ck(e))
                    }
                }
            })
            .map_err(|e| self.err(e))?;
        let meta = HsmMeta {
            pkcs11: TokenRef {
                token: self.token.label.clone(),
                id: HEXLOWER.encode(&id),
                label,
            },
            key: StoredKey {
                zone: zone.clone(),
                role,
                algorithm,
                tag,
                flags,
                public_key: public_key.to_vec(),
                created: now,
                published: None,
                active: None,
                retired: None,
                removed: None,
                state: STATE_NEW.to_string(),
            },
        };
        let signer = self.signer_for(&meta)?;
        if let Err(e) = signer.self_test() {
            let _ = self.destroy_objects(&id);
            return Err(self.err(e));
        }
        if let Err(e) = self.write_meta(&meta) {
            let _ = self.destroy_objects(&id);
            return Err(e);
        }
        lock(&self.signers).insert(id, signer);
        tracing::info!(keystore = %self.name, zone, tag, algorithm, role = %role, "imported key onto the PKCS#11 token");
        Ok(meta.key)
    }

    /// Rewrites a key's metadata (timing, state, flags) crash-safely, keeping where it lives on
    /// the token. The key must exist in this keystore.
    pub fn save_meta(&self, key: &StoredKey) -> Result<()> {
        let zone = normalize_zone(&key.zone)?;
        if zone != key.zone {
            return Err(KeyError::InvalidZone(format!(
                "{:?}: key metadata must carry the normalised zone name {zone:?}",
                key.zone
            )));
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
        let _g = lock(&self.write_lock);
        let old = read_meta(&self.meta_path(&key.zone, key.algorithm, key.tag))?;
        if old.key.public_key != key.public_key {
            return Err(KeyError::Conflict(format!(
                "{}: refusing to change the public key of a stored key",
                key.file_stem()
            )));
        }
        self.write_meta(&HsmMeta {
            key: key.clone(),
            pkcs11: old.pkcs11,
        })
    }

    fn destroy_objects(&self, id: &[u8]) -> Result<usize> {
        self.token.with_session(&self.pin, |s, _| {
            let found = s.find_objects(&[Attribute::Id(id.to_vec())])?;
            for h in &found {
                s.destroy_object(*h)?;
            }
            Ok(found.len())
        })
    }

    /// Deletes a key (after `purge-keys`): destroys its objects on the token first, then the
    /// metadata, so that key material never outlives signet's record of it. Idempotent: objects
    /// already gone are fine. Fails (and keeps the metadata) while the token is unreachable.
    pub fn purge(&self, key: &StoredKey) -> Result<()> {
        let _g = lock(&self.write_lock);
        let path = self.meta_path(&key.zone, key.algorithm, key.tag);
        let meta = match read_meta(&path) {
            Ok(m) => m,
            Err(KeyError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        let id = HEXLOWER
            .decode(meta.pkcs11.id.as_bytes())
            .map_err(|_| KeyError::BadFile {
                path: path.clone(),
                reason: format!("bad pkcs11.id {:?}", meta.pkcs11.id),
            })?;
        let n = self.destroy_objects(&id).map_err(|e| self.err(e))?;
        lock(&self.signers).remove(&id);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(KeyError::io("remove", &path, e)),
        }
        fs::File::open(&self.meta_dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| KeyError::io("fsync directory", &self.meta_dir, e))?;
        tracing::info!(keystore = %self.name, zone = %key.zone, tag = key.tag, objects = n, "purged key from the PKCS#11 token");
        Ok(())
    }

    /// Signs `count` test messages with `threads` threads and returns signatures per second
    /// (for benchmarks and `signet`'s own diagnostics).
    pub fn bench(signer: &Arc<dyn SigningKey>, threads: usize, count: usize) -> Result<f64> {
        let t0 = Instant::now();
        let per = count / threads.max(1);
        let errors = Mutex::new(None);
        std::thread::scope(|s| {
            for t in 0..threads.max(1) {
                let signer = Arc::clone(signer);
                let errors = &errors;
                s.spawn(move || {
                    for i in 0..per {
                        let msg = format!("bench {t} {i}");
                        if let Err(e) = signer.sign(msg.as_bytes()) {
                            *lock(errors) = Some(e);
                            return;
                        }
                    }
                });
            }
        });
        if let Some(e) = errors.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        Ok((per * threads.max(1)) as f64 / t0.elapsed().as_secs_f64())
    }
}

fn destroy_quietly(s: &Session, handles: &[ObjectHandle]) {
    for h in handles {
        if let Err(e) = s.destroy_object(*h) {
            tracing::warn!(error = %ck_text(&e), "cannot destroy a token object");
        }
    }
}

fn generate_pair(
    s: &Session,
    algorithm: u8,
    id: &[u8],
    label: &str,
) -> std::result::Result<(ObjectHandle, ObjectHandle), OpError> {
    let common_pub = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let with = |extra: Vec<Attribute>| {
        let mut v = common_pub.clone();
        v.extend(extra);
        v
    };
    let r = match algorithm {
        ALG_ECDSAP256SHA256 => s.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &with(vec![Attribute::EcParams(EC_PARAMS_P256.to_vec())]),
            &private,
        ),
        ALG_ECDSAP384SHA384 => s.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &with(vec![Attribute::EcParams(EC_PARAMS_P384.to_vec())]),
            &private,
        ),
        ALG_ED25519 => match s.generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &with(vec![Attribute::EcParams(EC_PARAMS_ED25519.to_vec())]),
            &private,
        ) {
            Err(CkError::Pkcs11(
                RvError::AttributeValueInvalid
                | RvError::CurveNotSupported
                | RvError::DomainParamsInvalid,
                _,
            )) => s.generate_key_pair(
                &Mechanism::EccEdwardsKeyPairGen,
                &with(vec![Attribute::EcParams(EC_PARAMS_ED25519_OID.to_vec())]),
                &private,
            ),
            other => other,
        },
        ALG_RSASHA256 | ALG_RSASHA512 => s.generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &with(vec![
                Attribute::ModulusBits(RSA_BITS.into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            ]),
            &private,
        ),
        a => return Err(OpError::Other(format!("algorithm {a}"))),
    };
    Ok(r?)
}

/// The C_CreateObject templates (private, public) for an imported key.
fn import_templates(
    algorithm: u8,
    material: &KeyMaterial,
    public_key: &[u8],
    id: &[u8],
    label: &str,
) -> Result<(Vec<Attribute>, Vec<Attribute>)> {
    let kt = key_type(algorithm).ok_or_else(|| unsupported(algorithm))?;
    let mut private = vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(kt),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let mut public = vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(kt),
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let der_octets = |content: &[u8]| -> Vec<u8> {
        let mut v = vec![0x04];
        if content.len() < 0x80 {
            v.push(content.len() as u8);
        } else {
            v.push(0x81);
            v.push(content.len() as u8);
        }
        v.extend_from_slice(content);
        v
    };
    match (algorithm, material) {
        (ALG_ECDSAP256SHA256 | ALG_ECDSAP384SHA384, KeyMaterial::Ecdsa { scalar }) => {
            let params = if algorithm == ALG_ECDSAP256SHA256 {
                EC_PARAMS_P256
            } else {
                EC_PARAMS_P384
            };
            let mut point = vec![0x04];
            point.extend_from_slice(public_key);
            private.push(Attribute::EcParams(params.to_vec()));
            private.push(Attribute::Value(scalar.clone()));
            public.push(Attribute::EcParams(params.to_vec()));
            public.push(Attribute::EcPoint(der_octets(&point)));
        }
        (ALG_ED25519, KeyMaterial::Ed25519 { seed }) => {
            private.push(Attribute::EcParams(EC_PARAMS_ED25519.to_vec()));
            private.push(Attribute::Value(seed.to_vec()));
            public.push(Attribute::EcParams(EC_PARAMS_ED25519.to_vec()));
            public.push(Attribute::EcPoint(der_octets(public_key)));
        }
        (
            ALG_RSASHA256 | ALG_RSASHA512,
            KeyMaterial::Rsa {
                modulus,
                public_exponent,
                private_exponent,
                prime1,
                prime2,
                exponent1,
                exponent2,
                coefficient,
            },
        ) => {
            private.extend([
                Attribute::Modulus(modulus.clone()),
                Attribute::PublicExponent(public_exponent.clone()),
                Attribute::PrivateExponent(private_exponent.clone()),
                Attribute::Prime1(prime1.clone()),
                Attribute::Prime2(prime2.clone()),
                Attribute::Exponent1(exponent1.clone()),
                Attribute::Exponent2(exponent2.clone()),
                Attribute::Coefficient(coefficient.clone()),
            ]);
            public.push(Attribute::Modulus(modulus.clone()));
            public.push(Attribute::PublicExponent(public_exponent.clone()));
        }
        _ => {
            return Err(KeyError::Rejected(format!(
                "key material does not fit algorithm {algorithm}"
            )))
        }
    }
    Ok((private, public))
}

use super::files::{file_stem as stem, parse_stem, tag_variants};

fn read_meta(path: &Path) -> Result<HsmMeta> {
    let f = fs::File::open(path).map_err(|e| KeyError::io("open", path, e))?;
    let mut buf = Vec::new();
    f.take(MAX_META_SIZE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| KeyError::io("read", path, e))?;
    if buf.len() as u64 > MAX_META_SIZE {
        return Err(KeyError::BadFile {
            path: path.to_path_buf(),
            reason: format!("larger than {MAX_META_SIZE} bytes"),
        });
    }
    serde_json::from_slice(&buf).map_err(|e| KeyError::BadFile {
        path: path.to_path_buf(),
        reason: format!("corrupt key metadata: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids() {
        assert_eq!(rv_name(&RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(
            ck_text(&CkError::Pkcs11(
                RvError::DeviceError,
                cryptoki::context::Function::Sign
            )),
            "C_Sign: CKR_DEVICE_ERROR"
        );
        assert!(is_connection_error(&CkError::Pkcs11(
            RvError::ObjectHandleInvalid,
            cryptoki::context::Function::SignInit
        )));
        assert!(!is_connection_error(&CkError::Pkcs11(
            RvError::MechanismInvalid,
            cryptoki::context::Function::SignInit
        )));
        let a = new_id("example.com.").unwrap();
        let b = new_id("example.com.").unwrap();
        assert_eq!(a.len(), 16);
        assert_eq!(a[..8], b[..8]);
        assert_ne!(a[8..], b[8..]);
        assert_ne!(new_id("example.net.").unwrap()[..8], a[..8]);
        assert_eq!(
            parse_stem("Kexample.com.+013+01234"),
            Some(("example.com.", 13, 1234))
        );
        assert_eq!(stem("example.com.", 8, 7), "Kexample.com.+008+00007");
    }

    #[test]
    fn ec_point_unwrapping() {
        let raw: Vec<u8> = std::iter::once(4).chain([7u8; 64]).collect();
        let mut der = vec![0x04, 65];
        der.extend_from_slice(&raw);
        assert_eq!(unwrap_octet_string(&der, 65), Some(raw.as_slice()));
        assert_eq!(unwrap_octet_string(&raw, 65), Some(raw.as_slice()));
        let mut ed = vec![0x04, 32];
        ed.extend_from_slice(&[9u8; 32]);
        assert_eq!(unwrap_octet_string(&ed, 32), Some(&[9u8; 32][..]));
        assert_eq!(unwrap_octet_string(&ed[..20], 32), None);
    }

    #[test]
    fn pin_sources() {
        let dir = std::env::temp_dir().join(format!("signet-pin-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pin");
        fs::write(&f, "1234\r\nsecond line\n").unwrap();
        assert_eq!(read_pin(&PinSource::File(f.clone())).unwrap(), "1234");
        fs::write(&f, "\n").unwrap();
        let e = read_pin(&PinSource::File(f.clone()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty"), "{e}");
        let e = read_pin(&PinSource::Env("SIGNET_TEST_NO_SUCH_PIN_VAR".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not set"), "{e}");
        assert_eq!(read_pin(&PinSource::Literal("9".into())).unwrap(), "9");
        let e = read_pin(&PinSource::File(dir.join("missing")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("PIN file"), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_module_is_one_line() {
        let e = load_module(Path::new("/nonexistent/libpkcs11.so"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("does not exist"), "{e}");
        assert!(!e.contains('\n'));
    }
}
