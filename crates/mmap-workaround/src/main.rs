//! Processes that copy their chunk of a text use about twice its memory;
//! threads sharing one buffer, and processes sharing one memory-mapped file,
//! use about one copy.
//!
//! The Python notes count the words of a text with one `multiprocessing`
//! process per chunk, and point out the cost: each process receives its
//! chunk as a pickled copy, so 8 GB of text needs 16 GB of memory. They name
//! memory-mapped files as the workaround, and threads, which share their
//! process's memory. This lesson counts one text (a generated corpus, or
//! your file) with P workers four ways: one thread; P threads sharing one
//! buffer; P child processes each sent a copy of its chunk through a pipe;
//! P child processes that each map the same file with memmap2. The lab
//! (src/lab.rs), through the `checkpoint`s below, times each way and
//! measures the process tree's memory while every worker holds its text
//! (PSS, and anonymous memory: a copy is anonymous, a mapped file is not),
//! with `LC_ALL=C wc -w` as the reference count.
//!
//! Run:
//!
//! ```text
//! cargo run -p mmap-workaround
//! cargo run --release -p mmap-workaround -- --file big.txt --workers 4
//! ```
//!
//! A run on 2 cores (release), without the notes it prints under the tables:
//!
//! ```text
//! mmap-workaround: processes that copy their chunk use about twice the memory;
//!   threads and a shared mmap use about one copy
//! host    2 cores AMD EPYC, 23.5 GiB, linux 6.18.44, vm in docker, release
//! params  seed=16 size_mib=128 workers=2
//!
//! experiment                   words  time  speed  vs wc -w
//!                              words    ms   MB/s         x
//! one thread                17894560   248    542      3.94
//! threads, one buffer       17894560   122   1096      7.97
//! processes, copied chunks  17894560   338    397      2.88
//! processes, one mmap       17894560   160    837      6.08
//! wc -w                     17894560   975    138         -
//!
//! memory of the process tree at its peak: the parent and its children, summed
//! experiment                PSS for text  x file  anon for text  PSS  RSS
//!                                    MiB       x            MiB  MiB  MiB
//! one thread                         128    1.00            128  130  131
//! threads, one buffer                128    1.00            128  130  131
//! processes, copied chunks           256    2.00            256  259  264
//! processes, one mmap                128   1.000          0.008  130  136
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
//! elapsed 1.99 s
//! ```
//!
//! The times, the speeds and the RSS vary with the machine and its load; the
//! counts do not, and the PSS figures move by a fraction of a MiB.
//!
//! See also: `fork-vs-spawn` (what a child inherits, and copy-on-write),
//! `cpu-bound` (when threads, not processes, are the answer).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread;

use memmap2::Mmap;

// The work itself, counting words and cutting the text into chunks that
// count apart, is in src/words.rs; everything here is how it is shared out.
mod words;
use words::{chunk_bounds, count_words};

// Strategies 1 and 2: one process, one copy of the text.

/// Strategy 1, the baseline: one thread counts the text. (Each `checkpoint`
/// is where the lab measures; the standalone lesson's do nothing.)
fn one_thread(text: &[u8], checkpoint: &(impl Fn() + Sync)) -> u64 {
    let words = count_words(text);
    checkpoint();
    words
}

/// Strategy 2: `workers` threads count the one buffer, a chunk each.
///
/// Threads share their process's memory, so `&text[range]` is all a thread
/// needs: nothing is copied. The scope proves each ends before `text` goes.
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
// (Python's 'spawn'): its job goes down its stdin, its count comes back up
// its stdout. The parent calls `checkpoint("started")` once every child runs
// and `checkpoint("counted")` once every count is in, the text still held.

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
        match self.from_child.read_line(&mut line)? {
            0 => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "a counting child ended early")),
            _ => Ok(line.trim_end().to_string()),
        }
    }
}

/// Dropping a `std::process::Child` neither kills nor reaps it: a parent
/// that gives up halfway drops its children here, killed and reaped.
impl Drop for CountingChild {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Strategy 3: one child process per chunk, sent a copy of its chunk.
///
/// Python's `Process(target=count, args=(chunk,))` pickles the chunk into a
/// pipe and the child rebuilds its own copy: two address spaces share no
/// string. Bytes need no pickling, but the copy is the same, into the
/// child's own `Vec`, while the parent still holds the text: twice at the peak.
fn processes_with_copied_chunks(
    text: &[u8],
    workers: usize,
    mut checkpoint: impl FnMut(&str, &mut [CountingChild]) -> io::Result<()>,
) -> io::Result<u64> {
    let mut children =
        (0..workers).map(|_| CountingChild::start("count-copy", &[])).collect::<io::Result<Vec<_>>>()?;
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
/// A file-backed mapping makes the kernel's cached pages of the file part of
/// the process's memory: every process that maps it reads the same physical
/// pages, so the text is in memory once. (memmap2's `map_anon` would not do:
/// it is private, copied page by page once written, and a spawned child
/// cannot see it.)
fn processes_sharing_one_mmap(
    path: &Path,
    workers: usize,
    mut checkpoint: impl FnMut(&str, &mut [CountingChild]) -> io::Result<()>,
) -> io::Result<u64> {
    let role_args = [path.as_os_str()];
    let mut children = (0..workers)
        .map(|_| CountingChild::start("count-mapped", &role_args))
        .collect::<io::Result<Vec<_>>>()?;
    checkpoint("started", &mut children)?;
    // The parent maps the file only to move the cuts (a page or two each);
    // the mapping is gone before any child counts.
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
    // Safety: a `&[u8]` promises bytes that do not change, and a mapped file
    // changes if anyone writes it (truncated, reading past its end is a
    // SIGBUS). Nobody does: the corpus is written before it is mapped, in the
    // lab's own temp dir, and `--help` asks the owner of a `--file` to wait.
    unsafe { Mmap::map(&file) }
}

/// Each child's count, summed; then each is reaped (`wait` closes its stdin
/// first, and the end of its input tells it to let go of its text and exit).
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

/// A counting child's `main` (`--child-role count-copy`, or `count-mapped
/// PATH`): it reads its job, gets its text (a copy down stdin, or a mapping),
/// counts it and writes the count. The lab measures it at each `checkpoint`:
/// "started", "job" (text not yet touched), "counted" (text still held).
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
            // This `Vec` is the copy: fresh pages, this process's alone, held
            // to the end of this arm, past the report.
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
