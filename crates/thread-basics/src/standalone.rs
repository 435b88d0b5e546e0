// Starts a thread each way once and asserts what always holds: each join
// gives back its own thread's order, with the name the thread was given;
// the thread of the order that does not exist panics and its join gives
// `Err`, while this thread goes on; a named thread shows under its name in
// /proc/self/task (Linux); and two waiting orders one after the other take
// at least two waits. How much the two threads save is printed, not
// asserted: it depends on the machine's load.
fn main() {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    let wait = Duration::from_millis(50);
    let closure = start_with_closure(10, wait);
    let typed = OrderProcessing { order_id: 20, wait }.start();
    // The named thread says it has started, then waits until this thread
    // has read the names, or 10 s at most.
    let (ready, started) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let named = start_named_order(30, 256 * 1024, move |order_id| {
        ready.send(()).expect("main is waiting for this");
        let _ = released.recv_timeout(Duration::from_secs(10));
        process_order(order_id, wait)
    })
    .expect("starting a thread named order-30");
    started.recv_timeout(Duration::from_secs(10)).expect("the named thread started");
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        let names: Vec<String> = tasks
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
            .map(|name| name.trim_end().to_string())
            .collect();
        println!("this process's threads, by name: {}", names.join(", "));
        assert!(names.iter().any(|name| name == "order-30"));
    }
    drop(release);

    let unnamed = |order_id| Processed { order_id, thread_name: None };
    assert_eq!(joined(closure.join()), Ok(unnamed(10)));
    assert_eq!(joined(typed.join()), Ok(unnamed(20)));
    let order_30 = Processed { order_id: 30, thread_name: Some("order-30".to_string()) };
    assert_eq!(joined(named.join()), Ok(order_30));
    // This one prints the panic's message (the default hook), then its
    // join gives it back as `Err`.
    let failed = joined(start_with_closure(0, wait).join());
    println!("order 0's join gave {failed:?}");
    assert_eq!(failed, Err("there is no order 0".to_string()));

    let started = Instant::now();
    let on_two = each_order_on_its_own_thread(&[50, 60], |id| process_order(id, wait)).expect("threads");
    let two_threads = started.elapsed();
    let started = Instant::now();
    let on_one = each_order_in_turn(&[50, 60], |id| process_order(id, wait));
    let one_thread = started.elapsed();
    println!("two waiting orders: {two_threads:.0?} on two threads, {one_thread:.0?} on one");
    let order_ids: Vec<u32> = on_two.iter().map(|got| got.as_ref().expect("no panic").order_id).collect();
    assert_eq!(order_ids, [50, 60]);
    assert_eq!(on_two[0].as_ref().unwrap().thread_name.as_deref(), Some("order-50"));
    assert_eq!(on_one.iter().map(|p| p.order_id).collect::<Vec<_>>(), [50, 60]);
    assert!(one_thread >= wait * 2);
}
