// Maps 1024 numbers four ways, Python's `Pool(8).map(f, range(1024))`,
// and asserts that each gave back exactly what a plain loop gives, in
// input order. How long each took is printed, not asserted: that depends
// on the machine and its load.
fn main() {
    use std::time::Instant;

    // Started again as a worker of the process pool: serve chunks until
    // the input pipe closes, then exit.
    if std::env::args().nth(1).as_deref() == Some("--child-role") {
        if let Err(err) = pool_worker() {
            eprintln!("error: pool worker: {err}");
            std::process::exit(1);
        }
        return;
    }

    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let inputs: Vec<u64> = (0..1024).collect();
    let rounds = 100_000; // about a tenth of a millisecond an item
    let f = move |x| work(x, rounds);

    let started = Instant::now();
    let expected = plain_loop(&inputs, rounds);
    println!("plain loop     {:?}", started.elapsed());

    let threads = ThreadPool::new(workers).expect("starting the thread pool");
    let started = Instant::now();
    assert_eq!(threads.map(f, &inputs), expected);
    println!("thread pool    {:?}", started.elapsed());

    let started = Instant::now();
    assert_eq!(scoped_chunks(f, &inputs, workers).expect("starting scoped threads"), expected);
    println!("scoped chunks  {:?}", started.elapsed());

    let rayon = rayon::ThreadPoolBuilder::new().num_threads(workers).build().expect("starting rayon");
    let started = Instant::now();
    assert_eq!(rayon_map(&rayon, f, &inputs), expected);
    println!("rayon          {:?}", started.elapsed());

    let mut processes = ProcessPool::start(workers).expect("starting the process pool");
    let started = Instant::now();
    assert_eq!(processes.map(rounds, &inputs).expect("mapping with the process pool"), expected);
    println!("process pool   {:?} (after its start)", started.elapsed());
    processes.close().expect("closing the process pool");
    println!("every way gave back the plain loop's {} results, in order", expected.len());
}
