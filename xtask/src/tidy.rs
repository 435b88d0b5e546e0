//! `cargo xtask tidy`: the rules of ARCHITECTURE.md that code can check.
//!
//! - every folder under `crates/` but `common` is a lesson of the catalogue,
//!   a workspace member, and a package of the same name;
//! - every lesson's `main.rs` opens with its `//!` header: the claim, `Run:`
//!   with its `cargo run -p` line, a sample of real output in a `text` block
//!   (its first line is the lesson's title line), and `See also:`;
//! - the README's lesson table lists exactly the workspace's lessons, in
//!   catalogue order, each with its Cargo.toml description;
//! - every lesson is in the lesson's shape: `main.rs` is the lesson (no
//!   `common`, clap, serde, anyhow or `lab::` before the hand-over, which
//!   ends the file; at most 300 lines unless a `// tidy: longer than 300
//!   lines because ...` line says why), `lab.rs` is the experiment and
//!   compiles `standalone.rs` (the ejected crate's `main`) with its tests,
//!   and the Cargo.toml `description` is the only place the claim is written;
//! - no `dbg!` anywhere, and no `static mut` in a lesson (races are shown
//!   with atomics and locks, never with undefined behaviour).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::{CATALOGUE, lessons, manifest_field, project_root};

pub fn run() -> anyhow::Result<bool> {
    let problems = problems(&project_root())?;
    for problem in &problems {
        println!("{problem}");
    }
    if problems.is_empty() {
        println!("tidy: ok");
    }
    Ok(problems.is_empty())
}

/// Every rule broken, one line each; empty when the project is tidy.
pub fn problems(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let lessons = lessons(root)?;
    let workspace = read(&root.join("Cargo.toml"))?;

    // Folders under crates/: each a catalogued lesson (or common), a member,
    // and a package named like its folder.
    for entry in std::fs::read_dir(root.join("crates")).context("reading crates/")? {
        let path = entry?.path();
        let Some(folder) = path.file_name().and_then(|n| n.to_str()).map(String::from) else { continue };
        if !path.join("Cargo.toml").is_file() {
            continue;
        }
        if folder != "common" && !CATALOGUE.contains(&folder.as_str()) {
            problems.push(format!("crates/{folder} is not a lesson of the catalogue in ARCHITECTURE.md"));
        }
        let member = format!("\"crates/{folder}\",");
        if !workspace.lines().any(|line| line.trim() == member) {
            problems.push(format!("crates/{folder} is not a member of the workspace (Cargo.toml)"));
        }
        let name = manifest_field(&read(&path.join("Cargo.toml"))?, "name")?;
        if name != folder {
            problems.push(format!("crates/{folder} is the package {name}: package == folder == binary"));
        }
    }

    for lesson in &lessons {
        let src = root.join("crates").join(lesson.name).join("src");
        let [main, lab, standalone] =
            ["main.rs", "lab.rs", "standalone.rs"].map(|file| std::fs::read_to_string(src.join(file)).ok());
        let (Some(main), Some(lab), Some(standalone)) = (main, lab, standalone) else {
            problems.push(format!("crates/{}/src needs main.rs, lab.rs and standalone.rs", lesson.name));
            continue;
        };
        problems.extend(header_problems(lesson.name, &main));
        problems.extend(see_also_problems(lesson.name, &main, &lessons));
        problems.extend(shape_problems(lesson, &main, &lab, &standalone));
    }

    let readme = read(&root.join("README.md"))?;
    problems.extend(readme_problems(&readme, &lessons));
    problems.extend(rust_version_problems(root, &workspace, &readme)?);

    for file in rust_files(root)? {
        let text = read(&file)?;
        let shown = file.strip_prefix(root).unwrap_or(&file).display().to_string();
        // Spelled in two pieces so that this file does not match itself.
        let debug_print = concat!("dbg", "!(");
        if text.contains(debug_print) {
            problems.push(format!("{shown}: a stray {debug_print}...)"));
        }
        if shown.starts_with("crates/") && text.contains(concat!("static", " mut ")) {
            problems.push(format!("{shown}: `static mut` (show races with atomics or locks)"));
        }
    }
    Ok(problems)
}

/// The header rules for one lesson's `main.rs`.
fn header_problems(name: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let where_ = format!("crates/{name}/src/main.rs");
    let header: Vec<&str> =
        text.lines().take_while(|line| line.starts_with("//!")).map(|line| line[3..].trim()).collect();
    if header.is_empty() {
        return vec![format!("{where_} does not open with a //! header")];
    }
    if header[0].is_empty() {
        problems.push(format!("{where_}: the header's first line is its claim, not a blank"));
    }
    let joined = header.join("\n");
    let package = format!("-p {name}");
    for (needle, what) in [
        ("Run:", "a `Run:` section"),
        ("cargo run", "the exact run command"),
        (package.as_str(), "the exact run command"),
        ("```text", "a sample of real output in a ```text block"),
        ("See also:", "a `See also:` line"),
    ] {
        if !joined.contains(needle) {
            problems.push(format!("{where_}: the header lacks {what} ({needle})"));
        }
    }
    // The sample is real output: it contains the lesson's title line.
    let title = format!("{name}: ");
    if !header.iter().any(|line| line.starts_with(&title)) {
        problems.push(format!("{where_}: the header's sample output has no `{title}...` title line"));
    }
    problems
}

/// `See also:` names only lessons that exist: the backticked names in the
/// header's paragraph that starts with it.
fn see_also_problems(name: &str, text: &str, lessons: &[crate::Lesson]) -> Vec<String> {
    let header = text.lines().take_while(|line| line.starts_with("//!")).map(|line| line[3..].trim());
    let paragraph: Vec<&str> = header
        .skip_while(|line| !line.starts_with("See also:"))
        .take_while(|line| !line.is_empty())
        .collect();
    let joined = paragraph.join(" ");
    joined
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|named| !lessons.iter().any(|lesson| lesson.name == *named))
        .map(|named| {
            format!("crates/{name}/src/main.rs: `See also:` names {named}, which is not a lesson (yet)")
        })
        .collect()
}

/// The lines a lesson's `main.rs` ends with: the hand-over to its lab.
const HAND_OVER: [&str; 5] =
    ["mod lab;", "", "fn main() -> std::process::ExitCode {", "    lab::main()", "}"];

/// Words that belong to the lab, never to the lesson before its hand-over.
const LAB_WORDS: [&str; 7] = ["common::", "clap::", "use clap", "serde", "anyhow", "lab::", "Report"];

/// The most lines a lesson's `main.rs` has without saying why.
const MAIN_LINES: usize = 300;

/// The rules of the lesson's shape: main.rs the lesson, lab.rs the experiment.
fn shape_problems(lesson: &crate::Lesson, main: &str, lab: &str, standalone: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let name = lesson.name;
    let lines: Vec<&str> = main.lines().collect();
    let cut = lines.iter().position(|line| *line == HAND_OVER[0]);
    match cut {
        Some(cut) if lines[cut..] == HAND_OVER => {}
        _ => problems.push(format!(
            "crates/{name}/src/main.rs must end with the hand-over to its lab:\n{}",
            HAND_OVER.join("\n")
        )),
    }
    let lesson_lines = &lines[..cut.unwrap_or(lines.len())];
    for (number, line) in lesson_lines.iter().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        if let Some(word) = LAB_WORDS.iter().find(|word| code.contains(*word)) {
            problems.push(format!(
                "crates/{name}/src/main.rs:{}: `{word}` belongs in lab.rs (main.rs is the lesson)",
                number + 1
            ));
        }
    }
    let says_why = main.lines().any(|line| line.starts_with("// tidy: longer than 300 lines because"));
    if lines.len() > MAIN_LINES && !says_why {
        problems.push(format!(
            "crates/{name}/src/main.rs has {} lines; at most {MAIN_LINES}, or a `// tidy: longer than \
             300 lines because ...` line",
            lines.len()
        ));
    }
    // The claim sentence is written once, in Cargo.toml; the header may say
    // it (its sample's title line does), the code may not.
    let body: String = main.lines().filter(|line| !line.starts_with("//!")).collect::<Vec<_>>().join("\n");
    for (file, text) in [("main.rs", body.as_str()), ("lab.rs", lab), ("standalone.rs", standalone)] {
        if text.contains(&lesson.description) {
            problems.push(format!(
                "crates/{name}/src/{file} repeats the claim; it is written once, as the Cargo.toml \
                 description (clap's `about` reads it from there)"
            ));
        }
    }
    if !lab.contains("include!(\"standalone.rs\")") {
        problems.push(format!("crates/{name}/src/lab.rs does not compile standalone.rs with its tests"));
    }
    for line in standalone.lines() {
        if line.starts_with("//!") || line.starts_with("use ") {
            problems.push(format!(
                "crates/{name}/src/standalone.rs: `{line}` (it is included into main.rs: `//` comments \
                 and paths or `use` inside functions only)"
            ));
        }
    }
    problems
}

/// The Rust version is declared once (the workspace's `rust-version`), the
/// README says that one, and every locked dependency builds with it.
fn rust_version_problems(root: &Path, workspace: &str, readme: &str) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let declared = manifest_field(workspace, "rust-version")?;
    if !readme.contains(&format!("Rust {declared} or newer")) {
        problems.push(format!(
            "README.md does not say \"Rust {declared} or newer\" (the workspace's rust-version)"
        ));
    }
    let output = std::process::Command::new(crate::cargo())
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--locked"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo metadata")?;
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("reading cargo metadata's JSON")?;
    let version = |text: &str| -> Vec<u64> { text.split('.').filter_map(|n| n.parse().ok()).collect() };
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let Some(needs) = package["rust_version"].as_str() else { continue };
        if version(needs) > version(&declared) {
            problems.push(format!(
                "{} {} needs Rust {needs}; the workspace declares rust-version {declared}",
                package["name"].as_str().unwrap_or("?"),
                package["version"].as_str().unwrap_or("?")
            ));
        }
    }
    Ok(problems)
}

/// The README's lesson table against the workspace's lessons.
fn readme_problems(readme: &str, lessons: &[crate::Lesson]) -> Vec<String> {
    let mut problems = Vec::new();
    // Rows look like: | 2 | [race-condition](crates/race-condition/src/main.rs) | claim | `cargo run ...` |
    let rows: Vec<(String, String)> = readme
        .lines()
        .filter(|line| line.starts_with('|') && line.contains("](crates/"))
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(2)?.strip_prefix('[')?.split(']').next()?.to_string();
            Some((name, cells.get(3)?.to_string()))
        })
        .collect();
    let listed: Vec<&str> = rows.iter().map(|(name, _)| name.as_str()).collect();
    let expected: Vec<&str> = lessons.iter().map(|l| l.name).collect();
    if listed != expected {
        problems.push(format!(
            "README.md's lesson table lists {listed:?}; the workspace has {expected:?} (catalogue order)"
        ));
    }
    for (name, claim) in &rows {
        if let Some(lesson) = lessons.iter().find(|l| l.name == name)
            && *claim != lesson.description
        {
            problems.push(format!(
                "README.md: {name}'s claim is {claim:?}; its Cargo.toml description is {:?}",
                lesson.description
            ));
        }
    }
    problems
}

/// The `.rs` files of the lessons, the xtask and the tests.
fn rust_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> = ["crates", "xtask", "tests"].iter().map(|d| root.join(d)).collect();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD_HEADER: &str = "//! A claim.\n//!\n//! Run:\n//!\n//! ```text\n//! cargo run --release -p demo\n//! ```\n//!\n//! ```text\n//! demo: a claim\n//! ```\n//!\n//! See also: `other`.\n\nfn main() {}\n";

    #[test]
    fn a_complete_header_passes() {
        assert_eq!(header_problems("demo", GOOD_HEADER), Vec::<String>::new());
    }

    #[test]
    fn a_missing_or_placeholder_header_is_named() {
        assert_eq!(header_problems("demo", "fn main() {}\n").len(), 1);
        let placeholder = GOOD_HEADER.replace("demo: a claim", "SAMPLE");
        assert!(header_problems("demo", &placeholder)[0].contains("title line"));
    }

    #[test]
    fn see_also_names_only_lessons_that_exist() {
        let lessons = [lesson("demo", "a claim"), lesson("other", "another")];
        assert_eq!(see_also_problems("demo", GOOD_HEADER, &lessons), Vec::<String>::new());
        let future = GOOD_HEADER.replace("`other`.", "`other`,\n//! `pool-map` (soon).");
        let found = see_also_problems("demo", &future, &lessons);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("pool-map"));
    }

    fn lesson(name: &'static str, description: &str) -> crate::Lesson {
        crate::Lesson { number: 2, name, description: description.into(), package: serde_json::Value::Null }
    }

    const LAB: &str =
        "pub fn main() {}\n#[cfg(test)]\nmod standalone {\n    include!(\"standalone.rs\");\n}\n";

    #[test]
    fn a_lesson_in_shape_passes() {
        let main = format!("//! The claim, at length.\n\nfn taught() {{}}\n\n{}\n", HAND_OVER.join("\n"));
        let standalone = "// Runs it once.\nfn main() {\n    taught();\n}\n";
        assert_eq!(shape_problems(&lesson("demo", "a claim"), &main, LAB, standalone), Vec::<String>::new());
    }

    #[test]
    fn lab_code_in_the_lesson_or_a_missing_hand_over_is_named() {
        let main = format!("//! Claim.\nuse common::Report;\n\n{}\n", HAND_OVER.join("\n"));
        let found = shape_problems(&lesson("demo", "a claim"), &main, LAB, "fn main() {}\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("main.rs:2: `common::`"));
        let no_hand_over =
            shape_problems(&lesson("demo", "a claim"), "fn main() {}\n", LAB, "fn main() {}\n");
        assert!(no_hand_over[0].contains("must end with the hand-over"));
    }

    #[test]
    fn a_long_lesson_must_say_why_and_the_claim_is_written_once() {
        let long = format!("//! C.\n{}{}\n", "fn f() {}\n".repeat(400), HAND_OVER.join("\n"));
        let found = shape_problems(&lesson("demo", "a claim"), &long, LAB, "fn main() {}\n");
        assert!(found.iter().any(|p| p.contains("at most 300")), "{found:?}");
        let lab = format!("{LAB}// a claim\n");
        let main = format!("//! C.\n{}\n", HAND_OVER.join("\n"));
        let found =
            shape_problems(&lesson("demo", "a claim"), &main, &lab, "use std::thread;\nfn main() {}\n");
        assert_eq!(found.len(), 2, "{found:?}");
    }

    #[test]
    fn readme_rows_must_match_the_lessons() {
        let lessons = vec![lesson("race-condition", "loses")];
        let good = "| 2 | [race-condition](crates/race-condition/src/main.rs) | loses | `cargo run -p race-condition` |\n";
        assert!(readme_problems(good, &lessons).is_empty());
        assert_eq!(readme_problems(&good.replace("| loses |", "| wins |"), &lessons).len(), 1);
        assert_eq!(readme_problems("", &lessons).len(), 1);
    }
}
