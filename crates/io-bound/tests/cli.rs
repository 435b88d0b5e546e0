//! The io-bound binary, run as a learner runs it: its timing claims hold at
//! quick sizes, every way of downloading receives the same bytes, bad input
//! gets exit code 2 with one line, and with `--url` each failure is counted
//! and named while the lesson still exits 0. Nothing here leaves 127.0.0.1.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use lesson_tests::{Lesson, assert_claims_hold, figure, verdict};

fn lesson() -> Lesson {
    Lesson::new("io-bound", env!("CARGO_BIN_EXE_io-bound"))
}

#[test]
fn quick_run_holds_its_claims_and_counts_every_byte() {
    let report = lesson().json(&["--quick"]);
    assert_claims_hold(&report);
    // 5 URLs one after the other and with a thread each, 32 in the pool, 16 KiB each.
    let body = 16.0 * 1024.0;
    assert_eq!(figure(&report, "sequential", "bytes"), 5.0 * body);
    assert_eq!(figure(&report, "thread per URL", "bytes"), 5.0 * body);
    assert_eq!(figure(&report, "fixed pool", "bytes"), 32.0 * body);
    for way in ["sequential", "thread per URL", "fixed pool"] {
        assert_eq!(figure(&report, way, "failed"), 0.0, "{way}");
    }
    // Timings only as ratios: the threads beat the loop by more than half
    // the number of downloads.
    let speedup = figure(&report, "sequential", "time") / figure(&report, "thread per URL", "time");
    assert!(speedup > 2.5, "thread per URL only {speedup:.2}x faster than sequential");
}

#[test]
fn a_small_pool_needs_more_rounds() {
    // 10 URLs over 4 workers: 3 rounds of one latency.
    let args =
        ["--quick", "--downloads", "3", "--workers", "4", "--pool-downloads", "10", "--body-bytes", "1000"];
    let report = lesson().json(&args);
    assert_claims_hold(&report);
    assert_eq!(figure(&report, "fixed pool", "threads"), 4.0);
    assert_eq!(
        figure(&report, "fixed pool", "expected") / figure(&report, "thread per URL", "expected"),
        3.0
    );
    assert_eq!(figure(&report, "sequential", "bytes"), 3000.0);
    assert_eq!(figure(&report, "fixed pool", "bytes"), 10_000.0);
    // At best 10 URLs in 3 rounds: a pool of 4 is never 4x faster here.
    assert_eq!(figure(&report, "fixed pool", "ideal"), 10.0 / 3.0);
}

#[test]
fn bad_input_is_refused_with_one_line() {
    lesson().refuses(&[
        (&["--latency-ms", "-1"], "-1"),
        (&["--latency-ms", "0"], "--latency-ms"),
        (&["--workers", "0"], "--workers"),
        (&["--workers", "1025"], "--workers"),
        (&["--downloads", "0"], "--downloads"),
        (&["--body-bytes", "many"], "--body-bytes"),
        (&["--url", "not-a-url"], "not-a-url"),
        (&["--url", "ftp://x"], "ftp://x"),
        (&["--url", "http://[::1"], "--url"),
    ]);
}

#[cfg(not(feature = "https"))]
#[test]
fn https_without_tls_says_how_to_get_it() {
    lesson().refuses(&[(&["--url", "https://127.0.0.1:1/"], "--features https")]);
}

#[test]
fn your_urls_report_each_failure_and_exit_0() {
    let server = TestServer::start();
    let ok = server.url("/ok");
    let missing = server.url("/missing");
    // Nothing listens on port 1: the connection is refused.
    let refused = "http://127.0.0.1:1/x";
    let report = lesson().json(&["--url", &ok, "--url", &missing, "--url", refused]);
    assert_claims_hold(&report);

    for way in ["sequential", "thread per URL"] {
        assert_eq!(figure(&report, way, "failed"), 2.0, "{way}");
    }
    assert_eq!(figure(&report, &ok, "failed"), 0.0);
    assert_eq!(figure(&report, &ok, "bytes"), 5.0);
    assert_eq!(figure(&report, &missing, "failed"), 2.0);
    assert_eq!(figure(&report, refused, "failed"), 2.0);

    // Each failure is named with its URL and its cause.
    let notes: Vec<String> = report["notes"]
        .as_array()
        .expect("failures are noted")
        .iter()
        .map(|note| note.as_str().unwrap().to_lowercase())
        .collect();
    assert_eq!(notes.iter().filter(|n| n.contains(&missing) && n.contains("404")).count(), 2, "{notes:?}");
    assert_eq!(notes.iter().filter(|n| n.contains(refused) && n.contains("refused")).count(), 2, "{notes:?}");

    // The claims that need the loopback server's latency are skipped, not failed.
    for id in ["threads-overlap", "sequential-adds-up", "pool-rounds", "same-bytes"] {
        assert_eq!(verdict(&report, id), None, "{id}");
    }
    // Each URL was asked once per way: /ok and /missing twice each.
    assert_eq!(server.stop(), 4);
}

/// A one-thread HTTP server on 127.0.0.1 for the `--url` test: `/ok` gets
/// 200 and `hello`, any other path 404; each connection gets one answer and
/// is closed.
struct TestServer {
    addr: SocketAddr,
    answered: Arc<AtomicUsize>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let addr = listener.local_addr().unwrap();
        let answered = Arc::new(AtomicUsize::new(0));
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let (answered, stopping) = (Arc::clone(&answered), Arc::clone(&stopping));
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream
                        && answer_once(stream).is_ok()
                    {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        };
        TestServer { addr, answered, stopping, thread: Some(thread) }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server and returns how many requests it answered.
    fn stop(mut self) -> usize {
        self.shut_down();
        self.answered.load(Ordering::SeqCst)
    }

    fn shut_down(&mut self) {
        if let Some(thread) = self.thread.take() {
            // The thread waits in `accept`: a connection of our own wakes it.
            self.stopping.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(self.addr);
            thread.join().expect("the test server does not panic");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Reads one request's head and answers it.
fn answer_once(stream: TcpStream) -> std::io::Result<()> {
    // A client that stalls cannot hold the test for more than this.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut header = String::new();
    while reader.read_line(&mut header)? > 0 && !header.trim_end().is_empty() {
        header.clear();
    }
    let response: &[u8] = if request_line.starts_with("GET /ok ") {
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    } else {
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    };
    let mut stream = stream;
    stream.write_all(response)?;
    stream.flush()
}
