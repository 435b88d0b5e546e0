// Starts and finishes each kind of unit, and asserts what always holds:
// every thread joins and every child exits with status 0; a fork and a
// spawn each cost more CPU time than a thread (this process's and its
// reaped children's, per unit); and 100 parked threads add less private
// memory each than a forked or a spawned child has. By how much is
// printed, not asserted: it depends on the machine.
fn main() {
    use nix::sys::resource::{UsageWho, getrusage};
    use nix::sys::wait::WaitStatus;
    use std::time::Duration;

    // Started again as a spawned child: play the role and exit.
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("--child-role") {
        let role = args.next().unwrap_or_default();
        let role_args: Vec<String> = args.collect();
        if let Err(err) = child_main(&role, &role_args) {
            eprintln!("error: child role {role}: {err}");
            std::process::exit(1);
        }
        return;
    }

    // CPU time so far: this process's threads, and its reaped children.
    let cpu = || {
        let time = |who| {
            let usage = getrusage(who).expect("getrusage");
            let micros = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
            Duration::from_micros(micros(usage.user_time()) + micros(usage.system_time()))
        };
        time(UsageWho::RUSAGE_SELF) + time(UsageWho::RUSAGE_CHILDREN)
    };
    let per_unit = |units: u32, unit: &mut dyn FnMut()| {
        unit();
        let before = cpu();
        for _ in 0..units {
            unit();
        }
        (cpu() - before) / units
    };
    let thread = per_unit(200, &mut || thread_unit().expect("starting a thread"));
    let forked = per_unit(200, &mut || {
        assert!(matches!(fork_unit().expect("forking"), WaitStatus::Exited(_, 0)));
    });
    let spawned = per_unit(50, &mut || assert!(spawn_unit().expect("spawning").success()));
    let true_ = per_unit(50, &mut || assert!(true_unit().expect("spawning /bin/true").success()));
    println!("CPU per unit: thread {thread:?}, fork {forked:?}, spawn {spawned:?}, /bin/true {true_:?}");
    assert!(forked > thread && spawned > thread, "a process cost no more CPU time than a thread");

    // Private memory: the pages of `pid` no other process maps.
    let private = |pid: u32| -> u64 {
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).expect("smaps_rollup");
        let kib = |name: &str| -> u64 {
            let line = rollup.lines().find(|line| line.starts_with(name)).expect("a field of smaps_rollup");
            line[name.len()..].split_whitespace().next().and_then(|n| n.parse().ok()).expect("KiB")
        };
        (kib("Private_Clean:") + kib("Private_Dirty:")) * 1024
    };
    let this = std::process::id();
    let before = private(this);
    let during = with_threads_parked(100, 0, || private(this)).expect("parking 100 threads");
    let per_thread = during.saturating_sub(before) / 100;
    let forked = with_forked_child_parked(0, |pid| private(pid.as_raw() as u32)).expect("a forked child");
    let spawned = with_spawned_child_parked(0, private).expect("a spawned child");
    println!("private memory: {per_thread} bytes per thread, forked child {forked}, spawned child {spawned}");
    assert!(per_thread < forked && per_thread < spawned, "a thread added as much memory as a process");
}
