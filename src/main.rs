//! The `signet` command line: parse, load the configuration, call into the library.

use clap::{Parser, Subcommand, ValueEnum};
use signet::clock::{Clock, SystemClock};
use signet::zone::offline::{self, VerifyLevel};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "signet", version, about = "A DNSSEC signer in the wire")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Verify {
    /// Structure only (every RRset signed per algorithm, chain closed).
    Structure,
    /// Structure and every signature verified cryptographically.
    Full,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the signer in the foreground.
    Serve {
        #[arg(short, long, default_value = "conf/signet.toml")]
        config: PathBuf,
    },
    /// Validate the configuration and file-sourced zones without serving.
    Check {
        #[arg(short, long, default_value = "conf/signet.toml")]
        config: PathBuf,
    },
    /// Sign a zone file once with the zone's policy and keystore (keys are created if missing).
    SignZone {
        #[arg(short, long, default_value = "conf/signet.toml")]
        config: PathBuf,
        #[arg(long)]
        zone: String,
        #[arg(long = "in")]
        input: PathBuf,
        #[arg(long = "out")]
        output: PathBuf,
        /// How much of the output to verify before writing it.
        #[arg(long, value_enum, default_value = "full")]
        verify: Verify,
        /// Sign as if the time were this (Unix seconds); for reproducible output.
        #[arg(long)]
        time: Option<u64>,
    },
    /// The DS records the parent should hold for the zone's KSK/CSK.
    Ds {
        #[arg(short, long, default_value = "conf/signet.toml")]
        config: PathBuf,
        zone: String,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIGNET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn load_config(path: &std::path::Path) -> Result<signet::config::Config, ExitCode> {
    signet::config::load(path).map_err(|p| {
        eprintln!("{p}");
        ExitCode::FAILURE
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.cmd {
        Cmd::Check { config } => signet::commands::check(&config),
        Cmd::Serve { config } => {
            let cfg = match load_config(&config) {
                Ok(c) => c,
                Err(e) => return e,
            };
            signet::commands::serve(cfg)
        }
        Cmd::SignZone {
            config,
            zone,
            input,
            output,
            verify,
            time,
        } => {
            let cfg = match load_config(&config) {
                Ok(c) => c,
                Err(e) => return e,
            };
            let now = time.unwrap_or_else(|| SystemClock.now());
            let level = match verify {
                Verify::Structure => VerifyLevel::Structure,
                Verify::Full => VerifyLevel::Full,
            };
            match offline::sign_zone_file(&cfg, &zone, &input, &output, now, level) {
                Ok(r) => {
                    for w in &r.warnings {
                        eprintln!("warning: {w}");
                    }
                    eprintln!(
                        "signed {zone}: {} records in, {} out, serial {}",
                        r.records_in, r.records_out, r.serial
                    );
                    ExitCode::SUCCESS
                }
                Err(errs) => {
                    for e in errs {
                        eprintln!("{e}");
                    }
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Ds { config, zone } => {
            let cfg = match load_config(&config) {
                Ok(c) => c,
                Err(e) => return e,
            };
            match signet::commands::ds(&cfg, &zone) {
                Ok(lines) => {
                    for l in lines {
                        println!("{l}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
