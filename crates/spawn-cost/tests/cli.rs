//! The spawn-cost binary, run as a learner runs it: its claims hold at
//! quick sizes and every unit is counted exactly; units that use as much
//! stack as a process costs make the memory claim fail; Python is skipped,
//! not failed, when it is not wanted or not there; bad input gets exit code
//! 2 with one line, before anything starts; and Ctrl-C, at any moment,
//! leaves no child, no orphan and no temp file.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use lesson_tests::{Lesson, assert_claims_hold, children_of, figure, has_exited, verdict_name};

fn lesson() -> Lesson {
    Lesson::new("spawn-cost", env!("CARGO_BIN_EXE_spawn-cost"))
}

/// The same binary, started through `program` (a shell, `env`) with `args`
/// before its own: to run it under a limit or with another PATH.
fn through(program: &str) -> Lesson {
    Lesson::new("spawn-cost", program)
}

fn python3_found() -> bool {
    std::process::Command::new("python3").arg("--version").output().is_ok_and(|out| out.status.success())
}

#[test]
fn quick_run_holds_its_claims_and_counts_every_unit() {
    let report = lesson().json(&["--quick"]);
    assert_claims_hold(&report);
    assert_eq!(report["params"]["units"], 50);
    for way in ["thread", "fork", "spawn, this program", "spawn /bin/true"] {
        assert_eq!(figure(&report, way, "units"), 50.0, "{way}");
        assert_eq!(figure(&report, way, "finished"), 50.0, "{way}");
    }
    assert_eq!(figure(&report, "thread", "CPU vs thread"), 1.0);
    // A live process has pages of its own; a thread's are counted per thread.
    for unit in ["thread", "forked child", "spawned child"] {
        assert!(figure(&report, unit, "private") > 0.0, "{unit}");
    }
    if python3_found() {
        for (way, units) in
            [("python Thread", 50.0), ("python Process, fork", 10.0), ("python Process, spawn", 2.0)]
        {
            assert_eq!(figure(&report, way, "units"), units, "{way}");
            assert_eq!(figure(&report, way, "finished"), units, "{way}");
        }
        assert_ne!(verdict_name(&report, "python-process-costs-more"), "skipped");
    }
}

#[test]
fn units_that_use_a_mib_of_stack_are_no_lighter_as_threads() {
    // Every live unit writes 1 MiB of its stack first: the thread's memory
    // is then mostly its work, the same as a process's, and the claim that
    // a thread adds a small fraction fails.
    let report = lesson().json(&["--units", "20", "--stack-kib", "1024", "--python", "never"]);
    assert_eq!(verdict_name(&report, "thread-is-lighter"), "does not hold");
    assert!(figure(&report, "thread", "private") >= 1.0);
    assert!(figure(&report, "spawned child", "private") >= 1.0);
    assert_eq!(report["params"]["stack_kib"], 1024);
}

#[test]
fn python_never_or_missing_is_skipped_not_failed() {
    let report = lesson().json(&["--quick", "--python", "never", "--units", "7"]);
    assert_eq!(verdict_name(&report, "python-process-costs-more"), "skipped");
    assert_eq!(figure(&report, "fork", "finished"), 7.0);
    assert_eq!(report["params"]["python"], "never");
    // No python3 on the PATH (the lesson runs by its full path).
    let bin = env!("CARGO_BIN_EXE_spawn-cost");
    let output = through("/usr/bin/env").run(&["PATH=/nonexistent", bin, "--json", "--quick"]);
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(verdict_name(&report, "python-process-costs-more"), "skipped");
}

#[test]
fn bad_input_is_refused_with_one_line() {
    lesson().refuses(&[
        (&["--units", "0"], "--units"),
        (&["--units", "10001"], "--units"),
        (&["--units", "many"], "--units"),
        (&["--units", "-5"], "-5"),
        (&["--stack-kib", "1025"], "--stack-kib"),
        (&["--python", "maybe"], "--python"),
    ]);
    let bin = env!("CARGO_BIN_EXE_spawn-cost");
    // More threads than `ulimit -u` lets this user run (bash: dash has no -u).
    let limited = "ulimit -u 64 && exec \"$0\" \"$@\"";
    through("bash").refuses(&[(&["-c", limited, bin, "--units", "100"], "ulimit -u")]);
    // Python asked for, and not there.
    through("/usr/bin/env").refuses(&[(&["PATH=/nonexistent", bin, "--python", "always"], "python3")]);
    // More threads' stacks than `ulimit -v` leaves room for: refused, not started.
    let output = lesson().run_with_address_space(1 << 20, &["--units", "10000"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: --units 10000:") && stderr.contains("address space"), "{stderr}");
}

#[test]
fn ctrl_c_leaves_no_child_and_no_temp_file() {
    // Mid-run, with a unit's child alive.
    let outcome = lesson()
        .interrupt_when(&["--units", "2000", "--python", "never"], |pid| !children_of(pid).is_empty());
    assert_eq!(outcome.status.code(), Some(130), "{outcome:?}");
    assert!(outcome.surviving_children.is_empty(), "{outcome:?}");
    assert!(outcome.orphans.is_empty(), "{outcome:?}");
    if !python3_found() {
        return;
    }
    // While Python runs its own processes, with its script in a temp dir.
    let outcome = lesson().interrupt_when(&["--quick", "--python", "always"], |pid| {
        children_of(pid).into_iter().any(|child| !children_of(child).is_empty())
    });
    assert_eq!(outcome.status.code(), Some(130), "{outcome:?}");
    assert!(outcome.surviving_children.is_empty(), "{outcome:?}");
    assert!(outcome.orphans.is_empty(), "{outcome:?}");
    assert!(outcome.temp_entries_left.is_empty(), "{outcome:?}");
}

#[test]
fn ctrl_c_at_any_moment_leaves_no_orphan() {
    // Interrupted at ten moments across a run of about a second: the timed
    // units, the parked threads and children, Python. A run that ended
    // first (a zombie until reaped) is interrupted at its end.
    for moment in 0..10u64 {
        let first_look = std::sync::OnceLock::new();
        let outcome = lesson().interrupt_when(&["--units", "200"], |pid| {
            first_look.get_or_init(Instant::now).elapsed() >= Duration::from_millis(100 * moment)
                || has_exited(pid, Duration::ZERO)
        });
        // 130 after the clean-up; 0 if the run had ended; or, in the first
        // instant before the clean-up is installed, SIGINT's default action.
        let code = outcome.status.code();
        assert!(matches!(code, Some(130) | Some(0)) || outcome.status.signal() == Some(2), "{outcome:?}");
        assert!(outcome.surviving_children.is_empty(), "at {} ms: {outcome:?}", 100 * moment);
        assert!(outcome.orphans.is_empty(), "at {} ms: {outcome:?}", 100 * moment);
        assert!(outcome.temp_entries_left.is_empty(), "at {} ms: {outcome:?}", 100 * moment);
    }
}
