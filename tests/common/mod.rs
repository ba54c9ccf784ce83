//! Shared helpers for signet's integration tests against real peers.
//!
//! Include it from a test file with `mod common;` (it lives in `tests/common/mod.rs` so that cargo
//! does not treat it as a test of its own). Everything here is written for tests: on an
//! unexpected failure the helpers panic with the peer's output, so a test reads as a plain
//! sequence of steps.
//!
//! Overview:
//! - binaries: [`require`] / [`require!`] (skip, or fail under `CI=true`, when a peer is missing),
//!   [`find_bin`], [`signet_bin`];
//! - scaffolding: [`TempDir`], [`free_port`], [`Proc`] (a daemon killed on drop), [`wait_until`],
//!   [`run`] (a command with a timeout);
//! - DNS: [`TsigKey`], [`dig`], [`soa_serial`], [`wait_serial`], [`axfr`], [`axfr_to_file`],
//!   [`canonical_zone`];
//! - peers: [`NamedPrimary`], [`NamedSecondary`], [`NsdSecondary`], [`KnotPrimary`];
//! - checkers: [`ldns_verify_zone`], [`dnssec_verify`], [`kzonecheck`], [`verify_all`], [`delv`],
//!   [`assert_validated`], [`delv_anchors`], [`write_delv_anchor`], [`ds_from_zone_file`].
//!
//! Conventions: every daemon listens on 127.0.0.1 only, on a port from [`free_port`], in its own
//! directory under the test's [`TempDir`], and is stopped when its guard is dropped, also when
//! the test panics (the tail of its log is then printed to stderr). Set `SIGNET_KEEP_TEST_DIRS=1`
//! to keep the directories (configs, logs, zone files) for a post-mortem.
#![allow(dead_code)]

use std::env;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Deadline for one-shot tools (dig, validators, keygen) on test-sized zones.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
/// Deadline for one run of a zone validator.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(300);
/// Deadline for a daemon to report that it is up.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------------------------------------
// Binaries
// ------------------------------------------------------------------------------------------------

/// Peer binaries and the Debian package that provides each (what `scripts/install-test-deps.sh`
/// installs). Used by the one-argument form of [`require!`].
pub const PEER_PACKAGES: &[(&str, &str)] = &[
    ("named", "bind9"),
    ("tsig-keygen", "bind9"),
    ("named-checkzone", "bind9-utils"),
    ("named-compilezone", "bind9-utils"),
    ("dnssec-keygen", "bind9-utils"),
    ("dnssec-signzone", "bind9-utils"),
    ("dnssec-verify", "bind9-utils"),
    ("dnssec-dsfromkey", "bind9-utils"),
    ("dig", "bind9-dnsutils"),
    ("delv", "bind9-dnsutils"),
    ("nsupdate", "bind9-dnsutils"),
    ("knotd", "knot"),
    ("knotc", "knot"),
    ("keymgr", "knot"),
    ("kdig", "knot-dnsutils"),
    ("knsupdate", "knot-dnsutils"),
    ("kzonecheck", "knot-dnssecutils"),
    ("kzonesign", "knot-dnssecutils"),
    ("nsd", "nsd"),
    ("nsd-checkconf", "nsd"),
    ("ldns-verify-zone", "ldnsutils"),
    ("ldns-signzone", "ldnsutils"),
    ("drill", "ldnsutils"),
    ("softhsm2-util", "softhsm2"),
    ("pkcs11-tool", "opensc"),
    ("unbound", "unbound"),
    ("unbound-checkconf", "unbound"),
    ("unbound-host", "unbound-host"),
];

/// The Debian package providing `bin`, from [`PEER_PACKAGES`] (`"?"` if unknown).
pub fn package_of(bin: &str) -> &'static str {
    PEER_PACKAGES
        .iter()
        .find(|(b, _)| *b == bin)
        .map(|(_, p)| *p)
        .unwrap_or("?")
}

/// Absolute path of an executable `bin`, searched in `$PATH` and then in the sbin directories
/// (named, nsd and knotd live in /usr/sbin, which a non-root `$PATH` often lacks).
pub fn find_bin(bin: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(bin)).find(|p| {
        fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// A peer binary to run: its absolute path if found, else the bare name (the spawn then fails
/// with a clear "cannot run" message; tests call [`require`] first).
pub fn bin(name: &str) -> PathBuf {
    find_bin(name).unwrap_or_else(|| PathBuf::from(name))
}

/// True when running under CI (`CI=true` or `CI=1`): missing peers are then failures.
pub fn on_ci() -> bool {
    matches!(env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// Checks that the peer binary `bin` (from the Debian package `package`) is installed.
///
/// Returns its path. If it is missing: under `CI=true` this panics naming the package; otherwise
/// it prints a loud SKIP line to stderr and returns `None`, and the test should `return`
/// (the [`require!`] macro does that for you).
pub fn require(bin: &str, package: &str) -> Option<PathBuf> {
    if let Some(p) = find_bin(bin) {
        return Some(p);
    }
    if on_ci() {
        panic!(
            "required peer binary `{bin}` is not installed (CI=true): install the Debian package \
             `{package}` (bash scripts/install-test-deps.sh)"
        );
    }
    // Straight to the process's stderr: eprintln! would be captured (hidden) by the test harness
    // for a test that then returns "ok".
    let _ = writeln!(
        std::io::stderr(),
        "\n########## SKIP {}: `{bin}` not found; install the Debian package `{package}` \
         (bash scripts/install-test-deps.sh). This test proves nothing until then. ##########\n",
        std::thread::current().name().unwrap_or("?")
    );
    None
}

/// Returns from the calling test (after a SKIP line) unless every listed binary is installed;
/// under `CI=true` a missing binary panics instead. Two forms:
///
/// ```ignore
/// require!("named", "dig");                                  // packages from PEER_PACKAGES
/// require!("named" => "bind9", "my-tool" => "some-package"); // explicit packages
/// ```
///
/// Use it at the top of a test; from a submodule of the test crate, `use crate::require;`.
#[macro_export]
macro_rules! require {
    ($($bin:expr => $pkg:expr),+ $(,)?) => {
        let mut __signet_missing = false;
        $( if $crate::common::require($bin, $pkg).is_none() { __signet_missing = true; } )+
        if __signet_missing { return; }
    };
    ($($bin:expr),+ $(,)?) => {
        let mut __signet_missing = false;
        $( if $crate::common::require($bin, $crate::common::package_of($bin)).is_none() {
            __signet_missing = true;
        } )+
        if __signet_missing { return; }
    };
}

/// The signet binary cargo built for this test run (target/release/signet under
/// `cargo test --release`).
pub fn signet_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_signet"))
}

// ------------------------------------------------------------------------------------------------
// Temporary directories, ports, polling
// ------------------------------------------------------------------------------------------------

/// A fresh directory under `std::env::temp_dir()`, removed (recursively) on drop unless the
/// environment variable `SIGNET_KEEP_TEST_DIRS` is set.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/signet-LABEL-PID-COUNTER-NANOS`. Panics if that is impossible.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let label: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(24)
            .collect();
        for _ in 0..100 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path =
                env::temp_dir().join(format!("signet-{label}-{}-{n}-{nanos}", std::process::id()));
            match fs::create_dir(&path) {
                Ok(()) => return TempDir { path },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create temp dir {}: {e}", path.display()),
            }
        }
        panic!("cannot find an unused temp dir name for {label}");
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path().join(rel)`.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// Creates (if needed) and returns the subdirectory `rel`.
    pub fn subdir(&self, rel: impl AsRef<Path>) -> PathBuf {
        let p = self.path.join(rel);
        mkdir(&p);
        p
    }

    /// Writes `contents` to `rel` (creating parent directories) and returns the full path.
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path.join(rel);
        write_file(&p, contents);
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if env::var_os("SIGNET_KEEP_TEST_DIRS").is_some() {
            let _ = writeln!(
                std::io::stderr(),
                "keeping test dir {}",
                self.path.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// `create_dir_all`, panicking with the path on failure.
pub fn mkdir(p: &Path) {
    if let Err(e) = fs::create_dir_all(p) {
        panic!("cannot create {}: {e}", p.display());
    }
}

/// Writes a file (creating parent directories), panicking with the path on failure.
pub fn write_file(p: &Path, contents: impl AsRef<[u8]>) {
    if let Some(parent) = p.parent() {
        mkdir(parent);
    }
    if let Err(e) = fs::write(p, contents) {
        panic!("cannot write {}: {e}", p.display());
    }
}

/// Reads a file as (lossy) UTF-8, panicking with the path on failure.
pub fn read_file(p: &Path) -> String {
    match fs::read(p) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => panic!("cannot read {}: {e}", p.display()),
    }
}

/// Lowest and one-past-highest port handed out by [`free_port`]: below Linux's default
/// ephemeral range (32768-60999), so the kernel's own picks for outgoing sockets (dig, named's
/// transfers) never take a port a test is about to bind.
const PORT_RANGE: (u32, u32) = (20000, 32700);

/// A port that is free on 127.0.0.1 for both UDP and TCP right now.
///
/// Ports are handed out round-robin from a per-process starting point (derived from the pid and
/// the clock), so concurrently running tests in one process never get the same port, and
/// concurrently running test processes are unlikely to. The check binds both sockets and
/// releases them; a daemon then binds the port itself.
pub fn free_port() -> u16 {
    static START: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = PORT_RANGE.1 - PORT_RANGE.0;
    let start = *START.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        std::process::id()
            .wrapping_mul(7919)
            .wrapping_add(nanos / 1000)
            % span
    });
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let Ok(port) = u16::try_from(PORT_RANGE.0 + (start + n) % span) else {
            continue;
        };
        let tcp = TcpListener::bind(("127.0.0.1", port));
        let udp = UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 in {PORT_RANGE:?}");
}

/// Polls `cond` every 25 ms until it returns true (→ `true`) or `timeout` passes (→ `false`,
/// after one last try). Use this instead of sleeping a guessed amount.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return cond();
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

// ------------------------------------------------------------------------------------------------
// Running commands
// ------------------------------------------------------------------------------------------------

/// Result of [`run`].
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code (`None` if killed by a signal, timed out, or could not be started).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The command line, for messages.
    pub cmdline: String,
}

impl Output {
    /// Exit code 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// stdout followed by stderr.
    pub fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Panics with the full output unless the exit code was 0; returns stdout.
    pub fn expect_ok(self) -> String {
        if !self.ok() {
            panic!("{self}");
        }
        self.stdout
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ {}\n(exit {:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline, self.code, self.stdout, self.stderr
        )
    }
}

fn cmdline(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion (stdin closed), capturing stdout and stderr; kills it after
/// `timeout`. Never panics: a spawn failure or a timeout shows up as `code: None` with an
/// explanation in `stderr`.
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    let line = cmdline(cmd);
    let mut child = match cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Output {
                code: None,
                stdout: String::new(),
                stderr: format!("cannot run `{line}`: {e}"),
                cmdline: line,
            }
        }
    };
    // Drain both pipes on threads so a chatty child (a big AXFR) never blocks on a full pipe.
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    let stdout = out.join().unwrap_or_default();
    let mut stderr = err.join().unwrap_or_default();
    if timed_out {
        stderr.push_str(&format!("\n[killed: no exit within {timeout:?}]"));
    }
    Output {
        code: if timed_out {
            None
        } else {
            status.and_then(|s| s.code())
        },
        stdout,
        stderr,
        cmdline: line,
    }
}

/// Runs the peer tool `tool` (resolved with [`bin`]) with `args` and [`TOOL_TIMEOUT`].
pub fn run_tool<S: AsRef<std::ffi::OsStr>>(tool: &str, args: &[S]) -> Output {
    run(Command::new(bin(tool)).args(args), TOOL_TIMEOUT)
}

/// kzonecheck with DNSSEC checks of the signed zone file `path` at the (simulated) time `now`.
pub fn kzonecheck_at(zone: &str, path: &Path, now: u64) -> Output {
    run_tool(
        "kzonecheck",
        &[
            "-o",
            zone,
            "-d",
            "on",
            "-t",
            &now.to_string(),
            &path.to_string_lossy(),
        ],
    )
}

// ------------------------------------------------------------------------------------------------
// Daemons
// ------------------------------------------------------------------------------------------------

/// A spawned daemon, stopped when dropped: SIGTERM, then SIGKILL if it has not exited within
/// 10 s. Its stdout and stderr go to `LOGDIR/NAME.log`. If the thread is panicking when the
/// guard drops, the tail of the log is printed to stderr.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Mutex<Child>,
    log_path: PathBuf,
}

impl Proc {
    /// Spawns `cmd` (stdin closed) with output to `log_dir/NAME.log`. Panics if it cannot start.
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Proc {
        let log_path = log_dir.join(format!("{name}.log"));
        let open = || {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", log_path.display()))
        };
        let (out, err) = (open(), open());
        let line = cmdline(&cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: `{line}`: {e}"));
        Proc {
            name: name.to_string(),
            child: Mutex::new(child),
            log_path,
        }
    }

    fn child(&self) -> MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child().id()
    }

    /// Path of the log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the process has written so far.
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// True while the process has not exited.
    pub fn is_running(&self) -> bool {
        matches!(self.child().try_wait(), Ok(None))
    }

    /// Waits until the log contains `needle`. Fails early if the process exits; the error carries
    /// the log tail.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<(), String> {
        wait_until(timeout, || {
            self.log().contains(needle) || !self.is_running()
        });
        if self.log().contains(needle) {
            return Ok(());
        }
        Err(format!(
            "{} (pid {}) {} before logging {needle:?}; log {}:\n{}",
            self.name,
            self.pid(),
            if self.is_running() {
                format!("still silent after {timeout:?}")
            } else {
                "exited".to_string()
            },
            self.log_path.display(),
            self.log_tail(60)
        ))
    }

    /// Sends a signal by name (`"HUP"`, `"TERM"`, `"KILL"`...) with kill(1). True if delivered.
    pub fn signal(&self, sig: &str) -> bool {
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Stops the process (SIGTERM, SIGKILL after 10 s) and reaps it. Idempotent.
    pub fn stop(&self) -> Option<ExitStatus> {
        if let Ok(Some(st)) = self.child().try_wait() {
            return Some(st);
        }
        self.signal("TERM");
        let mut status = None;
        wait_until(Duration::from_secs(10), || {
            status = self.child().try_wait().ok().flatten();
            status.is_some()
        });
        if status.is_some() {
            return status;
        }
        let mut child = self.child();
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let was_running = self.is_running();
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "---- {} (pid {}, {}) log tail{} ----\n{}\n---- end of {} log ----",
                self.name,
                self.pid(),
                self.log_path.display(),
                if was_running {
                    ""
                } else {
                    ", had already exited"
                },
                self.log_tail(40),
                self.name
            );
        }
    }
}

// ------------------------------------------------------------------------------------------------
// TSIG
// ------------------------------------------------------------------------------------------------

/// A TSIG key (hmac-sha256) shared by the peers of a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsigKey {
    /// Key name, e.g. `xfr-key`.
    pub name: String,
    /// Always `hmac-sha256` from [`TsigKey::generate`].
    pub algorithm: String,
    /// Base64 secret.
    pub secret: String,
}

impl TsigKey {
    /// A new hmac-sha256 key named `name` with a random 32-byte secret.
    pub fn generate(name: &str) -> TsigKey {
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .unwrap_or_else(|_| panic!("no system randomness for a TSIG secret"));
        TsigKey {
            name: name.to_string(),
            algorithm: "hmac-sha256".to_string(),
            secret: data_encoding::BASE64.encode(&bytes),
        }
    }

    /// The key in BIND syntax (named.conf `include`, `dig -k`, `nsupdate -k`):
    /// `key "NAME" { algorithm hmac-sha256; secret "..."; };`
    pub fn bind_conf(&self) -> String {
        format!(
            "key \"{}\" {{\n    algorithm {};\n    secret \"{}\";\n}};\n",
            self.name, self.algorithm, self.secret
        )
    }

    /// Writes [`TsigKey::bind_conf`] to `path` and returns the path.
    pub fn write_bind_conf(&self, path: &Path) -> PathBuf {
        write_file(path, self.bind_conf());
        path.to_path_buf()
    }

    /// `ALG:NAME:SECRET`, the argument of `dig -y` / `knsupdate -y`.
    pub fn dig_arg(&self) -> String {
        format!("{}:{}:{}", self.algorithm, self.name, self.secret)
    }

    /// The key as a signet configuration table (`[tsig.NAME]`).
    pub fn signet_toml(&self) -> String {
        format!(
            "[tsig.{}]\nalgorithm = \"{}\"\nsecret = \"{}\"\n",
            self.name, self.algorithm, self.secret
        )
    }
}

// ------------------------------------------------------------------------------------------------
// Queries
// ------------------------------------------------------------------------------------------------

/// Runs `dig` with `args` (e.g. `["@127.0.0.1", "-p", "5302", "example.test", "SOA"]`) and
/// returns stdout followed by stderr. Never panics on a DNS failure: assert on the text.
pub fn dig<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    run_tool("dig", args).combined()
}

/// The SOA serial that 127.0.0.1:`port` serves for `zone` (one UDP try, 1 s), or `None`.
pub fn soa_serial(port: u16, zone: &str) -> Option<u32> {
    let out = dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        zone,
        "SOA",
        "+short",
        "+norec",
        "+time=1",
        "+tries=1",
    ]);
    out.lines()
        .find_map(|l| l.split_whitespace().nth(2)?.parse().ok())
}

/// Polls 127.0.0.1:`port` until it serves `zone` with exactly `serial`. The error names the last
/// serial seen.
pub fn wait_serial(port: u16, zone: &str, serial: u32, timeout: Duration) -> Result<(), String> {
    let mut last = None;
    if wait_until(timeout, || {
        last = soa_serial(port, zone);
        last == Some(serial)
    }) {
        Ok(())
    } else {
        Err(format!(
            "127.0.0.1:{port} did not serve {zone} serial {serial} within {timeout:?} \
             (last seen: {last:?})"
        ))
    }
}

/// `dig AXFR` of `zone` from 127.0.0.1:`port`, TSIG-signed with `key` if given. Returns dig's
/// text (stdout+stderr) as is; a refused transfer contains `; Transfer failed.`. Feed it to
/// [`axfr_to_file`] before handing it to the validators.
pub fn axfr(port: u16, zone: &str, key: Option<&TsigKey>) -> String {
    let mut args = vec![
        "@127.0.0.1".to_string(),
        "-p".to_string(),
        port.to_string(),
        "+nocmd".to_string(),
        "+nostats".to_string(),
        "+time=5".to_string(),
        "+tries=1".to_string(),
    ];
    if let Some(k) = key {
        args.push("-y".to_string());
        args.push(k.dig_arg());
    }
    args.push(zone.to_string());
    args.push("AXFR".to_string());
    dig(&args)
}

/// True if dig's AXFR text shows a failed/refused transfer (or holds no SOA at all).
pub fn axfr_failed(text: &str) -> bool {
    text.contains("Transfer failed")
        || text.contains("Couldn't verify signature")
        || !zone_records(text).iter().any(|l| rr_type(l) == Some("SOA"))
}

/// The type field of a one-line presentation record `OWNER [TTL] [CLASS] TYPE RDATA`.
fn rr_type(line: &str) -> Option<&str> {
    let mut toks = line.split_whitespace().skip(1);
    for t in toks.by_ref() {
        let is_ttl = t.bytes().all(|b| b.is_ascii_digit());
        let is_class = matches!(t, "IN" | "CH" | "HS" | "ANY" | "NONE");
        if !is_ttl && !is_class {
            return Some(t);
        }
    }
    None
}

/// The resource records of dig's AXFR text: no comments, blank lines, TSIG records, nor the
/// closing copy of the SOA.
fn zone_records(text: &str) -> Vec<&str> {
    let mut recs: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with(';'))
        .filter(|l| rr_type(l) != Some("TSIG"))
        .collect();
    if recs.len() >= 2
        && recs.first() == recs.last()
        && recs.first().and_then(|l| rr_type(l)) == Some("SOA")
    {
        recs.pop();
    }
    recs
}

/// Writes dig's AXFR text as a zone file for the validators: drops comment and blank lines,
/// TSIG records, and the closing SOA. Panics if the text holds no SOA (a failed transfer).
pub fn axfr_to_file(text: &str, path: &Path) {
    if axfr_failed(text) {
        panic!(
            "AXFR failed, nothing to write to {}:\n{text}",
            path.display()
        );
    }
    let mut s = zone_records(text).join("\n");
    s.push('\n');
    write_file(path, s);
}

/// The zone file at `path` in canonical form (named-compilezone: absolute names, one record per
/// line, sorted in DNSSEC order), to compare what two servers hold.
pub fn canonical_zone(zone: &str, path: &Path) -> Result<String, String> {
    let out = run(
        Command::new(bin("named-compilezone"))
            .args(["-q", "-i", "none", "-D", "-o", "-", zone])
            .arg(path),
        TOOL_TIMEOUT,
    );
    if out.ok() {
        Ok(out.stdout)
    } else {
        Err(out.to_string())
    }
}

// ------------------------------------------------------------------------------------------------
// Validators
// ------------------------------------------------------------------------------------------------

fn verdict(out: Output) -> Result<String, String> {
    if out.ok() {
        Ok(out.combined())
    } else {
        Err(out.to_string())
    }
}

/// `ldns-verify-zone FILE`: Ok(output) iff exit code 0 (its failure codes vary: 11, 28, 35...).
pub fn ldns_verify_zone(path: &Path) -> Result<String, String> {
    verdict(run(
        Command::new(bin("ldns-verify-zone")).arg(path),
        VERIFY_TIMEOUT,
    ))
}

/// `dnssec-verify -o ZONE FILE`: Ok(output) iff exit code 0.
pub fn dnssec_verify(zone: &str, path: &Path) -> Result<String, String> {
    verdict(run(
        Command::new(bin("dnssec-verify"))
            .args(["-o", zone])
            .arg(path),
        VERIFY_TIMEOUT,
    ))
}

/// `kzonecheck -o ZONE -d on FILE` (semantic checks with DNSSEC): Ok(output) iff exit code 0.
pub fn kzonecheck(zone: &str, path: &Path) -> Result<String, String> {
    verdict(run(
        Command::new(bin("kzonecheck"))
            .args(["-o", zone, "-d", "on"])
            .arg(path),
        VERIFY_TIMEOUT,
    ))
}

/// Runs [`ldns_verify_zone`], [`dnssec_verify`] and [`kzonecheck`] on the signed zone file and
/// panics with every failing checker's output if any of them rejects it.
pub fn verify_all(zone: &str, path: &Path) {
    let results = [
        ("ldns-verify-zone", ldns_verify_zone(path)),
        ("dnssec-verify", dnssec_verify(zone, path)),
        ("kzonecheck", kzonecheck(zone, path)),
    ];
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(|(name, r)| {
            r.err()
                .map(|e| format!("==== {name} rejected it ====\n{e}"))
        })
        .collect();
    if !failures.is_empty() {
        panic!(
            "signed zone {zone} at {} failed validation:\n{}",
            path.display(),
            failures.join("\n")
        );
    }
}

/// DS records (SHA-256) for the KSKs (SEP bit) in the DNSKEY RRset of a zone file, in
/// presentation format, via `dnssec-dsfromkey -2 -f FILE ZONE`. Panics on failure.
pub fn ds_from_zone_file(zone: &str, path: &Path) -> String {
    run(
        Command::new(bin("dnssec-dsfromkey"))
            .args(["-2", "-f"])
            .arg(path)
            .arg(zone),
        TOOL_TIMEOUT,
    )
    .expect_ok()
}

/// delv's trust-anchor file text for DS presentation lines (`OWNER [TTL] [IN] DS TAG ALG DT HEX`,
/// e.g. a `dsset-` file or [`ds_from_zone_file`] output; comments and blank lines ignored):
/// `trust-anchors { OWNER static-ds TAG ALG DT "HEX"; ... };`. Panics on a malformed line or
/// when there is no DS at all.
pub fn delv_anchors(ds_lines: &str) -> String {
    let mut body = String::new();
    for line in ds_lines.lines() {
        let line = line.split(';').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let toks: Vec<&str> = line.split_whitespace().collect();
        let ds = toks
            .iter()
            .position(|t| t.eq_ignore_ascii_case("DS"))
            .filter(|&i| i >= 1 && toks.len() >= i + 5)
            .unwrap_or_else(|| panic!("not a DS record: {line:?}"));
        let mut owner = toks[0].to_string();
        if !owner.ends_with('.') {
            owner.push('.');
        }
        let hex: String = toks[ds + 4..].concat();
        body.push_str(&format!(
            "    {owner} static-ds {} {} {} \"{hex}\";\n",
            toks[ds + 1],
            toks[ds + 2],
            toks[ds + 3]
        ));
    }
    assert!(!body.is_empty(), "no DS record in {ds_lines:?}");
    format!("trust-anchors {{\n{body}}};\n")
}

/// Writes [`delv_anchors`]`(ds_lines)` to `dir/anchors.conf` and returns its path.
pub fn write_delv_anchor(dir: &Path, ds_lines: &str) -> PathBuf {
    let p = dir.join("anchors.conf");
    write_file(&p, delv_anchors(ds_lines));
    p
}

/// `delv @127.0.0.1 -p PORT -a ANCHORS +root=ZONE QNAME QTYPE`; returns stdout+stderr.
///
/// delv exits 0 even when validation fails: check the text with [`assert_validated`] /
/// [`is_validated`].
pub fn delv(port: u16, anchors_file: &Path, zone: &str, qname: &str, qtype: &str) -> String {
    run(
        Command::new(bin("delv"))
            .args(["-4", "@127.0.0.1", "-p", &port.to_string(), "-a"])
            .arg(anchors_file)
            .arg(format!("+root={zone}"))
            .args([qname, qtype]),
        TOOL_TIMEOUT,
    )
    .combined()
}

/// True if delv's output reports `; fully validated` or `; negative response, fully validated`.
pub fn is_validated(delv_output: &str) -> bool {
    delv_output
        .lines()
        .map(str::trim)
        .any(|l| l == "; fully validated" || l == "; negative response, fully validated")
}

/// Panics with delv's output unless it reports a fully validated (positive or negative) answer.
pub fn assert_validated(delv_output: &str) {
    assert!(
        is_validated(delv_output),
        "delv did not fully validate the answer:\n{delv_output}"
    );
}

// ------------------------------------------------------------------------------------------------
// Peers
// ------------------------------------------------------------------------------------------------

/// Query helpers shared by all servers (they all listen on 127.0.0.1:`port` and know the TSIG
/// key of the test).
macro_rules! server_queries {
    ($t:ty) => {
        impl $t {
            /// The port on 127.0.0.1.
            pub fn port(&self) -> u16 {
                self.port
            }
            /// The server's directory (config, zone files, log).
            pub fn dir(&self) -> &Path {
                &self.dir
            }
            /// The daemon guard (log, pid, signals).
            pub fn proc(&self) -> &Proc {
                &self.proc
            }
            /// The SOA serial served for `zone`, if any.
            pub fn serial(&self, zone: &str) -> Option<u32> {
                soa_serial(self.port, zone)
            }
            /// Polls until `zone` is served with `serial`; the error carries the log tail.
            pub fn wait_serial(
                &self,
                zone: &str,
                serial: u32,
                timeout: Duration,
            ) -> Result<(), String> {
                wait_serial(self.port, zone, serial, timeout).map_err(|e| {
                    format!("{e}\n{} log:\n{}", self.proc.name(), self.proc.log_tail(40))
                })
            }
            /// AXFR of `zone` with the server's TSIG key (dig's raw text).
            pub fn axfr(&self, zone: &str) -> String {
                axfr(self.port, zone, Some(&self.key))
            }
            /// AXFR of `zone` without TSIG (should be refused).
            pub fn axfr_without_key(&self, zone: &str) -> String {
                axfr(self.port, zone, None)
            }
        }
    };
}

/// `options { }` for a named listening on 127.0.0.1:`port` with everything in `dir`.
fn named_options(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    minimal-responses yes;
}};
controls {{ }};
"#
    )
}

fn start_named(name: &str, dir: &Path, conf: &str) -> Proc {
    let conf_path = dir.join("named.conf");
    write_file(&conf_path, conf);
    let mut cmd = Command::new(bin("named"));
    // -g: foreground, log to stderr; -4: IPv4 only; -n 1: one worker thread (2-core machine).
    cmd.args(["-g", "-4", "-n", "1", "-c"]).arg(&conf_path);
    let p = Proc::spawn(name, cmd, dir);
    if let Err(e) = p.wait_for_log("running", START_TIMEOUT) {
        panic!("named did not start: {e}");
    }
    p
}

/// A BIND `named` secondary (peers.md §3.2) pulling zones from 127.0.0.1:`primary_port` with
/// TSIG. Build with [`NamedSecondary::builder`].
///
/// **Start the primary first.** If named's first refresh finds the primary down ("connection
/// refused"), the refresh stays "in progress" for about a minute: a NOTIFY arriving meanwhile is
/// only queued ("refresh in progress, refresh check queued") and the zone transfers ~60 s later,
/// whatever `min-retry-time` says (BIND 9.18.49, measured). Once the zone is loaded, NOTIFY
/// works at once.
#[derive(Debug)]
pub struct NamedSecondary {
    port: u16,
    dir: PathBuf,
    key: TsigKey,
    proc: Proc,
}

/// Builder for [`NamedSecondary`].
#[derive(Debug, Clone)]
pub struct NamedSecondaryBuilder {
    primary_port: u16,
    key: TsigKey,
    zones: Vec<String>,
    port: Option<u16>,
    request_ixfr: bool,
    retry_secs: u32,
}

impl NamedSecondary {
    /// A secondary of 127.0.0.1:`primary_port` using `key` for SOA/IXFR/AXFR queries, NOTIFY and
    /// its own transfers out.
    pub fn builder(primary_port: u16, key: &TsigKey) -> NamedSecondaryBuilder {
        NamedSecondaryBuilder {
            primary_port,
            key: key.clone(),
            zones: Vec::new(),
            port: None,
            request_ixfr: true,
            retry_secs: 2,
        }
    }
}

impl NamedSecondaryBuilder {
    /// Adds a zone to pull.
    pub fn zone(mut self, zone: &str) -> Self {
        self.zones.push(zone.to_string());
        self
    }
    /// Listen port (default: [`free_port`]).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
    /// `request-ixfr` (default yes; no = always AXFR).
    pub fn request_ixfr(mut self, yes: bool) -> Self {
        self.request_ixfr = yes;
        self
    }
    /// Retry interval after a failed refresh of a loaded zone (`min-retry-time` =
    /// `max-retry-time`), default 2 s instead of the SOA's retry (minutes), so a secondary
    /// recovers quickly when its primary restarts. Refresh timing (from the SOA) is untouched:
    /// NOTIFY is still what makes a running secondary pick up a new serial promptly.
    pub fn retry_secs(mut self, secs: u32) -> Self {
        self.retry_secs = secs;
        self
    }
    /// Writes the config to `TMP/named-secondary-PORT/named.conf`, starts `named -g` and waits
    /// until it is running (not until the zones are transferred: use `wait_serial`).
    pub fn start(self, tmp: &TempDir) -> NamedSecondary {
        let port = self.port.unwrap_or_else(free_port);
        let dir = tmp.subdir(format!("named-secondary-{port}"));
        let key_file = self.key.write_bind_conf(&dir.join("tsig.key"));
        let k = &self.key.name;
        let mut conf = named_options(&dir, port);
        conf.push_str(&format!(
            "include \"{}\";\nserver 127.0.0.1 {{ keys {{ \"{k}\"; }}; }};\n",
            key_file.display()
        ));
        for z in &self.zones {
            conf.push_str(&format!(
                r#"zone "{z}" {{
    type secondary;
    primaries {{ 127.0.0.1 port {pp} key "{k}"; }};
    file "{z}.sec";
    masterfile-format text;
    allow-notify {{ 127.0.0.1; }};
    allow-transfer {{ key "{k}"; }};
    request-ixfr {ixfr};
    min-retry-time {retry};
    max-retry-time {retry};
}};
"#,
                retry = self.retry_secs,
                pp = self.primary_port,
                ixfr = if self.request_ixfr { "yes" } else { "no" },
            ));
        }
        let proc = start_named("named-secondary", &dir, &conf);
        NamedSecondary {
            port,
            dir,
            key: self.key,
            proc,
        }
    }
}

server_queries!(NamedSecondary);

/// A BIND `named` primary (peers.md §3.4) serving zone files as given (signed or not; named does
/// not validate what it loads), transfers only with the TSIG key, IXFR computed from file
/// differences on reload, optional NOTIFY to other local ports. Build with
/// [`NamedPrimary::builder`].
#[derive(Debug)]
pub struct NamedPrimary {
    port: u16,
    dir: PathBuf,
    key: TsigKey,
    proc: Proc,
}

/// Builder for [`NamedPrimary`].
#[derive(Debug, Clone)]
pub struct NamedPrimaryBuilder {
    key: TsigKey,
    zones: Vec<(String, String)>,
    notify: Vec<u16>,
    port: Option<u16>,
    ixfr: bool,
}

impl NamedPrimary {
    /// A primary whose transfers need `key`.
    pub fn builder(key: &TsigKey) -> NamedPrimaryBuilder {
        NamedPrimaryBuilder {
            key: key.clone(),
            zones: Vec::new(),
            notify: Vec::new(),
            port: None,
            ixfr: true,
        }
    }

    /// Replaces the zone file of `zone` with `text` (bump its serial) and reloads with SIGHUP.
    /// Returns at once: wait for the new serial with `wait_serial`.
    pub fn update_zone(&self, zone: &str, text: &str) {
        write_file(&self.dir.join(format!("{zone}.db")), text);
        assert!(self.proc.signal("HUP"), "cannot send SIGHUP to named");
    }
}

impl NamedPrimaryBuilder {
    /// Adds `zone` with the zone file contents `text`.
    pub fn zone(mut self, zone: &str, text: &str) -> Self {
        self.zones.push((zone.to_string(), text.to_string()));
        self
    }
    /// Sends NOTIFY (TSIG-signed) to 127.0.0.1:`port` after loads.
    pub fn notify(mut self, port: u16) -> Self {
        self.notify.push(port);
        self
    }
    /// Listen port (default: [`free_port`]).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
    /// `ixfr-from-differences` (default yes; no = no journal, every IXFR request is answered
    /// with the whole zone, as from a primary that cannot do IXFR).
    pub fn ixfr(mut self, yes: bool) -> Self {
        self.ixfr = yes;
        self
    }
    /// Writes `TMP/named-primary-PORT/`, starts `named -g`, waits until it runs and serves every
    /// zone (panics with its log otherwise).
    pub fn start(self, tmp: &TempDir) -> NamedPrimary {
        let port = self.port.unwrap_or_else(free_port);
        let dir = tmp.subdir(format!("named-primary-{port}"));
        let key_file = self.key.write_bind_conf(&dir.join("tsig.key"));
        let k = &self.key.name;
        let mut conf = named_options(&dir, port);
        conf.push_str(&format!(
            "include \"{}\";\nserver 127.0.0.1 {{ keys {{ \"{k}\"; }}; }};\n",
            key_file.display()
        ));
        for (z, text) in &self.zones {
            write_file(&dir.join(format!("{z}.db")), text);
            let notify = if self.notify.is_empty() {
                "    notify no;\n".to_string()
            } else {
                let targets: String = self
                    .notify
                    .iter()
                    .map(|p| format!("127.0.0.1 port {p} key \"{k}\"; "))
                    .collect();
                format!("    also-notify {{ {targets}}};\n    notify explicit;\n")
            };
            conf.push_str(&format!(
                r#"zone "{z}" {{
    type primary;
    file "{z}.db";
    ixfr-from-differences {ixfr};
    allow-transfer {{ key "{k}"; }};
{notify}}};
"#,
                ixfr = if self.ixfr { "yes" } else { "no" },
            ));
        }
        let proc = start_named("named-primary", &dir, &conf);
        let p = NamedPrimary {
            port,
            dir,
            key: self.key,
            proc,
        };
        for (z, _) in &self.zones {
            if !wait_until(START_TIMEOUT, || p.serial(z).is_some()) {
                panic!(
                    "named primary does not serve {z}; log:\n{}",
                    p.proc.log_tail(60)
                );
            }
        }
        p
    }
}

server_queries!(NamedPrimary);

/// An NSD 4.6 secondary (peers.md §3.3) pulling zones from 127.0.0.1:`primary_port` with TSIG.
/// NSD cannot serve IXFR, and writes its zone file only hourly: compare its AXFR, not its file.
#[derive(Debug)]
pub struct NsdSecondary {
    port: u16,
    dir: PathBuf,
    key: TsigKey,
    proc: Proc,
}

/// Builder for [`NsdSecondary`].
#[derive(Debug, Clone)]
pub struct NsdSecondaryBuilder {
    primary_port: u16,
    key: TsigKey,
    zones: Vec<String>,
    port: Option<u16>,
    axfr_only: bool,
}

impl NsdSecondary {
    /// A secondary of 127.0.0.1:`primary_port` using `key` for transfers, NOTIFY and its own
    /// transfers out.
    pub fn builder(primary_port: u16, key: &TsigKey) -> NsdSecondaryBuilder {
        NsdSecondaryBuilder {
            primary_port,
            key: key.clone(),
            zones: Vec::new(),
            port: None,
            axfr_only: false,
        }
    }
}

impl NsdSecondaryBuilder {
    /// Adds a zone to pull.
    pub fn zone(mut self, zone: &str) -> Self {
        self.zones.push(zone.to_string());
        self
    }
    /// Listen port (default: [`free_port`]).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
    /// Always AXFR (`request-xfr: AXFR ...`); the default asks IXFR first.
    pub fn axfr_only(mut self, yes: bool) -> Self {
        self.axfr_only = yes;
        self
    }
    /// Writes `TMP/nsd-secondary-PORT/nsd.conf`, starts `nsd -d` and waits until it has started.
    pub fn start(self, tmp: &TempDir) -> NsdSecondary {
        let port = self.port.unwrap_or_else(free_port);
        let dir = tmp.subdir(format!("nsd-secondary-{port}"));
        let d = dir.display();
        let k = &self.key;
        let mut conf = format!(
            r#"server:
    ip-address: 127.0.0.1
    port: {port}
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    pidfile: "{d}/nsd.pid"
    xfrdfile: "{d}/xfrd.state"
    zonelistfile: "{d}/zone.list"
    xfrdir: "{d}"
    cookie-secret-file: "{d}/cookiesecrets.txt"
    verbosity: 2
remote-control:
    control-enable: no
key:
    name: "{name}"
    algorithm: {alg}
    secret: "{secret}"
"#,
            name = k.name,
            alg = k.algorithm,
            secret = k.secret
        );
        let axfr = if self.axfr_only { "AXFR " } else { "" };
        for z in &self.zones {
            conf.push_str(&format!(
                r#"zone:
    name: "{z}"
    zonefile: "{z}.sec"
    request-xfr: {axfr}127.0.0.1@{pp} {name}
    allow-notify: 127.0.0.1 {name}
    provide-xfr: 127.0.0.1 {name}
"#,
                pp = self.primary_port,
                name = k.name
            ));
        }
        let conf_path = dir.join("nsd.conf");
        write_file(&conf_path, conf);
        let check = run(
            Command::new(bin("nsd-checkconf")).arg(&conf_path),
            TOOL_TIMEOUT,
        );
        if !check.ok() && find_bin("nsd-checkconf").is_some() {
            panic!("nsd.conf rejected:\n{check}");
        }
        let mut cmd = Command::new(bin("nsd"));
        cmd.args(["-d", "-c"]).arg(&conf_path);
        let proc = Proc::spawn("nsd-secondary", cmd, &dir);
        if let Err(e) = proc.wait_for_log("nsd started", START_TIMEOUT) {
            panic!("nsd did not start: {e}");
        }
        NsdSecondary {
            port,
            dir,
            key: self.key,
            proc,
        }
    }
}

server_queries!(NsdSecondary);

/// A Knot DNS primary (peers.md §3.1) serving unsigned (or pre-signed) zone files, with
/// `zonefile-load: difference` so that a new file with a higher serial becomes an IXFR, and
/// TSIG-signed NOTIFY to the given local ports. Build with [`KnotPrimary::builder`].
#[derive(Debug)]
pub struct KnotPrimary {
    port: u16,
    dir: PathBuf,
    key: TsigKey,
    proc: Proc,
    conf: PathBuf,
}

/// Builder for [`KnotPrimary`].
#[derive(Debug, Clone)]
pub struct KnotPrimaryBuilder {
    key: TsigKey,
    zones: Vec<(String, String)>,
    notify: Vec<u16>,
    port: Option<u16>,
}

impl KnotPrimary {
    /// A primary whose transfers need `key`.
    pub fn builder(key: &TsigKey) -> KnotPrimaryBuilder {
        KnotPrimaryBuilder {
            key: key.clone(),
            zones: Vec::new(),
            notify: Vec::new(),
            port: None,
        }
    }

    /// Path of knot.conf.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// Runs `knotc -c CONF ARGS...`.
    pub fn knotc(&self, args: &[&str]) -> Output {
        run(
            Command::new(bin("knotc"))
                .arg("-c")
                .arg(&self.conf)
                .args(args),
            TOOL_TIMEOUT,
        )
    }

    /// Writes `text` as the zone file of `zone` and runs `knotc zone-reload ZONE` (blocking).
    /// Knot diffs it against the previous version (the serial must be higher) and NOTIFYs; wait
    /// for the new serial with `wait_serial`. Err carries knotc's output and the log tail.
    pub fn update_zone(&self, zone: &str, text: &str) -> Result<(), String> {
        write_file(&self.dir.join("zones").join(format!("{zone}.zone")), text);
        let out = self.knotc(&["-b", "zone-reload", zone]);
        if out.ok() && !out.combined().contains("error") {
            Ok(())
        } else {
            Err(format!("{out}\nknotd log:\n{}", self.proc.log_tail(40)))
        }
    }
}

impl KnotPrimaryBuilder {
    /// Adds `zone` with the zone file contents `text`.
    pub fn zone(mut self, zone: &str, text: &str) -> Self {
        self.zones.push((zone.to_string(), text.to_string()));
        self
    }
    /// Sends NOTIFY (TSIG-signed) to 127.0.0.1:`port` for every zone.
    pub fn notify(mut self, port: u16) -> Self {
        self.notify.push(port);
        self
    }
    /// Listen port (default: [`free_port`]).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
    /// Writes `TMP/knot-primary-PORT/knot.conf` (checked with `knotc conf-check`), starts
    /// `knotd`, waits until it serves every zone.
    pub fn start(self, tmp: &TempDir) -> KnotPrimary {
        let port = self.port.unwrap_or_else(free_port);
        let dir = tmp.subdir(format!("knot-primary-{port}"));
        mkdir(&dir.join("db"));
        let zones_dir = dir.join("zones");
        mkdir(&zones_dir);
        let d = dir.display();
        let k = &self.key;
        let mut conf = format!(
            r#"server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
    background-workers: 1
    udp-workers: 1
    tcp-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: "{d}/db"
control:
    listen: "{d}/knot.sock"
key:
  - id: {name}
    algorithm: {alg}
    secret: {secret}
acl:
  - id: xfr
    address: 127.0.0.0/8
    key: {name}
    action: transfer
"#,
            name = k.name,
            alg = k.algorithm,
            secret = k.secret
        );
        if !self.notify.is_empty() {
            conf.push_str("remote:\n");
            for p in &self.notify {
                conf.push_str(&format!(
                    "  - id: notify{p}\n    address: 127.0.0.1@{p}\n    key: {}\n",
                    k.name
                ));
            }
        }
        conf.push_str(&format!(
            r#"template:
  - id: default
    storage: "{}"
    zonefile-sync: -1
    zonefile-load: difference
    journal-content: changes
    semantic-checks: on
zone:
"#,
            zones_dir.display()
        ));
        let notify: Vec<String> = self.notify.iter().map(|p| format!("notify{p}")).collect();
        for (z, text) in &self.zones {
            write_file(&zones_dir.join(format!("{z}.zone")), text);
            conf.push_str(&format!(
                "  - domain: {z}\n    file: {z}.zone\n    acl: xfr\n"
            ));
            if !notify.is_empty() {
                conf.push_str(&format!("    notify: [{}]\n", notify.join(", ")));
            }
        }
        let conf_path = dir.join("knot.conf");
        write_file(&conf_path, &conf);
        let check = run(
            Command::new(bin("knotc"))
                .arg("-c")
                .arg(&conf_path)
                .arg("conf-check"),
            TOOL_TIMEOUT,
        );
        if !check.ok() {
            panic!("knot.conf rejected:\n{check}\n{conf}");
        }
        let mut cmd = Command::new(bin("knotd"));
        cmd.arg("-c").arg(&conf_path);
        let proc = Proc::spawn("knot-primary", cmd, &dir);
        if let Err(e) = proc.wait_for_log("server started", START_TIMEOUT) {
            panic!("knotd did not start: {e}");
        }
        let p = KnotPrimary {
            port,
            dir,
            key: self.key,
            proc,
            conf: conf_path,
        };
        for (z, _) in &self.zones {
            if !wait_until(START_TIMEOUT, || p.serial(z).is_some()) {
                panic!("knotd does not serve {z}; log:\n{}", p.proc.log_tail(60));
            }
        }
        p
    }
}

server_queries!(KnotPrimary);
