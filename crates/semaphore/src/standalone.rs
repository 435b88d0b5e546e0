// Runs six tasks through a semaphore of two permits, then through a channel
// of two tokens, and asserts the rule: never more than two inside at once,
// two at the peak, so the six take at least three uses; and a task that
// panics holding a permit gives it back. How long each run took beyond
// three uses is printed, not asserted: it depends on the machine's load.
// So are the peaks without a limit (all six, unless the machine is slow to
// wake them) and with the broken two-step acquire (two, nearly always: its
// race needs an unlucky moment, which the loom model finds every time).
fn main() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    let (tasks, permits, hold) = (6, 2, Duration::from_millis(20));
    let patience = Duration::from_secs(10);
    let (inside, peak) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let work = |_task: usize| {
        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
        peak.fetch_max(now, Ordering::SeqCst);
        use_connection(hold);
        inside.fetch_sub(1, Ordering::SeqCst);
    };

    let semaphore = Semaphore::new(permits);
    let started = Instant::now();
    let gave_up = with_the_semaphore(tasks, &semaphore, patience, work).expect("task threads");
    let took = started.elapsed();
    println!("semaphore: peak {} inside, {took:.0?} for 3 uses of {hold:?}", peak.load(Ordering::SeqCst));
    assert_eq!((gave_up, peak.load(Ordering::SeqCst)), (0, permits));
    assert!(took >= hold * 3);

    peak.store(0, Ordering::SeqCst);
    let pool = TokenPool::new(permits);
    let started = Instant::now();
    let gave_up = with_a_channel_of_tokens(tasks, &pool, patience, work).expect("task threads");
    let took = started.elapsed();
    println!("tokens: peak {} inside, {took:.0?} for 3 uses of {hold:?}", peak.load(Ordering::SeqCst));
    assert_eq!((gave_up, peak.load(Ordering::SeqCst)), (0, permits));
    assert!(took >= hold * 3);

    peak.store(0, Ordering::SeqCst);
    without_a_limit(tasks, work).expect("task threads");
    println!("without a limit: peak {} inside", peak.load(Ordering::SeqCst));
    peak.store(0, Ordering::SeqCst);
    let broken = Semaphore::new(permits);
    run_tasks(tasks, || broken.acquire_in_two_steps(patience), work).expect("task threads");
    println!("broken two-step acquire: peak {} inside", peak.load(Ordering::SeqCst));

    // The panic's message is printed (the default hook); the permit comes back.
    println!("next, a task panics on purpose while it holds a permit:");
    let panicked = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let _permit = semaphore.acquire(patience).expect("a free permit");
                panic!("the connection broke");
            })
            .join()
    });
    assert!(panicked.is_err());
    assert_eq!(semaphore.available(), permits);
    println!("after a task panicked holding a permit: {} of {permits} free", semaphore.available());
    let panicked = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let _token = pool.acquire(patience).expect("a free token");
                panic!("the connection broke");
            })
            .join()
    });
    assert!(panicked.is_err());
    assert_eq!(pool.available(), permits);
}
