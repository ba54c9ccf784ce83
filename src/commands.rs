//! The operator commands behind `signet check`, `signet ds` and `signet serve`.

use crate::config::{self, Config, ZoneSource};
use crate::dns::name::Name;
use crate::dns::rdata;
use crate::dns::rtype::t;
use crate::keystore;
use crate::zone::keys;
use crate::zonefile;
use std::path::Path;
use std::process::ExitCode;

/// `signet check -c FILE`: every problem of the configuration and of file-sourced zones, as
/// `FILE:LINE: message` / `zone NAME: message`; exit 1 if there is any.
pub fn check(path: &Path) -> ExitCode {
    let cfg = match config::check(path) {
        Ok(c) => c,
        Err(p) => {
            println!("{p}");
            return ExitCode::FAILURE;
        }
    };
    for w in &cfg.warnings {
        println!("{w}");
    }
    let mut bad = false;
    for z in &cfg.zones {
        let origin = match Name::parse(&z.name, None) {
            Ok(o) => o,
            Err(e) => {
                println!("zone {}: {e}", z.name);
                bad = true;
                continue;
            }
        };
        if let ZoneSource::File(f) = &z.source {
            match zonefile::load_zone(f, &origin) {
                Ok((_, warnings)) => {
                    for w in warnings {
                        println!("{w}");
                    }
                }
                Err(errs) => {
                    bad = true;
                    for e in errs {
                        println!("{e}");
                    }
                }
            }
        }
        let policy = cfg.policy_for(z);
        for spec in &policy.keys {
            if let Err(e) = keys::open_keystore(&cfg, &spec.keystore) {
                println!("zone {}: {e}", z.name);
                bad = true;
            }
        }
    }
    if bad {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `signet ds ZONE`: DS records for the zone's KSK/CSK keys, in presentation format, one per
/// digest type of the policy's `cds-digest-types`. Read from the keystore, which is where the
/// keys really are.
pub fn ds(cfg: &Config, zone: &str) -> Result<Vec<String>, String> {
    let zcfg = cfg
        .zone(zone)
        .ok_or_else(|| format!("zone {zone} is not in the configuration"))?;
    let policy = cfg.policy_for(zcfg);
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let zk = keys::ensure_keys(cfg, zcfg, policy, now, false)?;
    let origin = Name::parse(&zcfg.name, None)?;
    let mut out = Vec::new();
    for k in zk.active.iter().filter(|k| k.signs_keys) {
        for dt in &policy.cds_digest_types {
            let rd = keystore::ds_rdata(&origin.canonical_wire(), &k.dnskey, *dt)
                .ok_or_else(|| format!("digest type {dt} is not supported"))?;
            out.push(format!(
                "{}\t{}\tIN\tDS\t{}",
                origin,
                policy.dnskey_ttl,
                rdata::to_text(t::DS, &rd)
            ));
        }
    }
    Ok(out)
}

/// `signet serve`: run until SIGTERM/SIGINT.
pub fn serve(cfg: Config) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(crate::zone::service::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
