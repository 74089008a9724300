//! What the server listens on: TCP addresses and Unix sockets, bound before the database
//! loads. A Unix socket's file has its mode before it takes a connection, a stale one
//! left by a killed server is replaced, and it is removed when the server stops; nothing
//! at its path but a dead socket is ever deleted.

use std::{
    fmt,
    fs::{self, Permissions},
    io,
    net::SocketAddr,
    os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    str::FromStr,
};

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, UnixListener};
use tracing::info;

/// Connections the kernel completes and queues before the server accepts them: a burst
/// of new clients beyond tokio's default of 128 would see their SYNs dropped and wait a
/// second to retry. The kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 1_024;

/// The longest socket path Linux takes: `sun_path` is 108 bytes, its last the NUL.
const MAX_SOCKET_PATH: usize = 107;

/// The mode of a Unix socket file unless told otherwise: its owner and group may connect.
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;

/// An address to listen on, as `--listen` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddress {
    /// `HOST:PORT`.
    Tcp(SocketAddr),
    /// `unix:PATH`: a Unix socket file.
    Unix(PathBuf),
}

impl ListenAddress {
    /// Whether only processes of this host can reach it: loopback, or a Unix socket
    /// (whose file's permissions say which).
    pub fn is_local(&self) -> bool {
        match self {
            Self::Tcp(address) => address.ip().is_loopback(),
            Self::Unix(_) => true,
        }
    }
}

impl FromStr for ListenAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some(path) = text.strip_prefix("unix:") else {
            return text.parse().map(Self::Tcp).map_err(|_| {
                format!(
                    "`{text}` is neither `IP:PORT` (such as `127.0.0.1:50051`) nor \
                     `unix:PATH` (such as `unix:/run/accessd/accessd.sock`)"
                )
            });
        };
        // gRPC's own spelling, `unix:///abs/path`, names the same file.
        let path = match path.strip_prefix("//") {
            Some(absolute) if absolute.starts_with('/') => absolute,
            Some(_) => {
                return Err(format!(
                    "`{text}`: after `unix://` comes an absolute path, as in \
                     `unix:///run/accessd/accessd.sock`"
                ));
            }
            None => path,
        };
        if path.is_empty() {
            return Err(format!(
                "`{text}` names no file: write `unix:PATH`, as in `unix:/run/accessd/accessd.sock`"
            ));
        }
        if path.len() > MAX_SOCKET_PATH {
            return Err(format!(
                "`{text}`: a Unix socket's path is at most {MAX_SOCKET_PATH} bytes; this one \
                 is {}",
                path.len()
            ));
        }
        Ok(Self::Unix(PathBuf::from(path)))
    }
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(address) => address.fmt(f),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Parses an octal file mode such as `0660`, for `--socket-mode`.
pub fn parse_socket_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 && !digits.is_empty() => Ok(mode),
        _ => Err(format!(
            "`{text}` is not a file mode: write it in octal, from 0 to 0777, such as `0660`"
        )),
    }
}

/// Why an address cannot be listened on.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The same address was given twice.
    #[error("`--listen {0}` is given twice")]
    Twice(ListenAddress),
    /// Binding a TCP address failed.
    #[error("cannot listen on {0}: {1}")]
    Tcp(SocketAddr, io::Error),
    /// The socket's directory does not exist.
    #[error("cannot listen on `unix:{}`: the directory `{}` does not exist", .0.display(), .1.display())]
    NoDirectory(PathBuf, PathBuf),
    /// Something other than a socket is at the path; it is left alone.
    #[error(
        "cannot listen on `unix:{}`: a file that is not a socket is there, and is left \
         alone: remove it, or listen on another path", .0.display()
    )]
    NotASocket(PathBuf),
    /// A server is listening on the socket.
    #[error("cannot listen on `unix:{}`: another server is listening on it", .0.display())]
    InUse(PathBuf),
    /// Binding or setting up the socket failed.
    #[error("cannot listen on `unix:{}`: {}", .0.display(), .1)]
    Unix(PathBuf, io::Error),
}

/// A bound listener, taking connections.
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix socket, with its file, removed when it is dropped.
    Unix(UnixListener, SocketFile),
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Self {
        Self::Tcp(listener)
    }
}

impl Listener {
    /// The address it listens on: for TCP, with the port the system chose for port 0.
    pub fn address(&self) -> String {
        match self {
            Self::Tcp(listener) => listener
                .local_addr()
                .map_or_else(|_| "unknown".to_owned(), |a| a.to_string()),
            Self::Unix(_, file) => format!("unix:{}", file.path.display()),
        }
    }
}

/// Binds every address in order, a Unix socket's file made with `socket_mode`; refuses
/// an address given twice.
pub fn bind_all(
    addresses: &[ListenAddress],
    socket_mode: u32,
) -> Result<Vec<Listener>, ListenError> {
    let mut listeners = Vec::with_capacity(addresses.len());
    for (index, address) in addresses.iter().enumerate() {
        if addresses
            .get(..index)
            .is_some_and(|before| before.contains(address))
        {
            return Err(ListenError::Twice(address.clone()));
        }
        listeners.push(bind(address, socket_mode)?);
    }
    Ok(listeners)
}

/// Binds `address`; a Unix socket's file is made with `socket_mode`.
pub fn bind(address: &ListenAddress, socket_mode: u32) -> Result<Listener, ListenError> {
    match address {
        ListenAddress::Tcp(address) => bind_tcp(*address)
            .map(Listener::Tcp)
            .map_err(|e| ListenError::Tcp(*address, e)),
        ListenAddress::Unix(path) => {
            let (listener, file) = bind_unix(path, socket_mode)?;
            Ok(Listener::Unix(listener, file))
        }
    }
}

fn bind_tcp(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As tokio's own bind does: a restarted server need not wait out TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

fn bind_unix(path: &Path, mode: u32) -> Result<(UnixListener, SocketFile), ListenError> {
    let failed = |e| ListenError::Unix(path.to_owned(), e);
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !directory.is_dir() {
        return Err(ListenError::NoDirectory(
            path.to_owned(),
            directory.to_owned(),
        ));
    }
    remove_if_stale(path)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(failed)?;
    let address = SockAddr::unix(path).map_err(failed)?;
    socket.bind(&address).map_err(|e| match e.kind() {
        // Another server bound it since it was looked at.
        io::ErrorKind::AddrInUse => ListenError::InUse(path.to_owned()),
        _ => failed(e),
    })?;
    let file = SocketFile::made_at(path).map_err(failed)?;
    // Before `listen`, a connection is refused: nobody gets in under the umask's mode.
    fs::set_permissions(path, Permissions::from_mode(mode)).map_err(failed)?;
    socket
        .listen(i32::try_from(LISTEN_BACKLOG).unwrap_or(i32::MAX))
        .map_err(failed)?;
    socket.set_nonblocking(true).map_err(failed)?;
    let listener =
        UnixListener::from_std(std::os::unix::net::UnixListener::from(socket)).map_err(failed)?;
    Ok((listener, file))
}

/// Removes a socket file no server listens on (left by a server that was killed);
/// refuses anything else at `path`.
fn remove_if_stale(path: &Path) -> Result<(), ListenError> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ListenError::Unix(path.to_owned(), e)),
    };
    if !metadata.file_type().is_socket() {
        return Err(ListenError::NotASocket(path.to_owned()));
    }
    if listened_on(path).map_err(|e| ListenError::Unix(path.to_owned(), e))? {
        return Err(ListenError::InUse(path.to_owned()));
    }
    match fs::remove_file(path) {
        Ok(()) => {
            info!(path = %path.display(), "removed a stale socket file, no server listening on it");
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ListenError::Unix(path.to_owned(), e)),
    }
}

/// Whether a server takes connections on the socket at `path`. The connection is made
/// without blocking: a server whose queue is full is still a server.
fn listened_on(path: &Path) -> io::Result<bool> {
    let probe = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    probe.set_nonblocking(true)?;
    match probe.connect(&SockAddr::unix(path)?) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// A socket file this server made, removed when dropped if it is still the one made
/// (not one another server has put at the path since).
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    device: u64,
    inode: u64,
}

impl SocketFile {
    fn made_at(path: &Path) -> io::Result<Self> {
        let metadata = fs::symlink_metadata(path)?;
        Ok(Self {
            path: path.to_owned(),
            device: metadata.dev(),
            inode: metadata.ino(),
        })
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.dev() == self.device && m.ino() == self.inode);
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_a_socket_address_or_a_unix_path() {
        assert_eq!(
            "127.0.0.1:50051".parse(),
            Ok(ListenAddress::Tcp(([127, 0, 0, 1], 50051).into()))
        );
        assert_eq!(
            "unix:/run/accessd.sock".parse(),
            Ok(ListenAddress::Unix("/run/accessd.sock".into()))
        );
        assert_eq!(
            "unix:///run/accessd.sock".parse(),
            Ok(ListenAddress::Unix("/run/accessd.sock".into()))
        );
        assert_eq!(
            "unix:accessd.sock".parse(),
            Ok(ListenAddress::Unix("accessd.sock".into()))
        );
        for bad in ["localhost:50051", "unix:", "unix://relative", "50051"] {
            assert!(bad.parse::<ListenAddress>().is_err(), "{bad}");
        }
        let long = format!("unix:/{}", "a".repeat(MAX_SOCKET_PATH));
        assert!(
            long.parse::<ListenAddress>()
                .unwrap_err()
                .contains("at most")
        );
    }

    #[test]
    fn a_socket_mode_is_octal_up_to_0777() {
        assert_eq!(parse_socket_mode("0660"), Ok(0o660));
        assert_eq!(parse_socket_mode("600"), Ok(0o600));
        assert_eq!(parse_socket_mode("0o700"), Ok(0o700));
        for bad in ["", "0o", "0680", "1777", "rw-rw----"] {
            assert!(parse_socket_mode(bad).is_err(), "{bad}");
        }
    }
}
