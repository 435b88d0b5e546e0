//! The report as a person sees it: rendered by headless Chromium, checked,
//! and photographed.
//!
//! The page itself has no script. The check renders a copy of it with a few
//! lines of JavaScript appended, which measure what the browser laid out
//! (every lesson's section, the drawn marks of every chart, the verdict
//! rows, anything the page tried to fetch) and write it into the DOM as
//! JSON; `--dump-dom` hands that back. A screenshot of the whole page
//! follows, so a person can look at it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::run::output_with_deadline;

/// The browsers tried, in order: Debian's `chromium-headless-shell` (what
/// `.ci/run` installs) and the full browsers.
const BROWSERS: [&str; 4] = ["chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"];

/// How long a browser may take to render the page once.
const RENDER_LIMIT: Duration = Duration::from_secs(90);

/// Appended to a copy of the page: what the browser laid out, as JSON in
/// `<pre id="rendered">`. No `<`, `>` or `&` in it, so it survives the dump.
const PROBE: &str = r#"<script>
(function () {
  const drawn = (svg) => [...svg.querySelectorAll('rect, path, polyline, line, circle')]
    .filter((e) => { const b = e.getBBox(); return b.width > 0 || b.height > 0; }).length;
  const out = {
    sections: [...document.querySelectorAll('section.lesson')].map((s) => s.id),
    charts: [...document.querySelectorAll('figure.chart')].map((f) => {
      const svg = f.querySelector('svg');
      const box = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
      return { id: f.id, marks: svg ? drawn(svg) : 0, texts: svg ? svg.querySelectorAll('text').length : 0,
               width: box.width, height: box.height };
    }),
    verdicts: {},
    fetched: performance.getEntriesByType('resource').map((r) => r.name),
    height: document.documentElement.scrollHeight,
  };
  for (const row of document.querySelectorAll('[data-verdict]')) {
    const v = row.getAttribute('data-verdict');
    out.verdicts[v] = (out.verdicts[v] || 0) + 1;
  }
  const pre = document.createElement('pre');
  pre.id = 'rendered';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"#;

/// The browser to use, or `None` when none is installed.
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    BROWSERS
        .iter()
        .find_map(|name| std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file()))
}

/// What the browser rendered.
#[derive(Debug)]
pub struct Rendered {
    pub browser: PathBuf,
    pub sections: usize,
    pub charts: usize,
    pub screenshot: PathBuf,
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rendered by {}: {} lesson sections, {} charts with drawn marks, nothing fetched; screenshot {}",
            self.browser.display(),
            self.sections,
            self.charts,
            self.screenshot.display()
        )
    }
}

fn browser_command(browser: &Path) -> Command {
    let mut command = Command::new(browser);
    // No sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    command.args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]);
    command
}

/// Renders `html` in headless Chromium and checks it: a section per lesson
/// of `document` (when given: a run's page, which has charts), every chart
/// with drawn marks and a size,
/// verdict rows that count as the document's do, nothing fetched; then
/// writes a screenshot of the whole page to `screenshot`.
pub fn check(html: &Path, document: Option<&Value>, screenshot: &Path) -> anyhow::Result<Rendered> {
    let browser = find().context("no Chromium found (apt-get install chromium-headless-shell)")?;
    let page = std::fs::read_to_string(html).with_context(|| format!("reading {}", html.display()))?;
    let probe_dir =
        tempfile::Builder::new().prefix("xtask-report-").tempdir().context("creating a temp dir")?;
    let probed = probe_dir.path().join("probed.html");
    let with_probe = page.replacen("</body>", &format!("{PROBE}</body>"), 1);
    std::fs::write(&probed, with_probe).with_context(|| format!("writing {}", probed.display()))?;
    let output = output_with_deadline(
        browser_command(&browser).arg("--dump-dom").arg(file_url(&probed)?),
        RENDER_LIMIT,
    );
    drop(probe_dir);
    let output = output?;
    ensure!(output.status.success(), "{} --dump-dom failed: {}", browser.display(), output.status);
    let dom = String::from_utf8_lossy(&output.stdout);
    let rendered =
        rendered_json(&dom).context("the browser's DOM has no rendered figures (did the page load?)")?;
    let problems = problems(&rendered, document);
    if !problems.is_empty() {
        bail!("the rendered page is not right:\n  {}", problems.join("\n  "));
    }
    // The whole page: as tall as the browser laid it out (at most 20,000 px).
    let height = rendered["height"].as_f64().unwrap_or(3000.0).clamp(600.0, 20_000.0) as u32;
    let shot = output_with_deadline(
        browser_command(&browser)
            .arg(format!("--window-size=1200,{height}"))
            .arg(format!("--screenshot={}", absolute(screenshot)?.display()))
            .arg(file_url(html)?),
        RENDER_LIMIT,
    )?;
    ensure!(shot.status.success() && screenshot.is_file(), "the screenshot failed: {}", shot.status);
    Ok(Rendered {
        browser,
        sections: rendered["sections"].as_array().map_or(0, Vec::len),
        charts: rendered["charts"].as_array().map_or(0, Vec::len),
        screenshot: screenshot.to_path_buf(),
    })
}

/// The probe's JSON out of a dumped DOM.
fn rendered_json(dom: &str) -> Option<Value> {
    let start = dom.find("<pre id=\"rendered\">")? + "<pre id=\"rendered\">".len();
    let end = start + dom[start..].find("</pre>")?;
    let text = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&text).ok()
}

/// What is wrong with a rendered page, against the document it shows.
fn problems(rendered: &Value, document: Option<&Value>) -> Vec<String> {
    let mut problems = Vec::new();
    let sections: Vec<&str> =
        rendered["sections"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if let Some(document) = document {
        for lesson in document["lessons"].as_array().into_iter().flatten() {
            let name = lesson["lesson"].as_str().unwrap_or("?");
            if !sections.contains(&format!("lesson-{name}").as_str()) {
                problems.push(format!("no section for the lesson {name}"));
            }
        }
        for (verdict, count) in crate::report::verdict_counts(document) {
            let shown = rendered["verdicts"][verdict.replace(' ', "-")].as_u64().unwrap_or(0) as usize;
            if shown != count {
                problems.push(format!("{shown} rows show {verdict:?}, the JSON has {count}"));
            }
        }
    }
    let charts = rendered["charts"].as_array().map(Vec::as_slice).unwrap_or_default();
    // A run's page has charts; a comparison's has tables only.
    if charts.is_empty() && document.is_some() {
        problems.push("no chart on the page".into());
    }
    for chart in charts {
        let id = chart["id"].as_str().unwrap_or("?");
        if chart["marks"].as_u64().unwrap_or(0) < 3 || chart["texts"].as_u64().unwrap_or(0) < 3 {
            problems.push(format!("chart {id} has no drawn marks or labels ({chart})"));
        }
        if chart["width"].as_f64().unwrap_or(0.0) < 100.0 || chart["height"].as_f64().unwrap_or(0.0) < 50.0 {
            problems.push(format!("chart {id} was laid out too small ({chart})"));
        }
    }
    if let Some(fetched) = rendered["fetched"].as_array().filter(|f| !f.is_empty()) {
        problems.push(format!("the page fetched {fetched:?}: it must be self-contained"));
    }
    problems
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir()?.join(path) })
}

fn file_url(path: &Path) -> anyhow::Result<String> {
    Ok(format!("file://{}", absolute(path)?.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A saved `cargo xtask all --quick --json` of this project, run on the
    /// machine named inside it.
    const FIXTURE: &str = include_str!("../fixtures/all-quick.json");

    #[test]
    fn a_rendered_page_is_checked_against_its_document() {
        let document: Value = serde_json::from_str(FIXTURE).unwrap();
        let good = serde_json::json!({
            "sections": document["lessons"].as_array().unwrap().iter()
                .map(|l| format!("lesson-{}", l["lesson"].as_str().unwrap())).collect::<Vec<_>>(),
            "charts": [{"id": "chart-x", "marks": 9, "texts": 12, "width": 700.0, "height": 300.0}],
            "verdicts": crate::report::verdict_counts(&document).iter()
                .map(|(v, n)| (v.replace(' ', "-"), serde_json::json!(n))).collect::<serde_json::Map<_, _>>(),
            "fetched": [],
        });
        assert_eq!(problems(&good, Some(&document)), Vec::<String>::new());
        let mut bad = good.clone();
        bad["sections"] = serde_json::json!([]);
        bad["charts"][0]["marks"] = 0.into();
        bad["fetched"] = serde_json::json!(["https://example.com/font.woff"]);
        let found = problems(&bad, Some(&document));
        assert!(found.iter().any(|p| p.starts_with("no section")), "{found:?}");
        assert!(found.iter().any(|p| p.contains("no drawn marks")), "{found:?}");
        assert!(found.iter().any(|p| p.contains("self-contained")), "{found:?}");
    }

    /// The page of a real run, rendered by a real browser. Skipped, saying
    /// so, only where no Chromium is installed (`.ci/run` installs one).
    #[test]
    fn the_page_renders_in_chromium() {
        if find().is_none() {
            eprintln!("SKIPPED the_page_renders_in_chromium: no Chromium on the PATH");
            return;
        }
        let document: Value = serde_json::from_str(FIXTURE).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let html = dir.path().join("report.html");
        std::fs::write(&html, crate::report::page(&document)).unwrap();
        let rendered = check(&html, Some(&document), &dir.path().join("report.png")).unwrap();
        assert_eq!(rendered.sections, document["lessons"].as_array().unwrap().len());
        assert!(rendered.charts >= rendered.sections);
    }
}
