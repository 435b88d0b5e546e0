//! `spawn_self` starts this very test binary again in a child role, so this
//! file is its own `main` (no libtest harness, see Cargo.toml): as the parent
//! it runs the checks below; as a child it plays the role it was given.

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use common::child::{role, spawn_self};

fn main() {
    if let Some((name, args)) = role() {
        match name.as_str() {
            "echo" => println!("{}", args.join(" ")),
            // Stays alive until the parent kills it; a minute is a bound in
            // case the parent never does.
            "linger" => std::thread::sleep(Duration::from_secs(60)),
            "fail" => std::process::exit(3),
            other => panic!("unknown role {other}"),
        }
        return;
    }

    let checks: [(&str, fn()); 3] = [
        ("child_runs_its_role_with_its_arguments", child_runs_its_role_with_its_arguments),
        ("exit_status_comes_back", exit_status_comes_back),
        ("dropping_a_running_child_kills_and_reaps_it", dropping_a_running_child_kills_and_reaps_it),
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
