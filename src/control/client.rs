//! The client side of the control socket: connect, send one request line, read one response
//! line, all within a deadline. Blocking (std), so the CLI needs no runtime.

use super::{Request, Response};
use serde_json::Value;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest response line the client accepts: `status` of many zones with their keys and
/// events is big, but not this big.
pub const MAX_RESPONSE_LINE: usize = 64 * 1024 * 1024;

/// Deadline for a read-only request (`status`, `keys`, `ds`).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Deadline for a command the server waits on (`retransfer`, `resign`, `notify`, `reload`):
/// a little more than the server's own [`super::COMMAND_TIMEOUT`], so that its answer (even
/// "no answer within …") arrives.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(super::COMMAND_TIMEOUT.as_secs() + 15);

/// Why a request got no `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// Nobody listens on the socket (no file, refused, no permission).
    Unreachable {
        socket: PathBuf,
        config: Option<PathBuf>,
        error: String,
    },
    /// Connected, but the exchange failed (timeout, closed early, over-long or malformed
    /// response).
    Exchange { socket: PathBuf, error: String },
    /// The server answered `{"ok":false,"error":…}`.
    Server(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Unreachable {
                socket,
                config,
                error,
            } => {
                let serve = match config {
                    Some(c) => format!("signet serve -c {}", c.display()),
                    None => "signet serve".to_string(),
                };
                write!(
                    f,
                    "cannot reach signet at {}: {error} — is `{serve}` running?",
                    socket.display()
                )
            }
            ClientError::Exchange { socket, error } => {
                write!(f, "control socket {}: {error}", socket.display())
            }
            ClientError::Server(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for ClientError {}

/// A control socket client.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    config: Option<PathBuf>,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            socket: socket.into(),
            config: None,
        }
    }

    /// The configuration file the socket path came from, for the "is it running?" hint.
    pub fn with_config_hint(mut self, config: impl Into<PathBuf>) -> Client {
        self.config = Some(config.into());
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends `req` and returns the server's `data`, or why there is none. The whole exchange
    /// (connect, write, read) must finish within `timeout`.
    pub fn call(&self, req: &Request, timeout: Duration) -> Result<Value, ClientError> {
        let resp = self.exchange(req, timeout)?;
        if resp.ok {
            Ok(resp.data.unwrap_or(Value::Null))
        } else {
            Err(ClientError::Server(resp.error.unwrap_or_else(|| {
                "the server reported an error without a message".to_string()
            })))
        }
    }

    /// Sends `req` and returns the parsed response line, whatever `ok` says.
    pub fn exchange(&self, req: &Request, timeout: Duration) -> Result<Response, ClientError> {
        let deadline = Instant::now() + timeout;
        let stream = UnixStream::connect(&self.socket).map_err(|e| ClientError::Unreachable {
            socket: self.socket.clone(),
            config: self.config.clone(),
            error: e.to_string(),
        })?;
        let ex = |error: String| ClientError::Exchange {
            socket: self.socket.clone(),
            error,
        };
        let mut line = serde_json::to_string(req).map_err(|e| ex(e.to_string()))?;
        line.push('\n');
        let mut w = &stream;
        w.set_write_timeout(Some(
            remaining(deadline).ok_or_else(|| ex(timed_out(timeout)))?,
        ))
        .map_err(|e| ex(e.to_string()))?;
        w.write_all(line.as_bytes())
            .and_then(|_| w.flush())
            .map_err(|e| ex(format!("cannot send the request: {e}")))?;
        let mut r = BufReader::new(&stream);
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let left = remaining(deadline).ok_or_else(|| ex(timed_out(timeout)))?;
            stream
                .set_read_timeout(Some(left))
                .map_err(|e| ex(e.to_string()))?;
            let chunk = match r.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(ex(timed_out(timeout)))
                }
                Err(e) => return Err(ex(format!("cannot read the response: {e}"))),
            };
            if chunk.is_empty() {
                if buf.is_empty() {
                    return Err(ex(
                        "the server closed the connection without answering".into()
                    ));
                }
                break; // a last line without newline
            }
            let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            buf.extend_from_slice(&chunk[..take]);
            r.consume(take);
            if buf.len() > MAX_RESPONSE_LINE {
                return Err(ex(format!(
                    "response longer than {MAX_RESPONSE_LINE} bytes"
                )));
            }
            if done {
                break;
            }
        }
        serde_json::from_slice::<Response>(&buf)
            .map_err(|e| ex(format!("malformed response ({e})")))
    }
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

fn timed_out(timeout: Duration) -> String {
    format!("no answer within {}s", timeout.as_secs_f64())
}
