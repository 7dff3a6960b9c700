//! The inside end of the egress path: listeners on the loopback of a child's network namespace
//! that hand each accepted connection to pi-mcp's egress proxy over its Unix socket (a Unix
//! socket is a file, so it crosses the namespace boundary where no TCP route does; the accepted
//! socket itself travels, see [`super::handoff`]). One listener is the HTTP proxy the child's
//! `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` name; the others forward plain TCP for listed
//! `host:port` destinations (PostgreSQL, SSH). Whether a destination may be reached is the
//! proxy's decision, never the relay's.
//!
//! A few lines of tokio; socat would do the same as a separate binary that is not on a fresh
//! machine, and it could not hand a socket over.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::signal::unix::SignalKind;

/// A listed destination forwarded as plain TCP inside the namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    /// Where the child connects, on the namespace's loopback.
    pub listen: SocketAddr,
    /// The destination the proxy is asked for (`host:port`).
    pub target: String,
}

/// The bound listeners of one namespace.
pub struct Listeners {
    proxy: TcpListener,
    forwards: Vec<(TcpListener, String)>,
}

impl Listeners {
    /// Binds the proxy listener on an ephemeral loopback port and each forward; call it inside
    /// the namespace after loopback is up.
    pub fn bind(forwards: &[Forward]) -> std::io::Result<Listeners> {
        let proxy = TcpListener::bind("127.0.0.1:0")?;
        let forwards = forwards
            .iter()
            .map(|f| {
                TcpListener::bind(f.listen)
                    .map(|l| (l, f.target.clone()))
                    .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", f.listen)))
            })
            .collect::<Result<_, _>>()?;
        Ok(Listeners { proxy, forwards })
    }

    /// The port of the HTTP proxy listener.
    pub fn proxy_port(&self) -> u16 {
        self.proxy.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves every listener until the command `child` ends, and returns how it ended. Call it
    /// after `fork`, in a process with no other threads: the runtime is single-threaded and
    /// learns of the child's end from `SIGCHLD`.
    pub fn serve(self, socket: PathBuf, child: Pid) -> std::io::Result<WaitStatus> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        rt.block_on(async move {
            let mut sigchld = tokio::signal::unix::signal(SignalKind::child())?;
            let proxy = tokio::net::TcpListener::from_std(nonblocking(self.proxy)?)?;
            tokio::spawn(accept_loop(proxy, socket.clone(), None));
            for (listener, target) in self.forwards {
                let listener = tokio::net::TcpListener::from_std(nonblocking(listener)?)?;
                tokio::spawn(accept_loop(listener, socket.clone(), Some(target)));
            }
            loop {
                match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                    Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                        return Ok(status);
                    }
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(std::io::Error::from(e)),
                }
                sigchld.recv().await;
            }
        })
    }
}

fn nonblocking(l: TcpListener) -> std::io::Result<TcpListener> {
    l.set_nonblocking(true)?;
    Ok(l)
}

async fn accept_loop(listener: tokio::net::TcpListener, socket: PathBuf, target: Option<String>) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        let socket = socket.clone();
        let target = target.clone();
        tokio::spawn(async move {
            let _ = carry(conn, &socket, target.as_deref()).await;
        });
    }
}

/// Hands one accepted connection to the proxy (see [`super::handoff`]); for a forward, with
/// its destination. The proxy decides and carries the bytes; this process keeps nothing.
async fn carry(
    conn: tokio::net::TcpStream,
    socket: &Path,
    target: Option<&str>,
) -> std::io::Result<()> {
    let conn = conn.into_std()?;
    super::handoff::send(&conn, socket, target)
}

/// Loopback addresses for forwarded names: 127.0.0.2, 127.0.0.3, ... (127.0.0.1 keeps its
/// own forwards).
pub fn name_address(index: usize) -> IpAddr {
    let n = index as u32 + 2;
    IpAddr::from([
        127,
        ((n >> 16) & 0xff) as u8,
        ((n >> 8) & 0xff) as u8,
        (n & 0xff) as u8,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_get_distinct_loopback_addresses() {
        assert_eq!(name_address(0).to_string(), "127.0.0.2");
        assert_eq!(name_address(254).to_string(), "127.0.1.0");
        assert!(name_address(1000).is_loopback());
    }
}
