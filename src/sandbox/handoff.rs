//! How a connection accepted inside a child's network namespace reaches the egress proxy: the
//! relay hands the accepted TCP socket itself to the proxy (`SCM_RIGHTS` over the proxy's Unix
//! socket) with a one-line header, instead of copying its bytes through a second hop. The proxy
//! then decides and moves the bytes between that socket and the destination in one place, which
//! keeps a bulk download through the sandbox close to a direct one.
//!
//! Header lines: `P` (an HTTP proxy request follows on the socket) or `F host:port` (plain TCP
//! to a listed destination). A client of the Unix socket that sends no socket (a test, or a
//! child that found the socket) simply speaks HTTP proxying on the Unix socket itself.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::path::Path;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use tokio::io::Interest;
use tokio::net::{TcpStream, UnixStream};

/// Longest header (`F ` and a destination).
const MAX_HEADER: usize = 1024;

/// What arrived on the proxy's socket.
pub enum Incoming {
    /// A child's TCP connection that speaks HTTP proxying.
    Http(TcpStream),
    /// A child's TCP connection to forward as plain TCP to `target` (`host:port`).
    Forward(TcpStream, String),
    /// A client of the Unix socket itself; `prefix` is what it sent first.
    Direct(UnixStream, Vec<u8>),
}

/// Relay side: hands `conn` to the proxy at `socket`, for HTTP proxying (`target: None`) or as a
/// forward to `target`. Blocking, but on a local socket it returns at once.
pub fn send(
    conn: &std::net::TcpStream,
    socket: &Path,
    target: Option<&str>,
) -> std::io::Result<()> {
    let up = std::os::unix::net::UnixStream::connect(socket)?;
    let header = match target {
        Some(t) => format!("F {t}\n"),
        None => "P\n".to_string(),
    };
    let fds = [conn.as_raw_fd()];
    sendmsg::<()>(
        up.as_raw_fd(),
        &[IoSlice::new(header.as_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(std::io::Error::from)?;
    Ok(())
}

/// Proxy side: reads what a new client of the socket sent first.
pub async fn receive(conn: UnixStream) -> std::io::Result<Incoming> {
    let mut buf = vec![0u8; MAX_HEADER];
    let (n, fd) = loop {
        conn.readable().await?;
        let got = conn.try_io(Interest::READABLE, || {
            let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = recvmsg::<()>(
                conn.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .map_err(std::io::Error::from)?;
            let mut fd = None;
            for cmsg in msg.cmsgs().map_err(std::io::Error::from)? {
                if let ControlMessageOwned::ScmRights(fds) = cmsg {
                    for raw in fds {
                        // SAFETY: the kernel just installed `raw` in this process for us.
                        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                        fd.get_or_insert(owned);
                    }
                }
            }
            Ok((msg.bytes, fd))
        });
        match got {
            Ok(x) => break x,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    };
    buf.truncate(n);
    let Some(fd) = fd else {
        return Ok(Incoming::Direct(conn, buf));
    };
    let tcp = std::net::TcpStream::from(fd);
    tcp.set_nonblocking(true)?;
    let tcp = TcpStream::from_std(tcp)?;
    let header = String::from_utf8_lossy(&buf);
    let header = header.trim_end();
    match header.split_once(' ') {
        Some(("F", target)) => Ok(Incoming::Forward(tcp, target.to_string())),
        _ if header == "P" => Ok(Incoming::Http(tcp)),
        _ => Err(std::io::Error::other(format!(
            "unknown hand-off header `{header}`"
        ))),
    }
}
