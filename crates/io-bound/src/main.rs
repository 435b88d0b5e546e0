//! Threads overlap their waiting: N downloads from a server that takes L to
//! answer take about L with a thread each, not N x L.
//!
//! The lesson starts an HTTP server on 127.0.0.1 that waits a fixed latency
//! before it answers each request, as a distant web site would, and serves
//! every request on a thread of its own. It downloads N items from it with
//! ureq three ways: one after the other (the waits add up), with a thread
//! per URL (the waits overlap), and with a fixed pool of W threads over M
//! URLs (the waits overlap W at a time, so the pool needs ceil(M/W) rounds).
//! It times each, checks every body byte for byte, and compares the times
//! with what the latency predicts. This mirrors the Python notes that
//! download a web site five times, first in a loop, then with a thread per
//! download, and find the threads about ten times faster: threads help with
//! work that waits, even in CPython, whose lock on the interpreter (the GIL)
//! is let go while a thread waits on a socket. `--url` downloads your own
//! URLs instead, one after the other and then with a thread each.
//!
//! Run:
//!
//! ```text
//! cargo run -p io-bound
//! cargo run --release -p io-bound -- --latency-ms 100 --workers 4 --pool-downloads 20
//! cargo run -p io-bound -- --url http://example.com/ --url http://example.org/
//! ```
//!
//! A run on 2 cores (release):
//!
//! ```text
//! io-bound: threads overlap their waiting: N downloads take about one latency, not N
//! host    cores=2 os=linux profile=release
//! params  latency_ms=200 body_bytes=16384 downloads=5 workers=16 pool_downloads=100
//!
//! experiment      downloads  threads  time  expected  time/expected    bytes  failures
//!                      URLs  threads    ms        ms              x    bytes      URLs
//! sequential              5        1  1006      1000           1.01    81920         0
//! thread per URL          5        5   203       200           1.02    81920         0
//! fixed pool            100       16  1411      1400           1.01  1638400         0
//!
//! speedup over one download at a time
//! experiment      speedup  ideal
//!                       x      x
//! thread per URL     4.95   5.00
//! fixed pool         14.3   14.3
//!
//! expected: 5 latencies one after the other; one latency with a thread per URL; 7 rounds of one latency for 16 workers over 100 URLs.
//! The pool's ideal is 100 URLs over 7 rounds: never more than its 16 workers.
//! For comparison, the Python notes timed five downloads of a real site: about 4.1 s in a loop, 0.43 s with a thread each (more than 5x; the loop, run first, likely also paid for first-time set-up such as the DNS lookup).
//!
//! ✔ threads-overlap  a thread per URL took at most 1.5 x one latency: 5 downloads: 203 ms vs 1.5 x 200 ms = 300 ms
//! ✔ sequential-adds-up  one after the other took at least 0.9 x downloads x latency: 5 downloads: 1006 ms vs 0.9 x 5 x 200 ms = 900 ms
//! ✔ pool-rounds  the pool took ceil(URLs / workers) latencies, within 30%: 16 workers, 100 URLs: 1411 ms vs 7 x 200 ms = 1400 ms (1.01x)
//! ✔ same-bytes  every way received, for each URL, exactly the bytes the server sent: length and hash matched: sequential 5/5 URLs (81920 bytes), thread per URL 5/5 URLs (81920 bytes), fixed pool 100/100 URLs (1638400 bytes)
//!
//! elapsed 2.62 s
//! ```
//!
//! The milliseconds vary from run to run, by a few percent on an idle
//! machine and somewhat more on a busy one; the byte counts do not.
//!
//! See also: `cpu-bound` (work that computes instead of waiting: there,
//! threads only help with more cores), `semaphore` (capping how many
//! downloads run at once), `pool-map` (a pool that returns its results in
//! order).

use std::hash::{DefaultHasher, Hasher};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::Parser;
use common::cli::{CommonArgs, finish, parse};
use common::measure::time;
use common::{Claim, Report};
use ureq::Agent;

// What the lesson checks against the loopback server (skipped with --url).
const THREADS_OVERLAP: &str = "a thread per URL took at most 1.5 x one latency";
const SEQUENTIAL_ADDS_UP: &str = "one after the other took at least 0.9 x downloads x latency";
const POOL_ROUNDS: &str = "the pool took ceil(URLs / workers) latencies, within 30%";
const SAME_BYTES: &str = "every way received, for each URL, exactly the bytes the server sent";

/// Threads overlap their waiting: N downloads from a slow loopback server
/// take about one latency with a thread each, not N latencies.
#[derive(Parser, Debug)]
#[command(name = "io-bound", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Milliseconds the loopback server waits before it answers a request
    /// [default: 200, 100 with --quick].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    latency_ms: Option<u64>,

    /// Bytes in each answer's body (each item's body is different).
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024,
          value_parser = clap::value_parser!(u64).range(0..=1 << 20))]
    body_bytes: u64,

    /// URLs downloaded one after the other, then with a thread each.
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    downloads: u32,

    /// Threads in the fixed pool.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    workers: u32,

    /// URLs the fixed pool downloads [default: 100, 32 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pool_downloads: Option<u32>,

    /// Download this http:// URL instead of the loopback server (repeat the
    /// flag for several; no pool; each download gives up after 10 s).
    /// https:// URLs, and redirects to them, need `--features https`.
    #[arg(long = "url", value_name = "URL", value_parser = check_url)]
    urls: Vec<String>,
}

fn main() -> ExitCode {
    let args: Args = parse();
    let outcome = if args.urls.is_empty() { run_loopback(&args) } else { run_your_urls(&args) };
    finish(&args.common, outcome)
}

// ---------------------------------------------------------------------------
// The slow server: a stand-in for the web, with a latency the lesson knows.
// ---------------------------------------------------------------------------

/// An HTTP server on 127.0.0.1 that answers `/item/<i>` after `latency`.
/// Dropping it stops it: it joins the threads it started and closes its
/// port. (tiny_http's own connection threads are not joinable; once idle,
/// they end by themselves within 5 s, or with the program.)
struct SlowServer {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    dispatcher: Option<JoinHandle<()>>,
}

impl SlowServer {
    fn start(latency: Duration, body_bytes: usize) -> anyhow::Result<Self> {
        // Port 0 lets the OS pick a free port, so two runs never collide.
        let server = tiny_http::Server::http("127.0.0.1:0")
            .map_err(|err| anyhow!("starting the loopback server: {err}"))?;
        let addr = server.server_addr().to_ip().context("the loopback server has no IP address")?;
        let server = Arc::new(server);
        let requests = Arc::clone(&server);
        // tiny_http reads each connection on a thread of its own and queues
        // the requests for whoever calls `recv`. Answering them here, one by
        // one, would serve one request at a time: the downloads would queue
        // at the server and every strategy would look sequential. So each
        // request gets a thread that waits out the latency and answers; the
        // scope joins them all before this thread ends.
        let dispatcher = thread::Builder::new()
            .name("slow-server".into())
            .spawn(move || {
                thread::scope(|scope| {
                    // `recv` fails once `drop` calls `unblock`: the loop ends.
                    while let Ok(request) = requests.recv() {
                        scope.spawn(move || answer(request, latency, body_bytes));
                    }
                });
            })
            .context("starting the loopback server's thread")?;
        Ok(SlowServer { server, addr, dispatcher: Some(dispatcher) })
    }

    fn url(&self, item: usize) -> String {
        format!("http://{}/item/{item}", self.addr)
    }
}

impl Drop for SlowServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(dispatcher) = self.dispatcher.take() {
            // Each answer is a sleep and a write to a client that reads it
            // or has hung up (its timeout): this wait is bounded.
            let _ = dispatcher.join();
        }
        // The last `Arc` goes with `self`: tiny_http stops accepting and
        // closes the port.
    }
}

/// Waits `latency`, then answers `/item/<i>` with item i's body (any other
/// path with 404).
fn answer(request: tiny_http::Request, latency: Duration, body_bytes: usize) {
    thread::sleep(latency);
    let item = request.url().strip_prefix("/item/").and_then(|i| i.parse::<usize>().ok());
    // A write fails only if the client gave up and closed the connection;
    // then there is no one left to tell.
    let _ = match item {
        Some(item) => request.respond(tiny_http::Response::from_data(item_body(item, body_bytes))),
        None => request.respond(tiny_http::Response::empty(404)),
    };
}

/// The body of `/item/<item>`: the alphabet over and over, starting at a
/// different letter for each item, so that a mixed-up or truncated download
/// shows.
fn item_body(item: usize, len: usize) -> Vec<u8> {
    let mut letters = *b"abcdefghijklmnopqrstuvwxyz";
    letters.rotate_left(item % 26);
    let mut body = letters.repeat(len.div_ceil(26));
    body.truncate(len);
    body
}

// ---------------------------------------------------------------------------
// Downloading: one function, three ways to call it.
// ---------------------------------------------------------------------------

/// What a download received: the body's length and a hash of its bytes,
/// enough to compare two downloads byte for byte without keeping either.
/// The body streams into it through `io::copy`. (std's SipHash runs at
/// full speed even in a debug build, so checking costs the waiting little.)
#[derive(Debug, Clone, Default)]
struct Received {
    bytes: u64,
    hash: DefaultHasher,
}

impl Received {
    fn of(body: &[u8]) -> Self {
        let mut received = Received::default();
        received.hash.write(body);
        received.bytes = body.len() as u64;
        received
    }
}

impl PartialEq for Received {
    fn eq(&self, other: &Received) -> bool {
        self.bytes == other.bytes && self.hash.finish() == other.hash.finish()
    }
}

impl Write for Received {
    fn write(&mut self, chunk: &[u8]) -> io::Result<usize> {
        self.bytes += chunk.len() as u64;
        self.hash.write(chunk);
        Ok(chunk.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One download: what arrived and how long it took, or why it failed.
type Outcome = Result<(Received, Duration), String>;

/// An agent whose every download gives up after `timeout`. ureq sets no
/// timeout of its own: a server that accepts the connection and never
/// answers would hold the thread, and so the whole lesson, forever.
fn agent_with_timeout(timeout: Duration) -> Agent {
    Agent::config_builder().timeout_global(Some(timeout)).build().new_agent()
}

/// Downloads `url` to the end. A refused connection, an unknown host, a 4xx
/// or 5xx status and a timeout all come back as the error's text.
///
/// Each request asks the server to close the connection after answering.
/// tiny_http writes an answer's head and body in separate writes; on a
/// connection kept open, the kernel holds the body back (Nagle's algorithm)
/// until the client acknowledges the head, which Linux delays by 40 ms: a
/// stall per download that has nothing to do with threads. Closing the
/// connection sends the body at once, for the price of a new connection per
/// download (a fraction of a millisecond on loopback).
fn download(agent: &Agent, url: &str) -> Outcome {
    let started = Instant::now();
    let response = agent.get(url).header("Connection", "close").call().map_err(|err| err.to_string())?;
    let mut received = Received::default();
    io::copy(&mut response.into_body().into_reader(), &mut received).map_err(|err| err.to_string())?;
    Ok((received, started.elapsed()))
}

/// One after the other: each download starts when the one before it has
/// ended, so the waits add up to about N x latency.
fn one_after_another(agent: &Agent, urls: &[String]) -> Vec<Outcome> {
    urls.iter().map(|url| download(agent, url)).collect()
}

/// A thread per URL: all N requests are out at once and wait together, so
/// the whole takes about one latency. A waiting thread uses no CPU: it sits
/// in the kernel until its socket has data, which is why this works on one
/// core as well as on many, and why Python threads gain as much, GIL or not.
/// Scoped threads may borrow `agent` and `urls`: the scope joins them all
/// before it returns.
fn thread_per_url(agent: &Agent, urls: &[String]) -> Vec<Outcome> {
    thread::scope(|scope| {
        let downloads: Vec<_> = urls.iter().map(|url| scope.spawn(move || download(agent, url))).collect();
        downloads.into_iter().map(|thread| thread.join().expect("a download does not panic")).collect()
    })
}

/// A fixed pool: W threads take URLs from one channel until it is empty.
/// At most W requests wait at once, so M URLs need ceil(M/W) rounds of one
/// latency each: the pool is at most W times faster than one thread, however
/// many URLs there are. That is the price of capping the threads, and
/// what a pool is for: a thousand URLs need not mean a thousand threads.
fn fixed_pool(agent: &Agent, urls: &[String], workers: usize) -> Vec<Outcome> {
    // Every URL goes in before any worker starts, and dropping the sender
    // closes the channel: a worker's loop ends when the channel is empty.
    let (todo, to_take) = crossbeam_channel::unbounded();
    for job in urls.iter().enumerate() {
        todo.send(job).expect("the receiver is alive");
    }
    drop(todo);
    let mut outcomes: Vec<Option<Outcome>> = vec![None; urls.len()];
    thread::scope(|scope| {
        // No more workers than URLs: the others would find nothing to take.
        let pool: Vec<_> = (0..workers.min(urls.len()))
            .map(|_| {
                let to_take = to_take.clone();
                scope.spawn(move || {
                    to_take.iter().map(|(i, url)| (i, download(agent, url))).collect::<Vec<_>>()
                })
            })
            .collect();
        for worker in pool {
            for (i, outcome) in worker.join().expect("a download does not panic") {
                outcomes[i] = Some(outcome);
            }
        }
    });
    outcomes.into_iter().map(|outcome| outcome.expect("every URL was taken by a worker")).collect()
}

// ---------------------------------------------------------------------------
// The lesson: time each way against the slow server, and check the claims.
// ---------------------------------------------------------------------------

/// How much longer than the latency a download may take before it gives up:
/// room for a busy machine, while a download that is stuck fails instead
/// of hanging the lesson.
const TIMEOUT_MARGIN: Duration = Duration::from_secs(5);

fn run_loopback(args: &Args) -> anyhow::Result<Report> {
    let latency_ms = args.latency_ms.unwrap_or(args.common.pick(200, 100));
    let latency = Duration::from_millis(latency_ms);
    let body_bytes = args.body_bytes as usize;
    let (downloads, workers) = (args.downloads as usize, args.workers as usize);
    // At --quick sizes two rounds of the pool: long enough to show the
    // rounds, short enough to finish in about a second.
    let pool_downloads = args.pool_downloads.unwrap_or(args.common.pick(100, 32)) as usize;

    let mut report = common::lesson_report!();
    report
        .param("latency_ms", latency_ms)
        .param("body_bytes", body_bytes)
        .param("downloads", downloads)
        .param("workers", workers)
        .param("pool_downloads", pool_downloads);

    let server = SlowServer::start(latency, body_bytes)?;
    let urls: Vec<String> = (0..downloads.max(pool_downloads)).map(|item| server.url(item)).collect();
    let agent = agent_with_timeout(latency + TIMEOUT_MARGIN);
    let (sequential, sequential_time) = time(|| one_after_another(&agent, &urls[..downloads]));
    let (threaded, threaded_time) = time(|| thread_per_url(&agent, &urls[..downloads]));
    let (pooled, pooled_time) = time(|| fixed_pool(&agent, &urls[..pool_downloads], workers));
    // Closing the agent's idle connections first lets tiny_http's connection
    // threads finish; then the server stops.
    drop(agent);
    drop(server);

    let rounds = pool_downloads.div_ceil(workers);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let l = latency_ms as f64;
    let runs = [
        ("sequential", &sequential, sequential_time, 1, downloads as f64 * l),
        ("thread per URL", &threaded, threaded_time, downloads, l),
        ("fixed pool", &pooled, pooled_time, workers.min(pool_downloads), rounds as f64 * l),
    ];
    let mut matched = Vec::new();
    for (name, outcomes, took, threads, expected_ms) in runs {
        let total: u64 = outcomes.iter().flatten().map(|(received, _)| received.bytes).sum();
        report.figure(name, "downloads", outcomes.len(), "URLs");
        report.figure(name, "threads", threads, "threads");
        report.figure(name, "time", ms(took), "ms");
        report.figure(name, "expected", expected_ms, "ms");
        report.figure(name, "time/expected", ms(took) / expected_ms, "x");
        report.figure(name, "bytes", total, "bytes");
        report.figure(name, "failures", failures(outcomes), "URLs");
        note_failures(&mut report, name, &urls, outcomes);
        matched.push((name, exact_bodies(outcomes, body_bytes), outcomes.len(), total));
    }

    // The speedup over one download at a time, and the most it could be.
    report.table("speedup over one download at a time");
    let per_download = sequential_time.as_secs_f64() / downloads as f64;
    report
        .figure("thread per URL", "speedup", sequential_time.as_secs_f64() / threaded_time.as_secs_f64(), "x")
        .key();
    report.figure("thread per URL", "ideal", downloads as f64, "x");
    report.figure(
        "fixed pool",
        "speedup",
        per_download * pool_downloads as f64 / pooled_time.as_secs_f64(),
        "x",
    );
    report.figure("fixed pool", "ideal", pool_downloads as f64 / rounds as f64, "x");
    report.note(format!(
        "expected: {downloads} latencies one after the other; one latency with a thread per URL; \
         {rounds} rounds of one latency for {workers} workers over {pool_downloads} URLs."
    ));
    report.note(format!(
        "The pool's ideal is {pool_downloads} URLs over {rounds} rounds: never more than its {workers} workers."
    ));
    report.note(
        "For comparison, the Python notes timed five downloads of a real site: about 4.1 s in a loop, \
         0.43 s with a thread each (more than 5x; the loop, run first, likely also paid for first-time \
         set-up such as the DNS lookup).",
    );

    let (threaded_ms, sequential_ms, pooled_ms) = (ms(threaded_time), ms(sequential_time), ms(pooled_time));
    report.claim(Claim::check(
        "threads-overlap",
        THREADS_OVERLAP,
        threaded_ms <= 1.5 * l,
        format!("{downloads} downloads: {threaded_ms:.0} ms vs 1.5 x {latency_ms} ms = {:.0} ms", 1.5 * l),
    ));
    report.claim(Claim::check(
        "sequential-adds-up",
        SEQUENTIAL_ADDS_UP,
        sequential_ms >= 0.9 * downloads as f64 * l,
        format!(
            "{downloads} downloads: {sequential_ms:.0} ms vs 0.9 x {downloads} x {latency_ms} ms = {:.0} ms",
            0.9 * downloads as f64 * l
        ),
    ));
    let pool_ratio = pooled_ms / (rounds as f64 * l);
    report.claim(Claim::check(
        "pool-rounds",
        POOL_ROUNDS,
        (0.7..=1.3).contains(&pool_ratio),
        format!(
            "{workers} workers, {pool_downloads} URLs: {pooled_ms:.0} ms vs {rounds} x {latency_ms} ms = {:.0} ms \
             ({pool_ratio:.2}x)",
            rounds as f64 * l
        ),
    ));
    let evidence: Vec<String> = matched
        .iter()
        .map(|(name, exact, of, total)| format!("{name} {exact}/{of} URLs ({total} bytes)"))
        .collect();
    report.claim(Claim::check(
        "same-bytes",
        SAME_BYTES,
        matched.iter().all(|(_, exact, of, _)| exact == of),
        format!("length and hash matched: {}", evidence.join(", ")),
    ));
    Ok(report)
}

// ---------------------------------------------------------------------------
// Your URLs: the same two ways, against sites whose latency nobody knows.
// ---------------------------------------------------------------------------

/// How long one download of a real site may take before it gives up.
const URL_TIMEOUT: Duration = Duration::from_secs(10);

fn run_your_urls(args: &Args) -> anyhow::Result<Report> {
    let urls = &args.urls;
    let mut report = common::lesson_report!();
    report.param("urls", urls.len()).param("timeout_s", URL_TIMEOUT.as_secs());

    // The pool is left out: it would send your sites the same requests
    // many times over, and two ways of downloading make the point.
    let agent = agent_with_timeout(URL_TIMEOUT);
    let (sequential, sequential_time) = time(|| one_after_another(&agent, urls));
    let (threaded, threaded_time) = time(|| thread_per_url(&agent, urls));
    drop(agent);

    for (name, outcomes, took, threads) in [
        ("sequential", &sequential, sequential_time, 1),
        ("thread per URL", &threaded, threaded_time, urls.len()),
    ] {
        report.figure(name, "downloads", urls.len(), "URLs");
        report.figure(name, "threads", threads, "threads");
        report.figure(name, "time", took.as_secs_f64() * 1e3, "ms");
        report.figure(name, "failures", failures(outcomes), "URLs");
    }
    report.table("each URL");
    for (url, (one, other)) in urls.iter().zip(sequential.iter().zip(&threaded)) {
        for (name, outcome) in [("sequential", one), ("thread per URL", other)] {
            if let Ok((received, took)) = outcome {
                report.figure(url.as_str(), name, took.as_secs_f64() * 1e3, "ms");
                report.figure(url.as_str(), "bytes", received.bytes, "bytes");
            }
        }
        report.figure(
            url.as_str(),
            "failures",
            usize::from(one.is_err()) + usize::from(other.is_err()),
            "of 2",
        );
    }
    note_failures(&mut report, "sequential", urls, &sequential);
    note_failures(&mut report, "thread per URL", urls, &threaded);

    let unknown = "needs the loopback server's known latency; your URLs answer in their own time";
    for (id, statement, why) in [
        ("threads-overlap", THREADS_OVERLAP, unknown),
        ("sequential-adds-up", SEQUENTIAL_ADDS_UP, unknown),
        ("pool-rounds", POOL_ROUNDS, "the pool runs only against the loopback server"),
        ("same-bytes", SAME_BYTES, "a real site may send different bytes each time"),
    ] {
        report.claim(Claim::skipped(id, statement, why));
    }
    // What can be checked: with two or more URLs answering, waiting for them
    // together beats waiting for them in turn.
    let answered =
        sequential.iter().zip(&threaded).filter(|(one, other)| one.is_ok() && other.is_ok()).count();
    let statement = "a thread per URL finished sooner than one after the other";
    report.claim(if answered >= 2 {
        Claim::check(
            "threads-sooner",
            statement,
            threaded_time < sequential_time,
            format!(
                "{answered} URLs answered both times: {:.0} ms vs {:.0} ms",
                threaded_time.as_secs_f64() * 1e3,
                sequential_time.as_secs_f64() * 1e3
            ),
        )
    } else {
        Claim::skipped(
            "threads-sooner",
            statement,
            format!("{answered} URL(s) answered both times; it takes 2"),
        )
    });
    Ok(report)
}

/// How many of the downloads of `/item/0`, `/item/1`, ... received exactly
/// the body the server sends for that item.
fn exact_bodies(outcomes: &[Outcome], body_bytes: usize) -> usize {
    let exact = |item: usize, outcome: &Outcome| {
        outcome.as_ref().is_ok_and(|(received, _)| *received == Received::of(&item_body(item, body_bytes)))
    };
    outcomes.iter().enumerate().filter(|&(item, outcome)| exact(item, outcome)).count()
}

/// How many downloads failed.
fn failures(outcomes: &[Outcome]) -> usize {
    outcomes.iter().filter(|outcome| outcome.is_err()).count()
}

/// One note per failed download, naming the URL and the error (the first
/// ten of each way, then how many more).
fn note_failures(report: &mut Report, way: &str, urls: &[String], outcomes: &[Outcome]) {
    let failed: Vec<_> =
        urls.iter().zip(outcomes).filter_map(|(url, o)| o.as_ref().err().map(|e| (url, e))).collect();
    for (url, error) in failed.iter().take(10) {
        report.note(format!("failed ({way}): {url}: {error}"));
    }
    if failed.len() > 10 {
        report.note(format!("failed ({way}): {} more", failed.len() - 10));
    }
}

/// Accepts an absolute http:// (or, with TLS built in, https://) URL with a
/// host; anything else is bad usage.
fn check_url(text: &str) -> Result<String, String> {
    let uri: ureq::http::Uri = text.parse().map_err(|err| format!("not a URL ({err})"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") if cfg!(feature = "https") => {}
        Some("https") => {
            return Err("https needs TLS, which this build leaves out: add --features https".into());
        }
        _ => return Err("only http:// and https:// URLs can be downloaded".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the URL names no host".into());
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_bodies_differ_and_stream_in_chunks_to_the_same_fingerprint() {
        assert_eq!(item_body(1, 28), b"bcdefghijklmnopqrstuvwxyzabc");
        let body = item_body(3, 1000);
        let mut streamed = Received::default();
        for chunk in body.chunks(7) {
            streamed.write_all(chunk).unwrap();
        }
        assert_eq!(streamed, Received::of(&body));
        assert_ne!(Received::of(&item_body(4, 1000)), Received::of(&body));
        assert_ne!(Received::of(&body[..999]), Received::of(&body));
    }
}
