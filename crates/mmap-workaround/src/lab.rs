//! The experiment around the lesson: the text to count (a generated corpus
//! in a temporary file without a name, or the user's file, checked), each strategy
//! timed, the memory of its whole process tree measured at the peak, while
//! every thread or child holds its text (through the lesson's checkpoints),
//! `wc -w` as a reference, the two tables and the claims.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Barrier, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use common::cli::{CommonArgs, SeedArg, usage_error};
use common::corpus::write_corpus;
use common::measure::{Memory, available_bytes, cores, memory_of_self};
use common::{Claim, Report};

use crate::CountingChild;

#[derive(Parser, Debug)]
#[command(name = "mmap-workaround", version, about, max_term_width = 80)]
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
/// Below this size, and below `MEASURABLE_PER_WORKER` for each worker, the
/// memory claims are not tested: each process, and each thread, touches some
/// KiB of its own while it counts (stack, buffers, code), which for 64 of
/// them is no longer small next to a few MiB of text.
const MEASURABLE_BYTES: u64 = 4 * MIB;
const MEASURABLE_PER_WORKER: u64 = 256 << 10;

// The experiments' names, in the table and the JSON report.
const ONE_THREAD: &str = "one thread";
const THREADS: &str = "threads, one buffer";
const COPIES: &str = "processes, copied chunks";
const MAPPED: &str = "processes, one mmap";
const WC: &str = "wc -w";

pub fn main() -> ExitCode {
    // A counting child (strategies 3 and 4) is this executable started
    // again: it counts its part, measured at the lesson's checkpoints, and
    // exits, before any flag is parsed. `play_role` also has the kernel kill
    // it if the parent dies.
    if let Some(code) = common::child::play_role(|role, args| {
        crate::child_main(role, args, child_checkpoint())
            .with_context(|| format!("child role {}", [&[role.to_string()], args].concat().join(" ")))
    }) {
        return code;
    }
    let args: Args = common::cli::parse();
    // The lab starts child processes and writes a corpus: a Ctrl-C kills
    // the one and deletes the other.
    common::cleanup::install();
    common::cli::finish(&args.common, run(&args))
}

fn run(args: &Args) -> anyhow::Result<Report> {
    let workers = args.workers.map_or(cores().min(64), |w| w as usize);
    let input = prepare_input(args)?;
    let mut report = common::lesson_report!();
    // Parameters keep one type everywhere: a generated text's size in whole
    // MiB (the flag), a file's in bytes.
    match &args.file {
        Some(path) => report.param("file", path.display().to_string()).param("file_bytes", input.bytes),
        None => {
            report.param("seed", args.seed.seed.unwrap_or(DEFAULT_SEED)).param("size_mib", input.bytes / MIB)
        }
    };
    report.param("workers", workers);

    // The mmap strategy runs first, while the parent has never held the
    // text: a freed buffer of a few MiB may stay with the allocator, and in
    // the parent's PSS, which would blur this strategy's totals.
    let mapped = mapped_measured(&input.path, workers)?;
    // Strategies 1 to 3 start, like the notes' `word_count(text, n)`, from
    // the whole text in the parent's memory, read once. The parent measures
    // itself first, to tell what the text adds from what it costs anyway.
    let parent_before = memory_of_self()?;
    let text = std::fs::read(&input.path).with_context(|| format!("reading {}", input.path.display()))?;
    let one = threads_measured(1, &parent_before, |checkpoint| crate::one_thread(&text, &checkpoint))?;
    let threads = threads_measured(workers, &parent_before, |checkpoint| {
        crate::threads_sharing_one_buffer(&text, workers, &checkpoint)
    })?;
    let copies = copies_measured(&text, workers, &parent_before)?;
    drop(text);
    let wc = wc_words(&input.path)?;
    if wc.is_some() {
        report.ran_beside("wc");
    }

    let outcomes = [(ONE_THREAD, &one), (THREADS, &threads), (COPIES, &copies), (MAPPED, &mapped)];
    tabulate(&mut report, &outcomes, wc, input.bytes);
    let counts: Vec<(&str, u64)> = outcomes.iter().map(|(name, outcome)| (*name, outcome.words)).collect();
    report.claim(counts_agree(&counts, wc.map(|(words, _)| words), input.known_words));
    report.claim(copies_double(&copies.tree, input.bytes, workers));
    report.claim(sharing_keeps_one(&threads.tree, &mapped.tree, input.bytes, workers));
    Ok(report)
}

// ---------------------------------------------------------------------------
// Measuring the strategies: time, and the memory of the process tree.
// ---------------------------------------------------------------------------

/// What a strategy counted, how long it took, and its tree's peak memory.
struct Outcome {
    words: u64,
    elapsed: Duration,
    tree: Tree,
}

/// One process's memory before it touched the text, and at the peak.
#[derive(Clone, Copy, Debug)]
struct Sample {
    before: Memory,
    peak: Memory,
}

impl Sample {
    fn pss_gained(&self) -> i64 {
        self.peak.pss_bytes as i64 - self.before.pss_bytes as i64
    }

    fn anonymous_gained(&self) -> i64 {
        self.peak.anonymous_bytes as i64 - self.before.anonymous_bytes as i64
    }
}

/// The memory of a strategy's processes at its peak: the parent's, and each
/// child's beside the length of its chunk, in the order of the chunks.
///
/// Why PSS: pages can be shared (the binary's code, the libraries, a mapped
/// file), and RSS counts a shared page in full in every process that maps
/// it, so a sum of RSS counts it again and again. PSS gives each process its
/// share (a page 3 processes map counts a third in each): a sum of PSS
/// counts every page once.
///
/// Why anonymous memory too: a copy lives in fresh pages of the heap, which
/// are anonymous; a mapped file's pages are not, however many processes map
/// them. (Private pages would not tell them apart: a file's page that only
/// one process maps is private to it.)
///
/// Why a baseline: each process costs a few MiB before it holds any text.
/// At the default size that is noise; at the `--quick` size, three
/// processes' baselines weigh nearly as much as the text, and "one copy or
/// two" could not be read off the sums. So each process measures itself
/// before it touches the text and again at the peak, and the claims use the
/// differences. (Where the baselines are taken matters: see
/// `wait_until_ready`.)
#[derive(Debug)]
struct Tree {
    parent: Sample,
    children: Vec<(u64, Sample)>,
}

impl Tree {
    fn processes(&self) -> impl Iterator<Item = &Sample> {
        std::iter::once(&self.parent).chain(self.children.iter().map(|(_, sample)| sample))
    }

    fn pss(&self) -> u64 {
        self.processes().map(|sample| sample.peak.pss_bytes).sum()
    }

    fn rss(&self) -> u64 {
        self.processes().map(|sample| sample.peak.rss_bytes).sum()
    }

    /// What the text added to the tree's PSS.
    fn pss_for_text(&self) -> i64 {
        self.processes().map(Sample::pss_gained).sum()
    }

    /// What the text added to the tree's anonymous memory.
    fn anonymous_for_text(&self) -> i64 {
        self.processes().map(Sample::anonymous_gained).sum()
    }
}

/// The checkpoint strategies 1 and 2 call in each of their threads.
type ThreadCheckpoint<'a> = dyn Fn() + Sync + 'a;

/// Strategies 1 and 2, measured: `count` runs the strategy with the lab's
/// checkpoint, which each of its `threads` threads calls once, after
/// counting and still holding its text.
///
/// The threads meet at a barrier there; the one the barrier names leader
/// measures the process while the others wait, and they meet again before
/// any returns. So the figure is the moment every thread holds its text, the
/// threads' peak. The clock leaves the measuring out.
fn threads_measured(
    threads: usize,
    parent_before: &Memory,
    count: impl FnOnce(&ThreadCheckpoint) -> u64,
) -> anyhow::Result<Outcome> {
    let barrier = Barrier::new(threads);
    let peak = OnceLock::new();
    let checkpoint = || {
        if barrier.wait().is_leader() {
            let started = Instant::now();
            let memory = memory_of_self();
            let _ = peak.set((memory, started.elapsed()));
        }
        barrier.wait();
    };
    let started = Instant::now();
    let words = count(&checkpoint);
    let elapsed = started.elapsed();
    let (peak, measuring) = peak.into_inner().context("no thread reached its checkpoint")?;
    let parent = Sample { before: *parent_before, peak: peak? };
    Ok(Outcome { words, elapsed: elapsed.saturating_sub(measuring), tree: Tree { parent, children: vec![] } })
}

/// The checkpoint the lesson's process strategies call: the parent's half of
/// the measuring.
type ParentCheckpoint<'a> = dyn FnMut(&str, &mut [CountingChild]) -> io::Result<()> + 'a;

/// Strategy 3, measured. The parent measures itself alone first: starting
/// the children (this same executable) shrinks its share of the binary's
/// pages, and its baseline PSS moves down by as much, to have the same
/// sharers as its peak (see `wait_until_ready`).
fn copies_measured(text: &[u8], workers: usize, parent_before: &Memory) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let alone = memory_of_self()?;
    let baseline = || -> anyhow::Result<Memory> {
        let shrink = alone.pss_bytes.saturating_sub(memory_of_self()?.pss_bytes);
        Ok(Memory { pss_bytes: parent_before.pss_bytes.saturating_sub(shrink), ..*parent_before })
    };
    let chunks = chunk_lengths(text, workers);
    measured(started, baseline, chunks, |checkpoint| {
        crate::processes_with_copied_chunks(text, workers, checkpoint)
    })
    .context(COPIES)
}

/// Strategy 4, measured: the parent's baseline is taken once its children
/// run, before it maps the file.
fn mapped_measured(path: &Path, workers: usize) -> anyhow::Result<Outcome> {
    // Mapped only to find the cuts: a page or two near each.
    let chunks = chunk_lengths(&crate::map_file(path)?, workers);
    let baseline = || memory_of_self();
    measured(Instant::now(), baseline, chunks, |checkpoint| {
        crate::processes_sharing_one_mmap(path, workers, checkpoint)
    })
    .context(MAPPED)
}

/// The length of each chunk the lesson cuts `text` into, in order.
fn chunk_lengths(text: &[u8], workers: usize) -> Vec<u64> {
    crate::chunk_bounds(text, workers).iter().map(|range| range.len() as u64).collect()
}

/// Runs a process strategy with the parent's measuring at its checkpoints:
/// at "started", waits until every child is ready and takes the parent's
/// `baseline`; at "counted", stops the clock and measures the tree, each
/// child beside its chunk's length from `chunks`.
fn measured(
    started: Instant,
    baseline: impl FnOnce() -> anyhow::Result<Memory>,
    chunks: Vec<u64>,
    strategy: impl FnOnce(&mut ParentCheckpoint) -> io::Result<u64>,
) -> anyhow::Result<Outcome> {
    let mut baseline = Some(baseline);
    let (mut parent_before, mut measured) = (None, None);
    let words = strategy(&mut |stage, children| {
        match stage {
            "started" => {
                wait_until_ready(children)?;
                let baseline = baseline.take().expect("one \"started\" checkpoint");
                parent_before = Some(baseline().map_err(io_error)?);
            }
            "counted" => {
                let before = parent_before.expect("a \"started\" checkpoint before \"counted\"");
                measured = Some((started.elapsed(), measure_tree(children, before, &chunks)?));
            }
            _ => {}
        }
        Ok(())
    })?;
    let (elapsed, tree) = measured.context("the strategy reached no \"counted\" checkpoint")?;
    Ok(Outcome { words, elapsed, tree })
}

/// Waits until each child says it is ready.
///
/// Why wait: a child measures its baseline when its job arrives, and no job
/// is sent before every child is running. By then every process of the tree
/// maps the binary's pages, so each one's share of them is the same at its
/// baseline as at the peak, and the baselines add up to the pages once.
fn wait_until_ready(children: &mut [CountingChild]) -> io::Result<()> {
    for child in children {
        let line = child.read_line()?;
        if line != "ready" {
            return Err(io::Error::other(format!("a counting child said {line:?}, not \"ready\"")));
        }
    }
    Ok(())
}

/// The memory of the tree at its peak.
///
/// Each child reported its count as soon as it had one, and holds its text.
/// Only when every count is in does the parent ask the children to measure
/// themselves: nothing is being touched any more, so their figures add up
/// to one moment, the tree's peak. (A child that measured itself as soon as
/// it was done would count in full the pages at the edges of its range that
/// its neighbour had not mapped yet.) Then the parent measures itself.
/// After this checkpoint the lesson closes each child's stdin, which tells
/// it to let go and exit, and reaps it.
fn measure_tree(children: &mut [CountingChild], parent_before: Memory, chunks: &[u64]) -> io::Result<Tree> {
    for child in children.iter_mut() {
        writeln!(child.stdin(), "measure")?;
    }
    let mut measured = Vec::with_capacity(children.len());
    for (child, &chunk) in children.iter_mut().zip(chunks) {
        let line = child.read_line()?;
        let numbers: Vec<u64> = line.split_whitespace().filter_map(|n| n.parse().ok()).collect();
        let (Some(before), Some(peak)) =
            (numbers.get(..4).and_then(memory_from), numbers.get(4..).and_then(memory_from))
        else {
            return Err(io::Error::other(format!("a counting child reported {line:?}, not its memory")));
        };
        measured.push((chunk, Sample { before, peak }));
    }
    let parent = Sample { before: parent_before, peak: memory_of_self().map_err(io_error)? };
    Ok(Tree { parent, children: measured })
}

/// A `Memory` as the four numbers a child writes on its line.
fn memory_to_line(memory: &Memory) -> String {
    let Memory { rss_bytes, pss_bytes, private_bytes, anonymous_bytes } = memory;
    format!("{rss_bytes} {pss_bytes} {private_bytes} {anonymous_bytes}")
}

/// The `Memory` a child wrote as four numbers, if they are four.
fn memory_from(numbers: &[u64]) -> Option<Memory> {
    let &[rss_bytes, pss_bytes, private_bytes, anonymous_bytes] = numbers else { return None };
    Some(Memory { rss_bytes, pss_bytes, private_bytes, anonymous_bytes })
}

/// A counting child's half of the measuring, at the lesson's checkpoints:
/// at "started", say `ready`; at "job", measure the baseline; at "counted",
/// wait for `measure`, report its memory at the baseline and now, and hold
/// the text until the parent closes stdin.
fn child_checkpoint() -> impl FnMut(&str) -> io::Result<()> {
    let mut before = None;
    move |stage| {
        let mut stdout = io::stdout();
        match stage {
            "started" => writeln!(stdout, "ready")?,
            "job" => before = Some(memory_of_self().map_err(io_error)?),
            "counted" => {
                io::stdin().read_line(&mut String::new())?;
                let peak = memory_of_self().map_err(io_error)?;
                let before = before.expect("a \"job\" checkpoint before \"counted\"");
                writeln!(stdout, "{} {}", memory_to_line(&before), memory_to_line(&peak))?;
                stdout.flush()?;
                io::copy(&mut io::stdin().lock(), &mut io::sink())?;
            }
            _ => {}
        }
        stdout.flush()
    }
}

/// An error of the lab's (with its causes) as an `io::Error`, for the
/// lesson's checkpoints.
fn io_error(err: anyhow::Error) -> io::Error {
    io::Error::other(format!("{err:#}"))
}

// ---------------------------------------------------------------------------
// The tables and the claims.
// ---------------------------------------------------------------------------

/// The two tables: counts and times (beside `wc -w`), then memory.
fn tabulate(report: &mut Report, outcomes: &[(&str, &Outcome)], wc: Option<(u64, Duration)>, bytes: u64) {
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
    let mib = |bytes: i64| bytes as f64 / MIB as f64;
    for (name, outcome) in outcomes {
        let tree = &outcome.tree;
        report.figure(*name, "PSS for text", mib(tree.pss_for_text()), "MiB");
        report.figure(*name, "x file", tree.pss_for_text() as f64 / bytes as f64, "x");
        if *name == COPIES {
            report.key();
        }
        report.figure(*name, "anon for text", mib(tree.anonymous_for_text()), "MiB");
        report.figure(*name, "PSS", mib(tree.pss() as i64), "MiB");
        report.figure(*name, "RSS", mib(tree.rss() as i64), "MiB");
    }
    report.note(
        "time: threads count the text already in memory; processes include their start and the sending \
         of the chunks, or the mapping; wc -w reads the file.",
    );
    report.note(
        "PSS for text: each process's PSS at the peak (every thread or child holding its text) minus \
         its PSS before it touched the text, summed. anon for text: the same for anonymous memory, \
         the pages no file backs: a copy is anonymous, a mapped file is not. PSS and RSS: the plain \
         sums. RSS counts a shared page (the binary, the libraries) in full in every process that maps \
         it; PSS divides it among them.",
    );
}

/// The strategies agree with each other, with `wc -w` (where installed) and
/// with the generator's own count (for a generated corpus).
fn counts_agree(counts: &[(&str, u64)], wc: Option<u64>, known: Option<u64>) -> Claim {
    let mut counts = counts.to_vec();
    counts.extend(wc.map(|words| (WC, words)));
    counts.extend(known.map(|words| ("generator", words)));
    let listed: Vec<String> = counts.iter().map(|(name, words)| format!("{name}: {words}")).collect();
    Claim::check(
        "counts-agree",
        "the strategies agree with each other, with wc -w, and with the generator's own count",
        counts.iter().all(|&(_, words)| words == counts[0].1),
        listed.join(", ") + if wc.is_none() { " (wc is not installed)" } else { "" },
    )
}

/// The share of its chunk a copying child must hold as new anonymous memory,
/// and of the text the parent must still hold, for "copied".
const COPIED: f64 = 0.9;

/// Processes sent a copy of their chunk hold the text twice: every child's
/// anonymous memory grew by its chunk (it copied it) while the parent still
/// held the whole text.
fn copies_double(tree: &Tree, bytes: u64, workers: usize) -> Claim {
    let copied = |&(chunk, sample): &(u64, Sample)| sample.anonymous_gained() as f64 / chunk.max(1) as f64;
    // An empty chunk (a word longer than a chunk swallowed it) has nothing to copy.
    let each_copied = tree.children.iter().all(|child| child.0 == 0 || copied(child) >= COPIED);
    let parent_held = tree.parent.anonymous_gained() as f64 / bytes as f64;
    let mib = |bytes: f64| bytes / MIB as f64;
    let children = if tree.children.len() <= 4 {
        let each = tree.children.iter().map(|&(chunk, sample)| {
            format!(
                "chunk {:.1} MiB, copied {:.1} MiB",
                mib(chunk as f64),
                mib(sample.anonymous_gained() as f64)
            )
        });
        each.collect::<Vec<_>>().join("; ")
    } else {
        let least =
            tree.children.iter().filter(|child| child.0 > 0).map(copied).fold(f64::INFINITY, f64::min);
        format!("{} children, the least copied {least:.2}x its chunk", tree.children.len())
    };
    memory_claim(
        "copies-double",
        "processes sent a copy of their chunk hold the text twice, each child its chunk in new memory \
         beside the parent's whole text",
        each_copied && parent_held >= COPIED,
        format!(
            "new anonymous memory: {children}; the parent {parent_held:.2}x the text. PSS for text {:.2}x \
             the file",
            tree.pss_for_text() as f64 / bytes as f64
        ),
        bytes,
        workers,
    )
}

/// Threads sharing one buffer, and processes sharing one mapping, hold it
/// once: at most 1.2x the file of PSS while every thread or child holds its
/// text, and the mapping processes no copy (anonymous memory).
fn sharing_keeps_one(threads: &Tree, mapped: &Tree, bytes: u64, workers: usize) -> Claim {
    let times_file = |gained: i64| gained as f64 / bytes as f64;
    let (threads_pss, mapped_pss) = (times_file(threads.pss_for_text()), times_file(mapped.pss_for_text()));
    let mapped_anonymous = times_file(mapped.anonymous_for_text());
    memory_claim(
        "sharing-keeps-one",
        "threads sharing one buffer, and processes sharing one mmap (copying none of it), hold it at most \
         1.2x over",
        threads_pss <= 1.2 && mapped_pss <= 1.2 && mapped_anonymous <= NO_COPY,
        format!(
            "PSS for text: threads {threads_pss:.2}x, mmap processes {mapped_pss:.2}x the file; their new \
             anonymous memory {mapped_anonymous:.2}x"
        ),
        bytes,
        workers,
    )
}

/// The most anonymous memory, in file sizes, that processes sharing one
/// mapping may gain and still have copied nothing: a few KiB of buffers and
/// stack each.
const NO_COPY: f64 = 0.05;

/// A memory claim, checked, or skipped on a text too small to measure with
/// this many workers.
fn memory_claim(
    id: &str,
    statement: &str,
    holds: bool,
    evidence: String,
    bytes: u64,
    workers: usize,
) -> Claim {
    let needed = MEASURABLE_BYTES.max(workers as u64 * MEASURABLE_PER_WORKER);
    if bytes < needed {
        let (mib, needed) = (bytes as f64 / MIB as f64, needed as f64 / MIB as f64);
        let why = format!(
            "{mib:.2} MiB is too small to tell one copy from two with {workers} workers (it takes {needed:.0} MiB)"
        );
        Claim::skipped(id, statement, why)
    } else {
        Claim::check(id, statement, holds, evidence)
    }
}

// ---------------------------------------------------------------------------
// The reference count, and the text to count.
// ---------------------------------------------------------------------------

/// `LC_ALL=C wc -w` on the same file: a count to agree with and a speed to
/// compare with; `None` where `wc` is not installed. (The lesson counts as
/// GNU wc 9.1 does. Other versions may differ on words made only of control
/// bytes or bytes above 127, which the generated corpus does not have.)
fn wc_words(path: &Path) -> anyhow::Result<Option<(u64, Duration)>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let started = Instant::now();
    let spawned = Command::new("wc").arg("-w").env("LC_ALL", "C").stdin(file).stdout(Stdio::piped()).spawn();
    let child = match spawned {
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
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
    /// The corpus: a file without a name, open for the whole run (see
    /// [`prepare_input`]).
    _corpus: Option<File>,
}

/// The user's `--file`, checked, or a corpus of `--size-mib` written to a
/// temporary file without a name.
fn prepare_input(args: &Args) -> anyhow::Result<Input> {
    if let Some(path) = &args.file {
        let bytes = check_user_file(path)?;
        check_fits_in_memory(bytes, &format!("--file {}", path.display()))?;
        // Read it once, so that every strategy finds it in the page cache.
        io::copy(&mut File::open(path)?, &mut io::sink())
            .with_context(|| format!("reading {}", path.display()))?;
        return Ok(Input { path: path.clone(), bytes, known_words: None, _corpus: None });
    }
    let bytes = args.size_mib.unwrap_or(args.common.pick(128, 8)) * MIB;
    check_fits_in_memory(bytes, "--size-mib")?;
    // The corpus has no name: `tempfile()` creates it unlinked (O_TMPFILE),
    // so no kill, not even SIGKILL, can leave 128 MiB behind; the kernel
    // frees it when the last descriptor closes. The lesson's code takes a
    // path, and `/proc/<pid>/fd/<n>` is one: opening it (the children do,
    // as this process's user) opens this very file, whose pages are then
    // shared as a named file's would be.
    let corpus = tempfile::tempfile().context("creating an unnamed temporary file for the corpus")?;
    let mut out = BufWriter::new(&corpus);
    let seed = args.seed.seed.unwrap_or(DEFAULT_SEED);
    let words = write_corpus(&mut out, bytes, seed).and_then(|words| out.flush().map(|()| words));
    drop(out);
    let words = words.context("writing the corpus")?;
    let path = PathBuf::from(format!("/proc/{}/fd/{}", std::process::id(), corpus.as_raw_fd()));
    Ok(Input { path, bytes, known_words: Some(words), _corpus: Some(corpus) })
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
    use std::io::Write;
    use std::process::{Command, Stdio};
    use std::thread;

    use common::corpus::{SplitMix64, write_corpus};
    use common::measure::{Memory, memory_of_self};
    use common::report::Verdict;

    use super::{
        COPIES, MAPPED, MIB, Sample, Tree, copies_double, counts_agree, sharing_keeps_one, threads_measured,
    };
    use crate::threads_sharing_one_buffer;
    use crate::words::{chunk_bounds, count_words, is_space};

    const SPACES: [u8; 6] = [b' ', b'\t', b'\n', 0x0b, 0x0c, b'\r'];

    /// A random text: words of ASCII letters, control bytes and bytes that
    /// are not UTF-8 (some of none but those, some longer than any chunk),
    /// between runs of mixed whitespace; it may start or end with either, or
    /// be empty.
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
                    (true, 0..=1) => rng.between(0x80, 0xff) as u8,
                    (true, 2..=3) => [0x00, 0x01, 0x07, 0x1b, 0x7f][rng.between(0, 4) as usize],
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

    /// `LC_ALL=C wc -w` on `text`, or `None` where `wc` is not installed.
    fn wc_words(text: &[u8]) -> Option<u64> {
        let spawned = Command::new("wc")
            .arg("-w")
            .env("LC_ALL", "C")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
            other => other.unwrap(),
        };
        child.stdin.take().unwrap().write_all(text).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        Some(String::from_utf8(output.stdout).unwrap().trim().parse().unwrap())
    }

    /// Every kind of byte `wc -w` treats apart: tab, CR LF, \v, \f, NUL,
    /// control bytes (alone, and inside words), invalid UTF-8, UTF-8 that is
    /// not ASCII, DEL, a 5,000-byte word, and no newline at the end.
    fn fixture() -> Vec<u8> {
        let mut text =
            b"tab\tsep\r\nCR LF\x0bvt\x0cff \x00 \x00nul\x00 \x01\x02 ctl\x1b[0m \xff\xfe ".to_vec();
        text.extend(b"\xc3\xa9t\xc3\xa9 caf\xc3\xa9 \x80 a\x80 b \x7f\r\n");
        text.extend(std::iter::repeat_n(b'w', 5000));
        text.extend(b"\tlast\x01");
        text
    }

    #[test]
    fn counting_follows_the_wc_rule() {
        assert_eq!(count_words(b""), 0);
        assert_eq!(count_words(b" \t\n\x0b\x0c\r"), 0);
        assert_eq!(count_words(b"word"), 1);
        assert_eq!(count_words(b"  two\r\n\twords"), 2);
        // Control bytes, NUL and bytes of 128 and up neither start nor end a word.
        assert_eq!(count_words(b"\x01\x02"), 0);
        assert_eq!(count_words(b"a\x01b"), 1);
        assert_eq!(count_words(b"\x01 a"), 1);
        assert_eq!(count_words(b"\x80"), 0);
        assert_eq!(count_words(b"a\x80 b"), 2);
        assert_eq!(count_words(b"caf\xc3\xa9 \xff\xfe \x01 \x00x"), 2);
        // tab, sep, CR, LF, vt, ff, nul, ctl, t\xc3\xa9t\xc3\xa9, caf\xc3\xa9, a, b, www..., last.
        assert_eq!(count_words(&fixture()), 14);
    }

    #[test]
    fn counting_agrees_with_wc() {
        let mut rng = SplitMix64::new(3);
        let mut texts = vec![fixture()];
        texts.extend((0..40).map(|_| random_text(&mut rng)));
        for text in &texts {
            let Some(wc) = wc_words(text) else {
                println!("wc is not installed: count_words is not compared with it");
                return;
            };
            assert_eq!(count_words(text), wc, "{text:?}");
            for chunks in [1, 2, 3, 7, 16] {
                check_chunked(text, chunks);
            }
        }
    }

    #[test]
    fn chunked_counts_match_one_thread_on_random_texts() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..300 {
            let text = random_text(&mut rng);
            // The lesson's count agrees with a second, independent way of
            // counting: split at the six whitespace bytes, keep the pieces
            // that hold a printable byte.
            let split =
                text.split(|b| is_space(*b)).filter(|piece| piece.iter().any(u8::is_ascii_graphic)).count();
            assert_eq!(count_words(&text), split as u64);
            for chunks in 1..=16 {
                check_chunked(&text, chunks);
            }
        }
    }

    #[test]
    fn chunked_counts_match_on_the_edge_cases() {
        let long_word = [b'x'; 100];
        let fixture = fixture();
        let cases: [&[u8]; 8] = [
            b"",
            b"   \n\t  ",
            &long_word,
            b"one word longer than any chunk: pneumonoultramicroscopicsilicovolcanoconiosis",
            b"no trailing newline",
            b"\t\x0b mixed \r\n\x0c runs \n\n of  whitespace \r",
            b"\xff\xfe not \xc3\x28 utf-8 \x80",
            &fixture,
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
                assert_eq!(threads_sharing_one_buffer(&text, workers, &|| {}), count_words(&text));
            }
        }
    }

    #[test]
    fn counts_agree_fails_when_one_count_is_off_by_one() {
        let counts = [("one thread", 100), ("threads, one buffer", 100), (COPIES, 100), (MAPPED, 100)];
        assert_eq!(counts_agree(&counts, Some(100), Some(100)).verdict, Verdict::Holds);
        assert_eq!(counts_agree(&counts, None, None).verdict, Verdict::Holds);
        let mut off = counts;
        off[2].1 = 101;
        assert_eq!(counts_agree(&off, Some(100), Some(100)).verdict, Verdict::DoesNotHold);
        assert_eq!(counts_agree(&counts, Some(99), Some(100)).verdict, Verdict::DoesNotHold);
        assert_eq!(counts_agree(&counts, Some(100), Some(101)).verdict, Verdict::DoesNotHold);
    }

    /// A process's memory, from the four numbers a child reports: RSS, PSS,
    /// private and anonymous bytes.
    fn memory([rss_bytes, pss_bytes, private_bytes, anonymous_bytes]: [u64; 4]) -> Memory {
        Memory { rss_bytes, pss_bytes, private_bytes, anonymous_bytes }
    }

    fn sample(before: [u64; 4], peak: [u64; 4]) -> Sample {
        Sample { before: memory(before), peak: memory(peak) }
    }

    /// The size of the text of `copying()` and `mapping()`.
    const BYTES: u64 = 128 * MIB;

    /// Strategy 3's tree as a real release run measured it (128 MiB of
    /// text, 2 workers): each child gained its 64 MiB chunk of anonymous
    /// memory, the parent held the 128 MiB text.
    fn copying() -> Tree {
        Tree {
            parent: sample([3092480, 1013760, 1441792, 221184], [137539584, 135240704, 134832128, 134471680]),
            children: vec![
                (
                    67108866,
                    sample([2473984, 534528, 155648, 155648], [69591040, 67641344, 67272704, 67272704]),
                ),
                (
                    67108862,
                    sample([2600960, 526336, 155648, 155648], [69718016, 67643392, 67272704, 67272704]),
                ),
            ],
        }
    }

    /// Strategy 4's tree in the same run: the children's PSS grew by their
    /// chunk, and so did their private memory (file pages only one process
    /// maps are private), but not their anonymous memory; the parent held
    /// no text.
    fn mapping() -> Tree {
        Tree {
            parent: sample([3092480, 996352, 593920, 221184], [3092480, 899072, 466944, 221184]),
            children: vec![
                (67108866, sample([2490368, 549888, 151552, 151552], [69734400, 67694592, 67264512, 155648])),
                (67108862, sample([2486272, 529408, 151552, 151552], [69664768, 67631104, 67198976, 155648])),
            ],
        }
    }

    #[test]
    fn copies_double_fails_when_the_children_map_instead() {
        assert_eq!(copies_double(&copying(), BYTES, 2).verdict, Verdict::Holds);
        // The children that mapped the file, measured as if they had copied:
        // with the parent's copy, the tree still held the text about twice
        // in PSS, but no child copied anything.
        let mapped_children = Tree { parent: copying().parent, children: mapping().children };
        let claim = copies_double(&mapped_children, BYTES, 2);
        assert!(claim.evidence.contains("copied 0.0 MiB"), "{}", claim.evidence);
        assert_eq!(claim.verdict, Verdict::DoesNotHold);
        // Children that copied, from a parent that no longer held the text.
        let parent_let_go = Tree { parent: mapping().parent, children: copying().children };
        assert_eq!(copies_double(&parent_let_go, BYTES, 2).verdict, Verdict::DoesNotHold);
        // Too small a text to measure: skipped, not decided.
        assert_eq!(copies_double(&copying(), MIB, 2).verdict, Verdict::Skipped);
        assert_eq!(copies_double(&copying(), BYTES, 1000).verdict, Verdict::Skipped);
    }

    /// The phenomenon removed: strategy 2, except that each thread copies its
    /// chunk and holds the copy at the checkpoint.
    fn threads_copying_their_chunks(text: &[u8], workers: usize, checkpoint: &(impl Fn() + Sync)) -> u64 {
        thread::scope(|scope| {
            let counters: Vec<_> = chunk_bounds(text, workers)
                .into_iter()
                .map(|range| {
                    scope.spawn(move || {
                        let chunk = text[range].to_vec();
                        let words = count_words(&chunk);
                        checkpoint();
                        words
                    })
                })
                .collect();
            counters.into_iter().map(|counter| counter.join().unwrap()).sum()
        })
    }

    #[test]
    fn sharing_keeps_one_fails_when_the_threads_copy_or_the_children_do() {
        // Real threads in this process, measured by the lab's checkpoint.
        // (Other tests run beside this one, but allocate KiB, not MiB.)
        let bytes = 32 * MIB;
        let parent_before = memory_of_self().unwrap();
        let mut text = Vec::with_capacity(bytes as usize + 4096);
        let words = write_corpus(&mut text, bytes, 1).unwrap();
        let workers = 3;
        // The mapping side here gained nothing; it is tested below.
        let mapped = Tree { parent: mapping().parent, children: vec![] };
        let shared = threads_measured(workers, &parent_before, |checkpoint| {
            threads_sharing_one_buffer(&text, workers, &checkpoint)
        })
        .unwrap();
        assert_eq!(shared.words, words);
        let claim = sharing_keeps_one(&shared.tree, &mapped, bytes, workers);
        assert_eq!(claim.verdict, Verdict::Holds, "{}", claim.evidence);
        let copied = threads_measured(workers, &parent_before, |checkpoint| {
            threads_copying_their_chunks(&text, workers, &checkpoint)
        })
        .unwrap();
        assert_eq!(copied.words, words);
        let claim = sharing_keeps_one(&copied.tree, &mapped, bytes, workers);
        assert_eq!(claim.verdict, Verdict::DoesNotHold, "{}", claim.evidence);
        // Children that copied their chunks, measured as if they had mapped
        // the file.
        let threads = Tree { parent: copying().parent, children: vec![] };
        assert_eq!(sharing_keeps_one(&threads, &mapping(), BYTES, 2).verdict, Verdict::Holds);
        let copying_children = Tree { parent: mapping().parent, children: copying().children };
        assert_eq!(sharing_keeps_one(&threads, &copying_children, BYTES, 2).verdict, Verdict::DoesNotHold);
        assert_eq!(sharing_keeps_one(&threads, &copying_children, MIB, 2).verdict, Verdict::Skipped);
    }
}

/// The `main` that `cargo xtask eject` gives the standalone crate. It starts
/// this executable again as its counting children, and inside `cargo test`
/// this executable is the test harness, so it is not run here: `.ci/run`
/// ejects the lesson and runs this `main` for real. The include still
/// type-checks it with the lab's tests.
#[cfg(test)]
#[allow(dead_code)]
mod standalone {
    use crate::*;
    include!("standalone.rs");
}
