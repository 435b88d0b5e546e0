//! The project's runner, as `cargo xtask <command>` (an alias in
//! `.cargo/config.toml`).
//!
//! - `list`: each lesson's name and claim (its Cargo.toml `description`);
//! - `all [--quick] [--busy]`: build every lesson once in release, run each
//!   with `--json`, then print one table of verdicts for this machine; exit 1
//!   if a lesson failed, printed invalid JSON, or a claim did not hold
//!   (inconclusive is honest, not a failure). `--busy` keeps two CPU-bound
//!   threads spinning beside the lessons, the load a learner's machine has;
//! - `tidy`: the checks of ARCHITECTURE.md that code can make (also a `#[test]`);
//! - `loom`: the loom models of every lesson that has one, with
//!   `RUSTFLAGS="--cfg loom"` in their own target directory;
//! - `eject LESSON DIR`: the lesson as a standalone crate (see [`eject`]).
//!
//! It reads the workspace through `cargo metadata --no-deps` and depends on
//! none of the lessons' crates, so `cargo xtask list` builds a handful of
//! small crates, not the whole kit.

mod all;
mod browser;
mod busy;
mod charts;
mod eject;
mod report;
mod run;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

/// The lesson catalogue of ARCHITECTURE.md, in reading order. The names are fixed:
/// the README, this runner and users type them.
pub const CATALOGUE: [&str; 16] = [
    "thread-basics",
    "race-condition",
    "lock-fix",
    "deadlock",
    "starvation",
    "livelock",
    "semaphore",
    "condition-variable",
    "daemon-workers",
    "sender-receiver",
    "cpu-bound",
    "io-bound",
    "spawn-cost",
    "fork-vs-spawn",
    "pool-map",
    "mmap-workaround",
];

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  list          each lesson's name and claim
  all [--quick] [--busy] [--json]
                build the lessons in release, run each with --json, print one
                table of verdicts; exit 1 if a lesson failed or a claim did not
                hold (inconclusive is not a failure). --quick: small sizes;
                --busy: two CPU-bound threads spin beside the lessons; --json:
                one JSON document (the machine, every lesson's report)
  report [--quick] [--busy] [--from FILE] [--out DIR]
                run every lesson (or read FILE, saved from `all --json`) and
                write DIR/report.html (charts, verdicts, the machine) and
                DIR/report.json [default DIR: target/report]
  report --compare A.json B.json [--out DIR]
                one page of two runs side by side: each figure of A beside
                B's with their ratio, every claim whose verdict differs
  tidy          check headers, the README table and stray debug prints
  loom          run every lesson's loom model (RUSTFLAGS=--cfg loom, target/loom)
  eject LESSON DIR
                write LESSON as a standalone crate in DIR (new or empty): its
                taught code and a plain main that asserts its rule";

fn main() -> ExitCode {
    // A lesson runs in a process group of its own (see `run`), so Ctrl-C
    // reaches only this runner, which passes it on to the lesson.
    run::catch_stop_signals();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = match args.as_slice() {
        ["list"] => list(),
        ["all", flags @ ..] if flags.iter().all(|f| ["--quick", "--busy", "--json"].contains(f)) => {
            all::run(flags.contains(&"--quick"), flags.contains(&"--busy"), flags.contains(&"--json"))
        }
        ["report", flags @ ..] => report::run(flags),
        ["tidy"] => tidy::run(),
        ["loom"] => loom(),
        ["eject", lesson, dir] => eject::run(lesson, Path::new(dir)),
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            Ok(true)
        }
        _ => {
            eprintln!("error: unknown command {:?}\n\n{USAGE}", args.join(" "));
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) if err.is::<Usage>() => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Bad usage, answered with exit code 2 by `main`.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// The workspace root: the xtask lives in `<root>/xtask`.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask/ has a parent").to_path_buf()
}

/// A lesson of this workspace.
#[derive(Debug, Clone)]
pub struct Lesson {
    /// Its number in the catalogue (1-based).
    pub number: usize,
    pub name: &'static str,
    /// Its claim, from the `description` of its Cargo.toml.
    pub description: String,
    /// Its package as `cargo metadata` describes it (dependencies, features).
    pub package: serde_json::Value,
}

/// What `cargo metadata --no-deps` says of the workspace: its own packages,
/// without resolving or building anything.
pub fn workspace_metadata(root: &Path) -> anyhow::Result<serde_json::Value> {
    let output = std::process::Command::new(cargo())
        .current_dir(root)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata failed ({})", output.status);
    }
    serde_json::from_slice(&output.stdout).context("reading cargo metadata's JSON")
}

/// The cargo that runs this xtask (cargo sets `CARGO` for what it runs).
pub fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The catalogue's lessons that exist in this workspace, in catalogue order.
pub fn lessons(root: &Path) -> anyhow::Result<Vec<Lesson>> {
    let metadata = workspace_metadata(root)?;
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let mut found = Vec::new();
    for (index, name) in CATALOGUE.iter().enumerate() {
        let Some(package) = packages.iter().find(|p| p["name"] == *name) else { continue };
        let description = package["description"]
            .as_str()
            .with_context(|| format!("the package {name} has no description"))?
            .to_string();
        found.push(Lesson { number: index + 1, name, description, package: package.clone() });
    }
    Ok(found)
}

/// The string value of `key = "..."` in a Cargo.toml's text. Enough TOML for
/// our own manifests, which keep such fields on one line.
pub fn manifest_field(text: &str, key: &str) -> anyhow::Result<String> {
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(key) else { continue };
        let Some(value) = rest.trim_start().strip_prefix('=') else { continue };
        let value = value.trim();
        if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
            return Ok(value[1..value.len() - 1].replace("\\\"", "\""));
        }
        bail!("{key} is not a one-line string: {line}");
    }
    bail!("no {key} field")
}

fn list() -> anyhow::Result<bool> {
    let lessons = lessons(&project_root())?;
    let width = lessons.iter().map(|l| l.name.len()).max().unwrap_or(0);
    for lesson in &lessons {
        println!("{:>2}  {:<width$}  {}", lesson.number, lesson.name, lesson.description);
    }
    Ok(true)
}

/// The marker of a lesson's loom model (see race-condition's main.rs).
const LOOM_MODEL: &str = "#[cfg(all(test, loom))]";

/// Runs the loom model of every lesson that has one in a `src/*.rs` file: in
/// release (loom explores many interleavings) and in `target/loom`, so that
/// the `--cfg loom` build does not invalidate the normal one.
fn loom() -> anyhow::Result<bool> {
    let root = project_root();
    let mut command = std::process::Command::new(cargo());
    command.current_dir(&root).env("RUSTFLAGS", "--cfg loom");
    command.args(["test", "--release", "--target-dir", "target/loom"]);
    let mut modelled = Vec::new();
    for lesson in lessons(&root)? {
        let src = root.join("crates").join(lesson.name).join("src");
        let mut has_model = false;
        for entry in std::fs::read_dir(&src).with_context(|| format!("reading {}", src.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "rs") {
                let text =
                    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                has_model |= text.contains(LOOM_MODEL);
            }
        }
        if has_model {
            command.args(["-p", lesson.name, "--bin", lesson.name]);
            modelled.push(lesson.name);
        }
    }
    if modelled.is_empty() {
        println!("no lesson has a loom model");
        return Ok(true);
    }
    eprintln!("loom models of: {}", modelled.join(", "));
    let status = command.status().context("running cargo test with --cfg loom")?;
    Ok(status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo test` enforces what `cargo xtask tidy` checks.
    #[test]
    fn tidy() {
        let problems = tidy::problems(&project_root()).unwrap();
        assert!(problems.is_empty(), "cargo xtask tidy found:\n{}", problems.join("\n"));
    }

    #[test]
    fn reads_one_line_manifest_fields() {
        let text = "[package]\nname = \"race-condition\"\ndescription = \"a \\\"quoted\\\" claim\"\n";
        assert_eq!(manifest_field(text, "name").unwrap(), "race-condition");
        assert_eq!(manifest_field(text, "description").unwrap(), "a \"quoted\" claim");
        assert!(manifest_field(text, "version").is_err());
    }

    #[test]
    fn the_workspace_has_lessons_in_catalogue_order() {
        let found = lessons(&project_root()).unwrap();
        assert!(found.len() >= 2);
        assert!(found.windows(2).all(|w| w[0].number < w[1].number));
    }
}
