//! The control socket: how `signet status`, `keys`, `ds`, `retransfer`, `resign`, `notify`,
//! `rollover`, `ds-seen`, `ds-gone`, `step` and `reload` talk to a running `signet serve`.
//!
//! # Protocol
//!
//! A Unix stream socket at `[server] control` (default `<state-dir>/control.sock`), mode 0600:
//! whoever may use it may operate the signer, exactly like BIND's rndc key or Knot's control
//! socket. On it, **one JSON request per line, one JSON response per line**, in order; a client
//! may send several requests on one connection (the CLI sends one and closes).
//!
//! ```text
//! → {"cmd":"status","zone":null}
//! ← {"ok":true,"data":{"now":1704067200,"zones":[{"zone":"example.org.","signed_serial":7,…}]}}
//! → {"cmd":"resign","zone":"example.org"}
//! ← {"ok":true,"data":{"zone":"example.org.","result":"serial 8","status":{…}}}
//! → {"cmd":"keys","zone":"nope.example"}
//! ← {"ok":false,"error":"zone nope.example. is not configured"}
//! ```
//!
//! | `cmd` | `zone` | `data` |
//! |---|---|---|
//! | `status` | optional | `{"now", "zones": [ZoneStatus…]}`: every zone, or just the one named |
//! | `keys` | required | `{"zone", "now", "keys": [KeyStatus…], "waiting_for"}`; each key with its records' states, goal, timeline and `next` transition |
//! | `ds` | required | `{"zone", "ds": [{"tag", "algorithm", "digest_type", "digest", "ttl", "record"}…]}` |
//! | `retransfer`, `resign`, `notify`, `step` | required | `{"zone", "result", "status": ZoneStatus}` |
//! | `rollover` (+ `"role": "ksk"\|"zsk"\|"csk"`) | required | the same |
//! | `ds-seen`, `ds-gone` (+ `"key": TAG`) | required | the same; an unknown key is an error |
//! | `reload` | ignored | `{"result"}` |
//!
//! `now` is the server's clock (Unix seconds), so that a client shows relative times ("in 45m")
//! against the clock the zone tasks run on, not its own. Every answer is read from the running
//! state — the zone tasks' [`ZoneStatus`] watch channels, the [`Publisher`]'s served zones, the
//! zone task's reply to a [`ZoneCmd`](crate::zone::status::ZoneCmd) — never echoed from the
//! request: `resign` answers once the zone task has re-signed (or failed), with the status it
//! published afterwards. `ds` prints what the parent should hold now: the DS of the keys of the
//! key state's plan (`KeyPlan::want_ds`; for a zone whose first DS is not requested yet, its
//! KSK/CSK), computed from the DNSKEY RRset **as served now** (keys with the SEP bit, not
//! revoked, one DS per digest type of the policy's `cds-digest-types`), because that is what a
//! validator sees and what the parent's DS must match. `keys` also carries `waiting_for`, what
//! the key state machine waits for.
//!
//! # Why JSON lines
//!
//! Newline-delimited JSON is trivially framed (read to `\n`), bounded (a maximum line length
//! is one number), debuggable with `socat - UNIX-CONNECT:state/control.sock`, and the same
//! document the CLI prints with `--json`, so scripts see exactly what the server sent. serde_json
//! escapes control characters, so a response is always exactly one line.
//!
//! # Limits
//!
//! A request line is at most [`MAX_REQUEST_LINE`] bytes (a longer one is answered with an error
//! and the connection closed: it cannot be resynchronised); a request must arrive within
//! [`READ_TIMEOUT`]; a zone command or reload waits at most [`COMMAND_TIMEOUT`] for the outcome;
//! a response must be written within [`WRITE_TIMEOUT`]; a connection lives at most
//! [`CONNECTION_TIMEOUT`]; at most [`MAX_CONNECTIONS`] connections are served at once (one more
//! is told so and closed). Malformed JSON, unknown commands, missing zones: an
//! `{"ok":false,"error":…}` line, never a panic. The limits are [`Limits`], whose `Default` is
//! these constants (tests use shorter ones).
//!
//! # Wiring (`signet serve`)
//!
//! ```ignore
//! // before the zones load, so that a bad socket path is a one-line startup error
//! let control = ControlServer::bind(&cfg.server.control)?;
//! let registry = Arc::new(Registry::new());            // zone tasks insert their handles
//! let (cfg_tx, cfg_rx) = watch::channel(cfg.clone());  // Arc<Config>; send_replace() on reload
//! let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(4);
//! let ctx = Arc::new(ControlContext { registry, publisher, config: cfg_rx, reload: reload_tx });
//! let control_task = tokio::spawn(control.run(ctx, stop_rx.clone())); // stop: watch<bool>
//! // the reload task (SIGHUP does the same without a reply):
//! // while let Some(reply) = reload_rx.recv().await { let _ = reply.send(do_reload().await); }
//! ```
//!
//! A zone task must publish its new [`ZoneStatus`] *before* it answers a command, so that the
//! status returned with the answer is the state the command reached. Nobody answering a
//! reload request means `signet reload` fails after [`COMMAND_TIMEOUT`].

pub mod client;
pub mod format;
pub mod plan;

use crate::config::Config;
use crate::dns::name::Name;
use crate::dns::rdata;
use crate::dns::rtype::t;
use crate::keystore;
use crate::publisher::Publisher;
use crate::zone::status::{normalise, Registry, ZoneCmdKind, ZoneStatus};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

/// Longest request line accepted, newline included. A request is a command and a zone name
/// (at most 255 octets, 4 × that escaped); 64 KiB is far above any honest request and small
/// enough that a misbehaving client cannot make the server buffer much.
pub const MAX_REQUEST_LINE: usize = 64 * 1024;

/// How long the server waits for a (next) request line on a connection before closing it:
/// a client that connects and says nothing must not hold a connection slot.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a zone command (`retransfer`, `resign`, `notify`) or `reload` may take before the
/// server answers with an error (the zone task carries on; `signet status` shows the outcome).
/// Long enough for a full transfer and re-sign of a large zone.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// How long writing one response may take (a client that does not read is dropped).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a single connection is served, whatever it does; above [`COMMAND_TIMEOUT`] so
/// that one slow command still gets its answer.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(600);

/// Connections served at once. Operator commands are rare and short; a 17th concurrent client
/// (a runaway monitoring loop) gets an error line instead of queueing without bound.
pub const MAX_CONNECTIONS: usize = 16;

/// The bounds of a control server; `Limits::default()` is the constants of this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_request_line: usize,
    pub read_timeout: Duration,
    pub command_timeout: Duration,
    pub write_timeout: Duration,
    pub connection_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_request_line: MAX_REQUEST_LINE,
            read_timeout: READ_TIMEOUT,
            command_timeout: COMMAND_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
            connection_timeout: CONNECTION_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// One request line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// `status`, `keys`, `ds`, `retransfer`, `resign`, `notify`, `reload`.
    pub cmd: String,
    /// The zone (any case, trailing dot optional); `null`/absent for all zones or none.
    #[serde(default)]
    pub zone: Option<String>,
    /// `rollover`: the role to roll (`ksk`, `zsk`, `csk`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `ds-seen`, `ds-gone`: the key tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<u16>,
}

impl Request {
    pub fn new(cmd: &str, zone: Option<&str>) -> Request {
        Request {
            cmd: cmd.to_string(),
            zone: zone.map(str::to_string),
            role: None,
            key: None,
        }
    }
}

/// One response line: `{"ok":true,"data":…}` or `{"ok":false,"error":"…"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    pub fn data(data: Value) -> Response {
        Response {
            ok: true,
            data: Some(data),
            error: None,
        }
    }

    pub fn error(e: impl Into<String>) -> Response {
        Response {
            ok: false,
            data: None,
            error: Some(e.into()),
        }
    }

    /// The response as one line, newline included.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"ok":false,"error":"cannot encode the response"}"#.to_string());
        s.push('\n');
        s
    }
}

/// A reload request: the reload task answers on it with the outcome (`Ok(summary)` or the
/// reason the new configuration was refused).
pub type ReloadRequest = oneshot::Sender<Result<String, String>>;

/// What the control server reads and commands.
pub struct ControlContext {
    /// The zone tasks: status and commands.
    pub registry: Arc<Registry>,
    /// The zones as served (for `ds`) and the clock the server runs on (`now`).
    pub publisher: Arc<Publisher>,
    /// The current configuration (for `ds`: the zone's `cds-digest-types`). The reload task
    /// replaces it (`send_replace`) when a new configuration is accepted.
    pub config: watch::Receiver<Arc<Config>>,
    /// Where `reload` requests go.
    pub reload: mpsc::Sender<ReloadRequest>,
}

/// A bound control socket, not yet serving.
pub struct ControlServer {
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
    /// (device, inode) of the socket we created, so that shutdown removes ours and not a
    /// successor's.
    id: Option<(u64, u64)>,
    limits: Limits,
}

/// Longest path a Unix socket address holds (`sun_path` is 108 bytes with the final NUL).
const MAX_SOCKET_PATH: usize = 107;

impl ControlServer {
    /// Creates the socket at `path`: the parent directory is created if missing; a stale socket
    /// (one nobody answers on) is removed; a live one (another signet) or a non-socket file at
    /// `path` is an error. The socket is bound under a temporary name, set to mode 0600, then
    /// renamed into place, so it is never reachable with wider permissions. Does not need a
    /// runtime. Errors are one line, naming the path.
    pub fn bind(path: &Path) -> Result<ControlServer, String> {
        let shown = path.display();
        if path.as_os_str().len() + 12 > MAX_SOCKET_PATH {
            return Err(format!(
                "control socket {shown}: path too long for a Unix socket (at most {} bytes)",
                MAX_SOCKET_PATH - 12
            ));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("control socket {shown}: cannot create its directory: {e}"))?;
        }
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => {
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(format!(
                        "control socket {shown}: another signet is already listening on it"
                    ));
                }
                std::fs::remove_file(path).map_err(|e| {
                    format!("control socket {shown}: cannot remove the stale socket: {e}")
                })?;
                tracing::info!(path = %shown, "removed a stale control socket");
            }
            Ok(_) => {
                return Err(format!(
                    "control socket {shown}: exists and is not a socket; not touching it"
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("control socket {shown}: {e}")),
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        let listener = std::os::unix::net::UnixListener::bind(&tmp)
            .map_err(|e| format!("control socket {shown}: cannot bind: {e}"))?;
        let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .and_then(|_| std::fs::rename(&tmp, path));
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("control socket {shown}: {e}"));
        }
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("control socket {shown}: {e}"))?;
        let id = std::fs::symlink_metadata(path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        Ok(ControlServer {
            listener,
            path: path.to_path_buf(),
            id,
            limits: Limits::default(),
        })
    }

    /// Replaces the default [`Limits`].
    pub fn with_limits(mut self, limits: Limits) -> ControlServer {
        self.limits = limits;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves connections until `shutdown` becomes `true` (or its sender is dropped), then
    /// removes the socket file (if it is still ours). Each connection runs in its own task.
    pub async fn run(self, ctx: Arc<ControlContext>, mut shutdown: watch::Receiver<bool>) {
        let ControlServer {
            listener,
            path,
            id,
            limits,
        } = self;
        let listener = match UnixListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "control socket unusable");
                return;
            }
        };
        tracing::info!(path = %path.display(), "control socket listening");
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        loop {
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                r = shutdown.changed() => {
                    if r.is_err() {
                        break;
                    }
                }
                a = listener.accept() => match a {
                    Ok((stream, _)) => match slots.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let ctx = ctx.clone();
                            tokio::spawn(async move {
                                let _ = tokio::time::timeout(
                                    limits.connection_timeout,
                                    connection(stream, &ctx, &limits),
                                )
                                .await;
                                drop(permit);
                            });
                        }
                        Err(_) => {
                            // one short line into an empty socket buffer: never blocks
                            let line = Response::error(format!(
                                "too many control connections (at most {}); try again",
                                limits.max_connections
                            ))
                            .to_line();
                            let _ = stream.try_write(line.as_bytes());
                        }
                    },
                    Err(e) => {
                        // EMFILE and friends: do not spin
                        tracing::warn!(error = %e, "control socket: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        let ours = std::fs::symlink_metadata(&path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if ours.is_some() && ours == id {
            let _ = std::fs::remove_file(&path);
        }
        tracing::info!(path = %path.display(), "control socket closed");
    }
}

/// [`ControlServer::bind`] then [`ControlServer::run`]: for callers that do not need to report
/// a bind failure before other work starts.
pub async fn serve(
    path: &Path,
    ctx: Arc<ControlContext>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    ControlServer::bind(path)?.run(ctx, shutdown).await;
    Ok(())
}

/// One connection: request lines in, response lines out, until EOF, a timeout or an
/// over-long line.
async fn connection(stream: UnixStream, ctx: &ControlContext, limits: &Limits) {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    loop {
        let mut line = Vec::new();
        let cap = limits.max_request_line as u64 + 1;
        let read = tokio::time::timeout(
            limits.read_timeout,
            (&mut r).take(cap).read_until(b'\n', &mut line),
        )
        .await;
        let last = match read {
            Err(_) => {
                let e = Response::error(format!(
                    "no request within {}s; closing",
                    limits.read_timeout.as_secs_f64()
                ));
                let _ = write_line(&mut w, &e, limits).await;
                return;
            }
            Ok(Err(_)) | Ok(Ok(0)) => return,
            Ok(Ok(_)) => !line.ends_with(b"\n"),
        };
        if line.len() > limits.max_request_line {
            let e = Response::error(format!(
                "request line longer than {} bytes; closing",
                limits.max_request_line
            ));
            let _ = write_line(&mut w, &e, limits).await;
            return;
        }
        let resp = handle_line(ctx, &line, limits).await;
        if write_line(&mut w, &resp, limits).await.is_err() || last {
            // `last`: EOF without a final newline; that request was answered
            return;
        }
    }
}

async fn write_line(
    w: &mut tokio::net::unix::OwnedWriteHalf,
    resp: &Response,
    limits: &Limits,
) -> Result<(), ()> {
    let line = resp.to_line();
    match tokio::time::timeout(limits.write_timeout, w.write_all(line.as_bytes())).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Answers one request line (without or with its newline).
pub async fn handle_line(ctx: &ControlContext, line: &[u8], limits: &Limits) -> Response {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t.trim(),
        Err(_) => return Response::error("request is not UTF-8"),
    };
    if text.is_empty() {
        return Response::error(r#"empty request; send e.g. {"cmd":"status","zone":null}"#);
    }
    let req: Request = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            return Response::error(format!(
                r#"malformed request ({e}); send e.g. {{"cmd":"status","zone":null}}"#
            ))
        }
    };
    handle(ctx, &req, limits).await
}

/// The commands, for the "unknown command" message.
const COMMANDS: &[&str] = &[
    "status",
    "keys",
    "ds",
    "retransfer",
    "resign",
    "notify",
    "rollover",
    "ds-seen",
    "ds-gone",
    "step",
    "reload",
];

/// Answers one request.
pub async fn handle(ctx: &ControlContext, req: &Request, limits: &Limits) -> Response {
    let zone = req.zone.as_deref().map(str::trim).filter(|z| !z.is_empty());
    let needs_zone = |cmd: &str| match zone {
        Some(z) => Ok(z),
        None => Err(Response::error(format!("`{cmd}` needs a zone"))),
    };
    let r = match req.cmd.as_str() {
        "status" => status(ctx, zone),
        "keys" => match needs_zone("keys") {
            Ok(z) => keys(ctx, z),
            Err(e) => return e,
        },
        "ds" => match needs_zone("ds") {
            Ok(z) => ds(ctx, z),
            Err(e) => return e,
        },
        "retransfer" | "resign" | "notify" => {
            let kind = match req.cmd.as_str() {
                "retransfer" => ZoneCmdKind::Retransfer,
                "resign" => ZoneCmdKind::Resign,
                _ => ZoneCmdKind::Notify,
            };
            match needs_zone(&req.cmd) {
                Ok(z) => zone_command(ctx, z, kind, limits).await,
                Err(e) => return e,
            }
        }
        "rollover" | "ds-seen" | "ds-gone" | "step" => {
            let z = match needs_zone(&req.cmd) {
                Ok(z) => z,
                Err(e) => return e,
            };
            let kind = match req.cmd.as_str() {
                "rollover" => match req.role.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    Some("ksk") => Ok(ZoneCmdKind::Rollover(keystore::KeyRole::Ksk)),
                    Some("zsk") => Ok(ZoneCmdKind::Rollover(keystore::KeyRole::Zsk)),
                    Some("csk") => Ok(ZoneCmdKind::Rollover(keystore::KeyRole::Csk)),
                    Some(r) => Err(format!(
                        "`rollover`: unknown role {:?}; known: ksk, zsk, csk",
                        shorten(r)
                    )),
                    None => Err("`rollover` needs a role (ksk, zsk or csk)".to_string()),
                },
                "ds-seen" | "ds-gone" => match req.key {
                    Some(tag) if req.cmd == "ds-seen" => Ok(ZoneCmdKind::DsSeen(tag)),
                    Some(tag) => Ok(ZoneCmdKind::DsGone(tag)),
                    None => Err(format!("`{}` needs a key tag", req.cmd)),
                },
                _ => Ok(ZoneCmdKind::Step),
            };
            match kind {
                Ok(kind) => zone_command(ctx, z, kind, limits).await,
                Err(e) => Err(e),
            }
        }
        "reload" => reload(ctx, limits).await,
        other => Err(format!(
            "unknown command {:?}; known: {}",
            shorten(other),
            COMMANDS.join(", ")
        )),
    };
    match r {
        Ok(v) => Response::data(v),
        Err(e) => Response::error(e),
    }
}

/// A name from a request, cut for error messages (a request line may be 64 KiB).
fn shorten(s: &str) -> String {
    const MAX: usize = 100;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

fn not_configured(zone: &str) -> String {
    format!("zone {} is not configured", shorten(&normalise(zone)))
}

fn zone_status(ctx: &ControlContext, zone: &str) -> Result<ZoneStatus, String> {
    let h = ctx.registry.get(zone).ok_or_else(|| not_configured(zone))?;
    let s = h.status.borrow().clone();
    Ok(s)
}

fn to_value<T: Serialize>(v: &T) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| format!("cannot encode the answer: {e}"))
}

fn status(ctx: &ControlContext, zone: Option<&str>) -> Result<Value, String> {
    let zones = match zone {
        Some(z) => vec![zone_status(ctx, z)?],
        None => ctx.registry.statuses(),
    };
    Ok(json!({ "now": ctx.publisher.clock().now(), "zones": to_value(&zones)? }))
}

fn keys(ctx: &ControlContext, zone: &str) -> Result<Value, String> {
    let s = zone_status(ctx, zone)?;
    Ok(json!({
        "zone": s.zone,
        "now": ctx.publisher.clock().now(),
        "keys": to_value(&s.keys)?,
        "waiting_for": to_value(&s.waiting_for)?,
    }))
}

/// One DS record for the parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DsRecord {
    pub tag: u16,
    pub algorithm: u8,
    pub digest_type: u8,
    /// Uppercase hex.
    pub digest: String,
    /// The TTL of the served DNSKEY RRset.
    pub ttl: u32,
    /// The whole record in presentation format: `OWNER TTL IN DS TAG ALG DT HEX`.
    pub record: String,
}

/// DS records for the SEP keys (flags bit 15, not revoked) of a DNSKEY RRset, one per digest
/// type, sorted by key tag then digest type. Digest types signet cannot compute are an error.
pub fn ds_records(
    origin: &Name,
    ttl: u32,
    dnskeys: &[Vec<u8>],
    digest_types: &[u8],
) -> Result<Vec<DsRecord>, String> {
    const ZONE_KEY: u16 = 0x0100;
    const REVOKE: u16 = 0x0080;
    const SEP: u16 = 0x0001;
    let owner = origin.canonical_wire();
    let mut out = Vec::new();
    for k in dnskeys {
        let Some(flags) = k.get(0..2).map(|f| u16::from_be_bytes([f[0], f[1]])) else {
            continue;
        };
        if flags & ZONE_KEY == 0 || flags & REVOKE != 0 || flags & SEP == 0 {
            continue;
        }
        for &dt in digest_types {
            let rd = keystore::ds_rdata(&owner, k, dt)
                .ok_or_else(|| format!("DS digest type {dt} is not supported"))?;
            let digest: String = rd
                .get(4..)
                .unwrap_or_default()
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect();
            out.push(DsRecord {
                tag: keystore::key_tag(k),
                algorithm: rd.get(2).copied().unwrap_or(0),
                digest_type: dt,
                digest,
                ttl,
                record: format!("{origin}\t{ttl}\tIN\tDS\t{}", rdata::to_text(t::DS, &rd)),
            });
        }
    }
    out.sort_by_key(|d| (d.tag, d.digest_type));
    out.dedup();
    Ok(out)
}

fn ds(ctx: &ControlContext, zone: &str) -> Result<Value, String> {
    let name = normalise(zone);
    let want = zone_status(ctx, &name)?.want_ds;
    let origin =
        Name::parse(&name, None).map_err(|e| format!("bad zone name {}: {e}", shorten(&name)))?;
    let served = ctx.publisher.get(&origin).ok_or_else(|| {
        format!("zone {origin} is not served (no signed version yet); see `signet status`")
    })?;
    let apex = served.zone.nodes.get(&served.zone.origin);
    let dnskey = apex
        .and_then(|n| n.get(t::DNSKEY))
        .ok_or_else(|| format!("zone {origin}: the served zone has no DNSKEY RRset"))?;
    let digest_types = {
        let cfg = ctx.config.borrow();
        cfg.zone(&name)
            .map(|z| cfg.policy_for(z).cds_digest_types.clone())
            .unwrap_or_else(|| vec![keystore::dnskey::DIGEST_SHA256])
    };
    // what the parent should hold now: the key state's plan, once the zone task has it
    let dnskeys: Vec<Vec<u8>> = match &want {
        Some(tags) => dnskey
            .rdatas
            .iter()
            .filter(|k| tags.contains(&keystore::key_tag(k)))
            .cloned()
            .collect(),
        None => dnskey.rdatas.clone(),
    };
    let records = ds_records(&origin, dnskey.ttl, &dnskeys, &digest_types)?;
    Ok(json!({ "zone": origin.to_string(), "ds": to_value(&records)? }))
}

async fn zone_command(
    ctx: &ControlContext,
    zone: &str,
    kind: ZoneCmdKind,
    limits: &Limits,
) -> Result<Value, String> {
    if ctx.registry.get(zone).is_none() {
        return Err(not_configured(zone));
    }
    let name = normalise(zone);
    let what = to_value(&kind)?;
    let result = tokio::time::timeout(limits.command_timeout, ctx.registry.command(zone, kind))
        .await
        .map_err(|_| {
            format!(
                "zone {}: no answer to {} within {}s; it may still complete, see `signet status`",
                shorten(&name),
                what.as_str().unwrap_or("the command"),
                limits.command_timeout.as_secs()
            )
        })??;
    let status = zone_status(ctx, zone)?;
    Ok(json!({ "zone": status.zone, "result": result, "status": to_value(&status)? }))
}

async fn reload(ctx: &ControlContext, limits: &Limits) -> Result<Value, String> {
    let (tx, rx) = oneshot::channel();
    let outcome = async {
        ctx.reload
            .send(tx)
            .await
            .map_err(|_| "reload is not available: the reload task has stopped".to_string())?;
        rx.await
            .map_err(|_| "the reload task stopped before answering".to_string())?
    };
    let result = tokio::time::timeout(limits.command_timeout, outcome)
        .await
        .map_err(|_| {
            format!(
                "no answer to reload within {}s",
                limits.command_timeout.as_secs()
            )
        })??;
    Ok(json!({ "result": result }))
}
