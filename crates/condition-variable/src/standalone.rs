// Runs each part once, small, and asserts what always holds: consumers that
// recheck in a `while` loop take every item exactly once and never come back
// empty-handed; with `notify_all` the customer called wakes; a flag set
// under the lock wakes its waiter. What the broken versions do this time
// (empty takes, a customer or a waiter that slept through its wake-up) is
// printed, not asserted: it depends on how the threads were scheduled.
fn main() {
    let patience = std::time::Duration::from_millis(200);
    let summary = |consumed: &[Consumed]| {
        let mut taken: Vec<u64> = consumed.iter().flat_map(|(items, _)| items.clone()).collect();
        taken.sort_unstable();
        (taken, consumed.iter().map(|(_, nothing)| nothing).sum::<u64>())
    };

    // 1. Two consumers, a queue of one item, 1000 items, each way of taking.
    let queue = Queue::new(1);
    let consumed = produce_and_consume(&queue, 1000, 2, Queue::take_checking_once).expect("consumers");
    let (_, nothing) = summary(&consumed);
    println!("if: {nothing} takes came back empty");
    let queue = Queue::new(1);
    let consumed = produce_and_consume(&queue, 1000, 2, Queue::take_rechecking).expect("consumers");
    let (taken, nothing) = summary(&consumed);
    let woke_empty = queue.state.lock().unwrap().woke_empty;
    println!("while: {woke_empty} wake-ups found the queue empty and waited again");
    assert_eq!(taken, (0..1000).collect::<Vec<u64>>(), "every item taken exactly once");
    assert_eq!(nothing, 0);

    // 2. Two customers wait; number 1 is called, then number 2; each way of ringing.
    let ring_once = Counter::call_ringing_once as fn(&Counter, usize) -> _;
    let rings = [("notify_one", ring_once), ("notify_all", Counter::call_ringing_for_all)];
    for (how, ring) in rings {
        let counter = Counter::default();
        let (first, second) = std::thread::scope(|scope| {
            let customer = |ticket: usize, patience| {
                let counter = &counter;
                scope.spawn(move || {
                    wait_until(&counter.serving, &counter.bell, |now| *now == ticket, patience, || {})
                })
            };
            let (second, first) = (customer(2, patience * 4), customer(1, patience));
            // Give both time to fall asleep (the lab watches /proc instead).
            std::thread::sleep(std::time::Duration::from_millis(20));
            ring(&counter, 1);
            let first = first.join().unwrap();
            ring(&counter, 2);
            (first, second.join().unwrap())
        });
        if let Waited::SleptThrough { since } = first {
            println!("{how}: customer 1 slept through its call, {:?} asleep", since.elapsed());
        }
        println!("{how}: customer 1 {first:?}, customer 2 {second:?}");
        if how == "notify_all" {
            assert!(matches!(first, Waited::Done { .. }), "notify_all woke customer 1");
        }
    }

    // 3. A flag set by another thread, without the lock and under it.
    for (how, set) in
        [("without lock", Flag::set_without_lock as fn(&Flag) -> _), ("under lock", Flag::set_under_lock)]
    {
        let flag = Flag::default();
        let waited = std::thread::scope(|scope| {
            scope.spawn(|| set(&flag));
            flag.wait(patience, || {})
        });
        println!("flag set {how}: the waiter {waited:?}");
        if how == "under lock" {
            assert!(!matches!(waited, Waited::GaveUp | Waited::SleptThrough { .. }), "it woke");
        }
    }
}
