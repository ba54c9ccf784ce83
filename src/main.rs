//! The `signet` command line: parse, load the configuration, call into the library.
//!
//! `serve`, `check` and `sign-zone` work on their own. `status`, `keys`, `ds`, `retransfer`,
//! `resign`, `notify` and `reload` talk to the running server over its control socket
//! ([`signet::control`]; the path comes from `-c FILE`'s `[server] control`, or `--socket`) and
//! print what the server reports; `--json` prints the server's answer as it came. They exit 1,
//! with the reason on stderr, when the server answers with an error or cannot be reached.
//! `ds --offline` computes the DS without a server, from the zone's key state (`keys.json`)
//! when it has one, else from the keystore; `keys ZONE --plan` is the offline dry run of the
//! zone's policy ([`signet::control::plan`]).

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;
use signet::clock::{Clock, SystemClock};
use signet::control::client::{self, Client};
use signet::control::{format, plan, Request};
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
    /// Structure, and the signatures of the apex and of one RRset in 64 verified.
    Sample,
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
        #[arg(long, value_enum, default_value = "sample")]
        verify: Verify,
        /// Sign as if the time were this (Unix seconds); for reproducible output.
        #[arg(long)]
        time: Option<u64>,
    },
    /// Per zone: serials, refresh state, upstream expiry, signatures, keys, scheduled events.
    Status {
        #[command(flatten)]
        conn: Conn,
        /// Only this zone (default: every zone).
        zone: Option<String>,
    },
    /// The zone's keys: tag, role, algorithm, keystore, state and timing.
    /// `signet keys import` brings in an existing BIND key pair.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Keys {
        #[command(subcommand)]
        action: Option<KeysCmd>,
        #[command(flatten)]
        conn: Conn,
        #[arg(required = true)]
        zone: Option<String>,
        /// Dry run, offline: print the future schedule of the zone's policy (every key event
        /// with its date) from the zone's key state in the state directory, or from scratch.
        #[arg(long)]
        plan: bool,
        /// With --plan: the horizon, a duration such as 2y or 90d (default 1y; 10y with
        /// --rollovers).
        #[arg(long, requires = "plan")]
        until: Option<String>,
        /// With --plan: end the schedule once the N-th retired key is gone from every cache.
        #[arg(long, requires = "plan")]
        rollovers: Option<usize>,
        /// With --plan: start at this time (Unix seconds) instead of now.
        #[arg(long, requires = "plan")]
        time: Option<u64>,
    },
    /// The DS records the parent should hold now, from the DNSKEY RRset being served.
    Ds {
        #[command(flatten)]
        conn: Conn,
        zone: String,
        /// Do not ask the server: compute the DS from the keystore's active KSK/CSK (for a
        /// zone that is not served yet, e.g. before the first `signet serve`).
        #[arg(long)]
        offline: bool,
    },
    /// Transfer the whole zone from upstream now, then sign it.
    Retransfer {
        #[command(flatten)]
        conn: Conn,
        zone: String,
    },
    /// Re-sign the whole zone now.
    Resign {
        #[command(flatten)]
        conn: Conn,
        zone: String,
    },
    /// Send NOTIFY for the zone to its secondaries now.
    Notify {
        #[command(flatten)]
        conn: Conn,
        zone: String,
    },
    /// Start a key rollover now (also for emergencies): the active keys of the role are
    /// replaced, with the usual safe timing.
    Rollover {
        #[command(flatten)]
        conn: Conn,
        zone: String,
        /// ksk, zsk or csk.
        #[arg(long, value_parser = ["ksk", "zsk", "csk"])]
        role: String,
    },
    /// Tell the signer that the parent now publishes the DS of a key.
    DsSeen {
        #[command(flatten)]
        conn: Conn,
        zone: String,
        /// The key tag.
        #[arg(long)]
        key: u16,
    },
    /// Tell the signer that the parent no longer publishes the DS of a key.
    DsGone {
        #[command(flatten)]
        conn: Conn,
        zone: String,
        /// The key tag.
        #[arg(long)]
        key: u16,
    },
    /// With manual-mode, make the key-state transitions that are due now.
    Step {
        #[command(flatten)]
        conn: Conn,
        zone: String,
    },
    /// Reread the configuration (like SIGHUP).
    Reload {
        #[command(flatten)]
        conn: Conn,
    },
}

/// `signet keys SUBCOMMAND` (a zone named like a subcommand can be written with its trailing
/// dot: `signet keys import.`).
#[derive(Subcommand)]
enum KeysCmd {
    /// Import a BIND key pair (Kname.+alg+tag.private and .key) for the zone, into the keystore
    /// its policy keeps keys of that role in (files or PKCS#11 token), so that signet signs with
    /// it from now on: the zone keeps its DNSKEY set and its DS.
    Import {
        #[arg(short, long, default_value = "conf/signet.toml")]
        config: PathBuf,
        zone: String,
        /// The key's .private file (its .key file must sit beside it).
        key: PathBuf,
        /// The keystore to import into (default: the one the policy names for the key's role).
        #[arg(long)]
        keystore: Option<String>,
        /// Print the stored key's metadata as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// How the operator commands reach the running server.
#[derive(Args)]
struct Conn {
    /// The configuration of the running server (read only to find its control socket).
    #[arg(short, long, default_value = "conf/signet.toml")]
    config: PathBuf,
    /// The control socket, instead of the one named in the configuration.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Print the server's JSON answer (`data`) instead of text.
    #[arg(long)]
    json: bool,
}

impl Conn {
    fn client(&self) -> Result<Client, ExitCode> {
        match &self.socket {
            Some(s) => Ok(Client::new(s).with_config_hint(&self.config)),
            None => {
                let cfg = load_config(&self.config)?;
                Ok(Client::new(&cfg.server.control).with_config_hint(&self.config))
            }
        }
    }

    /// Sends one request and prints the answer: `--json` verbatim, else `human(data)`.
    fn run(&self, cmd: &str, zone: Option<&str>, human: impl Fn(&Value) -> String) -> ExitCode {
        self.run_req(&Request::new(cmd, zone), human)
    }

    /// As [`Conn::run`], with a prepared request.
    fn run_req(&self, req: &Request, human: impl Fn(&Value) -> String) -> ExitCode {
        let cmd = req.cmd.as_str();
        let client = match self.client() {
            Ok(c) => c,
            Err(e) => return e,
        };
        let timeout = match cmd {
            "status" | "keys" | "ds" => client::QUERY_TIMEOUT,
            _ => client::COMMAND_DEADLINE,
        };
        match client.call(req, timeout) {
            Ok(data) => {
                if self.json {
                    println!("{data}");
                } else {
                    print!("{}", human(&data));
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("signet {cmd}: {e}");
                ExitCode::FAILURE
            }
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIGNET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
    // the dry run prints its schedule; the state machine's own log lines would repeat it
    if !matches!(cli.cmd, Cmd::Keys { plan: true, .. }) {
        init_logging();
    }
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
                Verify::Sample => VerifyLevel::Sample,
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
        Cmd::Ds {
            conn,
            zone,
            offline: true,
        } => {
            let cfg = match load_config(&conn.config) {
                Ok(c) => c,
                Err(e) => return e,
            };
            match signet::commands::ds(&cfg, &zone) {
                Ok(records) => {
                    if conn.json {
                        let zone = signet::zone::status::normalise(&zone);
                        println!("{}", serde_json::json!({ "zone": zone, "ds": records }));
                    } else {
                        for r in records {
                            println!("{}", r.record);
                        }
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("signet ds: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Ds { conn, zone, .. } => conn.run("ds", Some(&zone), format::ds),
        Cmd::Status { conn, zone } => conn.run("status", zone.as_deref(), format::status),
        Cmd::Keys {
            action:
                Some(KeysCmd::Import {
                    config,
                    zone,
                    key,
                    keystore,
                    json,
                }),
            ..
        } => {
            let cfg = match load_config(&config) {
                Ok(c) => c,
                Err(e) => return e,
            };
            let now = SystemClock.now();
            match signet::zone::keys::import_bind_key(&cfg, &zone, &key, keystore.as_deref(), now) {
                Ok(imp) => {
                    for w in &imp.warnings {
                        eprintln!("warning: {w}");
                    }
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({ "keystore": imp.keystore, "key": imp.key })
                        );
                    } else {
                        println!(
                            "imported {} as {} (tag {}, algorithm {}) into keystore {}",
                            key.display(),
                            imp.key.role,
                            imp.key.tag,
                            imp.key.algorithm,
                            imp.keystore
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("signet keys import: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Keys {
            conn,
            zone: Some(zone),
            plan: true,
            until,
            rollovers,
            time,
            ..
        } => {
            let cfg = match load_config(&conn.config) {
                Ok(c) => c,
                Err(e) => return e,
            };
            let horizon = match until.as_deref().map(signet::config::parse_duration) {
                None if rollovers.is_some() => plan::MAX_HORIZON,
                None => plan::DEFAULT_HORIZON,
                Some(Ok(h)) => h,
                Some(Err(e)) => {
                    eprintln!("signet keys --plan: --until: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let now = time.unwrap_or_else(|| SystemClock.now());
            match plan::keys_plan(&cfg, &zone, now, horizon, rollovers) {
                Ok(v) => {
                    if conn.json {
                        println!("{v}");
                    } else {
                        print!("{}", plan::format_plan(&v));
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("signet keys --plan: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Keys {
            conn,
            zone: Some(zone),
            ..
        } => conn.run("keys", Some(&zone), format::keys),
        Cmd::Keys { zone: None, .. } => {
            eprintln!("signet keys: a zone name is required");
            ExitCode::FAILURE
        }
        Cmd::Retransfer { conn, zone } => conn.run("retransfer", Some(&zone), |d| {
            format::command("retransfer", d)
        }),
        Cmd::Resign { conn, zone } => {
            conn.run("resign", Some(&zone), |d| format::command("resign", d))
        }
        Cmd::Rollover { conn, zone, role } => {
            let mut req = Request::new("rollover", Some(&zone));
            req.role = Some(role);
            conn.run_req(&req, |d| format::command("rollover", d))
        }
        Cmd::DsSeen { conn, zone, key } => {
            let mut req = Request::new("ds-seen", Some(&zone));
            req.key = Some(key);
            conn.run_req(&req, |d| format::command("ds-seen", d))
        }
        Cmd::DsGone { conn, zone, key } => {
            let mut req = Request::new("ds-gone", Some(&zone));
            req.key = Some(key);
            conn.run_req(&req, |d| format::command("ds-gone", d))
        }
        Cmd::Step { conn, zone } => conn.run_req(&Request::new("step", Some(&zone)), |d| {
            format::command("step", d)
        }),
        Cmd::Notify { conn, zone } => {
            conn.run("notify", Some(&zone), |d| format::command("notify", d))
        }
        Cmd::Reload { conn } => conn.run("reload", None, format::reload),
    }
}
