//! Records the compiler's version for the reports' `host` object: a figure
//! means little without the toolchain that built the program measuring it.

use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_else(|| "rustc (unknown version)".into());
    println!("cargo:rustc-env=COMMON_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-changed=build.rs");
}
