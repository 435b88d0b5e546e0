//! `cargo xtask tidy`: the rules of DESIGN.md that code can check.
//!
//! - every folder under `crates/` but `common` is a lesson of the catalogue,
//!   a workspace member, and a package of the same name;
//! - every lesson's `main.rs` opens with its `//!` header: the claim, `Run:`
//!   with its `cargo run -p` line, a sample of real output in a `text` block
//!   (its first line is the lesson's title line), and `See also:`;
//! - the README's lesson table lists exactly the workspace's lessons, in
//!   catalogue order, each with its Cargo.toml description;
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
            problems.push(format!("crates/{folder} is not a lesson of the catalogue in DESIGN.md"));
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
        let main = root.join("crates").join(lesson.name).join("src/main.rs");
        match std::fs::read_to_string(&main) {
            Ok(text) => problems.extend(header_problems(lesson.name, &text)),
            Err(_) => problems.push(format!("crates/{}/src/main.rs is missing", lesson.name)),
        }
    }

    problems.extend(readme_problems(&read(&root.join("README.md"))?, &lessons));

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
    fn readme_rows_must_match_the_lessons() {
        let lessons = vec![crate::Lesson { number: 2, name: "race-condition", description: "loses".into() }];
        let good = "| 2 | [race-condition](crates/race-condition/src/main.rs) | loses | `cargo run -p race-condition` |\n";
        assert!(readme_problems(good, &lessons).is_empty());
        assert_eq!(readme_problems(&good.replace("| loses |", "| wins |"), &lessons).len(), 1);
        assert_eq!(readme_problems("", &lessons).len(), 1);
    }
}
