//! `signet sign-zone`: one-shot signing of a zone file with the zone's policy and keystore, like
//! `dnssec-signzone` or `kzonesign`.
//!
//! Key selection: when the zone has a key state (`keys.json` in its state directory, written by
//! `signet serve`), the keys and their uses are those of its plan — what the running server
//! signs with (CDS/CDNSKEY are not added: the server adds them); otherwise the pre-KASP
//! selection, the newest usable key per policy entry, created if missing.
//! [`load_key_state`] and [`state_dnskeys`] serve `signet ds --offline` the same way.

use super::keys;
use crate::config::Config;
use crate::dns::name::Name;
use crate::signer::{self, verify};
use crate::zonefile;
use std::io::Write;
use std::path::Path;

/// How much of the output is checked before it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyLevel {
    /// Structure only: every authoritative RRset has an RRSIG per algorithm, nothing
    /// non-authoritative is signed, the NSEC chain is closed.
    Structure,
    /// Structure plus the signatures of the apex and of one RRset in [`SAMPLE_EVERY`]
    /// verified cryptographically: catches a wrong key or a wrong signing input at a few
    /// percent of the cost of signing.
    Sample,
    /// Structure plus every signature verified cryptographically (ECDSA verification costs
    /// about three times as much as signing).
    Full,
}

/// One RRset in this many is verified cryptographically by [`VerifyLevel::Sample`].
pub const SAMPLE_EVERY: u64 = 64;

/// What a signing run did, for the log line.
pub struct SignReport {
    pub records_in: usize,
    pub records_out: usize,
    pub serial: u32,
    pub warnings: Vec<String>,
}

/// Signs `input` for zone `zone_name` of `cfg` into `output`.
pub fn sign_zone_file(
    cfg: &Config,
    zone_name: &str,
    input: &Path,
    output: &Path,
    now: u64,
    level: VerifyLevel,
) -> Result<SignReport, Vec<String>> {
    let zcfg = cfg
        .zone(zone_name)
        .ok_or_else(|| vec![format!("zone {zone_name} is not in the configuration")])?;
    let policy = cfg.policy_for(zcfg);
    let origin = Name::parse(&zcfg.name, None).map_err(|e| vec![e])?;
    let mut phases = signer::phase::Phases::new("sign-zone");
    let (mut zone, mut warnings) = zonefile::load_zone(input, &origin)?;
    phases.mark("read");
    let records_in = zone.record_count();
    let stripped = signer::strip_dnssec(&mut zone);
    if !stripped.is_empty() {
        warnings.push(format!(
            "{}: removed DNSSEC records of a previous signer: {}",
            input.display(),
            stripped.join(", ")
        ));
    }
    // the zone's key state when the server keeps one (the same keys, with the same roles, as
    // the running server signs with); else the pre-KASP selection, creating keys if missing
    let active = match load_key_state(cfg, &zcfg.name).map_err(|e| vec![e])? {
        Some(st) => {
            let plan = crate::kasp::plan(&st);
            if plan.unsigned {
                return Err(vec![format!(
                    "zone {}: its key state (keys.json) has no key in use: the zone is served unsigned",
                    zcfg.name
                )]);
            }
            keys::plan_keys(cfg, &zcfg.name, &st, &plan).map_err(|e| vec![e])?
        }
        None => {
            keys::ensure_keys(cfg, zcfg, policy, now, true)
                .map_err(|e| vec![e])?
                .active
        }
    };
    let salt_len = policy.nsec3.as_ref().map(|n| n.salt_length).unwrap_or(0);
    let salt =
        keys::nsec3_salt(&keys::zone_state_dir(cfg, &zcfg.name), salt_len).map_err(|e| vec![e])?;
    let mut params = keys::sign_params(policy, salt);
    params.jitter = signer::effective_jitter(
        params.jitter,
        params.validity,
        policy.signatures_refresh.min(u32::MAX as u64) as u32,
    );
    let signed = signer::sign_zone_owned(zone, &active, &params, now)
        .map_err(|e| vec![format!("zone {}: {e}", zcfg.name)])?;
    phases.mark("sign");
    let every = match level {
        VerifyLevel::Structure => 0,
        VerifyLevel::Sample => SAMPLE_EVERY,
        VerifyLevel::Full => 1,
    };
    // the self-check and the writing of a temporary file run side by side (both only read the
    // signed zone); the output appears under its name only when the check passed
    let (problems, written) = std::thread::scope(|s| {
        let check = s.spawn(|| verify::check_zone_sampled(&signed, now, every));
        let written = write_zone_temp(output, &signed);
        let problems = check
            .join()
            .unwrap_or_else(|_| vec!["the self-check panicked".to_string()]);
        (problems, written)
    });
    phases.mark("verify+write");
    let tmp = written.map_err(|e| vec![format!("{}: {e}", output.display())])?;
    if !problems.is_empty() {
        let _ = std::fs::remove_file(&tmp);
        return Err(problems
            .into_iter()
            .map(|p| format!("zone {}: self-check failed: {p}", zcfg.name))
            .collect());
    }
    commit_temp(&tmp, output).map_err(|e| vec![format!("{}: {e}", output.display())])?;
    let report = SignReport {
        records_in,
        records_out: signed.record_count(),
        serial: signed.serial().unwrap_or(0),
        warnings,
    };
    // sign-zone is a one-shot process about to exit: its memory goes back to the system at
    // once, while freeing a large zone's allocations one by one costs seconds of CPU
    std::mem::forget(signed);
    Ok(report)
}

/// The zone's key state (`keys.json` in its state directory), if it has one: what the running
/// server signs with and asks the parent for. `None` for a zone the server never managed; a
/// state file that cannot be read is an error (guessing could print a wrong DS).
pub fn load_key_state(
    cfg: &Config,
    zone: &str,
) -> Result<Option<crate::kasp::ZoneKeyState>, String> {
    let path = keys::zone_state_dir(cfg, zone).join(keys::KEY_STATE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => crate::kasp::ZoneKeyState::from_json(&text)
            .map(Some)
            .map_err(|e| format!("zone {zone}: {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("zone {zone}: {}: {e}", path.display())),
    }
}

/// The DNSKEY RDATA of `wanted` keys of the zone's key state, from the keystores the state
/// names (public parts only: no private key is loaded).
pub fn state_dnskeys(
    cfg: &Config,
    zone: &str,
    state: &crate::kasp::ZoneKeyState,
    wanted: &[crate::kasp::KeyRef],
) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut listed: Vec<(String, Vec<crate::keystore::StoredKey>)> = Vec::new();
    for k in wanted {
        let entry = state
            .key(*k)
            .ok_or_else(|| format!("zone {zone}: key {k} is not in the key state"))?;
        let idx = match listed.iter().position(|(n, _)| *n == entry.keystore) {
            Some(i) => i,
            None => {
                let ks = keys::open_keystore(cfg, &entry.keystore)?;
                let l = ks
                    .list(zone)
                    .map_err(|e| format!("zone {zone}: keystore {}: {e}", entry.keystore))?;
                listed.push((entry.keystore.clone(), l));
                listed.len() - 1
            }
        };
        let (name, l) = &listed[idx];
        let stored = l
            .iter()
            .find(|s| s.algorithm == k.algorithm && s.tag() == k.tag)
            .ok_or_else(|| format!("zone {zone}: key {k} is missing from keystore {name}"))?;
        out.push(stored.dnskey_rdata());
    }
    Ok(out)
}

/// Writes a zone file via a temporary file, fsync and rename, so a reader never sees half.
pub fn write_zone_atomic(path: &Path, zone: &crate::zone::data::Zone) -> std::io::Result<()> {
    let tmp = write_zone_temp(path, zone)?;
    commit_temp(&tmp, path)
}

fn parent_dir(path: &Path) -> std::path::PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}

/// Writes `zone` to a temporary file beside `path`, fsynced; [`commit_temp`] gives it its name.
/// On error the temporary file is removed.
pub fn write_zone_temp(
    path: &Path,
    zone: &crate::zone::data::Zone,
) -> std::io::Result<std::path::PathBuf> {
    let dir = parent_dir(path);
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "zone".into());
    let tmp = dir.join(format!(".{file_name}.tmp{}", std::process::id()));
    let written = (|| {
        let f = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        zonefile::write_zone(&mut w, zone)?;
        w.flush()?;
        w.get_ref().sync_all()
    })();
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Renames a file written by [`write_zone_temp`] to `path` and syncs the directory.
pub fn commit_temp(tmp: &Path, path: &Path) -> std::io::Result<()> {
    let dir = parent_dir(path);
    std::fs::rename(tmp, path)?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
