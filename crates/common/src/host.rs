//! The machine a run measured: its fingerprint.
//!
//! A verdict means little without the machine it came from. Concurrency
//! figures flip between machines (one core in a VM, a cgroup CPU limit, a
//! different kernel), so every report carries where it was measured: the CPU
//! model, the cores this process may use (affinity and any cgroup CPU limit,
//! not only the machine's count), memory, kernel, virtual machine or
//! container as far as the system says, the build profile, rustc, and the
//! versions of the programs the lesson ran beside it (python3, wc).
//!
//! Each reading is a pure function of the text the system gives, so the
//! tests feed it sample `/proc` and `/sys` text.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Serialize;

/// The machine the figures were measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    /// The cores this process may use: `std::thread::available_parallelism`,
    /// which counts the CPU affinity mask and a cgroup CPU limit.
    pub cores: usize,
    pub os: &'static str,
    /// `release` or `debug`: timings from a debug build are not comparable.
    pub profile: &'static str,
    /// The CPU's model name (`/proc/cpuinfo`).
    pub cpu: String,
    /// The CPUs the kernel has online, whether or not this process may use them.
    pub machine_cores: usize,
    /// The CPUs in this process's affinity mask.
    pub affinity_cores: usize,
    /// A cgroup CPU limit in cores (`cpu.max`, or v1's quota over period), if any.
    pub cpu_limit: Option<f64>,
    /// `MemTotal` of `/proc/meminfo`.
    pub memory_bytes: u64,
    /// The kernel's release (`uname -r`).
    pub kernel: String,
    /// `none`, or the virtual machine as far as the system says
    /// (`vm`, `vm: KVM`, ...).
    pub virtualization: String,
    /// The container runtime when the system says so (`docker`, `podman`, ...).
    pub container: Option<String>,
    /// `rustc -V` of the compiler that built this program.
    pub rustc: &'static str,
    /// The programs the lesson ran beside it, with the first line of their
    /// `--version`.
    pub tools: BTreeMap<String, String>,
}

impl Host {
    /// This machine, read from `/proc` and `/sys` (anything unreadable is
    /// left as "unknown", never an error: a report must still print).
    pub fn this() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cgroup_v1 =
            (read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), read("/sys/fs/cgroup/cpu/cpu.cfs_period_us"));
        Host {
            cores: crate::measure::cores(),
            os: std::env::consts::OS,
            profile: if cfg!(debug_assertions) { "debug" } else { "release" },
            cpu: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".into()),
            machine_cores: online_cores(&read("/sys/devices/system/cpu/online"))
                .unwrap_or_else(|| cpuinfo.lines().filter(|l| l.starts_with("processor")).count().max(1)),
            affinity_cores: affinity_cores(&read("/proc/self/status")).unwrap_or(0),
            cpu_limit: cpu_limit_v2(&read("/sys/fs/cgroup/cpu.max"))
                .or_else(|| cpu_limit_v1(&cgroup_v1.0, &cgroup_v1.1)),
            memory_bytes: mem_total(&read("/proc/meminfo")).unwrap_or(0),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            virtualization: virtualization(
                &cpuinfo,
                &read("/sys/class/dmi/id/sys_vendor"),
                &read("/sys/class/dmi/id/product_name"),
                &read("/sys/hypervisor/type"),
            ),
            container: container(
                Path::new("/.dockerenv").exists(),
                Path::new("/run/.containerenv").exists(),
                std::env::var("container").ok().as_deref(),
                &read("/proc/1/cgroup"),
            ),
            rustc: env!("COMMON_RUSTC_VERSION"),
            tools: BTreeMap::new(),
        }
    }

    /// Records `program`'s version (the first line of `program --version`)
    /// as a tool the lesson ran beside it; nothing when it does not answer.
    pub fn note_tool(&mut self, program: &str) {
        if let Some(version) = tool_version(program) {
            self.tools.insert(program.to_string(), version);
        }
    }

    /// The short form for the human report's `host` line, e.g.
    /// `2 cores (of 2) AMD EPYC, 23.5 GiB, linux 6.18.44, vm in docker, release`.
    pub fn short(&self) -> String {
        let of = if self.machine_cores != self.cores {
            format!(" (of {})", self.machine_cores)
        } else {
            String::new()
        };
        let cpu: String = if self.cpu.chars().count() > 24 {
            self.cpu.chars().take(23).chain(['…']).collect()
        } else {
            self.cpu.clone()
        };
        let place = match (&*self.virtualization, &self.container) {
            ("none", None) => String::new(),
            ("none", Some(container)) => format!(", {container}"),
            (vm, None) => format!(", {vm}"),
            (vm, Some(container)) => format!(", {vm} in {container}"),
        };
        let kernel = self.kernel.split('-').next().unwrap_or("");
        format!(
            "{} cores{of} {cpu}, {:.1} GiB, {} {kernel}{place}, {}",
            self.cores,
            self.memory_bytes as f64 / (1u64 << 30) as f64,
            self.os,
            self.profile
        )
    }
}

/// The first line of `program --version`, or `None` when the program is
/// missing or does not answer within two seconds.
pub fn tool_version(program: &str) -> Option<String> {
    let mut command = Command::new(program);
    command.arg("--version").stdin(Stdio::null());
    let output = crate::child::output_with_deadline(&mut command, Duration::from_secs(2)).ok()?;
    // Python 2 printed its version on stderr; take whichever stream has it.
    let text = if output.stdout.is_empty() { output.stderr } else { output.stdout };
    let line = String::from_utf8_lossy(&text).lines().next()?.trim().to_string();
    (output.status.success() && !line.is_empty()).then_some(line)
}

/// The `model name` of the first CPU in `/proc/cpuinfo`.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find_map(|line| {
            line.strip_prefix("model name")?.split_once(':').map(|(_, name)| name.trim().to_string())
        })
        .filter(|name| !name.is_empty())
}

/// The number of CPUs in a kernel CPU list such as `0-3,6,8-9`.
fn online_cores(list: &str) -> Option<usize> {
    let mut count = 0;
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        count += match part.split_once('-') {
            Some((first, last)) => last.parse::<usize>().ok()?.checked_sub(first.parse::<usize>().ok()?)? + 1,
            None => part.parse::<usize>().map(|_| 1).ok()?,
        };
    }
    (count > 0).then_some(count)
}

/// The CPUs in `Cpus_allowed_list` of `/proc/self/status`: the affinity mask.
fn affinity_cores(status: &str) -> Option<usize> {
    online_cores(status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?)
}

/// cgroup v2's `cpu.max`: `max 100000` is no limit, `150000 100000` is 1.5 cores.
fn cpu_limit_v2(cpu_max: &str) -> Option<f64> {
    let mut fields = cpu_max.split_whitespace();
    let quota: f64 = fields.next()?.parse().ok()?;
    let period: f64 = fields.next()?.parse().ok()?;
    (period > 0.0).then(|| quota / period)
}

/// cgroup v1: a quota of -1 is no limit.
fn cpu_limit_v1(quota: &str, period: &str) -> Option<f64> {
    let quota: f64 = quota.trim().parse().ok()?;
    let period: f64 = period.trim().parse().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `vm: <vendor>` when DMI or `/sys/hypervisor` names one, `vm` when only
/// the CPU's `hypervisor` flag says so, else `none`.
fn virtualization(cpuinfo: &str, dmi_vendor: &str, dmi_product: &str, hypervisor_type: &str) -> String {
    let dmi = format!("{} {}", dmi_vendor.trim(), dmi_product.trim());
    const KNOWN: [(&str, &str); 9] = [
        ("QEMU", "QEMU"),
        ("KVM", "KVM"),
        ("VMware", "VMware"),
        ("VirtualBox", "VirtualBox"),
        ("innotek", "VirtualBox"),
        ("Xen", "Xen"),
        ("Microsoft Corporation Virtual Machine", "Hyper-V"),
        ("Amazon EC2", "Amazon EC2"),
        ("Google Compute Engine", "Google Compute Engine"),
    ];
    if let Some((_, name)) = KNOWN.iter().find(|(mark, _)| dmi.contains(mark)) {
        return format!("vm: {name}");
    }
    if !hypervisor_type.trim().is_empty() {
        return format!("vm: {}", hypervisor_type.trim());
    }
    let flagged = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .is_some_and(|flags| flags.split_whitespace().any(|f| f == "hypervisor"));
    if flagged { "vm".into() } else { "none".into() }
}

/// The container runtime, from the marks runtimes leave.
fn container(
    dockerenv: bool,
    containerenv: bool,
    env_container: Option<&str>,
    init_cgroup: &str,
) -> Option<String> {
    if dockerenv {
        return Some("docker".into());
    }
    if containerenv {
        return Some("podman".into());
    }
    if let Some(name) = env_container.filter(|n| !n.is_empty()) {
        return Some(name.to_string());
    }
    ["docker", "kubepods", "lxc", "containerd"]
        .into_iter()
        .find(|mark| init_cgroup.contains(mark))
        .map(|mark| if mark == "kubepods" { "kubernetes".to_string() } else { mark.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUINFO: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\
        flags\t\t: fpu vme sse2 hypervisor avx2\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n";

    #[test]
    fn reads_the_cpu_model_and_counts() {
        assert_eq!(cpu_model(CPUINFO).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(cpu_model("processor\t: 0\n"), None);
        assert_eq!(online_cores("0-3,6,8-9\n"), Some(7));
        assert_eq!(online_cores("0\n"), Some(1));
        assert_eq!(online_cores(""), None);
        assert_eq!(affinity_cores("Name:\tx\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\n"), Some(2));
        assert_eq!(mem_total("MemTotal:       24684084 kB\nMemFree: 1 kB\n"), Some(24684084 * 1024));
    }

    #[test]
    fn reads_cgroup_cpu_limits() {
        assert_eq!(cpu_limit_v2("max 100000\n"), None);
        assert_eq!(cpu_limit_v2("150000 100000\n"), Some(1.5));
        assert_eq!(cpu_limit_v2(""), None);
        assert_eq!(cpu_limit_v1("-1\n", "100000\n"), None);
        assert_eq!(cpu_limit_v1("200000\n", "100000\n"), Some(2.0));
    }

    #[test]
    fn tells_a_virtual_machine_and_its_vendor() {
        assert_eq!(virtualization(CPUINFO, "", "", ""), "vm");
        assert_eq!(virtualization(CPUINFO, "QEMU\n", "Standard PC (Q35)\n", ""), "vm: QEMU");
        assert_eq!(
            virtualization("flags : fpu\n", "Microsoft Corporation\n", "Virtual Machine\n", ""),
            "vm: Hyper-V"
        );
        assert_eq!(virtualization("flags : fpu\n", "", "", "xen\n"), "vm: xen");
        assert_eq!(virtualization("flags : fpu sse2\n", "Dell Inc.\n", "PowerEdge\n", ""), "none");
    }

    #[test]
    fn tells_a_container() {
        assert_eq!(container(true, false, None, "").as_deref(), Some("docker"));
        assert_eq!(container(false, true, None, "").as_deref(), Some("podman"));
        assert_eq!(container(false, false, Some("lxc"), "").as_deref(), Some("lxc"));
        assert_eq!(
            container(false, false, None, "0::/kubepods/burstable/pod1\n").as_deref(),
            Some("kubernetes")
        );
        assert_eq!(container(false, false, None, "0::/init.scope\n"), None);
    }

    #[test]
    fn this_machine_has_a_short_form_within_a_line() {
        let host = Host::this();
        assert!(host.cores >= 1 && host.machine_cores >= 1);
        assert!(host.rustc.starts_with("rustc "), "{}", host.rustc);
        let short = host.short();
        assert!(short.chars().count() <= 72, "{short}");
    }
}
