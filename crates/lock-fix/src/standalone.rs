// Runs each bug once beside its fixes, at a small size, and asserts the
// rule: every fix counts every update, exactly. The bugs may or may not lose
// an update in one short run, so for them only what is always true is
// asserted: they never count more than was added.
fn main() {
    let (threads, increments) = (4, 20_000);
    let expected = threads as u64 * increments;

    let racy = AtomicU64::new(0);
    run_together(threads, || add_with_split_load_store(&racy, increments)).expect("starting the threads");
    let std_mutex = Mutex::new(0);
    run_together(threads, || add_with_std_mutex(&std_mutex, increments)).expect("starting the threads");
    let parking_lot_mutex = parking_lot::Mutex::new(0);
    run_together(threads, || add_with_parking_lot(&parking_lot_mutex, increments))
        .expect("starting the threads");
    let fetch_add = AtomicU64::new(0);
    run_together(threads, || add_with_fetch_add(&fetch_add, increments)).expect("starting the threads");
    let sums: u64 =
        run_together(threads, || count_locally(increments)).expect("starting the threads").iter().sum();
    let counted =
        [*std_mutex.lock().unwrap(), *parking_lot_mutex.lock(), fetch_add.load(Ordering::Relaxed), sums];
    let racy = racy.load(Ordering::Relaxed);
    println!("{threads} threads x {increments}: split load/store counted {racy}; the four fixes {counted:?}");
    assert!(racy <= expected);
    assert_eq!(counted, [expected; 4]);

    // The read-pause-write, with the guard let go between the read and the
    // write, then held across all three steps.
    let pause = std::time::Duration::from_millis(5);
    let released = Mutex::new(0);
    run_together(threads, || read_pause_write(&released, pause)).expect("starting the threads");
    let held = Mutex::new(0);
    run_together(threads, || read_pause_write_locked(&held, pause)).expect("starting the threads");
    let (released, held) = (*released.lock().unwrap(), *held.lock().unwrap());
    println!("read, pause, write by {threads} threads: guard released {released}, guard held {held}");
    assert!((1..=threads as u64).contains(&released));
    assert_eq!(held, threads as u64);
}
