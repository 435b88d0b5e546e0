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
//! map the same file with memmap2 and count their own range. The lab
//! (src/lab.rs) times each way and measures the memory of its whole process
//! tree at the peak, while every thread or child holds its text: the PSS of
//! the parent and every child, summed (the sum of RSS beside it counts
//! shared pages once per process), what the text added to that, and what it
//! added to their anonymous memory (a copy is anonymous, a mapped file is
//! not). It hooks into the threads and the children through the
//! `checkpoint`s below. `LC_ALL=C wc -w` counts the same file, as a
//! reference, and the lesson counts words as it does, byte by byte.
//!
//! Run:
//!
//! ```text
//! cargo run -p mmap-workaround
//! cargo run --release -p mmap-workaround -- --size-mib 512 --workers 4
//! cargo run --release -p mmap-workaround -- --file big.txt
//! ```
//!
//! A run on 2 cores (release), beside other work:
//!
//! ```text
//! mmap-workaround: processes that copy their chunk use about twice the memory;
//!   threads and a shared mmap use about one copy
//! host    cores=2 os=linux profile=release
//! params  seed=16 size_mib=128.0 workers=2
//!
//! experiment                   words  time  speed  vs wc -w
//!                              words    ms   MB/s         x
//! one thread                17894560   235    571      4.26
//! threads, one buffer       17894560   231    580      4.33
//! processes, copied chunks  17894560   348    385      2.87
//! processes, one mmap       17894560   308    436      3.26
//! wc -w                     17894560  1002    134         -
//!
//! memory of the process tree at its peak: the parent and its children, summed
//! experiment                PSS for text  x file  anon for text  PSS  RSS
//!                                    MiB       x            MiB  MiB  MiB
//! one thread                         128    1.00            128  130  131
//! threads, one buffer                128    1.00            128  130  131
//! processes, copied chunks           256    2.00            256  258  264
//! processes, one mmap                128   1.000          0.008  130  136
//!
//! time: threads count the text already in memory; processes include their start
//!   and the sending of the chunks, or the mapping; wc -w reads the file.
//! PSS for text: each process's PSS at the peak (every thread or child holding its
//!   text) minus its PSS before it touched the text, summed. anon for text: the
//!   same for anonymous memory, the pages no file backs: a copy is anonymous, a
//!   mapped file is not. PSS and RSS: the plain sums. RSS counts a shared page (the
//!   binary, the libraries) in full in every process that maps it; PSS divides it
//!   among them.
//!
//! ✔ counts-agree  the strategies agree with each other, with wc -w, and with the
//!   generator's own count: one thread: 17894560, threads, one buffer: 17894560,
//!   processes, copied chunks: 17894560, processes, one mmap: 17894560, wc -w:
//!   17894560, generator: 17894560
//! ✔ copies-double  processes sent a copy of their chunk hold the text twice, each
//!   child its chunk in new memory beside the parent's whole text: new anonymous
//!   memory: chunk 64.0 MiB, copied 64.0 MiB; chunk 64.0 MiB, copied 64.0 MiB; the
//!   parent 1.00x the text. PSS for text 2.00x the file
//! ✔ sharing-keeps-one  threads sharing one buffer, and processes sharing one mmap
//!   (copying none of it), hold it at most 1.2x over: PSS for text: threads 1.00x,
//!   mmap processes 1.00x the file; their new anonymous memory 0.00x
//!
//! elapsed 2.29 s
//! ```
//!
//! The times, the speeds and the RSS vary with the machine and its load
//! (here other programs held the cores, so two threads were no faster than
//! one); the counts do not, and the PSS figures move by a fraction of a MiB.
//!
//! See also: `fork-vs-spawn` (what a child inherits, and copy-on-write),
//! `cpu-bound` (when threads, not processes, are the answer).

// tidy: longer than 300 lines because the sample output (43 lines) shows both
// tables, their notes and the three claims, and the process strategies are
// taught whole: the children they start, the pipes they talk through, and the
// child's main.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::ops::Range;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread;

use memmap2::Mmap;

// Counting words, and cutting a text into chunks that count apart.

/// The bytes that separate words: ASCII whitespace, as in `LC_ALL=C wc -w`.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The words in `bytes`, as GNU `wc -w` (9.1) counts them in the C locale: a
/// whitespace byte ends a word; a printable one (`!` to `~`) starts one,
/// unless a word is already open; every other byte (control bytes, NUL,
/// bytes of 128 and up, so any UTF-8 that is not ASCII) does neither. So
/// `a\x01b` is one word, and `\x01\x02` none.
fn count_words(bytes: &[u8]) -> u64 {
    let mut words = 0;
    let mut in_word = false;
    for &byte in bytes {
        if is_space(byte) {
            in_word = false;
        } else if byte.is_ascii_graphic() {
            words += u64::from(!in_word);
            in_word = true;
        }
    }
    words
}

/// Cuts `text` into `chunks` ranges of about equal length that cover it, in order.
///
/// Why the cuts move: a cut inside a word would let each side count its
/// half, one word twice. So each cut moves forward to the next whitespace
/// byte, which keeps the word before it whole in one chunk. A count that
/// starts there is right: after a whitespace byte no word is open, whatever
/// came before it, which is exactly how `count_words` starts. A word longer
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

// Strategies 1 and 2: one process, one copy of the text.

/// Strategy 1, the baseline: one thread counts the text.
///
/// `checkpoint` is where the lab measures memory while the text is held; the
/// standalone lesson passes one that does nothing.
fn one_thread(text: &[u8], checkpoint: &(impl Fn() + Sync)) -> u64 {
    let words = count_words(text);
    checkpoint();
    words
}

/// Strategy 2: `workers` threads count the one buffer, a chunk each.
///
/// Threads live in their parent's address space, so `&text[range]` is all
/// a thread needs: no byte is copied, and the text is in memory once. The
/// scope proves to the compiler that every thread ends before `text` can go.
fn threads_sharing_one_buffer(text: &[u8], workers: usize, checkpoint: &(impl Fn() + Sync)) -> u64 {
    thread::scope(|scope| {
        let counters: Vec<_> = chunk_bounds(text, workers)
            .into_iter()
            .map(|range| {
                scope.spawn(move || {
                    let words = count_words(&text[range]);
                    // The lab measures memory here, while every thread holds its text.
                    checkpoint();
                    words
                })
            })
            .collect();
        counters.into_iter().map(|counter| counter.join().expect("counting does not panic")).sum()
    })
}

// Strategies 3 and 4: child processes.
//
// Each child is this executable started again as `--child-role ROLE ...`
// (Python's 'spawn'), with its stdin and stdout pipes to the parent: its job
// goes down the one, its count comes back up the other.
//
// Where the lab hooks in: the parent's strategies call `checkpoint("started",
// children)` once every child runs and none has its job, and
// `checkpoint("counted", children)` once every count is in and every child
// still holds its text; each child calls a `checkpoint` of its own as it
// starts, with its job in hand, and with its count out (see `child_main`).
// The lab measures time and memory there; the standalone lesson passes
// checkpoints that do nothing.

/// A counting child, and the parent's ends of its pipes.
struct CountingChild {
    /// Its stdin, which takes the job, is `process.stdin`.
    process: Child,
    from_child: BufReader<ChildStdout>,
}

impl CountingChild {
    /// Starts this executable again as `--child-role ROLE ROLE_ARGS...`.
    fn start(role: &str, role_args: &[&OsStr]) -> io::Result<CountingChild> {
        let mut process = Command::new(std::env::current_exe()?)
            .arg("--child-role")
            .arg(role)
            .args(role_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let from_child = BufReader::new(process.stdout.take().expect("stdout is piped"));
        Ok(CountingChild { process, from_child })
    }

    fn stdin(&mut self) -> &mut ChildStdin {
        self.process.stdin.as_mut().expect("stdin is piped")
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.from_child.read_line(&mut line)? == 0 {
            let message = "a counting child ended early (its error, if it had one, is above)";
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, message));
        }
        Ok(line.trim_end().to_string())
    }
}

/// Dropping a `std::process::Child` neither kills nor reaps it. A parent that
/// gives up halfway (an error, a child that ended early) drops its children
/// here: killed and reaped, none left running or a zombie.
impl Drop for CountingChild {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Starts `workers` children in `role`.
fn start_children(role: &str, role_args: &[&OsStr], workers: usize) -> io::Result<Vec<CountingChild>> {
    (0..workers).map(|_| CountingChild::start(role, role_args)).collect()
}

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
    mut checkpoint: impl FnMut(&str, &mut [CountingChild]) -> io::Result<()>,
) -> io::Result<u64> {
    let mut children = start_children("count-copy", &[], workers)?;
    checkpoint("started", &mut children)?;
    for (child, range) in children.iter_mut().zip(chunk_bounds(text, workers)) {
        // The job: the chunk's length on a line, then its bytes.
        writeln!(child.stdin(), "{}", range.len())?;
        child.stdin().write_all(&text[range])?;
    }
    add_up_counts(children, checkpoint)
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
fn processes_sharing_one_mmap(
    path: &Path,
    workers: usize,
    mut checkpoint: impl FnMut(&str, &mut [CountingChild]) -> io::Result<()>,
) -> io::Result<u64> {
    let mut children = start_children("count-mapped", &[path.as_os_str()], workers)?;
    checkpoint("started", &mut children)?;
    // The parent maps the file only to move the cuts to whitespace, which
    // reads a page or two near each cut; the mapping is gone before any
    // child counts, so the parent holds no text.
    let ranges = chunk_bounds(&map_file(path)?, workers);
    for (child, range) in children.iter_mut().zip(ranges) {
        // The job: the range of the file to count.
        writeln!(child.stdin(), "{} {}", range.start, range.end)?;
    }
    add_up_counts(children, checkpoint)
}

/// Maps the file at `path`, read-only, into this process's memory.
fn map_file(path: &Path) -> io::Result<Mmap> {
    let file = File::open(path)?;
    // Safety: mapping a file is unsafe because its bytes change if anyone
    // writes the file while it is mapped (and reading past the end of a file
    // truncated under it kills the process with SIGBUS), whereas a `&[u8]`
    // promises bytes that do not change. Nobody does here: the lesson writes
    // its corpus before mapping it, in a temporary directory of its own, and
    // maps it read-only; a `--file` is the user's, and `--help` asks them to
    // leave it alone while the lesson runs.
    unsafe { Mmap::map(&file) }
}

/// The end of both process strategies: each child's count, summed. Then
/// each child is reaped: `wait` closes its stdin first, and the end of its
/// input tells it to let go of its text and exit.
fn add_up_counts(
    mut children: Vec<CountingChild>,
    mut checkpoint: impl FnMut(&str, &mut [CountingChild]) -> io::Result<()>,
) -> io::Result<u64> {
    let mut words = 0;
    for child in &mut children {
        let line = child.read_line()?;
        let message = format!("a counting child reported {line:?}, not a count");
        words += line.parse::<u64>().map_err(|_| io::Error::new(io::ErrorKind::InvalidData, message))?;
    }
    checkpoint("counted", &mut children)?;
    for mut child in children {
        let status = child.process.wait()?;
        if !status.success() {
            return Err(io::Error::other(format!("a counting child failed: {status}")));
        }
    }
    Ok(words)
}

/// A counting child's `main`: `--child-role count-copy`, or `count-mapped
/// PATH`. It reads its job from stdin, gets its text (a copy down stdin, or
/// a mapping of the file), counts it, and writes the count to stdout.
///
/// `checkpoint` is where the lab measures this process: "started" before the
/// job is read, "job" with the job in hand and the text not yet touched,
/// "counted" once the count is out and while the text is still held. (It
/// may read stdin and write stdout itself: nothing here holds their locks
/// across it.)
fn child_main(
    role: &str,
    role_args: &[String],
    mut checkpoint: impl FnMut(&str) -> io::Result<()>,
) -> io::Result<()> {
    let mut stdin = io::stdin();
    checkpoint("started")?;
    let mut job = String::new();
    stdin.read_line(&mut job)?;
    let job: Vec<usize> = job.split_whitespace().filter_map(|n| n.parse().ok()).collect();
    checkpoint("job")?;
    let mut report = |words: u64| -> io::Result<()> {
        let mut stdout = io::stdout();
        writeln!(stdout, "{words}")?;
        stdout.flush()?;
        checkpoint("counted")
    };
    match (role, role_args, &job[..]) {
        ("count-copy", [], &[length]) => {
            // This `Vec` is the copy: fresh pages, filled from the pipe, this
            // process's alone. It lives to the end of this arm, past the report.
            let mut chunk = vec![0; length];
            stdin.read_exact(&mut chunk)?;
            report(count_words(&chunk))
        }
        ("count-mapped", [path], &[start, end]) => {
            let map = map_file(Path::new(path))?;
            if start > end || end > map.len() {
                let message = format!("{start}..{end} is outside {path}");
                return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
            }
            report(count_words(&map[start..end]))
        }
        _ => {
            let message = format!("role {role} {role_args:?} cannot do the job {job:?}");
            Err(io::Error::new(io::ErrorKind::InvalidInput, message))
        }
    }
}

mod lab;

fn main() -> std::process::ExitCode {
    lab::main()
}
