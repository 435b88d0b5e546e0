// Counts the same total down on one thread, on two threads, and on two
// threads that share one global lock, prints how long each took, and
// asserts that every way did all of the work. The times show the lesson
// (two free threads about twice as fast on two idle cores, the locked
// ones no faster than one), but they depend on the machine and its load,
// so they are printed, not asserted.
fn main() {
    // An odd total, so that the split has a remainder to hand out.
    let total: u64 = 50_000_001;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(2));
    let timed = |way: fn(u64, usize) -> u64, threads: usize| {
        let started = std::time::Instant::now();
        let done = way(total, threads);
        (done, started.elapsed())
    };
    let (alone, alone_took) = timed(split_countdown, 1);
    let (free, free_took) = timed(split_countdown, threads);
    let (locked, locked_took) = timed(gil_countdown, threads);
    println!(
        "{total} decrements: 1 thread {alone_took:.0?}, {threads} threads {free_took:.0?}, \
         {threads} threads under one lock {locked_took:.0?}"
    );
    println!(
        "speedup: {:.2}x free, {:.2}x under the lock",
        alone_took.as_secs_f64() / free_took.as_secs_f64(),
        alone_took.as_secs_f64() / locked_took.as_secs_f64()
    );
    // However the work is split, and whether or not the threads take turns,
    // every decrement is done exactly once.
    assert_eq!((alone, free, locked), (total, total, total));
}
