//! The starvation binary, run as a learner runs it: its claims hold (or
//! are inconclusive on a busy machine) at quick sizes, every turn is
//! counted once, the unfair claim fails when the unfair slot unlocks
//! fairly, and bad input gets exit code 2 with one line.

use lesson_tests::{Lesson, assert_claims_hold, figure, verdict_name};

fn lesson() -> Lesson {
    Lesson::new("starvation", env!("CARGO_BIN_EXE_starvation"))
}

const LOCKS: [&str; 3] = ["unlock", "unlock_fair", "std Mutex"];

#[test]
fn quick_run_holds_its_claims_and_counts_every_turn() {
    let report = lesson().json(&["--quick", "--threads", "3"]);
    assert_claims_hold(&report);
    assert_eq!(report["params"]["threads"], 3);
    for lock in LOCKS {
        // The threads' own counts add up to the total, and every share is
        // a share of it.
        let per_thread: f64 = (0..3).map(|thread| figure(&report, &format!("thread {thread}"), lock)).sum();
        assert_eq!(per_thread, figure(&report, "all threads", lock), "{lock}");
        assert!(per_thread > 0.0, "{lock}");
        let (idlest, busiest) = (figure(&report, lock, "idlest"), figure(&report, lock, "busiest"));
        assert!(idlest <= 1.0 / 3.0 + 1e-9 && busiest >= 1.0 / 3.0 - 1e-9, "{lock}: {idlest} {busiest}");
        assert!((0.0..=1.0).contains(&figure(&report, lock, "taken back")), "{lock}");
    }
}

/// Fair unlocking in the unfair slot removes the unfairness: the claim is
/// never "holds" then (does not hold where two cores are free, inconclusive
/// where they are not).
#[test]
fn unfair_claim_fails_when_the_unfair_slot_unlocks_fairly() {
    let report = lesson().json(&["--quick", "--unfair-with", "unlock-fair"]);
    assert_eq!(report["params"]["unfair_with"], "unlock-fair");
    let verdict = verdict_name(&report, "unfair-starves");
    assert!(verdict == "does not hold" || verdict == "inconclusive", "{verdict}");
}

#[test]
fn bad_input_is_refused_with_one_line() {
    lesson().refuses(&[
        (&["--threads", "1"], "--threads"),
        (&["--threads", "65"], "--threads"),
        (&["--threads", "many"], "--threads"),
        (&["--millis", "0"], "--millis"),
        (&["--millis", "-5"], "-5"),
        (&["--millis", "60001"], "--millis"),
        (&["--unfair-with", "maybe"], "--unfair-with"),
        (&["--seed", "1"], "--seed"),
    ]);
}
