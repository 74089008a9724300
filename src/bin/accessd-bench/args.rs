//! The command line of `accessd-bench`: `run` (load a data set, drive the scenarios,
//! report) and `floor` (the no-op server that `run` starts as its own process).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

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

/// Settings of `accessd-bench run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Drive an accessd already listening here instead of starting one (nothing pinned,
    /// no server CPU or restart figures).
    #[arg(long)]
    pub addr: Option<SocketAddr>,
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
    #[arg(long, default_value_t = 600_000)]
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
    /// Writes in flight while loading the data set.
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
}

/// Settings of `accessd-bench floor`.
#[derive(Debug, Clone, Args)]
pub struct FloorArgs {
    /// Address to listen on; port 0 picks a free port. The bound address is printed
    /// on stdout as `listening on ADDR`.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
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
