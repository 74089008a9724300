//! The servers under test as child processes (accessd, and the floor as this binary's
//! `floor` subcommand), pinned to a core with `taskset`; and what `/proc` says about a
//! process: CPU time and memory. Linux only, like the figures it reports.

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::address::Address;

/// How often a starting or stopping server is looked at.
const POLL: Duration = Duration::from_millis(20);

/// The number of cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Whether `taskset` can be run.
pub fn taskset_available() -> bool {
    Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Pins every thread of this process (and so every thread it starts later) to `core`.
pub fn pin_self(core: usize) -> Result<(), String> {
    pin(std::process::id(), core)
}

/// Pins every thread of process `pid` (and so every thread it starts later) to `core`.
pub fn pin(pid: u32, core: usize) -> Result<(), String> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", &core.to_string(), &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run taskset: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "taskset could not pin process {pid} to core {core}: {status}"
        ))
    }
}

/// The command that runs `program`, pinned to `core` if given.
fn pinned(program: &Path, core: Option<usize>) -> Command {
    match core {
        Some(core) => {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(core.to_string()).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// A server running as a child process; killed on drop if still running.
#[derive(Debug)]
pub struct ServerProcess {
    /// `accessd` or `floor`, for messages.
    pub name: &'static str,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its process id (`taskset` execs the server, so this is the server's).
    pub pid: u32,
    child: Child,
    /// The floor stops when this closes.
    stdin: Option<ChildStdin>,
    /// Where its stderr goes, if anywhere.
    log: Option<PathBuf>,
}

impl ServerProcess {
    /// Starts `accessd serve` on a free loopback port with its data in `data_dir`, its
    /// logs in `log`, and `extra` arguments. Returns once the process runs; see
    /// [`Self::wait_serving`].
    pub fn start_accessd(
        binary: &Path,
        data_dir: &Path,
        core: Option<usize>,
        log: &Path,
        extra: &[String],
    ) -> Result<Self, String> {
        // Bind and release a port: accessd cannot tell us the one it picked. The window
        // for another process to take it is a few microseconds on a quiet machine.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("cannot find a free port: {e}"))?;
        let stderr = std::fs::File::create(log)
            .map_err(|e| format!("cannot create `{}`: {e}", log.display()))?;
        let child = pinned(binary, core)
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", binary.display()))?;
        Ok(Self {
            name: "accessd",
            addr,
            pid: child.id(),
            child,
            stdin: None,
            log: Some(log.to_owned()),
        })
    }

    /// Starts this binary's `floor` subcommand on a free loopback port, and on the Unix
    /// socket `socket` too if given, and reads the address it bound.
    pub async fn start_floor(
        core: Option<usize>,
        lifetime: Duration,
        socket: Option<&Path>,
    ) -> Result<Self, String> {
        let me = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let mut command = pinned(&me, core);
        command.args(["floor", "--listen", "127.0.0.1:0"]);
        if let Some(socket) = socket {
            command
                .arg("--listen")
                .arg(format!("unix:{}", socket.display()));
        }
        let mut child = command
            .arg("--lifetime")
            .arg(format!("{}s", lifetime.as_secs()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the floor: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("the floor has no stdout")?;
        let listeners = 1 + usize::from(socket.is_some());
        // One line per listener, once each is bound.
        let lines = tokio::task::spawn_blocking(move || {
            let mut reader = BufReader::new(stdout);
            let mut lines = Vec::with_capacity(listeners);
            for _ in 0..listeners {
                let mut line = String::new();
                reader.read_line(&mut line)?;
                lines.push(line);
            }
            Ok::<_, std::io::Error>(lines)
        });
        let pid = child.id();
        let mut process = Self {
            name: "floor",
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid,
            child,
            stdin,
            log: None,
        };
        let line = match tokio::time::timeout(Duration::from_secs(30), lines).await {
            Ok(Ok(Ok(lines))) => lines.into_iter().next().unwrap_or_default(),
            _ => return Err("the floor did not say where it listens".into()),
        };
        process.addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("the floor said `{}`, not `listening on ADDR`", line.trim()))?;
        Ok(process)
    }

    /// Waits until the server's health service reports SERVING; returns how long that took.
    pub async fn wait_serving(&mut self, timeout: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited with {status} before serving{}",
                    self.name,
                    self.log_hint()
                ));
            }
            if serving(self.addr).await {
                return Ok(started.elapsed());
            }
            tokio::time::sleep(POLL).await;
        }
        Err(format!(
            "{} did not report SERVING within {timeout:?}{}",
            self.name,
            self.log_hint()
        ))
    }

    /// The server's resident memory, in bytes.
    pub fn rss_bytes(&self) -> Option<u64> {
        rss_bytes(self.pid)
    }

    /// The most memory the server has held resident so far (`VmHWM`), in bytes.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        status_kib(self.pid, "VmHWM:").map(|kib| kib * 1024)
    }

    /// Asks the server to stop (SIGTERM; the floor also sees its stdin close) and waits
    /// up to `timeout` for it, then kills it.
    pub async fn stop(mut self, timeout: Duration) -> Result<(), String> {
        drop(self.stdin.take());
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stderr(Stdio::null())
            .status();
        let started = Instant::now();
        while started.elapsed() < timeout {
            match self.child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) => tokio::time::sleep(POLL).await,
                Err(e) => return Err(format!("cannot wait for {}: {e}", self.name)),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Err(format!(
            "{} did not stop within {timeout:?}; killed",
            self.name
        ))
    }

    fn log_hint(&self) -> String {
        self.log
            .as_ref()
            .map(|log| format!(" (its log: `{}`)", log.display()))
            .unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether the gRPC health service at `addr` reports SERVING.
async fn serving(addr: SocketAddr) -> bool {
    let Ok(channel) = Address::Tcp(addr).connect(Duration::from_secs(1)).await else {
        return false;
    };
    let mut health = HealthClient::new(channel);
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        health.check(HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await;
    matches!(answer, Ok(Ok(response))
        if response.get_ref().status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32)
}

/// Opens `count` HTTP/2 connections to `addr` (each connect is its own).
pub async fn connect(addr: impl Into<Address>, count: usize) -> Result<Vec<Channel>, String> {
    let addr = addr.into();
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        channels.push(addr.connect(Duration::from_secs(5)).await?);
    }
    Ok(channels)
}

/// A directory for one run's data and logs, removed on drop.
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// A new empty directory under the system's temporary directory.
    pub fn new() -> Result<Self, String> {
        Self::new_in(&std::env::temp_dir())
    }

    /// A new empty directory under `parent`.
    pub fn new_in(parent: &Path) -> Result<Self, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = parent.join(format!("accessd-bench-{}-{nanos:09}", std::process::id()));
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("cannot create `{}`: {e}", path.display()))?;
        Ok(Self(path))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The bytes of the files under `dir`, counted as far as they can be read.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_bytes(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// CPU time (user + system) used so far by process `pid`, or by this process, in seconds.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 11 and 12 after the name.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The resident memory (`VmRSS`) of process `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:").map(|kib| kib * 1024)
}

/// A `kB` line of `/proc/PID/status`, such as `VmRSS:`.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// What machine this is: cores, CPU model, kernel, date.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("unknown CPU", |(_, name)| name.trim())
        .to_owned();
    let processors = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let run = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|text| text.trim().to_owned())
            .unwrap_or_default()
    };
    format!(
        "{processors} cores (nproc {}), {model}, Linux {}, {}",
        run("nproc", &[]),
        run("uname", &["-r"]),
        run("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_size_counts_the_files_of_its_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 100]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub").join("b"), [0u8; 23]).unwrap();
        assert_eq!(dir_bytes(dir.path()), 123);
        assert_eq!(dir_bytes(&dir.path().join("missing")), 0);
    }
}
