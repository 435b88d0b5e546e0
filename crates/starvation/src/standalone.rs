// Races four threads for each lock for 200 ms and asserts what always
// holds: every turn is counted once, by the thread that took it, so the
// threads' tallies add up to the lock's own count; and with fair unlocking
// every thread gets turns. How the turns were shared, how many were taken
// straight back and the longest wait are printed, not asserted: they
// depend on the cores the machine leaves free.
fn main() {
    let (threads, duration) = (4, Duration::from_millis(200));
    let report = |name: &str, tallies: &[Tally], ledger: &Ledger| {
        let turns: Vec<u64> = tallies.iter().map(|tally| tally.turns).collect();
        let back: u64 = tallies.iter().map(|tally| tally.taken_back).sum();
        let waits: Vec<u64> = tallies.iter().map(|tally| tally.longest_wait).collect();
        println!("{name}: turns {turns:?}, {back} taken back, longest waits {waits:?}");
        assert_eq!(turns.iter().sum::<u64>(), ledger.turns, "every turn counted once");
    };

    let lock = Mutex::new(Ledger::default());
    let unfair = race(threads, duration, |me, stop| compete_unfair(&lock, me, HOLD, stop)).expect("threads");
    report("unlock", &unfair, &lock.lock());

    let lock = Mutex::new(Ledger::default());
    let fair = race(threads, duration, |me, stop| compete_fair(&lock, me, HOLD, stop)).expect("threads");
    report("unlock_fair", &fair, &lock.lock());
    assert!(fair.iter().all(|tally| tally.turns > 0), "fair unlocking gave every thread a turn");

    let lock = StdMutex::new(Ledger::default());
    let std = race(threads, duration, |me, stop| compete_std(&lock, me, HOLD, stop)).expect("threads");
    report("std Mutex", &std, &lock.lock().expect("no thread panicked"));
}
