//! The journal file: format, append with fsync, torn-tail repair, compaction (see the module
//! documentation of [`crate::journal`]).

use super::{apply_in_place, serial_gt, Changeset, History};
use crate::dns::name::Name;
use crate::dns::record::Record;
use crate::zone::data::Zone;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The journal's file name inside the zone's state directory.
pub const JOURNAL_FILE: &str = "ixfr.journal";

/// The file name of the second journal, of the unsigned copy (upstream's versions after
/// stripping), beside `unsigned.zone` ([`Journal::open_file`]).
pub const UNSIGNED_JOURNAL_FILE: &str = "unsigned.journal";

/// Default size bound: 100 MiB, Knot's `journal-max-usage` default. Enough for thousands of
/// small changes or the signature refresh batches of a large zone, while a runaway (a zone
/// that changes completely at every refresh) cannot fill the disk of the state directory.
pub const MAX_BYTES: u64 = 100 * 1024 * 1024;

/// Default depth: 100 changesets. Knot's `journal-max-depth` default of 20 is under a day of
/// hourly signature refresh batches; 100 lets a secondary that was down for four days still
/// catch up with IXFR, and condensing 100 changesets for it is cheap.
pub const MAX_ENTRIES: usize = 100;

/// When a bound is passed, the oldest entries are dropped until the journal is within this
/// percentage of both bounds: the file is rewritten once per many appends, not at every append.
pub const COMPACT_TO_PERCENT: u64 = 75;

const MAGIC: &[u8; 8] = b"SIGNETJ1";
const CHECK_LEN: usize = 16;
/// Entry header: payload length (4) and check (16).
pub(super) const ENTRY_HEAD: usize = 4 + CHECK_LEN;
/// Smallest encoded record: owner (1 + 1), type, class, TTL, RDLENGTH (10).
const MIN_RECORD: usize = 12;

/// How big a journal may grow (see [`MAX_BYTES`], [`MAX_ENTRIES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalLimits {
    /// Octets of the file, header included.
    pub max_bytes: u64,
    /// Changesets kept.
    pub max_entries: usize,
}

impl Default for JournalLimits {
    fn default() -> JournalLimits {
        JournalLimits {
            max_bytes: MAX_BYTES,
            max_entries: MAX_ENTRIES,
        }
    }
}

/// Why a journal operation failed. Damaged journal contents are never an error (they are
/// repaired with a warning); these are I/O failures and changesets that cannot be journaled.
#[derive(Debug)]
pub enum JournalError {
    /// The file or directory could not be read, written or synced.
    Io {
        op: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    /// The changeset does not start where the journal ends: call [`Journal::reset`] with the
    /// serial of the new snapshot first.
    NotChained { last: u32, from: u32 },
    /// The new serial is not after the old one (RFC 1982): secondaries would not transfer it.
    SerialNotIncreasing { from: u32, to: u32 },
    /// The changeset breaks the RFC 1995 shape (see [`Changeset::check`]).
    Malformed(String),
    /// One changeset is larger than the file format allows (4 GiB).
    TooLarge(usize),
}

impl std::fmt::Display for JournalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JournalError::Io { op, path, error } => {
                write!(
                    f,
                    "journal: cannot {op} {}: {error} (check the state directory's permissions and free space)",
                    path.display()
                )
            }
            JournalError::NotChained { last, from } => write!(
                f,
                "journal: the changeset starts at serial {from} but the journal ends at {last} (reset the journal to the new snapshot)"
            ),
            JournalError::SerialNotIncreasing { from, to } => write!(
                f,
                "journal: serial {to} is not after {from} (RFC 1982): secondaries would ignore it"
            ),
            JournalError::Malformed(m) => write!(f, "journal: malformed changeset: {m}"),
            JournalError::TooLarge(n) => {
                write!(f, "journal: a changeset of {n} octets is too large to journal")
            }
        }
    }
}

impl std::error::Error for JournalError {}

fn io_err(op: &'static str, path: &Path, error: std::io::Error) -> JournalError {
    JournalError::Io {
        op,
        path: path.to_path_buf(),
        error,
    }
}

#[derive(Debug)]
struct Entry {
    cs: Arc<Changeset>,
    /// Octets on disk, entry header included.
    size: u64,
}

/// A zone's journal: the changesets of its recent versions, in memory and in
/// `DIR/`[`JOURNAL_FILE`]. Owned by the zone's task (one writer).
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    path: PathBuf,
    /// The file name inside `dir` (temporary files of rewrites are named after it).
    file_name: String,
    origin: Name,
    limits: JournalLimits,
    /// The serial before the first entry (the current one when there is none); `None` for a
    /// journal that has never been written or was found unusable.
    base: Option<u32>,
    entries: Vec<Entry>,
    /// Length of the file as written (0: no file, or it must be rewritten before appending).
    file_len: u64,
    /// The pin ([`Journal::set_keep_from`]): the serial of the snapshot on disk. Compaction
    /// never drops a changeset that leads away from it, since a restart rolls that snapshot
    /// forward with them.
    keep_from: Option<u32>,
}

impl Journal {
    /// Opens (or prepares, without creating anything yet) the journal of `origin` in `dir`
    /// (`DIR/`[`JOURNAL_FILE`]). Damaged contents are repaired with a warning (module
    /// documentation, "Crash safety"); only I/O failures are errors.
    ///
    /// A journal found over its bounds is not compacted here: the pin of the snapshot on disk
    /// ([`Journal::set_keep_from`], set by [`Journal::recover`]) is not known yet, and the
    /// changesets after it must stay. The first append after it compacts.
    pub fn open(dir: &Path, origin: &Name, limits: JournalLimits) -> Result<Journal, JournalError> {
        Journal::open_file(dir, JOURNAL_FILE, origin, limits)
    }

    /// [`Journal::open`] of the file `file_name` in `dir`: the zone task keeps a second
    /// journal, [`UNSIGNED_JOURNAL_FILE`], for its unsigned copy.
    pub fn open_file(
        dir: &Path,
        file_name: &str,
        origin: &Name,
        limits: JournalLimits,
    ) -> Result<Journal, JournalError> {
        let path = dir.join(file_name);
        let mut j = Journal {
            dir: dir.to_path_buf(),
            path: path.clone(),
            file_name: file_name.to_string(),
            origin: origin.to_lowercase(),
            limits,
            base: None,
            entries: Vec::new(),
            file_len: 0,
            keep_from: None,
        };
        remove_stale_temp_files(dir, file_name);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(j),
            Err(e) => return Err(io_err("read", &path, e)),
        };
        let Some((base, mut pos)) = j.parse_header(&data) else {
            tracing::warn!(zone = %origin, path = %path.display(),
                "journal header is damaged or for another zone: starting an empty journal (secondaries will get AXFR once)");
            return Ok(j);
        };
        j.base = base;
        // entries: Some(entry) or None for a damaged one in the middle
        let mut parsed: Vec<Option<Entry>> = Vec::new();
        let mut torn = false;
        while pos < data.len() {
            let rest = &data[pos..];
            let len = match rest.get(..4) {
                Some(b) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize,
                None => {
                    torn = true;
                    break;
                }
            };
            let end = ENTRY_HEAD + len;
            if rest.len() < end {
                torn = true;
                break;
            }
            let ok = check_entry(&rest[..4], &rest[ENTRY_HEAD..end]) == rest[4..ENTRY_HEAD];
            if !ok && pos + end == data.len() {
                torn = true;
                break;
            }
            let entry = if ok {
                match decode_payload(&rest[ENTRY_HEAD..end], &j.origin) {
                    Ok(cs) => Some(Entry {
                        cs: Arc::new(cs),
                        size: end as u64,
                    }),
                    Err(e) => {
                        tracing::warn!(zone = %origin, offset = pos, error = %e, "journal entry does not decode: dropped");
                        None
                    }
                }
            } else {
                tracing::warn!(zone = %origin, offset = pos, "journal entry fails its check (damaged on disk): dropped");
                None
            };
            parsed.push(entry);
            pos += end;
        }
        let valid_end = pos as u64;
        // the longest suffix of good, chained entries that reaches the end
        let mut start = parsed.len();
        while start > 0 {
            let Some(e) = &parsed[start - 1] else { break };
            if start < parsed.len() {
                if let Some(next) = &parsed[start] {
                    if e.cs.to != next.cs.from {
                        break;
                    }
                }
            }
            start -= 1;
        }
        let dropped = start;
        let entries: Vec<Entry> = parsed.into_iter().skip(start).flatten().collect();
        if dropped > 0 {
            tracing::warn!(zone = %origin, dropped, kept = entries.len(),
                "journal: damaged or unchained entries; keeping the valid newest ones");
        }
        if let Some(first) = entries.first() {
            if j.base != Some(first.cs.from) {
                if dropped == 0 {
                    tracing::warn!(zone = %origin, base = ?j.base, first = first.cs.from,
                        "journal: base serial does not match the first entry; using the entry's");
                }
                j.base = Some(first.cs.from);
            }
        } else if dropped > 0 {
            // nothing usable: the last good entry's serial is still the best knowledge of the
            // last version, but without a chain it serves no IXFR
            j.base = None;
        }
        j.entries = entries;
        if dropped > 0 {
            // rewrite with the kept entries; if that fails, the next append rewrites (file_len 0)
            j.file_len = 0;
            if let Err(e) = j.rewrite() {
                tracing::warn!(zone = %origin, error = %e,
                    "journal: rewriting the repaired journal failed; the next append rewrites it");
            }
        } else {
            if torn {
                tracing::warn!(zone = %origin, path = %path.display(), offset = valid_end,
                    file_len = data.len(), "journal: torn last entry (interrupted write) truncated away");
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| io_err("open", &path, e))?;
                f.set_len(valid_end)
                    .map_err(|e| io_err("truncate", &path, e))?;
                f.sync_all().map_err(|e| io_err("fsync", &path, e))?;
            }
            j.file_len = valid_end;
        }
        Ok(j)
    }

    /// The journal's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The serial of the last journaled version, if any.
    pub fn last_serial(&self) -> Option<u32> {
        self.entries.last().map(|e| e.cs.to).or(self.base)
    }

    /// The oldest serial an IXFR can start from.
    pub fn first_serial(&self) -> Option<u32> {
        self.entries.first().map(|e| e.cs.from)
    }

    /// Pins the journal to the snapshot on disk: compaction never drops a changeset from
    /// `serial` on (they are what a restart applies to that snapshot), even when that holds
    /// the journal above its bounds ([`Journal::over_limits`] then says so: write a newer
    /// snapshot and move the pin). `None` removes the pin (every changeset may be dropped).
    /// [`Journal::recover`] and [`Journal::reset`] set it to the snapshot's serial.
    pub fn set_keep_from(&mut self, serial: Option<u32>) {
        self.keep_from = serial;
    }

    /// The pin (see [`Journal::set_keep_from`]).
    pub fn keep_from(&self) -> Option<u32> {
        self.keep_from
    }

    /// The changesets after the pin (all of them without one) and their octets on disk: what
    /// a restart would have to apply to the snapshot.
    pub fn since_keep(&self) -> (usize, u64) {
        let start = self.pin_index().unwrap_or(0);
        let rest = &self.entries[start..];
        (rest.len(), rest.iter().map(|e| e.size).sum())
    }

    /// Whether the journal is above one of its bounds (only possible while the pin holds
    /// changesets that compaction would otherwise drop, or after a failed compaction).
    pub fn over_limits(&self) -> bool {
        self.entries.len() > self.limits.max_entries || self.file_len > self.limits.max_bytes
    }

    /// Number of changesets.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Octets of the file.
    pub fn size(&self) -> u64 {
        self.file_len
    }

    /// The changesets from `serial` to the newest, or `None` when the journal does not cover
    /// `serial`. `Some(empty)` when `serial` is the last serial.
    pub fn since(&self, serial: u32) -> Option<Vec<Arc<Changeset>>> {
        if self.last_serial() == Some(serial) {
            return Some(Vec::new());
        }
        let start = self.entries.iter().rposition(|e| e.cs.from == serial)?;
        Some(self.entries[start..].iter().map(|e| e.cs.clone()).collect())
    }

    /// The history for the publisher (`Served::with_history`).
    pub fn history(&self) -> History {
        History::new(self.entries.iter().map(|e| e.cs.clone()).collect())
    }

    /// Appends `cs` and fsyncs before returning (call it before the new version is served or
    /// NOTIFYed). Then drops the oldest entries if a bound is passed. `cs.from` must be the
    /// last serial (unless the journal is new).
    pub fn append(&mut self, cs: &Changeset) -> Result<(), JournalError> {
        cs.check().map_err(JournalError::Malformed)?;
        if !serial_gt(cs.to, cs.from) {
            return Err(JournalError::SerialNotIncreasing {
                from: cs.from,
                to: cs.to,
            });
        }
        if let Some(last) = self.last_serial() {
            if last != cs.from {
                return Err(JournalError::NotChained {
                    last,
                    from: cs.from,
                });
            }
        }
        let payload = encode_payload(cs);
        if payload.len() > u32::MAX as usize {
            return Err(JournalError::TooLarge(payload.len()));
        }
        let mut entry = Vec::with_capacity(ENTRY_HEAD + payload.len());
        entry.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        let check = check_entry(&entry[..4], &payload);
        entry.extend_from_slice(&check);
        entry.extend_from_slice(&payload);
        drop(payload);
        let size = entry.len() as u64;
        let new = Entry {
            cs: Arc::new(cs.clone()),
            size,
        };
        if self.file_len == 0 {
            // no file yet (or one to replace): header and entry in one crash-safe rewrite
            let old_base = self.base;
            if self.entries.is_empty() {
                self.base = Some(cs.from);
            }
            self.entries.push(new);
            if let Err(e) = self.rewrite() {
                self.entries.pop();
                self.base = old_base;
                return Err(e);
            }
        } else {
            self.append_bytes(&entry)?;
            self.file_len += size;
            self.entries.push(new);
        }
        if self.over_limits() {
            self.compact_or_warn();
        }
        Ok(())
    }

    /// Empties the history: the zone is now at `serial` with no journaled past (a new snapshot
    /// whose serial does not follow the journal, e.g. a full re-sign after a restart). Crash-safe
    /// rewrite.
    pub fn reset(&mut self, serial: u32) -> Result<(), JournalError> {
        let old = (self.base, std::mem::take(&mut self.entries));
        self.base = Some(serial);
        if let Err(e) = self.rewrite() {
            self.base = old.0;
            self.entries = old.1;
            return Err(e);
        }
        self.keep_from = Some(serial);
        tracing::info!(zone = %self.origin, serial, "journal reset: IXFR history starts here");
        Ok(())
    }

    /// At start: the version to serve from the snapshot and the journal. When the journal goes
    /// on from the snapshot's serial (the journal is written before the snapshot), its
    /// changesets are applied; when it ends at the snapshot's serial, the snapshot is it;
    /// otherwise (no journal, or one that does not connect or does not apply) the journal is
    /// reset to the snapshot's serial, with a warning.
    pub fn recover(&mut self, snapshot: Zone) -> Result<Zone, JournalError> {
        let Some(serial) = snapshot.serial() else {
            return Ok(snapshot);
        };
        if self.last_serial() == Some(serial) {
            self.keep_from = Some(serial);
            return Ok(snapshot);
        }
        if let Some(chain) = self.since(serial) {
            let mut z = snapshot.clone();
            let applied = chain.iter().try_for_each(|cs| apply_in_place(&mut z, cs));
            match applied {
                Ok(()) => {
                    tracing::info!(zone = %self.origin, snapshot = serial, serial = ?z.serial(), changesets = chain.len(),
                        "journal: applied the changesets newer than the snapshot");
                    self.keep_from = Some(serial);
                    return Ok(z);
                }
                Err(e) => tracing::warn!(zone = %self.origin, error = %e,
                    "journal: the changesets after the snapshot do not apply; resetting it"),
            }
        } else if self.last_serial().is_some() {
            tracing::warn!(zone = %self.origin, snapshot = serial, journal = ?self.last_serial(),
                "journal does not connect to the snapshot; resetting it (secondaries will get AXFR once)");
        }
        self.reset(serial)?;
        Ok(snapshot)
    }

    // ----------------------------------------------------------------------- internals

    fn header(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(8 + 1 + 4 + 1 + 255 + CHECK_LEN);
        h.extend_from_slice(MAGIC);
        h.push(u8::from(self.base.is_some()));
        h.extend_from_slice(&self.base.unwrap_or(0).to_be_bytes());
        let o = self.origin.as_wire();
        h.push(o.len() as u8);
        h.extend_from_slice(o);
        let check = truncated_sha256(&[&h]);
        h.extend_from_slice(&check);
        h
    }

    /// (base serial, position after the header), or `None` when the header is unusable.
    fn parse_header(&self, data: &[u8]) -> Option<(Option<u32>, usize)> {
        if data.get(..8)? != MAGIC {
            return None;
        }
        let flags = *data.get(8)?;
        let base = u32::from_be_bytes(data.get(9..13)?.try_into().ok()?);
        let olen = *data.get(13)? as usize;
        let owire = data.get(14..14 + olen)?;
        let end = 14 + olen;
        let check = data.get(end..end + CHECK_LEN)?;
        if truncated_sha256(&[&data[..end]]) != check {
            return None;
        }
        let origin = Name::from_wire(owire).ok()?;
        if origin != self.origin {
            return None;
        }
        Some(((flags & 1 == 1).then_some(base), end + CHECK_LEN))
    }

    /// How many of the oldest entries compaction may drop: those before the pin's changeset
    /// (all with no pin or a pin at the last serial; none when the pin is not found, which
    /// cannot happen while the snapshot and the journal agree: keeping everything is safe).
    fn droppable(&self) -> usize {
        self.pin_index().unwrap_or(self.entries.len())
    }

    /// The index of the first entry the pin keeps (the one starting at the pinned serial; the
    /// length when the pin is at the last serial; 0 when the pin is not found): None without
    /// a pin.
    fn pin_index(&self) -> Option<usize> {
        let k = self.keep_from?;
        Some(if self.last_serial() == Some(k) {
            self.entries.len()
        } else {
            self.entries
                .iter()
                .rposition(|e| e.cs.from == k)
                .unwrap_or(0)
        })
    }

    /// Drops the oldest entries to [`COMPACT_TO_PERCENT`] of the bounds (never past the pin)
    /// and rewrites the file. A failure is logged, not returned: the entries are already
    /// durable, the file is only bigger than wished, and the next append tries again.
    fn compact_or_warn(&mut self) {
        let max_entries = (self.limits.max_entries as u64 * COMPACT_TO_PERCENT / 100) as usize;
        let max_bytes = self.limits.max_bytes.saturating_mul(COMPACT_TO_PERCENT) / 100;
        let header = self.header().len() as u64;
        let mut bytes: u64 = header + self.entries.iter().map(|e| e.size).sum::<u64>();
        let mut drop_n = 0;
        let droppable = self.droppable();
        while drop_n < droppable && (self.entries.len() - drop_n > max_entries || bytes > max_bytes)
        {
            bytes -= self.entries[drop_n].size;
            drop_n += 1;
        }
        if drop_n == 0 {
            // the pin holds every entry: rewriting would only cost time at every append
            tracing::debug!(zone = %self.origin, entries = self.entries.len(), bytes = self.file_len,
                keep_from = ?self.keep_from, "journal over its bound, held by the snapshot pin");
            return;
        }
        let before = self.entries.len();
        let removed: Vec<Entry> = self.entries.drain(..drop_n).collect();
        let new_base = self
            .entries
            .first()
            .map(|e| e.cs.from)
            .or_else(|| removed.last().map(|e| e.cs.to))
            .or(self.base);
        let old_base = std::mem::replace(&mut self.base, new_base);
        match self.rewrite() {
            Ok(()) => {
                if drop_n > 0 {
                    tracing::info!(zone = %self.origin, dropped = drop_n, kept = self.entries.len(),
                        bytes = self.file_len, oldest = ?self.first_serial(), "journal compacted");
                }
            }
            Err(e) => {
                // put the in-memory view back in step with the file
                let mut all = removed;
                all.append(&mut self.entries);
                self.entries = all;
                self.base = old_base;
                tracing::warn!(zone = %self.origin, entries = before, error = %e,
                    "journal compaction failed; the journal stays over its bound until the next append");
            }
        }
    }

    /// Writes header and entries to a temporary file, fsyncs it, renames it over the journal
    /// and fsyncs the directory.
    fn rewrite(&mut self) -> Result<(), JournalError> {
        let mut data = self.header();
        for e in &self.entries {
            let payload = encode_payload(&e.cs);
            let len = (payload.len() as u32).to_be_bytes();
            data.extend_from_slice(&len);
            data.extend_from_slice(&check_entry(&len, &payload));
            data.extend_from_slice(&payload);
        }
        fs::create_dir_all(&self.dir).map_err(|e| io_err("create directory", &self.dir, e))?;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir.join(format!(
            ".{}.{}.{n}.tmp",
            self.file_name,
            std::process::id()
        ));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| io_err("create", &tmp, e))?;
            f.write_all(&data).map_err(|e| io_err("write", &tmp, e))?;
            f.sync_all().map_err(|e| io_err("fsync", &tmp, e))?;
            drop(f);
            fs::rename(&tmp, &self.path).map_err(|e| io_err("rename into place", &self.path, e))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("fsync directory", &self.dir, e))?;
        self.file_len = data.len() as u64;
        Ok(())
    }

    /// Appends one encoded entry and fdatasyncs. On failure the file is cut back to its
    /// previous length, so that a half-written entry does not sit before the next one.
    fn append_bytes(&mut self, entry: &[u8]) -> Result<(), JournalError> {
        let mut f = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| io_err("open", &self.path, e))?;
        let r = f
            .write_all(entry)
            .map_err(|e| io_err("write", &self.path, e))
            .and_then(|()| f.sync_data().map_err(|e| io_err("fsync", &self.path, e)));
        if r.is_err() {
            let _ = f.set_len(self.file_len).and_then(|()| f.sync_data());
        }
        r
    }
}

/// Removes temporary files of rewrites that a crash interrupted (they were never renamed into
/// place, so they hold nothing the journal needs).
fn remove_stale_temp_files(dir: &Path, file_name: &str) {
    let Ok(rd) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{file_name}.");
    for e in rd.flatten() {
        let n = e.file_name();
        let n = n.to_string_lossy();
        if n.starts_with(&prefix) && n.ends_with(".tmp") {
            let _ = fs::remove_file(e.path());
        }
    }
}

fn truncated_sha256(parts: &[&[u8]]) -> [u8; CHECK_LEN] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let d = ctx.finish();
    let mut out = [0u8; CHECK_LEN];
    out.copy_from_slice(&d.as_ref()[..CHECK_LEN]);
    out
}

fn check_entry(len: &[u8], payload: &[u8]) -> [u8; CHECK_LEN] {
    truncated_sha256(&[len, payload])
}

fn encode_payload(cs: &Changeset) -> Vec<u8> {
    let size: usize = cs
        .removed
        .iter()
        .chain(cs.added.iter())
        .map(|r| MIN_RECORD - 1 + r.owner.wire_len() + r.rdata.len())
        .sum();
    let mut out = Vec::with_capacity(16 + size);
    out.extend_from_slice(&cs.from.to_be_bytes());
    out.extend_from_slice(&cs.to.to_be_bytes());
    out.extend_from_slice(&(cs.removed.len() as u32).to_be_bytes());
    out.extend_from_slice(&(cs.added.len() as u32).to_be_bytes());
    for r in cs.removed.iter().chain(cs.added.iter()) {
        let o = r.owner.as_wire();
        out.push(o.len() as u8);
        out.extend_from_slice(o);
        out.extend_from_slice(&r.rtype.to_be_bytes());
        out.extend_from_slice(&r.class.to_be_bytes());
        out.extend_from_slice(&r.ttl.to_be_bytes());
        // RDATA of a record in a zone is at most 65535 octets (it came from a message or a
        // zone file through the same codecs)
        out.extend_from_slice(&(r.rdata.len().min(u16::MAX as usize) as u16).to_be_bytes());
        out.extend_from_slice(&r.rdata[..r.rdata.len().min(u16::MAX as usize)]);
    }
    out
}

/// Reads `n` octets at `*pos`.
fn take<'a>(buf: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], String> {
    let end = pos
        .checked_add(n)
        .filter(|&e| e <= buf.len())
        .ok_or("payload ends early")?;
    let s = &buf[*pos..end];
    *pos = end;
    Ok(s)
}

fn u32_at(buf: &[u8], pos: &mut usize) -> Result<u32, String> {
    let b = take(buf, pos, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn u16_at(buf: &[u8], pos: &mut usize) -> Result<u16, String> {
    let b = take(buf, pos, 2)?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

fn decode_payload(buf: &[u8], origin: &Name) -> Result<Changeset, String> {
    let mut pos = 0;
    let from = u32_at(buf, &mut pos)?;
    let to = u32_at(buf, &mut pos)?;
    let nr = u32_at(buf, &mut pos)? as usize;
    let na = u32_at(buf, &mut pos)? as usize;
    // counts are checked against the payload before anything is allocated
    let room = (buf.len() - pos) / MIN_RECORD;
    if nr.saturating_add(na) > room {
        return Err(format!(
            "{nr} + {na} records cannot fit in {} octets",
            buf.len()
        ));
    }
    let mut read = |n: usize| -> Result<Vec<Record>, String> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let olen = take(buf, &mut pos, 1)?[0] as usize;
            let owner = Name::from_wire(take(buf, &mut pos, olen)?)?;
            if !owner.is_subdomain_of(origin) {
                return Err(format!("record owner {owner} is outside the zone {origin}"));
            }
            let rtype = u16_at(buf, &mut pos)?;
            let class = u16_at(buf, &mut pos)?;
            let ttl = u32_at(buf, &mut pos)?;
            let rdlen = u16_at(buf, &mut pos)? as usize;
            let rdata = take(buf, &mut pos, rdlen)?.to_vec();
            v.push(Record {
                owner,
                rtype,
                class,
                ttl,
                rdata,
            });
        }
        Ok(v)
    };
    let removed = read(nr)?;
    let added = read(na)?;
    if pos != buf.len() {
        return Err("trailing octets after the records".into());
    }
    let cs = Changeset {
        from,
        to,
        removed,
        added,
    };
    cs.check()?;
    Ok(cs)
}
