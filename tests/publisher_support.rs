//! Shared scaffolding for the publisher tests (included by the other `publisher_*.rs` files with
//! `#[path = "publisher_support.rs"] mod support;`; compiled on its own it has no tests).
//!
//! It builds signed zones through the library (zone file parser, file keystore, signer) and runs
//! a [`signet::publisher::Server`] on 127.0.0.1 in its own Tokio runtime, so that the tests talk
//! to it with real tools (dig, delv, named) at the network level.

#![allow(dead_code)]

use signet::auth::{Key, Keyring};
use signet::clock::{Clock, SystemClock};
use signet::config::{AclEntry, TsigAlgorithm};
use signet::dns::name::Name;
use signet::keystore::{ds_rdata, FileKeystore, KeyRole};
use signet::publisher::{Publisher, Served, Server};
use signet::signer::{sign_zone, ActiveKey, Denial, SignParams};
use signet::zone::data::Zone;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

pub const ORIGIN: &str = "example.test.";

pub fn now() -> u64 {
    SystemClock.now()
}

pub fn name(s: &str) -> Name {
    Name::parse(s, None).unwrap_or_else(|e| panic!("bad name {s}: {e}"))
}

/// Logs of the library to the test output (shown for failing tests).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("signet=info")),
        )
        .try_init();
}

/// Parses zone text into a checked zone.
pub fn zone_from_text(origin: &str, text: &str) -> Zone {
    let o = name(origin);
    let parsed = signet::zonefile::parse_str(text, Path::new("test.zone"), &o)
        .unwrap_or_else(|e| panic!("zone text does not parse: {e:?}"));
    let (zone, _warnings) = signet::zonefile::zone_from_parsed(parsed, &o)
        .unwrap_or_else(|e| panic!("zone is not valid: {e:?}"));
    zone
}

/// A zone signed with a fresh ECDSA P-256 KSK and ZSK, and the DS (SHA-256) for its parent.
pub struct Signed {
    pub zone: Zone,
    /// DS RDATA (for the parent zone's text, presentation form without owner/type).
    pub ds_rdata_text: String,
    /// `OWNER 300 IN DS …` for delv's trust anchor.
    pub ds_line: String,
}

pub fn nsec3(opt_out: bool) -> Denial {
    Denial::Nsec3 {
        iterations: 0,
        salt: Vec::new(),
        opt_out,
    }
}

/// Signs `text` (zone `origin`) with a KSK and a ZSK kept in `keydir` (generated on first use),
/// at `serial` if given.
pub fn sign(origin: &str, text: &str, denial: Denial, keydir: &Path) -> Signed {
    let unsigned = zone_from_text(origin, text);
    let store = FileKeystore::open(keydir).unwrap_or_else(|e| panic!("keystore: {e}"));
    let mut stored = store.list(origin).unwrap_or_default();
    if stored.is_empty() {
        for role in [KeyRole::Ksk, KeyRole::Zsk] {
            stored.push(
                store
                    .generate(origin, role, 13, now())
                    .unwrap_or_else(|e| panic!("key generation: {e}")),
            );
        }
    }
    let keys: Vec<ActiveKey> = stored
        .iter()
        .map(|k| ActiveKey {
            key: store
                .load_signer(k)
                .unwrap_or_else(|e| panic!("load key: {e}")),
            dnskey: k.dnskey_rdata(),
            tag: k.tag(),
            signs_keys: k.role.signs_keys(),
            signs_zone: k.role.signs_zone(),
            publish: true,
        })
        .collect();
    let params = SignParams {
        denial,
        ..SignParams::default()
    };
    let zone = sign_zone(&unsigned, &keys, &params, now())
        .unwrap_or_else(|e| panic!("signing {origin}: {e}"));
    let ksk = keys
        .iter()
        .find(|k| k.signs_keys)
        .expect("a key-signing key");
    let ds = ds_rdata(&name(origin).canonical_wire(), &ksk.dnskey, 2).expect("DS digest");
    let ds_rdata_text = signet::dns::rdata::to_text(signet::dns::t::DS, &ds);
    let ds_line = format!("{origin} 300 IN DS {ds_rdata_text}");
    Signed {
        zone,
        ds_rdata_text,
        ds_line,
    }
}

/// Writes a zone as a zone file (for the validators).
pub fn write_zone(zone: &Zone, path: &Path) {
    let mut out = Vec::new();
    signet::zonefile::write_zone(&mut out, zone).unwrap_or_else(|e| panic!("write zone: {e}"));
    std::fs::write(path, out).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// A TSIG key for the library from the harness's base64 secret.
pub fn lib_key(name_text: &str, secret_b64: &str) -> Key {
    let secret = data_encoding::BASE64
        .decode(secret_b64.as_bytes())
        .unwrap_or_else(|e| panic!("secret: {e}"));
    Key::new(
        name(&format!("{name_text}.")),
        TsigAlgorithm::HmacSha256,
        &secret,
    )
}

pub fn keyring(keys: Vec<Key>) -> Keyring {
    let mut r = Keyring::new();
    for k in keys {
        r.insert(k);
    }
    r
}

pub fn acl_key(name_text: &str) -> AclEntry {
    AclEntry::Key(format!("{name_text}."))
}

pub fn acl_addr(ip: &str) -> AclEntry {
    AclEntry::Addr(ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}")), 32)
}

/// A running server on 127.0.0.1 (UDP and TCP, same port), stopped on drop.
pub struct Running {
    pub port: u16,
    pub addr: SocketAddr,
    pub publisher: Arc<Publisher>,
    stop: watch::Sender<bool>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Running {
    /// Runs `f` inside the server's runtime (e.g. [`Publisher::notify`]) and waits for it.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match &self.rt {
            Some(rt) => rt.block_on(f),
            None => panic!("runtime gone"),
        }
    }

    /// Enters the runtime so that spawning works from this thread.
    pub fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        match &self.rt {
            Some(rt) => rt.enter(),
            None => panic!("runtime gone"),
        }
    }

    pub fn publish(&self, served: Served) {
        self.publisher.publish(Arc::new(served));
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
        }
    }
}

/// Starts a server for `publisher` on 127.0.0.1 and a free port.
pub fn start(publisher: Arc<Publisher>) -> Running {
    init_logging();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let server = rt
        .block_on(Server::bind(&[listen], publisher.clone()))
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = server.local_addrs()[0];
    let (stop, rx) = watch::channel(false);
    rt.spawn(server.run(rx));
    Running {
        port: addr.port(),
        addr,
        publisher,
        stop,
        rt: Some(rt),
    }
}

/// A publisher on the system clock.
pub fn publisher() -> Arc<Publisher> {
    Arc::new(Publisher::new(Arc::new(SystemClock)))
}
