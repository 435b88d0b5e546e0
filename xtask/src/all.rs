//! `cargo xtask all`: every lesson once, one table of verdicts for this machine.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::run::output_with_deadline;
use crate::{Lesson, lessons, project_root};

/// A lesson's defaults finish in seconds; this bound only stops a hang.
const LESSON_LIMIT: Duration = Duration::from_secs(300);

/// What one lesson's run came to, for the summary table.
pub struct Outcome {
    pub name: &'static str,
    /// "3/3", or "2/3 1?" when a claim was inconclusive; the other verdicts
    /// are counted apart.
    claims: String,
    key_figure: String,
    seconds: f64,
    /// Why the lesson failed, if it did (it did not run, or a claim did not hold).
    failure: Option<String>,
    /// A line per claim that did not hold or was inconclusive, with its evidence.
    undecided: Vec<String>,
    /// The lesson's own JSON report, when it printed one.
    pub report: Option<Value>,
}

/// One `cargo xtask all`: every lesson's outcome, in catalogue order.
pub struct Run {
    pub outcomes: Vec<Outcome>,
    pub quick: bool,
    pub busy: bool,
    pub elapsed: Duration,
}

impl Run {
    /// Whether every lesson ran and no claim failed.
    pub fn passed(&self) -> bool {
        self.outcomes.iter().all(|o| o.failure.is_none())
    }
}

/// The version of the `cargo xtask all --json` document.
pub const DOCUMENT_SCHEMA: u32 = 1;

/// `cargo xtask all`: the table for a human, or with `json` one JSON
/// document on stdout (see [`document`]).
pub fn run(quick: bool, busy: bool, json: bool) -> anyhow::Result<bool> {
    let run = execute(quick, busy)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&document(&run))?);
    } else {
        print_summary(&run.outcomes, quick, busy);
    }
    Ok(run.passed())
}

/// Builds the lessons, runs each once (progress on stderr) and returns what
/// they came to.
pub fn execute(quick: bool, busy: bool) -> anyhow::Result<Run> {
    let started = Instant::now();
    let root = project_root();
    let lessons = lessons(&root)?;
    if lessons.is_empty() {
        bail!("no lessons found under {}", root.join("crates").display());
    }
    let binaries = build_release(&root, &lessons)?;
    // Two threads of this runner spin beside the lessons: the load a learner
    // has (a browser, a compiler). They stop when this process ends.
    let _load = busy.then(crate::busy::Load::start);

    let mut outcomes = Vec::new();
    for (index, lesson) in lessons.iter().enumerate() {
        let bin = binaries
            .get(lesson.name)
            .with_context(|| format!("cargo built no binary for {}", lesson.name))?;
        let of = lessons.len();
        eprint!("[{:>w$}/{of}] {:<18} ", index + 1, lesson.name, w = of.to_string().len());
        let outcome = run_lesson(lesson, bin, quick);
        match &outcome.failure {
            None => eprintln!("ok      {:>5} claims  {:>6.2} s", outcome.claims, outcome.seconds),
            Some(why) => eprintln!("FAILED  {why}"),
        }
        outcomes.push(outcome);
    }
    Ok(Run { outcomes, quick, busy, elapsed: started.elapsed() })
}

/// The `cargo xtask all --json` document: the machine's fingerprint, every
/// lesson's own report in catalogue order, the lessons that failed, and the
/// run's total time.
///
/// The fingerprint is the `host` object the lessons report (the kit reads
/// it, so it is written once), with the tools of every lesson merged; the
/// runner's own process sees the same cores and machine.
pub fn document(run: &Run) -> Value {
    let reports: Vec<&Value> = run.outcomes.iter().filter_map(|o| o.report.as_ref()).collect();
    let mut machine = reports.first().map(|r| r["host"].clone()).unwrap_or_else(|| serde_json::json!({}));
    let mut tools = serde_json::Map::new();
    for report in &reports {
        if let Some(found) = report["host"]["tools"].as_object() {
            tools.extend(found.clone());
        }
    }
    if let Some(machine) = machine.as_object_mut() {
        machine.insert("tools".into(), Value::Object(tools));
    }
    let failures: Vec<Value> = run
        .outcomes
        .iter()
        .filter_map(|o| o.failure.as_ref().map(|why| serde_json::json!({"lesson": o.name, "failure": why})))
        .collect();
    serde_json::json!({
        "runner": "cargo xtask all",
        "schema": DOCUMENT_SCHEMA,
        "quick": run.quick,
        "busy": run.busy,
        "machine": machine,
        "lessons": reports,
        "failures": failures,
        "elapsed_s": run.elapsed.as_secs_f64(),
    })
}

/// Builds every lesson's binary once, in release (the profile the figures
/// are quoted from), and returns where cargo put each one.
///
/// Cargo unifies a dependency's features across the packages of one build,
/// and parking_lot's `deadlock_detection` (the deadlock lesson's detector)
/// adds bookkeeping to every parking_lot lock: lessons that enable a feature
/// of a shared dependency are built in a cargo run of their own, so that
/// lock-fix and starvation measure the locks a user of theirs would get.
fn build_release(root: &PathBuf, lessons: &[Lesson]) -> anyhow::Result<HashMap<String, PathBuf>> {
    let (own_features, plain): (Vec<&Lesson>, Vec<&Lesson>) =
        lessons.iter().partition(|l| enables_features(l));
    let mut binaries = HashMap::new();
    for group in [plain, own_features] {
        if !group.is_empty() {
            binaries.extend(build_release_together(root, &group)?);
        }
    }
    Ok(binaries)
}

/// Whether the lesson turns on a feature of a dependency beyond its
/// defaults (see [`build_release`]).
fn enables_features(lesson: &Lesson) -> bool {
    lesson.package["dependencies"].as_array().is_some_and(|deps| {
        deps.iter().any(|d| {
            d["kind"].is_null()
                && d["features"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|feature| feature == "deadlock_detection"))
        })
    })
}

fn build_release_together(root: &PathBuf, lessons: &[&Lesson]) -> anyhow::Result<HashMap<String, PathBuf>> {
    let mut command = Command::new(crate::cargo());
    command.current_dir(root).args([
        "build",
        "--release",
        "--bins",
        "--message-format=json-render-diagnostics",
    ]);
    for lesson in lessons {
        command.args(["-p", lesson.name]);
    }
    // Cargo's progress and diagnostics go to our stderr as usual; its JSON
    // messages on stdout say where each binary is.
    let output = command.stderr(Stdio::inherit()).output().context("running cargo build")?;
    if !output.status.success() {
        bail!("cargo build --release failed ({})", output.status);
    }
    let mut binaries = HashMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else { continue };
        if message["reason"] == "compiler-artifact"
            && let (Some(name), Some(exe)) =
                (message["target"]["name"].as_str(), message["executable"].as_str())
        {
            binaries.insert(name.to_string(), PathBuf::from(exe));
        }
    }
    Ok(binaries)
}

fn run_lesson(lesson: &Lesson, bin: &PathBuf, quick: bool) -> Outcome {
    let mut outcome = Outcome {
        name: lesson.name,
        claims: "-".into(),
        key_figure: "-".into(),
        seconds: 0.0,
        failure: None,
        undecided: Vec::new(),
        report: None,
    };
    let mut command = Command::new(bin);
    command.arg("--json");
    if quick {
        command.arg("--quick");
    }
    let started = Instant::now();
    let result = output_with_deadline(&mut command, LESSON_LIMIT);
    outcome.seconds = started.elapsed().as_secs_f64();
    let output = match result {
        Ok(output) => output,
        Err(err) => {
            outcome.failure = Some(format!("{err:#}"));
            return outcome;
        }
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        outcome.failure = Some(format!("{}: {}", output.status, stderr.trim()));
        return outcome;
    }
    let report: Value = match serde_json::from_slice(&output.stdout) {
        Ok(report) => report,
        Err(err) => {
            outcome.failure = Some(format!("stdout is not one JSON object: {err}"));
            return outcome;
        }
    };
    outcome.report = Some(report.clone());
    let claims = report["claims"].as_array().cloned().unwrap_or_default();
    let count = |verdict: &str| claims.iter().filter(|c| c["verdict"] == verdict).count();
    let (held, failed, inconclusive, skipped) =
        (count("holds"), count("does not hold"), count("inconclusive"), count("skipped"));
    let tested = held + failed + inconclusive;
    outcome.claims = format!("{held}/{tested}");
    if inconclusive > 0 {
        outcome.claims.push_str(&format!(" {inconclusive}?"));
    }
    if skipped > 0 {
        outcome.claims.push_str(&format!(" {skipped} skipped"));
    }
    outcome.key_figure = key_figure(&report);
    for claim in &claims {
        let id = claim["id"].as_str().unwrap_or("?");
        let evidence = claim["evidence"].as_str().unwrap_or("");
        match claim["verdict"].as_str() {
            Some("does not hold") => outcome.undecided.push(format!("✘ {id}: {evidence}")),
            Some("inconclusive") => outcome.undecided.push(format!(
                "? {id}: {} ({evidence})",
                claim["reason"].as_str().unwrap_or("no reason given")
            )),
            Some("holds" | "skipped") => {}
            _ => outcome.failure = Some(format!("claim {id} has no verdict")),
        }
    }
    let failed_ids: Vec<&str> =
        claims.iter().filter(|c| c["verdict"] == "does not hold").filter_map(|c| c["id"].as_str()).collect();
    if claims.is_empty() {
        outcome.failure = Some("the report has no claims".into());
    } else if !failed_ids.is_empty() {
        outcome.failure = Some(format!("claims that did not hold: {}", failed_ids.join(", ")));
    }
    outcome
}

/// The figure the lesson marked as key (or its first), as "experiment: metric value unit".
fn key_figure(report: &Value) -> String {
    let results = report["results"].as_array().cloned().unwrap_or_default();
    let Some(figure) = results.iter().find(|r| r["key"] == true).or(results.first()) else {
        return "-".into();
    };
    let value = match (figure["value"].as_u64(), figure["value"].as_f64()) {
        (Some(count), _) => count.to_string(),
        (None, Some(real)) => about_three_digits(real),
        _ => "?".into(),
    };
    format!(
        "{}: {} {} {}",
        figure["experiment"].as_str().unwrap_or("?"),
        figure["metric"].as_str().unwrap_or("?"),
        value,
        figure["unit"].as_str().unwrap_or("")
    )
    .trim_end()
    .to_string()
}

/// `text` cut to `width` characters, with an ellipsis where it was cut.
pub fn shortened(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    text.chars().take(width.saturating_sub(1)).chain(['…']).collect()
}

/// A measured real with about three significant digits, as the lessons print it.
pub fn about_three_digits(value: f64) -> String {
    let decimals = match value.abs() {
        0.0 => 0,
        v if v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        v if v >= 1.0 => 2,
        _ => 3,
    };
    format!("{value:.decimals$}")
}

pub fn print_summary(outcomes: &[Outcome], quick: bool, busy: bool) {
    let rows: Vec<[String; 5]> = outcomes
        .iter()
        .map(|o| {
            [
                o.name.to_string(),
                if o.failure.is_none() { "ok".into() } else { "FAILED".into() },
                o.claims.clone(),
                o.key_figure.clone(),
                format!("{:.2}", o.seconds),
            ]
        })
        .collect();
    let header = ["lesson", "result", "claims", "key figure", "seconds"].map(String::from);
    let mut widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().chain([&header]).map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    // The table keeps within 80 columns: the key figure gives way.
    let others: usize = widths.iter().enumerate().filter(|&(c, _)| c != 3).map(|(_, w)| w).sum();
    widths[3] = widths[3].min(80usize.saturating_sub(others + 8).max(10));
    let rows: Vec<[String; 5]> = rows
        .into_iter()
        .map(|mut row| {
            row[3] = shortened(&row[3], widths[3]);
            row
        })
        .collect();
    println!(
        "\ncargo xtask all{}{}: {} lessons on this machine\n",
        if quick { " --quick" } else { "" },
        if busy { " --busy" } else { "" },
        rows.len()
    );
    for row in [&header].into_iter().chain(&rows) {
        println!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {:>w4$}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4]
        );
    }
    // The evidence of every claim that did not hold or was inconclusive.
    for o in outcomes.iter().filter(|o| !o.undecided.is_empty()) {
        println!("\n{}:", o.name);
        for line in &o.undecided {
            println!("  {line}");
        }
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    let inconclusive = outcomes.iter().flat_map(|o| &o.undecided).filter(|l| l.starts_with('?')).count();
    if failed.is_empty() {
        println!("\nevery lesson ran and no claim it tested failed ({inconclusive} inconclusive)");
    } else {
        println!();
        for o in failed {
            println!("{} FAILED: {}", o.name, o.failure.as_deref().unwrap_or(""));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in lesson: a shell script that prints `stdout` and exits with `code`.
    fn fake_lesson(tag: &str, stdout: &str, code: i32) -> PathBuf {
        let path = std::env::temp_dir().join(format!("xtask-fake-{tag}-{}.sh", std::process::id()));
        std::fs::write(&path, format!("#!/bin/sh\ncat <<'END'\n{stdout}\nEND\nexit {code}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Held while a test writes its script and runs it. Another test's fork
    /// in between would inherit the script's still-open write descriptor,
    /// and exec would then fail with "Text file busy".
    static ONE_SCRIPT_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn outcome_of(tag: &str, stdout: &str, code: i32) -> Outcome {
        let _turn = ONE_SCRIPT_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let lesson =
            Lesson { number: 2, name: "race-condition", description: String::new(), package: Value::Null };
        let script = fake_lesson(tag, stdout, code);
        let outcome = run_lesson(&lesson, &script, true);
        std::fs::remove_file(script).unwrap();
        outcome
    }

    const REPORT: &str = r#"{"results":[{"experiment":"A","metric":"lost","value":7,"unit":"updates","key":true}],"claims":[{"id":"x","verdict":"VERDICT","reason":"only 1.1 cores","evidence":"1.2x"},{"id":"y","verdict":"skipped"}]}"#;

    #[test]
    fn a_lesson_whose_claims_hold_passes() {
        let outcome = outcome_of("ok", &REPORT.replace("VERDICT", "holds"), 0);
        assert!(outcome.failure.is_none());
        assert_eq!(outcome.claims, "1/1 1 skipped");
        assert_eq!(outcome.key_figure, "A: lost 7 updates");
        assert!(outcome.undecided.is_empty());
    }

    #[test]
    fn an_inconclusive_claim_passes_with_its_reason_shown() {
        let outcome = outcome_of("inconclusive", &REPORT.replace("VERDICT", "inconclusive"), 0);
        assert!(outcome.failure.is_none());
        assert_eq!(outcome.claims, "0/1 1? 1 skipped");
        assert_eq!(outcome.undecided, ["? x: only 1.1 cores (1.2x)"]);
    }

    #[test]
    fn a_claim_that_did_not_hold_fails_the_run_with_its_evidence() {
        let outcome = outcome_of("claim", &REPORT.replace("VERDICT", "does not hold"), 0);
        assert_eq!(outcome.failure.as_deref(), Some("claims that did not hold: x"));
        assert_eq!(outcome.undecided, ["✘ x: 1.2x"]);
    }

    #[test]
    fn a_long_key_figure_is_cut_to_fit() {
        assert_eq!(shortened("split load/store: lost", 10), "split loa…");
        assert_eq!(shortened("short", 10), "short");
    }

    #[test]
    fn invalid_json_or_a_failed_exit_fails_the_run() {
        assert!(outcome_of("json", "not json", 0).failure.unwrap().contains("not one JSON object"));
        assert!(outcome_of("exit", &REPORT.replace("VERDICT", "holds"), 1).failure.is_some());
    }
}
