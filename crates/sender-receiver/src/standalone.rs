// Runs each sender once at a 20 ms tick and reads 3 values from it before
// stopping it. Every receiver reads 0, 1, 2 in order; SIGTERM is what ends
// the sender process; the owned thread is over when its drop returns. How
// much sooner select stops a sender than a flag is printed, not asserted: it
// depends on the machine's load.
fn main() {
    use std::os::unix::process::ExitStatusExt;
    use std::time::{Duration, Instant};

    // Started again as the sender process (below): play the role and exit.
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

    let tick = Duration::from_millis(20);
    // Three values, waiting at most 5 s for each: a sender that stops
    // sending fails the run instead of hanging it.
    let read_three = |values: &crossbeam_channel::Receiver<u64>| -> Vec<u64> {
        (0..3).map(|_| values.recv_timeout(Duration::from_secs(5)).expect("a value per tick")).collect()
    };

    let sender = SenderProcess::start(tick).expect("starting the sender process");
    let from_process = read_three(&sender.values);
    let status = sender.terminate(Duration::from_secs(5)).expect("stopping the sender process");
    println!("process: read {from_process:?}, then SIGTERM: wait returned \"{status}\"");
    assert_eq!(from_process, [0, 1, 2]);
    assert_eq!(status.signal(), Some(nix::sys::signal::Signal::SIGTERM as i32));

    let (values, stop) = start_flag_sender(tick).expect("starting the flag sender");
    let from_flag = read_three(&values);
    let started = Instant::now();
    stop();
    let flag_stop = started.elapsed();
    let (values, stop) = start_select_sender(tick).expect("starting the select sender");
    let from_select = read_three(&values);
    let started = Instant::now();
    stop();
    let select_stop = started.elapsed();
    println!("threads: a flag stopped its sender in {flag_stop:.1?}, select in {select_stop:.1?}");
    assert_eq!(from_flag, [0, 1, 2]);
    assert_eq!(from_select, [0, 1, 2]);

    // A second receiver outlives the ticker: once the thread is over, its
    // sender is gone and the channel says so.
    let ticker = Ticker::start(tick).expect("starting the ticker thread");
    let from_ticker = read_three(&ticker.values);
    let probe = ticker.values.clone();
    drop(ticker);
    probe.try_iter().for_each(drop);
    let closed = probe.try_recv() == Err(crossbeam_channel::TryRecvError::Disconnected);
    println!("owned thread: read {from_ticker:?}; channel closed when the drop returned: {closed}");
    assert_eq!(from_ticker, [0, 1, 2]);
    assert!(closed, "the ticker's thread was still running after its drop");
}
