//! The mmap-workaround binary, run as a learner runs it: every strategy and
//! `wc -w` count the generated corpus exactly, the copying processes hold
//! the text about twice and the sharing ones about once, a file of the
//! user's is counted exactly (as `wc -w` counts it), bad input gets exit
//! code 2 with one line, and Ctrl-C leaves no child process and no
//! temporary file behind.

use std::os::unix::fs::PermissionsExt;

use common::cleanup::TempDir;
use lesson_tests::children_of;
use lesson_tests::{Lesson, assert_claims_hold, figure, verdict};

fn lesson() -> Lesson {
    Lesson::new("mmap-workaround", env!("CARGO_BIN_EXE_mmap-workaround"))
}

const STRATEGIES: [&str; 4] =
    ["one thread", "threads, one buffer", "processes, copied chunks", "processes, one mmap"];

/// The count every strategy reported (`words_of` reads it from a report),
/// after checking that they agree.
fn the_count(words_of: impl Fn(&str) -> f64) -> f64 {
    let words = words_of(STRATEGIES[0]);
    for strategy in STRATEGIES {
        assert_eq!(words_of(strategy), words, "{strategy}");
    }
    words
}

#[test]
fn quick_run_counts_exactly_and_measures_one_copy_or_two() {
    let report = lesson().json(&["--quick", "--workers", "3"]);
    assert_claims_hold(&report);
    assert_eq!(report["params"]["workers"], 3);
    assert_eq!(report["params"]["size_mib"], 8);
    // The claim compares with the generator's own count and with wc -w.
    assert_eq!(verdict(&report, "counts-agree"), Some(true));
    assert!(the_count(|strategy| figure(&report, strategy, "words")) > 0.0);
    let times_file = |strategy| figure(&report, strategy, "x file");
    assert!((0.9..=1.2).contains(&times_file("one thread")));
    assert!(times_file("processes, copied chunks") >= 1.8);
    // A sum of RSS counts the binary's shared pages once per process; a sum
    // of PSS counts them once.
    let mapped = "processes, one mmap";
    assert!(figure(&report, mapped, "RSS") > figure(&report, mapped, "PSS"));
}

#[test]
fn the_seed_picks_the_text_and_small_texts_skip_the_memory_claims() {
    let count = |seed: &str| {
        let report = lesson().json(&["--size-mib", "1", "--workers", "2", "--seed", seed]);
        assert_claims_hold(&report);
        // One MiB is too little to tell one copy from two: skipped, not guessed.
        assert_eq!(verdict(&report, "copies-double"), None);
        assert_eq!(verdict(&report, "sharing-keeps-one"), None);
        the_count(|strategy| figure(&report, strategy, "words"))
    };
    assert_eq!(count("5"), count("5"));
    assert_ne!(count("5"), count("6"));
}

#[test]
fn a_file_of_the_users_is_counted_exactly() {
    let scratch = TempDir::new("mmap-test").unwrap();
    // Runs of mixed whitespace, UTF-8 and a control byte inside words, a
    // word longer than a chunk, no newline at the end. (Every word holds a
    // printable ASCII letter; words of control or non-ASCII bytes alone are
    // in the next test.)
    let mut text = b"  caf\xc3\xa9 na\xc3\xafve\t\t\nab\x01cd \x0b\x0c\r\n".to_vec();
    text.extend(std::iter::repeat_n(b'w', 5000));
    text.extend(b" end\r\n\n last".iter());
    // caf\xc3\xa9, na\xc3\xafve, ab\x01cd, wwww..., end, last.
    let expected = 6;
    let path = scratch.path().join("words.txt");
    std::fs::write(&path, &text).unwrap();
    for workers in ["1", "4", "16"] {
        let report = lesson().json(&["--file", path.to_str().unwrap(), "--workers", workers]);
        assert_claims_hold(&report);
        assert_eq!(
            the_count(|strategy| figure(&report, strategy, "words")),
            expected as f64,
            "{workers} workers"
        );
        assert_eq!(report["params"]["file"], path.to_str().unwrap());
    }
}

#[test]
fn a_file_of_bytes_wc_treats_apart_is_counted_as_wc_counts_it() {
    let scratch = TempDir::new("mmap-test").unwrap();
    // Tab, CR LF, \v, \f, NUL, control bytes alone and inside words,
    // invalid UTF-8, UTF-8 that is not ASCII, DEL, a 5,000-byte word, no
    // newline at the end: 14 words as GNU wc 9.1 counts them in the C
    // locale (the unit tests compare with the real wc).
    let mut piece = b"tab\tsep\r\nCR LF\x0bvt\x0cff \x00 \x00nul\x00 \x01\x02 ctl\x1b[0m \xff\xfe ".to_vec();
    piece.extend(b"\xc3\xa9t\xc3\xa9 caf\xc3\xa9 \x80 a\x80 b \x7f\r\n");
    piece.extend(std::iter::repeat_n(b'w', 5000));
    piece.extend(b"\tlast\x01");
    let pieces = 200;
    let text = vec![piece; pieces].join(&b'\n');
    let path = scratch.path().join("bytes.txt");
    std::fs::write(&path, &text).unwrap();
    for workers in ["1", "3", "16"] {
        let report = lesson().json(&["--file", path.to_str().unwrap(), "--workers", workers]);
        assert_claims_hold(&report);
        // With wc -w installed, the claim compares with it too.
        assert_eq!(verdict(&report, "counts-agree"), Some(true), "{workers} workers");
        let words = the_count(|strategy| figure(&report, strategy, "words"));
        assert_eq!(words, (14 * pieces) as f64, "{workers} workers");
    }
}

#[test]
fn bad_input_is_refused_with_one_line() {
    let scratch = TempDir::new("mmap-test").unwrap();
    let empty = scratch.path().join("empty.txt");
    std::fs::write(&empty, b"").unwrap();
    let dir = scratch.path().to_str().unwrap();
    let empty = empty.to_str().unwrap();
    let missing = format!("{dir}/missing.txt");
    lesson().refuses(&[
        (&["--size-mib", "0"], "--size-mib"),
        (&["--size-mib", "many"], "--size-mib"),
        // 1 TiB: clap accepts it, the check against MemAvailable does not.
        (&["--size-mib", "1048576"], "MiB is available"),
        (&["--workers", "0"], "--workers"),
        (&["--workers", "65"], "--workers"),
        (&["--file", &missing], &missing),
        (&["--file", dir], "is a directory"),
        (&["--file", empty], "is empty"),
        (&["--file", empty, "--size-mib", "4"], "--size-mib"),
        (&["--file", empty, "--seed", "4"], "--seed"),
    ]);
}

#[test]
fn an_unreadable_file_is_refused_with_one_line() {
    let scratch = TempDir::new("mmap-test").unwrap();
    let secret = scratch.path().join("secret.txt");
    std::fs::write(&secret, b"hidden words").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut path = secret.to_str().unwrap().to_string();
    if std::fs::File::open(&secret).is_ok() {
        // Root reads a file whatever its mode (the tests often run as root).
        // A path through a file, as if it were a directory, fails for root
        // too (ENOTDIR) and takes the same road: metadata, then a usage error.
        path.push_str("/inside.txt");
    }
    let message = lesson().usage_error(&["--file", &path]);
    assert!(message.contains(&path), "{message}");
}

/// SIGKILL cannot be caught: the children die with the lesson (they are
/// tied to its life) and the corpus, a file without a name, goes with its
/// last descriptor.
#[test]
fn kill_9_leaves_no_child_and_no_temp_file() {
    let outcome = lesson().kill_when(&["--quick", "--workers", "2"], |pid| !children_of(pid).is_empty());
    assert!(!outcome.children.is_empty());
    assert!(outcome.surviving_children.is_empty(), "{outcome:?}");
    assert!(outcome.temp_entries_left.is_empty(), "{outcome:?}");
}

#[test]
fn ctrl_c_leaves_no_child_and_no_temp_dir() {
    let outcome = lesson().interrupt_when(&["--quick", "--workers", "2"], |pid| !children_of(pid).is_empty());
    assert_eq!(outcome.status.code(), Some(130), "{outcome:?}");
    assert!(!outcome.children.is_empty());
    assert!(outcome.surviving_children.is_empty(), "{outcome:?}");
    assert!(outcome.temp_entries_left.is_empty(), "{outcome:?}");
    assert!(outcome.orphans.is_empty(), "{outcome:?}");
}
