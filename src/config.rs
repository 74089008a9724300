//! The command line: flags, each also settable by an `ACCESSD_*` environment variable,
//! with defaults that run a local server with no configuration at all. The flags of the
//! client subcommands live in [`crate::cli::args`].

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::{
    api::Exports,
    cli::{
        ClientCommand,
        args::{RestoreArgs, VerifyArgs},
        callers::CallersCommand,
    },
    connect::ClientTls,
    follower::FollowOptions,
    model::Selection,
    server::{ClientAuth, Limits, ListenAddress, TlsFiles, parse_socket_mode},
    store::StoreConfig,
};

/// accessd: workspace authorization over gRPC.
#[derive(Debug, Parser)]
#[command(
    name = "accessd",
    version,
    about,
    after_help = "Every subcommand but `serve`, `roles`, `restore` and `verify` is a client of \
                  a running server \
                  (`--addr`, default `http://127.0.0.1:50051`).\n\
                  Exit status: 0 done; 1 error (the server's message is printed); 2 bad usage; \
                  3 a denied check with `--exit-code`, rows `migrate-legacy` or records `import` \
                  rejected, or violations `verify` found."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
// Parsed once per process: the size of its largest variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Print the role catalog in force (the built-in one, or `--roles FILE`).
    Roles(RolesArgs),
    /// Make entries of a callers file (`serve --callers`): a new caller and its token,
    /// or the digest of a token.
    #[command(subcommand)]
    Callers(CallersCommand),
    /// Load a backup file into an empty data directory, at the backup's revision, as a
    /// leader's data under a new history id. Offline: no server runs on the directory.
    Restore(RestoreArgs),
    /// Check every stored invariant of a data directory offline and report each
    /// violation; exit status 3 if any. No server may be running on it.
    Verify(VerifyArgs),
    /// The client subcommands.
    #[command(flatten)]
    Client(ClientCommand),
}

pub use crate::telemetry::LogFormat;

/// Settings of `accessd serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Where to listen for gRPC: `IP:PORT`, or `unix:PATH` for a Unix socket (its
    /// directory must exist). Repeat the flag, or separate addresses with commas, to
    /// listen on several: each serves the same services under the same limits.
    ///
    /// A Unix socket is plain gRPC even with `--tls-cert` (its bytes never leave the
    /// host): the socket file's permissions (`--socket-mode`) decide who may connect. A
    /// socket file left by a server that was killed is replaced; anything else at the
    /// path is refused, never deleted. The file is removed when the server stops.
    #[arg(
        long,
        env = "ACCESSD_LISTEN",
        value_name = "ADDRESS",
        value_delimiter = ',',
        default_value = "127.0.0.1:50051"
    )]
    pub listen: Vec<ListenAddress>,
    /// The mode of a `unix:` listener's socket file, in octal: who may connect (write
    /// permission is what connecting takes). The default lets the server's user and
    /// group in, and no one else.
    #[arg(
        long,
        env = "ACCESSD_SOCKET_MODE",
        value_name = "OCTAL",
        value_parser = parse_socket_mode,
        default_value = "0660"
    )]
    pub socket_mode: u32,
    /// Directory of the embedded database (created if missing).
    #[arg(long, env = "ACCESSD_DATA_DIR", default_value = "./accessd-data")]
    pub data_dir: PathBuf,
    /// A role catalog file replacing the built-in one.
    #[arg(long, env = "ACCESSD_ROLES")]
    pub roles: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "ACCESSD_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Export request spans with OpenTelemetry to this OTLP/gRPC collector, such as
    /// `http://localhost:4317` (`https://` for TLS). Off by default. The SDK's `OTEL_*`
    /// variables apply (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`,
    /// `OTEL_BSP_*`, `OTEL_TRACES_SAMPLER`, `OTEL_SERVICE_NAME`,
    /// `OTEL_RESOURCE_ATTRIBUTES`).
    #[arg(long, env = "ACCESSD_OTLP_ENDPOINT", value_name = "URL", value_parser = parse_otlp_endpoint)]
    pub otlp_endpoint: Option<String>,
    /// The callers file (TOML): each caller's name, the SHA-256 of its token, its scopes
    /// (`check`, `replicate`, `admin`), and optionally the workspaces it is bound to and
    /// whether it may name an acting user. Every service but health then needs a caller's
    /// token. Re-read when it changes, and on SIGHUP. `accessd callers hash` prints a
    /// token's digest.
    #[arg(long, env = "ACCESSD_CALLERS", value_name = "FILE")]
    pub callers: Option<PathBuf>,
    /// Without a callers file: AdminService and ReplicationService calls must carry
    /// `authorization: Bearer TOKEN` (AccessService stays open). Prefer `--callers`:
    /// a token on the command line shows in `ps`; set it in the environment instead.
    #[arg(long, env = "ACCESSD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Also answer `grpc.health.v1` health checks, and nothing else, in plaintext on
    /// this address: for probes that cannot speak TLS or present a client certificate,
    /// such as the kubelet's gRPC probes (`--listen` then serves only TLS).
    #[arg(long, env = "ACCESSD_HEALTH_LISTEN", value_name = "ADDRESS")]
    pub health_listen: Option<SocketAddr>,
    /// Serve Prometheus metrics at `http://ADDRESS/metrics` (HTTP/1.1, OpenMetrics text):
    /// calls by method and status code with their latency, checks by decision, write
    /// latencies and refusals, the store's size and revision, a follower's lag, and
    /// the process's memory. Counts only, no ids or other data, but no credentials
    /// either: bind it to an address only the scraper reaches. Off unless set.
    #[arg(long, env = "ACCESSD_METRICS_LISTEN", value_name = "ADDRESS")]
    pub metrics_listen: Option<SocketAddr>,
    /// Do not serve gRPC reflection (which describes the API to tools such as `grpcurl`,
    /// without credentials, but never any data).
    #[arg(long, env = "ACCESSD_NO_REFLECTION")]
    pub no_reflection: bool,
    /// Listen on an address other than loopback with no credentials configured (no
    /// `--callers`, no `--admin-token`): anyone who reaches it may read and write
    /// everything. Refused without this flag.
    #[arg(long, env = "ACCESSD_INSECURE")]
    pub insecure: bool,
    /// Size of the database's page cache in MiB. Checks are served from memory, so it
    /// serves only the writer.
    ///
    /// A larger cache helps only writes spread evenly over a large database (measured:
    /// about 12 µs of writer CPU per write with 64 MiB against 19 µs with 16 MiB), and
    /// costs about twice its size in resident memory once full.
    #[arg(long, env = "ACCESSD_CACHE_MB", default_value_t = StoreConfig::DEFAULT_CACHE_MB)]
    pub cache_mb: u64,
    /// MiB of change log to keep: the newest entries, the oldest dropped as new ones are
    /// written; 0 keeps no change log.
    ///
    /// The change log (JSON lines, in files of the data directory's `change_log/`) is for
    /// replicas and auditors: a reader that falls further behind than this must start
    /// again from an export. 64 MiB holds about 300,000 single writes or 400,000 imported
    /// records. `--audit-retention` keeps older entries too.
    #[arg(
        long,
        env = "ACCESSD_CHANGE_LOG_MB",
        value_name = "MIB",
        default_value_t = StoreConfig::DEFAULT_CHANGE_LOG_MB
    )]
    pub change_log_mb: u64,
    /// Keep every change-log entry younger than this (`90d`, `12h`, `30m`) as the audit
    /// trail (`accessd audit`), past `--change-log-mb`, up to `--audit-max-mb`; 0: the
    /// trail is what `--change-log-mb` keeps.
    ///
    /// Needs a change log (`--change-log-mb` above 0). Entries older than this go only
    /// as new ones are written, at the next write or start.
    #[arg(
        long,
        env = "ACCESSD_AUDIT_RETENTION",
        value_name = "DURATION",
        value_parser = humantime::parse_duration,
        default_value = "0"
    )]
    pub audit_retention: Duration,
    /// The most MiB of change log kept under `--audit-retention`, however young its
    /// entries, oldest dropped first: the bound on the disk a retention takes. At least
    /// `--change-log-mb`.
    ///
    /// The default, 10 GiB, holds about 48 million single writes (90 days at 6 writes a
    /// second, far more than a control plane makes) and still fits a modest volume. The
    /// log is files of an eighth of `--change-log-mb` each: 10 GiB of 8 MiB files is
    /// 1,280 of them.
    #[arg(
        long,
        env = "ACCESSD_AUDIT_MAX_MB",
        value_name = "MIB",
        default_value_t = StoreConfig::DEFAULT_AUDIT_MAX_MB
    )]
    pub audit_max_mb: u64,
    /// After SIGINT or SIGTERM, how many seconds to wait for in-flight calls before
    /// closing their connections anyway.
    #[arg(
        long,
        env = "ACCESSD_DRAIN_TIMEOUT",
        value_name = "SECS",
        default_value_t = 15
    )]
    pub drain_timeout: u64,
    /// Follow this leader (`http://HOST:PORT`, `https://HOST:PORT` or `unix:PATH`)
    /// instead of taking writes: keep a durable
    /// copy of its data in `--data-dir`, answer checks from it, and forward AdminService
    /// calls to the leader.
    #[arg(long, env = "ACCESSD_FOLLOW", value_name = "LEADER_URL")]
    pub follow: Option<String>,
    /// With `--follow`: the workspaces to hold: `all`, `workspaces:ID,ID,...`, or
    /// `shard:INDEX/COUNT` (the workspaces whose id hashes to that shard). A check on
    /// another workspace is refused with FAILED_PRECONDITION.
    #[arg(
        long,
        env = "ACCESSD_FOLLOW_SELECTION",
        value_name = "SELECTION",
        default_value = "all",
        requires = "follow"
    )]
    pub follow_selection: Selection,
    /// With `--follow`: sent to the leader as `authorization: Bearer TOKEN` (the
    /// leader's `--admin-token`).
    #[arg(
        long,
        env = "ACCESSD_LEADER_TOKEN",
        hide_env_values = true,
        requires = "follow"
    )]
    pub leader_token: Option<String>,
    /// With `--follow`: refuse checks (health NOT_SERVING) once the leader has not been
    /// heard from for this many seconds; it sends a heartbeat every second.
    #[arg(
        long,
        env = "ACCESSD_STALE_AFTER",
        value_name = "SECS",
        default_value_t = FollowOptions::DEFAULT_STALE_AFTER.as_secs(),
        requires = "follow"
    )]
    pub stale_after: u64,
    /// With `--follow`: keep answering checks from the copy held however long the
    /// leader is silent, instead of turning NOT_SERVING after `--stale-after`.
    #[arg(long, env = "ACCESSD_SERVE_STALE", requires = "follow")]
    pub serve_stale: bool,
    /// With `--follow https://...`: the CA certificates (PEM) that signed the leader's
    /// certificate; the system's roots without it.
    #[arg(
        long,
        env = "ACCESSD_LEADER_TLS_CA",
        value_name = "FILE",
        requires = "follow"
    )]
    pub leader_tls_ca: Option<PathBuf>,
    /// With `--follow https://...`: this follower's client certificate (PEM), for a
    /// leader that requires mTLS; with `--leader-tls-key`. Read again at each
    /// reconnection, so a renewed certificate is used without a restart.
    #[arg(
        long,
        env = "ACCESSD_LEADER_TLS_CERT",
        value_name = "FILE",
        requires_all = ["follow", "leader_tls_key"]
    )]
    pub leader_tls_cert: Option<PathBuf>,
    /// With `--leader-tls-cert`: its private key (PEM).
    #[arg(
        long,
        env = "ACCESSD_LEADER_TLS_KEY",
        value_name = "FILE",
        requires = "leader_tls_cert"
    )]
    pub leader_tls_key: Option<PathBuf>,

    // TLS.
    /// Serve over TLS only, with this certificate chain (PEM, leaf first) and
    /// `--tls-key`. Both are read again when they change, and on SIGHUP: new connections
    /// use the new certificate, open ones keep theirs.
    #[arg(
        long,
        env = "ACCESSD_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key",
        help_heading = "TLS"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "ACCESSD_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert",
        help_heading = "TLS"
    )]
    pub tls_key: Option<PathBuf>,
    /// mTLS: accept client certificates signed by these CA certificates (PEM). A
    /// caller's `certificate_names` in the callers file then identify it by its
    /// certificate as a token would. Read again when it changes, and on SIGHUP.
    #[arg(
        long,
        env = "ACCESSD_TLS_CLIENT_CA",
        value_name = "FILE",
        requires = "tls_cert",
        help_heading = "TLS"
    )]
    pub tls_client_ca: Option<PathBuf>,
    /// With `--tls-client-ca`: `required` fails the handshake of a client without a
    /// certificate of that CA; `optional` lets it in, to present a token instead.
    #[arg(
        long,
        env = "ACCESSD_TLS_CLIENT_AUTH",
        value_enum,
        default_value = "required",
        requires = "tls_client_ca",
        help_heading = "TLS"
    )]
    pub tls_client_auth: ClientAuth,

    // Limits: the bounds on what callers can hold.
    /// Open connections at most; a connection beyond them is closed as soon as it is
    /// accepted (logged at warn, at most once every 10 s).
    #[arg(
        long,
        env = "ACCESSD_MAX_CONNECTIONS",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..),
        value_name = "N",
        default_value_t = Limits::DEFAULT_MAX_CONNECTIONS,
        help_heading = "Limits"
    )]
    pub max_connections: usize,
    /// Close a connection that has had no call in progress for this many seconds
    /// (including one that never starts HTTP/2); 0: never.
    #[arg(
        long,
        env = "ACCESSD_IDLE_TIMEOUT",
        value_name = "SECS",
        default_value_t = Limits::DEFAULT_IDLE_TIMEOUT.as_secs(),
        help_heading = "Limits"
    )]
    pub idle_timeout: u64,
    /// Concurrent calls per connection, advertised to clients in HTTP/2 SETTINGS; a
    /// stream beyond them is refused.
    #[arg(
        long,
        env = "ACCESSD_MAX_CONCURRENT_STREAMS",
        value_parser = clap::value_parser!(u32).range(1..),
        value_name = "N",
        default_value_t = Limits::DEFAULT_MAX_CONCURRENT_STREAMS,
        help_heading = "Limits"
    )]
    pub max_concurrent_streams: u32,
    /// Close a connection (GOAWAY ENHANCE_YOUR_CALM) once the server has refused or
    /// reset this many of its streams: a client that keeps to the advertised maximum
    /// has none refused.
    #[arg(
        long,
        env = "ACCESSD_MAX_REFUSED_STREAMS",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..),
        value_name = "N",
        default_value_t = Limits::DEFAULT_MAX_REFUSED_STREAMS,
        help_heading = "Limits"
    )]
    pub max_refused_streams: usize,
    /// Ping each HTTP/2 connection every this many seconds to detect a peer that is
    /// gone; 0: never.
    #[arg(
        long,
        env = "ACCESSD_KEEPALIVE_INTERVAL",
        value_name = "SECS",
        default_value_t = Limits::DEFAULT_KEEPALIVE_INTERVAL.as_secs(),
        help_heading = "Limits"
    )]
    pub keepalive_interval: u64,
    /// Close a connection whose peer has not answered a ping within this many seconds.
    #[arg(
        long,
        env = "ACCESSD_KEEPALIVE_TIMEOUT",
        value_parser = clap::value_parser!(u64).range(1..),
        value_name = "SECS",
        default_value_t = Limits::DEFAULT_KEEPALIVE_TIMEOUT.as_secs(),
        help_heading = "Limits"
    )]
    pub keepalive_timeout: u64,
    /// TCP keepalive: probe a connection silent for this many seconds; 0: never.
    #[arg(
        long,
        env = "ACCESSD_TCP_KEEPALIVE",
        value_name = "SECS",
        default_value_t = Limits::DEFAULT_TCP_KEEPALIVE.as_secs(),
        help_heading = "Limits"
    )]
    pub tcp_keepalive: u64,
    /// The longest a call may take to answer (for a stream, to start answering),
    /// whatever deadline the caller sets; past it the call ends with CANCELLED. 0: no
    /// bound but the caller's.
    #[arg(
        long,
        env = "ACCESSD_CALL_TIMEOUT",
        value_name = "SECS",
        default_value_t = Limits::DEFAULT_CALL_TIMEOUT.as_secs(),
        help_heading = "Limits"
    )]
    pub call_timeout: u64,
    /// The largest AccessService request message in bytes; a larger one is refused with
    /// OUT_OF_RANGE before it is read.
    #[arg(
        long,
        env = "ACCESSD_MAX_CHECK_MESSAGE_BYTES",
        value_name = "BYTES",
        default_value_t = Limits::DEFAULT_MAX_CHECK_MESSAGE_BYTES,
        help_heading = "Limits"
    )]
    pub max_check_message_bytes: usize,
    /// The largest request message of the other services in bytes (one message of an
    /// import stream, say); a larger one is refused with OUT_OF_RANGE before it is read.
    #[arg(
        long,
        env = "ACCESSD_MAX_MESSAGE_BYTES",
        value_name = "BYTES",
        default_value_t = Limits::DEFAULT_MAX_MESSAGE_BYTES,
        help_heading = "Limits"
    )]
    pub max_message_bytes: usize,
    /// Exports running at once; one more is refused with RESOURCE_EXHAUSTED.
    #[arg(
        long,
        env = "ACCESSD_MAX_EXPORTS",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..),
        value_name = "N",
        default_value_t = Exports::DEFAULT_MAX,
        help_heading = "Limits"
    )]
    pub max_exports: usize,
    /// End an export with DEADLINE_EXCEEDED once its reader has taken nothing for this
    /// many seconds.
    #[arg(
        long,
        env = "ACCESSD_EXPORT_STALL_TIMEOUT",
        value_parser = clap::value_parser!(u64).range(1..),
        value_name = "SECS",
        default_value_t = Exports::DEFAULT_STALL_TIMEOUT.as_secs(),
        help_heading = "Limits"
    )]
    pub export_stall_timeout: u64,
    /// Close a connection that has not completed its TLS handshake within this many
    /// seconds.
    #[arg(
        long,
        env = "ACCESSD_HANDSHAKE_TIMEOUT",
        value_parser = clap::value_parser!(u64).range(1..),
        value_name = "SECS",
        default_value_t = Limits::DEFAULT_HANDSHAKE_TIMEOUT.as_secs(),
        help_heading = "Limits"
    )]
    pub handshake_timeout: u64,
}

impl ServeArgs {
    /// The store's settings; refused when the audit trail's contradict the change log's.
    pub fn store_config(&self) -> Result<StoreConfig, String> {
        if !self.audit_retention.is_zero() {
            if self.change_log_mb == 0 {
                return Err("`--audit-retention` keeps the change log's entries, but \
                            `--change-log-mb 0` keeps no change log: give the change log a \
                            size, or drop the retention"
                    .into());
            }
            if self.audit_max_mb < self.change_log_mb {
                return Err(format!(
                    "`--audit-max-mb` ({}) is less than `--change-log-mb` ({}): the cap on \
                     the audit trail must hold at least the change log replicas are promised",
                    self.audit_max_mb, self.change_log_mb
                ));
            }
        }
        let bytes = |mib: u64| mib.saturating_mul(1024 * 1024);
        Ok(StoreConfig {
            cache_bytes: bytes(self.cache_mb),
            change_log_bytes: bytes(self.change_log_mb),
            audit_retention: self.audit_retention,
            audit_max_bytes: bytes(self.audit_max_mb),
            observer: Default::default(),
        })
    }

    /// The bounds on what callers can hold.
    pub fn limits(&self) -> Limits {
        let seconds = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
        Limits {
            max_connections: self.max_connections,
            idle_timeout: seconds(self.idle_timeout),
            max_concurrent_streams: self.max_concurrent_streams,
            max_refused_streams: self.max_refused_streams,
            keepalive_interval: seconds(self.keepalive_interval),
            keepalive_timeout: Duration::from_secs(self.keepalive_timeout),
            tcp_keepalive: seconds(self.tcp_keepalive),
            handshake_timeout: Duration::from_secs(self.handshake_timeout),
            call_timeout: seconds(self.call_timeout),
            max_check_message_bytes: self.max_check_message_bytes,
            max_message_bytes: self.max_message_bytes,
            max_exports: self.max_exports,
            export_stall_timeout: Duration::from_secs(self.export_stall_timeout),
        }
    }

    /// The follower settings, with `--follow`.
    pub fn follow_options(&self) -> Option<FollowOptions> {
        let leader = self.follow.as_ref()?;
        Some(FollowOptions {
            leader: crate::connect::url(leader),
            selection: self.follow_selection.clone(),
            leader_token: self.leader_token.clone(),
            leader_tls: ClientTls {
                ca: self.leader_tls_ca.clone(),
                cert: self.leader_tls_cert.clone(),
                key: self.leader_tls_key.clone(),
            },
            stale_after: std::time::Duration::from_secs(self.stale_after),
            serve_stale: self.serve_stale,
        })
    }

    /// The server's TLS files, with `--tls-cert`.
    pub fn tls_files(&self) -> Option<TlsFiles> {
        Some(TlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
            client_ca: self.tls_client_ca.clone(),
            client_auth: self.tls_client_auth,
        })
    }
}

/// Settings of `accessd roles`.
#[derive(Debug, Clone, Args)]
pub struct RolesArgs {
    /// A role catalog file to print instead of the built-in one.
    #[arg(long, env = "ACCESSD_ROLES")]
    pub roles: Option<PathBuf>,
}

/// Reads `--otlp-endpoint`: an `http://` or `https://` URL with a host.
fn parse_otlp_endpoint(text: &str) -> Result<String, String> {
    let expected = "expected the OTLP/gRPC URL of a collector, such as `http://localhost:4317`";
    let uri: http::Uri = text
        .parse()
        .map_err(|e| format!("{expected}, got `{text}`: {e}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(text.to_owned()),
        _ => Err(format!("{expected}, got `{text}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(flags: &str) -> ServeArgs {
        let argv = format!("accessd serve {flags}");
        match Cli::try_parse_from(argv.split_whitespace()) {
            Ok(Cli {
                command: Command::Serve(args),
            }) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn listen_takes_several_addresses_tcp_or_unix_with_a_socket_mode() {
        let default = serve("");
        assert_eq!(default.listen, ["127.0.0.1:50051".parse().unwrap()]);
        assert_eq!(default.socket_mode, crate::server::DEFAULT_SOCKET_MODE);
        let both = serve("--listen 127.0.0.1:0 --listen unix:/run/a.sock --socket-mode 0600");
        assert_eq!(
            both.listen,
            [
                ListenAddress::Tcp(([127, 0, 0, 1], 0).into()),
                ListenAddress::Unix("/run/a.sock".into())
            ]
        );
        assert_eq!(both.socket_mode, 0o600);
        assert_eq!(
            serve("--listen 127.0.0.1:0,unix:/run/a.sock").listen,
            both.listen
        );
        for bad in ["--listen localhost", "--listen unix:", "--socket-mode 0999"] {
            let error = Cli::try_parse_from(format!("accessd serve {bad}").split(' '))
                .unwrap_err()
                .to_string();
            let flag = bad.split(' ').next().unwrap();
            assert!(error.contains(flag), "{error}");
        }
    }

    #[test]
    fn an_audit_retention_is_a_duration_kept_up_to_a_cap() {
        let config = serve("--audit-retention 90d --audit-max-mb 2048")
            .store_config()
            .unwrap();
        assert_eq!(config.audit_retention, Duration::from_secs(90 * 86_400));
        assert_eq!(config.audit_max_bytes, 2048 << 20);
        let default = serve("").store_config().unwrap();
        assert_eq!(default.audit_retention, Duration::ZERO);
        assert_eq!(default.audit_max_bytes, 10 << 30);
        assert_eq!(
            serve("--audit-retention 12h").audit_retention,
            Duration::from_secs(12 * 3600)
        );
        assert!(Cli::try_parse_from("accessd serve --audit-retention soon".split(' ')).is_err());
    }

    #[test]
    fn an_audit_retention_needs_a_change_log_and_a_cap_above_it() {
        let error = serve("--audit-retention 30m --change-log-mb 0")
            .store_config()
            .unwrap_err();
        assert!(
            error.contains("`--audit-retention`") && error.contains("`--change-log-mb 0`"),
            "{error}"
        );
        let error = serve("--audit-retention 30m --change-log-mb 512 --audit-max-mb 256")
            .store_config()
            .unwrap_err();
        assert!(
            error.contains("`--audit-max-mb` (256)") && error.contains("`--change-log-mb` (512)"),
            "{error}"
        );
        // Without a retention the cap bounds nothing, so a larger change log stands.
        serve("--change-log-mb 20000").store_config().unwrap();
    }

    #[test]
    fn an_otlp_endpoint_is_an_http_or_https_url_with_a_host() {
        assert_eq!(
            serve("--otlp-endpoint http://localhost:4317").otlp_endpoint,
            Some("http://localhost:4317".to_owned())
        );
        assert!(parse_otlp_endpoint("https://collector.example:4317").is_ok());
        assert_eq!(serve("").otlp_endpoint, None);
        for wrong in [
            "localhost:4317",
            "ftp://collector:4317",
            "http://",
            "/v1/traces",
        ] {
            let error = parse_otlp_endpoint(wrong).unwrap_err();
            assert!(error.contains("http://localhost:4317"), "{wrong}: {error}");
            let argv = ["accessd", "serve", "--otlp-endpoint", wrong];
            let refused = Cli::try_parse_from(argv).unwrap_err().to_string();
            assert!(refused.contains("--otlp-endpoint"), "{refused}");
        }
    }
}
