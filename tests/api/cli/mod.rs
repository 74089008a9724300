//! The operator CLI: the real `accessd` binary run against a TestServer (or, for
//! `serve`, run as the server), checking its output, its JSON and its exit status.
//! Each test writes a command as the line an operator types; see `words`.

mod audit;
mod backup;
mod connection;
mod import_export;
mod import_resume;
mod migrate_legacy;
mod reads;
mod roles;
mod serve;
mod writes;

use std::{
    fmt::Display,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde_json::Value;

use crate::harness::*;

/// What a run of the binary printed, and its exit status.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The standard output of a run that must have succeeded.
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        &self.stdout
    }

    /// The standard output of a successful run, as JSON.
    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap()
    }

    /// The error message of a run that must have failed with `code`.
    fn failed(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stderr
    }
}

/// The words of a command line, split as a shell splits a simple command: at whitespace,
/// except inside single quotes, which keep what they hold as it is (`''` is an empty
/// word, `'a b'` one word). Nothing else is special: no double quotes, escapes or
/// variables, so what a test writes is what the binary gets. A long line may continue
/// on the next with a Rust `\`, after a space, as in a shell.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    // `None` between words, so that `''` still makes a word, an empty one.
    let mut word: Option<String> = None;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            c if c.is_whitespace() && !quoted => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(!quoted, "unclosed quote in `{line}`");
    words.extend(word);
    words
}

/// `value` as one word of a command line, in single quotes: for computed words, such as
/// temporary paths, that might hold spaces. A value holding a quote is refused, since
/// `words` has no way to escape one.
fn quote(value: impl Display) -> String {
    let value = value.to_string();
    assert!(!value.contains('\''), "cannot quote `{value}`");
    format!("'{value}'")
}

/// Runs `accessd LINE` against `server` (named by `ACCESSD_ADDR`).
async fn accessd(server: &TestServer, line: impl AsRef<str>) -> Run {
    let addr = format!("http://{}", server.addr);
    accessd_with(&[("ACCESSD_ADDR", &addr)], line).await
}

/// Runs `accessd LINE` with `env` and no other `ACCESSD_*` variable. The child runs on
/// a blocking thread so that an in-process TestServer keeps serving meanwhile.
async fn accessd_with(env: &[(&str, &str)], line: impl AsRef<str>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_accessd"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ACCESSD_") {
            command.env_remove(name);
        }
    }
    command
        .args(words(line.as_ref()))
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Workspace `acme` owned by olivia, with member sam holding `source_admin` on the
/// registered source `ios-prod`.
async fn acme(server: &TestServer) {
    create_workspace(server, "acme", "olivia", &["protocols"]).await;
    add_member(server, "acme", "sam").await;
    register(server, "acme", "source", "ios-prod", "").await;
    grant(
        server,
        "acme",
        "sam",
        "source_admin",
        one("source", "ios-prod"),
    )
    .await;
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}
