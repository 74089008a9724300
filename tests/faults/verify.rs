//! What a restarted or healed server must show: every workspace in the state its lane's
//! acknowledged writes leave (or, for the request in flight, the state before or after
//! it), checks that agree, a revision that never goes back and covers every
//! acknowledged one, and a change log holding each revision up to it exactly once.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use accessd::proto::{self, record::Kind};

use crate::{model::Workspace, process::Server, workload::Lane};

/// What one verification found.
#[derive(Debug, Default)]
pub struct Verified {
    /// The server's revision.
    pub revision: u64,
    /// Requests in flight found applied.
    pub in_flight_applied: u64,
    /// Requests in flight found not applied.
    pub in_flight_absent: u64,
    /// Every difference from what was acknowledged, each described.
    pub failures: Vec<String>,
}

/// What the verifications of one data directory carry from one to the next: the
/// revision last seen, and how far the change log has been read.
#[derive(Default)]
pub struct Verifier {
    floor: u64,
    /// Each log file's length read and found right, so that each line is read once.
    read: BTreeMap<PathBuf, usize>,
    /// The (revision, part) of every line read.
    logged: BTreeSet<(u64, u64)>,
}

impl Verifier {
    /// Verifies `server` against every lane (settling their requests in flight) and
    /// against `others`, the workspaces written outside the lanes. A server that is
    /// `refusing_writes` may hold a group whose commit failed past its state at the end
    /// of its change log, which it must settle before it takes writes again.
    pub async fn verify(
        &mut self,
        server: &Server,
        lanes: &mut [Lane],
        others: &BTreeMap<String, Option<Workspace>>,
        refusing_writes: bool,
    ) -> Verified {
        let (revision, mut actual) = export(server).await;
        let mut verified = Verified {
            revision,
            ..Verified::default()
        };
        let failures = &mut verified.failures;
        for lane in lanes.iter_mut() {
            match lane.settle(&actual) {
                Ok(Some(true)) => verified.in_flight_applied += 1,
                Ok(Some(false)) => verified.in_flight_absent += 1,
                Ok(None) => {}
                Err(failure) => failures.push(failure),
            }
        }
        let expected = lanes
            .iter()
            .flat_map(|lane| lane.expected.iter())
            .chain(others);
        for (ws, state) in expected {
            let found = actual.remove(ws);
            if found != *state {
                failures.push(format!(
                    "{ws}: {}",
                    difference(state.as_ref(), found.as_ref())
                ));
            } else if let Some(state) = state {
                failures.extend(disagreeing_checks(server, ws, state).await);
            }
        }
        for ws in actual.keys() {
            failures.push(format!(
                "{ws}: a workspace nobody was acknowledged creating"
            ));
        }
        if revision < self.floor {
            failures.push(format!(
                "the revision went back from {} to {revision}",
                self.floor
            ));
        }
        self.floor = revision;
        let acknowledged = lanes.iter().filter_map(|lane| lane.revisions.last()).max();
        if let Some(acknowledged) = acknowledged.filter(|a| **a > revision) {
            failures.push(format!(
                "revision {acknowledged} was acknowledged, the server is at {revision}"
            ));
        }
        let log = self.change_log_failures(&server.data_dir, revision, refusing_writes);
        failures.extend(log);
        verified
    }
}

/// The whole database as one export reads it: its revision and each workspace's state.
async fn export(server: &Server) -> (u64, BTreeMap<String, Workspace>) {
    let mut stream = server
        .admin()
        .max_decoding_message_size(64 << 20)
        .export(proto::ExportRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut revision = 0;
    let mut workspaces: BTreeMap<String, Workspace> = BTreeMap::new();
    while let Some(page) = stream.message().await.unwrap() {
        revision = page.revision;
        for kind in page.records.iter().filter_map(|r| r.kind.as_ref()) {
            let ws = match kind {
                Kind::Workspace(r) => &r.workspace_id,
                Kind::Member(r) => &r.workspace_id,
                Kind::Resource(r) => &r.workspace_id,
                Kind::Grant(r) => &r.workspace_id,
            };
            workspaces.entry(ws.clone()).or_default().add(kind);
        }
    }
    (revision, workspaces)
}

/// How `found` differs from `expected`, briefly.
fn difference(expected: Option<&Workspace>, found: Option<&Workspace>) -> String {
    let (expected, found) = match (expected, found) {
        (Some(expected), Some(found)) => (expected, found),
        (Some(_), None) => return "acknowledged, but missing".into(),
        (None, Some(_)) => return "acknowledged deleted (or never created), but present".into(),
        (None, None) => return String::new(),
    };
    fn sets<T: Ord + std::fmt::Debug>(
        what: &str,
        expected: &BTreeSet<T>,
        found: &BTreeSet<T>,
    ) -> String {
        let missing: Vec<_> = expected.difference(found).take(3).collect();
        let extra: Vec<_> = found.difference(expected).take(3).collect();
        if missing.is_empty() && extra.is_empty() {
            return String::new();
        }
        format!("{what}: missing {missing:?}, unexpected {extra:?}; ")
    }
    let members = |ws: &Workspace| ws.members.iter().map(|(u, o)| (u.clone(), *o)).collect();
    let resources = |ws: &Workspace| {
        ws.resources
            .iter()
            .map(|(r, p)| (r.clone(), p.clone()))
            .collect()
    };
    format!(
        "{}{}{}{}",
        sets("products", &expected.products, &found.products),
        sets::<(String, bool)>("members", &members(expected), &members(found)),
        sets::<((String, String), String)>("resources", &resources(expected), &resources(found)),
        sets("grants", &expected.grants, &found.grants),
    )
}

/// The checks on `ws` that disagree with its state: every member may read the
/// workspace, someone else may not, and each `source_admin` on one source may update it.
async fn disagreeing_checks(server: &Server, ws: &str, state: &Workspace) -> Vec<String> {
    let check = |user: &str, permission: &str, source: Option<&str>| proto::CheckRequest {
        workspace_id: ws.into(),
        user_id: user.into(),
        permission: permission.into(),
        resource: source.map(|id| proto::ResourceRef {
            r#type: "source".into(),
            id: id.into(),
        }),
        at_least_revision: 0,
    };
    let mut checks: Vec<(proto::CheckRequest, bool)> =
        vec![(check("nobody", "workspace.read", None), false)];
    checks.extend(
        state
            .members
            .keys()
            .take(50)
            .map(|user| (check(user, "workspace.read", None), true)),
    );
    checks.extend(
        state
            .grants
            .iter()
            .filter(|(_, role, _)| role == "source_admin")
            .filter_map(|(user, _, scope)| Some((user, scope.as_ref()?)))
            .take(50)
            .map(|(user, (_, source))| (check(user, "source.update", Some(source)), true)),
    );
    let (requests, wanted): (Vec<_>, Vec<_>) = checks.into_iter().unzip();
    let answer = server
        .access()
        .batch_check(proto::BatchCheckRequest {
            checks: requests.clone(),
            at_least_revision: 0,
        })
        .await
        .unwrap()
        .into_inner();
    requests
        .iter()
        .zip(wanted)
        .zip(answer.decisions)
        .filter(|((_, wanted), decision)| decision.allowed != *wanted)
        .map(|((request, wanted), decision)| {
            format!(
                "{ws}: {} {} on {:?} should be {}: {}",
                request.user_id,
                request.permission,
                request.resource,
                if wanted { "allowed" } else { "denied" },
                decision.explanation
            )
        })
        .collect()
}

/// Where a change-log line stands: its revision, and which line of the entry it is. The
/// rest of the line is skipped unread, since the log grows to many megabytes.
#[derive(serde::Deserialize)]
struct LoggedPart {
    revision: u64,
    #[serde(default)]
    part: u64,
}

impl Verifier {
    /// What is wrong with the change log in `data_dir`, read from its files alone, for
    /// a server at `revision`: each revision from 1 to it logged, once, and none past
    /// it unless `ahead_allowed`. Lines past `revision` are read again next time, since
    /// a server that settles a failed group may cut them.
    fn change_log_failures(
        &mut self,
        data_dir: &Path,
        revision: u64,
        ahead_allowed: bool,
    ) -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(data_dir.join("change_log"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        files.sort();
        let mut failures = Vec::new();
        let mut ahead = None;
        for file in files {
            let contents = std::fs::read(&file).unwrap();
            let read = self.read.entry(file.clone()).or_insert(0);
            let Some(unread) = contents.get(*read..) else {
                failures.push(format!("{}: shorter than before", file.display()));
                continue;
            };
            // A line without its newline was cut short, so never acknowledged.
            for line in unread
                .split_inclusive(|b| *b == b'\n')
                .filter(|l| l.ends_with(b"\n"))
            {
                let Ok(LoggedPart {
                    revision: logged,
                    part,
                }) = serde_json::from_slice(line)
                else {
                    failures.push(format!("{}: a line that is not an entry", file.display()));
                    break;
                };
                if logged > revision {
                    ahead.get_or_insert(logged);
                    break;
                }
                if !self.logged.insert((logged, part)) {
                    failures.push(format!(
                        "the change log holds revision {logged} (part {part}) twice"
                    ));
                }
                *read += line.len();
            }
        }
        let missing = (1..=revision).find(|r| !self.logged.contains(&(*r, 0)));
        if let Some(missing) = missing {
            failures.push(format!("revision {missing} is not in the change log"));
        }
        if let Some(past) = ahead.filter(|_| !ahead_allowed) {
            failures.push(format!(
                "the change log holds revision {past}, past the state's {revision}"
            ));
        }
        failures
    }
}
