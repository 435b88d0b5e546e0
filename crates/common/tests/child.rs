//! `spawn_self` starts this very test binary again in a child role, so this
//! file is its own `main` (no libtest harness, see Cargo.toml): as the parent
//! it runs the checks below; as a child it plays the role it was given.

use std::io::Read;
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
            "chatty" => {
                println!("to stdout");
                eprintln!("to stderr");
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }

    let checks: [(&str, fn()); 5] = [
        ("child_runs_its_role_with_its_arguments", child_runs_its_role_with_its_arguments),
        ("exit_status_comes_back", exit_status_comes_back),
        ("dropping_a_running_child_kills_and_reaps_it", dropping_a_running_child_kills_and_reaps_it),
        ("output_with_deadline_captures_both_streams", output_with_deadline_captures_both_streams),
        ("output_with_deadline_kills_a_hang", output_with_deadline_kills_a_hang),
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
