//! `accessd import FILE`: streams a records file (JSON lines, see `records`) to the
//! Import RPC while reading it; when the call breaks, reconnects and resumes from the
//! last batch the server acknowledged as durable; prints what the server applied and
//! rejected, with the file's line numbers.

mod reading;

use std::{
    fs::File,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;
use tokio::sync::{Notify, mpsc};
use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};
use tonic::{Code, Status};

use self::reading::{Feed, Reading, read};
use super::{
    CliError, EXIT_DENIED,
    args::{ImportArgs, OutputFormat},
    client,
    output::{self, Table},
};
use crate::proto;

/// The wait before the first resumption, doubled after each failed one up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two resumptions.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Progress is printed at most this often (the first acknowledgement always).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Rejections kept for the report; the rest are only counted.
const MAX_REPORTED_REJECTIONS: usize = 1_000;

/// What the server has acknowledged, over every call of the import so far.
#[derive(Debug, Default)]
struct Acknowledged {
    /// Every record before this index is durable or rejected: where a new call starts.
    next_index: u64,
    records: u64,
    applied: u64,
    unchanged: u64,
    rejected: u64,
    revision: u64,
    batches: u64,
    /// The first rejections, in index order.
    rejections: Vec<proto::RejectedRecord>,
    /// When the server last acknowledged something (or the import started).
    last_heard: Option<Instant>,
    /// When progress was last printed.
    last_printed: Option<Instant>,
}

impl Acknowledged {
    /// Counts what `progress` adds to `previous`, the call's message before it. A call's
    /// counts start at its first record, and calls follow one another without overlap,
    /// so each record is counted once.
    fn add(&mut self, previous: &proto::ImportProgress, progress: &proto::ImportProgress) {
        self.next_index = self.next_index.max(progress.next_index);
        self.records += progress.records.saturating_sub(previous.records);
        self.applied += progress.applied.saturating_sub(previous.applied);
        self.unchanged += progress.unchanged.saturating_sub(previous.unchanged);
        self.rejected += progress
            .rejected_count
            .saturating_sub(previous.rejected_count);
        self.batches += progress.batches.saturating_sub(previous.batches);
        self.revision = self.revision.max(progress.revision);
        let room = MAX_REPORTED_REJECTIONS.saturating_sub(self.rejections.len());
        self.rejections
            .extend(progress.rejected.iter().take(room).cloned());
        self.last_heard = Some(Instant::now());
    }

    /// Prints how far the import has come, unless it was printed a moment ago.
    fn print_progress(&mut self) {
        if self
            .last_printed
            .is_some_and(|at| at.elapsed() < PROGRESS_EVERY)
        {
            return;
        }
        self.last_printed = Some(Instant::now());
        eprintln!(
            "import: {} records durable or rejected, revision {}",
            self.next_index, self.revision
        );
    }
}

/// Why a call of the import ended before the server said it was done.
enum Broken {
    /// The connection or the server failed; a new call may resume the import.
    Resumable(CliError),
    /// The server refused the import, or the file could not be read: resuming would
    /// fail the same way.
    Fatal(CliError),
}

/// Whether a failed call may be resumed: the server is unavailable (starting, or not
/// taking writes for now), or the call failed on this side (a broken connection), which
/// tonic reports with the cause attached; a status the server sent has none.
fn resumable(status: &Status) -> bool {
    status.code() == Code::Unavailable || std::error::Error::source(status).is_some()
}

/// One call: sends the file's records from the last acknowledged one on and follows
/// the server's progress until it is done.
async fn call(args: &ImportArgs, acknowledged: &mut Acknowledged) -> Result<Reading, Broken> {
    let mut admin = client::admin(&args.options.server, &args.options.token)
        .await
        .map_err(|e| match e {
            CliError::Connect { .. } => Broken::Resumable(e),
            e => Broken::Fatal(e),
        })?;
    let path = args.file.clone();
    let file = File::open(&path)
        .map_err(|e| Broken::Fatal(CliError::file(&path, format_args!("cannot read: {e}"))))?;
    let from = acknowledged.next_index;
    let (sender, receiver) = mpsc::channel(8);
    let stop = Arc::new(Notify::new());
    let feed = Feed {
        sender,
        stop: Arc::clone(&stop),
        runtime: tokio::runtime::Handle::current(),
    };
    let mut reader = tokio::task::spawn_blocking(move || read(file, &path, from, &feed));
    // The stream ends at the reader's end-of-file marker, never merely because the
    // reader stopped: a file that could not be read to its end must not be taken for a
    // whole one. On a read error the call is dropped unfinished, which cancels it.
    let requests = ReceiverStream::new(receiver)
        .chain(tokio_stream::pending())
        .map_while(|chunk| chunk);
    let follow = async {
        let mut progress = admin.import(requests).await?.into_inner();
        let mut previous = proto::ImportProgress::default();
        while let Some(message) = progress.message().await? {
            acknowledged.add(&previous, &message);
            acknowledged.print_progress();
            if message.done {
                return Ok(true);
            }
            previous = message;
        }
        Ok::<_, Status>(false)
    };
    tokio::pin!(follow);
    let joined = |read: Result<Result<Reading, CliError>, tokio::task::JoinError>| {
        read.map_err(|e| CliError::Input(format!("reading the file failed: {e}")))?
    };
    let (answer, reading) = tokio::select! {
        read = &mut reader => {
            let reading = joined(read).map_err(Broken::Fatal)?;
            (follow.await, reading)
        }
        // Before the reader is done, only a refusal or a lost connection ends the call.
        answer = &mut follow => {
            stop.notify_one();
            (answer, joined(reader.await).map_err(Broken::Fatal)?)
        }
    };
    match answer {
        Ok(true) => Ok(reading),
        Ok(false) => Err(Broken::Resumable(CliError::Input(
            "the server ended the import before saying it was done".to_owned(),
        ))),
        Err(status) if resumable(&status) => Err(Broken::Resumable(status.into())),
        Err(status) => Err(Broken::Fatal(status.into())),
    }
}

#[derive(Serialize)]
struct Rejection {
    line: u64,
    reason: String,
}

#[derive(Serialize)]
struct Report {
    records: u64,
    applied: u64,
    unchanged: u64,
    rejected: u64,
    revision: u64,
    batches: u64,
    /// How many times the import was resumed after a broken call.
    resumed: u32,
    seconds: f64,
    records_per_second: f64,
    rejections: Vec<Rejection>,
}

/// Runs `accessd import`.
pub async fn import(args: ImportArgs) -> Result<ExitCode, CliError> {
    File::open(&args.file)
        .map_err(|e| CliError::file(&args.file, format_args!("cannot read: {e}")))?;
    let started = Instant::now();
    let mut acknowledged = Acknowledged {
        last_heard: Some(started),
        ..Acknowledged::default()
    };
    let mut backoff = FIRST_BACKOFF;
    let mut resumed = 0u32;
    let reading = loop {
        let heard_before = acknowledged.last_heard;
        let err = match call(&args, &mut acknowledged).await {
            Ok(reading) => break reading,
            Err(Broken::Fatal(err)) => return Err(err),
            Err(Broken::Resumable(err)) => err,
        };
        if acknowledged.last_heard != heard_before {
            backoff = FIRST_BACKOFF;
        }
        let silent = acknowledged
            .last_heard
            .map_or(Duration::ZERO, |at| at.elapsed());
        if silent + backoff > args.retry_for {
            if acknowledged.next_index > 0 {
                eprintln!(
                    "import: the server acknowledged the first {} records as durable or \
                     rejected; importing the file again is safe (records are upserts)",
                    acknowledged.next_index
                );
            }
            return Err(err);
        }
        eprintln!(
            "import: {err}; resuming after record {} in {:.1} s",
            acknowledged.next_index,
            backoff.as_secs_f64()
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        resumed += 1;
    };
    let seconds = started.elapsed().as_secs_f64();

    let rejections = acknowledged
        .rejections
        .iter()
        .map(|r| Rejection {
            line: reading.line(r.index),
            reason: reading.malformed(r.index).map_or_else(
                || r.reason.clone(),
                |local| format!("malformed line: {local}"),
            ),
        })
        .collect();
    let report = Report {
        records: acknowledged.records,
        applied: acknowledged.applied,
        unchanged: acknowledged.unchanged,
        rejected: acknowledged.rejected,
        revision: acknowledged.revision,
        batches: acknowledged.batches,
        resumed,
        seconds,
        records_per_second: acknowledged.records as f64 / seconds.max(1e-9),
        rejections,
    };
    match args.options.output {
        OutputFormat::Json => output::print_text(&output::json_text(&report)?)?,
        OutputFormat::Table => output::print_text(&report_text(&report))?,
    }
    Ok(if report.rejected > 0 {
        ExitCode::from(EXIT_DENIED)
    } else {
        ExitCode::SUCCESS
    })
}

fn report_text(report: &Report) -> String {
    let mut text = format!(
        "{} records: {} applied, {} unchanged, {} rejected; revision {} after {} batches; {:.2} s ({:.0} records/s)\n",
        report.records,
        report.applied,
        report.unchanged,
        report.rejected,
        report.revision,
        report.batches,
        report.seconds,
        report.records_per_second,
    );
    if report.resumed > 0 {
        text.push_str(&format!(
            "resumed {} times after the connection broke\n",
            report.resumed
        ));
    }
    if !report.rejections.is_empty() {
        let mut table = Table::new(&["LINE", "REASON"]);
        for rejection in &report.rejections {
            table.push(vec![rejection.line.to_string(), rejection.reason.clone()]);
        }
        text.push_str(&table.render());
        if report.rejected > report.rejections.len() as u64 {
            text.push_str(&format!(
                "... and {} more rejected records\n",
                report.rejected - report.rejections.len() as u64
            ));
        }
    }
    text
}
