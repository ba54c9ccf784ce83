//! The running signer: one task per zone, owning that zone's state.
//!
//! ```text
//!            start
//!              │ signed copy in state-dir? ──yes──▶ publish it at once (no waiting for upstream)
//!              ▼
//!   ┌──────▶ load unsigned (file) ──invalid──▶ log, keep serving the last good version
//!   │          │ changed, or no signed copy, or signatures due for refresh
//!   │          ▼
//!   │        sign (blocking pool) ─▶ verify every signature ──fail──▶ alarm, keep last good
//!   │          │ ok
//!   │          ▼
//!   │        persist signed copy (temp + fsync + rename) ─▶ publish (Arc swap) ─▶ NOTIFY
//!   │          │
//!   └── file changed (inotify, debounced) / re-sign timer (earliest expiry − refresh)
//! ```
//!
//! Serving reads an immutable `Arc<Zone>`; a new version replaces it whole, so a query or a
//! transfer never sees a half-signed zone.

use super::data::Zone;
use super::keys;
use super::status::{ZoneCmd, ZoneCmdKind};
use crate::auth::Keyring;
use crate::clock::{Clock, SystemClock};
use crate::config::{AclEntry, Config, Policy, SerialPolicy, ZoneConfig, ZoneSource};
use crate::dns::name::Name;
use crate::publisher::server::Server;
use crate::publisher::{Publisher, Served};
use crate::signer::{self, verify};
use crate::zonefile;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Zone file changes arrive as bursts of inotify events (an editor's write + rename gives
/// several): wait this long after the last one before reloading.
pub const FILE_DEBOUNCE: Duration = Duration::from_millis(400);

/// After a failed signing or load, try again after this long (a broken file is retried when it
/// changes anyway).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// What survives a restart besides the signed zone file itself.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct ZoneState {
    /// Serial of the last published signed version.
    pub signed_serial: u32,
    /// Digest of the unsigned input that version was made from.
    pub unsigned_digest: String,
    /// Unix time of the last signing.
    pub signed_at: u64,
}

/// Digest of a zone's content (SHA-256 over its records in canonical order), to tell whether
/// the unsigned input changed.
pub fn content_digest(zone: &Zone) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for (name, node) in &zone.nodes {
        ctx.update(&name.canonical_wire());
        for set in &node.rrsets {
            ctx.update(&set.rtype.to_be_bytes());
            ctx.update(&set.ttl.to_be_bytes());
            let mut rds: Vec<_> = set
                .rdatas
                .iter()
                .map(|r| crate::dns::rdata::canonical(set.rtype, r))
                .collect();
            rds.sort();
            for r in rds {
                ctx.update(&(r.len() as u16).to_be_bytes());
                ctx.update(&r);
            }
        }
    }
    data_encoding::HEXLOWER.encode(ctx.finish().as_ref())
}

/// RFC 1982: is `a` greater than `b`?
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && (a.wrapping_sub(b) as i32) > 0
}

/// The next signed serial under the policy (always moving forward from `prev`).
pub fn next_serial(policy: SerialPolicy, prev: Option<u32>, upstream: u32, now: u64) -> u32 {
    let want = match policy {
        SerialPolicy::Keep => upstream,
        SerialPolicy::Increment => match prev {
            None => upstream,
            Some(p) => {
                if serial_gt(upstream, p) {
                    upstream
                } else {
                    p.wrapping_add(1)
                }
            }
        },
        SerialPolicy::UnixTime => now as u32,
        SerialPolicy::DateSerial => {
            let (y, m, d) = crate::dns::rdata::civil_from_days((now / 86400) as i64);
            (y as u32) * 1_000_000 + m * 10_000 + d * 100
        }
    };
    match prev {
        Some(p) if !serial_gt(want, p) && policy != SerialPolicy::Keep => p.wrapping_add(1),
        _ => want,
    }
}

/// Earliest RRSIG expiration in a signed zone (Unix seconds, 32-bit serial time).
pub fn earliest_expiry(zone: &Zone) -> Option<u32> {
    zone.nodes
        .values()
        .flat_map(|n| n.sigs.iter())
        .filter_map(|s| s.rdata.get(8..12))
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .min_by(|a, b| {
            if serial_gt(*a, *b) {
                std::cmp::Ordering::Greater
            } else if a == b {
                std::cmp::Ordering::Equal
            } else {
                std::cmp::Ordering::Less
            }
        })
}

/// One zone's task state.
struct ZoneTask {
    cfg: Arc<Config>,
    zone: ZoneConfig,
    origin: Name,
    dir: PathBuf,
    state: ZoneState,
    current: Option<Arc<Served>>,
    publisher: Arc<Publisher>,
    clock: Arc<dyn Clock>,
}

impl ZoneTask {
    fn policy(&self) -> &Policy {
        self.cfg.policy_for(&self.zone)
    }

    fn signed_path(&self) -> PathBuf {
        self.dir.join("signed.zone")
    }

    /// Serves the signed copy from the state directory, if there is a usable one.
    fn restore(&mut self) {
        let state_path = self.dir.join("state.json");
        let Ok(text) = std::fs::read_to_string(&state_path) else {
            return;
        };
        let Ok(state) = serde_json::from_str::<ZoneState>(&text) else {
            tracing::warn!(zone = %self.zone.name, path = %state_path.display(), "unreadable zone state; will re-sign");
            return;
        };
        match zonefile::load_zone(&self.signed_path(), &self.origin) {
            Ok((z, _)) => {
                let now = self.clock.now() as u32;
                if earliest_expiry(&z).is_some_and(|e| serial_gt(now, e)) {
                    tracing::warn!(zone = %self.zone.name, "stored signed copy has expired signatures; not serving it");
                    return;
                }
                tracing::info!(zone = %self.zone.name, serial = state.signed_serial, "serving the stored signed copy");
                self.publish(z, false);
                self.state = state;
            }
            Err(e) => {
                tracing::warn!(zone = %self.zone.name, error = %e.join("; "), "stored signed copy unusable; will re-sign");
            }
        }
    }

    /// Loads the unsigned input and signs it if needed. Returns when to come back.
    async fn refresh(&mut self, force: bool) -> Duration {
        let ZoneSource::File(path) = self.zone.source.clone() else {
            tracing::error!(zone = %self.zone.name, "zones with primaries are not supported yet (issue 3)");
            return Duration::from_secs(3600);
        };
        let origin = self.origin.clone();
        let loaded = tokio::task::spawn_blocking(move || zonefile::load_zone(&path, &origin)).await;
        let mut unsigned = match loaded {
            Ok(Ok((z, warnings))) => {
                for w in warnings {
                    tracing::warn!(zone = %self.zone.name, "{w}");
                }
                z
            }
            Ok(Err(errs)) => {
                for e in &errs {
                    tracing::error!(zone = %self.zone.name, "{e}");
                }
                tracing::error!(zone = %self.zone.name, "zone file rejected; still serving the last good version");
                return self.next_wakeup();
            }
            Err(e) => {
                tracing::error!(zone = %self.zone.name, error = %e, "loader failed");
                return RETRY_AFTER_FAILURE;
            }
        };
        let stripped = signer::strip_dnssec(&mut unsigned);
        if !stripped.is_empty() {
            tracing::warn!(zone = %self.zone.name, removed = %stripped.join(", "), "removed DNSSEC records found in the unsigned input");
        }
        let digest = content_digest(&unsigned);
        let now = self.clock.now();
        let due = self.resign_due(now);
        if !force && !due && self.current.is_some() && digest == self.state.unsigned_digest {
            return self.next_wakeup();
        }
        match self.sign_and_publish(unsigned, digest, now).await {
            Ok(()) => self.next_wakeup(),
            Err(e) => {
                tracing::error!(zone = %self.zone.name, error = %e, "signing failed; still serving the last good version");
                RETRY_AFTER_FAILURE
            }
        }
    }

    fn resign_due(&self, now: u64) -> bool {
        match self.current.as_ref().and_then(|s| earliest_expiry(&s.zone)) {
            None => true,
            Some(e) => {
                let refresh = self.policy().signatures_refresh.min(u32::MAX as u64) as u32;
                !serial_gt(e.wrapping_sub(refresh), now as u32)
            }
        }
    }

    fn next_wakeup(&self) -> Duration {
        let now = self.clock.now() as u32;
        match self.current.as_ref().and_then(|s| earliest_expiry(&s.zone)) {
            None => RETRY_AFTER_FAILURE,
            Some(e) => {
                let refresh = self.policy().signatures_refresh.min(u32::MAX as u64) as u32;
                let at = e.wrapping_sub(refresh);
                let secs = at.wrapping_sub(now) as i32;
                Duration::from_secs(secs.max(1) as u64)
            }
        }
    }

    async fn sign_and_publish(
        &mut self,
        mut unsigned: Zone,
        digest: String,
        now: u64,
    ) -> Result<(), String> {
        let policy = self.policy().clone();
        let upstream = unsigned.serial().unwrap_or(0);
        let prev = self.current.as_ref().map(|_| self.state.signed_serial);
        let serial = next_serial(policy.serial, prev, upstream, now);
        unsigned.set_serial(serial);
        let cfg = self.cfg.clone();
        let zcfg = self.zone.clone();
        let dir = self.dir.clone();
        let signed = tokio::task::spawn_blocking(move || -> Result<Zone, String> {
            let zk = keys::ensure_keys(&cfg, &zcfg, &policy, now, true)?;
            let salt_len = policy.nsec3.as_ref().map(|n| n.salt_length).unwrap_or(0);
            let salt = keys::nsec3_salt(&dir, salt_len)?;
            let params = keys::sign_params(&policy, salt);
            let signed = signer::sign_zone(&unsigned, &zk.active, &params, now)
                .map_err(|e| e.to_string())?;
            let problems = verify::check_zone(&signed, now, true);
            if !problems.is_empty() {
                return Err(format!("self-check failed: {}", problems.join("; ")));
            }
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            super::offline::write_zone_atomic(&dir.join("signed.zone"), &signed)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            Ok(signed)
        })
        .await
        .map_err(|e| format!("signer task failed: {e}"))??;
        let state = ZoneState {
            signed_serial: serial,
            unsigned_digest: digest,
            signed_at: now,
        };
        let json = serde_json::to_vec_pretty(&state).map_err(|e| e.to_string())?;
        crate::keystore::write_atomic(&self.dir, "state.json", &json, 0o644)
            .map_err(|e| e.to_string())?;
        tracing::info!(zone = %self.zone.name, serial, records = signed.record_count(), "signed");
        self.publish(signed, true);
        self.state = state;
        Ok(())
    }

    /// Serves `signed` from now on (replacing the previous version whole) and, with
    /// `announce`, sends NOTIFY to the zone's `notify` targets, signed with the first TSIG key
    /// of its `allow-transfer` list (the key the secondaries transfer with) when there is one.
    fn publish(&mut self, signed: Zone, announce: bool) {
        let served = Arc::new(
            Served::new(signed, self.zone.allow_transfer.clone())
                .with_allow_notify(self.zone.allow_notify.clone()),
        );
        self.publisher.publish(served.clone());
        self.current = Some(served);
        if announce && !self.zone.notify.is_empty() {
            let key = self.zone.allow_transfer.iter().find_map(|a| match a {
                AclEntry::Key(k) => Name::parse(k, None)
                    .ok()
                    .and_then(|n| self.publisher.keys().get(&n).cloned()),
                _ => None,
            });
            self.publisher
                .notify(&self.origin, self.zone.notify.clone(), key);
        }
    }
}

/// Runs one zone until `rx` closes.
pub async fn zone_task(
    cfg: Arc<Config>,
    zone: ZoneConfig,
    publisher: Arc<Publisher>,
    clock: Arc<dyn Clock>,
    mut rx: mpsc::Receiver<ZoneCmd>,
) {
    let origin = match Name::parse(&zone.name, None) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(zone = %zone.name, error = %e, "bad zone name");
            return;
        }
    };
    let dir = keys::zone_state_dir(&cfg, &zone.name);
    let mut t = ZoneTask {
        cfg,
        zone,
        origin,
        dir,
        state: ZoneState::default(),
        current: None,
        publisher,
        clock,
    };
    t.restore();
    let mut wait = t.refresh(false).await;
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None => return,
                Some(cmd) => {
                    let force = matches!(cmd.kind, ZoneCmdKind::Resign | ZoneCmdKind::Retransfer);
                    wait = t.refresh(force).await;
                    if let Some(r) = cmd.reply {
                        let _ = r.send(Ok(format!("serial {}", t.state.signed_serial)));
                    }
                }
            },
            _ = tokio::time::sleep(wait) => {
                wait = t.refresh(false).await;
            }
        }
    }
}

/// Watches the directories of file-sourced zones and sends `Reload` to the zone whose file
/// changed, after [`FILE_DEBOUNCE`] of quiet. Watching directories (not files) survives editors
/// and deploy tools that replace files by rename.
pub fn watch_files(
    files: Vec<(PathBuf, mpsc::Sender<ZoneCmd>)>,
) -> Result<notify::RecommendedWatcher, String> {
    use notify::Watcher;
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            // our own reading of the file raises open/access/close-nowrite events: reacting
            // to those would reload forever
            if matches!(
                ev.kind,
                notify::EventKind::Access(_) | notify::EventKind::Other
            ) {
                return;
            }
            for p in ev.paths {
                let _ = tx.send(p);
            }
        }
    })
    .map_err(|e| format!("cannot watch zone files: {e}"))?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    let canon: Vec<(PathBuf, mpsc::Sender<ZoneCmd>)> =
        files.into_iter().map(|(p, s)| (absolute(&p), s)).collect();
    for (p, _) in &canon {
        let d = p
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        if !dirs.contains(&d) {
            watcher
                .watch(&d, notify::RecursiveMode::NonRecursive)
                .map_err(|e| format!("cannot watch {}: {e}", d.display()))?;
            dirs.push(d);
        }
    }
    tokio::spawn(async move {
        let mut pending: Vec<usize> = Vec::new();
        loop {
            let ev = if pending.is_empty() {
                rx.recv().await
            } else {
                match tokio::time::timeout(FILE_DEBOUNCE, rx.recv()).await {
                    Ok(v) => v,
                    Err(_) => {
                        for i in pending.drain(..) {
                            let _ = canon[i].1.try_send(ZoneCmd::new(ZoneCmdKind::Reload));
                        }
                        continue;
                    }
                }
            };
            let Some(p) = ev else { return };
            let p = absolute(&p);
            for (i, (f, _)) in canon.iter().enumerate() {
                if *f == p && !pending.contains(&i) {
                    pending.push(i);
                }
            }
        }
    });
    Ok(watcher)
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// `signet serve`: binds the listeners (a failure is a one-line reason), starts one task per
/// zone and the file watcher, and runs until SIGTERM/SIGINT.
pub async fn run(cfg: Config) -> Result<(), String> {
    let cfg = Arc::new(cfg);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let publisher = Arc::new(Publisher::new(clock.clone()));
    publisher.set_keys(Keyring::from_config(cfg.tsig.values())?);
    let server = Server::bind(&cfg.server.listen, publisher.clone())
        .await
        .map_err(|e| format!("cannot listen on {:?}: {e}", cfg.server.listen))?;
    for a in server.local_addrs() {
        tracing::info!(address = %a, "listening");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server_task = tokio::spawn(server.run(stop_rx));
    let mut files = Vec::new();
    let mut senders = Vec::new();
    for z in &cfg.zones {
        let (tx, rx) = mpsc::channel(8);
        if let ZoneSource::File(p) = &z.source {
            files.push((p.clone(), tx.clone()));
        }
        senders.push(tx);
        tokio::spawn(zone_task(
            cfg.clone(),
            z.clone(),
            publisher.clone(),
            clock.clone(),
            rx,
        ));
    }
    let _watcher = watch_files(files)?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), server_task).await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials() {
        assert!(serial_gt(1, 0));
        assert!(serial_gt(0, u32::MAX));
        assert!(!serial_gt(0, 0x8000_0000));
        assert_eq!(next_serial(SerialPolicy::Increment, None, 5, 0), 5);
        assert_eq!(next_serial(SerialPolicy::Increment, Some(5), 5, 0), 6);
        assert_eq!(next_serial(SerialPolicy::Increment, Some(5), 9, 0), 9);
        assert_eq!(
            next_serial(SerialPolicy::Increment, Some(u32::MAX), 3, 0),
            3
        );
        assert_eq!(next_serial(SerialPolicy::UnixTime, Some(10), 3, 1000), 1000);
        assert_eq!(
            next_serial(SerialPolicy::UnixTime, Some(2000), 3, 1000),
            2001
        );
        assert_eq!(
            next_serial(SerialPolicy::DateSerial, None, 3, 1_704_067_200),
            2024010100
        );
        assert_eq!(next_serial(SerialPolicy::Keep, Some(7), 3, 0), 3);
    }
}
