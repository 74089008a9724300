//! Operating the server: gRPC health, reflection v1 and v1alpha, the admin token,
//! stopping, persistence across restarts, how long the audit trail is kept, TLS and
//! mTLS, the security log, trace context and OTLP export, the bounds on what callers
//! can hold, and the attacks they bound, run against a real process.

mod admin_token;
mod audit_trail;
mod callers;
mod callers_file;
mod clients;
mod exhaustion;
mod health;
mod limits;
mod metrics;
mod reflection;
mod restarts;
mod security_log;
mod stopping;
mod tls;
mod tls_processes;
mod traces;
mod unix_socket;

use std::time::Duration;

/// A guard against hanging forever on a server that does not stop; not a wait.
const STOP_DEADLINE: Duration = Duration::from_secs(20);
