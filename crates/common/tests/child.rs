//! `spawn_self` starts this very test binary again in a child role, so this
//! file is its own `main` (no libtest harness, see Cargo.toml): as the parent
//! it runs the checks below; as a child it plays the role it was given.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::Duration;

use common::child::{ROLE_ARG, output_with_deadline, role, spawn_self};

fn main() {
    if let Some((name, args)) = role() {
        match name.as_str() {
            "echo" => println!("{}", args.join(" ")),
            // Stays alive until the parent kills it; a minute is a bound in
            // case the parent never does.
            "linger" => std::thread::sleep(Duration::from_secs(60)),
            "fail" => std::process::exit(3),
            // Installs the clean-up, makes a temp dir and a child, says
            // where they are, and waits to be interrupted.
            "interruptible" => {
                common::cleanup::install();
                let dir = common::cleanup::TempDir::new("child-test").unwrap();
                std::fs::write(dir.path().join("data"), b"x").unwrap();
                let child = spawn_self("linger", &[], |_| {}).unwrap();
                // A plain program the kit knows nothing about: the clean-up
                // finds it in /proc all the same.
                let mut sleeper = std::process::Command::new("sleep").arg("60").spawn().unwrap();
                println!("{} {} {}", dir.path().display(), child.id(), sleeper.id());
                // Waits a minute at most for Ctrl-C to come. The clean-up
                // kills the sleep first, so this thread then sleeps on while
                // the clean-up ends the process.
                let _ = sleeper.wait();
                std::thread::sleep(Duration::from_secs(60));
            }
            // Starts a child and waits to be killed (SIGKILL: no clean-up runs).
            "parent-of-linger" => {
                let child = spawn_self("linger", &[], |_| {}).unwrap();
                println!("{}", child.id());
                std::thread::sleep(Duration::from_secs(60));
            }
            "chatty" => {
                println!("to stdout");
                eprintln!("to stderr");
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }

    let checks: [(&str, fn()); 7] = [
        ("child_runs_its_role_with_its_arguments", child_runs_its_role_with_its_arguments),
        ("exit_status_comes_back", exit_status_comes_back),
        ("dropping_a_running_child_kills_and_reaps_it", dropping_a_running_child_kills_and_reaps_it),
        ("output_with_deadline_captures_both_streams", output_with_deadline_captures_both_streams),
        ("output_with_deadline_kills_a_hang", output_with_deadline_kills_a_hang),
        ("ctrl_c_removes_children_and_temp_dirs", ctrl_c_removes_children_and_temp_dirs),
        ("a_child_dies_with_its_killed_parent", a_child_dies_with_its_killed_parent),
    ];
    for (name, check) in checks {
        check();
        println!("test {name} ... ok");
    }
    println!("child: {} passed, 0 failed", checks.len());
}

fn child_runs_its_role_with_its_arguments() {
    let mut child = spawn_self("echo", &["hello".into(), "world".into()], |c| {
        c.stdout(Stdio::piped());
    })
    .unwrap();
    assert_eq!(child.role(), "echo");
    let mut out = String::new();
    child.handle().stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(out, "hello world\n");
}

fn exit_status_comes_back() {
    let child = spawn_self("fail", &[], |_| {}).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(3));
}

fn dropping_a_running_child_kills_and_reaps_it() {
    let child = spawn_self("linger", &[], |_| {}).unwrap();
    let proc_entry = format!("/proc/{}", child.id());
    assert!(std::path::Path::new(&proc_entry).exists());
    drop(child);
    // A zombie keeps its /proc entry until it is reaped, so the entry being
    // gone shows the child was both killed and reaped.
    assert!(!std::path::Path::new(&proc_entry).exists(), "{proc_entry} outlived the drop");
}

fn this_exe_as(role: &str) -> std::process::Command {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command.args([ROLE_ARG, role]);
    command
}

fn output_with_deadline_captures_both_streams() {
    let output = output_with_deadline(&mut this_exe_as("chatty"), Duration::from_secs(60)).unwrap();
    assert!(output.status.success());
    assert_eq!(output.stdout, b"to stdout\n");
    assert_eq!(output.stderr, b"to stderr\n");
}

fn output_with_deadline_kills_a_hang() {
    let started = std::time::Instant::now();
    let err = output_with_deadline(&mut this_exe_as("linger"), Duration::from_millis(200)).unwrap_err();
    assert!(err.to_string().contains("was killed"), "{err}");
    // Killed at the deadline, not after the child's own minute.
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// Starts `role` with stdout piped and returns it with its first line.
fn start_and_read_line(role: &str) -> (common::child::ChildProcess, String) {
    let mut child = spawn_self(role, &[], |c| {
        c.stdout(Stdio::piped());
    })
    .unwrap();
    let mut line = String::new();
    BufReader::new(child.handle().stdout.take().unwrap()).read_line(&mut line).unwrap();
    (child, line.trim().to_string())
}

fn ctrl_c_removes_children_and_temp_dirs() {
    let (child, line) = start_and_read_line("interruptible");
    let mut words = line.split(' ');
    let (dir, grandchild, sleeper) = (words.next().unwrap(), words.next().unwrap(), words.next().unwrap());
    assert!(std::path::Path::new(dir).join("data").exists());
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "exit code 128 + SIGINT");
    assert!(!std::path::Path::new(dir).exists(), "{dir} outlived Ctrl-C");
    // The clean-up killed and reaped the grandchild before exiting, so it is
    // gone entirely, not a zombie.
    assert!(
        !std::path::Path::new(&format!("/proc/{grandchild}")).exists(),
        "child {grandchild} outlived Ctrl-C"
    );
    assert!(!std::path::Path::new(&format!("/proc/{sleeper}")).exists(), "sleep {sleeper} outlived Ctrl-C");
}

fn a_child_dies_with_its_killed_parent() {
    let (child, grandchild) = start_and_read_line("parent-of-linger");
    // SIGKILL: the parent runs no clean-up at all; the kernel's parent-death
    // signal is what ends the grandchild.
    let status = child.kill().unwrap();
    assert_eq!(status.code(), None);
    let grandchild: u32 = grandchild.parse().unwrap();
    assert!(has_exited(grandchild, Duration::from_secs(10)), "child {grandchild} outlived its killed parent");
}

/// Whether `pid` is gone or a zombie, looking every 10 ms for up to `within`.
fn has_exited(pid: u32, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    loop {
        let gone = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
        };
        if gone || std::time::Instant::now() >= deadline {
            return gone;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
