//! Measuring: wall time, medians over repeats, and process memory.
//!
//! Timings are wall-clock (`Instant`), because what a learner waits for is
//! wall time, and a lesson's timing claims are ratios of two such figures taken
//! in the same run. Medians rather than means: one trial that the scheduler
//! interrupted should not move the figure.
//!
//! Memory comes from `/proc/<pid>/smaps_rollup` (Linux). RSS counts every page
//! a process has resident, so pages shared by several processes are counted
//! once in each of them; PSS divides each shared page among the processes that
//! share it, so the PSS of a process tree adds up to what it really uses.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The number of threads the machine can run at once, as the standard library
/// sees it (cores, limited by the CPU affinity mask and cgroup quota); 1 if unknown.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `work` once and returns its result with the wall time it took.
pub fn time<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = work();
    (value, start.elapsed())
}

/// The median of `values` (the mean of the two middle ones for an even count).
///
/// # Panics
/// If `values` is empty or holds a NaN: both are a lesson's bug, not the user's.
pub fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "median of no values");
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).expect("no NaN among measurements"));
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 }
}

/// The median of exact counts, rounded to the nearest count (half up) when
/// the two middle ones differ.
pub fn median_count(values: &[u64]) -> u64 {
    assert!(!values.is_empty(), "median of no values");
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        sorted[mid - 1] + (sorted[mid] - sorted[mid - 1]).div_ceil(2)
    }
}

/// The median of durations, in seconds.
pub fn median_secs(durations: &[Duration]) -> f64 {
    median(&durations.iter().map(Duration::as_secs_f64).collect::<Vec<_>>())
}

/// Nanoseconds per operation: `elapsed` spread over `operations`.
pub fn ns_per(elapsed: Duration, operations: u64) -> f64 {
    elapsed.as_nanos() as f64 / operations.max(1) as f64
}

/// Resident memory of one process, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size: every resident page, shared or not, counted in full.
    pub rss_bytes: u64,
    /// Proportional set size: each shared page divided among its sharers.
    pub pss_bytes: u64,
    /// Pages only this process maps (`Private_Clean` + `Private_Dirty`):
    /// after a fork, the pages the child has written and so copied.
    pub private_bytes: u64,
}

/// The memory of process `pid` now (Linux only: it reads `/proc`).
pub fn memory_of(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_smaps_rollup(&text).with_context(|| format!("parsing {path}"))
}

/// The memory of this process now.
pub fn memory_of_self() -> anyhow::Result<Memory> {
    memory_of(std::process::id())
}

/// Parses the text of a `/proc/<pid>/smaps_rollup` file (for a process that
/// sends its own over a pipe, say).
pub fn parse_smaps_rollup(text: &str) -> anyhow::Result<Memory> {
    let field = |name: &str| -> anyhow::Result<u64> {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(name) {
                let kib = rest.trim().trim_end_matches("kB").trim();
                return Ok(kib.parse::<u64>().with_context(|| format!("bad {name} line: {line}"))? * 1024);
            }
        }
        bail!("no {name} line")
    };
    Ok(Memory {
        rss_bytes: field("Rss:")?,
        pss_bytes: field("Pss:")?,
        private_bytes: field("Private_Clean:")? + field("Private_Dirty:")?,
    })
}

/// Memory the kernel says is available for new allocations without
/// swapping (`MemAvailable` in `/proc/meminfo`), in bytes.
pub fn available_bytes() -> anyhow::Result<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    let line = text
        .lines()
        .find(|line| line.starts_with("MemAvailable:"))
        .context("no MemAvailable line in /proc/meminfo")?;
    let kib: u64 = line
        .trim_start_matches("MemAvailable:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("bad MemAvailable line: {line}"))?;
    Ok(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(
            median_secs(&[Duration::from_millis(5), Duration::from_millis(1), Duration::from_millis(9)]),
            0.005
        );
    }

    #[test]
    fn ns_per_never_divides_by_zero() {
        assert_eq!(ns_per(Duration::from_micros(1), 10), 100.0);
        assert_eq!(ns_per(Duration::from_micros(1), 0), 1000.0);
    }

    #[test]
    fn parses_smaps_rollup() {
        let text = "55d0-7ffe ---p 00000000 00:00 0 [rollup]\nRss:                4096 kB\nPss:                1024 kB\nPss_Anon:            512 kB\nPrivate_Clean:        16 kB\nPrivate_Dirty:       100 kB\n";
        let memory = Memory { rss_bytes: 4096 * 1024, pss_bytes: 1024 * 1024, private_bytes: 116 * 1024 };
        assert_eq!(parse_smaps_rollup(text).unwrap(), memory);
        assert!(parse_smaps_rollup("Rss: 1 kB\n").is_err());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn some_memory_is_available() {
        assert!(available_bytes().unwrap() > 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn touching_memory_raises_this_process_pss() {
        let before = memory_of_self().unwrap();
        // 64 MiB, written so every page becomes resident.
        let buffer = vec![1u8; 64 << 20];
        let after = memory_of_self().unwrap();
        assert!(after.pss_bytes >= before.pss_bytes + (48 << 20), "{before:?} -> {after:?}");
        assert!(after.rss_bytes >= after.pss_bytes);
        std::hint::black_box(&buffer);
    }
}
