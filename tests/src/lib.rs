//! Helpers for testing a lesson through its binary, as a user runs it.
//!
//! Each lesson's crate tests its own binary (`env!("CARGO_BIN_EXE_<name>")`)
//! with these helpers, and this package's own tests (`tests/protocol.rs`)
//! check the output protocol of every lesson in the workspace. They check
//! claims and exact counts, never printed text or absolute times.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::child::output_with_deadline;
pub use common::cleanup::children_of;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// How long one run of a lesson may take before the test calls it a hang.
/// `--quick` runs take about a second; this leaves room for a loaded machine.
pub const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Lessons run one at a time within a test binary. Tests run in parallel
/// threads, and two lessons timing their threads at once on a 2-core machine
/// would each measure the other's load: their timing claims would fail for
/// a reason that has nothing to do with the lesson.
static ONE_LESSON_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    // A test that panicked while running a lesson leaves the lock poisoned;
    // the next lesson may still run.
    ONE_LESSON_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A lesson's binary, ready to run.
#[derive(Debug, Clone)]
pub struct Lesson {
    pub name: String,
    pub bin: PathBuf,
}

impl Lesson {
    /// The lesson whose binary is at `bin` (use `env!("CARGO_BIN_EXE_<name>")`).
    pub fn new(name: &str, bin: impl Into<PathBuf>) -> Self {
        Lesson { name: name.to_string(), bin: bin.into() }
    }

    /// Runs the lesson with `args` and returns its output; panics if it runs
    /// longer than [`RUN_LIMIT`] (after killing it).
    pub fn run(&self, args: &[&str]) -> Output {
        let _turn = one_at_a_time();
        output_with_deadline(Command::new(&self.bin).args(args), RUN_LIMIT)
            .unwrap_or_else(|e| panic!("{} {args:?}: {e:#}", self.name))
    }

    /// Runs the lesson with `args` under `ulimit -v KIB` (a cap on its address
    /// space, which every thread's stack counts against): how a test makes
    /// `thread::Builder::spawn` fail for lack of room, even as root, whom
    /// `ulimit -u` does not limit.
    pub fn run_with_address_space(&self, kib: u64, args: &[&str]) -> Output {
        let _turn = one_at_a_time();
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
            .arg(&self.bin)
            .args(args)
            // One malloc arena: the threads' own arenas would take the room first.
            .env("MALLOC_ARENA_MAX", "1");
        output_with_deadline(&mut command, RUN_LIMIT)
            .unwrap_or_else(|e| panic!("{} {args:?}: {e:#}", self.name))
    }

    /// Runs the lesson with `--json` and `args`, checks that it exited 0 and
    /// printed exactly one JSON object in the protocol's shape, and returns it.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all_args = vec!["--json"];
        all_args.extend_from_slice(args);
        let output = self.run(&all_args);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{} {all_args:?} failed: {}\nstderr: {stderr}",
            self.name,
            output.status
        );
        let report: Value = serde_json::from_str(stdout.trim_end()).unwrap_or_else(|e| {
            panic!("{} printed something that is not one JSON object ({e}):\n{stdout}", self.name)
        });
        assert_eq!(stdout.trim_end().lines().count(), 1, "the JSON report is one line");
        check_protocol(&report, &self.name);
        report
    }

    /// Runs the lesson with bad `args` and checks that it answered as the
    /// protocol says: exit code 2, nothing on stdout, and one line on stderr
    /// saying what is wrong (returned, to check what it names).
    pub fn usage_error(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{} {args:?}: want exit 2, got {}; stderr: {stderr}",
            self.name,
            output.status
        );
        assert!(output.stdout.is_empty(), "{} {args:?} printed on stdout", self.name);
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{} {args:?}: want one line, got:\n{stderr}",
            self.name
        );
        assert!(stderr.starts_with("error: "), "{} {args:?}: {stderr}", self.name);
        assert!(!stderr.contains("panicked"), "{} {args:?} panicked: {stderr}", self.name);
        stderr
    }
}

/// Runs the one test `test` of the calling test executable again, alone, in
/// a process of its own under `ulimit -v 4 GiB`, with the variable `gate`
/// set (the test returns at once without it), and asserts that it passed.
/// How a lab's unit test makes `thread::Builder::spawn` fail without using
/// up the address space of the other tests. The test calls
/// [`fill_address_space`] first.
pub fn run_test_alone_with_little_address_space(test: &str, gate: &str) {
    let mut command = Command::new("sh");
    command
        .args(["-c", "ulimit -v 4194304 && exec \"$0\" \"$@\""])
        .arg(std::env::current_exe().expect("this test executable"))
        .args(["--exact", test, "--ignored", "--test-threads=1"])
        .env(gate, "1")
        .env("MALLOC_ARENA_MAX", "1");
    let output = output_with_deadline(&mut command, Duration::from_secs(60)).expect("running the test alone");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && stdout.contains("1 passed"), "{output:?}");
}

/// Reserves all but 1 MiB of the address space `ulimit -v` leaves this
/// process (without touching it): no room for one more thread's stack.
/// Panics when no address-space limit is set.
pub fn fill_address_space() -> Vec<u8> {
    let kb = |line: &str| line.split_whitespace().nth(1).and_then(|v| v.parse::<usize>().ok());
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    let used = status.lines().find(|l| l.starts_with("VmSize:")).and_then(kb).expect("a VmSize line") << 10;
    let limits = std::fs::read_to_string("/proc/self/limits").expect("reading /proc/self/limits");
    let cap: usize = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .expect("run under ulimit -v");
    Vec::with_capacity(cap - used - (1 << 20))
}

/// Asserts that a run failed as a runtime failure should: exit 1 and one
/// `error: ...` line on stderr starting with `error`, no panic.
pub fn assert_runtime_error(output: &Output, error: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stderr.starts_with(error), "want {error:?} first, got: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// What was left after a lesson was interrupted mid-run.
#[derive(Debug)]
pub struct Interrupted {
    /// The lesson's exit status (130 = 128 + SIGINT, after its clean-up).
    pub status: std::process::ExitStatus,
    /// The lesson's child processes at the moment it was interrupted.
    pub children: Vec<u32>,
    /// Those of them still running a while after the lesson exited.
    pub surviving_children: Vec<u32>,
    /// Entries named `<lesson>-*` in the temporary directory that appeared
    /// during the run and are still there.
    pub temp_entries_left: Vec<PathBuf>,
    /// Processes the lesson left without a parent (a grandchild whose parent
    /// it killed, say), which this test process adopted and reaped. After
    /// Ctrl-C there must be none: a lesson reaps everything it started, since
    /// the PID 1 of many containers reaps nothing. After SIGKILL the kernel
    /// ends what is tied to the lesson's life, and someone else reaps it.
    pub orphans: Vec<u32>,
}

impl Lesson {
    /// Runs the lesson with `args`, waits until `ready(pid)` says it is in
    /// the middle of its work (say, it has a child process), sends it SIGINT
    /// (Ctrl-C), and reports what it left behind.
    pub fn interrupt_when(&self, args: &[&str], ready: impl Fn(u32) -> bool) -> Interrupted {
        self.signal_when(args, Signal::SIGINT, ready)
    }

    /// The same with SIGKILL, which the lesson cannot catch: what the kernel
    /// cleans up for it (children tied to its life) is all that goes.
    pub fn kill_when(&self, args: &[&str], ready: impl Fn(u32) -> bool) -> Interrupted {
        self.signal_when(args, Signal::SIGKILL, ready)
    }

    fn signal_when(&self, args: &[&str], signal: Signal, ready: impl Fn(u32) -> bool) -> Interrupted {
        let _turn = one_at_a_time();
        // What the lesson orphans comes to this process instead of PID 1,
        // where it could not be counted.
        nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
        let ours_before = children_of(std::process::id());
        let temp_before = self.temp_entries();
        let mut child = Command::new(&self.bin)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.name));
        let pid = child.id();
        // Nothing announces "mid-run" from outside, so this looks every 5 ms,
        // for at most a minute.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !ready(pid) {
            if std::time::Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} {args:?} never reached the point to interrupt it", self.name);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let children = children_of(pid);
        kill(Pid::from_raw(pid as i32), signal).expect("sending the signal");
        let status = child.wait().expect("waiting for the interrupted lesson");
        let surviving_children =
            children.iter().copied().filter(|&c| !has_exited(c, Duration::from_secs(5))).collect();
        let temp_entries_left =
            self.temp_entries().into_iter().filter(|e| !temp_before.contains(e)).collect();
        let orphans: Vec<u32> =
            children_of(std::process::id()).into_iter().filter(|p| !ours_before.contains(p)).collect();
        for &orphan in &orphans {
            // Reaped here: a zombie, or a process that outlived the lesson.
            let _ = kill(Pid::from_raw(orphan as i32), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(orphan as i32), None);
        }
        Interrupted { status, children, surviving_children, temp_entries_left, orphans }
    }

    fn temp_entries(&self) -> Vec<PathBuf> {
        let prefix = format!("{}-", self.name);
        std::fs::read_dir(std::env::temp_dir())
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Checks each bad command line with [`Lesson::usage_error`], and that
    /// the one line names what was wrong (the flag or the value given).
    pub fn refuses(&self, cases: &[(&[&str], &str)]) {
        for (args, names) in cases {
            let message = self.usage_error(args);
            assert!(
                message.contains(names),
                "{} {args:?}: the message does not name {names}: {message}",
                self.name
            );
        }
    }
}

/// Checks the fields every lesson's JSON report has (ARCHITECTURE.md, the output protocol).
pub fn check_protocol(report: &Value, lesson: &str) {
    assert_eq!(report["lesson"], lesson, "lesson name");
    assert_eq!(report["schema"], 3, "schema version");
    assert!(report["host"]["cpu"].is_string() && report["host"]["rustc"].is_string(), "host fingerprint");
    assert!(report["claim"].as_str().is_some_and(|c| !c.is_empty()), "claim sentence");
    assert!(report["host"]["cores"].as_u64().is_some_and(|c| c >= 1), "host.cores");
    assert!(report["host"]["os"].is_string(), "host.os");
    assert!(matches!(report["host"]["profile"].as_str(), Some("debug" | "release")), "host.profile");
    assert!(report["params"].is_object(), "params");
    assert!(report["elapsed_s"].as_f64().is_some_and(|s| s >= 0.0), "elapsed_s");
    let results = report["results"].as_array().expect("results is an array");
    assert!(!results.is_empty(), "a lesson measures something");
    for r in results {
        assert!(
            r["experiment"].is_string() && r["metric"].is_string() && r["unit"].is_string(),
            "result fields: {r}"
        );
        assert!(r["value"].is_number(), "result value is a number: {r}");
    }
    assert!(results.iter().filter(|r| r["key"] == true).count() <= 1, "at most one key figure");
    let claims = report["claims"].as_array().expect("claims is an array");
    assert!(!claims.is_empty(), "a lesson checks at least one claim");
    for c in claims {
        assert!(
            c["id"].is_string() && c["statement"].is_string() && c["evidence"].is_string(),
            "claim fields: {c}"
        );
        let expected_holds = match c["verdict"].as_str() {
            Some("holds") => Value::Bool(true),
            Some("does not hold") => Value::Bool(false),
            Some("inconclusive" | "skipped") => {
                assert!(c["reason"].is_string(), "an undecided claim says why: {c}");
                Value::Null
            }
            _ => panic!("verdict is holds, does not hold, inconclusive or skipped: {c}"),
        };
        assert_eq!(c["holds"], expected_holds, "holds agrees with the verdict: {c}");
    }
}

/// Panics, naming each failing claim and its evidence, if a claim does not
/// hold. An inconclusive claim passes: on a busy machine it is the honest
/// verdict, and the test suite must pass where learners run it.
pub fn assert_claims_hold(report: &Value) {
    let failing: Vec<String> = report["claims"]
        .as_array()
        .expect("claims")
        .iter()
        .filter(|c| c["holds"] == false)
        .map(|c| format!("{}: {} ({})", c["id"], c["statement"], c["evidence"]))
        .collect();
    assert!(failing.is_empty(), "claims that did not hold:\n{}", failing.join("\n"));
}

/// The value of `metric` measured by `experiment`.
pub fn figure(report: &Value, experiment: &str, metric: &str) -> f64 {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["experiment"] == experiment && r["metric"] == metric)
        .and_then(|r| r["value"].as_f64())
        .unwrap_or_else(|| panic!("no figure {experiment} / {metric} in {report}"))
}

/// The verdict of claim `id`: `Some(true)` holds, `Some(false)` does not,
/// `None` inconclusive or skipped (see [`verdict_name`]).
pub fn verdict(report: &Value, id: &str) -> Option<bool> {
    claim(report, id)["holds"].as_bool()
}

/// The verdict of claim `id` by name: "holds", "does not hold", "inconclusive" or "skipped".
pub fn verdict_name(report: &Value, id: &str) -> String {
    let claim = claim(report, id);
    claim["verdict"].as_str().unwrap_or_else(|| panic!("claim {id} has no verdict: {claim}")).to_string()
}

/// Claim `id` of the report.
pub fn claim<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["claims"]
        .as_array()
        .expect("claims")
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no claim {id} in {report}"))
}

/// The workspace root (this package lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The lessons of the workspace: every `crates/<name>` with a `src/main.rs`, sorted by name.
pub fn lesson_names() -> Vec<String> {
    let crates = workspace_root().join("crates");
    let mut names: Vec<String> = std::fs::read_dir(&crates)
        .unwrap_or_else(|e| panic!("reading {}: {e}", crates.display()))
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("src/main.rs").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Whether process `pid` has exited (its `/proc` entry is gone, or it is a
/// zombie waiting for its parent), waiting up to `within` for it to happen.
///
/// For a process that is not our child, whose end we cannot wait for, this
/// looks every 10 ms.
pub fn has_exited(pid: u32, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    loop {
        let gone = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            // The state letter follows the command name, which is in parentheses.
            Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
        };
        if gone {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
