//! The operator commands behind `signet check`, `signet ds` and `signet serve`.

use crate::config::{self, Config, ZoneSource};
use crate::dns::name::Name;
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

/// `signet ds --offline ZONE`: DS records, one per digest type of the policy's
/// `cds-digest-types`, with the policy's DNSKEY TTL. When the zone has a key state (the server
/// manages its keys: `keys.json` in its state directory), for the keys the state wants at the
/// parent — exactly what the running server's `signet ds` prints; otherwise for the active
/// KSK/CSK keys as the keystore holds them (creating keys if there are none, like
/// `sign-zone`). Without `--offline`, `signet ds` asks the running server, which computes them
/// from the DNSKEY RRset it serves ([`crate::control`]).
pub fn ds(cfg: &Config, zone: &str) -> Result<Vec<crate::control::DsRecord>, String> {
    let zcfg = cfg
        .zone(zone)
        .ok_or_else(|| format!("zone {zone} is not in the configuration"))?;
    let policy = cfg.policy_for(zcfg);
    if let Some(st) = crate::zone::offline::load_key_state(cfg, &zcfg.name)? {
        let tags = crate::zone::service::want_ds(&st);
        let wanted: Vec<crate::kasp::KeyRef> = st
            .keys
            .iter()
            .filter(|k| tags.contains(&k.key.tag))
            .map(|k| k.key)
            .collect();
        let dnskeys = crate::zone::offline::state_dnskeys(cfg, &zcfg.name, &st, &wanted)?;
        let origin = Name::parse(&zcfg.name, None)?;
        return crate::control::ds_records(
            &origin,
            u32::try_from(policy.dnskey_ttl).unwrap_or(u32::MAX),
            &dnskeys,
            &policy.cds_digest_types,
        );
    }
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let zk = keys::ensure_keys(cfg, zcfg, policy, now, false)?;
    let origin = Name::parse(&zcfg.name, None)?;
    let dnskeys: Vec<Vec<u8>> = zk
        .active
        .iter()
        .filter(|k| k.signs_keys)
        .map(|k| k.dnskey.clone())
        .collect();
    crate::control::ds_records(
        &origin,
        u32::try_from(policy.dnskey_ttl).unwrap_or(u32::MAX),
        &dnskeys,
        &policy.cds_digest_types,
    )
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
