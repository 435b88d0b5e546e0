//! Processes that copy their chunk of a text use about twice its memory;
//! threads sharing one buffer, and processes sharing one memory-mapped file,
//! use about one copy.
//!
//! The Python notes count the words of a text with one `multiprocessing`
//! process per chunk, and point out the cost: each process receives its
//! chunk as a pickled copy, so 8 GB of text needs 16 GB of memory. They name
//! memory-mapped files as the workaround, and move on to threads, which
//! share their process's memory. This lesson runs all of it. It counts the
//! words of one text (a generated corpus, or your file) with P workers four
//! ways: one thread; P threads sharing one buffer; P child processes each
//! sent a copy of its chunk through a pipe; and P child processes that each
//! map the same file with memmap2 and count their own range. It reports
//! each way's wall time and the memory of its whole process tree at the
//! peak: the PSS of the parent and every child, summed (the sum of RSS
//! beside it counts shared pages once per process), and what the text added
//! to that. `LC_ALL=C wc -w` counts the same file, as a reference.
//!
//! Run:
//!
//! ```text
//! cargo run -p mmap-workaround
//! cargo run --release -p mmap-workaround -- --size-mib 512 --workers 4
//! cargo run --release -p mmap-workaround -- --file big.txt
//! ```
//!
//! A run on 2 cores (release):
//!
//! ```text
//! mmap-workaround: processes that copy their chunk use about twice the memory; threads and a shared mmap use about one copy
//! host    cores=2 os=linux profile=release
//! params  seed=16 size_mib=128.0 workers=2
//!
//! experiment                   words  time  speed  vs wc -w
//!                              words    ms   MB/s         x
//! one thread                17894560   267    503      6.85
//! threads, one buffer       17894560   240    560      7.62
//! processes, copied chunks  17894560   421    319      4.34
//! processes, one mmap       17894560   229    586      7.98
//! wc -w                     17894560  1828   73.4         -
//!
//! memory of the process tree at its peak: the parent and its children, summed
//! experiment                PSS for text  x file  PSS  RSS
//!                                    MiB       x  MiB  MiB
//! one thread                         128    1.00  129  131
//! threads, one buffer                128    1.00  130  131
//! processes, copied chunks           256    2.00  258  264
//! processes, one mmap                128   0.999  130  136
//!
//! time: threads count the text already in memory; processes include their start and the sending of the chunks, or the mapping; wc -w reads the file.
//! PSS for text: each process's PSS at the peak minus its PSS before it touched the text, summed. PSS and RSS: the plain sums. RSS counts a shared page (the binary, the libraries) in full in every process that maps it; PSS divides it among them.
//!
//! ✔ counts-agree  the strategies agree with each other, with wc -w, and with the generator's own count: one thread: 17894560, threads, one buffer: 17894560, processes, copied chunks: 17894560, processes, one mmap: 17894560, wc -w: 17894560, generator: 17894560
//! ✔ copies-double  processes sent a copy of their chunk hold the text at least 1.8x over: PSS for text: 2.00x the file's size
//! ✔ sharing-keeps-one  threads sharing one buffer, and processes sharing one mmap, hold it at most 1.2x over: PSS for text: threads 1.00x, mmap processes 1.00x the file's size
//!
//! elapsed 3.17 s
//! ```
//!
//! The times, the speeds and the RSS vary with the machine and its load;
//! the counts do not, and the PSS figures move by a fraction of a MiB.
//!
//! See also: `fork-vs-spawn` (what a child inherits, and copy-on-write),
//! `pool-map` (when a process pool's copying costs more than it saves),
//! `spawn-cost` (what one more thread or process costs).

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use common::child::{ChildProcess, play_role, spawn_self};
use common::cleanup::TempDir;
use common::cli::{CommonArgs, SeedArg, finish, parse, usage_error};
use common::corpus::write_corpus;
use common::measure::{Memory, available_bytes, cores, memory_of_self};
use common::{Claim, Report};
use memmap2::Mmap;

/// Word count over one text by one thread, by threads sharing it, by
/// processes sent a copy of their chunk, and by processes sharing one
/// memory-mapped file: the time and the memory of each.
#[derive(Parser, Debug)]
#[command(name = "mmap-workaround", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    #[command(flatten)]
    seed: SeedArg,

    /// Size of the generated text, in MiB [default: 128, 8 with --quick].
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    size_mib: Option<u64>,

    /// Count the words of this file instead of a generated text. Leave the
    /// file alone while the lesson runs: four strategies read it.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["size_mib", "seed"])]
    file: Option<PathBuf>,

    /// Threads, or child processes, that share the count [default: the number of cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    workers: Option<u32>,
}

const MIB: u64 = 1 << 20;
/// The corpus's seed without `--seed`: every run counts the same text.
const DEFAULT_SEED: u64 = 16;
/// Below this size the memory claims are not tested: each process touches
/// some KiB of its own while it counts (stack, buffers, code), which for up
/// to 65 processes is no longer small next to the text.
const MEASURABLE_BYTES: u64 = 4 * MIB;

// The experiments' names, in the table and the JSON report.
const ONE_THREAD: &str = "one thread";
const THREADS: &str = "threads, one buffer";
const COPIES: &str = "processes, copied chunks";
const MAPPED: &str = "processes, one mmap";
const WC: &str = "wc -w";

fn main() -> ExitCode {
    // A counting child (strategies 3 and 4) does its part and exits.
    if let Some(code) = play_role(child_main) {
        return code;
    }
    let args: Args = parse();
    common::cleanup::install();
    finish(&args.common, run(&args))
}

fn run(args: &Args) -> anyhow::Result<Report> {
    let workers = args.workers.map_or(cores().min(64), |w| w as usize);
    let input = prepare_input(args)?;
    let mut report = common::lesson_report!();
    match &args.file {
        Some(path) => report.param("file", path.display().to_string()),
        None => report.param("seed", args.seed.seed.unwrap_or(DEFAULT_SEED)),
    };
    let size_mib = (input.bytes as f64 / MIB as f64 * 100.0).round() / 100.0;
    report.param("size_mib", size_mib).param("workers", workers);

    // The mmap strategy runs first, while the parent has never held the
    // text: a freed buffer of a few MiB may stay with the allocator, and in
    // the parent's PSS, which would blur this strategy's totals.
    let mapped = processes_sharing_one_mmap(&input.path, workers)?;
    // Strategies 1 to 3 start, like the notes' `word_count(text, n)`, from
    // the whole text in the parent's memory, read once. The parent measures
    // itself first, to tell what the text adds from what it costs anyway.
    let parent_before = memory_of_self()?;
    let text = std::fs::read(&input.path).with_context(|| format!("reading {}", input.path.display()))?;
    let one = one_thread(&text, &parent_before)?;
    let threads = threads_sharing_one_buffer(&text, workers, &parent_before)?;
    let copies = processes_with_copied_chunks(&text, workers, &parent_before)?;
    drop(text);
    let wc = wc_words(&input.path)?;

    let outcomes = [(ONE_THREAD, one), (THREADS, threads), (COPIES, copies), (MAPPED, mapped)];
    tabulate(&mut report, &outcomes, wc, input.bytes);
    judge(&mut report, &outcomes, wc, &input);
    Ok(report)
}

/// The two tables: counts and times (beside `wc -w`), then memory.
fn tabulate(report: &mut Report, outcomes: &[(&str, Outcome)], wc: Option<(u64, Duration)>, bytes: u64) {
    let megabytes = bytes as f64 / 1e6;
    let rows = outcomes.iter().map(|(name, outcome)| (*name, outcome.words, outcome.elapsed));
    for (name, words, elapsed) in rows.chain(wc.map(|(words, elapsed)| (WC, words, elapsed))) {
        let seconds = elapsed.as_secs_f64();
        report.figure(name, "words", words, "words").figure(name, "time", seconds * 1e3, "ms");
        report.figure(name, "speed", megabytes / seconds, "MB/s");
        if let Some((_, wc_elapsed)) = wc.filter(|_| name != WC) {
            report.figure(name, "vs wc -w", wc_elapsed.as_secs_f64() / seconds, "x");
        }
    }
    report.table("memory of the process tree at its peak: the parent and its children, summed");
    for (name, outcome) in outcomes {
        let tree = &outcome.tree;
        report.figure(*name, "PSS for text", tree.pss_for_text as f64 / MIB as f64, "MiB");
        report.figure(*name, "x file", tree.pss_for_text as f64 / bytes as f64, "x");
        if *name == COPIES {
            report.key();
        }
        report.figure(*name, "PSS", tree.pss as f64 / MIB as f64, "MiB");
        report.figure(*name, "RSS", tree.rss as f64 / MIB as f64, "MiB");
    }
    report.note(
        "time: threads count the text already in memory; processes include their start and the sending \
         of the chunks, or the mapping; wc -w reads the file.",
    );
    report.note(
        "PSS for text: each process's PSS at the peak minus its PSS before it touched the text, summed. \
         PSS and RSS: the plain sums. RSS counts a shared page (the binary, the libraries) in full in \
         every process that maps it; PSS divides it among them.",
    );
}

/// The claims, from what this run measured.
fn judge(report: &mut Report, outcomes: &[(&str, Outcome)], wc: Option<(u64, Duration)>, input: &Input) {
    let mut counts: Vec<(&str, u64)> =
        outcomes.iter().map(|(name, outcome)| (*name, outcome.words)).collect();
    counts.extend(wc.map(|(words, _)| (WC, words)));
    counts.extend(input.known_words.map(|words| ("generator", words)));
    let listed: Vec<String> = counts.iter().map(|(name, words)| format!("{name}: {words}")).collect();
    report.claim(Claim::check(
        "counts-agree",
        "the strategies agree with each other, with wc -w, and with the generator's own count",
        counts.iter().all(|&(_, words)| words == counts[0].1),
        listed.join(", ") + if wc.is_none() { " (wc is not installed)" } else { "" },
    ));
    let times_file = |wanted: &str| {
        let (_, outcome) = outcomes.iter().find(|(name, _)| *name == wanted).expect("every strategy ran");
        outcome.tree.pss_for_text as f64 / input.bytes as f64
    };
    let (copies, threads, mapped) = (times_file(COPIES), times_file(THREADS), times_file(MAPPED));
    let claims = [
        (
            "copies-double",
            "processes sent a copy of their chunk hold the text at least 1.8x over",
            copies >= 1.8,
            format!("PSS for text: {copies:.2}x the file's size"),
        ),
        (
            "sharing-keeps-one",
            "threads sharing one buffer, and processes sharing one mmap, hold it at most 1.2x over",
            threads <= 1.2 && mapped <= 1.2,
            format!("PSS for text: threads {threads:.2}x, mmap processes {mapped:.2}x the file's size"),
        ),
    ];
    let mib = input.bytes as f64 / MIB as f64;
    for (id, statement, holds, evidence) in claims {
        report.claim(if input.bytes < MEASURABLE_BYTES {
            Claim::skipped(id, statement, format!("{mib:.2} MiB is too small to tell one copy from two"))
        } else {
            Claim::check(id, statement, holds, evidence)
        });
    }
}

// ---------------------------------------------------------------------------
// Counting words, and cutting a text into chunks that count apart.
// ---------------------------------------------------------------------------

/// The bytes that separate words: ASCII whitespace, as in `LC_ALL=C wc -w`.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The words in `bytes`: a word starts at each byte that is not whitespace
/// and follows whitespace (or the start). Every other byte, UTF-8 or not,
/// belongs to a word.
fn count_words(bytes: &[u8]) -> u64 {
    let mut words = 0;
    let mut after_space = true;
    for &byte in bytes {
        let space = is_space(byte);
        words += u64::from(after_space && !space);
        after_space = space;
    }
    words
}

/// Cuts `text` into `chunks` ranges of about equal length that cover it, in order.
///
/// Why the cuts move: a cut inside a word would let each side count its
/// half, one word twice. So each cut moves forward to the next whitespace
/// byte, which keeps the word before it whole in one chunk. A word longer
/// than a chunk leaves the chunks it swallows empty.
fn chunk_bounds(text: &[u8], chunks: usize) -> Vec<Range<usize>> {
    let mut ranges = Vec::with_capacity(chunks);
    let mut start = 0;
    for index in 1..=chunks {
        let mut end = (text.len() * index / chunks).max(start);
        while end < text.len() && !is_space(text[end]) {
            end += 1;
        }
        ranges.push(start..end);
        start = end;
    }
    ranges
}

// ---------------------------------------------------------------------------
// Strategies 1 and 2: one process, one copy of the text.
// ---------------------------------------------------------------------------

/// Strategy 1, the baseline: one thread counts the text.
fn one_thread(text: &[u8], parent_before: &Memory) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let words = count_words(text);
    in_parent(words, started, parent_before)
}

/// Strategy 2: `workers` threads count the one buffer, a chunk each.
fn threads_sharing_one_buffer(
    text: &[u8],
    workers: usize,
    parent_before: &Memory,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let words = count_on_threads(text, workers);
    in_parent(words, started, parent_before)
}

/// Threads live in their parent's address space, so `&text[range]` is all
/// a thread needs: no byte is copied, and the text is in memory once. The
/// scope proves to the compiler that every thread ends before `text` can go.
fn count_on_threads(text: &[u8], workers: usize) -> u64 {
    thread::scope(|scope| {
        let counters: Vec<_> = chunk_bounds(text, workers)
            .into_iter()
            .map(|range| scope.spawn(move || count_words(&text[range])))
            .collect();
        counters.into_iter().map(|counter| counter.join().expect("counting does not panic")).sum()
    })
}

/// What a strategy counted, how long it took, and its tree's peak memory.
struct Outcome {
    words: u64,
    elapsed: Duration,
    tree: Tree,
}

/// Memory summed over a strategy's processes at its peak, in bytes.
///
/// Why PSS: pages can be shared (the binary's code, the libraries, a mapped
/// file), and RSS counts a shared page in full in every process that maps
/// it, so a sum of RSS counts it again and again. PSS gives each process its
/// share (a page 3 processes map counts a third in each): a sum of PSS
/// counts every page once.
///
/// Why a baseline: each process costs a few MiB before it holds any text.
/// At the default size that is noise; at the `--quick` size, three
/// processes' baselines weigh nearly as much as the text, and "one copy or
/// two" could not be read off the sums. So each process measures its PSS
/// before it touches the text and again at the peak, and the claims use the
/// sum of the differences, `pss_for_text`; the table shows both. (Where the
/// baselines are taken matters: see `start_children`.)
#[derive(Default)]
struct Tree {
    pss: u64,
    rss: u64,
    pss_for_text: i64,
}

impl Tree {
    fn add(&mut self, pss_before: u64, pss_peak: u64, rss_peak: u64) {
        self.pss += pss_peak;
        self.rss += rss_peak;
        self.pss_for_text += pss_peak as i64 - pss_before as i64;
    }
}

/// The outcome of strategies 1 and 2, measured while the caller holds the text.
fn in_parent(words: u64, started: Instant, parent_before: &Memory) -> anyhow::Result<Outcome> {
    let elapsed = started.elapsed();
    let peak = memory_of_self()?;
    let mut tree = Tree::default();
    tree.add(parent_before.pss_bytes, peak.pss_bytes, peak.rss_bytes);
    Ok(Outcome { words, elapsed, tree })
}

// ---------------------------------------------------------------------------
// Strategies 3 and 4: child processes.
// ---------------------------------------------------------------------------

/// Strategy 3: one child process per chunk, sent a copy of its chunk.
///
/// This is Python's `Process(target=count, args=(chunk,))`: multiprocessing
/// pickles the argument, writes it to a pipe, and the child rebuilds it as
/// an object of its own, because two address spaces cannot share a Python
/// string. The child's chunk is new memory while the parent still holds the
/// whole text: at the peak the tree holds the text twice. Bytes need no
/// pickling, but the copy is the same: from the parent's buffer into the
/// pipe, from the pipe into the child's own `Vec`.
fn processes_with_copied_chunks(
    text: &[u8],
    workers: usize,
    parent_before: &Memory,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let alone = memory_of_self()?;
    let mut children = start_children("count-copy", &[], workers)?;
    // The children run this same executable, so starting them shrank the
    // parent's share of its pages. Its baseline moves down by as much, to
    // have the same sharers as its peak (see `start_children`).
    let shrink = alone.pss_bytes.saturating_sub(memory_of_self()?.pss_bytes);
    let parent_before = parent_before.pss_bytes.saturating_sub(shrink);
    for (child, range) in children.iter_mut().zip(chunk_bounds(text, workers)) {
        // The job: the chunk's length on a line, then its bytes.
        writeln!(child.to_child, "{}", range.len()).context("sending a chunk")?;
        child.to_child.write_all(&text[range]).context("sending a chunk")?;
    }
    gather(children, started, parent_before)
}

/// Strategy 4: one child process per chunk, each mapping the same file.
///
/// A file-backed mapping makes the file's pages, as the kernel caches them,
/// part of the process's memory: reading `map[i]` reads the cached page
/// itself, and every process that maps the file reads the same physical
/// pages. Nothing is copied, so the text is in memory once, however many
/// processes read it. (memmap2's `map_anon` would not do: an anonymous
/// mapping is MAP_PRIVATE, copied page by page once a forked child writes
/// it, and invisible to a spawned one. Sharing needs a file, or MAP_SHARED.)
fn processes_sharing_one_mmap(path: &Path, workers: usize) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut children = start_children("count-mapped", &[path.into()], workers)?;
    let parent_before = memory_of_self()?.pss_bytes;
    // The parent maps the file only to move the cuts to whitespace, which
    // reads a page or two near each cut; the mapping is gone before any
    // child counts, so the parent holds no text.
    let ranges = chunk_bounds(&map_file(path)?, workers);
    for (child, range) in children.iter_mut().zip(ranges) {
        // The job: the range of the file to count.
        writeln!(child.to_child, "{} {}", range.start, range.end).context("sending a range")?;
    }
    gather(children, started, parent_before)
}

/// Maps the file at `path`, read-only, into this process's memory.
fn map_file(path: &Path) -> anyhow::Result<Mmap> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    // Safety: mapping a file is unsafe because its bytes change if anyone
    // writes the file while it is mapped (and reading past the end of a file
    // truncated under it kills the process with SIGBUS), whereas a `&[u8]`
    // promises bytes that do not change. Nobody does here: the lesson writes
    // its corpus before mapping it, in a temporary directory of its own, and
    // maps it read-only; a `--file` is the user's, and `--help` asks them to
    // leave it alone while the lesson runs.
    unsafe { Mmap::map(&file) }.with_context(|| format!("mapping {}", path.display()))
}

/// A counting child, and the parent's ends of its pipes.
struct Child {
    process: ChildProcess,
    to_child: ChildStdin,
    from_child: BufReader<ChildStdout>,
}

impl Child {
    fn read_line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        let read = self.from_child.read_line(&mut line).context("reading from a counting child")?;
        ensure!(read > 0, "a counting child ended early (its error, if it had one, is above)");
        Ok(line.trim_end().to_string())
    }
}

/// Starts `count` children in `role` (spawn: this executable again), and
/// waits until each says it is ready.
///
/// Why wait: a child measures its baseline when its job arrives, and no job
/// is sent before every child is running. By then every process of the tree
/// maps the binary's pages, so each one's share of them is the same at its
/// baseline as at the peak, and the baselines add up to the pages once.
fn start_children(role: &str, role_args: &[OsString], count: usize) -> anyhow::Result<Vec<Child>> {
    let mut children = Vec::with_capacity(count);
    for _ in 0..count {
        let mut process = spawn_self(role, role_args, |command| {
            command.stdin(Stdio::piped()).stdout(Stdio::piped());
        })?;
        let to_child = process.handle().stdin.take().context("the child's stdin is a pipe")?;
        let from_child =
            BufReader::new(process.handle().stdout.take().context("the child's stdout is a pipe")?);
        children.push(Child { process, to_child, from_child });
    }
    for child in &mut children {
        let line = child.read_line()?;
        ensure!(line == "ready", "a counting child said {line:?}, not \"ready\"");
    }
    Ok(children)
}

/// The end of both process strategies: the counts, then the memory.
///
/// Each child reports its count as soon as it has one, and holds its text.
/// Only when every count is in does the parent ask the children to measure
/// themselves: nothing is being touched any more, so their figures add up
/// to one moment, the tree's peak. (A child that measured itself as soon as
/// it was done would count in full the pages at the edges of its range that
/// its neighbour had not mapped yet.) Then the parent measures itself, and
/// closes each child's stdin, which tells it to let go and exit, and reaps
/// it. On an error, dropping a `ChildProcess` kills and reaps it.
fn gather(mut children: Vec<Child>, started: Instant, parent_pss_before: u64) -> anyhow::Result<Outcome> {
    let mut words = 0;
    for child in &mut children {
        let line = child.read_line()?;
        words += line.parse::<u64>().with_context(|| format!("a counting child reported {line:?}"))?;
    }
    let elapsed = started.elapsed();
    for child in &mut children {
        writeln!(child.to_child, "measure").context("asking a child to measure itself")?;
    }
    let mut tree = Tree::default();
    for child in &mut children {
        let line = child.read_line()?;
        let numbers: Vec<u64> = line.split_whitespace().filter_map(|n| n.parse().ok()).collect();
        let [pss_before, pss_peak, rss_peak] = numbers[..] else {
            bail!("a counting child reported {line:?}, not its memory");
        };
        tree.add(pss_before, pss_peak, rss_peak);
    }
    let parent_peak = memory_of_self()?;
    tree.add(parent_pss_before, parent_peak.pss_bytes, parent_peak.rss_bytes);
    for Child { process, to_child, .. } in children {
        drop(to_child);
        let status = process.wait()?;
        ensure!(status.success(), "a counting child failed: {status}");
    }
    Ok(Outcome { words, elapsed, tree })
}

/// A counting child: say it is ready, take its job, measure its baseline,
/// get its text (a copy down stdin, or a mapping of the file), count it,
/// and hold the text until the parent has measured the tree.
fn child_main(role: &str, role_args: &[String]) -> anyhow::Result<()> {
    let (mut stdin, mut stdout) = (std::io::stdin().lock(), std::io::stdout().lock());
    writeln!(stdout, "ready")?;
    stdout.flush()?;
    let mut job = String::new();
    stdin.read_line(&mut job).context("reading my job")?;
    let job: Vec<usize> = job.split_whitespace().filter_map(|n| n.parse().ok()).collect();
    let before = memory_of_self()?;
    match (role, role_args, &job[..]) {
        ("count-copy", [], &[length]) => {
            // This `Vec` is the copy: fresh pages, filled from the pipe, this
            // process's alone. It lives to the end of this arm, past the report.
            let mut chunk = vec![0; length];
            stdin.read_exact(&mut chunk).context("reading my chunk")?;
            report_and_hold(count_words(&chunk), &before, &mut stdin, &mut stdout)
        }
        ("count-mapped", [path], &[start, end]) => {
            let map = map_file(Path::new(path))?;
            ensure!(start <= end && end <= map.len(), "{start}..{end} is outside {path}");
            report_and_hold(count_words(&map[start..end]), &before, &mut stdin, &mut stdout)
        }
        _ => bail!("role {role} {role_args:?} cannot do the job {job:?}"),
    }
}

/// The rest of a child's life, while its caller holds the text: report the
/// count; when the parent says `measure`, report `pss_before pss_peak
/// rss_peak`; then wait for the end of the input.
fn report_and_hold(
    words: u64,
    before: &Memory,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    writeln!(out, "{words}")?;
    out.flush()?;
    input.read_line(&mut String::new()).context("waiting for the parent")?;
    let peak = memory_of_self()?;
    writeln!(out, "{} {} {}", before.pss_bytes, peak.pss_bytes, peak.rss_bytes)?;
    out.flush()?;
    std::io::copy(input, &mut std::io::sink()).context("waiting for the parent")?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The reference count, and the text to count.
// ---------------------------------------------------------------------------

/// `LC_ALL=C wc -w` on the same file: a count to agree with and a speed to
/// compare with; `None` where `wc` is not installed. (GNU wc 9.1, for one,
/// takes no control byte, and in the C locale no byte above 127, as part of
/// a word; 9.5 changed the rule for control bytes. On a file with such
/// words its count can differ; the generated corpus has none.)
fn wc_words(path: &Path) -> anyhow::Result<Option<(u64, Duration)>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let started = Instant::now();
    let spawned = Command::new("wc").arg("-w").env("LC_ALL", "C").stdin(file).stdout(Stdio::piped()).spawn();
    let child = match spawned {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        other => other.context("starting wc -w")?,
    };
    let output = child.wait_with_output();
    let (output, elapsed) = (output.context("waiting for wc -w")?, started.elapsed());
    ensure!(output.status.success(), "wc -w failed: {}", output.status);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let words = stdout.trim().parse().with_context(|| format!("wc -w printed {stdout:?}"))?;
    Ok(Some((words, elapsed)))
}

/// The text the strategies count.
struct Input {
    path: PathBuf,
    bytes: u64,
    /// The generator's count of its corpus: the ground truth.
    known_words: Option<u64>,
    /// The corpus's directory, deleted when dropped or on Ctrl-C.
    _scratch: Option<TempDir>,
}

/// The user's `--file`, checked, or a corpus of `--size-mib` written to a
/// temporary directory.
fn prepare_input(args: &Args) -> anyhow::Result<Input> {
    if let Some(path) = &args.file {
        let bytes = check_user_file(path)?;
        check_fits_in_memory(bytes, &format!("--file {}", path.display()))?;
        // Read it once, so that every strategy finds it in the page cache.
        std::io::copy(&mut File::open(path)?, &mut std::io::sink())
            .with_context(|| format!("reading {}", path.display()))?;
        return Ok(Input { path: path.clone(), bytes, known_words: None, _scratch: None });
    }
    let bytes = args.size_mib.unwrap_or(args.common.pick(128, 8)) * MIB;
    check_fits_in_memory(bytes, "--size-mib")?;
    let scratch = TempDir::new("mmap-workaround")?;
    let path = scratch.path().join("corpus.txt");
    let mut out =
        BufWriter::new(File::create(&path).with_context(|| format!("creating {}", path.display()))?);
    let seed = args.seed.seed.unwrap_or(DEFAULT_SEED);
    let words = write_corpus(&mut out, bytes, seed).and_then(|words| out.flush().map(|()| words));
    let words = words.with_context(|| format!("writing {}", path.display()))?;
    Ok(Input { path, bytes, known_words: Some(words), _scratch: Some(scratch) })
}

/// The size of the user's file, or a usage error that says why it will not do.
fn check_user_file(path: &Path) -> anyhow::Result<u64> {
    let shown = path.display();
    let metadata = std::fs::metadata(path).map_err(|err| usage_error(format!("--file {shown}: {err}")))?;
    if !metadata.is_file() {
        let what = if metadata.is_dir() { "a directory" } else { "not a regular file" };
        return Err(usage_error(format!("--file {shown} is {what}; give a file of text")));
    }
    // An empty file has 0 words, but no memory to compare: refused.
    if metadata.len() == 0 {
        return Err(usage_error(format!("--file {shown} is empty: there are no words to count")));
    }
    // Opened now, so that a file this process may not read is refused first.
    File::open(path).map_err(|err| usage_error(format!("--file {shown}: {err}")))?;
    Ok(metadata.len())
}

/// A usage error if the run would not fit in the memory available now: the
/// copying strategy holds the text twice (the parent's buffer and the
/// children's copies), and the file's pages are cached beside them.
fn check_fits_in_memory(bytes: u64, what: &str) -> anyhow::Result<()> {
    let (needed, available) = (bytes.saturating_mul(3), available_bytes()?);
    ensure!(
        needed <= available,
        usage_error(format!(
            "{what}: {} MiB of text needs about {} MiB of memory (the file's pages, the parent's copy and \
             the children's copies); {} MiB is available",
            bytes.div_ceil(MIB),
            needed.div_ceil(MIB),
            available / MIB
        ))
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::corpus::SplitMix64;

    const SPACES: [u8; 6] = [b' ', b'\t', b'\n', 0x0b, 0x0c, b'\r'];

    /// A random text: words of ASCII letters, control bytes and bytes that
    /// are not UTF-8, some longer than any chunk, between runs of mixed
    /// whitespace; it may start or end with either, or be empty.
    fn random_text(rng: &mut SplitMix64) -> Vec<u8> {
        let target = rng.between(0, 400) as usize;
        let mut text = Vec::with_capacity(target + 200);
        while text.len() < target {
            let (run, is_word) = match rng.between(0, 9) {
                0 => (rng.between(30, 200), true),
                1..=5 => (rng.between(1, 8), true),
                _ => (rng.between(1, 5), false),
            };
            for _ in 0..run {
                let byte = match (is_word, rng.between(0, 9)) {
                    (false, _) => SPACES[rng.between(0, 5) as usize],
                    (true, 0) => rng.between(0x80, 0xff) as u8,
                    (true, 1) => [0x00, 0x01, 0x07, 0x1b, 0x7f][rng.between(0, 4) as usize],
                    (true, _) => b'a' + rng.between(0, 25) as u8,
                };
                text.push(byte);
            }
        }
        text
    }

    /// The chunks cover the text in order, every cut is at whitespace (or
    /// the end), and their counts add up to the one-thread count.
    fn check_chunked(text: &[u8], chunks: usize) {
        let ranges = chunk_bounds(text, chunks);
        assert_eq!(ranges.len(), chunks);
        assert_eq!(ranges[0].start, 0);
        assert_eq!(ranges[chunks - 1].end, text.len());
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].end, pair[1].start, "chunks are contiguous");
            assert!(pair[0].end == text.len() || is_space(text[pair[0].end]), "cut inside a word");
        }
        let chunked: u64 = ranges.iter().map(|r| count_words(&text[r.clone()])).sum();
        assert_eq!(chunked, count_words(text), "{chunks} chunks of {text:?}");
    }

    #[test]
    fn counting_follows_the_wc_rule() {
        assert_eq!(count_words(b""), 0);
        assert_eq!(count_words(b" \t\n\x0b\x0c\r"), 0);
        assert_eq!(count_words(b"word"), 1);
        assert_eq!(count_words(b"  two\r\n\twords"), 2);
        assert_eq!(count_words(b"caf\xc3\xa9 \xff\xfe \x01"), 3);
    }

    #[test]
    fn chunked_counts_match_one_thread_on_random_texts() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..300 {
            let text = random_text(&mut rng);
            // The lesson's count agrees with a second, independent way of
            // counting: split at the six whitespace bytes, keep what is left.
            let split = text.split(|b| b" \t\n\x0b\x0c\r".contains(b)).filter(|w| !w.is_empty()).count();
            assert_eq!(count_words(&text), split as u64);
            for chunks in 1..=16 {
                check_chunked(&text, chunks);
            }
        }
    }

    #[test]
    fn chunked_counts_match_on_the_edge_cases() {
        let long_word = [b'x'; 100];
        let cases: [&[u8]; 7] = [
            b"",
            b"   \n\t  ",
            &long_word,
            b"one word longer than any chunk: pneumonoultramicroscopicsilicovolcanoconiosis",
            b"no trailing newline",
            b"\t\x0b mixed \r\n\x0c runs \n\n of  whitespace \r",
            b"\xff\xfe not \xc3\x28 utf-8 \x80",
        ];
        for text in cases {
            for chunks in 1..=16 {
                check_chunked(text, chunks);
            }
        }
    }

    #[test]
    fn threads_count_like_one_thread() {
        let mut rng = SplitMix64::new(11);
        for _ in 0..20 {
            let text = random_text(&mut rng);
            for workers in 1..=16 {
                assert_eq!(count_on_threads(&text, workers), count_words(&text));
            }
        }
    }
}
