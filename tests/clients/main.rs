//! Clients in other languages against the real `accessd serve`, each test on a fresh
//! server of its own: the Python client test (`python/test_*.py`, stubs generated from
//! `proto/` at test time, health and reflection as probes and grpcurl use them), the
//! Node.js client test (`node/`, @grpc/grpc-js with the protos loaded at run time), and the
//! README's grpcurl walkthrough run and compared with what the README shows
//! (`python/readme_walkthrough.py`).
//!
//! They need tools from outside the Rust toolchain: those `python/requirements.txt` lists,
//! and Node.js with the packages of `node/package-lock.json`. Where one is missing, the
//! test says what to install and passes, unless `ACCESSD_REQUIRE_CLIENT_TESTS=1` (as
//! `.ci/run` sets it) makes that a failure.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests and their helpers stop at the first failing line"
)]

#[path = "../process/mod.rs"]
mod process;

use std::{
    io::Write as _,
    path::Path,
    process::{Command, Output},
};

use process::Server;

/// Where the Python files and the README are found, whatever directory the test runs in.
const REPOSITORY: &str = env!("CARGO_MANIFEST_DIR");

/// What installs the Python packages and grpcurl.
const PIP_INSTALL: &str = "python3 -m pip install -r tests/clients/python/requirements.txt";

/// What installs the Node.js packages, at the versions of the lock file.
const NPM_INSTALL: &str = "npm ci --prefix tests/clients/node";

/// The modules the Python client test imports besides the standard library.
const PYTHON_MODULES: &str = "import grpc, grpc_tools.protoc, grpc_health.v1.health_pb2, \
     grpc_reflection.v1alpha.proto_reflection_descriptor_database";

#[tokio::test]
async fn python_client() {
    let probe = ["python3", "-c", PYTHON_MODULES];
    if !available("the Python client test", &probe, ".", PIP_INSTALL) {
        return;
    }
    let data_dir = tempfile::tempdir().unwrap();
    let server = Server::start(data_dir.path(), &[]).await;
    let ran = Command::new("python3")
        .args(["-m", "unittest", "discover", "--verbose"])
        .args(["--start-directory", "tests/clients/python"])
        .env("ACCESSD_ADDRESS", &server.address)
        // No __pycache__ left in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(REPOSITORY)
        .output()
        .unwrap();
    assert_succeeded(
        "python3 -m unittest discover tests/clients/python",
        &ran,
        "",
    );
    // unittest closes with `Ran N tests in T` and `OK`: say so past the capture.
    let summary = String::from_utf8_lossy(&ran.stderr);
    let count = summary
        .lines()
        .find_map(|l| l.strip_prefix("Ran ")?.split(" tests").next())
        .unwrap_or("?");
    report(&format!("clients: Python client test: {count} passed"));
}

#[tokio::test]
async fn readme_grpcurl_walkthrough() {
    let test = "the README's grpcurl walkthrough";
    if !available(test, &["python3", "-c", ""], ".", PIP_INSTALL)
        || !available(test, &["grpcurl", "-version"], ".", PIP_INSTALL)
    {
        return;
    }
    let version = Command::new("grpcurl").arg("-version").output().unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let server = Server::start(data_dir.path(), &[]).await;
    let ran = Command::new("python3")
        .arg("tests/clients/python/readme_walkthrough.py")
        .args(["README.md", &server.address])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(REPOSITORY)
        .output()
        .unwrap();
    // grpcurl prints its version on stderr; the README shows 1.8.6's output.
    let version = String::from_utf8_lossy(&version.stderr).trim().to_owned();
    assert_succeeded(
        "tests/clients/python/readme_walkthrough.py README.md",
        &ran,
        &format!("(with {version}; the README shows grpcurl v1.8.6's output)"),
    );
    report(&format!(
        "clients: {}",
        String::from_utf8_lossy(&ran.stdout).trim()
    ));
}

#[tokio::test]
async fn node_client() {
    let probe = [
        "node",
        "-e",
        "require.resolve('@grpc/grpc-js'); require.resolve('@grpc/proto-loader')",
    ];
    if !available(
        "the Node.js client test",
        &probe,
        "tests/clients/node",
        NPM_INSTALL,
    ) {
        return;
    }
    let data_dir = tempfile::tempdir().unwrap();
    let server = Server::start(data_dir.path(), &[]).await;
    let ran = Command::new("node")
        .arg("--test")
        .env("ACCESSD_ADDRESS", &server.address)
        .current_dir(Path::new(REPOSITORY).join("tests/clients/node"))
        .output()
        .unwrap();
    assert_succeeded("node --test (in tests/clients/node)", &ran, "");
    // The runner closes with `# pass N` and `# fail 0`: say so past the capture.
    let summary = String::from_utf8_lossy(&ran.stdout);
    let passed = summary
        .lines()
        .find_map(|l| l.strip_prefix("# pass "))
        .unwrap_or("?");
    report(&format!("clients: Node.js client test: {passed} passed"));
}

/// Whether `probe` runs and succeeds in `dir` (of the repository). If not, the test is
/// skipped with a message saying to run `install`, or fails with it when
/// `ACCESSD_REQUIRE_CLIENT_TESTS=1`.
fn available(test: &str, probe: &[&str], dir: &str, install: &str) -> bool {
    let (program, args) = probe.split_first().unwrap();
    let ran = Command::new(program)
        .args(args)
        .current_dir(Path::new(REPOSITORY).join(dir))
        .output();
    let why = match ran {
        Ok(ran) if ran.status.success() => return true,
        Ok(ran) => {
            // Python's traceback and Node.js's stack both name the missing module on
            // their last line holding `Error`.
            let stderr = String::from_utf8_lossy(&ran.stderr);
            let lines = || stderr.lines().map(str::trim).filter(|l| !l.is_empty());
            let why = lines()
                .rfind(|line| line.contains("Error"))
                .or_else(|| lines().next_back())
                .unwrap_or("no message");
            format!("`{}` failed: {why}", probe.join(" "))
        }
        Err(error) => format!("`{program}`: {error}"),
    };
    let message = format!("clients: {test}: {why}\n  install what it needs with: {install}");
    if std::env::var("ACCESSD_REQUIRE_CLIENT_TESTS").is_ok_and(|v| v == "1") {
        panic!("{message}\n  (ACCESSD_REQUIRE_CLIENT_TESTS=1: required here)");
    }
    report(&format!("{message}\n  skipped"));
    false
}

/// Writes `line` to stderr past the test harness's capture, so that a passing run shows
/// what it tested, and what it skipped.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Fails with everything `command` printed unless it exited 0.
fn assert_succeeded(command: &str, ran: &Output, note: &str) {
    assert!(
        ran.status.success(),
        "`{command}` {} {note}:\n{}{}",
        ran.status,
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
}
