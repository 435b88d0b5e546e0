//! The experiment around the lesson: the text to count (a generated corpus
//! in a temporary directory, or the user's file, checked), each strategy
//! timed, the memory of its whole process tree measured at the peak (the
//! parent directly, the children through the lesson's checkpoints), `wc -w`
//! as a reference, the two tables and the claims.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use common::cleanup::TempDir;
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
    match &args.file {
        Some(path) => report.param("file", path.display().to_string()),
        None => report.param("seed", args.seed.seed.unwrap_or(DEFAULT_SEED)),
    };
    let size_mib = (input.bytes as f64 / MIB as f64 * 100.0).round() / 100.0;
    report.param("size_mib", size_mib).param("workers", workers);

    // The mmap strategy runs first, while the parent has never held the
    // text: a freed buffer of a few MiB may stay with the allocator, and in
    // the parent's PSS, which would blur this strategy's totals.
    let mapped = mapped_measured(&input.path, workers)?;
    // Strategies 1 to 3 start, like the notes' `word_count(text, n)`, from
    // the whole text in the parent's memory, read once. The parent measures
    // itself first, to tell what the text adds from what it costs anyway.
    let parent_before = memory_of_self()?;
    let text = std::fs::read(&input.path).with_context(|| format!("reading {}", input.path.display()))?;
    let one = in_parent(|| crate::one_thread(&text), &parent_before)?;
    let threads = in_parent(|| crate::threads_sharing_one_buffer(&text, workers), &parent_before)?;
    let copies = copies_measured(&text, workers, &parent_before)?;
    drop(text);
    let wc = wc_words(&input.path)?;

    let outcomes = [(ONE_THREAD, one), (THREADS, threads), (COPIES, copies), (MAPPED, mapped)];
    tabulate(&mut report, &outcomes, wc, input.bytes);
    report.claim(counts_agree(&outcomes, wc, input.known_words));
    report.claim(copies_double(&outcomes, input.bytes));
    report.claim(sharing_keeps_one(&outcomes, input.bytes));
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
/// baselines are taken matters: see `wait_until_ready`.)
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

/// Strategies 1 and 2: `count` timed, then the parent measured while the
/// caller still holds the text.
fn in_parent(count: impl FnOnce() -> u64, parent_before: &Memory) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let words = count();
    let elapsed = started.elapsed();
    let peak = memory_of_self()?;
    let mut tree = Tree::default();
    tree.add(parent_before.pss_bytes, peak.pss_bytes, peak.rss_bytes);
    Ok(Outcome { words, elapsed, tree })
}

/// The checkpoint the lesson's process strategies call: the parent's half of
/// the measuring.
type ParentCheckpoint<'a> = dyn FnMut(&str, &mut [CountingChild]) -> io::Result<()> + 'a;

/// Strategy 3, measured. The parent measures itself alone first: starting
/// the children (this same executable) shrinks its share of the binary's
/// pages, and its baseline moves down by as much, to have the same sharers
/// as its peak (see `wait_until_ready`).
fn copies_measured(text: &[u8], workers: usize, parent_before: &Memory) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let alone = memory_of_self()?;
    let baseline = || -> anyhow::Result<u64> {
        let shrink = alone.pss_bytes.saturating_sub(memory_of_self()?.pss_bytes);
        Ok(parent_before.pss_bytes.saturating_sub(shrink))
    };
    measured(started, baseline, |checkpoint| crate::processes_with_copied_chunks(text, workers, checkpoint))
        .context(COPIES)
}

/// Strategy 4, measured: the parent's baseline is taken once its children
/// run, before it maps the file.
fn mapped_measured(path: &Path, workers: usize) -> anyhow::Result<Outcome> {
    let baseline = || Ok(memory_of_self()?.pss_bytes);
    measured(Instant::now(), baseline, |checkpoint| {
        crate::processes_sharing_one_mmap(path, workers, checkpoint)
    })
    .context(MAPPED)
}

/// Runs a process strategy with the parent's measuring at its checkpoints:
/// at "started", waits until every child is ready and takes the parent's
/// `baseline`; at "counted", stops the clock and measures the tree.
fn measured(
    started: Instant,
    baseline: impl FnOnce() -> anyhow::Result<u64>,
    strategy: impl FnOnce(&mut ParentCheckpoint) -> io::Result<u64>,
) -> anyhow::Result<Outcome> {
    let mut baseline = Some(baseline);
    let (mut parent_before, mut measured) = (0, None);
    let words = strategy(&mut |stage, children| {
        match stage {
            "started" => {
                wait_until_ready(children)?;
                let baseline = baseline.take().expect("one \"started\" checkpoint");
                parent_before = baseline().map_err(io_error)?;
            }
            "counted" => measured = Some((started.elapsed(), measure_tree(children, parent_before)?)),
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
fn measure_tree(children: &mut [CountingChild], parent_pss_before: u64) -> io::Result<Tree> {
    for child in children.iter_mut() {
        writeln!(child.stdin(), "measure")?;
    }
    let mut tree = Tree::default();
    for child in children.iter_mut() {
        let line = child.read_line()?;
        let numbers: Vec<u64> = line.split_whitespace().filter_map(|n| n.parse().ok()).collect();
        let [pss_before, pss_peak, rss_peak] = numbers[..] else {
            return Err(io::Error::other(format!("a counting child reported {line:?}, not its memory")));
        };
        tree.add(pss_before, pss_peak, rss_peak);
    }
    let parent_peak = memory_of_self().map_err(io_error)?;
    tree.add(parent_pss_before, parent_peak.pss_bytes, parent_peak.rss_bytes);
    Ok(tree)
}

/// A counting child's half of the measuring, at the lesson's checkpoints:
/// at "started", say `ready`; at "job", measure the baseline; at "counted",
/// wait for `measure`, report `pss_before pss_peak rss_peak`, and hold the
/// text until the parent closes stdin.
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
                writeln!(stdout, "{} {} {}", before.pss_bytes, peak.pss_bytes, peak.rss_bytes)?;
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

/// The strategies agree with each other, with `wc -w` (where installed) and
/// with the generator's own count (for a generated corpus).
fn counts_agree(outcomes: &[(&str, Outcome)], wc: Option<(u64, Duration)>, known: Option<u64>) -> Claim {
    let mut counts: Vec<(&str, u64)> =
        outcomes.iter().map(|(name, outcome)| (*name, outcome.words)).collect();
    counts.extend(wc.map(|(words, _)| (WC, words)));
    counts.extend(known.map(|words| ("generator", words)));
    let listed: Vec<String> = counts.iter().map(|(name, words)| format!("{name}: {words}")).collect();
    Claim::check(
        "counts-agree",
        "the strategies agree with each other, with wc -w, and with the generator's own count",
        counts.iter().all(|&(_, words)| words == counts[0].1),
        listed.join(", ") + if wc.is_none() { " (wc is not installed)" } else { "" },
    )
}

/// Processes sent a copy of their chunk hold the text about twice.
fn copies_double(outcomes: &[(&str, Outcome)], bytes: u64) -> Claim {
    let copies = times_file(outcomes, COPIES, bytes);
    memory_claim(
        "copies-double",
        "processes sent a copy of their chunk hold the text at least 1.8x over",
        copies >= 1.8,
        format!("PSS for text: {copies:.2}x the file's size"),
        bytes,
    )
}

/// Threads sharing one buffer, and processes sharing one mapping, hold it once.
fn sharing_keeps_one(outcomes: &[(&str, Outcome)], bytes: u64) -> Claim {
    let (threads, mapped) = (times_file(outcomes, THREADS, bytes), times_file(outcomes, MAPPED, bytes));
    memory_claim(
        "sharing-keeps-one",
        "threads sharing one buffer, and processes sharing one mmap, hold it at most 1.2x over",
        threads <= 1.2 && mapped <= 1.2,
        format!("PSS for text: threads {threads:.2}x, mmap processes {mapped:.2}x the file's size"),
        bytes,
    )
}

/// What the text added to the tree of strategy `wanted`, in file sizes.
fn times_file(outcomes: &[(&str, Outcome)], wanted: &str, bytes: u64) -> f64 {
    let (_, outcome) = outcomes.iter().find(|(name, _)| *name == wanted).expect("every strategy ran");
    outcome.tree.pss_for_text as f64 / bytes as f64
}

/// A memory claim, checked, or skipped on a text too small to measure.
fn memory_claim(id: &str, statement: &str, holds: bool, evidence: String, bytes: u64) -> Claim {
    if bytes < MEASURABLE_BYTES {
        let mib = bytes as f64 / MIB as f64;
        Claim::skipped(id, statement, format!("{mib:.2} MiB is too small to tell one copy from two"))
    } else {
        Claim::check(id, statement, holds, evidence)
    }
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
        io::copy(&mut File::open(path)?, &mut io::sink())
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
    use common::corpus::SplitMix64;

    use crate::{chunk_bounds, count_words, is_space, threads_sharing_one_buffer};

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
                assert_eq!(threads_sharing_one_buffer(&text, workers), count_words(&text));
            }
        }
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
