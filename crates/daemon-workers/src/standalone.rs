// Runs each part once, small: 3 workers, 12 items, 2 ms of work per item.
// `join` returns with every item done exactly once; a child process that
// ends right after `join` leaves none of its buffered results in its file;
// one that closes the queue and joins its workers leaves all of them.
fn main() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    // Started again as a child (below): play the role and exit.
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

    let (workers, items, work) = (3, 12, Duration::from_millis(2));

    // join: a counter per item, read the moment `join` returns.
    let finished: Arc<Vec<AtomicU32>> = Arc::new((0..items).map(|_| AtomicU32::new(0)).collect());
    let (queue, handles) = start_workers(workers, {
        let finished = Arc::clone(&finished);
        move |item: usize| {
            std::thread::sleep(work);
            finished[item].fetch_add(1, Ordering::SeqCst);
        }
    })
    .expect("starting the workers");
    for item in 0..items {
        queue.put(item);
    }
    queue.join();
    let done_once = finished.iter().filter(|count| count.load(Ordering::SeqCst) == 1).count();
    drop(queue);
    for handle in handles {
        handle.join().unwrap();
    }
    println!("join returned with {done_once} of {items} items done, each once");
    assert_eq!(done_once, items);

    // The two endings, each in a child process of its own, counted from the
    // lines they left in their file.
    let results_of = |ending: &str| -> usize {
        let path = std::env::temp_dir().join(format!("daemon-workers-{}-{ending}.txt", std::process::id()));
        let exe = std::env::current_exe().expect("this executable");
        let status = std::process::Command::new(exe)
            .args(["--child-role", ending, &workers.to_string(), &items.to_string(), "2"])
            .arg(&path)
            .status()
            .expect("starting the child");
        assert!(status.success(), "the {ending} child failed: {status}");
        let written = std::fs::read_to_string(&path).map(|text| text.lines().count()).unwrap_or(0);
        let _ = std::fs::remove_file(&path);
        written
    };
    let daemon = results_of("daemon-exit");
    let clean = results_of("close-and-join");
    println!("daemon exit: {daemon} of {items} results in the file; close and join: {clean}");
    assert_eq!(daemon, 0, "exit flushes no worker's buffer");
    assert_eq!(clean, items);
}
