//! `signet sign-zone`: one-shot signing of a zone file with the zone's policy and keystore, like
//! `dnssec-signzone` or `kzonesign`.

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
    let zk = keys::ensure_keys(cfg, zcfg, policy, now, true).map_err(|e| vec![e])?;
    let salt_len = policy.nsec3.as_ref().map(|n| n.salt_length).unwrap_or(0);
    let salt =
        keys::nsec3_salt(&keys::zone_state_dir(cfg, &zcfg.name), salt_len).map_err(|e| vec![e])?;
    let mut params = keys::sign_params(policy, salt);
    params.jitter = signer::effective_jitter(
        params.jitter,
        params.validity,
        policy.signatures_refresh.min(u32::MAX as u64) as u32,
    );
    let signed = signer::sign_zone_owned(zone, &zk.active, &params, now)
        .map_err(|e| vec![format!("zone {}: {e}", zcfg.name)])?;
    phases.mark("sign");
    let every = match level {
        VerifyLevel::Structure => 0,
        VerifyLevel::Sample => SAMPLE_EVERY,
        VerifyLevel::Full => 1,
    };
    let problems = verify::check_zone_sampled(&signed, now, every);
    phases.mark("verify");
    if !problems.is_empty() {
        return Err(problems
            .into_iter()
            .map(|p| format!("zone {}: self-check failed: {p}", zcfg.name))
            .collect());
    }
    write_zone_atomic(output, &signed).map_err(|e| vec![format!("{}: {e}", output.display())])?;
    phases.mark("write");
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

/// Writes a zone file via a temporary file, fsync and rename, so a reader never sees half.
pub fn write_zone_atomic(path: &Path, zone: &crate::zone::data::Zone) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "zone".into());
    let tmp = dir.join(format!(".{file_name}.tmp{}", std::process::id()));
    {
        let f = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        zonefile::write_zone(&mut w, zone)?;
        w.flush()?;
        w.get_ref().sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
