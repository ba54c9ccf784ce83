//! UDP and TCP listeners (RFC 1035 §4.2, RFC 7766) for the [`Publisher`].
//!
//! Every listen address gets a UDP socket and a TCP listener on the same port. UDP packets are
//! answered by a few worker tasks per socket; each TCP connection is one task that reads
//! 2-octet-framed requests and answers them in order (a transfer streams its messages before the
//! next request is read). Everything a client can hold is bounded by a named constant.

use super::{xfr, Publisher, Reply, Transport};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};

/// A TCP connection that sends nothing for this long is closed (RFC 7766 §6.2.3 suggests
/// seconds): answers slowloris-style attacks that open connections and keep them idle to
/// exhaust [`MAX_TCP_CONNECTIONS`].
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many TCP connections at once; further connections are closed at once. Answers
/// connection floods that would exhaust file descriptors and memory (each connection may hold a
/// zone version while it transfers).
pub const MAX_TCP_CONNECTIONS: usize = 256;

/// UDP worker tasks per socket: queries are answered without waiting for anything, so a few
/// workers keep every core busy while bounding the work in flight.
pub const UDP_WORKERS: usize = 4;

/// Bound sockets, ready to [`Server::run`].
pub struct Server {
    udp: Vec<Arc<UdpSocket>>,
    tcp: Vec<TcpListener>,
    publisher: Arc<Publisher>,
}

impl Server {
    /// Binds UDP and TCP on every address. A port of 0 picks a free port (the same one for UDP
    /// and TCP).
    pub async fn bind(listen: &[SocketAddr], publisher: Arc<Publisher>) -> std::io::Result<Server> {
        let mut udp = Vec::new();
        let mut tcp = Vec::new();
        for addr in listen {
            let (u, t) = bind_pair(*addr).await?;
            tracing::info!(address = %u.local_addr()?, "listening (UDP and TCP)");
            udp.push(Arc::new(u));
            tcp.push(t);
        }
        Ok(Server {
            udp,
            tcp,
            publisher,
        })
    }

    /// The bound addresses (UDP; TCP listens on the same ones).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.udp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// Serves until `shutdown` becomes true (or its sender is dropped).
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let conns = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
        let mut tasks = tokio::task::JoinSet::new();
        for sock in &self.udp {
            for _ in 0..UDP_WORKERS {
                tasks.spawn(udp_worker(
                    sock.clone(),
                    self.publisher.clone(),
                    shutdown.clone(),
                ));
            }
        }
        for l in self.tcp {
            tasks.spawn(tcp_accept(
                l,
                self.publisher.clone(),
                conns.clone(),
                shutdown.clone(),
            ));
        }
        while tasks.join_next().await.is_some() {}
        tracing::info!("server stopped");
    }
}

/// Binds UDP and TCP on the same address and port.
async fn bind_pair(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    if addr.port() != 0 {
        let u = UdpSocket::bind(addr).await?;
        let t = TcpListener::bind(addr).await?;
        return Ok((u, t));
    }
    let mut last = None;
    for _ in 0..20 {
        let u = UdpSocket::bind(addr).await?;
        let real = u.local_addr()?;
        match TcpListener::bind(real).await {
            Ok(t) => return Ok((u, t)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port for UDP and TCP")))
}

/// Runs a server on `listen` until `shutdown` (see [`Server`]). Fails at once if an address
/// cannot be bound.
pub async fn serve(
    listen: Vec<SocketAddr>,
    publisher: Arc<Publisher>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let server = Server::bind(&listen, publisher).await?;
    server.run(shutdown).await;
    Ok(())
}

fn stopping(rx: &watch::Receiver<bool>) -> bool {
    *rx.borrow()
}

async fn udp_worker(sock: Arc<UdpSocket>, p: Arc<Publisher>, mut shutdown: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 65535];
    loop {
        if stopping(&shutdown) {
            return;
        }
        let (n, src) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // e.g. ICMP port unreachable reported on Linux; nothing to answer
                    tracing::debug!(error = %e, "UDP receive error");
                    continue;
                }
            },
            r = shutdown.changed() => {
                if r.is_err() { return; }
                continue;
            }
        };
        match p.handle(&buf[..n], src, Transport::Udp) {
            Reply::One(resp) => {
                if let Err(e) = sock.send_to(&resp, src).await {
                    tracing::debug!(client = %src, error = %e, "UDP send failed");
                }
            }
            Reply::Drop => {}
            Reply::Transfer(_) => {
                // never produced for UDP (the handler answers FORMERR / SOA)
            }
            Reply::Later(fut) => {
                // an UPDATE waiting for its zone task: answer from a task of its own, so that
                // this worker goes on answering queries meanwhile
                let sock = sock.clone();
                tokio::spawn(async move {
                    let resp = fut.await;
                    if let Err(e) = sock.send_to(&resp, src).await {
                        tracing::debug!(client = %src, error = %e, "UDP send failed");
                    }
                });
            }
        }
    }
}

async fn tcp_accept(
    l: TcpListener,
    p: Arc<Publisher>,
    conns: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if stopping(&shutdown) {
            return;
        }
        let (stream, peer) = tokio::select! {
            r = l.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off a little instead of spinning
                    tracing::warn!(error = %e, "TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            r = shutdown.changed() => {
                if r.is_err() { return; }
                continue;
            }
        };
        let Ok(permit) = conns.clone().try_acquire_owned() else {
            tracing::warn!(client = %peer, limit = MAX_TCP_CONNECTIONS, "too many TCP connections: closing");
            drop(stream);
            continue;
        };
        let p = p.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tcp_connection(stream, peer, p, shutdown).await;
            drop(permit);
        });
    }
}

/// Reads exactly `buf.len()` octets within the idle timeout, or gives up (None) on timeout,
/// EOF, error or shutdown.
async fn read_exact_idle(
    s: &mut TcpStream,
    buf: &mut [u8],
    shutdown: &mut watch::Receiver<bool>,
) -> Option<()> {
    tokio::select! {
        r = tokio::time::timeout(TCP_IDLE_TIMEOUT, s.read_exact(buf)) => match r {
            Ok(Ok(_)) => Some(()),
            _ => None,
        },
        _ = shutdown.changed() => None,
    }
}

async fn tcp_connection(
    mut s: TcpStream,
    peer: SocketAddr,
    p: Arc<Publisher>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = s.set_nodelay(true);
    loop {
        if stopping(&shutdown) {
            return;
        }
        let mut len = [0u8; 2];
        if read_exact_idle(&mut s, &mut len, &mut shutdown)
            .await
            .is_none()
        {
            return;
        }
        let n = u16::from_be_bytes(len) as usize;
        if n == 0 {
            return;
        }
        let mut buf = vec![0u8; n];
        if read_exact_idle(&mut s, &mut buf, &mut shutdown)
            .await
            .is_none()
        {
            return;
        }
        let reply = match p.handle(&buf, peer, Transport::Tcp) {
            Reply::Later(fut) => Reply::One(fut.await),
            other => other,
        };
        match reply {
            Reply::Drop | Reply::Later(_) => {}
            Reply::One(resp) => {
                let mut frame = Vec::with_capacity(resp.len() + 2);
                frame.extend_from_slice(&(resp.len() as u16).to_be_bytes());
                frame.extend_from_slice(&resp);
                match tokio::time::timeout(xfr::XFR_WRITE_TIMEOUT, s.write_all(&frame)).await {
                    Ok(Ok(())) => {}
                    _ => return,
                }
            }
            Reply::Transfer(tr) => {
                if xfr::send(&mut s, tr, p.clock().clone()).await.is_err() {
                    return;
                }
            }
        }
    }
}
