//! Every lesson in the workspace speaks the output protocol of ARCHITECTURE.md:
//! `--quick --json` prints one JSON object that follows
//! `schema/report.schema.json` and whose claims hold, the text report
//! has a line per claim, both fit 80 columns, `--help` explains the shared flags, and bad usage
//! is answered with exit code 2 and one line.
//!
//! The binaries are the ones `cargo test --workspace` builds for each
//! lesson's own tests, found next to this test's executable.

use std::path::PathBuf;

use lesson_tests::{Lesson, assert_claims_hold, lesson_names};

fn lessons() -> Vec<Lesson> {
    // This test runs from target/<profile>/deps/; the binaries are in target/<profile>/.
    let exe = std::env::current_exe().expect("test executable");
    let bin_dir: PathBuf =
        exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>").to_path_buf();
    let names = lesson_names();
    assert!(!names.is_empty(), "the workspace has lessons");
    names
        .into_iter()
        .map(|name| {
            let bin = bin_dir.join(&name);
            assert!(bin.is_file(), "{} is not built: run `cargo test --workspace`", bin.display());
            Lesson::new(&name, bin)
        })
        .collect()
}

#[test]
fn quick_json_is_one_report_in_the_schema_whose_claims_hold() {
    let path = lesson_tests::workspace_root().join("schema/report.schema.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema");
    let mut off_schema = Vec::new();
    for lesson in lessons() {
        let report = lesson.json(&["--quick"]);
        let errors =
            validator.iter_errors(&report).map(|e| format!("{}: {e} at {}", lesson.name, e.instance_path()));
        off_schema.extend(errors);
        assert_claims_hold(&report);
    }
    assert!(off_schema.is_empty(), "JSON that does not follow the schema:\n{}", off_schema.join("\n"));
}

#[test]
fn text_report_has_a_title_and_a_line_per_claim() {
    for lesson in lessons() {
        let output = lesson.run(&["--quick"]);
        assert!(output.status.success(), "{}: {}", lesson.name, output.status);
        let text = String::from_utf8(output.stdout).expect("UTF-8 text");
        assert!(text.starts_with(&format!("{}: ", lesson.name)), "{} title line:\n{text}", lesson.name);
        assert!(text.contains("\nparams  "), "{} prints its parameters", lesson.name);
        let verdict_lines = text.lines().filter(|l| l.starts_with(['✔', '✘', '?', '–'])).count();
        assert!(verdict_lines >= 1, "{} prints its verdicts:\n{text}", lesson.name);
        assert_fits(&lesson.name, &text);
    }
}

/// Every line within 80 columns: the width the report wraps to when stdout
/// is not a terminal, and the width of the narrowest terminal in use.
fn assert_fits(what: &str, text: &str) {
    let wide: Vec<&str> = text.lines().filter(|line| line.chars().count() > 80).collect();
    assert!(wide.is_empty(), "{what}: lines over 80 columns:\n{}", wide.join("\n"));
}

#[test]
fn help_explains_the_shared_flags() {
    for lesson in lessons() {
        let output = lesson.run(&["--help"]);
        assert!(output.status.success(), "{} --help: {}", lesson.name, output.status);
        let help = String::from_utf8_lossy(&output.stdout);
        assert_fits(&format!("{} --help", lesson.name), &help);
        for flag in ["--json", "--quick", "--help"] {
            assert!(help.contains(flag), "{} --help does not mention {flag}", lesson.name);
        }
    }
}

#[test]
fn bad_usage_exits_2_with_one_line() {
    for lesson in lessons() {
        let message = lesson.usage_error(&["--no-such-flag"]);
        assert!(message.contains("--no-such-flag"), "{}: {message}", lesson.name);
        lesson.usage_error(&["unexpected-positional"]);
    }
}
