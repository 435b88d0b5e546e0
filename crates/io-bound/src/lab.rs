//! The experiment around the lesson: a slow HTTP server on 127.0.0.1 with
//! a latency the lab knows (or the reader's own `--url`s), each way timed,
//! every body checked byte for byte, and the claims.

use std::hash::{DefaultHasher, Hasher};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Parser;
use common::cli::CommonArgs;
use common::measure::time;
use common::{Claim, Report};
use ureq::Agent;

use crate::{agent_with_timeout, download, fixed_pool, one_after_another, thread_per_url};

// What the lesson checks against the loopback server (skipped with --url).
const THREADS_OVERLAP: &str = "a thread per URL took at most 1.5 x one latency";
const SEQUENTIAL_ADDS_UP: &str = "one after the other took at least 0.9 x downloads x latency";
const POOL_ROUNDS: &str = "the pool took ceil(URLs / workers) latencies, within 30%";
const SAME_BYTES: &str = "every way received, for each URL, exactly the bytes the server sent";

#[derive(Parser, Debug)]
#[command(name = "io-bound", version, about)]
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

pub fn main() -> ExitCode {
    let args: Args = common::cli::parse();
    let change = "--latency-ms, --downloads, --pool-downloads or --workers";
    let checked = args.common.check_run_time(run_time(&args), change);
    // No clean-up to install: the lab starts no child process and writes no file.
    common::cli::finish(&args.common, checked.and_then(|()| run(&args)))
}

/// How long these flags make the run against the loopback server, worked
/// out before anything starts: one latency per download one after the
/// other, one for a thread per URL, one per round of the pool. (With
/// `--url`, at most 10 s per URL, twice.)
fn run_time(args: &Args) -> Duration {
    if !args.urls.is_empty() {
        return URL_TIMEOUT * 2 * args.urls.len() as u32;
    }
    let latency = Duration::from_millis(args.latency_ms.unwrap_or(args.common.pick(200, 100)));
    let pool = args.pool_downloads.unwrap_or(args.common.pick(100, 32)).div_ceil(args.workers);
    latency * (args.downloads + 1 + pool)
}

/// The loopback experiment, or, with `--url`, the reader's own URLs.
fn run(args: &Args) -> anyhow::Result<Report> {
    if args.urls.is_empty() { run_loopback(args) } else { run_your_urls(args) }
}

// ---------------------------------------------------------------------------
// The slow server: a stand-in for the web, with a latency the lab knows.
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
// Each download, received and timed: the hook the lab passes to the lesson.
// ---------------------------------------------------------------------------

/// What a download received: the body's length and a hash of its bytes,
/// enough to compare two downloads byte for byte without keeping either.
/// The body streams into it through `download`. (std's SipHash runs at
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

/// The lab's `fetch`: downloads `url` into a `Received` and times it. The
/// error's text is ureq's own wording ("http status: 404", "io: Connection
/// refused"): `download` hands it over as an `io::Error`, and ureq turns it
/// back.
fn timed_download(agent: &Agent, url: &str) -> Outcome {
    let mut received = Received::default();
    let (copied, took) = time(|| download(agent, url, &mut received));
    match copied {
        Ok(_) => Ok((received, took)),
        Err(err) => Err(ureq::Error::from(err).to_string()),
    }
}

// ---------------------------------------------------------------------------
// The lesson against the slow server: each way timed, and the claims.
// ---------------------------------------------------------------------------

/// How much longer than the latency a download may take before it gives up:
/// room for a busy machine, while a download that is stuck fails instead
/// of hanging the lesson.
const TIMEOUT_MARGIN: Duration = Duration::from_secs(5);

/// What one way of downloading did against the slow server.
struct Way<'a> {
    name: &'a str,
    outcomes: Vec<Outcome>,
    took: Duration,
    threads: usize,
    expected_ms: f64,
}

impl<'a> Way<'a> {
    fn new(
        name: &'a str,
        (outcomes, took): (Vec<Outcome>, Duration),
        threads: usize,
        expected_ms: f64,
    ) -> Self {
        Way { name, outcomes, took, threads, expected_ms }
    }
}

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

    check_descriptors(downloads.max(workers.min(pool_downloads)))?;
    let server = SlowServer::start(latency, body_bytes)?;
    let urls: Vec<String> = (0..downloads.max(pool_downloads)).map(|item| server.url(item)).collect();
    let agent = agent_with_timeout(latency + TIMEOUT_MARGIN);
    let fetch = |url: &str| timed_download(&agent, url);
    let sequential = time(|| one_after_another(&urls[..downloads], fetch));
    let threaded = time(|| thread_per_url(&urls[..downloads], fetch));
    let pooled = time(|| fixed_pool(&urls[..pool_downloads], workers, fetch));
    // Closing the agent's idle connections first lets tiny_http's connection
    // threads finish; then the server stops.
    drop(agent);
    drop(server);

    let rounds = pool_downloads.div_ceil(workers);
    let l = latency_ms as f64;
    let ways = [
        Way::new("sequential", sequential, 1, downloads as f64 * l),
        Way::new("thread per URL", threaded, downloads, l),
        Way::new("fixed pool", pooled, workers.min(pool_downloads), rounds as f64 * l),
    ];
    for way in &ways {
        way_figures(&mut report, way, &urls);
    }
    speedup_figures(&mut report, &ways, workers, rounds);
    report.claim(threads_overlap(&ways[1], latency_ms));
    report.claim(sequential_adds_up(&ways[0], latency_ms));
    report.claim(pool_rounds(&ways[2], workers, rounds, latency_ms));
    report.claim(same_bytes(&ways, body_bytes));
    Ok(report)
}

/// Makes sure this process may open a connection's two ends (the client's
/// socket and the server's) for `connections` downloads at once, plus some
/// to spare: raises its soft limit on open files up to the hard one if that
/// helps, or refuses the flags (exit 2). Without this, a thread per URL
/// beyond `ulimit -n` fails its downloads, and the failures say nothing
/// about threads.
fn check_descriptors(connections: usize) -> anyhow::Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let needed = 2 * connections as u64 + 64;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("reading the open-file limit")?;
    if needed <= soft {
        return Ok(());
    }
    if needed <= hard {
        return setrlimit(Resource::RLIMIT_NOFILE, hard, hard).context("raising the open-file limit");
    }
    Err(common::cli::usage_error(format!(
        "{connections} downloads at once need about {needed} open files and this process may have {hard} \
         (ulimit -n); give fewer --downloads or --workers"
    )))
}

/// Milliseconds, for the figures.
fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// One way's row of the first table, and a note per failed download.
fn way_figures(report: &mut Report, way: &Way, urls: &[String]) {
    let name = way.name;
    report.figure(name, "URLs", way.outcomes.len(), "URLs");
    report.figure(name, "threads", way.threads, "threads");
    report.figure(name, "time", ms(way.took), "ms");
    report.figure(name, "expected", way.expected_ms, "ms");
    report.figure(name, "time/expected", ms(way.took) / way.expected_ms, "x");
    report.figure(name, "bytes", total_bytes(&way.outcomes), "bytes");
    report.figure(name, "failed", failures(&way.outcomes), "URLs");
    note_failures(report, name, urls, &way.outcomes);
}

/// The speedup over one download at a time, and the most it could be.
fn speedup_figures(report: &mut Report, ways: &[Way; 3], workers: usize, rounds: usize) {
    let [sequential, threaded, pooled] = ways;
    let (downloads, pool_downloads) = (sequential.outcomes.len(), pooled.outcomes.len());
    report.table("speedup over one download at a time");
    let per_download = sequential.took.as_secs_f64() / downloads as f64;
    report
        .figure("thread per URL", "speedup", sequential.took.as_secs_f64() / threaded.took.as_secs_f64(), "x")
        .key();
    report.figure("thread per URL", "ideal", downloads as f64, "x");
    report.figure(
        "fixed pool",
        "speedup",
        per_download * pool_downloads as f64 / pooled.took.as_secs_f64(),
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
}

/// `Ok(())` if every download of `way` arrived; otherwise why its time says
/// nothing about waiting for them (a failed download takes no latency).
fn all_arrived(way: &Way) -> Result<(), String> {
    let Some(first) = way.outcomes.iter().find_map(|outcome| outcome.as_ref().err()) else {
        return Ok(());
    };
    Err(format!(
        "{} of {} downloads failed ({first}), so the time is not that of the downloads",
        failures(&way.outcomes),
        way.outcomes.len()
    ))
}

fn threads_overlap(threaded: &Way, latency_ms: u64) -> Claim {
    let (took, l, downloads) = (ms(threaded.took), latency_ms as f64, threaded.outcomes.len());
    Claim::check_given(
        "threads-overlap",
        THREADS_OVERLAP,
        all_arrived(threaded),
        took <= 1.5 * l,
        format!("{downloads} downloads: {took:.0} ms vs 1.5 x {latency_ms} ms = {:.0} ms", 1.5 * l),
    )
}

fn sequential_adds_up(sequential: &Way, latency_ms: u64) -> Claim {
    let (took, l, downloads) = (ms(sequential.took), latency_ms as f64, sequential.outcomes.len());
    Claim::check_given(
        "sequential-adds-up",
        SEQUENTIAL_ADDS_UP,
        all_arrived(sequential),
        took >= 0.9 * downloads as f64 * l,
        format!(
            "{downloads} downloads: {took:.0} ms vs 0.9 x {downloads} x {latency_ms} ms = {:.0} ms",
            0.9 * downloads as f64 * l
        ),
    )
}

fn pool_rounds(pooled: &Way, workers: usize, rounds: usize, latency_ms: u64) -> Claim {
    let (took, l, pool_downloads) = (ms(pooled.took), latency_ms as f64, pooled.outcomes.len());
    let ratio = took / (rounds as f64 * l);
    Claim::check_given(
        "pool-rounds",
        POOL_ROUNDS,
        all_arrived(pooled),
        (0.7..=1.3).contains(&ratio),
        format!(
            "{workers} workers, {pool_downloads} URLs: {took:.0} ms vs {rounds} x {latency_ms} ms = {:.0} ms \
             ({ratio:.2}x)",
            rounds as f64 * l
        ),
    )
}

/// Every download that arrived must match its body byte for byte; a failed
/// download (refused, timed out) leaves the claim undecided, not false.
fn same_bytes(ways: &[Way], body_bytes: usize) -> Claim {
    let matched: Vec<(&str, usize, usize, usize, u64)> = ways
        .iter()
        .map(|way| {
            let outcomes = &way.outcomes;
            let exact = exact_bodies(outcomes, body_bytes);
            (way.name, exact, failures(outcomes), outcomes.len(), total_bytes(outcomes))
        })
        .collect();
    let evidence: Vec<String> = matched
        .iter()
        .map(|(name, exact, _, of, total)| format!("{name} {exact}/{of} URLs ({total} bytes)"))
        .collect();
    let wrong = matched.iter().any(|(_, exact, failed, of, _)| exact + failed < *of);
    let failed: usize = matched.iter().map(|(_, _, failed, _, _)| failed).sum();
    let met = if failed > 0 && !wrong {
        Err(format!("{failed} downloads failed, so their bytes could not be compared"))
    } else {
        Ok(())
    };
    Claim::check_given(
        "same-bytes",
        SAME_BYTES,
        met,
        !wrong && failed == 0,
        format!("length and hash matched: {}", evidence.join(", ")),
    )
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
    let fetch = |url: &str| timed_download(&agent, url);
    let (sequential, sequential_time) = time(|| one_after_another(urls, fetch));
    let (threaded, threaded_time) = time(|| thread_per_url(urls, fetch));
    drop(agent);

    for (name, outcomes, took, threads) in [
        ("sequential", &sequential, sequential_time, 1),
        ("thread per URL", &threaded, threaded_time, urls.len()),
    ] {
        report.figure(name, "URLs", urls.len(), "URLs");
        report.figure(name, "threads", threads, "threads");
        report.figure(name, "time", ms(took), "ms");
        report.figure(name, "failed", failures(outcomes), "URLs");
    }
    url_figures(&mut report, urls, &sequential, &threaded);
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
    report.claim(threads_sooner(&sequential, sequential_time, &threaded, threaded_time));
    Ok(report)
}

/// The table of each URL: its time and bytes each way, and its failures.
fn url_figures(report: &mut Report, urls: &[String], sequential: &[Outcome], threaded: &[Outcome]) {
    report.table("each URL");
    for (url, (one, other)) in urls.iter().zip(sequential.iter().zip(threaded)) {
        for (name, outcome) in [("sequential", one), ("thread per URL", other)] {
            if let Ok((received, took)) = outcome {
                report.figure(url.as_str(), name, ms(*took), "ms");
                report.figure(url.as_str(), "bytes", received.bytes, "bytes");
            }
        }
        report.figure(
            url.as_str(),
            "failed",
            usize::from(one.is_err()) + usize::from(other.is_err()),
            "of 2",
        );
    }
}

/// What can be checked with your URLs: with two or more of them answering,
/// waiting for them together beats waiting for them in turn.
fn threads_sooner(
    sequential: &[Outcome],
    sequential_time: Duration,
    threaded: &[Outcome],
    threaded_time: Duration,
) -> Claim {
    let answered =
        sequential.iter().zip(threaded).filter(|(one, other)| one.is_ok() && other.is_ok()).count();
    let statement = "a thread per URL finished sooner than one after the other";
    if answered >= 2 {
        Claim::check(
            "threads-sooner",
            statement,
            threaded_time < sequential_time,
            format!(
                "{answered} URLs answered both times: {:.0} ms vs {:.0} ms",
                ms(threaded_time),
                ms(sequential_time)
            ),
        )
    } else {
        Claim::skipped(
            "threads-sooner",
            statement,
            format!("{answered} URL(s) answered both times; it takes 2"),
        )
    }
}

/// The bytes every download of a way received.
fn total_bytes(outcomes: &[Outcome]) -> u64 {
    outcomes.iter().flatten().map(|(received, _)| received.bytes).sum()
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
    use common::report::Verdict;

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

    /// Three downloads of a server with a 40 ms latency, each way, timed.
    fn three_ways(workers_in_pool: usize) -> (Way<'static>, Way<'static>, Way<'static>) {
        let latency = Duration::from_millis(40);
        let server = SlowServer::start(latency, 100).unwrap();
        let urls: Vec<String> = (0..3).map(|item| server.url(item)).collect();
        let agent = agent_with_timeout(latency + TIMEOUT_MARGIN);
        let fetch = |url: &str| timed_download(&agent, url);
        let sequential = Way::new("sequential", time(|| one_after_another(&urls, fetch)), 1, 120.0);
        let threaded = Way::new("thread per URL", time(|| thread_per_url(&urls, fetch)), 3, 40.0);
        let pooled = Way::new("fixed pool", time(|| fixed_pool(&urls, workers_in_pool, fetch)), 1, 40.0);
        (sequential, threaded, pooled)
    }

    #[test]
    fn each_timing_claim_fails_when_its_way_is_swapped_for_another() {
        // One worker in the pool: three rounds where three workers take one.
        let (sequential, threaded, one_worker) = three_ways(1);
        // The phenomenon removed: downloads one after the other do not
        // overlap, threads do not add up, one worker is not three.
        assert_eq!(threads_overlap(&sequential, 40).verdict, Verdict::DoesNotHold);
        assert_eq!(sequential_adds_up(&threaded, 40).verdict, Verdict::DoesNotHold);
        assert_eq!(pool_rounds(&one_worker, 3, 1, 40).verdict, Verdict::DoesNotHold);
        // And the bytes were right, but not for a server sending 101 each.
        let ways = [sequential, threaded, one_worker];
        assert_eq!(same_bytes(&ways, 100).verdict, Verdict::Holds);
        assert_eq!(same_bytes(&ways, 101).verdict, Verdict::DoesNotHold);
    }

    #[test]
    fn runs_of_hours_are_refused_and_the_default_is_not() {
        let parse = |args: &[&str]| Args::try_parse_from([&["io-bound"], args].concat()).unwrap();
        assert!(run_time(&parse(&[])) < Duration::from_secs(10));
        let most = parse(&["--latency-ms", "10000", "--downloads", "1024"]);
        let refused = most.common.check_run_time(run_time(&most), "--downloads").unwrap_err();
        assert!(refused.to_string().contains("hours"), "{refused}");
    }

    #[test]
    fn failed_downloads_leave_the_claims_undecided() {
        let arrived: Outcome = Ok((Received::of(&item_body(0, 100)), Duration::from_millis(40)));
        let refused: Outcome = Err("io: Connection refused".into());
        let way = Way::new("thread per URL", (vec![arrived, refused], Duration::from_millis(41)), 2, 40.0);
        assert_eq!(threads_overlap(&way, 40).verdict, Verdict::Inconclusive);
        assert_eq!(same_bytes(std::slice::from_ref(&way), 100).verdict, Verdict::Inconclusive);
    }
}

/// The `main` that `cargo xtask eject` gives the standalone crate, compiled
/// and run with the lab's tests.
#[cfg(test)]
mod standalone {
    use crate::*;
    include!("standalone.rs");

    #[test]
    fn standalone_main_holds_its_rule() {
        main()
    }
}
