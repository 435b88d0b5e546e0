//! `cargo xtask report`: a run of every lesson as one page a person can keep,
//! show and compare.
//!
//! The page is one self-contained HTML file (inline CSS and SVG, no script,
//! nothing fetched): the machine's fingerprint, the verdict of every claim
//! with its evidence, and each lesson's charts ([`crate::charts`]) above its
//! figures. The JSON it was drawn from is written beside it, so a page can be
//! drawn again (`--from`) or compared with another machine's (`--compare`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use crate::charts::{self, three_digits};
use crate::{Usage, browser, project_root};

const USAGE: &str = "usage: cargo xtask report [--quick] [--busy] [--from FILE] [--out DIR] [--check]\n\
                     \x20      cargo xtask report --compare A.json B.json [--out DIR] [--check]";

/// What the command line asked for.
#[derive(Debug, Default, PartialEq)]
struct Request {
    quick: bool,
    busy: bool,
    from: Option<PathBuf>,
    compare: Option<(PathBuf, PathBuf)>,
    out: Option<PathBuf>,
    /// Render the page in headless Chromium and check it (and screenshot it).
    check: bool,
}

fn parse(args: &[&str]) -> Result<Request, Usage> {
    let mut request = Request::default();
    let mut args = args.iter();
    let usage = |why: String| Usage(format!("{why}\n{USAGE}"));
    while let Some(&arg) = args.next() {
        let mut value =
            |flag: &str| args.next().map(PathBuf::from).ok_or_else(|| usage(format!("{flag} needs a value")));
        match arg {
            "--quick" => request.quick = true,
            "--busy" => request.busy = true,
            "--check" => request.check = true,
            "--from" => request.from = Some(value("--from")?),
            "--out" => request.out = Some(value("--out")?),
            "--compare" => request.compare = Some((value("--compare")?, value("--compare")?)),
            other => return Err(usage(format!("unknown argument {other:?}"))),
        }
    }
    if request.compare.is_some() && (request.from.is_some() || request.quick || request.busy) {
        return Err(usage("--compare reads two saved runs; it takes no --from, --quick or --busy".into()));
    }
    if request.from.is_some() && (request.quick || request.busy) {
        return Err(usage("--from reads a saved run; --quick and --busy are for a new one".into()));
    }
    Ok(request)
}

pub fn run(args: &[&str]) -> anyhow::Result<bool> {
    let request = parse(args)?;
    let out = request.out.clone().unwrap_or_else(|| project_root().join("target").join("report"));
    // Checked before anything runs: a bad --out must not cost a whole run.
    if out.exists() && !out.is_dir() {
        return Err(Usage(format!("--out {} exists and is not a directory", out.display())).into());
    }
    let (page, json, passed) = if let Some((a, b)) = &request.compare {
        let (a_doc, b_doc) = (read_document(a)?, read_document(b)?);
        let page = compare_page(&a_doc, &b_doc, &label_of(a), &label_of(b));
        (page, serde_json::json!({"a": a_doc, "b": b_doc}), true)
    } else {
        let (document, passed) = match &request.from {
            Some(file) => (read_document(file)?, true),
            None => {
                let run = crate::all::execute(request.quick, request.busy)?;
                crate::all::print_summary(&run.outcomes, run.quick, run.busy);
                (crate::all::document(&run), run.passed())
            }
        };
        (page(&document), document, passed)
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let html = out.join("report.html");
    std::fs::write(&html, &page).with_context(|| format!("writing {}", html.display()))?;
    let json_path = out.join("report.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    println!("\nwrote {} and {}", html.display(), json_path.display());
    if request.check {
        let expected = if request.compare.is_some() { None } else { Some(&json) };
        let checked = browser::check(&html, expected, &out.join("report.png"))?;
        println!("{checked}");
    }
    Ok(passed)
}

/// A file's name without its extension, to label a column of a comparison.
fn label_of(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

/// Reads a saved `cargo xtask all --json` document; anything else is bad
/// usage (exit 2) with one line saying what is wrong.
pub fn read_document(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| Usage(format!("cannot read {}: {err}", path.display())))?;
    let document: Value =
        serde_json::from_str(&text).map_err(|err| Usage(format!("{} is not JSON: {err}", path.display())))?;
    shape_problem(&document).map_or(Ok(document), |why| {
        Err(Usage(format!("{} is not a `cargo xtask all --json` document: {why}", path.display())).into())
    })
}

/// What keeps `document` from being an `xtask all --json` document, if anything.
fn shape_problem(document: &Value) -> Option<String> {
    if document["runner"] != "cargo xtask all" {
        return Some("its \"runner\" is not \"cargo xtask all\"".into());
    }
    if !document["machine"].is_object() {
        return Some("it has no \"machine\" object".into());
    }
    let Some(lessons) = document["lessons"].as_array() else {
        return Some("it has no \"lessons\" array".into());
    };
    for (index, lesson) in lessons.iter().enumerate() {
        if !lesson["lesson"].is_string() || !lesson["results"].is_array() || !lesson["claims"].is_array() {
            return Some(format!("lessons[{index}] lacks a \"lesson\" name, \"results\" or \"claims\""));
        }
    }
    None
}

/// A figure as the tables show it: a count as a whole number, a measured
/// real with about three significant digits.
fn figure_value(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{}", value as i64) } else { three_digits(value) }
}

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const STYLE: &str = "
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .6em 0; } td, th { padding: .25em .7em; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.holds { color: #17702a; } .does-not-hold { color: #b0201a; font-weight: bold; } .inconclusive { color: #a86200; } .skipped { color: #777; }
tr.differs { background: #fff1d6; } .claim { font-style: italic; } .params, .meta { color: #555; font-size: .9em; }
figure.chart { margin: 1em 0; } figure.chart svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-weight: 600; margin-bottom: .3em; } details summary { cursor: pointer; }
.totals span { margin-right: 1.2em; }
";

fn verdict_mark(verdict: &str) -> &'static str {
    match verdict {
        "holds" => "✔",
        "does not hold" => "✘",
        "inconclusive" => "?",
        _ => "–",
    }
}

fn verdict_class(verdict: &str) -> String {
    verdict.replace(' ', "-")
}

fn lessons(document: &Value) -> &[Value] {
    document["lessons"].as_array().map(Vec::as_slice).unwrap_or_default()
}

fn claims(lesson: &Value) -> &[Value] {
    lesson["claims"].as_array().map(Vec::as_slice).unwrap_or_default()
}

/// The count of claims per verdict across the document.
pub fn verdict_counts(document: &Value) -> [(&'static str, usize); 4] {
    ["holds", "inconclusive", "does not hold", "skipped"].map(|verdict| {
        let count = lessons(document).iter().flat_map(claims).filter(|c| c["verdict"] == verdict).count();
        (verdict, count)
    })
}

/// The fingerprint's rows: (label, value) in reading order.
fn fingerprint_rows(machine: &Value) -> Vec<(&'static str, String)> {
    let text = |key: &str| match &machine[key] {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        other => other.to_string(),
    };
    let gib = machine["memory_bytes"]
        .as_f64()
        .map_or("?".into(), |b| format!("{:.1} GiB", b / (1u64 << 30) as f64));
    let tools = machine["tools"]
        .as_object()
        .map(|t| {
            t.iter().map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join("; ")
        })
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "none".into());
    vec![
        ("CPU", text("cpu")),
        ("cores this process may use", text("cores")),
        ("CPUs online", text("machine_cores")),
        ("CPUs in the affinity mask", text("affinity_cores")),
        ("cgroup CPU limit (cores)", text("cpu_limit")),
        ("memory", gib),
        ("operating system", text("os")),
        ("kernel", text("kernel")),
        ("virtual machine", text("virtualization")),
        ("container", text("container")),
        ("build profile", text("profile")),
        ("compiler", text("rustc")),
        ("programs run beside the lessons", tools),
    ]
}

/// The whole page of one run.
pub fn page(document: &Value) -> String {
    let mut html = String::new();
    let flags = [("--quick", document["quick"] == true), ("--busy", document["busy"] == true)]
        .iter()
        .filter(|f| f.1)
        .map(|f| f.0)
        .collect::<Vec<_>>()
        .join(" ");
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Threads and processes, measured</title><style>{STYLE}</style></head><body>\n\
         <h1>Threads and processes, measured on this machine</h1>\n\
         <p class=\"meta\">cargo xtask all {} · {} lessons · {:.1} s in all</p>\n",
        esc(&flags),
        lessons(document).len(),
        document["elapsed_s"].as_f64().unwrap_or(0.0)
    );
    html.push_str("<section id=\"machine\"><h2>The machine</h2><table class=\"fingerprint\">\n");
    for (label, value) in fingerprint_rows(&document["machine"]) {
        let _ = writeln!(html, "<tr><th>{}</th><td>{}</td></tr>", esc(label), esc(&value));
    }
    html.push_str("</table></section>\n");

    html.push_str("<section id=\"verdicts\"><h2>Verdicts</h2>\n<p class=\"totals\">");
    for (verdict, count) in verdict_counts(document) {
        let _ = write!(
            html,
            "<span class=\"{}\" data-total=\"{}\">{} {count} {verdict}</span>",
            verdict_class(verdict),
            verdict_class(verdict),
            verdict_mark(verdict)
        );
    }
    html.push_str("</p>\n<table><tr><th>lesson</th><th>claim</th><th>verdict</th><th>evidence</th></tr>\n");
    for lesson in lessons(document) {
        let name = lesson["lesson"].as_str().unwrap_or("?");
        for claim in claims(lesson) {
            let verdict = claim["verdict"].as_str().unwrap_or("?");
            let reason = claim["reason"].as_str().map(|r| format!(" — {r}")).unwrap_or_default();
            let _ = writeln!(
                html,
                "<tr data-verdict=\"{}\"><td><a href=\"#lesson-{}\">{}</a></td><td title=\"{}\">{}</td>\
                 <td class=\"{}\">{} {}</td><td><details><summary>evidence</summary>{}{}</details></td></tr>",
                verdict_class(verdict),
                esc(name),
                esc(name),
                esc(claim["statement"].as_str().unwrap_or("")),
                esc(claim["id"].as_str().unwrap_or("?")),
                verdict_class(verdict),
                verdict_mark(verdict),
                esc(verdict),
                esc(claim["evidence"].as_str().unwrap_or("")),
                esc(&reason)
            );
        }
    }
    html.push_str("</table>\n");
    if let Some(failures) = document["failures"].as_array().filter(|f| !f.is_empty()) {
        html.push_str("<h3>Lessons that failed</h3><ul>\n");
        for failure in failures {
            let _ = writeln!(
                html,
                "<li class=\"does-not-hold\">{}: {}</li>",
                esc(failure["lesson"].as_str().unwrap_or("?")),
                esc(failure["failure"].as_str().unwrap_or(""))
            );
        }
        html.push_str("</ul>\n");
    }
    html.push_str("</section>\n");

    for (index, lesson) in lessons(document).iter().enumerate() {
        lesson_section(&mut html, index + 1, lesson);
    }
    html.push_str("</body></html>\n");
    html
}

fn lesson_section(html: &mut String, number: usize, lesson: &Value) {
    let name = lesson["lesson"].as_str().unwrap_or("?");
    let params = lesson["params"]
        .as_object()
        .map(|p| p.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let _ = write!(
        html,
        "<section class=\"lesson\" id=\"lesson-{}\"><h2>{number}. {}</h2>\n<p class=\"claim\">{}</p>\n\
         <p class=\"params\">params {} · {} build · {:.2} s</p>\n",
        esc(name),
        esc(name),
        esc(lesson["claim"].as_str().unwrap_or("")),
        esc(&params),
        esc(lesson["host"]["profile"].as_str().unwrap_or("?")),
        lesson["elapsed_s"].as_f64().unwrap_or(0.0)
    );
    for chart in charts::charts(lesson) {
        let _ = writeln!(
            html,
            "<figure class=\"chart\" id=\"chart-{}\" title=\"{}\">{}</figure>",
            esc(&chart.id),
            esc(&chart.title),
            chart.svg
        );
    }
    html.push_str("<ul class=\"claims\">\n");
    for claim in claims(lesson) {
        let verdict = claim["verdict"].as_str().unwrap_or("?");
        let reason = claim["reason"].as_str().map(|r| format!(" ({r})")).unwrap_or_default();
        let _ = writeln!(
            html,
            "<li><span class=\"{}\">{} {}</span>: {}<br><small>{}{}</small></li>",
            verdict_class(verdict),
            verdict_mark(verdict),
            esc(claim["id"].as_str().unwrap_or("?")),
            esc(claim["statement"].as_str().unwrap_or("")),
            esc(claim["evidence"].as_str().unwrap_or("")),
            esc(&reason)
        );
    }
    html.push_str(
        "</ul>\n<details><summary>every figure</summary><table>\
                   <tr><th>experiment</th><th>metric</th><th>value</th><th>unit</th></tr>\n",
    );
    for figure in lesson["results"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(figure["experiment"].as_str().unwrap_or("")),
            esc(figure["metric"].as_str().unwrap_or("")),
            figure["value"].as_f64().map(figure_value).unwrap_or_default(),
            esc(figure["unit"].as_str().unwrap_or(""))
        );
    }
    html.push_str("</table></details></section>\n");
}

/// One figure of two runs side by side.
#[derive(Debug, PartialEq)]
pub struct Paired {
    pub id: String,
    pub unit: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
}

impl Paired {
    /// B over A, when both exist and A is not zero.
    pub fn ratio(&self) -> Option<f64> {
        match (self.a, self.b) {
            (Some(a), Some(b)) if a != 0.0 => Some(b / a),
            _ => None,
        }
    }
}

/// A lesson's figures in A next to B's, by result id, in A's order then
/// B's figures that A does not have.
pub fn paired_figures(a: &Value, b: &Value) -> Vec<Paired> {
    let figures = |report: &Value| -> Vec<(String, String, f64)> {
        report["results"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|r| {
                Some((
                    r["id"].as_str()?.to_string(),
                    r["unit"].as_str().unwrap_or("").to_string(),
                    r["value"].as_f64()?,
                ))
            })
            .collect()
    };
    let (a, b) = (figures(a), figures(b));
    let mut paired: Vec<Paired> = a
        .iter()
        .map(|(id, unit, value)| Paired {
            id: id.clone(),
            unit: unit.clone(),
            a: Some(*value),
            b: b.iter().find(|f| &f.0 == id).map(|f| f.2),
        })
        .collect();
    for (id, unit, value) in &b {
        if !a.iter().any(|f| &f.0 == id) {
            paired.push(Paired { id: id.clone(), unit: unit.clone(), a: None, b: Some(*value) });
        }
    }
    paired
}

/// Every claim whose verdict differs between the runs (or exists in only
/// one): (lesson, claim, verdict in A, verdict in B).
pub fn differing_verdicts(a: &Value, b: &Value) -> Vec<(String, String, String, String)> {
    let verdicts = |document: &Value| -> Vec<(String, String, String)> {
        lessons(document)
            .iter()
            .flat_map(|lesson| {
                let name = lesson["lesson"].as_str().unwrap_or("?").to_string();
                claims(lesson).iter().map(move |c| {
                    (
                        name.clone(),
                        c["id"].as_str().unwrap_or("?").to_string(),
                        c["verdict"].as_str().unwrap_or("?").to_string(),
                    )
                })
            })
            .collect()
    };
    let (a, b) = (verdicts(a), verdicts(b));
    let find = |list: &[(String, String, String)], lesson: &str, id: &str| {
        list.iter().find(|v| v.0 == lesson && v.1 == id).map_or("absent".to_string(), |v| v.2.clone())
    };
    let mut keys: Vec<(String, String)> = a.iter().chain(&b).map(|v| (v.0.clone(), v.1.clone())).collect();
    keys.dedup();
    let mut seen = Vec::new();
    let mut differing = Vec::new();
    for (lesson, id) in keys {
        if seen.contains(&(lesson.clone(), id.clone())) {
            continue;
        }
        let (va, vb) = (find(&a, &lesson, &id), find(&b, &lesson, &id));
        if va != vb {
            differing.push((lesson.clone(), id.clone(), va, vb));
        }
        seen.push((lesson, id));
    }
    differing
}

/// The page of two runs: both fingerprints, each figure of A next to B's
/// with their ratio, and every claim whose verdict differs.
pub fn compare_page(a: &Value, b: &Value, a_label: &str, b_label: &str) -> String {
    let mut html = String::new();
    let (al, bl) = (esc(a_label), esc(b_label));
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Two runs compared</title><style>{STYLE}</style></head><body>\n\
         <h1>Two runs compared: A = {al}, B = {bl}</h1>\n"
    );
    html.push_str(
        "<section id=\"machine\"><h2>The machines</h2><table><tr><th></th><th>A</th><th>B</th></tr>\n",
    );
    for ((label, va), (_, vb)) in
        fingerprint_rows(&a["machine"]).into_iter().zip(fingerprint_rows(&b["machine"]))
    {
        let class = if va != vb { " class=\"differs\"" } else { "" };
        let _ = writeln!(
            html,
            "<tr{class}><th>{}</th><td>{}</td><td>{}</td></tr>",
            esc(label),
            esc(&va),
            esc(&vb)
        );
    }
    let runs = |d: &Value| {
        format!("quick={} busy={} {:.1} s", d["quick"], d["busy"], d["elapsed_s"].as_f64().unwrap_or(0.0))
    };
    let _ = writeln!(
        html,
        "<tr><th>run</th><td>{}</td><td>{}</td></tr></table></section>",
        esc(&runs(a)),
        esc(&runs(b))
    );

    let differing = differing_verdicts(a, b);
    let _ = writeln!(
        html,
        "<section id=\"verdicts\"><h2>Verdicts that differ</h2><p class=\"totals\" data-differing=\"{}\">{} claim(s) differ</p>",
        differing.len(),
        differing.len()
    );
    if !differing.is_empty() {
        html.push_str("<table><tr><th>lesson</th><th>claim</th><th>A</th><th>B</th></tr>\n");
        for (lesson, id, va, vb) in &differing {
            let _ = writeln!(
                html,
                "<tr class=\"differs\" data-differs=\"1\"><td><a href=\"#lesson-{}\">{}</a></td><td>{}</td>\
                 <td class=\"{}\">{}</td><td class=\"{}\">{}</td></tr>",
                esc(lesson),
                esc(lesson),
                esc(id),
                verdict_class(va),
                esc(va),
                verdict_class(vb),
                esc(vb)
            );
        }
        html.push_str("</table>\n");
    }
    html.push_str("</section>\n");

    let mut names: Vec<&str> = lessons(a).iter().filter_map(|l| l["lesson"].as_str()).collect();
    for name in lessons(b).iter().filter_map(|l| l["lesson"].as_str()) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let find = |d: &Value, name: &str| {
        lessons(d).iter().find(|l| l["lesson"] == name).cloned().unwrap_or(Value::Null)
    };
    for name in names {
        let (la, lb) = (find(a, name), find(b, name));
        let _ =
            writeln!(html, "<section class=\"lesson\" id=\"lesson-{}\"><h2>{}</h2>", esc(name), esc(name));
        html.push_str("<table><tr><th>claim</th><th>A</th><th>B</th></tr>\n");
        let ids: Vec<String> = claims(&la)
            .iter()
            .chain(claims(&lb))
            .filter_map(|c| c["id"].as_str().map(String::from))
            .fold(Vec::new(), |mut ids, id| {
                if !ids.contains(&id) {
                    ids.push(id);
                }
                ids
            });
        for id in ids {
            let verdict = |l: &Value| {
                claims(l)
                    .iter()
                    .find(|c| c["id"] == id.as_str())
                    .and_then(|c| c["verdict"].as_str())
                    .unwrap_or("absent")
                    .to_string()
            };
            let (va, vb) = (verdict(&la), verdict(&lb));
            let class = if va != vb { " class=\"differs\"" } else { "" };
            let _ = writeln!(
                html,
                "<tr{class}><td>{}</td><td class=\"{}\">{} {}</td><td class=\"{}\">{} {}</td></tr>",
                esc(&id),
                verdict_class(&va),
                verdict_mark(&va),
                esc(&va),
                verdict_class(&vb),
                verdict_mark(&vb),
                esc(&vb)
            );
        }
        html.push_str(
            "</table>\n<table><tr><th>figure</th><th>unit</th><th>A</th><th>B</th><th>B / A</th></tr>\n",
        );
        for pair in paired_figures(&la, &lb) {
            let show = |v: Option<f64>| v.map(figure_value).unwrap_or_else(|| "–".into());
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&pair.id),
                esc(&pair.unit),
                show(pair.a),
                show(pair.b),
                pair.ratio().map(|r| format!("{}x", three_digits(r))).unwrap_or_else(|| "–".into())
            );
        }
        html.push_str("</table></section>\n");
    }
    html.push_str("</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(verdict: &str, lost: f64) -> Value {
        serde_json::json!({
            "runner": "cargo xtask all", "schema": 1, "quick": true, "busy": false, "elapsed_s": 1.0,
            "machine": {"cpu": "Test CPU", "cores": 2, "memory_bytes": 1073741824u64, "tools": {}},
            "lessons": [{
                "lesson": "race-condition", "claim": "loses updates", "params": {"threads": 2},
                "host": {"profile": "release", "cores": 2},
                "results": [{"id": "split.lost", "experiment": "split", "metric": "lost", "value": lost, "unit": "updates"}],
                "claims": [{"id": "lost-updates", "verdict": verdict, "statement": "s", "evidence": "e <b>"}],
            }],
            "failures": [],
        })
    }

    #[test]
    fn the_command_line_is_read_or_refused() {
        assert_eq!(parse(&["--quick"]).unwrap(), Request { quick: true, ..Request::default() });
        let compare = parse(&["--compare", "a.json", "b.json", "--out", "d"]).unwrap();
        assert_eq!(compare.compare, Some(("a.json".into(), "b.json".into())));
        assert!(parse(&["--compare", "a.json"]).is_err());
        assert!(parse(&["--from"]).is_err());
        assert!(parse(&["--from", "x", "--quick"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }

    #[test]
    fn a_document_of_another_shape_is_refused_with_what_is_wrong() {
        assert_eq!(shape_problem(&document("holds", 1.0)), None);
        assert!(shape_problem(&serde_json::json!({"lesson": "x"})).unwrap().contains("runner"));
        let mut no_claims = document("holds", 1.0);
        no_claims["lessons"][0].as_object_mut().unwrap().remove("claims");
        assert!(shape_problem(&no_claims).unwrap().contains("lessons[0]"));
    }

    #[test]
    fn the_page_escapes_text_and_counts_verdicts() {
        let html = page(&document("inconclusive", 3.0));
        assert!(html.contains("e &lt;b&gt;") && !html.contains("e <b>"));
        assert!(html.contains("id=\"lesson-race-condition\""));
        assert_eq!(html.matches("data-verdict=\"inconclusive\"").count(), 1);
        assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href=\"http"));
    }

    #[test]
    fn a_comparison_pairs_figures_with_their_ratio_and_finds_differing_verdicts() {
        let (a, b) = (document("holds", 4.0), document("inconclusive", 6.0));
        let pairs = paired_figures(&a["lessons"][0], &b["lessons"][0]);
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].ratio(), Some(1.5));
        let differing = differing_verdicts(&a, &b);
        assert_eq!(
            differing,
            vec![("race-condition".into(), "lost-updates".into(), "holds".into(), "inconclusive".into())]
        );
        assert!(differing_verdicts(&a, &a).is_empty());
        let mut only_a = document("holds", 4.0);
        only_a["lessons"][0]["claims"][0]["id"] = "other".into();
        assert_eq!(differing_verdicts(&a, &only_a).len(), 2, "a claim in only one run differs");
        let html = compare_page(&a, &b, "release", "quick");
        assert!(html.contains("1.50x") && html.contains("data-differing=\"1\""));
        assert_eq!(Paired { id: "x".into(), unit: "s".into(), a: Some(0.0), b: Some(1.0) }.ratio(), None);
    }
}
