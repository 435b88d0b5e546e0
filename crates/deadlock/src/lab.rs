//! The experiment around the lesson: each way of eating run at a table in a
//! child process, watched until it finishes or gets stuck, the detector
//! asked for cycles, the child killed; the trials counted; the claims.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use common::cli::CommonArgs;
use common::watchdog::{self, State, Watch};
use common::{Claim, Report};
use serde::{Deserialize, Serialize};

use crate::{Table, Way, deadlock_cycles, seat_threads};

#[derive(Parser, Debug)]
#[command(name = "deadlock", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Trials of each way of eating, each in a child process of its own
    /// [default: 3, 2 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    trials: Option<u32>,

    /// Meals each seat eats in a trial [default: 200, 50 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    meals: Option<u64>,

    /// The watchdog's patience: milliseconds without progress after which
    /// it calls the threads stuck, and says how [default: 400, 250 with --quick].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(50..=10_000))]
    patience_ms: Option<u64>,

    /// Milliseconds a seat waits at the meeting point for the others to
    /// hold their first fork [default: 100, 50 with --quick].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(10..=5_000))]
    meeting_ms: Option<u64>,

    /// Milliseconds a trying seat waits for its second fork before it puts
    /// the first one back.
    #[arg(long, value_name = "MS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=1_000))]
    try_ms: u64,
}

/// The sizes of one run, from the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Sizes {
    trials: u32,
    meals: u64,
    patience_ms: u64,
    meeting_ms: u64,
    try_ms: u64,
}

impl Sizes {
    fn from(args: &Args) -> anyhow::Result<Self> {
        let sizes = Sizes {
            trials: args.trials.unwrap_or(args.common.pick(3, 2)),
            meals: args.meals.unwrap_or(args.common.pick(200, 50)),
            patience_ms: args.patience_ms.unwrap_or(args.common.pick(400, 250)),
            meeting_ms: args.meeting_ms.unwrap_or(args.common.pick(100, 50)),
            try_ms: args.try_ms,
        };
        // The fixes sit at the meeting point until it gives up, without a
        // meal: a watchdog with less patience would call that a deadlock.
        if sizes.patience_ms < 2 * sizes.meeting_ms {
            bail!(common::cli::usage_error(format!(
                "--patience-ms ({}) must be at least twice --meeting-ms ({}): the watchdog \
                 must outwait the meeting point",
                sizes.patience_ms, sizes.meeting_ms
            )));
        }
        Ok(sizes)
    }

    fn patience(&self) -> Duration {
        Duration::from_millis(self.patience_ms)
    }

    /// How long a trial may go on while it progresses, in its child.
    fn budget(&self) -> Duration {
        self.patience() * 20 + Duration::from_millis(self.meeting_ms)
    }

    /// How long these sizes make the run, worked out before anything
    /// starts: per trial, a child's start and the meeting, and for the
    /// ways that deadlock the watchdog's patience; the meals take
    /// microseconds, and a trying seat's retries a few waits.
    fn run_time(&self) -> Duration {
        let per_trial = Duration::from_millis(50 + self.meeting_ms + 10 * self.try_ms);
        let stuck = self.patience() * 2;
        (per_trial * EXPERIMENTS.len() as u32 + stuck) * self.trials
    }
}

/// A way of eating, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eating {
    LeftFirst,
    LowerFirst,
    Trying,
}

impl Eating {
    fn way(self) -> Way {
        match self {
            Eating::LeftFirst => Table::eat_left_first,
            Eating::LowerFirst => Table::eat_lower_first,
            Eating::Trying => Table::eat_trying,
        }
    }
}

/// One experiment: a way of eating at a table of some seats. A child is
/// told its index in [`EXPERIMENTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Experiment {
    name: &'static str,
    seats: usize,
    eating: Eating,
}

const OPPOSITE: Experiment = Experiment { name: "2, opposite order", seats: 2, eating: Eating::LeftFirst };
const ORDERED: Experiment = Experiment { name: "2, lower first", seats: 2, eating: Eating::LowerFirst };
const TRYING: Experiment = Experiment { name: "2, try, back off", seats: 2, eating: Eating::Trying };
const PHILOSOPHERS: Experiment = Experiment { name: "5, left first", seats: 5, eating: Eating::LeftFirst };
const PHILOSOPHERS_ORDERED: Experiment =
    Experiment { name: "5, lower first", seats: 5, eating: Eating::LowerFirst };
const EXPERIMENTS: [Experiment; 5] = [OPPOSITE, ORDERED, TRYING, PHILOSOPHERS, PHILOSOPHERS_ORDERED];

/// What a child tells its parent about its one trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Trial {
    /// What the watchdog saw last.
    watch: Watch,
    /// The cycles parking_lot's detector found, by thread name.
    cycles: Vec<Vec<String>>,
    /// Whether every seat held its first fork at the meeting point.
    met: bool,
    /// Forks the trying seats put back.
    retries: u64,
    /// Meals each seat was to eat.
    meals: u64,
}

impl Trial {
    fn seats(&self) -> Vec<String> {
        self.watch.workers.iter().map(|w| w.name.clone()).collect()
    }

    /// Deadlocked, and the detector named one cycle of every seat.
    fn deadlocked(&self) -> bool {
        self.watch.state == State::Deadlock && self.cycle_named()
    }

    fn cycle_named(&self) -> bool {
        let mut seats = self.seats();
        seats.sort();
        self.cycles.len() == 1 && {
            let mut cycle = self.cycles[0].clone();
            cycle.sort();
            cycle == seats
        }
    }

    fn finished(&self) -> bool {
        self.watch.state == State::Finished && self.watch.workers.iter().all(|w| w.progress == self.meals)
    }

    /// Did the threads get stuck for good (asleep or spinning)?
    fn stuck(&self) -> bool {
        matches!(self.watch.state, State::Deadlock | State::Livelock)
    }

    /// The most CPU a seat used in the watchdog's last window, in ms.
    fn seat_cpu_ms(&self) -> f64 {
        self.watch.workers.iter().map(|w| w.cpu_s * 1e3).fold(0.0, f64::max)
    }
}

/// The role a child plays: one trial of an experiment.
const ROLE: &str = "table";

pub fn main() -> ExitCode {
    if let Some(code) = common::child::play_role(|role, args| match (role, args) {
        (ROLE, [experiment, sizes]) => {
            let experiment = experiment.parse().ok().and_then(|i: usize| EXPERIMENTS.get(i));
            let experiment = experiment.context("no such experiment")?;
            let sizes: Sizes = serde_json::from_str(sizes).context("the sizes")?;
            watchdog::report_to_parent(&sit(experiment, &sizes)?)
        }
        _ => bail!("unknown child role {role} {args:?}"),
    }) {
        return code;
    }
    let args: Args = common::cli::parse();
    let sizes = Sizes::from(&args).and_then(|sizes| {
        args.common
            .check_run_time(sizes.run_time(), "--trials, --patience-ms or --meeting-ms")
            .map(|()| sizes)
    });
    // Each trial is a child process, killed and reaped after its verdict,
    // and on Ctrl-C.
    common::cleanup::install();
    common::cli::finish(&args.common, sizes.and_then(|sizes| run(&sizes)))
}

fn run(sizes: &Sizes) -> anyhow::Result<Report> {
    let mut report = common::lesson_report!();
    report
        .param("trials", sizes.trials)
        .param("meals", sizes.meals)
        .param("patience_ms", sizes.patience_ms)
        .param("meeting_ms", sizes.meeting_ms)
        .param("try_ms", sizes.try_ms);
    let mut results = Vec::new();
    for experiment in EXPERIMENTS {
        let trials = (0..sizes.trials)
            .map(|_| in_child(&experiment, sizes))
            .collect::<anyhow::Result<Vec<_>>>()
            .with_context(|| format!("a trial of {}", experiment.name))?;
        results.push(trials);
    }
    report.table(format!(
        "seats at a table, {} trials each way; 2 seats: two threads, two locks",
        sizes.trials
    ));
    for (experiment, trials) in EXPERIMENTS.iter().zip(&results) {
        figures(&mut report, experiment, trials);
    }
    notes(&mut report, &results, sizes);
    let [opposite, ordered, trying, philosophers, philosophers_ordered] = &results[..] else {
        unreachable!("one result per experiment")
    };
    report.claim(opposite_order_deadlocks(opposite));
    report.claim(lock_order_completes(ordered));
    report.claim(try_lock_completes(trying));
    report.claim(philosophers_deadlock(philosophers));
    report.claim(philosophers_ordered_complete(philosophers_ordered));
    Ok(report)
}

/// One trial in a child process: the child sits the seats, watches them,
/// and reports; then it is killed, stuck or not.
fn in_child(experiment: &Experiment, sizes: &Sizes) -> anyhow::Result<Trial> {
    let index = EXPERIMENTS.iter().position(|e| e == experiment).context("a known experiment")?;
    let args = [index.to_string(), serde_json::to_string(sizes)?];
    // A child's start, the meeting and its budget, and room for a busy machine.
    let deadline = sizes.budget() + Duration::from_secs(5);
    watchdog::first_line_of_child(ROLE, &args, deadline)
}

/// One trial in this process: the seats at a table, watched until they
/// finish, or the watchdog sees them stuck for good, or the budget runs
/// out while they still progress (a busy machine, say). Stuck threads stay
/// stuck: the caller is a child process, killed afterwards.
fn sit(experiment: &Experiment, sizes: &Sizes) -> anyhow::Result<Trial> {
    let table = Arc::new(Table::new(
        experiment.seats,
        Duration::from_millis(sizes.meeting_ms),
        Duration::from_millis(sizes.try_ms),
    ));
    let seats = seat_threads(&table, experiment.eating.way(), sizes.meals).context("starting the seats")?;
    let names: Vec<String> =
        seats.iter().map(|s| s.thread().name().unwrap_or_default().to_string()).collect();
    let meals = || table.meals.iter().map(|m| m.load(Ordering::Relaxed)).collect::<Vec<_>>();
    let all_eaten = || meals().iter().all(|&m| m == sizes.meals);
    let watch = watchdog::watch_until_stuck(&names, meals, all_eaten, sizes.patience(), sizes.budget());
    let cycles = if watch.state == State::Finished { Vec::new() } else { deadlock_cycles(&seats) };
    if watch.state == State::Finished {
        for seat in seats {
            seat.join().map_err(|_| anyhow::anyhow!("a seat panicked"))?;
        }
    }
    Ok(Trial {
        watch,
        cycles,
        met: !table.meeting.gave_up.load(Ordering::Relaxed),
        retries: table.retries.load(Ordering::Relaxed),
        meals: sizes.meals,
    })
}

fn count(trials: &[Trial], test: impl Fn(&Trial) -> bool) -> u64 {
    trials.iter().filter(|t| test(t)).count() as u64
}

fn figures(report: &mut Report, experiment: &Experiment, trials: &[Trial]) {
    let name = experiment.name;
    report.figure(name, "deadlocked", count(trials, |t| t.watch.state == State::Deadlock), "trials");
    if experiment == &OPPOSITE {
        report.key();
    }
    report
        .figure(name, "finished", count(trials, Trial::finished), "trials")
        .figure(name, "cycle", count(trials, Trial::cycle_named), "trials")
        .figure(name, "met", count(trials, |t| t.met), "trials")
        .figure(name, "retries", trials.iter().map(|t| t.retries).sum::<u64>(), "retries");
    let stuck: Vec<f64> = trials.iter().filter(|t| t.stuck()).map(Trial::seat_cpu_ms).collect();
    if !stuck.is_empty() {
        report.figure(name, "stuck CPU", stuck.iter().copied().fold(0.0, f64::max), "ms");
    }
}

fn notes(report: &mut Report, results: &[Vec<Trial>], sizes: &Sizes) {
    report.note(format!(
        "deadlocked: the watchdog saw no meal and no CPU for {} ms. cycle: \
         parking_lot's detector found one cycle of exactly the table's seats. met: \
         every seat held its first fork at the meeting point. stuck CPU: the most CPU \
         a stuck seat used in the watchdog's last window.",
        sizes.patience_ms
    ));
    for (experiment, trials) in EXPERIMENTS.iter().zip(results) {
        if let Some(cycle) = trials.iter().find_map(|t| t.cycles.first()) {
            let mut cycle = cycle.clone();
            cycle.sort();
            report.note(format!("the detector, {}: a cycle of {}.", experiment.name, cycle.join(", ")));
        }
    }
    report.note(
        "With the lower fork first, the meeting point never fills: the seat that \
         needs fork 0 waits for it holding nothing. The others stop waiting and eat.",
    );
}

// ---------------------------------------------------------------------------
// The claims.
// ---------------------------------------------------------------------------

/// Every trial deadlocked with a cycle of all its seats named. A trial that
/// did not is a counterexample only when its seats all met (held their
/// first fork at once) and the watchdog was sure: then the opposite order
/// did not deadlock. Otherwise the run could not make the interleaving.
fn deadlocks(id: &str, statement: &str, trials: &[Trial]) -> Claim {
    let deadlocked = count(trials, Trial::deadlocked);
    let n = trials.len();
    let seen = trials.iter().find(|t| t.deadlocked()).map(|t| {
        let shares = t.watch.cpu_shares().iter().map(|s| format!("{:.0}%", s * 100.0)).collect::<Vec<_>>();
        format!(
            "; in {} ms no meal, the seats on a CPU {} of it; the detector: {}",
            (t.watch.window_s * 1e3).round(),
            shares.join(", "),
            t.cycles
                .iter()
                .map(|c| {
                    let mut c = c.clone();
                    c.sort();
                    c.join(" + ")
                })
                .collect::<Vec<_>>()
                .join("; ")
        )
    });
    let evidence = format!("{deadlocked}/{n} trials deadlocked, the cycle named{}", seen.unwrap_or_default());
    // All met, and then finished, or stuck without the cycle named.
    let counterexample = trials.iter().any(|t| !t.deadlocked() && t.met && (t.finished() || t.stuck()));
    if deadlocked as usize == n || counterexample {
        return Claim::check(id, statement, deadlocked as usize == n, evidence);
    }
    let missed = count(trials, |t| !t.met);
    Claim::inconclusive(
        id,
        statement,
        format!(
            "in {missed} of the other trials a seat did not reach the meeting point in time \
             (a busy machine), so the deadlock was not made certain"
        ),
        evidence,
    )
}

/// Every trial finished all its meals. A trial stuck for good is a
/// counterexample; one still eating when its budget ran out is not.
fn completes(id: &str, statement: &str, trials: &[Trial]) -> Claim {
    let finished = count(trials, Trial::finished);
    let n = trials.len();
    let retries: u64 = trials.iter().map(|t| t.retries).sum();
    let meals = trials.first().map_or(0, |t| t.meals);
    let mut evidence = format!("{finished}/{n} trials: every seat ate its {meals} meals");
    if retries > 0 {
        evidence += &format!(", after putting a fork back {retries} times");
    }
    if let Some(stuck) = trials.iter().find(|t| t.stuck()) {
        evidence += &format!("; a trial got stuck: the watchdog saw {}", stuck.watch.state.name());
    }
    if finished as usize == n || trials.iter().any(Trial::stuck) {
        return Claim::check(id, statement, finished as usize == n, evidence);
    }
    Claim::inconclusive(
        id,
        statement,
        "a trial was still eating when its budget ran out (a busy machine)",
        evidence,
    )
}

fn opposite_order_deadlocks(trials: &[Trial]) -> Claim {
    deadlocks(
        "opposite-order-deadlocks",
        "two threads taking two locks in opposite order deadlocked in every trial: no progress, \
         no CPU, and the detector named the two",
        trials,
    )
}

fn lock_order_completes(trials: &[Trial]) -> Claim {
    completes("lock-order-completes", "with the lower-numbered lock first, every trial finished", trials)
}

fn try_lock_completes(trials: &[Trial]) -> Claim {
    completes(
        "try-lock-completes",
        "waiting for the second lock only so long, then backing off, every trial finished",
        trials,
    )
}

fn philosophers_deadlock(trials: &[Trial]) -> Claim {
    deadlocks(
        "philosophers-deadlock",
        "five philosophers taking the left fork first deadlocked in every trial, a cycle of all five",
        trials,
    )
}

fn philosophers_ordered_complete(trials: &[Trial]) -> Claim {
    completes(
        "philosophers-ordered-complete",
        "five philosophers taking the lower-numbered fork first finished in every trial",
        trials,
    )
}

#[cfg(test)]
mod tests {
    use common::report::Verdict;
    use common::watchdog::Worker;

    use super::*;

    fn sizes() -> Sizes {
        // A meeting long enough for a busy machine to bring every seat.
        Sizes { trials: 1, meals: 20, patience_ms: 600, meeting_ms: 300, try_ms: 5 }
    }

    /// Sits a table in this test process. A deadlocked one leaves its
    /// threads asleep for good, as it would in a real program; the test
    /// process ends them when it exits.
    fn sit_here(experiment: &Experiment) -> Trial {
        let _one = common::watchdog::one_watch_at_a_time();
        sit(experiment, &sizes()).expect("the seats start")
    }

    #[test]
    fn the_deadlock_claims_fail_when_the_second_wait_is_bounded() {
        // Both seats held their first fork, as in the opposite order, but
        // waited for the second only so long: no deadlock, a counterexample.
        let trying = sit_here(&TRYING);
        assert!(trying.met && trying.finished() && trying.retries >= 1, "{trying:?}");
        assert_eq!(opposite_order_deadlocks(std::slice::from_ref(&trying)).verdict, Verdict::DoesNotHold);
        assert_eq!(try_lock_completes(&[trying]).verdict, Verdict::Holds);
        let five_trying = Experiment { name: "5, try, back off", seats: 5, eating: Eating::Trying };
        let five_trying = sit_here(&five_trying);
        assert!(five_trying.met && five_trying.finished(), "{five_trying:?}");
        assert_eq!(philosophers_deadlock(&[five_trying]).verdict, Verdict::DoesNotHold);
    }

    #[test]
    fn ordered_seats_never_meet_so_they_test_no_deadlock_claim() {
        // With the lower fork first, no two seats ever hold their first
        // forks at once: the deadlock's premise is never reached.
        let ordered = sit_here(&ORDERED);
        assert!(!ordered.met && ordered.finished(), "{ordered:?}");
        assert_eq!(opposite_order_deadlocks(std::slice::from_ref(&ordered)).verdict, Verdict::Inconclusive);
        assert_eq!(lock_order_completes(&[ordered]).verdict, Verdict::Holds);
    }

    #[test]
    fn the_completion_claims_fail_on_deadlocked_trials() {
        let opposite = sit_here(&OPPOSITE);
        assert_eq!(opposite.watch.state, State::Deadlock, "{opposite:?}");
        assert!(opposite.cycle_named(), "{opposite:?}");
        assert_eq!(opposite_order_deadlocks(std::slice::from_ref(&opposite)).verdict, Verdict::Holds);
        assert_eq!(lock_order_completes(std::slice::from_ref(&opposite)).verdict, Verdict::DoesNotHold);
        assert_eq!(try_lock_completes(&[opposite]).verdict, Verdict::DoesNotHold);
    }

    #[test]
    fn philosophers_deadlock_left_first_and_finish_lower_first() {
        let left_first = sit_here(&PHILOSOPHERS);
        assert!(left_first.deadlocked(), "{left_first:?}");
        assert_eq!(left_first.cycles[0].len(), 5);
        let ordered = sit_here(&PHILOSOPHERS_ORDERED);
        assert_eq!(philosophers_ordered_complete(&[ordered]).verdict, Verdict::Holds);
        assert_eq!(philosophers_ordered_complete(&[left_first]).verdict, Verdict::DoesNotHold);
    }

    fn trial(state: State, met: bool) -> Trial {
        let worker =
            |name: &str| Worker { name: name.into(), progress: 0, progressed: 0, cpu_s: 0.0, awake: 0.0 };
        Trial {
            watch: Watch {
                state,
                window_s: 0.2,
                watched_s: 0.2,
                workers: vec![worker("seat 0"), worker("seat 1")],
            },
            cycles: Vec::new(),
            met,
            retries: 0,
            meals: 20,
        }
    }

    #[test]
    fn a_missed_meeting_or_a_long_wait_is_inconclusive_not_a_failure() {
        // A seat too late for the meeting point: the other ate first.
        let mut late = trial(State::Finished, false);
        late.watch.workers.iter_mut().for_each(|w| w.progress = 20);
        assert_eq!(opposite_order_deadlocks(&[late]).verdict, Verdict::Inconclusive);
        // Still eating when the budget ran out: not stuck.
        let slow = trial(State::Starvation, false);
        assert_eq!(lock_order_completes(&[slow]).verdict, Verdict::Inconclusive);
        // A detector that names no cycle: the claim says so.
        let unnamed = trial(State::Deadlock, true);
        assert_eq!(opposite_order_deadlocks(&[unnamed]).verdict, Verdict::DoesNotHold);
    }

    #[test]
    fn the_patience_must_outwait_the_meeting() {
        let args = Args::parse_from(["deadlock", "--patience-ms", "100", "--meeting-ms", "60"]);
        let refused = Sizes::from(&args).unwrap_err();
        assert!(refused.downcast_ref::<common::cli::UsageError>().is_some());
    }
}

/// The `main` that `cargo xtask eject` gives the standalone crate, compiled
/// and run here too.
#[cfg(test)]
mod standalone {
    use crate::*;
    include!("standalone.rs");

    #[test]
    fn standalone_main_holds_its_rule() {
        // One table at a time: the detector reports every cycle in the
        // process, the tests' tables' too.
        let _one = common::watchdog::one_watch_at_a_time();
        main()
    }
}

/// Loom's model of the two seats, restated with loom's lock (loom cannot
/// drive parking_lot's): over every interleaving, the lower-numbered lock
/// first never deadlocks, and loom finds the opposite order's deadlock.
#[cfg(all(test, loom))]
mod loom_model {
    use std::mem::ManuallyDrop;
    // std's Arc, not loom's: when loom finds a deadlock it unwinds the
    // blocked threads outside the model, where a loom Arc cannot be dropped.
    use std::sync::Arc;

    use loom::sync::Mutex;

    fn seats(seats: usize, lower_first: bool) {
        loom::model(move || {
            let forks: Arc<Vec<Mutex<u64>>> = Arc::new((0..seats).map(|_| Mutex::new(0)).collect());
            let threads: Vec<_> = (0..seats)
                .map(|seat| {
                    let forks = Arc::clone(&forks);
                    loom::thread::spawn(move || {
                        let (left, right) = (seat, (seat + 1) % seats);
                        let (first, second) =
                            if lower_first { (left.min(right), left.max(right)) } else { (left, right) };
                        // Not dropped if loom unwinds this thread while it
                        // is blocked on the second lock: outside the model,
                        // a loom guard cannot be released.
                        let mut first = ManuallyDrop::new(forks[first].lock().unwrap());
                        let mut second = forks[second].lock().unwrap();
                        **first += 1;
                        *second += 1;
                        drop(second);
                        drop(ManuallyDrop::into_inner(first));
                    })
                })
                .collect();
            for thread in threads {
                thread.join().unwrap();
            }
        });
    }

    #[test]
    fn lower_first_never_deadlocks() {
        seats(2, true);
        seats(3, true);
    }

    #[test]
    fn loom_finds_the_opposite_order_deadlock() {
        for n in [2, 3] {
            let found = std::panic::catch_unwind(|| seats(n, false)).expect_err("loom found no deadlock");
            let message = common::panics::message(&*found);
            assert!(message.contains("deadlock"), "loom failed for another reason, {n} seats: {message}");
        }
    }
}
