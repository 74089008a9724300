//! The command line of `accessd-bench`: `run` (load a data set, drive the scenarios,
//! report), `scale` (a small and a large data set side by side, with a restart),
//! `replication` (a leader and a follower: lag, bootstrap, checks), `soak` (a long mixed
//! load with resident memory sampled), `records` (write a data set as a records file) and
//! `floor` (the no-op server that `run` starts as its own process).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use crate::address::Address;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// accessd-bench: a load generator for accessd and the no-op gRPC floor it is compared to.
#[derive(Debug, Parser)]
#[command(name = "accessd-bench", about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the data set, drive every scenario against the floor and accessd, report.
    Run(Box<RunArgs>),
    /// Load a small and a large data set into two accessd processes, compare their
    /// Check figures, and time a restart of each: the scale target of issue 4.
    Scale(Box<ScaleArgs>),
    /// Start a leader and a follower: time the follower's bootstrap, measure how long a
    /// write takes to be visible on it, and compare its Check figures with the leader's.
    Replication(Box<ReplicationArgs>),
    /// Drive a mixed load (checks, lists, lookups, churning writes, imports, exports and
    /// requests that must fail) for `--duration` while sampling accessd's resident memory:
    /// fails on growth past `--max-growth` after the warm-up or on any unexpected error.
    Soak(Box<SoakArgs>),
    /// Write a data set as a records file (JSON lines) for `accessd import`.
    Records(RecordsArgs),
    /// Serve the no-op AccessService (constant answers) until stdin closes or a signal.
    Floor(FloorArgs),
}

/// What a scenario drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum Scenario {
    /// `Check`, one decision per call.
    Check,
    /// `BatchCheck` of `--batch-size` checks per call.
    Batch,
    /// Durable `Grant`s of new grants (accessd only: the floor has no AdminService).
    Grant,
}

impl Scenario {
    /// The scenario's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Check => "check",
            Self::Batch => "batch",
            Self::Grant => "grant",
        }
    }
}

/// How the load generator reaches the servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum Transport {
    /// TCP over loopback.
    Tcp,
    /// A Unix socket.
    Unix,
}

impl Transport {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Unix => "unix",
        }
    }
}

/// How a lag run sees a write on the follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Visibility {
    /// After each acknowledgement, a Check on the follower with `at_least_revision` =
    /// the write's revision, which the follower answers once it has applied it: what a
    /// client does. Each write waiting on the follower is one call held open there.
    Check,
    /// GetReplicationStatus asked of the follower every millisecond: when its revision
    /// first reaches each write's. Adds no waiting calls to the follower.
    Status,
}

impl Visibility {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Check => "check",
            Self::Status => "status",
        }
    }
}

/// How the data set is loaded into accessd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LoadWith {
    /// One Import stream of records over one connection.
    Import,
    /// One AdminService call per write (CreateWorkspace, SetMembership,
    /// RegisterResource, Grant), `--load-concurrency` in flight.
    Grant,
}

impl LoadWith {
    /// Whether this is `import`, for [`crate::load::LoadMethod::choose`].
    pub fn is_import(self) -> bool {
        self == Self::Import
    }
}

/// Settings of `accessd-bench run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Drive an accessd already listening here (`IP:PORT` or `unix:PATH`) instead of
    /// starting one (nothing pinned, no server CPU or restart figures); the floor
    /// listens on the same transport.
    #[arg(long)]
    pub addr: Option<Address>,
    /// The transports each scenario is driven over, floor then accessd on each, back to
    /// back: `tcp` (loopback), `unix` (a Unix socket in the scratch directory).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "tcp",
        conflicts_with = "addr"
    )]
    pub transport: Vec<Transport>,
    /// Do not load the data set: the server at `--addr` already holds it (same seed and sizes).
    #[arg(long, requires = "addr")]
    pub skip_load: bool,
    /// The accessd binary to start; by default `accessd` in this binary's directory
    /// (build both with `cargo build --release --bins`).
    #[arg(long)]
    pub accessd: Option<PathBuf>,
    /// Seed of the data set and of the request mix: the same seed gives the same requests.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of workspaces.
    #[arg(long, default_value_t = 200)]
    pub workspaces: usize,
    /// Average number of members (with grants) per workspace; each has half to one and a
    /// half times this.
    #[arg(long, default_value_t = 50)]
    pub members: usize,
    /// Average number of sources per workspace (destinations, warehouses and the rest
    /// follow from it).
    #[arg(long, default_value_t = 20)]
    pub sources: usize,
    /// Number of distinct check requests precomputed (cycled through while driving).
    #[arg(long, default_value_t = 50_000)]
    pub requests: usize,
    /// Number of distinct new grants the Grant scenario may write, over all its runs.
    #[arg(long, default_value_t = 1_000_000)]
    pub grant_pool: usize,
    /// Scenarios to drive, in order.
    #[arg(long, value_delimiter = ',', default_value = "check,batch,grant")]
    pub scenarios: Vec<Scenario>,
    /// Concurrencies (requests in flight) each scenario is driven at.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    pub concurrency: Vec<usize>,
    /// HTTP/2 connections the requests are spread over (at most one per request in flight).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Checks per BatchCheck call (at most 1,000).
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Measured time of each scenario, e.g. `10s`, `500ms`, `1m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unmeasured time before each scenario's measurement.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Times to repeat every scenario (floor then accessd, back to back); medians are reported.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// At most this many calls per scenario run, whatever the duration.
    #[arg(long, default_value_t = 10_000_000)]
    pub max_requests: u64,
    /// How to load the data set; by default `import` from 100,000 grants on, `grant`
    /// below.
    #[arg(long, value_enum)]
    pub load_with: Option<LoadWith>,
    /// Writes in flight while loading the data set with `--load-with grant`.
    #[arg(long, default_value_t = 256)]
    pub load_concurrency: usize,
    /// Do not pin processes to cores even when the machine has two or more.
    #[arg(long)]
    pub no_pin: bool,
    /// Core the load generator is pinned to.
    #[arg(long, default_value_t = 0)]
    pub client_core: usize,
    /// Core the server (accessd or the floor) is pinned to.
    #[arg(long, default_value_t = 1)]
    pub server_core: usize,
    /// Do not start or drive the floor.
    #[arg(long)]
    pub no_floor: bool,
    /// Do not restart accessd at the end to time its start-up.
    #[arg(long)]
    pub no_restart: bool,
    /// How long a started server may take to report SERVING.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub start_timeout: Duration,
    /// An argument passed on to the accessd this run starts, e.g.
    /// `--accessd-arg=--metrics-listen=127.0.0.1:0` (repeatable).
    #[arg(long, allow_hyphen_values = true)]
    pub accessd_arg: Vec<String>,
    /// Send a W3C `traceparent` with every Check and BatchCheck, as a traced caller does,
    /// to accessd and the floor alike.
    #[arg(long)]
    pub traceparent: bool,
}

/// Settings of `accessd-bench scale`. The two data sets differ only in their number of
/// workspaces: the same shape of workspace, ten thousand grants in all against ten
/// million with the defaults.
#[derive(Debug, Clone, Args)]
pub struct ScaleArgs {
    /// The accessd binary to start; by default `accessd` in this binary's directory.
    #[arg(long)]
    pub accessd: Option<PathBuf>,
    /// An argument passed on to every `accessd serve`, e.g. `--accessd-arg=--cache-mb=8`
    /// (repeatable).
    #[arg(long, allow_hyphen_values = true)]
    pub accessd_arg: Vec<String>,
    /// Seed of the data sets and of the request mixes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Workspaces of the small data set (about 10,200 grants with the defaults).
    #[arg(long, default_value_t = 100)]
    pub small_workspaces: usize,
    /// Workspaces of the large data set (about 10.2 million grants with the defaults).
    #[arg(long, default_value_t = 100_000)]
    pub large_workspaces: usize,
    /// Average members (with grants) per workspace; they hold 1.7 grants each on average,
    /// so 60 gives about 102 grants per workspace.
    #[arg(long, default_value_t = 60)]
    pub members: usize,
    /// Average sources per workspace.
    #[arg(long, default_value_t = 20)]
    pub sources: usize,
    /// Distinct check requests precomputed for each data set, spread over all its
    /// workspaces; each is also verified once after loading and after the restart.
    #[arg(long, default_value_t = 50_000)]
    pub requests: usize,
    /// How to load the data sets; by default `import` from 100,000 grants on.
    #[arg(long, value_enum)]
    pub load_with: Option<LoadWith>,
    /// Writes in flight with `--load-with grant`.
    #[arg(long, default_value_t = 256)]
    pub load_concurrency: usize,
    /// Concurrencies the Check scenario is driven at (the targets read 1 and 64).
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    pub concurrency: Vec<usize>,
    /// HTTP/2 connections the requests are spread over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Measured time of each run.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unmeasured time before each run.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Times to repeat every run (small then large, back to back); medians are reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// At most this many calls per run, whatever the duration.
    #[arg(long, default_value_t = 10_000_000)]
    pub max_requests: u64,
    /// Do not pin processes to cores even when the machine has two or more.
    #[arg(long)]
    pub no_pin: bool,
    /// Core the load generator is pinned to.
    #[arg(long, default_value_t = 0)]
    pub client_core: usize,
    /// Core both accessd processes are pinned to while Checks are driven (they load
    /// and restart on every core).
    #[arg(long, default_value_t = 1)]
    pub server_core: usize,
    /// How long a started accessd may take to report SERVING.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    pub start_timeout: Duration,
    /// The data directories' parent (they are removed at the end); by default the
    /// system's temporary directory. The large one needs about 4 GB.
    #[arg(long)]
    pub scratch: Option<PathBuf>,
}

/// Settings of `accessd-bench replication`.
#[derive(Debug, Clone, Args)]
pub struct ReplicationArgs {
    /// The accessd binary to start; by default `accessd` in this binary's directory.
    #[arg(long)]
    pub accessd: Option<PathBuf>,
    /// An argument passed on to every `accessd serve`, leader and follower alike, e.g.
    /// `--accessd-arg=--cache-mb=8` (repeatable).
    #[arg(long, allow_hyphen_values = true)]
    pub accessd_arg: Vec<String>,
    /// Seed of the data set and of the request mix.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// About how many grants the leader holds when the follower bootstraps (the data
    /// set has as many workspaces of `--members` as that takes).
    #[arg(long, default_value_t = 1_000_000)]
    pub grants: usize,
    /// Average members (with grants) per workspace; they hold 1.7 grants each on average.
    #[arg(long, default_value_t = 60)]
    pub members: usize,
    /// Average sources per workspace.
    #[arg(long, default_value_t = 20)]
    pub sources: usize,
    /// Give the leader a small data set (about 10,000 grants) instead of `--grants`: the
    /// follower still bootstraps, in a moment, but the bootstrap target is not judged.
    #[arg(long)]
    pub skip_bootstrap: bool,
    /// Do not measure the replication lag.
    #[arg(long)]
    pub skip_lag: bool,
    /// Do not compare the follower's Check figures with the leader's.
    #[arg(long)]
    pub skip_checks: bool,
    /// How long each lag run writes, e.g. `10s` or `10`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub seconds: Duration,
    /// Writes per second of the paced lag run (open loop: each is sent when it is due,
    /// whether the ones before it were answered or not).
    #[arg(long, default_value_t = 1000)]
    pub rate: u32,
    /// Concurrent writers of the lag run at the leader's maximum (closed loop); 0 skips it.
    #[arg(long, default_value_t = 64)]
    pub writers: usize,
    /// How each lag run sees writes on the follower; each way is a run of its own.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "status,check"
    )]
    pub visibility: Vec<Visibility>,
    /// Distinct new grants the lag runs may write, over both.
    #[arg(long, default_value_t = 400_000)]
    pub grant_pool: usize,
    /// Distinct check requests precomputed, cycled through by the Check runs.
    #[arg(long, default_value_t = 50_000)]
    pub requests: usize,
    /// Concurrencies the Check runs are driven at.
    #[arg(long, value_delimiter = ',', default_value = "64")]
    pub concurrency: Vec<usize>,
    /// HTTP/2 connections to each server.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Measured time of each Check run.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unmeasured time before each Check run.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Times to drive the leader and the follower alternately; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Do not pin the load generator and the servers for the Check runs.
    #[arg(long)]
    pub no_pin: bool,
    /// Core the load generator is pinned to for the Check runs.
    #[arg(long, default_value_t = 0)]
    pub client_core: usize,
    /// Core the leader and the follower are pinned to for the Check runs (they load,
    /// bootstrap and replicate on every core).
    #[arg(long, default_value_t = 1)]
    pub server_core: usize,
    /// How long a started accessd may take to report SERVING.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    pub start_timeout: Duration,
    /// The data directories' parent (removed at the end); by default the system's
    /// temporary directory.
    #[arg(long)]
    pub scratch: Option<PathBuf>,
}

/// How a report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Lines for people.
    Text,
    /// One JSON object.
    Json,
}

/// Settings of `accessd-bench soak`. Rates are calls per second of each kind; each kind
/// is paced by a few callers of its own, so a slow server lowers the rate achieved
/// (reported) rather than piling calls up.
#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    /// Drive an accessd already listening here instead of starting one; give `--pid` too.
    #[arg(long, requires = "pid")]
    pub addr: Option<SocketAddr>,
    /// The process id of the accessd at `--addr`, whose resident memory is sampled.
    #[arg(long, requires = "addr")]
    pub pid: Option<u32>,
    /// The accessd binary to start; by default `accessd` in this binary's directory.
    #[arg(long)]
    pub accessd: Option<PathBuf>,
    /// An argument passed on to `accessd serve`, e.g. `--accessd-arg=--cache-mb=8`
    /// (repeatable).
    #[arg(long, allow_hyphen_values = true)]
    pub accessd_arg: Vec<String>,
    /// How long the mixed load runs, e.g. `10m`, `30s`.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub duration: Duration,
    /// The first part of the load, whose memory is not judged; by default a fifth of
    /// `--duration`.
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// How often the server's resident memory (`VmRSS`) is read.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub sample_every: Duration,
    /// The most resident memory may grow after the warm-up, in percent of what it was
    /// at the warm-up's end.
    #[arg(long, default_value_t = 10.0)]
    pub max_growth: f64,
    /// Seed of the data set and of the request mix.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of workspaces.
    #[arg(long, default_value_t = 200)]
    pub workspaces: usize,
    /// Average members (with grants) per workspace.
    #[arg(long, default_value_t = 50)]
    pub members: usize,
    /// Average sources per workspace.
    #[arg(long, default_value_t = 20)]
    pub sources: usize,
    /// Distinct check requests precomputed (cycled through).
    #[arg(long, default_value_t = 50_000)]
    pub requests: usize,
    /// Checks per second sent as single `Check` calls.
    #[arg(long, default_value_t = 2000)]
    pub check_rate: u32,
    /// `BatchCheck` calls per second.
    #[arg(long, default_value_t = 20)]
    pub batch_rate: u32,
    /// Checks per BatchCheck call (at most 1,000).
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Calls per second of each of ListAccess, LookupResources and LookupSubjects.
    #[arg(long, default_value_t = 50)]
    pub read_rate: u32,
    /// Calls per second of each kind of churn: Grant then Revoke, SetMembership then
    /// RemoveMember, RegisterResource then DeleteResource.
    #[arg(long, default_value_t = 20)]
    pub write_rate: u32,
    /// How often an Import of the next `--import-workspaces` workspaces' records (upserts
    /// of what is already there) and an Export of the whole database are made.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub bulk_every: Duration,
    /// Workspaces whose records each Import sends again.
    #[arg(long, default_value_t = 20)]
    pub import_workspaces: usize,
    /// How often a request that must fail is sent: a Check with a malformed workspace id
    /// (INVALID_ARGUMENT), then a Grant to a user who is not a member (FAILED_PRECONDITION).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub invalid_every: Duration,
    /// HTTP/2 connections the calls are spread over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// How the report is printed.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// How long a started accessd may take to report SERVING.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub start_timeout: Duration,
    /// The data directory's parent (removed at the end); by default the system's
    /// temporary directory.
    #[arg(long)]
    pub scratch: Option<PathBuf>,
}

/// Settings of `accessd-bench records`.
#[derive(Debug, Clone, Args)]
pub struct RecordsArgs {
    /// The file to write (replaced if it exists); `-` for stdout.
    pub file: PathBuf,
    /// Seed of the data set: the same as `run` or `scale` uses for the same data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of workspaces.
    #[arg(long, default_value_t = 100_000)]
    pub workspaces: usize,
    /// Average members (with grants) per workspace.
    #[arg(long, default_value_t = 60)]
    pub members: usize,
    /// Average sources per workspace.
    #[arg(long, default_value_t = 20)]
    pub sources: usize,
}

/// Settings of `accessd-bench floor`.
#[derive(Debug, Clone, Args)]
pub struct FloorArgs {
    /// Address to listen on: `IP:PORT` (port 0 picks a free port) or `unix:PATH` (the
    /// file must not exist); repeat to listen on several. Each bound address is printed
    /// on stdout as `listening on ADDR`, in the order given.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: Vec<Address>,
    /// Stop after this long even if nobody says so.
    #[arg(long, default_value = "6h", value_parser = parse_duration)]
    pub lifetime: Duration,
    /// Do not stop when stdin closes (for running it by hand in the background).
    #[arg(long)]
    pub ignore_stdin: bool,
}

/// Parses `500ms`, `10s`, `2m`, `6h` or a plain number of seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{raw}` is not a duration such as `10s` or `500ms`"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("`{raw}`: unknown unit `{unit}` (ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{raw}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("3d").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
