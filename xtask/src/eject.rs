//! `cargo xtask eject LESSON DIR`: one lesson as a crate of its own.
//!
//! A lesson's `main.rs` is the lesson and ends with the hand-over to its lab:
//!
//! ```text
//! mod lab;
//!
//! fn main() -> std::process::ExitCode {
//!     lab::main()
//! }
//! ```
//!
//! The ejected crate's `src/main.rs` is `main.rs` cut at `mod lab;`, followed
//! by the lesson's `src/standalone.rs`: a plain `main` that runs the pattern
//! once and asserts the rule it teaches. Its Cargo.toml lists only the crates
//! that those two files name, at this workspace's versions; the workspace's
//! Cargo.lock comes along so the same versions are chosen, and its
//! rustfmt.toml so `cargo fmt` keeps the lesson as it is.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use crate::Usage;
use crate::{Lesson, project_root};

/// The line where a lesson's hand-over to its lab begins.
pub const HAND_OVER: &str = "mod lab;";

pub fn run(name: &str, dir: &Path) -> anyhow::Result<bool> {
    let root = project_root();
    let lessons = crate::lessons(&root)?;
    let Some(lesson) = lessons.iter().find(|l| l.name == name) else {
        let names: Vec<&str> = lessons.iter().map(|l| l.name).collect();
        return Err(Usage(format!("no lesson named {name:?}; the lessons are: {}", names.join(", "))).into());
    };
    if dir.exists() {
        let empty = dir.is_dir()
            && std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.next().is_none();
        if !empty {
            return Err(Usage(format!("{} exists and is not an empty directory", dir.display())).into());
        }
    }
    let files = ejected_files(&root, lesson)?;
    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("wrote {} to {}: cd there and `cargo run`", lesson.name, dir.display());
    Ok(true)
}

/// The ejected crate's files (path inside the crate, contents).
pub fn ejected_files(root: &Path, lesson: &Lesson) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let src = root.join("crates").join(lesson.name).join("src");
    let main = read(&src.join("main.rs"))?;
    let standalone = read(&src.join("standalone.rs"))?;
    let main =
        ejected_main(&main, &standalone).with_context(|| format!("crates/{}/src/main.rs", lesson.name))?;
    // Modules the lesson declares for itself (`mod words;`) go with it.
    let mut modules = Vec::new();
    for name in lesson_modules(&main) {
        let text = read(&src.join(format!("{name}.rs")))?;
        modules.push((PathBuf::from(format!("src/{name}.rs")), text));
    }
    let all_code = modules.iter().fold(main.clone(), |code, (_, text)| code + text);
    let manifest = manifest(lesson, &all_code)?;
    let lock = read(&root.join("Cargo.lock"))?;
    let format = read(&root.join("rustfmt.toml"))?;
    let mut files = vec![
        (PathBuf::from("rustfmt.toml"), format),
        (PathBuf::from("Cargo.toml"), manifest),
        (PathBuf::from("Cargo.lock"), lock),
        (PathBuf::from("src/main.rs"), main),
        (PathBuf::from("README.md"), readme(lesson)),
        (PathBuf::from(".gitignore"), "/target\n".to_string()),
    ];
    files.extend(modules);
    Ok(files)
}

/// The modules an ejected `main.rs` declares from files of their own
/// (`mod words;`, not `mod tests { ... }`).
fn lesson_modules(main: &str) -> Vec<&str> {
    main.lines()
        .filter_map(|line| line.strip_prefix("mod ")?.strip_suffix(';'))
        .filter(|name| name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .collect()
}

/// `main.rs` cut at the hand-over, then the standalone `main`.
pub fn ejected_main(main: &str, standalone: &str) -> anyhow::Result<String> {
    let cut = main.lines().position(|line| line.trim() == HAND_OVER).with_context(|| {
        format!("no `{HAND_OVER}` line: the lesson must end with its hand-over to the lab")
    })?;
    let lesson: Vec<&str> = main.lines().take(cut).collect();
    let mut text = lesson.join("\n").trim_end().to_string();
    text.push_str("\n\n");
    text.push_str(standalone.trim_start());
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// A crate name as it appears in Rust paths (`crossbeam-channel` -> `crossbeam_channel`).
fn rust_name(crate_name: &str) -> String {
    crate_name.replace('-', "_")
}

/// Whether `code` names the crate: `name::` or `use name`.
fn names_crate(code: &str, crate_name: &str) -> bool {
    let name = rust_name(crate_name);
    code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .any(|word| word == name || word.starts_with(&format!("{name}::")))
}

/// The ejected Cargo.toml: the lesson's own dependencies that its code names,
/// as this workspace declares them (version requirement and features).
pub fn manifest(lesson: &Lesson, code: &str) -> anyhow::Result<String> {
    let mut normal = Vec::new();
    let mut loom = Vec::new();
    let dependencies = lesson.package["dependencies"].as_array().cloned().unwrap_or_default();
    for dep in &dependencies {
        let name = dep["name"].as_str().context("a dependency without a name")?;
        if dep["kind"] == "dev" || dep["kind"] == "build" || !dep["path"].is_null() {
            continue;
        }
        let line = dependency_line(dep)?;
        match dep["target"].as_str() {
            None if names_crate(code, name) => normal.push(line),
            Some("cfg(loom)") if code.contains("cfg(loom)") => loom.push(line),
            _ => {}
        }
    }
    let mut text = format!(
        "[package]\nname = \"{name}\"\ndescription = \"{description}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
         publish = false\n\n# A crate of its own, not a member of an enclosing workspace.\n[workspace]\n\n[dependencies]\n",
        name = lesson.name,
        description = lesson.description.replace('"', "\\\""),
    );
    for line in &normal {
        text.push_str(line);
        text.push('\n');
    }
    // Features that switch the included crates' options (io-bound's `https`).
    let included: Vec<&str> = normal.iter().filter_map(|line| line.split(' ').next()).collect();
    let mut features = Vec::new();
    if let Some(map) = lesson.package["features"].as_object() {
        for (feature, enables) in map {
            let enables: Vec<&str> =
                enables.as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
            let all_included = enables.iter().all(|e| included.contains(&e.split('/').next().unwrap_or(e)));
            if all_included && code.contains(&format!("feature = \"{feature}\"")) {
                let list: Vec<String> = enables.iter().map(|e| format!("\"{e}\"")).collect();
                features.push(format!("{feature} = [{}]", list.join(", ")));
            }
        }
    }
    if !features.is_empty() {
        text.push_str("\n[features]\n");
        for line in &features {
            text.push_str(line);
            text.push('\n');
        }
    }
    if !loom.is_empty() {
        text.push_str(
            "\n# The loom model swaps the lesson's sync types for loom's (RUSTFLAGS=\"--cfg loom\").\n",
        );
        text.push_str("[target.'cfg(loom)'.dependencies]\n");
        for line in &loom {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(
            "\n[lints.rust]\nunexpected_cfgs = { level = \"warn\", check-cfg = [\"cfg(loom)\"] }\n",
        );
    }
    Ok(text)
}

fn dependency_line(dep: &Value) -> anyhow::Result<String> {
    let name = dep["name"].as_str().context("a dependency without a name")?;
    let version = dep["req"].as_str().context("a dependency without a version")?;
    let version = version.strip_prefix('^').unwrap_or(version);
    let mut fields = vec![format!("version = \"{version}\"")];
    if dep["uses_default_features"] == false {
        fields.push("default-features = false".into());
    }
    let features: Vec<String> = dep["features"]
        .as_array()
        .map(|list| list.iter().filter_map(|f| f.as_str()).map(|f| format!("\"{f}\"")).collect())
        .unwrap_or_default();
    if !features.is_empty() {
        fields.push(format!("features = [{}]", features.join(", ")));
    }
    if fields.len() == 1 {
        Ok(format!("{name} = \"{version}\""))
    } else {
        Ok(format!("{name} = {{ {} }}", fields.join(", ")))
    }
}

fn readme(lesson: &Lesson) -> String {
    format!(
        "# {name}\n\n{description}.\n\nEjected from lesson {number} of \"Threads and processes, by \
         experiment\" with `cargo xtask eject {name}`. `src/main.rs` is the lesson's own code, as the \
         lesson teaches it, followed by a plain `main` that runs the pattern once and asserts the rule \
         it teaches. The experiment around it (flags, timing, memory, the report and its verdicts) \
         stayed behind in the lesson's `lab.rs`.\n\n```sh\ncargo run\n```\n",
        name = lesson.name,
        description = lesson.description,
        number = lesson.number,
    )
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_the_lesson_declares_are_found() {
        assert_eq!(lesson_modules("mod words;\nfn f() {}\n#[cfg(test)]\nmod tests {\n}\n"), ["words"]);
    }

    #[test]
    fn the_hand_over_is_cut_and_the_standalone_main_appended() {
        let main = "//! A claim.\n\nfn taught() {}\n\nmod lab;\n\nfn main() -> std::process::ExitCode {\n    lab::main()\n}\n";
        let standalone = "// The plain main.\nfn main() {\n    taught();\n}\n";
        let text = ejected_main(main, standalone).unwrap();
        assert_eq!(
            text,
            "//! A claim.\n\nfn taught() {}\n\n// The plain main.\nfn main() {\n    taught();\n}\n"
        );
        assert!(ejected_main("fn main() {}\n", standalone).is_err());
    }

    #[test]
    fn only_crates_the_code_names_are_dependencies() {
        let code = "use crossbeam_channel::bounded;\nfn f(m: &parking_lot::Mutex<u8>) {}\n";
        assert!(names_crate(code, "crossbeam-channel"));
        assert!(names_crate(code, "parking_lot"));
        assert!(!names_crate(code, "nix"));
        assert!(!names_crate("let anyhow_ish = 1;", "anyhow"));
    }

    #[test]
    fn dependency_lines_keep_versions_and_features() {
        let dep = serde_json::json!({"name": "nix", "req": "^0.31", "features": ["signal", "fs"],
                                     "uses_default_features": true});
        assert_eq!(
            dependency_line(&dep).unwrap(),
            "nix = { version = \"0.31\", features = [\"signal\", \"fs\"] }"
        );
        let plain = serde_json::json!({"name": "memmap2", "req": "^0.9", "features": [], "uses_default_features": true});
        assert_eq!(dependency_line(&plain).unwrap(), "memmap2 = \"0.9\"");
        let bare =
            serde_json::json!({"name": "ureq", "req": "^3", "features": [], "uses_default_features": false});
        assert_eq!(dependency_line(&bare).unwrap(), "ureq = { version = \"3\", default-features = false }");
    }
}
