//! The flags every lesson shares, and the wrapper around a lesson's `main`.
//!
//! A lesson declares its own clap parser, flattens [`CommonArgs`] into it (and
//! [`SeedArg`] if it uses randomness), and ends `main` with [`finish`]:
//!
//! ```no_run
//! use clap::Parser;
//! use std::process::ExitCode;
//!
//! /// What the lesson shows.
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     common: common::cli::CommonArgs,
//!     /// Threads to start.
//!     #[arg(long, default_value_t = 5)]
//!     threads: usize,
//! }
//!
//! fn main() -> ExitCode {
//!     let args: Args = common::cli::parse();
//!     let report = common::Report::new("demo", "what the lesson shows");
//!     common::cli::finish(&args.common, Ok(report))
//! }
//! ```
//!
//! Exit codes follow `ARCHITECTURE.md`: 0 when the lesson ran (whatever its claims
//! showed), 1 when it failed at run time (`error: ...` on stderr, with its
//! causes), 2 for bad usage (one line saying what is wrong).

use std::fmt;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use clap::error::ErrorKind;

use crate::cleanup;
use crate::report::Report;

/// The flags of every lesson. Flatten it into the lesson's parser.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CommonArgs {
    /// Print one JSON object on stdout instead of the human report.
    #[arg(long)]
    pub json: bool,

    /// Use small sizes that finish in about a second (for tests and quick looks).
    #[arg(long)]
    pub quick: bool,

    /// Run even when the flags would make the run take longer than ten minutes
    /// (without it, such a run is refused with its estimate).
    #[arg(long)]
    pub yes_long: bool,
}

/// The longest run a lesson starts without `--yes-long`.
pub const LONG_RUN: Duration = Duration::from_secs(600);

impl CommonArgs {
    /// `full` normally, `quick` under `--quick`: how a lesson picks a default size.
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick { quick } else { full }
    }

    /// Refuses (a usage error, exit 2) a run whose `estimate`, worked out
    /// from its flags before anything starts, is over [`LONG_RUN`], unless
    /// `--yes-long` was given. `change` names the flags that set the length.
    pub fn check_run_time(&self, estimate: Duration, change: &str) -> anyhow::Result<()> {
        if estimate <= LONG_RUN || self.yes_long {
            return Ok(());
        }
        Err(usage_error(format!(
            "these flags would run for about {}; make {change} smaller, or add --yes-long",
            human_duration(estimate)
        )))
    }
}

/// A long duration in the largest unit that reads well: "3.5 days", "31 hours", "12 minutes".
pub fn human_duration(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    let (value, unit) = if secs >= 2.0 * 86_400.0 {
        (secs / 86_400.0, "days")
    } else if secs >= 2.0 * 3_600.0 {
        (secs / 3_600.0, "hours")
    } else if secs >= 120.0 {
        (secs / 60.0, "minutes")
    } else {
        (secs, "seconds")
    };
    if value >= 10.0 { format!("{value:.0} {unit}") } else { format!("{value:.1} {unit}") }
}

/// The `--seed` flag, for lessons that make random choices.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SeedArg {
    /// Seed for the lesson's random choices (an integer); the same seed repeats them.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

/// Bad usage found after parsing (a combination of flags that cannot work, a
/// file that is not there). [`finish`] answers it with exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Builds the error for bad usage that clap cannot see by itself.
pub fn usage_error(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// Parses the command line. On `--help` it prints the help and exits 0; on
/// bad usage it prints one line (clap's first line, which says what is
/// wrong) and exits 2, before any experiment starts. It only parses: a
/// lesson that starts children or writes files starts the clean-up on
/// Ctrl-C itself ([`cleanup::install`]).
pub fn parse<A: Parser>() -> A {
    // Help wraps to the terminal, and to 80 columns at most.
    let parsed =
        A::command().max_term_width(80).try_get_matches().and_then(|mut m| A::from_arg_matches_mut(&mut m));
    match parsed {
        Ok(args) => args,
        Err(err) => match err.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                // Printing help can only fail if stdout is closed; then there
                // is no one to tell.
                let _ = err.print();
                std::process::exit(0);
            }
            _ => {
                // A full or closed stderr cannot be told anything; the exit
                // code still says what happened.
                let _ = writeln!(std::io::stderr(), "{} (see --help)", one_line(&err.render().to_string()));
                std::process::exit(2);
            }
        },
    }
}

/// clap's message in one line: its first line, which says what is wrong,
/// and the values a flag takes, which clap puts on a line of their own.
fn one_line(text: &str) -> String {
    let first = text.lines().find(|line| !line.trim().is_empty()).unwrap_or("error: bad usage").trim_end();
    match text.lines().map(str::trim).find(|line| line.starts_with("[possible values:")) {
        Some(values) => format!("{first} {values}"),
        None => first.to_string(),
    }
}

/// Prints the lesson's report (text, or JSON under `--json`) and turns the
/// outcome into the exit code.
pub fn finish(common: &CommonArgs, outcome: anyhow::Result<Report>) -> ExitCode {
    // On Ctrl-C the clean-up thread kills the children, and the experiment
    // may fail because they died. That failure is not the lesson's: wait
    // here while the clean-up finishes and exits with 128 + the signal.
    while cleanup::stopping() {
        std::thread::park();
    }
    match outcome {
        Ok(report) => {
            let rendered = if common.json { report.to_json() } else { report.to_text() };
            print_report(&rendered)
        }
        Err(err) => match err.downcast_ref::<UsageError>() {
            Some(usage) => {
                let _ = writeln!(std::io::stderr(), "error: {usage}");
                ExitCode::from(2)
            }
            None => {
                // `{:#}` prints the whole chain of context: "reading corpus
                // big.txt: No such file or directory".
                let _ = writeln!(std::io::stderr(), "error: {err:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Writes the report to stdout. A reader that stopped reading (`| head`)
/// is no error: the lesson ran, and ends quietly. A stdout that cannot take
/// the report (a full disk) is: `error: ...` and exit code 1.
fn print_report(rendered: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(rendered.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "error: writing the report to stdout: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_skips_blank_lines_and_keeps_the_possible_values() {
        assert_eq!(one_line("\nerror: bad value\n\nUsage: x\n"), "error: bad value");
        assert_eq!(one_line(""), "error: bad usage");

        #[derive(Parser, Debug)]
        struct Choice {
            #[arg(long, value_enum)]
            python: Option<Mode>,
        }
        #[derive(clap::ValueEnum, Clone, Debug)]
        enum Mode {
            Auto,
            Off,
        }
        let err = Choice::try_parse_from(["x", "--python", "maybe"]).unwrap_err();
        let line = one_line(&err.render().to_string());
        assert!(line.starts_with("error: invalid value 'maybe' for '--python"), "{line}");
        assert!(line.ends_with("[possible values: auto, off]"), "{line}");
    }

    #[test]
    fn long_runs_are_refused_with_their_estimate_unless_asked_for() {
        let plain = CommonArgs::default();
        assert!(plain.check_run_time(Duration::from_secs(30), "--items").is_ok());
        let refused = plain.check_run_time(Duration::from_secs(3 * 86_400 + 43_200), "--items").unwrap_err();
        assert!(refused.is::<UsageError>());
        assert_eq!(
            refused.to_string(),
            "these flags would run for about 3.5 days; make --items smaller, or add --yes-long"
        );
        let asked = CommonArgs { yes_long: true, ..CommonArgs::default() };
        assert!(asked.check_run_time(Duration::from_secs(86_400 * 100), "--items").is_ok());
        assert_eq!(human_duration(Duration::from_secs(31 * 3600)), "31 hours");
    }

    #[test]
    fn pick_follows_quick() {
        let quick = CommonArgs { quick: true, ..CommonArgs::default() };
        assert_eq!(quick.pick(100, 1), 1);
        assert_eq!(CommonArgs::default().pick(100, 1), 100);
    }
}
