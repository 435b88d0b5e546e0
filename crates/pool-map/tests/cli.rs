//! The pool-map binary, run as a learner runs it: every way gives back every
//! result in its place, the claims hold (or are inconclusive on a busy
//! machine) at quick sizes, each claim fails when its phenomenon is taken
//! away, bad input gets exit code 2 with one line, and neither Ctrl-C nor
//! SIGKILL leaves a worker process behind.

use lesson_tests::{Lesson, assert_claims_hold, children_of, claim, figure, verdict_name};

fn lesson() -> Lesson {
    Lesson::new("pool-map", env!("CARGO_BIN_EXE_pool-map"))
}

const WAYS: [&str; 5] = ["plain loop", "thread pool", "scoped chunks", "rayon", "process pool"];

#[test]
fn quick_run_holds_its_claims_and_puts_every_result_in_place() {
    let report = lesson().json(&["--quick"]);
    assert_claims_hold(&report);
    for workload in ["heavy", "tiny"] {
        for way in WAYS {
            assert_eq!(
                figure(&report, &format!("{workload}, {way}"), "in order"),
                1024.0,
                "{workload}, {way}"
            );
        }
        assert_eq!(figure(&report, &format!("{workload}, plain loop"), "speedup"), 1.0);
    }
    // Counts and CPU time: neither depends on the machine's load.
    assert_eq!(verdict_name(&report, "results-in-order"), "holds");
    assert_eq!(verdict_name(&report, "process-pool-loses-on-tiny"), "holds");
    assert!(claim(&report, "results-in-order")["evidence"].as_str().unwrap().starts_with("8192/8192"));
}

#[test]
fn the_flags_set_the_workers_and_the_items() {
    let report = lesson().json(&["--quick", "--workers", "3", "--items", "100", "--heavy-us", "20"]);
    assert_claims_hold(&report);
    assert_eq!(report["params"]["workers"], 3);
    assert_eq!(report["params"]["heavy_us"], 20);
    for way in WAYS {
        assert_eq!(figure(&report, &format!("heavy, {way}"), "in order"), 100.0, "{way}");
    }
}

#[test]
fn one_worker_gains_nothing() {
    // The pools' parallelism taken away: a pool of one worker cannot run
    // the heavy items faster than the plain loop. Does not hold when the
    // cores were free; inconclusive when other programs held them; never holds.
    // Not --quick: its maps are too short for the claim to be judged.
    let report = lesson().json(&["--workers", "1", "--items", "256", "--heavy-us", "400"]);
    let gain = claim(&report, "pools-gain-on-heavy");
    let verdict = verdict_name(&report, "pools-gain-on-heavy");
    assert!(verdict == "does not hold" || verdict == "inconclusive", "{gain}");
    assert_eq!(verdict_name(&report, "results-in-order"), "holds");
}

#[test]
fn the_process_pool_does_not_lose_on_items_that_are_not_tiny() {
    // "Tiny" items of 5000 rounds (tens of microseconds each): the pipes'
    // cost is small beside the work, and the workers spend about the plain
    // loop's CPU time. The claim, resting on CPU time, fails.
    let report = lesson().json(&["--quick", "--items", "64", "--tiny-rounds", "5000"]);
    let loses = claim(&report, "process-pool-loses-on-tiny");
    assert_eq!(verdict_name(&report, "process-pool-loses-on-tiny"), "does not hold", "{loses}");
}

#[test]
fn the_sweep_runs_from_one_round_up() {
    let report = lesson().json(&["--quick", "--sweep", "--items", "256", "--heavy-us", "20"]);
    assert_claims_hold(&report);
    assert!(figure(&report, "sweep, 1 rounds", "process pool") > 0.0);
    assert!(figure(&report, "sweep, 4 rounds", "plain loop") > 0.0);
}

#[test]
fn bad_input_is_refused_with_one_line() {
    lesson().refuses(&[
        (&["--workers", "0"], "--workers"),
        (&["--workers", "many"], "--workers"),
        (&["--workers", "257"], "--workers"),
        (&["--items", "0"], "--items"),
        (&["--items", "-5"], "-5"),
        (&["--heavy-us", "0"], "--heavy-us"),
        (&["--tiny-rounds", "0"], "--tiny-rounds"),
        (&["--items", "1000000", "--heavy-us", "100000"], "--yes-long"),
        (&["--threads", "2"], "--threads"),
    ]);
}

#[test]
fn ctrl_c_leaves_no_worker_process() {
    // The process pool's workers are children from the start of the run.
    let outcome = lesson().interrupt_when(&[], |pid| !children_of(pid).is_empty());
    assert_eq!(outcome.status.code(), Some(130), "{outcome:?}");
    assert!(!outcome.children.is_empty(), "{outcome:?}");
    assert!(outcome.surviving_children.is_empty(), "{outcome:?}");
    assert!(outcome.orphans.is_empty(), "{outcome:?}");
}

#[test]
fn kill_9_leaves_no_worker_process() {
    // SIGKILL cannot be caught: the workers die with the lesson by the
    // kernel's parent-death signal, not when their input pipe closes.
    let outcome = lesson().kill_when(&["--workers", "3"], |pid| children_of(pid).len() >= 3);
    assert!(!outcome.children.is_empty(), "{outcome:?}");
    assert!(outcome.surviving_children.is_empty(), "{outcome:?}");
}
