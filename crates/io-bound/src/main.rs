//! Threads overlap their waiting: N downloads from a server that takes L to
//! answer take about L with a thread each, not N x L.
//!
//! The lesson downloads N URLs with ureq three ways, below in that order:
//! one after the other (the waits add up), with a thread per URL (the waits
//! overlap), and with a fixed pool of W threads over a channel of M URLs
//! (the waits overlap W at a time, so the pool needs ceil(M/W) rounds). Its
//! lab (src/lab.rs) starts an HTTP server on 127.0.0.1 that waits a fixed
//! latency before it answers each request, as a distant web site would, and
//! serves every request on a thread of its own; it times each way, checks
//! every body byte for byte, and compares the times with what the latency
//! predicts. This mirrors the Python notes that download a web site five
//! times, first in a loop, then with a thread per download, and find the
//! threads about ten times faster: threads help with work that waits, even
//! in CPython, whose lock on the interpreter (the GIL) is let go while a
//! thread waits on a socket. `--url` downloads your own URLs instead, one
//! after the other and then with a thread each.
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
//! io-bound: threads overlap their waiting: N downloads take about one latency, not
//!   N
//! host    2 cores AMD EPYC, 23.5 GiB, linux 6.18.44, vm in docker, release
//! params  latency_ms=200 body_bytes=16384 downloads=5 workers=16
//!         pool_downloads=100
//!
//! experiment      downloads  threads  time  expected  time/expected    bytes  failures
//!                      URLs  threads    ms        ms              x    bytes      URLs
//! sequential              5        1  1005      1000           1.00    81920         0
//! thread per URL          5        5   202       200           1.01    81920         0
//! fixed pool            100       16  1410      1400           1.01  1638400         0
//!
//! speedup over one download at a time
//! experiment      speedup  ideal
//!                       x      x
//! thread per URL     4.96   5.00
//! fixed pool         14.2   14.3
//!
//! expected: 5 latencies one after the other; one latency with a thread per URL; 7
//!   rounds of one latency for 16 workers over 100 URLs.
//! The pool's ideal is 100 URLs over 7 rounds: never more than its 16 workers.
//! For comparison, the Python notes timed five downloads of a real site: about 4.1
//!   s in a loop, 0.43 s with a thread each (more than 5x; the loop, run first,
//!   likely also paid for first-time set-up such as the DNS lookup).
//!
//! ✔ threads-overlap  a thread per URL took at most 1.5 x one latency: 5 downloads:
//!   202 ms vs 1.5 x 200 ms = 300 ms
//! ✔ sequential-adds-up  one after the other took at least 0.9 x downloads x
//!   latency: 5 downloads: 1005 ms vs 0.9 x 5 x 200 ms = 900 ms
//! ✔ pool-rounds  the pool took ceil(URLs / workers) latencies, within 30%: 16
//!   workers, 100 URLs: 1410 ms vs 7 x 200 ms = 1400 ms (1.01x)
//! ✔ same-bytes  every way received, for each URL, exactly the bytes the server
//!   sent: length and hash matched: sequential 5/5 URLs (81920 bytes), thread per
//!   URL 5/5 URLs (81920 bytes), fixed pool 100/100 URLs (1638400 bytes)
//!
//! elapsed 2.62 s
//! ```
//!
//! The milliseconds vary from run to run, by a few percent on an idle
//! machine and somewhat more on a busy one; the byte counts do not.
//!
//! See also: `cpu-bound` (work that computes instead of waiting: there,
//! threads only help with more cores), `daemon-workers` (a queue of work
//! with workers that take from it until it is closed).

use std::io::{self, Write};
use std::thread;
use std::time::Duration;

use ureq::Agent;

/// An agent whose every download gives up after `timeout`. ureq sets no
/// timeout of its own: a server that accepts the connection and never
/// answers would hold the thread that waits for it forever, and a program
/// that joins its threads would hang with it. One agent serves every thread
/// (it is `Sync`, and keeps its connections in a pool of its own), so the
/// timeout is set once.
fn agent_with_timeout(timeout: Duration) -> Agent {
    Agent::config_builder().timeout_global(Some(timeout)).build().new_agent()
}

/// Downloads `url` to the end, streaming the body into `body` (a file, a
/// hasher, a `Vec`), so that a large download is never held whole, and
/// returns its length. A refused connection, an unknown host, a 4xx or 5xx
/// status and a timeout all come back as the error.
///
/// Each request asks the server to close the connection after answering.
/// tiny_http, the server the lesson downloads from, writes an answer's head
/// and body in separate writes; on a connection kept open, the kernel holds
/// the body back (Nagle's algorithm) until the client acknowledges the head,
/// which Linux delays by 40 ms: a stall per download that has nothing to do
/// with threads. Closing the connection sends the body at once, for the
/// price of a new connection per download (a fraction of a millisecond on
/// loopback).
fn download(agent: &Agent, url: &str, body: &mut impl Write) -> io::Result<u64> {
    let response = agent.get(url).header("Connection", "close").call().map_err(ureq::Error::into_io)?;
    io::copy(&mut response.into_body().into_reader(), body)
}

// Three ways to download many URLs. Each takes the URLs and `fetch`, what to
// do with one URL (download it, say), and returns what `fetch` returned for
// each URL, in the order of the URLs. They differ only in how many requests
// are out at once: one, all of them, or at most a pool's worth.

/// One after the other: each download starts when the one before it has
/// ended, so the waits add up to about N x latency.
fn one_after_another<T>(urls: &[String], fetch: impl Fn(&str) -> T) -> Vec<T> {
    urls.iter().map(|url| fetch(url)).collect()
}

/// A thread per URL: all N requests are out at once and wait together, so
/// the whole takes about one latency. A waiting thread uses no CPU: it sits
/// in the kernel until its socket has data, which is why this works on one
/// core as well as on many, and why Python threads gain as much, GIL or not
/// (CPython lets go of the GIL while a thread waits on a socket).
fn thread_per_url<T: Send>(urls: &[String], fetch: impl Fn(&str) -> T + Sync) -> Vec<T> {
    // Scoped threads may borrow `urls` and `fetch`: the scope joins them all
    // before it returns. Joining in the order of spawning keeps the results
    // in the order of the URLs, whichever finishes first.
    let fetch = &fetch;
    thread::scope(|scope| {
        // Fix: every request on a thread of its own, so the waits overlap.
        let downloads: Vec<_> = urls.iter().map(|url| scope.spawn(move || fetch(url))).collect();
        downloads.into_iter().map(|thread| thread.join().expect("a download does not panic")).collect()
    })
}

/// A fixed pool: `workers` threads take URLs from one channel until it is
/// empty. At most W requests wait at once, so M URLs need ceil(M/W) rounds of
/// one latency each: the pool is at most W times faster than one thread,
/// however many URLs there are. That is the price of capping the threads,
/// and what a pool is for: a thousand URLs need not mean a thousand threads.
fn fixed_pool<T: Send>(urls: &[String], workers: usize, fetch: impl Fn(&str) -> T + Sync) -> Vec<T> {
    // Every URL goes in, numbered, before any worker starts, and dropping
    // the sender closes the channel: a worker's loop ends when the channel
    // is empty. Unbounded is safe here: the queue holds only these URLs.
    let (todo, to_take) = crossbeam_channel::unbounded();
    for job in urls.iter().enumerate() {
        todo.send(job).expect("the receiver is alive");
    }
    drop(todo);
    let fetch = &fetch;
    let mut results: Vec<Option<T>> = urls.iter().map(|_| None).collect();
    thread::scope(|scope| {
        // No more workers than URLs: the others would find nothing to take.
        let pool: Vec<_> = (0..workers.min(urls.len()))
            .map(|_| {
                // crossbeam's receiver can be cloned: every worker takes from
                // the same queue, and each URL goes to exactly one of them.
                let to_take = to_take.clone();
                scope.spawn(move || to_take.iter().map(|(i, url)| (i, fetch(url))).collect::<Vec<_>>())
            })
            .collect();
        // The workers finish in any order; the numbers put each result back
        // in its URL's place.
        for worker in pool {
            for (i, result) in worker.join().expect("a download does not panic") {
                results[i] = Some(result);
            }
        }
    });
    results.into_iter().map(|result| result.expect("every URL was taken by a worker")).collect()
}

mod lab;

fn main() -> std::process::ExitCode {
    lab::main()
}
