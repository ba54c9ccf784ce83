//! What a zone task keeps on disk, and when it writes it (issue 4: a one-record change must
//! go from NOTIFY in to NOTIFY out in milliseconds, so no step on that path may rewrite a
//! whole zone file).
//!
//! ```text
//!  state-dir/zones/NAME/
//!    unsigned.zone     snapshot of the unsigned copy (upstream's version, DNSSEC stripped)
//!    unsigned.journal  its upstream diffs since (and before) that snapshot   ← IXFR in: append
//!    signed.zone       snapshot of a served signed version
//!    ixfr.journal      the signed changesets (IXFR history)                  ← every signing
//!
//!  IXFR from upstream ─▶ diff_names(old, new, touched) ─▶ unsigned.journal (append + fsync)
//!                        ─▶ sign ─▶ ixfr.journal (append + fsync) ─▶ serve ─▶ NOTIFY
//!                        ─▶ later, in the background: unsigned.zone / signed.zone
//!  AXFR from upstream ─▶ unsigned.zone written at once ─▶ unsigned.journal reset
//!  restart:  unsigned.zone + unsigned.journal ─▶ the last unsigned copy
//!            signed.zone + ixfr.journal       ─▶ exactly the last served version
//! ```
//!
//! A snapshot is written by a background thread ([`Snapshot`], one job at a time per file, the
//! zone task never waits for it) from a clone of the version, with temp file + fsync + rename +
//! directory fsync, when the journal since the snapshot holds more than
//! [`SNAPSHOT_AFTER_ENTRIES`] changesets or [`SNAPSHOT_AFTER_BYTES`] octets, when its journal
//! is above its bounds, or when the oldest change not in the snapshot is older than
//! [`SNAPSHOT_AFTER_SECS`]; and at a clean shutdown. The journal is pinned at the serial of the
//! snapshot on disk ([`Journal::set_keep_from`]): compaction never drops a changeset a restart
//! needs. The pin moves only once the new snapshot is renamed into place and its directory
//! synced. The serial of the snapshot is the one in its SOA: a restart reads it from there and
//! rolls forward from it.
//!
//! Synchronous writes (the zone task waits, the background job is finished first, so that an
//! older version can never land over a newer one):
//! * a journal `reset` (the first version, or a version that does not follow the journal): the
//!   snapshot is written first, then the journal is reset, so a crash between the two leaves
//!   the new snapshot (never an older one the journal can no longer bring forward);
//! * an AXFR (or an IXFR answered AXFR-style) from upstream: `unsigned.zone` and a reset of
//!   `unsigned.journal`;
//! * a zone without a usable journal (it could not be opened): every version.
//!
//! A full re-sign is an ordinary (large) journal entry: it usually passes
//! [`SNAPSHOT_AFTER_BYTES`] and so triggers a background snapshot at once.

use super::ZoneTask;
use crate::dns::name::Name;
use crate::journal::{self, Journal, JournalLimits, UNSIGNED_JOURNAL_FILE};
use crate::zone::data::Zone;
use crate::zonefile;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A snapshot is written once the journal since the last one holds more than this many
/// changesets: Knot's `journal-max-depth` default (20). A restart then applies at most this
/// many changesets (milliseconds), and the journal's own depth bound
/// ([`crate::journal::MAX_ENTRIES`], compacted to 75 of 100) is never held up by the pin.
pub const SNAPSHOT_AFTER_ENTRIES: usize = 20;

/// ... or more than this many octets of changesets: 16 MiB is a few signature refresh batches
/// of a million-name zone; applying them at a restart takes well under a second, and it is far
/// below the journal's size bound ([`crate::journal::MAX_BYTES`], 100 MiB, compacted to 75 %).
pub const SNAPSHOT_AFTER_BYTES: u64 = 16 * 1024 * 1024;

/// ... or when the oldest change not in the snapshot is older than this: 5 minutes. Knot
/// flushes its zone file right after each change by default (`zonefile-sync: 0`), which at a
/// million names is a 2 s rewrite per change; this bounds the rewrite cost of a constantly
/// changing zone to one full write per 5 minutes (about 1 % of a core at a million names) while
/// keeping the files an operator reads or backs up at most 5 minutes behind.
pub const SNAPSHOT_AFTER_SECS: u64 = 300;

/// A failed background snapshot (full disk, permissions) is tried again after this long, not
/// at every wakeup of the zone task.
pub const SNAPSHOT_RETRY_SECS: u64 = 60;

/// At a clean shutdown the zone tasks get this long, together, to write the snapshots that are
/// behind (a million-name zone's two files take about 3 s); past it the process exits anyway:
/// the journals hold everything, the next start rolls the snapshots forward. Well inside
/// systemd's default stop timeout of 90 s.
pub const SHUTDOWN_FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The signed snapshot's file name in the zone's state directory.
pub const SIGNED_SNAPSHOT: &str = "signed.zone";

/// The unsigned copy's file name in the zone's state directory.
pub const UNSIGNED_SNAPSHOT: &str = "unsigned.zone";

type Job = std::thread::JoinHandle<Result<Option<u32>, String>>;

/// One snapshot file and its background writer.
pub struct Snapshot {
    path: PathBuf,
    zone: String,
    job: Option<Job>,
    /// The serial of the version the file holds (as far as this task knows).
    written: Option<u32>,
    /// When the oldest change not in the file (nor in the job writing) happened.
    behind_since: Option<u64>,
    /// The `behind_since` the running job covers (restored when the job fails).
    job_behind_since: Option<u64>,
    /// After a failure: not before this time.
    retry_at: Option<u64>,
}

impl Snapshot {
    pub fn new(dir: &Path, file: &str, zone: &str) -> Snapshot {
        Snapshot {
            path: dir.join(file),
            zone: zone.to_string(),
            job: None,
            written: None,
            behind_since: None,
            job_behind_since: None,
            retry_at: None,
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The serial of the version in the file, once known.
    pub fn written(&self) -> Option<u32> {
        self.written
    }

    /// Whether versions newer than the file exist (only in the journal).
    pub fn behind(&self) -> bool {
        self.behind_since.is_some() || self.job.is_some()
    }

    /// At start: the file holds `snapshot`, the journal brought it to `current`.
    pub fn restored(&mut self, snapshot: Option<u32>, current: Option<u32>, now: u64) {
        self.written = snapshot;
        self.behind_since = (current != snapshot).then_some(now);
    }

    /// A new version exists (journaled) that the file does not hold.
    pub fn changed(&mut self, now: u64) {
        self.behind_since.get_or_insert(now);
    }

    /// Whether a background snapshot should start now: behind, no job running, not in a retry
    /// pause, and the journal since the snapshot (`since` = changesets, octets) past a
    /// threshold, or the journal over its bounds, or the oldest change old enough.
    pub fn due(&self, since: (usize, u64), over_limits: bool, now: u64) -> bool {
        let Some(t) = self.behind_since else {
            return false;
        };
        if self.job.is_some() || self.retry_at.is_some_and(|r| now < r) {
            return false;
        }
        since.0 > SNAPSHOT_AFTER_ENTRIES
            || since.1 > SNAPSHOT_AFTER_BYTES
            || over_limits
            || now >= t.saturating_add(SNAPSHOT_AFTER_SECS)
    }

    /// When the age rule makes a snapshot due (for the zone task's schedule). `None` while a
    /// job runs: its end is noticed at the next wakeup (a schedule entry in the past would have
    /// a simulated clock spin until the thread is done).
    pub fn next_due(&self) -> Option<u64> {
        if self.job.is_some() {
            return None;
        }
        let t = self.behind_since?.saturating_add(SNAPSHOT_AFTER_SECS);
        Some(match self.retry_at {
            Some(r) => t.max(r),
            None => t,
        })
    }

    /// Starts writing `zone` in the background (a clone of the version: the zone task goes on).
    pub fn start(&mut self, zone: Zone) {
        if self.job.is_some() {
            return;
        }
        let path = self.path.clone();
        self.job_behind_since = self.behind_since.take();
        self.retry_at = None;
        let name = self.zone.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("snapshot-{}", self.zone))
            .spawn(move || {
                let t = std::time::Instant::now();
                let r = write_snapshot(&path, &zone, false);
                if let Ok(Some(serial)) = &r {
                    tracing::debug!(zone = %name, path = %path.display(), serial, ms = t.elapsed().as_millis() as u64, "snapshot written in the background");
                }
                r
            });
        match spawned {
            Ok(h) => self.job = Some(h),
            Err(e) => {
                tracing::error!(zone = %self.zone, error = %e, "cannot start the snapshot writer");
                self.behind_since = self.job_behind_since.take();
            }
        }
    }

    /// A finished job's outcome: `Some(serial)` of the snapshot now on disk (move the journal's
    /// pin there). Does not wait for a running job.
    pub fn poll(&mut self, now: u64) -> Option<u32> {
        if self.job.as_ref().is_some_and(|h| h.is_finished()) {
            return self.join(now);
        }
        None
    }

    /// Waits for the running job, if any; as [`Snapshot::poll`].
    pub fn join(&mut self, now: u64) -> Option<u32> {
        let h = self.job.take()?;
        let outcome = h
            .join()
            .unwrap_or_else(|_| Err("the snapshot writer panicked".into()));
        match outcome {
            Ok(Some(serial)) => {
                self.written = Some(serial);
                self.job_behind_since = None;
                Some(serial)
            }
            Ok(None) => {
                // a newer snapshot is on disk already (written by another task of this zone)
                self.job_behind_since = None;
                None
            }
            Err(e) => {
                tracing::error!(zone = %self.zone, path = %self.path.display(), error = %e,
                    "cannot write the snapshot; the journal keeps everything since the last one, retrying later");
                let old = self.job_behind_since.take();
                self.behind_since = match (old, self.behind_since) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                self.retry_at = Some(now + SNAPSHOT_RETRY_SECS);
                None
            }
        }
    }

    /// Writes `zone` now, after the running job (so that nothing older lands after it).
    pub fn write_now(&mut self, zone: &Zone, now: u64) -> Result<u32, String> {
        self.join(now);
        let t = std::time::Instant::now();
        let serial = write_snapshot(&self.path, zone, true)?
            .ok_or_else(|| "the zone has no SOA serial".to_string())?;
        tracing::debug!(zone = %self.zone, path = %self.path.display(), serial, ms = t.elapsed().as_millis() as u64, "snapshot written synchronously");
        self.written = Some(serial);
        self.behind_since = None;
        self.retry_at = None;
        Ok(serial)
    }

    /// Removes temporary files of snapshot writes that a crash interrupted (other processes'
    /// only: a job of this process may be writing one).
    pub fn remove_stale_temp_files(&self) {
        let (Some(dir), Some(file)) = (self.path.parent(), self.path.file_name()) else {
            return;
        };
        let file = file.to_string_lossy();
        let pid = std::process::id();
        let mine = [format!(".{file}.{pid}."), format!(".{file}.tmp{pid}")];
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let n = e.file_name();
            let n = n.to_string_lossy();
            let ours = n.starts_with(&format!(".{file}.")) && n.contains("tmp");
            if ours && !mine.iter().any(|m| n.starts_with(m.as_str())) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// A snapshot file's lock, holding the serial last written to it.
type FileLock = Arc<Mutex<Option<u32>>>;

/// The serial last written to each snapshot file by this process, under the file's lock: the
/// jobs of one task never overlap, but a zone task replaced on a configuration reload may leave
/// one running beside its successor's writes.
fn file_lock(path: &Path) -> FileLock {
    static LOCKS: Mutex<Vec<(PathBuf, FileLock)>> = Mutex::new(Vec::new());
    let mut locks = LOCKS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, l)) = locks.iter().find(|(p, _)| p == path) {
        return l.clone();
    }
    let l = Arc::new(Mutex::new(None));
    locks.push((path.to_path_buf(), l.clone()));
    l
}

/// Writes `zone` to `path`: temporary file, fsync, rename, directory fsync. A background write
/// (`sync` false) of a version older than what this process last wrote there is skipped
/// (`Ok(None)`); a synchronous one always writes (an AXFR may legitimately go back).
pub fn write_snapshot(path: &Path, zone: &Zone, sync: bool) -> Result<Option<u32>, String> {
    let serial = zone
        .serial()
        .ok_or_else(|| format!("{}: the zone has no SOA", path.display()))?;
    let lock = file_lock(path);
    let mut last = lock.lock().unwrap_or_else(|p| p.into_inner());
    if !sync && last.is_some_and(|l| journal::serial_gt(l, serial)) {
        return Ok(None);
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "zone".into());
    let tmp = dir.join(format!(".{file}.{}.{n}.tmp", std::process::id()));
    let written = (|| {
        let f = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        zonefile::write_zone(&mut w, zone)?;
        w.flush()?;
        w.get_ref().sync_all()?;
        drop(w);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{}: {e}", path.display()));
    }
    *last = Some(serial);
    Ok(Some(serial))
}

/// The snapshots and the unsigned journal of a zone task.
pub struct Persist {
    /// `signed.zone`: shared with the signing job, which writes it synchronously on a reset.
    pub signed: Arc<Mutex<Snapshot>>,
    /// `unsigned.zone`.
    pub unsigned: Snapshot,
    /// `unsigned.journal`, once opened.
    pub unsigned_journal: Option<Journal>,
}

impl Persist {
    pub fn new(dir: &Path, zone: &str) -> Persist {
        Persist {
            signed: Arc::new(Mutex::new(Snapshot::new(dir, SIGNED_SNAPSHOT, zone))),
            unsigned: Snapshot::new(dir, UNSIGNED_SNAPSHOT, zone),
            unsigned_journal: None,
        }
    }
}

fn lock_snapshot(s: &Mutex<Snapshot>) -> std::sync::MutexGuard<'_, Snapshot> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// In the signing job: the journal cannot roll anything forward to `signed` (a reset, or no
/// journal): write `signed.zone` synchronously, then reset the journal to its serial (pinned
/// there). The order matters: a crash between the two leaves the new snapshot, which restart
/// serves (the journal is reset to it), never the older snapshot with a history that no longer
/// leads to the last served version.
pub fn reset_with_snapshot(
    journal: Option<&mut Journal>,
    snap: &Mutex<Snapshot>,
    signed: &Zone,
    now: u64,
) -> Result<(), String> {
    lock_snapshot(snap).write_now(signed, now)?;
    if let Some(j) = journal {
        j.reset(signed.serial().unwrap_or(0))
            .map_err(|e| format!("journal: {e}"))?;
    }
    Ok(())
}

/// The owner names the upstream IXFR diffs touched.
pub fn touched_owners(diffs: &[crate::loader::Diff]) -> BTreeSet<Name> {
    diffs
        .iter()
        .flat_map(|d| d.removed.iter().chain(d.added.iter()))
        .map(|r| r.owner.clone())
        .collect()
}

impl ZoneTask {
    /// At start (after the signed journal): opens `unsigned.journal` and cleans up temporary
    /// files of interrupted snapshot writes.
    pub(super) fn open_persist(&mut self) {
        lock_snapshot(&self.persist.signed).remove_stale_temp_files();
        self.persist.unsigned.remove_stale_temp_files();
        match Journal::open_file(
            &self.dir,
            UNSIGNED_JOURNAL_FILE,
            &self.origin,
            JournalLimits::default(),
        ) {
            Ok(j) => self.persist.unsigned_journal = Some(j),
            Err(e) => {
                tracing::error!(zone = %self.zone.name, error = %e, "cannot open the unsigned journal; every upstream change rewrites unsigned.zone")
            }
        }
    }

    /// At start: `unsigned.zone` rolled forward with `unsigned.journal`.
    pub(super) fn restore_unsigned(&mut self) -> Option<Zone> {
        let z = match zonefile::load_zone(&self.dir.join(UNSIGNED_SNAPSHOT), &self.origin) {
            Ok((z, _)) => z,
            Err(e) => {
                tracing::warn!(zone = %self.zone.name, error = %e.join("; "), "stored unsigned copy unusable; will transfer afresh");
                return None;
            }
        };
        let snap = z.serial();
        let z = match self.persist.unsigned_journal.as_mut() {
            Some(j) => match j.recover(z.clone()) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(zone = %self.zone.name, error = %e, "unsigned journal recovery failed; using the unsigned snapshot");
                    z
                }
            },
            None => z,
        };
        let now = self.clock.now();
        self.persist.unsigned.restored(snap, z.serial(), now);
        Some(z)
    }

    /// At start: the signed snapshot held `snapshot`, the journal brought it to `current`.
    pub(super) fn signed_restored(&mut self, snapshot: Option<u32>, current: Option<u32>) {
        let now = self.clock.now();
        lock_snapshot(&self.persist.signed).restored(snapshot, current, now);
    }

    /// A new unsigned version `new` from upstream, before it is accepted and signed: persisted
    /// as a journaled diff from the current unsigned copy when the upstream change was
    /// incremental (`touched` = its owner names), else as a full `unsigned.zone` with the
    /// unsigned journal reset. Returns the touched set to keep for the signer (the union with
    /// the changes not signed yet; `None` = unknown, everything).
    pub(super) fn store_unsigned(
        &mut self,
        new: &Zone,
        touched: Option<BTreeSet<Name>>,
    ) -> Option<BTreeSet<Name>> {
        let now = self.clock.now();
        let merged = match (self.upstream_touched.take(), &touched) {
            (Some(mut acc), Some(t)) => {
                acc.extend(t.iter().cloned());
                Some(acc)
            }
            _ => None,
        };
        if let (Some(t), Some(old), Some(j)) = (
            touched.as_ref(),
            self.unsigned.as_ref(),
            self.persist.unsigned_journal.as_mut(),
        ) {
            if old.serial().is_some() && j.last_serial() == old.serial() {
                let at = std::time::Instant::now();
                let cs = journal::diff_names(old, new, t);
                match j.append(&cs) {
                    Ok(()) => {
                        tracing::debug!(zone = %self.zone.name, records = cs.record_count(),
                            ms = format_args!("{:.1}", at.elapsed().as_secs_f64() * 1000.0),
                            "unsigned diff journaled");
                        self.persist.unsigned.changed(now);
                        return merged;
                    }
                    Err(e) => {
                        tracing::warn!(zone = %self.zone.name, error = %e, "cannot journal the unsigned diff; writing the whole unsigned copy")
                    }
                }
            }
        }
        // the whole copy, then the journal reset to it (a crash between the two leaves the new
        // copy, to which the journal is reset at restart)
        match self.persist.unsigned.write_now(new, now) {
            Ok(serial) => {
                if let Some(j) = self.persist.unsigned_journal.as_mut() {
                    if let Err(e) = j.reset(serial) {
                        tracing::error!(zone = %self.zone.name, error = %e, "cannot reset the unsigned journal");
                    }
                }
            }
            Err(e) => {
                tracing::error!(zone = %self.zone.name, error = %e, "cannot store the unsigned copy")
            }
        }
        merged
    }

    /// Finished snapshot jobs move their journal's pin; due snapshots start in the background.
    /// Cheap: called at every wakeup and after every new version.
    pub(super) fn snapshot_tick(&mut self) {
        let now = self.clock.now();
        // signed (one lock at a time: the signing job takes the journal's, then the snapshot's)
        let done = lock_snapshot(&self.persist.signed).poll(now);
        let (since, over) = match self.journal.as_ref().and_then(|j| j.lock().ok()) {
            Some(mut j) => {
                if let Some(serial) = done {
                    j.set_keep_from(Some(serial));
                }
                (j.since_keep(), j.over_limits())
            }
            None => ((0, 0), false),
        };
        let mut s = lock_snapshot(&self.persist.signed);
        if s.due(since, over, now) {
            if let Some(cur) = &self.current {
                s.start(cur.zone.clone());
            }
        }
        drop(s);
        // unsigned
        if let Some(serial) = self.persist.unsigned.poll(now) {
            if let Some(j) = self.persist.unsigned_journal.as_mut() {
                j.set_keep_from(Some(serial));
            }
        }
        let (since, over) = match &self.persist.unsigned_journal {
            Some(j) => (j.since_keep(), j.over_limits()),
            None => ((0, 0), false),
        };
        if self.persist.unsigned.due(since, over, now) {
            if let Some(u) = &self.unsigned {
                self.persist.unsigned.start(u.clone());
            }
        }
    }

    /// After a new signed version is journaled and served: the snapshot is behind.
    pub(super) fn signed_changed(&mut self) {
        let now = self.clock.now();
        lock_snapshot(&self.persist.signed).changed(now);
        self.snapshot_tick();
    }

    /// When a snapshot is due by age (for the schedule).
    pub(super) fn snapshot_at(&self) -> Option<u64> {
        let s = lock_snapshot(&self.persist.signed).next_due();
        let u = self.persist.unsigned.next_due();
        match (s, u) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Waits for the background snapshot jobs (and moves the pins). For tests and shutdown.
    pub fn wait_snapshots(&mut self) {
        let now = self.clock.now();
        let done = lock_snapshot(&self.persist.signed).join(now);
        if let (Some(serial), Some(j)) = (done, &self.journal) {
            if let Ok(mut j) = j.lock() {
                j.set_keep_from(Some(serial));
            }
        }
        if let Some(serial) = self.persist.unsigned.join(now) {
            if let Some(j) = self.persist.unsigned_journal.as_mut() {
                j.set_keep_from(Some(serial));
            }
        }
    }

    /// At a clean shutdown: waits for the running jobs and writes what is still behind, so
    /// that the next start has nothing to roll forward.
    pub fn flush_snapshots(&mut self) {
        self.wait_snapshots();
        let now = self.clock.now();
        if lock_snapshot(&self.persist.signed).behind() {
            if let Some(cur) = self.current.clone() {
                let r = lock_snapshot(&self.persist.signed).write_now(&cur.zone, now);
                match r {
                    Ok(serial) => {
                        if let Some(j) = &self.journal {
                            if let Ok(mut j) = j.lock() {
                                j.set_keep_from(Some(serial));
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(zone = %self.zone.name, error = %e, "cannot write the signed snapshot at shutdown (the journal has it)")
                    }
                }
            }
        }
        if self.persist.unsigned.behind() {
            if let Some(u) = self.unsigned.clone() {
                match self.persist.unsigned.write_now(&u, now) {
                    Ok(serial) => {
                        if let Some(j) = self.persist.unsigned_journal.as_mut() {
                            j.set_keep_from(Some(serial));
                        }
                    }
                    Err(e) => {
                        tracing::error!(zone = %self.zone.name, error = %e, "cannot write the unsigned snapshot at shutdown (the journal has it)")
                    }
                }
            }
        }
    }

    /// The owner names the upstream changes not signed yet touched: `None` when unknown (after
    /// an AXFR or a file load: everything), empty after a signing.
    pub fn upstream_touched(&self) -> Option<&BTreeSet<Name>> {
        self.upstream_touched.as_ref()
    }

    /// The serial in `signed.zone` as far as the task knows (it may lag what is served: the
    /// journal holds the rest).
    pub fn signed_snapshot_serial(&self) -> Option<u32> {
        lock_snapshot(&self.persist.signed).written()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::rtype::t;
    use crate::zone::data::RRset;

    fn zone(serial: u32) -> Zone {
        let origin = Name::parse("example.", None).unwrap_or_else(|e| panic!("{e}"));
        let mut z = Zone::new(origin.clone());
        let mut soa = Name::parse("ns.example.", None)
            .unwrap_or_else(|e| panic!("{e}"))
            .as_wire()
            .to_vec();
        soa.extend_from_slice(origin.as_wire());
        for v in [serial, 3600, 600, 86400, 300] {
            soa.extend_from_slice(&v.to_be_bytes());
        }
        let ns = Name::parse("ns.example.", None)
            .unwrap_or_else(|e| panic!("{e}"))
            .as_wire()
            .to_vec();
        let apex = z.nodes.entry(origin).or_default();
        apex.put(RRset {
            rtype: t::SOA,
            ttl: 300,
            rdatas: vec![soa],
        });
        apex.put(RRset {
            rtype: t::NS,
            ttl: 300,
            rdatas: vec![ns],
        });
        z
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("signet-persist-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
        d
    }

    fn serial_in(path: &Path) -> Option<u32> {
        let origin = Name::parse("example.", None).ok()?;
        zonefile::load_zone(path, &origin)
            .ok()
            .and_then(|(z, _)| z.serial())
    }

    #[test]
    fn thresholds() {
        let d = tmpdir("due");
        let mut s = Snapshot::new(&d, SIGNED_SNAPSHOT, "example.");
        s.restored(Some(1), Some(1), 1000);
        assert!(!s.behind());
        assert!(!s.due((100, 1 << 30), true, 5000), "nothing behind");
        assert_eq!(s.next_due(), None);
        s.changed(1000);
        s.changed(1100); // the oldest change counts
        assert_eq!(s.next_due(), Some(1000 + SNAPSHOT_AFTER_SECS));
        assert!(!s.due((SNAPSHOT_AFTER_ENTRIES, 0), false, 1001));
        assert!(s.due((SNAPSHOT_AFTER_ENTRIES + 1, 0), false, 1001));
        assert!(s.due((1, SNAPSHOT_AFTER_BYTES + 1), false, 1001));
        assert!(s.due((1, 0), true, 1001), "journal over its bound");
        assert!(!s.due((1, 0), false, 1000 + SNAPSHOT_AFTER_SECS - 1));
        assert!(s.due((1, 0), false, 1000 + SNAPSHOT_AFTER_SECS));
        // restored behind the journal: due by age from the start
        let mut s = Snapshot::new(&d, SIGNED_SNAPSHOT, "example.");
        s.restored(Some(1), Some(7), 2000);
        assert!(s.behind());
        assert_eq!(s.next_due(), Some(2000 + SNAPSHOT_AFTER_SECS));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn background_then_synchronous_writes_keep_their_order() {
        let d = tmpdir("order");
        let mut s = Snapshot::new(&d, SIGNED_SNAPSHOT, "example.");
        s.changed(10);
        s.start(zone(5));
        assert!(s.behind(), "a job is running");
        assert_eq!(s.next_due(), None, "no schedule entry while a job runs");
        // a synchronous write waits for the job first: the file ends with the newer version
        assert_eq!(s.write_now(&zone(6), 11), Ok(6));
        assert_eq!(serial_in(s.path()), Some(6));
        assert_eq!(s.written(), Some(6));
        assert!(!s.behind());
        // a background write of an older version than this process last wrote is skipped
        s.changed(12);
        s.start(zone(4));
        assert_eq!(s.join(13), None);
        assert_eq!(serial_in(s.path()), Some(6));
        // ... a newer one is written and reported for the pin
        s.changed(14);
        s.start(zone(9));
        assert_eq!(s.join(15), Some(9));
        assert_eq!(serial_in(s.path()), Some(9));
        // no temporary file is left behind
        let left: Vec<String> = std::fs::read_dir(&d)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains("tmp"))
                    .collect()
            })
            .unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_failed_background_write_is_retried_later() {
        let d = tmpdir("fail");
        // the snapshot path is a directory: rename fails
        std::fs::create_dir_all(d.join(SIGNED_SNAPSHOT).join("x"))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut s = Snapshot::new(&d, SIGNED_SNAPSHOT, "example.");
        s.changed(100);
        s.start(zone(3));
        assert_eq!(s.join(200), None);
        assert!(s.behind(), "still behind after the failure");
        assert!(!s.due((1000, 0), true, 200), "not before the retry pause");
        assert!(s.due((1000, 0), true, 200 + SNAPSHOT_RETRY_SECS));
        assert_eq!(s.next_due(), Some(100 + SNAPSHOT_AFTER_SECS));
        assert!(s.write_now(&zone(3), 300).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn stale_temp_files_of_other_processes_are_removed() {
        let d = tmpdir("stale");
        let other = d.join(".signed.zone.999999999.3.tmp");
        let old_style = d.join(".signed.zone.tmp999999999");
        let mine = d.join(format!(".signed.zone.{}.7.tmp", std::process::id()));
        let unrelated = d.join(".ixfr.journal.1.2.tmp");
        for p in [&other, &old_style, &mine, &unrelated] {
            std::fs::write(p, b"x").unwrap_or_else(|e| panic!("{e}"));
        }
        Snapshot::new(&d, SIGNED_SNAPSHOT, "example.").remove_stale_temp_files();
        assert!(!other.exists() && !old_style.exists());
        assert!(mine.exists(), "a job of this process may be writing it");
        assert!(unrelated.exists());
        let _ = std::fs::remove_dir_all(&d);
    }
}
