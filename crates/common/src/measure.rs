//! Measuring: wall time, medians over repeats, CPU time, and process memory.
//!
//! Timings are wall-clock (`Instant`), because what a learner waits for is
//! wall time, and a lesson's timing claims are ratios of two such figures taken
//! in the same run. Medians rather than means: one trial that the scheduler
//! interrupted should not move the figure.
//!
//! CPU time is what the machine's load cannot fake: two threads that got two
//! cores for a second used two seconds of CPU, whatever else ran. A claim that
//! needs free cores measures what its threads received ([`CpuWindow`]) and is
//! inconclusive when they did not get it.
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

/// CPU time this process has used so far, all its threads, user and system
/// (`getrusage(RUSAGE_SELF)`).
pub fn process_cpu_time() -> Duration {
    rusage_time(nix::sys::resource::UsageWho::RUSAGE_SELF)
}

/// CPU time used so far by this process's children that have been reaped
/// (`getrusage(RUSAGE_CHILDREN)`): a child's CPU time counts once it is waited for.
pub fn children_cpu_time() -> Duration {
    rusage_time(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
}

fn rusage_time(who: nix::sys::resource::UsageWho) -> Duration {
    // getrusage fails only for an invalid `who`; then nothing was measured.
    nix::sys::resource::getrusage(who).map_or(Duration::ZERO, |usage| {
        let micros = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
        Duration::from_micros(micros(usage.user_time()) + micros(usage.system_time()))
    })
}

/// CPU time the calling thread has used so far (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_time() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map_or(Duration::ZERO, Duration::from)
}

/// CPU time thread `tid` of this process has used so far, from its
/// CPU-time clock: the clock id Linux gives a thread is `(!tid << 3) | 6`
/// (per thread, scheduler time), what glibc's `pthread_getcpuclockid`
/// returns. Zero when there is no such thread.
pub fn thread_cpu_time_of(tid: i32) -> Duration {
    // Beyond this, `tid << 3` would overflow into another clock's id (and
    // no pid_max allows such a tid).
    if !(1..=i32::MAX >> 3).contains(&tid) {
        return Duration::ZERO;
    }
    let clock = nix::time::ClockId::from_raw((!tid << 3) | 6);
    nix::time::clock_gettime(clock).map_or(Duration::ZERO, Duration::from)
}

/// CPU time a live process (all its threads) has used so far, from its
/// CPU-time clock (`clock_getcpuclockid`): what a child still running has
/// spent, which [`children_cpu_time`] counts only once it is reaped. Zero
/// when there is no such process.
pub fn process_cpu_time_of(pid: u32) -> Duration {
    let Ok(pid) = i32::try_from(pid) else { return Duration::ZERO };
    nix::time::clock_getcpuclockid(nix::unistd::Pid::from_raw(pid))
        .and_then(nix::time::clock_gettime)
        .map_or(Duration::ZERO, Duration::from)
}

/// How busy every core of the machine has been since boot, from the first
/// line of `/proc/stat`: (busy ticks, all ticks). Time stolen by a hypervisor
/// counts as busy: it was not ours to use.
fn machine_ticks() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_proc_stat(&text)
}

/// Parses the `cpu` line of `/proc/stat` into (busy ticks, all ticks).
pub fn parse_proc_stat(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line.split_whitespace().skip(1).filter_map(|t| t.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice]: the
    // guest times are already inside user and nice.
    let all: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some((all - idle, all))
}

/// A stretch of work, measured for what it received: wall time, this
/// process's CPU time (and its reaped children's), and how busy the machine was.
#[derive(Debug, Clone, Copy)]
pub struct CpuWindow {
    wall: Instant,
    cpu: Duration,
    children: Duration,
    machine: Option<(u64, u64)>,
}

/// What a [`CpuWindow`] measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuShare {
    pub wall: Duration,
    /// CPU time of this process and of the children reaped in the window.
    pub cpu: Duration,
    /// Cores in use on the whole machine on average, this process included
    /// (`None` where `/proc/stat` cannot be read).
    pub machine_busy_cores: Option<f64>,
    /// The cores the machine has (for what was left free).
    pub machine_cores: usize,
    /// The ticks `/proc/stat` counted over the window, all cores together
    /// (100 a second per core): how much the busy cores above rest on.
    pub machine_ticks: u64,
}

/// The fewest ticks of `/proc/stat` (all cores together) from which the
/// cores other programs kept busy are judged: 8 ticks are 40 ms on 2
/// cores. With fewer, a claim that needs free cores cannot know it had
/// them, and is inconclusive rather than judged blind.
pub const MACHINE_TICKS_TO_JUDGE: u64 = 8;

impl CpuWindow {
    pub fn start() -> Self {
        CpuWindow {
            wall: Instant::now(),
            cpu: process_cpu_time(),
            children: children_cpu_time(),
            machine: machine_ticks(),
        }
    }

    pub fn stop(&self) -> CpuShare {
        let wall = self.wall.elapsed();
        let cpu =
            process_cpu_time().saturating_sub(self.cpu) + children_cpu_time().saturating_sub(self.children);
        let machine_cores = online_cores();
        let (machine_busy_cores, machine_ticks) = match (self.machine, machine_ticks()) {
            (Some((busy0, all0)), Some((busy1, all1))) => {
                let ticks = all1.saturating_sub(all0);
                let busy = busy1.saturating_sub(busy0) as f64 / ticks.max(1) as f64;
                (Some(busy * machine_cores as f64), ticks)
            }
            _ => (None, 0),
        };
        CpuShare { wall, cpu, machine_busy_cores, machine_cores, machine_ticks }
    }
}

/// The cores the machine has online, whatever this process may use.
fn online_cores() -> usize {
    std::fs::read_to_string("/proc/stat")
        .map(|text| text.lines().filter(|l| l.starts_with("cpu") && !l.starts_with("cpu ")).count())
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or_else(cores)
}

impl CpuShare {
    /// The cores this work received on average: its CPU time over its wall time.
    pub fn cores_received(&self) -> f64 {
        self.cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }

    /// The cores other programs kept busy on average (from `/proc/stat`).
    pub fn others_busy_cores(&self) -> Option<f64> {
        self.machine_busy_cores.map(|busy| (busy - self.cores_received()).max(0.0))
    }

    /// `Ok(())` if other programs left at least `needed` cores free while the
    /// work ran (from `/proc/stat`; `Ok` where it cannot be read, and not
    /// judged, an `Err`, when the window was too short for its ticks, see
    /// [`MACHINE_TICKS_TO_JUDGE`]); otherwise
    /// the reason, in words, for an inconclusive verdict. It asks what was
    /// available, not what the work got: threads that starve themselves (on
    /// a lock of their own, say) must still fail a claim, not be excused.
    pub fn free_at_least(&self, needed: f64, who: &str) -> Result<(), String> {
        let Some(others) = self.others_busy_cores() else { return Ok(()) };
        if self.machine_ticks < MACHINE_TICKS_TO_JUDGE {
            return Err(format!(
                "the work took {:.1} ms, too short for /proc/stat (10 ms ticks) to say how busy \
                 other programs kept the machine",
                self.wall.as_secs_f64() * 1e3
            ));
        }
        if self.machine_cores as f64 - others >= needed {
            return Ok(());
        }
        Err(format!(
            "other programs kept {others:.1} of {} cores busy; {who} need {needed:.1} free",
            self.machine_cores
        ))
    }

    /// `Ok(())` if the work received at least `needed` cores on average;
    /// otherwise the reason, in words, for an inconclusive verdict:
    /// "the 2 threads received 1.10 cores of the 1.60 needed; other programs
    /// kept 1.8 cores busy".
    pub fn received_at_least(&self, needed: f64, who: &str) -> Result<(), String> {
        let got = self.cores_received();
        if got >= needed {
            return Ok(());
        }
        let others = match self.others_busy_cores() {
            Some(others) => format!("; other programs kept {others:.1} of {} cores busy", self.machine_cores),
            None => String::new(),
        };
        Err(format!("{who} received {got:.2} cores of the {needed:.2} needed{others}"))
    }
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
    /// Anonymous pages (`Anonymous`): memory not backed by a file, such as
    /// the heap. A file's pages mapped by one process alone are private
    /// too, but never anonymous, so this tells a copy from a mapping.
    pub anonymous_bytes: u64,
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
        anonymous_bytes: field("Anonymous:")?,
    })
}

/// Whether the address space `ulimit -v` leaves (RLIMIT_AS) holds
/// `threads` more threads, each with Rust's default 2 MiB stack, its guard
/// page and its signal stack, with room to spare. std aborts the whole
/// process when a thread that did start cannot map its signal stack, which a
/// lab cannot catch; so a lab that starts many threads checks first and
/// fails with this error instead (a spawn that fails outright is still
/// handled where the lesson spawns).
pub fn check_room_for_threads(threads: usize) -> anyhow::Result<()> {
    let (limit, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_AS)?;
    if limit == nix::sys::resource::RLIM_INFINITY {
        return Ok(());
    }
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let used_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmSize:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .context("no VmSize in /proc/self/status")?;
    const MIB: u64 = 1 << 20;
    let left = limit.saturating_sub(used_kib * 1024);
    let needed = threads as u64 * (2 * MIB + 256 * 1024) + 64 * MIB;
    anyhow::ensure!(
        needed <= left,
        "{threads} threads need about {} MiB of address space, and `ulimit -v` leaves {} MiB",
        needed / MIB,
        left / MIB
    );
    Ok(())
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
        let text = "55d0-7ffe ---p 00000000 00:00 0 [rollup]\nRss:                4096 kB\nPss:                1024 kB\nPss_Anon:            512 kB\nPrivate_Clean:        16 kB\nPrivate_Dirty:       100 kB\nAnonymous:           512 kB\n";
        let memory = Memory {
            rss_bytes: 4096 * 1024,
            pss_bytes: 1024 * 1024,
            private_bytes: 116 * 1024,
            anonymous_bytes: 512 * 1024,
        };
        assert_eq!(parse_smaps_rollup(text).unwrap(), memory);
        assert!(parse_smaps_rollup("Rss: 1 kB\n").is_err());
    }

    #[test]
    fn a_window_too_short_for_the_ticks_is_not_judged_free() {
        // 15 ms on 2 cores: 3 ticks, and all of them idle but ours.
        let share = CpuShare {
            wall: Duration::from_millis(15),
            cpu: Duration::from_millis(15),
            machine_busy_cores: Some(1.0),
            machine_cores: 2,
            machine_ticks: 3,
        };
        let refused = share.free_at_least(1.0, "the threads").unwrap_err();
        assert!(refused.contains("too short for /proc/stat"), "{refused}");
        let long_enough = CpuShare { wall: Duration::from_millis(500), machine_ticks: 100, ..share };
        assert_eq!(long_enough.free_at_least(1.0, "the threads"), Ok(()));
    }

    #[test]
    fn a_live_process_and_a_thread_are_charged_what_they_spend() {
        let (pid, tid) = (std::process::id(), nix::unistd::gettid().as_raw());
        let (process, thread) = (process_cpu_time_of(pid), thread_cpu_time_of(tid));
        let mut x = 1u64;
        for i in 0..5_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
        }
        assert!(process_cpu_time_of(pid) > process && thread_cpu_time_of(tid) > thread);
        // A process or thread that is not there has spent nothing.
        assert_eq!(process_cpu_time_of(u32::MAX), Duration::ZERO);
        assert_eq!(thread_cpu_time_of(i32::MAX >> 3), Duration::ZERO);
        assert_eq!(thread_cpu_time_of(i32::MAX), Duration::ZERO);
    }

    #[test]
    fn parses_proc_stat() {
        let text = "cpu  100 5 50 800 20 3 2 10 7 0\ncpu0 50 2 25 400 10 1 1 5 3 0\n";
        assert_eq!(parse_proc_stat(text), Some((170, 990)));
        assert_eq!(parse_proc_stat("intr 1 2 3\n"), None);
    }

    #[test]
    fn a_share_below_what_is_needed_says_why() {
        let share = CpuShare {
            wall: Duration::from_secs(1),
            cpu: Duration::from_millis(1100),
            machine_busy_cores: Some(2.0),
            machine_cores: 2,
            machine_ticks: 1000,
        };
        assert!((share.cores_received() - 1.1).abs() < 1e-9);
        assert_eq!(share.received_at_least(1.0, "the 2 threads"), Ok(()));
        assert_eq!(
            share.received_at_least(1.6, "the 2 threads"),
            Err("the 2 threads received 1.10 cores of the 1.60 needed; other programs kept 0.9 of 2 cores busy"
                .to_string())
        );
    }

    #[test]
    fn busy_threads_are_seen_in_cpu_time() {
        let window = CpuWindow::start();
        let thread_before = thread_cpu_time();
        let deadline = Instant::now() + Duration::from_millis(50);
        let mut spins = 0u64;
        while Instant::now() < deadline {
            spins = std::hint::black_box(spins + 1);
        }
        let share = window.stop();
        // The spinning thread ran for most of its 50 ms unless the machine
        // was very busy; at the least it ran for some of it.
        assert!(thread_cpu_time() > thread_before);
        assert!(share.cpu > Duration::ZERO && share.wall >= Duration::from_millis(50));
        assert!(share.cores_received() > 0.0);
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
        assert!(after.anonymous_bytes >= before.anonymous_bytes + (48 << 20), "{before:?} -> {after:?}");
        assert!(after.rss_bytes >= after.pss_bytes);
        std::hint::black_box(&buffer);
    }
}
