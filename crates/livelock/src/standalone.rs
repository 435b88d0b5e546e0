// Runs each way once and asserts what always holds: in lockstep, the two
// polite workers do no job however long they try (here a fifth of a
// second), and they stop when told; with random pauses they do every job.
fn main() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    let pair = Arc::new(Pair::new());
    let lockstep = workers(&pair, |pair, me| pair.work_in_lockstep(me, 100)).expect("the workers start");
    std::thread::sleep(Duration::from_millis(200));
    pair.stop.store(true, Ordering::Relaxed);
    for worker in lockstep {
        worker.join().expect("a worker does not panic");
    }
    let jobs = pair.jobs.each_ref().map(|j| j.load(Ordering::Relaxed));
    let tries = pair.tries.each_ref().map(|t| t.load(Ordering::Relaxed));
    println!("in lockstep: jobs {jobs:?} after tries {tries:?}");
    assert_eq!(jobs, [0, 0]);

    let pair = Arc::new(Pair::new());
    let pausing = workers(&pair, |pair, me| pair.work_with_backoff(me, 100, 6)).expect("the workers start");
    for worker in pausing {
        worker.join().expect("a worker does not panic");
    }
    let jobs = pair.jobs.each_ref().map(|j| j.load(Ordering::Relaxed));
    let tries = pair.tries.each_ref().map(|t| t.load(Ordering::Relaxed));
    println!("with random pauses: jobs {jobs:?} after tries {tries:?}");
    assert_eq!(jobs, [100, 100]);
}
