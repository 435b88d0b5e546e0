//! `cargo xtask report` refuses what it cannot draw: exit 2 and one line,
//! before any lesson runs.

use std::path::Path;
use std::process::Command;

fn refused(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask")).arg("report").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr
}

#[test]
fn a_bad_from_file_or_out_dir_is_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let missing = refused(&["--from", &path("missing.json")]);
    assert!(missing.contains("cannot read") && missing.contains("missing.json"), "{missing}");
    std::fs::write(dir.path().join("text.json"), "not json at all").unwrap();
    assert!(refused(&["--from", &path("text.json")]).contains("is not JSON"));
    std::fs::write(dir.path().join("lesson.json"), r#"{"lesson": "race-condition", "claims": []}"#).unwrap();
    assert!(
        refused(&["--from", &path("lesson.json")]).contains("is not a `cargo xtask all --json` document")
    );
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/all-quick.json");
    let out = refused(&["--from", fixture.to_str().unwrap(), "--out", &path("a-file")]);
    assert!(out.contains("exists and is not a directory"), "{out}");
    assert!(
        refused(&["--compare", &path("missing.json"), fixture.to_str().unwrap()]).contains("cannot read")
    );
}

#[test]
fn a_saved_run_is_drawn_and_two_are_compared() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/all-quick.json");
    let fixture = fixture.to_str().unwrap();
    let out = dir.path().join("page");
    let status = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["report", "--from", fixture, "--out", out.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(page.contains("<svg") && page.contains("id=\"lesson-mmap-workaround\""));
    let compared = dir.path().join("compared");
    let status = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["report", "--compare", fixture, fixture, "--out", compared.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let page = std::fs::read_to_string(compared.join("report.html")).unwrap();
    assert!(page.contains("data-differing=\"0\""), "a run compared with itself differs nowhere");
    assert!(page.contains("1.00x"));
}
