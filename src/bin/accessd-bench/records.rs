//! `accessd-bench records`: a data set written as a records file, one JSON line per
//! Import record in the format of `accessd import` (`accessd::cli::records`), so that
//! `accessd import` can be timed on the same data the benchmarks load.

use std::{
    fs::File,
    io::{BufWriter, Write},
    time::Instant,
};

use accessd::cli::records::RecordLine;

use crate::{
    args::RecordsArgs,
    dataset::{Dataset, Sizes},
    report,
};

/// Writes the data set of `args` to its file and says how much it wrote on stderr.
pub fn write(args: &RecordsArgs) -> Result<(), String> {
    let data = Dataset::generate(
        args.seed,
        Sizes {
            workspaces: args.workspaces,
            members: args.members,
            sources: args.sources,
            grant_pool: 0,
        },
    );
    let started = Instant::now();
    let to_stdout = args.file.as_os_str() == "-";
    let sink: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            File::create(&args.file)
                .map_err(|e| format!("cannot create `{}`: {e}", args.file.display()))?,
        )
    };
    let mut out = BufWriter::with_capacity(1 << 20, sink);
    let lines = write_lines(&data, &mut out)?;
    out.flush()
        .map_err(|e| format!("cannot write `{}`: {e}", args.file.display()))?;
    let counts = data.counts();
    eprintln!(
        "wrote {} records ({} workspaces, {} members, {} grants, {} instances) to `{}` in {:.1} s",
        report::thousands(lines),
        report::thousands(counts.workspaces),
        report::thousands(counts.members),
        report::thousands(counts.grants),
        report::thousands(counts.instances),
        args.file.display(),
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}

/// Writes the records of `data` to `out`, one line each; returns how many.
pub fn write_lines(data: &Dataset, out: &mut impl Write) -> Result<usize, String> {
    let mut lines = 0;
    for record in data.records() {
        let line = RecordLine::from_record(record)?;
        serde_json::to_writer(&mut *out, &line).map_err(|e| format!("cannot write: {e}"))?;
        out.write_all(b"\n")
            .map_err(|e| format!("cannot write: {e}"))?;
        lines += 1;
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_of_the_data_set_is_one_line_that_accessd_import_reads_back() {
        let data = Dataset::generate(
            3,
            Sizes {
                workspaces: 6,
                members: 8,
                sources: 4,
                grant_pool: 0,
            },
        );
        let mut out = Vec::new();
        let written = write_lines(&data, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(written, data.counts().records());
        assert_eq!(lines.len(), written);
        for (line, record) in lines.iter().zip(data.records()) {
            let parsed = RecordLine::parse(line).unwrap().into_record().unwrap();
            assert_eq!(parsed, record, "{line}");
        }
        assert!(
            lines[0].starts_with(r#"{"workspace":{"id":"ws_"#),
            "{}",
            lines[0]
        );
    }
}
