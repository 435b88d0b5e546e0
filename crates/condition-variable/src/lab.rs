//! The experiment around the lesson: the queue run many times with each way
//! of taking, its items and empty takes counted; the counter's number called
//! with each way of ringing, the two customers put to sleep in a known order;
//! the flag set in the waiter's window with and without the lock; the claims.

use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use common::cli::CommonArgs;
use common::{Claim, Report};

use crate::{Consumed, Counter, Flag, Queue, Take, Waited, produce_and_consume, wait_until};

/// A way for the counter to call a number: `Counter::call_ringing_once` or
/// `Counter::call_ringing_for_all`.
type Ring = fn(&Counter, usize) -> Instant;

#[derive(Parser, Debug)]
#[command(name = "condition-variable", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Consumer threads that take from the queue.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    consumers: u32,

    /// Items the queue holds at most; the producer waits for room beyond that.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    capacity: u32,

    /// Items the producer puts through the queue in each trial
    /// [default: 1000, 300 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    items: Option<u64>,

    /// Trials of each way of taking from the queue [default: 20, 5 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    trials: Option<u32>,

    /// Trials of each way of calling a number and of setting the flag
    /// [default: 5, 2 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    wait_trials: Option<u32>,

    /// Milliseconds each wait of the counter and the flag lasts at most: how
    /// long a thread that missed its wake-up sleeps on [default: 100, 50 with --quick].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(10..=10_000))]
    patience_ms: Option<u64>,

    /// Milliseconds the lab holds the flag's waiter between its check and
    /// its wait, for the setter to act in.
    #[arg(long, value_name = "MS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    window_ms: u64,
}

/// The sizes of one run, from the flags.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    consumers: usize,
    capacity: usize,
    items: u64,
    trials: u32,
    wait_trials: u32,
    patience: Duration,
    window: Duration,
}

impl Sizes {
    fn from(args: &Args) -> Self {
        Sizes {
            consumers: args.consumers as usize,
            capacity: args.capacity as usize,
            items: args.items.unwrap_or(args.common.pick(1000, 300)),
            trials: args.trials.unwrap_or(args.common.pick(20, 5)),
            wait_trials: args.wait_trials.unwrap_or(args.common.pick(5, 2)),
            patience: Duration::from_millis(args.patience_ms.unwrap_or(args.common.pick(100, 50))),
            window: Duration::from_millis(args.window_ms),
        }
    }

    /// How long these sizes make the run, worked out before anything
    /// starts: about 30 us per item and trial for each way of taking (a
    /// queue of one item hands each over with a context switch; a debug
    /// build is slower still), and per wait trial a full patience for each
    /// way that sleeps through, a window, and a few milliseconds to set up.
    fn run_time(&self) -> Duration {
        let queue = Duration::from_micros(2 * 30 * self.items * u64::from(self.trials));
        let waits = (self.patience * 2 + self.window + Duration::from_millis(20)) * self.wait_trials;
        queue + waits
    }
}

pub fn main() -> ExitCode {
    let args: Args = common::cli::parse();
    let sizes = Sizes::from(&args);
    if let Err(refused) = args.common.check_run_time(sizes.run_time(), "--items, --trials or --wait-trials") {
        return common::cli::finish(&args.common, Err(refused));
    }
    // No clean-up to install: the lab starts no child process and writes no
    // file. Its threads all end: the consumers when their queue closes, the
    // others within a bounded wait.
    common::cli::finish(&args.common, run(&sizes))
}

fn run(sizes: &Sizes) -> anyhow::Result<Report> {
    let mut report = common::lesson_report!();
    report
        .param("consumers", sizes.consumers)
        .param("capacity", sizes.capacity)
        .param("items", sizes.items)
        .param("trials", sizes.trials)
        .param("wait_trials", sizes.wait_trials)
        .param("patience_ms", sizes.patience.as_millis() as u64)
        .param("window_ms", sizes.window.as_millis() as u64);
    // The consumers, or the two customers: the most threads alive at once.
    common::measure::check_room_for_threads(sizes.consumers.max(2))
        .context("starting the consumer threads")?;

    // 1. The queue, each way of taking, trial after trial.
    let checking_once = queue_runs(sizes, Queue::take_checking_once)?;
    let rechecking = queue_runs(sizes, Queue::take_rechecking)?;
    report.table(format!(
        "a producer and {} consumers, a queue of {}, {} trials of {} items",
        sizes.consumers, sizes.capacity, sizes.trials, sizes.items
    ));
    queue_figures(&mut report, "if, checks once", &checking_once).key();
    queue_figures(&mut report, "while, rechecks", &rechecking);

    // 2. Number 1 called, customer 2 asleep longer, each way of ringing;
    // 3. the flag set in its waiter's window, without the lock and under it.
    let ring_once = trials(sizes.wait_trials, || call_trial(Counter::call_ringing_once, sizes.patience))?;
    let ring_for_all =
        trials(sizes.wait_trials, || call_trial(Counter::call_ringing_for_all, sizes.patience))?;
    let without_lock = trials(sizes.wait_trials, || flag_trial(Flag::set_without_lock, sizes))?;
    let under_lock = trials(sizes.wait_trials, || flag_trial(Flag::set_under_lock, sizes))?;
    report
        .table(format!("a thread waits until its condition is made true; {} trials each", sizes.wait_trials));
    call_figures(&mut report, "notify_one", &ring_once, sizes.patience);
    call_figures(&mut report, "notify_all", &ring_for_all, sizes.patience);
    flag_figures(&mut report, "flag, no lock", &without_lock, sizes.patience);
    flag_figures(&mut report, "flag, locked", &under_lock, sizes.patience);

    notes(&mut report, &checking_once, &rechecking, sizes);
    report.claim(while_delivers_all(&rechecking));
    report.claim(if_wakes_empty(&checking_once));
    report.claim(notify_one_stalls(&ring_once, sizes.patience));
    report.claim(notify_all_delivers(&ring_for_all, sizes.patience));
    report.claim(unlocked_set_loses(&without_lock, sizes.patience));
    report.claim(locked_set_delivers(&under_lock, sizes.patience));
    Ok(report)
}

/// Runs `trial` `count` times; the first error ends the run.
fn trials<T>(count: u32, mut trial: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<Vec<T>> {
    (0..count).map(|_| trial()).collect()
}

// ---------------------------------------------------------------------------
// 1. The queue.
// ---------------------------------------------------------------------------

/// What the trials of one way of taking gave, added up.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct QueueRuns {
    trials: u32,
    /// Items put, over all trials.
    items: u64,
    /// Items taken exactly once; the others were lost or taken twice.
    delivered_once: u64,
    /// Takes that came back with nothing (only the `if` version's).
    took_nothing: u64,
    /// Wake-ups that found the queue empty: the `if` version's empty takes
    /// and the `while` version's waits that began again.
    woke_empty: u64,
    /// Trials in which at least one wake-up found the queue empty.
    trials_woke_empty: u32,
}

impl QueueRuns {
    /// Adds one trial: the items put, what each consumer took, and the
    /// queue's own count of wake-ups that found nothing.
    fn add(&mut self, items: u64, consumed: &[Consumed], rewaits: u64) {
        let mut times_taken = vec![0u32; items as usize];
        for item in consumed.iter().flat_map(|(taken, _)| taken) {
            times_taken[*item as usize] += 1;
        }
        let took_nothing: u64 = consumed.iter().map(|(_, nothing)| nothing).sum();
        self.trials += 1;
        self.items += items;
        self.delivered_once += times_taken.iter().filter(|&&times| times == 1).count() as u64;
        self.took_nothing += took_nothing;
        self.woke_empty += took_nothing + rewaits;
        self.trials_woke_empty += u32::from(took_nothing + rewaits > 0);
    }
}

/// `sizes.trials` trials of the queue with `take`, each with a fresh queue.
fn queue_runs(sizes: &Sizes, take: Take) -> anyhow::Result<QueueRuns> {
    let mut runs = QueueRuns::default();
    for _ in 0..sizes.trials {
        let queue = Queue::new(sizes.capacity);
        let consumed = produce_and_consume(&queue, sizes.items, sizes.consumers, take)
            .context("starting the consumer threads")?;
        let rewaits = queue.state.lock().unwrap().woke_empty;
        runs.add(sizes.items, &consumed, rewaits);
    }
    Ok(runs)
}

fn queue_figures<'r>(report: &'r mut Report, name: &str, runs: &QueueRuns) -> &'r mut Report {
    report.figure(name, "items", runs.items, "items");
    report.figure(name, "delivered once", runs.delivered_once, "items");
    report.figure(name, "woke to empty", runs.trials_woke_empty, "trials");
    report.figure(name, "took nothing", runs.took_nothing, "results")
}

/// Claim `while-delivers-all`: counts, which the machine's load cannot fake.
fn while_delivers_all(runs: &QueueRuns) -> Claim {
    Claim::check(
        "while-delivers-all",
        "with while, every item was taken exactly once and no take came back empty",
        runs.trials > 0 && runs.delivered_once == runs.items && runs.took_nothing == 0,
        format!(
            "{}/{} items taken once in {} trials, {} empty takes; {} wake-ups found the queue \
             empty and waited again",
            runs.delivered_once, runs.items, runs.trials, runs.took_nothing, runs.woke_empty
        ),
    )
}

/// Claim `if-wakes-empty`: holds when a take came back empty; does not hold
/// when wake-ups found the queue empty and no take came back empty (the
/// version waited again: it is not the `if` version); inconclusive when no
/// wake-up found it empty, the race not having shown in this run.
fn if_wakes_empty(runs: &QueueRuns) -> Claim {
    let (id, statement) = ("if-wakes-empty", "with if, a consumer woke to an empty queue and took nothing");
    let evidence = format!(
        "{} empty takes, in {}/{} trials; {} wake-ups found the queue empty",
        runs.took_nothing, runs.trials_woke_empty, runs.trials, runs.woke_empty
    );
    if runs.woke_empty == 0 {
        let reason =
            format!("no wake-up found the queue empty in {} trials: the race did not show", runs.trials);
        return Claim::inconclusive(id, statement, reason, evidence);
    }
    Claim::check(id, statement, runs.took_nothing > 0, evidence)
}

// ---------------------------------------------------------------------------
// Waits that may sleep through their wake-up, judged by the clock.
// ---------------------------------------------------------------------------

/// What a trial's wait came to, for the thread whose condition was made true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A notification woke it and it found its condition true.
    Woke,
    /// It slept through: its wait ran out with the condition true, and the
    /// notification had been sent before that wait's deadline, so while it
    /// was asleep on the condition variable (a wait ends at its deadline or
    /// later; a notification sent before it went to sleep would have ended
    /// the wait at once).
    SleptThrough,
    /// Neither, for sure: the set-up was not reached, or the notification
    /// came after the wait had run out (this thread or the lab was delayed
    /// by more than the patience).
    Unclear,
}

/// The outcome of `waited`, given when the notification had been sent.
fn outcome(set_up: bool, waited: Waited, notified_at: Option<Instant>, patience: Duration) -> Outcome {
    match (set_up, waited, notified_at) {
        (true, Waited::Done { .. }, _) => Outcome::Woke,
        (true, Waited::SleptThrough { since }, Some(notified)) if notified < since + patience => {
            Outcome::SleptThrough
        }
        _ => Outcome::Unclear,
    }
}

/// How many of `outcomes` are each outcome: (woke, slept through, unclear).
fn tally(outcomes: impl Iterator<Item = Outcome>) -> (u32, u32, u32) {
    outcomes.fold((0, 0, 0), |(woke, slept, unclear), outcome| match outcome {
        Outcome::Woke => (woke + 1, slept, unclear),
        Outcome::SleptThrough => (woke, slept + 1, unclear),
        Outcome::Unclear => (woke, slept, unclear + 1),
    })
}

// ---------------------------------------------------------------------------
// 2. The counter.
// ---------------------------------------------------------------------------

/// One call of number 1 with customer 1 and customer 2 asleep, 2 first.
#[derive(Debug, Clone, Copy)]
struct CallTrial {
    /// Both customers were seen asleep in the kernel, in that order, before
    /// the call (from /proc).
    set_up: bool,
    /// When the bell for number 1 had rung.
    rung_at: Instant,
    /// How customer 1's wait ended.
    called: Waited,
    /// How customer 2's wait ended (its number is called after).
    other: Waited,
}

impl CallTrial {
    fn outcome(&self, patience: Duration) -> Outcome {
        outcome(self.set_up, self.called, Some(self.rung_at), patience)
    }
}

/// The longest the lab waits for a thread to start or to fall asleep: far
/// more than either takes, so that a busy machine does not cut it short.
const SET_UP_LIMIT: Duration = Duration::from_secs(2);

/// Which thread `notify_one` wakes is not specified. On Linux, std's
/// condition variable is a futex, and the kernel wakes the futex's waiters
/// in the order they went to sleep. So customer 2 starts first, and customer
/// 1 only once 2 is asleep; then number 1 is called. With `notify_one` that
/// wakes customer 2, every time: the interleaving is made certain here, on
/// purpose. Customer 2 waits longer than 1 so that its number, called after
/// 1's wait has ended, still finds it waiting.
fn call_trial(ring: Ring, patience: Duration) -> anyhow::Result<CallTrial> {
    let counter = Counter::default();
    thread::scope(|scope| {
        let customer = |ticket: usize, patience: Duration| {
            let (tell, told) = mpsc::channel();
            let counter = &counter;
            let thread =
                thread::Builder::new().name(format!("customer-{ticket}")).spawn_scoped(scope, move || {
                    let _ = tell.send(own_thread_id());
                    wait_until(&counter.serving, &counter.bell, |serving| *serving == ticket, patience, || {})
                })?;
            let asleep = told.recv_timeout(SET_UP_LIMIT).ok().flatten().is_some_and(fell_asleep);
            anyhow::Ok((thread, asleep))
        };
        let (second, second_asleep) = customer(2, patience * 4).context("starting customer 2")?;
        let (first, first_asleep) = customer(1, patience).context("starting customer 1")?;
        let rung_at = ring(&counter, 1);
        let called = first.join().expect("customers do not panic");
        ring(&counter, 2);
        let other = second.join().expect("customers do not panic");
        Ok(CallTrial { set_up: second_asleep && first_asleep, rung_at, called, other })
    })
}

/// The calling thread's id in the kernel, from `/proc/thread-self`
/// (a link to `<pid>/task/<tid>`); `None` where there is no /proc.
fn own_thread_id() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// Waits, up to `SET_UP_LIMIT`, until thread `tid` of this process is
/// asleep (state `S` in `/proc/self/task/<tid>/stat`). The threads watched
/// here take a lock no one holds and then wait on the condition variable,
/// so asleep means asleep on the condition variable.
fn fell_asleep(tid: u32) -> bool {
    let deadline = Instant::now() + SET_UP_LIMIT;
    let path = format!("/proc/self/task/{tid}/stat");
    while Instant::now() < deadline {
        let Ok(stat) = std::fs::read_to_string(&path) else { return false };
        // The state letter follows the command name, which is in parentheses.
        if stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('S')) {
            return true;
        }
        thread::sleep(Duration::from_millis(1));
    }
    false
}

/// The figures every wait experiment has: how its trials ended.
fn wait_figures(report: &mut Report, name: &str, outcomes: &[Outcome]) {
    let (woke, slept, unclear) = tally(outcomes.iter().copied());
    report.figure(name, "trials", outcomes.len(), "trials");
    report.figure(name, "woke", woke, "trials");
    report.figure(name, "slept through", slept, "trials");
    report.figure(name, "unclear", unclear, "trials");
}

fn call_figures(report: &mut Report, name: &str, trials: &[CallTrial], patience: Duration) {
    let outcomes: Vec<Outcome> = trials.iter().map(|trial| trial.outcome(patience)).collect();
    wait_figures(report, name, &outcomes);
    let in_vain = trials.iter().filter(|trial| matches!(trial.other, Waited::Done { in_vain: 1.. }));
    report.figure(name, "woke in vain", in_vain.count(), "trials");
}

/// Claim `notify-one-stalls`: holds when customer 1 slept through its call
/// in a trial; does not hold when it woke in every clear trial;
/// inconclusive when no trial was clear.
fn notify_one_stalls(trials: &[CallTrial], patience: Duration) -> Claim {
    let (woke, slept, unclear) = tally(trials.iter().map(|trial| trial.outcome(patience)));
    let (id, statement) =
        ("notify-one-stalls", "with notify_one, the customer called slept through its call");
    let evidence = format!(
        "customer 1 slept through {slept} of {} calls, woke for {woke}; {unclear} unclear",
        trials.len()
    );
    if slept + woke == 0 {
        return Claim::inconclusive(id, statement, unclear_reason(unclear, patience), evidence);
    }
    Claim::check(id, statement, slept > 0, evidence)
}

/// Claim `notify-all-delivers`: holds when customer 1 woke in every clear
/// trial (and there was one).
fn notify_all_delivers(trials: &[CallTrial], patience: Duration) -> Claim {
    let (woke, slept, unclear) = tally(trials.iter().map(|trial| trial.outcome(patience)));
    let (id, statement) = ("notify-all-delivers", "with notify_all, the customer called woke every time");
    let evidence = format!(
        "customer 1 woke for {woke} of {} calls, slept through {slept}; {unclear} unclear",
        trials.len()
    );
    if slept + woke == 0 {
        return Claim::inconclusive(id, statement, unclear_reason(unclear, patience), evidence);
    }
    Claim::check(id, statement, slept == 0, evidence)
}

fn unclear_reason(unclear: u32, patience: Duration) -> String {
    format!(
        "no trial was clear ({unclear} unclear): the threads were not seen asleep in time, or a \
         notification came after a wait of {} ms had run out",
        patience.as_millis()
    )
}

// ---------------------------------------------------------------------------
// 3. The flag.
// ---------------------------------------------------------------------------

/// One trial of the flag: a setter thread set it while the waiter was held
/// between its check and its wait (or tried to, and waited for the lock).
#[derive(Debug, Clone, Copy)]
struct FlagTrial {
    /// The setter began while the window was open.
    began_in_window: bool,
    /// When the setter had notified.
    notified_at: Option<Instant>,
    waited: Waited,
}

impl FlagTrial {
    fn outcome(&self, patience: Duration) -> Outcome {
        outcome(self.began_in_window, self.waited, self.notified_at, patience)
    }
}

/// What the setter thread tells the waiter's hook.
enum SetterNews {
    Began,
    Notified(Instant),
}

/// Without help, the window between the waiter's check and its wait is a
/// few instructions wide, and a setter lands in it once in a long while. So
/// the waiter's hook opens it on purpose: the first time the check fails,
/// it tells the setter to go and holds the window open (the lock held) until
/// the setter has notified, or for `sizes.window`. A setter that does not
/// take the lock notifies inside the window, for certain; one that takes it
/// waits for the waiter to be asleep.
fn flag_trial(set: fn(&Flag) -> Instant, sizes: &Sizes) -> anyhow::Result<FlagTrial> {
    let flag = Flag::default();
    let (go, gone) = mpsc::channel::<()>();
    let (tell, news) = mpsc::channel();
    thread::scope(|scope| {
        let flag = &flag;
        let setter = thread::Builder::new()
            .name("setter".into())
            .spawn_scoped(scope, move || {
                if gone.recv_timeout(SET_UP_LIMIT).is_ok() {
                    let _ = tell.send(SetterNews::Began);
                    let _ = tell.send(SetterNews::Notified(set(flag)));
                }
            })
            .context("starting the setter thread")?;
        let (mut began_in_window, mut notified_at, mut opened) = (false, None, false);
        let waited = flag.wait(sizes.patience, || {
            if std::mem::replace(&mut opened, true) {
                return;
            }
            let _ = go.send(());
            let closes = Instant::now() + sizes.window;
            while let Ok(told) = news.recv_timeout(closes.saturating_duration_since(Instant::now())) {
                match told {
                    SetterNews::Began => began_in_window = true,
                    SetterNews::Notified(at) => {
                        notified_at = Some(at);
                        break;
                    }
                }
            }
        });
        // A setter that was never told to go stops waiting for it now.
        drop(go);
        setter.join().expect("the setter does not panic");
        for told in news.try_iter() {
            if let SetterNews::Notified(at) = told {
                notified_at = Some(at);
            }
        }
        Ok(FlagTrial { began_in_window, notified_at, waited })
    })
}

fn flag_figures(report: &mut Report, name: &str, trials: &[FlagTrial], patience: Duration) {
    let outcomes: Vec<Outcome> = trials.iter().map(|trial| trial.outcome(patience)).collect();
    wait_figures(report, name, &outcomes);
    report.figure(name, "in window", trials.iter().filter(|trial| trial.began_in_window).count(), "trials");
}

/// Claim `unlocked-set-loses`: holds when the waiter slept through a flag
/// set without the lock; does not hold when the setter acted in the window
/// and the waiter woke every time; inconclusive when it never acted there.
fn unlocked_set_loses(trials: &[FlagTrial], patience: Duration) -> Claim {
    let (woke, slept, unclear) = tally(trials.iter().map(|trial| trial.outcome(patience)));
    let (id, statement) = ("unlocked-set-loses", "a flag set without the lock lost its wake-up");
    let evidence = format!(
        "the waiter slept through {slept} of {} flags set, woke for {woke}; {unclear} unclear",
        trials.len()
    );
    if slept + woke == 0 {
        return Claim::inconclusive(id, statement, window_reason(unclear), evidence);
    }
    Claim::check(id, statement, slept > 0, evidence)
}

/// Claim `locked-set-delivers`: holds when the waiter woke for every flag
/// set under the lock in the window (and there was one).
fn locked_set_delivers(trials: &[FlagTrial], patience: Duration) -> Claim {
    let (woke, slept, unclear) = tally(trials.iter().map(|trial| trial.outcome(patience)));
    let (id, statement) = ("locked-set-delivers", "a flag set under the lock woke its waiter every time");
    let evidence = format!(
        "the waiter woke for {woke} of {} flags set, slept through {slept}; {unclear} unclear",
        trials.len()
    );
    if slept + woke == 0 {
        return Claim::inconclusive(id, statement, window_reason(unclear), evidence);
    }
    Claim::check(id, statement, slept == 0, evidence)
}

fn window_reason(unclear: u32) -> String {
    format!("the setter never began while the waiter's window was open ({unclear} trials unclear)")
}

fn notes(report: &mut Report, checking_once: &QueueRuns, rechecking: &QueueRuns, sizes: &Sizes) {
    report.note(format!(
        "The if version took nothing {} times (Python's pop would raise IndexError there); the while \
         version woke to an empty queue {} times and waited again each time.",
        checking_once.took_nothing, rechecking.woke_empty
    ));
    report.note(
        "Which waiter notify_one wakes is not specified; Linux wakes the one asleep longest. The lab \
         puts customer 2 to sleep first (seen in /proc), so notify_one wakes 2, for certain.",
    );
    report.note(format!(
        "The lab holds the flag's waiter up to {} ms between its check and its wait, so that the \
         setter acts there: without it the window is a few instructions wide.",
        sizes.window.as_millis()
    ));
}

// Not under `--cfg loom`: there the lesson's locks are loom's, which work
// only inside `loom::model` (the loom model below runs then instead).
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use common::report::Verdict;

    // Long enough that a busy machine does not make the wait trials unclear.
    const PATIENCE: Duration = Duration::from_millis(150);

    /// One take on an empty queue, with the taker woken while nothing is
    /// queued (what a spurious wake-up looks like to it); then item 0 is put
    /// and the queue closed. The `if` version comes back with nothing and
    /// leaves item 0 behind; the `while` version waits again and takes it.
    fn woken_with_nothing_queued(take: Take) -> QueueRuns {
        let queue = Queue::new(1);
        let taken = thread::scope(|scope| {
            let taker = scope.spawn(|| take(&queue));
            let deadline = Instant::now() + Duration::from_secs(20);
            while !taker.is_finished() && queue.state.lock().unwrap().woke_empty == 0 {
                assert!(Instant::now() < deadline, "the taker never woke");
                queue.not_empty.notify_all();
                thread::yield_now();
            }
            queue.put(0);
            queue.close();
            taker.join().unwrap()
        });
        let (items, nothing) = match taken {
            crate::Taken::Item(item) => (vec![item], 0),
            crate::Taken::Nothing => (vec![], 1),
            crate::Taken::Closed => (vec![], 0),
        };
        let mut runs = QueueRuns::default();
        runs.add(1, &[(items, nothing)], queue.state.lock().unwrap().woke_empty);
        runs
    }

    #[test]
    fn while_delivers_all_fails_for_the_if_version() {
        let checking_once = woken_with_nothing_queued(Queue::take_checking_once);
        assert_eq!((checking_once.took_nothing, checking_once.delivered_once), (1, 0));
        assert_eq!(while_delivers_all(&checking_once).verdict, Verdict::DoesNotHold);
        let rechecking = woken_with_nothing_queued(Queue::take_rechecking);
        assert_eq!((rechecking.took_nothing, rechecking.delivered_once), (0, 1));
        assert_eq!(while_delivers_all(&rechecking).verdict, Verdict::Holds);
    }

    #[test]
    fn if_wakes_empty_fails_for_the_while_version_and_waits_for_the_race() {
        let rechecking = woken_with_nothing_queued(Queue::take_rechecking);
        assert!(rechecking.woke_empty > 0);
        assert_eq!(if_wakes_empty(&rechecking).verdict, Verdict::DoesNotHold);
        let checking_once = woken_with_nothing_queued(Queue::take_checking_once);
        assert_eq!(if_wakes_empty(&checking_once).verdict, Verdict::Holds);
        // A run in which no wake-up found the queue empty proves nothing.
        let quiet = QueueRuns { trials: 3, items: 30, delivered_once: 30, ..QueueRuns::default() };
        let claim = if_wakes_empty(&quiet);
        assert_eq!(claim.verdict, Verdict::Inconclusive);
        assert!(claim.reason.unwrap().contains("the race did not show"));
    }

    #[test]
    fn the_queue_counts_every_item_in_a_real_run() {
        let sizes = Sizes {
            consumers: 3,
            capacity: 2,
            items: 200,
            trials: 2,
            wait_trials: 1,
            patience: PATIENCE,
            window: PATIENCE,
        };
        let runs = queue_runs(&sizes, Queue::take_rechecking).unwrap();
        assert_eq!((runs.items, runs.delivered_once, runs.took_nothing), (400, 400, 0));
        let runs = queue_runs(&sizes, Queue::take_checking_once).unwrap();
        assert_eq!(runs.took_nothing, runs.woke_empty);
        // Every take that came back empty was retried: nothing is lost.
        assert_eq!(runs.delivered_once, 400);
    }

    #[test]
    fn notify_claims_fail_fed_each_others_trials() {
        // notify_all's trials: customer 1 woke every time.
        let ring_for_all = trials(2, || call_trial(Counter::call_ringing_for_all, PATIENCE)).unwrap();
        assert!(ring_for_all.iter().all(|trial| trial.outcome(PATIENCE) != Outcome::SleptThrough));
        assert_eq!(notify_one_stalls(&ring_for_all, PATIENCE).verdict, Verdict::DoesNotHold);
        assert_eq!(notify_all_delivers(&ring_for_all, PATIENCE).verdict, Verdict::Holds);
        // notify_one's trials: customer 2, asleep first, took the wake-up.
        let ring_once = trials(2, || call_trial(Counter::call_ringing_once, PATIENCE)).unwrap();
        assert_eq!(notify_all_delivers(&ring_once, PATIENCE).verdict, Verdict::DoesNotHold);
        assert_eq!(notify_one_stalls(&ring_once, PATIENCE).verdict, Verdict::Holds);
        assert!(ring_once.iter().all(|trial| matches!(trial.other, Waited::Done { in_vain: 1.. })));
    }

    #[test]
    fn flag_claims_fail_fed_each_others_trials() {
        let sizes = Sizes { patience: PATIENCE, window: Duration::from_millis(20), ..quick_sizes() };
        let under_lock = trials(2, || flag_trial(Flag::set_under_lock, &sizes)).unwrap();
        assert_eq!(unlocked_set_loses(&under_lock, PATIENCE).verdict, Verdict::DoesNotHold);
        assert_eq!(locked_set_delivers(&under_lock, PATIENCE).verdict, Verdict::Holds);
        let without_lock = trials(2, || flag_trial(Flag::set_without_lock, &sizes)).unwrap();
        assert_eq!(locked_set_delivers(&without_lock, PATIENCE).verdict, Verdict::DoesNotHold);
        assert_eq!(unlocked_set_loses(&without_lock, PATIENCE).verdict, Verdict::Holds);
    }

    fn quick_sizes() -> Sizes {
        Sizes::from(&Args::try_parse_from(["condition-variable", "--quick"]).unwrap())
    }

    #[test]
    fn a_late_notification_or_a_missed_set_up_is_unclear_never_a_stall() {
        let since = Instant::now();
        let slept = Waited::SleptThrough { since };
        // Rung before the wait's deadline: slept through it.
        assert_eq!(outcome(true, slept, Some(since + PATIENCE / 2), PATIENCE), Outcome::SleptThrough);
        // Rung after the deadline (a busy machine delayed the lab): no verdict.
        assert_eq!(outcome(true, slept, Some(since + PATIENCE * 2), PATIENCE), Outcome::Unclear);
        assert_eq!(outcome(true, Waited::GaveUp, Some(since), PATIENCE), Outcome::Unclear);
        // The customers not seen asleep in order: no verdict either way.
        let done = Waited::Done { in_vain: 0 };
        assert_eq!(outcome(false, done, Some(since), PATIENCE), Outcome::Unclear);
        assert_eq!(outcome(true, done, Some(since), PATIENCE), Outcome::Woke);
        // A busy machine's trials, all unclear: every wait claim inconclusive.
        let late = CallTrial { set_up: true, rung_at: since + PATIENCE * 3, called: slept, other: done };
        assert_eq!(notify_one_stalls(&[late; 3], PATIENCE).verdict, Verdict::Inconclusive);
        assert_eq!(notify_all_delivers(&[late; 3], PATIENCE).verdict, Verdict::Inconclusive);
        let outside = FlagTrial { began_in_window: false, notified_at: Some(since), waited: done };
        assert_eq!(unlocked_set_loses(&[outside; 2], PATIENCE).verdict, Verdict::Inconclusive);
        assert_eq!(locked_set_delivers(&[outside; 2], PATIENCE).verdict, Verdict::Inconclusive);
    }

    #[test]
    fn flags_that_would_run_for_hours_are_refused() {
        let args = |flags: &[&str]| Args::try_parse_from([&["condition-variable"], flags].concat()).unwrap();
        let long = args(&["--items", "10000000", "--trials", "1000"]);
        let sizes = Sizes::from(&long);
        let refused = long.common.check_run_time(sizes.run_time(), "--items").unwrap_err();
        assert!(refused.to_string().contains("days"), "{refused}");
        for fine in [&[][..], &["--quick"], &["--wait-trials", "10", "--patience-ms", "500"]] {
            assert!(Sizes::from(&args(fine)).run_time() < Duration::from_secs(20), "{fine:?}");
        }
    }
}

/// The `main` that `cargo xtask eject` gives the standalone crate, compiled
/// and run with the lab's tests.
#[cfg(all(test, not(loom)))]
mod standalone {
    use crate::*;
    include!("standalone.rs");

    #[test]
    fn standalone_main_holds_its_rule() {
        main()
    }
}

/// Loom runs each part under every interleaving of its threads: the fixed
/// versions are exact, and loom finds each broken one. Run with
/// `cargo xtask loom`.
#[cfg(all(test, loom))]
mod loom_model {
    use crate::{Counter, Flag, Queue, Take, Taken, Waited};
    // std's Arc, not loom's: when loom finds a deadlock it unwinds the
    // blocked threads outside the model, where a loom Arc cannot be dropped.
    use std::sync::Arc;
    use std::time::Duration;

    /// Loom's condition variable never times out: a wait whose wake-up is
    /// lost blocks for good, and loom reports the deadlock.
    const PATIENCE: Duration = Duration::from_secs(3600);

    /// A producer puts items 0 and 1 through a queue of one, then closes
    /// it; two consumers take with `take`. Every item is taken exactly once
    /// and no take comes back empty.
    fn queue_model(take: Take) {
        loom::model(move || {
            let queue = Arc::new(Queue::new(1));
            let consumers: Vec<_> = (0..2)
                .map(|_| {
                    let queue = Arc::clone(&queue);
                    loom::thread::spawn(move || {
                        let mut taken = Vec::new();
                        loop {
                            match take(&queue) {
                                Taken::Item(item) => taken.push(item),
                                Taken::Closed => return taken,
                                Taken::Nothing => panic!("a take came back empty"),
                            }
                        }
                    })
                })
                .collect();
            queue.put(0);
            queue.put(1);
            queue.close();
            let mut taken: Vec<u64> = consumers.into_iter().flat_map(|c| c.join().unwrap()).collect();
            taken.sort_unstable();
            assert_eq!(taken, [0, 1], "an item was lost or taken twice");
        });
    }

    /// Customers 1 and 2 wait; number 1 is called, its customer must wake;
    /// then number 2.
    fn counter_model(ring: fn(&Counter, usize) -> std::time::Instant) {
        loom::model(move || {
            let counter = Arc::new(Counter::default());
            let customer = |ticket: usize| {
                let counter = Arc::clone(&counter);
                loom::thread::spawn(move || {
                    crate::wait_until(&counter.serving, &counter.bell, |now| *now == ticket, PATIENCE, || {})
                })
            };
            let (first, second) = (customer(1), customer(2));
            ring(&counter, 1);
            let first = first.join().unwrap();
            ring(&counter, 2);
            let second = second.join().unwrap();
            assert!(matches!(first, Waited::Done { .. }) && matches!(second, Waited::Done { .. }));
        });
    }

    /// A waiter waits for the flag while another thread sets it with `set`.
    fn flag_model(set: fn(&Flag) -> std::time::Instant) {
        loom::model(move || {
            let flag = Arc::new(Flag::default());
            let setter = {
                let flag = Arc::clone(&flag);
                loom::thread::spawn(move || {
                    set(&flag);
                })
            };
            assert!(matches!(flag.wait(PATIENCE, || {}), Waited::Done { .. }));
            setter.join().unwrap();
        });
    }

    /// Runs `model`, which must fail, and returns loom's message.
    fn loom_finds(model: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let payload = std::panic::catch_unwind(model)
            .expect_err("loom explored every interleaving and found no failure");
        common::panics::message(&*payload)
    }

    #[test]
    fn rechecking_in_a_while_loop_delivers_every_item_exactly_once() {
        queue_model(Queue::take_rechecking);
    }

    #[test]
    fn loom_finds_the_if_version_taking_nothing() {
        let message = loom_finds(|| queue_model(Queue::take_checking_once));
        assert!(message.contains("a take came back empty"), "loom failed for another reason: {message}");
    }

    #[test]
    fn notify_all_wakes_the_customer_called() {
        counter_model(Counter::call_ringing_for_all);
    }

    #[test]
    fn loom_finds_notify_one_waking_the_wrong_customer() {
        let message = loom_finds(|| counter_model(Counter::call_ringing_once));
        assert!(message.contains("deadlock"), "loom failed for another reason: {message}");
    }

    #[test]
    fn a_flag_set_under_the_lock_always_wakes_its_waiter() {
        flag_model(Flag::set_under_lock);
    }

    #[test]
    fn loom_finds_the_wake_up_lost_by_a_flag_set_without_the_lock() {
        let message = loom_finds(|| flag_model(Flag::set_without_lock));
        assert!(message.contains("deadlock"), "loom failed for another reason: {message}");
    }
}
