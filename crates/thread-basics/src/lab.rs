//! The experiment around the lesson: it starts a thread each way, reads the
//! named ones' names from `/proc` while they are alive, joins every thread
//! and checks what came back, times two orders on two threads and on one
//! (orders that wait, then orders that compute), and checks the claims.

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::Parser;
use common::cli::CommonArgs;
use common::measure::{CpuShare, CpuWindow, cores, thread_cpu_time};
use common::panics::quietly;
use common::{Claim, Report};

use crate::{
    OrderProcessing, Processed, each_order_in_turn, each_order_on_its_own_thread, joined, process_order,
    start_named_order, start_with_closure,
};

#[derive(Parser, Debug)]
#[command(name = "thread-basics", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Milliseconds each waiting order sleeps [default: 200, 50 with --quick].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    wait_ms: Option<u64>,

    /// Milliseconds of CPU time each computing order spins for, on its
    /// thread's own CPU clock [default: 200, 50 with --quick].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    work_ms: Option<u64>,

    /// KiB of stack for each thread started with `thread::Builder`.
    #[arg(long, value_name = "KIB", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(64..=1 << 20))]
    stack_kib: u64,
}

pub fn main() -> ExitCode {
    let args: Args = common::cli::parse();
    // No run-time check: at the flags' limits the run takes about 70 s. No
    // clean-up to install: the lab starts no child process and writes no file.
    common::cli::finish(&args.common, run(&args))
}

/// The orders each experiment processes: Python's 10 and 20, and more of
/// the same, so that every thread of the run has an order of its own.
const CLOSURE_ORDER: u32 = 10;
const TYPE_ORDER: u32 = 20;
const NAMED_ORDERS: [u32; 2] = [30, 40];
const WAITING_ORDERS: [u32; 2] = [50, 60];
const COMPUTING_ORDERS: [u32; 2] = [70, 80];
/// The order that does not exist: its thread panics.
const MISSING_ORDER: u32 = 0;

/// The longest a named thread waits for the lab to read the names, and the
/// lab for the named threads to start: far more than either takes, so that
/// nothing hangs if the other side never comes.
const HOLD_LIMIT: Duration = Duration::from_secs(10);

fn run(args: &Args) -> anyhow::Result<Report> {
    let wait_ms = args.wait_ms.unwrap_or(args.common.pick(200, 50));
    let work_ms = args.work_ms.unwrap_or(args.common.pick(200, 50));
    let (wait, work) = (Duration::from_millis(wait_ms), Duration::from_millis(work_ms));
    let mut report = common::lesson_report!();
    report.param("wait_ms", wait_ms).param("work_ms", work_ms).param("stack_kib", args.stack_kib);

    // 1. Each way once, all at once; the names read while the named wait.
    let ways = start_each_way(wait, args.stack_kib as usize * 1024)?;
    // 2. Two orders that wait, then two that compute: each on its own
    // thread, then both on this one.
    let waiting = |order_id| process_order(order_id, wait);
    let computing = |order_id| compute_order(order_id, work);
    let (waits_two, waited) = timed(|| each_order_on_its_own_thread(&WAITING_ORDERS, waiting));
    let waited = waited?;
    let (waits_one, _) = timed(|| Ok(each_order_in_turn(&WAITING_ORDERS, waiting)));
    let (work_two, computed) = timed(|| each_order_on_its_own_thread(&COMPUTING_ORDERS, computing));
    computed?;
    let (work_one, _) = timed(|| Ok(each_order_in_turn(&COMPUTING_ORDERS, computing)));
    let mut joins = ways.joins;
    joins.extend(WAITING_ORDERS.iter().zip(waited).map(|(&id, got)| Joined::new("scoped", id, got)));
    // 3. And the thread that panics.
    joins.push(join_the_missing_order()?);

    report.table("each way of starting a thread, joined");
    join_figures(&mut report, &joins, &ways.names);
    report.table("two orders, each on its own thread or both on this one");
    order_figures(&mut report, "waits, two threads", &waits_two, wait).key();
    order_figures(&mut report, "waits, one thread", &waits_one, wait);
    order_figures(&mut report, "work, two threads", &work_two, work);
    order_figures(&mut report, "work, one thread", &work_one, work);
    notes(&mut report, &joins, &ways.names);

    report.claim(waits_overlap(wait, waits_two.wall, waits_one.wall));
    report.claim(work_needs_cores(work, &work_two, cores()));
    report.claim(join_returns(&joins));
    report.claim(names_seen(&ways.names));
    Ok(report)
}

/// Runs `orders` (threads, or one after the other on this thread) and
/// returns what they received (wall time, CPU time, how busy the machine
/// was) with what they gave back.
fn timed<T>(orders: impl FnOnce() -> std::io::Result<T>) -> (CpuShare, anyhow::Result<T>) {
    let window = CpuWindow::start();
    let got = orders().context("starting a thread for each order");
    (window.stop(), got)
}

/// One row of the second table: how long two orders took, against one
/// order's wait or CPU time, and the cores they used meanwhile. Ends with
/// the ratio, the figure to mark as the key.
fn order_figures<'r>(
    report: &'r mut Report,
    name: &str,
    run: &CpuShare,
    one_order: Duration,
) -> &'r mut Report {
    report.figure(name, "time", run.wall.as_secs_f64() * 1e3, "ms");
    report.figure(name, "one order", one_order.as_secs_f64() * 1e3, "ms");
    report.figure(name, "cores used", run.cores_received(), "cores");
    report.figure(name, "time/one order", ratio(run.wall, one_order), "x")
}

/// How many times `one` fits in `took`.
fn ratio(took: Duration, one: Duration) -> f64 {
    took.as_secs_f64() / one.as_secs_f64()
}

/// The computing order: spins until its own thread has used `work` of CPU
/// time, measured on the thread's CPU clock, so that a thread the machine
/// runs only half the time takes twice as long, as real work would. A wall
/// deadline, far beyond any load, bounds it should that clock not advance.
fn compute_order(order_id: u32, work: Duration) -> u32 {
    let (start, deadline) = (thread_cpu_time(), Instant::now() + work * 20 + Duration::from_secs(1));
    let mut state = u64::from(order_id);
    while thread_cpu_time().saturating_sub(start) < work && Instant::now() < deadline {
        for _ in 0..10_000 {
            state = std::hint::black_box(state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }
    order_id
}

// ---------------------------------------------------------------------------
// Each way once: started, named, joined.
// ---------------------------------------------------------------------------

/// One join: which way started the thread, the order it was given, and
/// what `join` gave back.
#[derive(Debug)]
struct Joined {
    way: &'static str,
    order_id: u32,
    got: Result<Processed, String>,
}

impl Joined {
    fn new(way: &'static str, order_id: u32, got: Result<Processed, String>) -> Self {
        Joined { way, order_id, got }
    }

    /// Whether `join` gave back what this thread should: its own order, or
    /// `Err` for the order that does not exist.
    fn as_expected(&self) -> bool {
        match &self.got {
            Ok(processed) => self.order_id != MISSING_ORDER && processed.order_id == self.order_id,
            Err(_) => self.order_id == MISSING_ORDER,
        }
    }
}

/// The names of the threads started with names, and the name of every
/// thread of this process while they were alive (`None`: /proc unreadable).
struct Names {
    given: Vec<String>,
    seen: Option<Vec<String>>,
}

struct Ways {
    joins: Vec<Joined>,
    names: Names,
}

/// Starts a thread each way: the named ones first, each held (it says it
/// has started, then waits to be released) until the lab has read the
/// names; then the closure and the type with `run`. All of them wait at
/// once, so this takes one wait.
fn start_each_way(wait: Duration, stack_bytes: usize) -> anyhow::Result<Ways> {
    let (ready, started) = mpsc::channel();
    let (mut releases, mut named) = (Vec::new(), Vec::new());
    for order_id in NAMED_ORDERS {
        let (release, released) = mpsc::channel::<()>();
        let ready = ready.clone();
        let held = move |order_id| {
            let _ = ready.send(());
            // Ends when the lab drops `release` (or after HOLD_LIMIT).
            let _ = released.recv_timeout(HOLD_LIMIT);
            process_order(order_id, wait)
        };
        let thread = start_named_order(order_id, stack_bytes, held)
            .with_context(|| format!("starting the thread named order-{order_id}"))?;
        releases.push(release);
        named.push((order_id, thread));
    }
    // `thread::spawn` panics if the system refuses a thread: caught here and
    // answered with an error, like the Builder's.
    let refused = |panic| anyhow!("starting a thread: {panic}");
    let closure = quietly(|| start_with_closure(CLOSURE_ORDER, wait)).map_err(refused)?;
    let typed = quietly(|| OrderProcessing { order_id: TYPE_ORDER, wait }.start()).map_err(refused)?;

    for _ in &named {
        started.recv_timeout(HOLD_LIMIT).context("waiting for the named threads to start")?;
    }
    let given = NAMED_ORDERS.iter().map(|order_id| format!("order-{order_id}")).collect();
    let names = Names { given, seen: thread_names() };
    drop(releases);

    let mut joins = vec![
        Joined::new("closure", CLOSURE_ORDER, joined(closure.join())),
        Joined::new("type with run", TYPE_ORDER, joined(typed.join())),
    ];
    for (order_id, thread) in named {
        joins.push(Joined::new("Builder, named", order_id, joined(thread.join())));
    }
    Ok(Ways { joins, names })
}

/// Starts the order that does not exist on a thread of its own and joins
/// it, with the panic hook silenced meanwhile: the panic's message would
/// otherwise land in the middle of the report. The thread panics before it
/// waits, so this takes no time.
fn join_the_missing_order() -> anyhow::Result<Joined> {
    let failed = quietly(|| joined(start_with_closure(MISSING_ORDER, Duration::ZERO).join()))
        .map_err(|panic| anyhow!("starting a thread: {panic}"))?;
    Ok(Joined::new("closure, order 0", MISSING_ORDER, failed))
}

/// The name of every thread of this process, as Linux shows them to `top
/// -H` and `ps -L`: `/proc/self/task/<tid>/comm`. A thread that ends
/// between the listing and the reading is left out.
fn thread_names() -> Option<Vec<String>> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let comm = |task: std::fs::DirEntry| std::fs::read_to_string(task.path().join("comm")).ok();
    Some(tasks.flatten().filter_map(comm).map(|name| name.trim_end().to_string()).collect())
}

/// The first table: per way, how many threads, how many joins gave back
/// their own order, how many gave `Err`, and for the named ones, how many
/// were seen by their name.
fn join_figures(report: &mut Report, joins: &[Joined], names: &Names) {
    let mut ways: Vec<&str> = joins.iter().map(|joined| joined.way).collect();
    ways.dedup();
    for way in ways {
        let of_way: Vec<&Joined> = joins.iter().filter(|joined| joined.way == way).collect();
        let returned = of_way.iter().filter(|j| j.got.is_ok() && j.as_expected()).count();
        report.figure(way, "threads", of_way.len(), "threads");
        report.figure(way, "returned", returned, "threads");
        report.figure(way, "Err", of_way.iter().filter(|joined| joined.got.is_err()).count(), "threads");
        if way == "Builder, named" {
            report.figure(way, "named", names.given.len(), "threads");
            if let Some(seen) = &names.seen {
                let found = names.given.iter().filter(|name| seen.contains(name)).count();
                report.figure(way, "seen by name", found, "threads");
            }
        }
    }
}

fn notes(report: &mut Report, joins: &[Joined], names: &Names) {
    if let Some(seen) = &names.seen {
        report.note(format!("threads in /proc/self/task/*/comm: {}", seen.join(", ")));
    }
    let inside: Vec<String> = joins
        .iter()
        .filter_map(|joined| joined.got.as_ref().ok())
        .map(|p| format!("{} in {}", p.order_id, p.thread_name.as_deref().unwrap_or("(unnamed)")))
        .collect();
    report.note(format!("each order, and its thread's name from inside it: {}", inside.join(", ")));
    if let Some(Err(message)) = joins.iter().find(|joined| joined.order_id == MISSING_ORDER).map(|j| &j.got) {
        report.note(format!(
            "order 0's thread panicked (\"{message}\"); its join gave Err and this thread went on"
        ));
    }
}

// ---------------------------------------------------------------------------
// The claims, each from the figures measured.
// ---------------------------------------------------------------------------

/// Claim `waits-overlap`: two orders that wait took at most 1.5 x one wait
/// on two threads and at least 1.8 x one after the other. Waiting needs no
/// core, so nothing about the machine is a precondition.
fn waits_overlap(wait: Duration, two_threads: Duration, one_thread: Duration) -> Claim {
    let (overlapped, added_up) = (ratio(two_threads, wait), ratio(one_thread, wait));
    Claim::check(
        "waits-overlap",
        "two waiting orders took at most 1.5 x one wait on two threads, at least 1.8 x on one",
        overlapped <= 1.5 && added_up >= 1.8,
        format!(
            "{:.0} ms ({overlapped:.2} x) on two threads, {:.0} ms ({added_up:.2} x) on one; one wait {} ms",
            two_threads.as_secs_f64() * 1e3,
            one_thread.as_secs_f64() * 1e3,
            wait.as_millis()
        ),
    )
}

/// Claim `work-needs-cores`: two computing orders on two threads took at
/// most 1.5 x one order's CPU time, given that other programs left 1.6 of
/// the two cores free while they ran; inconclusive, with the figures, when
/// they did not; skipped on one core, where two threads can only take turns.
fn work_needs_cores(work: Duration, two_threads: &CpuShare, cores: usize) -> Claim {
    let (id, statement) =
        ("work-needs-cores", "two computing orders took at most 1.5 x one order's time on two threads");
    if cores < 2 {
        return Claim::skipped(id, statement, "this machine has one core: the threads can only take turns");
    }
    let taken = ratio(two_threads.wall, work);
    Claim::check_given(
        id,
        statement,
        two_threads.free_at_least(1.6, "two computing threads"),
        taken <= 1.5,
        format!(
            "{:.0} ms ({taken:.2} x) for {} ms of CPU time each; the threads used {:.2} cores",
            two_threads.wall.as_secs_f64() * 1e3,
            work.as_millis(),
            two_threads.cores_received()
        ),
    )
}

/// Claim `join-returns`: every join gave back its thread's own order, and
/// the join of the thread that panicked gave `Err`.
fn join_returns(joins: &[Joined]) -> Claim {
    let right = joins.iter().filter(|joined| joined.as_expected()).count();
    let wrong: Vec<String> = joins
        .iter()
        .filter(|joined| !joined.as_expected())
        .map(|joined| format!("{} order {} gave {:?}", joined.way, joined.order_id, joined.got))
        .collect();
    let panicked = joins.iter().filter(|joined| joined.got.is_err()).count();
    let mut evidence = format!("{right}/{} joins as expected, {panicked} of them Err", joins.len());
    if !wrong.is_empty() {
        evidence.push_str(&format!("; wrong: {}", wrong.join("; ")));
    }
    Claim::check(
        "join-returns",
        "every join gave back its thread's order, and the panicked thread's gave Err",
        wrong.is_empty() && joins.iter().any(|joined| joined.order_id == MISSING_ORDER),
        evidence,
    )
}

/// Claim `names-seen`: every thread started with a name showed under it in
/// `/proc/self/task/*/comm` while it was alive.
fn names_seen(names: &Names) -> Claim {
    let (id, statement) = ("names-seen", "every named thread showed under its name in /proc/self/task");
    let Some(seen) = &names.seen else {
        return Claim::skipped(id, statement, "/proc/self/task cannot be read here (Linux only)");
    };
    let missing: Vec<&String> = names.given.iter().filter(|name| !seen.contains(name)).collect();
    let evidence = format!(
        "{}/{} seen ({}){}",
        names.given.len() - missing.len(),
        names.given.len(),
        names.given.join(", "),
        if missing.is_empty() { String::new() } else { format!("; not seen: {missing:?}") }
    );
    Claim::check(id, statement, missing.is_empty(), evidence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::measure::time;
    use common::report::Verdict;

    #[test]
    fn waits_overlap_fails_when_the_two_threads_take_turns() {
        // The "two threads" case run one after the other: the overlap removed.
        let wait = Duration::from_millis(20);
        let (_, in_turn) = time(|| each_order_in_turn(&[1, 2], |id| process_order(id, wait)));
        assert_eq!(waits_overlap(wait, in_turn, in_turn).verdict, Verdict::DoesNotHold);
        // And two threads that never waited do not add up one after the other.
        assert_eq!(waits_overlap(wait, wait, wait).verdict, Verdict::DoesNotHold);
        assert_eq!(waits_overlap(wait, wait, wait * 2).verdict, Verdict::Holds);
    }

    /// A window of `wall` on 2 cores in which the threads used `used` cores
    /// and other programs kept `others` busy.
    fn machine(wall: Duration, used: f64, others: f64) -> CpuShare {
        CpuShare {
            wall,
            cpu: wall.mul_f64(used),
            machine_busy_cores: Some(used + others),
            machine_cores: 2,
            machine_ticks: 1000,
        }
    }

    #[test]
    fn work_needs_cores_fails_without_the_overlap_and_is_inconclusive_when_busy() {
        // Two computing orders one after the other, fed as "two threads".
        let work = Duration::from_millis(20);
        let (_, in_turn) = time(|| each_order_in_turn(&[1, 2], |id| compute_order(id, work)));
        let idle = machine(in_turn, 1.0, 0.0);
        assert_eq!(work_needs_cores(work, &idle, 2).verdict, Verdict::DoesNotHold);
        // A busy machine's figures: two spinning programs held the cores.
        let busy = machine(work * 2, 1.0, 1.9);
        let claim = work_needs_cores(work, &busy, 2);
        assert_eq!(claim.verdict, Verdict::Inconclusive);
        assert!(claim.reason.unwrap().contains("other programs kept 1.9 of 2 cores busy"));
        // Two threads done in one order's time, with the cores free.
        let overlapped = machine(work, 2.0, 0.0);
        assert_eq!(work_needs_cores(work, &overlapped, 2).verdict, Verdict::Holds);
        assert_eq!(work_needs_cores(work, &overlapped, 1).verdict, Verdict::Skipped);
    }

    #[test]
    fn compute_order_spends_its_cpu_time() {
        let before = thread_cpu_time();
        assert_eq!(compute_order(7, Duration::from_millis(20)), 7);
        assert!(thread_cpu_time() - before >= Duration::from_millis(20));
    }

    #[test]
    fn join_returns_fails_when_a_join_gives_back_the_wrong_thing() {
        let wait = Duration::from_millis(1);
        let ok = |id| Joined::new("closure", id, joined(start_with_closure(id, wait).join()));
        let panicked = Joined::new("closure, order 0", 0, Err("there is no order 0".into()));
        assert_eq!(join_returns(&[ok(10), ok(20), panicked]).verdict, Verdict::Holds);
        // Each thread's value given to the other's join.
        let (mut a, mut b) = (ok(10), ok(20));
        std::mem::swap(&mut a.got, &mut b.got);
        let panicked = Joined::new("closure, order 0", 0, Err("there is no order 0".into()));
        assert_eq!(join_returns(&[a, b, panicked]).verdict, Verdict::DoesNotHold);
        // A panic that a join hid, as Python's does: no Err where one is due.
        let hidden = Joined::new("closure, order 0", 0, Ok(Processed { order_id: 0, thread_name: None }));
        assert_eq!(join_returns(&[ok(10), hidden]).verdict, Verdict::DoesNotHold);
    }

    #[test]
    fn names_seen_fails_for_a_thread_that_does_not_set_its_name() {
        // The same hold as the lab's, with a Builder that sets no name. (No
        // other test names a thread order-99: the tests share this process.)
        let (ready, started) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let unnamed = std::thread::Builder::new()
            .spawn(move || {
                ready.send(()).unwrap();
                let _ = released.recv_timeout(HOLD_LIMIT);
            })
            .unwrap();
        started.recv_timeout(HOLD_LIMIT).unwrap();
        let names = Names { given: vec!["order-99".into()], seen: thread_names() };
        drop(release);
        unnamed.join().unwrap();
        assert_eq!(names_seen(&names).verdict, Verdict::DoesNotHold);
        assert_eq!(names_seen(&Names { seen: None, ..names }).verdict, Verdict::Skipped);
    }
}

/// The `main` that `cargo xtask eject` gives the standalone crate, compiled
/// and run with the lab's tests.
#[cfg(test)]
mod standalone {
    use crate::*;
    include!("standalone.rs");

    #[test]
    fn standalone_main_holds_its_rule() {
        main()
    }
}
