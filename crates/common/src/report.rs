//! What a lesson measured and what it concluded, rendered as text or JSON.
//!
//! A lesson fills one [`Report`]: its parameters, its figures (each one
//! experiment's value of one metric, with a unit), and its claims (each with a
//! verdict computed from those figures and the evidence for it). The report
//! then renders itself in the shape `ARCHITECTURE.md` fixes for every lesson:
//!
//! ```text
//! race-condition: unsynchronized read-modify-write loses updates
//! host    2 cores AMD EPYC, 23.5 GiB, linux 6.18.44, vm in docker, release
//! params  threads=5 increments=10000 trials=20
//!
//! experiment        expected     lost
//!                    updates  updates
//! split load/store     50000    18123
//!
//! ✔ lost-updates  the split load/store lost updates: in 20/20 trials
//! ```
//!
//! or, under `--json`, as exactly one JSON object on one line of stdout.

use std::fmt::Write as _;
use std::time::Instant;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::host::Host;

/// The version of the JSON shape; bump it when a field changes meaning.
pub const SCHEMA: u32 = 3;

/// The units a figure may be in: one small vocabulary, so that a script
/// reading several lessons' JSON can rely on them. `schema/report.schema.json`
/// lists the same (a test keeps the two equal). `x` is a ratio of two
/// figures, `fraction` a share between 0 and 1; the nouns count things.
pub const UNITS: &[&str] = &[
    "s",
    "ms",
    "us",
    "ns",
    "ns/increment",
    "bytes",
    "MiB",
    "MB/s",
    "M items/s",
    "M messages/s",
    "x",
    "fraction",
    "cores",
    "items",
    "results",
    "retries",
    "rounds",
    "runs",
    "threads",
    "trials",
    "updates",
    "URLs",
    "words",
];

/// A figure's stable id: its experiment and metric, lowercased, each run of
/// other characters a `-`, joined by a `.`: "fork() call, bare" and "CPU"
/// make `fork-call-bare.cpu`.
pub fn figure_id(experiment: &str, metric: &str) -> String {
    let slug = |text: &str| {
        let lower = text.to_lowercase();
        let words: Vec<&str> =
            lower.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
        words.join("-")
    };
    format!("{}.{}", slug(experiment), slug(metric))
}

/// A measured value: an exact count, or a real number (a time, a ratio).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Number {
    Count(u64),
    Real(f64),
}

impl From<u64> for Number {
    fn from(v: u64) -> Self {
        Number::Count(v)
    }
}

impl From<u32> for Number {
    fn from(v: u32) -> Self {
        Number::Count(u64::from(v))
    }
}

impl From<usize> for Number {
    fn from(v: usize) -> Self {
        Number::Count(v as u64)
    }
}

impl From<f64> for Number {
    fn from(v: f64) -> Self {
        Number::Real(v)
    }
}

impl Number {
    /// The value as text for the human table: counts exactly, reals with
    /// about three significant digits (more would be noise between runs).
    pub fn to_text(self) -> String {
        match self {
            Number::Count(v) => v.to_string(),
            Number::Real(v) if !v.is_finite() => v.to_string(),
            Number::Real(v) => {
                let magnitude = v.abs();
                let decimals = if magnitude >= 100.0 {
                    0
                } else if magnitude >= 10.0 {
                    1
                } else if magnitude >= 1.0 {
                    2
                } else {
                    3
                };
                format!("{v:.decimals$}")
            }
        }
    }

    /// The value as `f64`, for ratios and comparisons.
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Count(v) => v as f64,
            Number::Real(v) => v,
        }
    }
}

/// One experiment's value of one metric.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// Stable across runs and flags: see [`figure_id`].
    pub id: String,
    pub experiment: String,
    pub metric: String,
    pub value: Number,
    pub unit: String,
    /// The figure `cargo xtask all` shows for this lesson in its summary.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub key: bool,
    /// Which text table the figure belongs to (see [`Report::table`]).
    #[serde(skip)]
    table: usize,
}

/// The verdict on one claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// What was measured supports the claim.
    Holds,
    /// What was measured contradicts it.
    DoesNotHold,
    /// The experiment ran, but did not get what the claim needs to be tested
    /// (free cores, say): neither a pass nor a failure, and the reason says why.
    Inconclusive,
    /// The claim could not be tested on this run (no `python3`, one core, ...).
    Skipped,
}

impl Verdict {
    /// The verdict as JSON and the xtask name it.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::DoesNotHold => "does not hold",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Skipped => "skipped",
        }
    }
}

/// A statement the lesson checks against this run's measurements.
#[derive(Debug, Clone)]
pub struct Claim {
    pub id: String,
    pub statement: String,
    pub verdict: Verdict,
    /// The measured figures the verdict rests on, in words.
    pub evidence: String,
    /// Why the claim was not tested (inconclusive or skipped).
    pub reason: Option<String>,
}

impl Claim {
    /// A claim whose verdict is `holds`, computed by the caller from what it measured.
    pub fn check(
        id: impl Into<String>,
        statement: impl Into<String>,
        holds: bool,
        evidence: impl Into<String>,
    ) -> Self {
        Claim {
            id: id.into(),
            statement: statement.into(),
            verdict: if holds { Verdict::Holds } else { Verdict::DoesNotHold },
            evidence: evidence.into(),
            reason: None,
        }
    }

    /// A claim checked only if its precondition was met in this run: `met`
    /// is `Ok(())`, or `Err(reason)` when the experiment did not get what the
    /// claim needs ("the 2 threads received 1.1 cores; other programs held
    /// the rest"). An unmet precondition makes the claim inconclusive whatever
    /// the figures say: a bound that held without its precondition proves
    /// nothing either.
    pub fn check_given(
        id: impl Into<String>,
        statement: impl Into<String>,
        met: Result<(), String>,
        holds: bool,
        evidence: impl Into<String>,
    ) -> Self {
        let claim = Claim::check(id, statement, holds, evidence);
        match met {
            Ok(()) => claim,
            Err(reason) => Claim { verdict: Verdict::Inconclusive, reason: Some(reason), ..claim },
        }
    }

    /// A claim this run tested but could not decide, and why.
    pub fn inconclusive(
        id: impl Into<String>,
        statement: impl Into<String>,
        reason: impl Into<String>,
        evidence: impl Into<String>,
    ) -> Self {
        Claim {
            id: id.into(),
            statement: statement.into(),
            verdict: Verdict::Inconclusive,
            evidence: evidence.into(),
            reason: Some(reason.into()),
        }
    }

    /// A claim this run could not test, and why.
    pub fn skipped(id: impl Into<String>, statement: impl Into<String>, why: impl Into<String>) -> Self {
        let why = why.into();
        Claim {
            id: id.into(),
            statement: statement.into(),
            verdict: Verdict::Skipped,
            evidence: why.clone(),
            reason: Some(why),
        }
    }

    /// The verdict's mark in the text report.
    pub fn mark(&self) -> &'static str {
        match self.verdict {
            Verdict::Holds => "✔",
            Verdict::DoesNotHold => "✘",
            Verdict::Inconclusive => "?",
            Verdict::Skipped => "–",
        }
    }
}

impl Serialize for Claim {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // `holds` is true or false when the claim was decided, null when it
        // was inconclusive or skipped; `verdict` names which.
        let holds = match self.verdict {
            Verdict::Holds => Some(true),
            Verdict::DoesNotHold => Some(false),
            Verdict::Inconclusive | Verdict::Skipped => None,
        };
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("holds", &holds)?;
        map.serialize_entry("verdict", self.verdict.name())?;
        map.serialize_entry("reason", &self.reason)?;
        map.serialize_entry("statement", &self.statement)?;
        map.serialize_entry("evidence", &self.evidence)?;
        map.end()
    }
}

/// Parameters in the order the lesson gave them (a JSON object keeps it).
#[derive(Debug, Clone, Default)]
struct Params(Vec<(String, serde_json::Value)>);

impl Serialize for Params {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// Everything one run of a lesson measured and concluded.
#[derive(Debug, Clone)]
pub struct Report {
    lesson: String,
    claim: String,
    host: Host,
    params: Params,
    tables: Vec<String>,
    figures: Vec<Figure>,
    claims: Vec<Claim>,
    notes: Vec<String>,
    started: Instant,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    lesson: &'a str,
    schema: u32,
    claim: &'a str,
    host: &'a Host,
    params: &'a Params,
    results: &'a [Figure],
    claims: &'a [Claim],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    notes: &'a [String],
    elapsed_s: f64,
}

impl Report {
    /// Starts the report of `lesson` (its package name), whose one-sentence
    /// claim is `claim`. The elapsed time in the report counts from here.
    pub fn new(lesson: impl Into<String>, claim: impl Into<String>) -> Self {
        Report {
            lesson: lesson.into(),
            claim: claim.into(),
            host: Host::this(),
            params: Params::default(),
            tables: vec![String::new()],
            figures: Vec::new(),
            claims: Vec::new(),
            notes: Vec::new(),
            started: Instant::now(),
        }
    }

    /// Records a parameter of the run (a flag's value, or a size derived from one).
    pub fn param(&mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) -> &mut Self {
        self.params.0.push((name.into(), value.into()));
        self
    }

    /// Starts a new table in the text output, under `title`; the figures
    /// recorded from now on go into it. Experiments that measure different
    /// metrics read better in tables of their own.
    pub fn table(&mut self, title: impl Into<String>) -> &mut Self {
        let title = title.into();
        if self.figures.iter().any(|f| f.table == self.tables.len() - 1) {
            self.tables.push(title);
        } else {
            *self.tables.last_mut().expect("there is always a table") = title;
        }
        self
    }

    /// Records what `experiment` measured for `metric`, in `unit`.
    pub fn figure(
        &mut self,
        experiment: impl Into<String>,
        metric: impl Into<String>,
        value: impl Into<Number>,
        unit: impl Into<String>,
    ) -> &mut Self {
        let (experiment, metric) = (experiment.into(), metric.into());
        self.figures.push(Figure {
            id: figure_id(&experiment, &metric),
            experiment,
            metric,
            value: value.into(),
            unit: unit.into(),
            key: false,
            table: self.tables.len() - 1,
        });
        self
    }

    /// Marks the figure recorded last as the lesson's key figure: the one
    /// `cargo xtask all` shows in its summary. The last one marked wins.
    ///
    /// ```
    /// let mut report = common::Report::new("demo", "a claim");
    /// report.figure("split", "lost", 7u64, "updates").key();
    /// ```
    pub fn key(&mut self) -> &mut Self {
        let last = self.figures.len().checked_sub(1).expect("key() follows a figure()");
        for (index, figure) in self.figures.iter_mut().enumerate() {
            figure.key = index == last;
        }
        self
    }

    /// Adds a claim with its verdict.
    pub fn claim(&mut self, claim: Claim) -> &mut Self {
        self.claims.push(claim);
        self
    }

    /// Adds a sentence printed under the tables: context for the figures.
    pub fn note(&mut self, text: impl Into<String>) -> &mut Self {
        self.notes.push(text.into());
        self
    }

    /// Records that the lesson ran `program` beside it, with its version, in
    /// the report's `host` object (figures compared with python3's or wc's
    /// mean little without which one).
    pub fn ran_beside(&mut self, program: &str) -> &mut Self {
        self.host.note_tool(program);
        self
    }

    pub fn claims(&self) -> &[Claim] {
        &self.claims
    }

    pub fn figures(&self) -> &[Figure] {
        &self.figures
    }

    /// The report as one JSON object on one line, with a newline.
    pub fn to_json(&self) -> String {
        let json = JsonReport {
            lesson: &self.lesson,
            schema: SCHEMA,
            claim: &self.claim,
            host: &self.host,
            params: &self.params,
            results: &self.figures,
            claims: &self.claims,
            notes: &self.notes,
            elapsed_s: self.started.elapsed().as_secs_f64(),
        };
        let mut text = serde_json::to_string(&json).expect("a report always serializes");
        text.push('\n');
        text
    }

    /// The report for a human, wrapped to the terminal's width (80 columns
    /// when stdout is not a terminal): see [`Report::to_text_width`].
    pub fn to_text(&self) -> String {
        self.to_text_width(text_width())
    }

    /// The report for a human: title, host and parameters, one aligned table
    /// per [`Report::table`], notes, then one line per claim. Prose (the
    /// parameters, notes and verdicts) wraps at `width` columns; a table's
    /// rows do not (a lesson keeps its tables within 80 columns).
    pub fn to_text_width(&self, width: usize) -> String {
        let mut out = String::new();
        out.push_str(&wrap(&format!("{}: {}", self.lesson, self.claim), width, 2));
        out.push_str(&wrap(&format!("host    {}", self.host.short()), width, 8));
        if !self.params.0.is_empty() {
            let params: Vec<String> = self
                .params
                .0
                .iter()
                .map(|(name, value)| match value {
                    serde_json::Value::String(s) => format!("{name}={s}"),
                    other => format!("{name}={other}"),
                })
                .collect();
            out.push_str(&wrap(&format!("params  {}", params.join(" ")), width, 8));
        }
        for (index, title) in self.tables.iter().enumerate() {
            let figures: Vec<&Figure> = self.figures.iter().filter(|f| f.table == index).collect();
            if figures.is_empty() {
                continue;
            }
            out.push('\n');
            if !title.is_empty() {
                out.push_str(&wrap(title, width, 0));
            }
            out.push_str(&render_table(&figures));
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                out.push_str(&wrap(note, width, 2));
            }
        }
        if !self.claims.is_empty() {
            out.push('\n');
            for claim in &self.claims {
                let line = match (&claim.verdict, &claim.reason) {
                    (Verdict::Inconclusive, Some(reason)) => format!(
                        "{} {}  inconclusive: {}: {} ({})",
                        claim.mark(),
                        claim.id,
                        claim.statement,
                        reason,
                        claim.evidence
                    ),
                    _ => format!("{} {}  {}: {}", claim.mark(), claim.id, claim.statement, claim.evidence),
                };
                out.push_str(&wrap(&line, width, 2));
            }
        }
        let _ = writeln!(out, "\nelapsed {:.2} s", self.started.elapsed().as_secs_f64());
        out
    }
}

/// The width human output wraps at: the terminal's, when stdout is one
/// (`COLUMNS` is not exported to programs by most shells, so ask the
/// terminal), else 80 columns.
pub fn text_width() -> usize {
    terminal_size::terminal_size_of(std::io::stdout())
        .map_or(80, |(terminal_size::Width(columns), _)| usize::from(columns))
        .max(40)
}

/// `text` as lines of at most `width` characters, broken at spaces, every
/// line after the first indented by `indent` spaces; each line ends with a
/// newline. A word longer than a line stays whole.
pub fn wrap(text: &str, width: usize, indent: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    let mut started = false;
    // Splitting at single spaces keeps runs of spaces ("id  statement") as
    // empty words, so a line that fits comes out exactly as it went in.
    for word in text.split(' ') {
        if !started {
            line.push_str(word);
            started = true;
        } else if word.is_empty() || line.chars().count() + 1 + word.chars().count() <= width {
            line.push(' ');
            line.push_str(word);
        } else if line.trim().is_empty() {
            line.push_str(word);
        } else {
            out.push_str(line.trim_end());
            out.push('\n');
            line = format!("{:indent$}{word}", "");
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// Pivots figures into rows (experiments, in the order first seen) and
/// columns (metrics with their units, in the order first seen), aligned:
/// names to the left, numbers to the right, `-` where nothing was measured.
fn render_table(figures: &[&Figure]) -> String {
    let mut rows: Vec<&str> = Vec::new();
    let mut columns: Vec<(&str, &str)> = Vec::new();
    for f in figures {
        if !rows.contains(&f.experiment.as_str()) {
            rows.push(&f.experiment);
        }
        if !columns.contains(&(f.metric.as_str(), f.unit.as_str())) {
            columns.push((&f.metric, &f.unit));
        }
    }
    // Two header lines: metric names, then their units (when any has one),
    // so that a column is as wide as its longest word, not its whole label.
    let mut grid: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 2);
    let mut names = vec!["experiment".to_string()];
    names.extend(columns.iter().map(|(metric, _)| metric.to_string()));
    grid.push(names);
    if columns.iter().any(|(_, unit)| !unit.is_empty()) {
        let mut units = vec![String::new()];
        units.extend(columns.iter().map(|(_, unit)| unit.to_string()));
        grid.push(units);
    }
    for row in &rows {
        let mut line = vec![row.to_string()];
        for (metric, unit) in &columns {
            let cell = figures
                .iter()
                .rev()
                .find(|f| f.experiment == *row && f.metric == *metric && f.unit == *unit)
                .map_or_else(|| "-".to_string(), |f| f.value.to_text());
            line.push(cell);
        }
        grid.push(line);
    }
    let widths: Vec<usize> = (0..grid[0].len())
        .map(|c| grid.iter().map(|line| line[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for line in &grid {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            if c == 0 {
                let _ = write!(text, "{cell:<width$}", width = widths[0]);
            } else {
                let _ = write!(text, "  {cell:>width$}", width = widths[c]);
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_lists_the_units_and_the_schema_version() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema/report.schema.json");
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let units: Vec<&str> = schema["$defs"]["figure"]["properties"]["unit"]["enum"]
            .as_array()
            .expect("the schema lists the units")
            .iter()
            .map(|unit| unit.as_str().unwrap())
            .collect();
        assert_eq!(units, UNITS);
        assert_eq!(schema["properties"]["schema"]["const"], SCHEMA);
    }

    #[test]
    fn figure_ids_are_slugs_of_experiment_and_metric() {
        assert_eq!(figure_id("fork() call, bare", "CPU"), "fork-call-bare.cpu");
        assert_eq!(figure_id("per decrement", "python / rust"), "per-decrement.python-rust");
        assert_eq!(figure_id("split load/store", "lost median"), "split-load-store.lost-median");
    }

    fn sample() -> Report {
        let mut report = Report::new("demo", "a claim");
        report.param("threads", 5).param("mode", "fast");
        report.figure("split", "expected", 100u64, "updates");
        report.figure("split", "lost", 7u64, "updates").key();
        report.figure("locked", "expected", 100u64, "updates");
        report.table("costs");
        report.figure("locked", "time", 12.345, "ns");
        report.claim(Claim::check("lost", "updates were lost", 7 > 0, "7 of 100"));
        report.claim(Claim::skipped("python", "python is slower", "no python3"));
        report.claim(Claim::check_given(
            "scale",
            "threads scale",
            Err("got 1.1 cores".into()),
            false,
            "1.2x",
        ));
        report
    }

    #[test]
    fn json_is_one_object_with_the_protocol_fields() {
        let text = sample().to_json();
        assert_eq!(text.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["lesson"], "demo");
        assert_eq!(v["schema"], SCHEMA);
        assert!(v["host"]["cpu"].is_string() && v["host"]["tools"].is_object());
        assert_eq!(v["params"]["threads"], 5);
        assert_eq!(v["results"][1]["key"], true);
        assert!(v["results"][0].get("key").is_none());
        assert_eq!(v["results"][3]["value"], 12.345);
        assert_eq!(v["claims"][0]["holds"], true);
        assert_eq!(v["claims"][0]["verdict"], "holds");
        assert!(v["claims"][0]["reason"].is_null());
        assert!(v["claims"][1]["holds"].is_null());
        assert_eq!(v["claims"][1]["verdict"], "skipped");
        assert!(v["claims"][2]["holds"].is_null());
        assert_eq!(v["claims"][2]["verdict"], "inconclusive");
        assert_eq!(v["claims"][2]["reason"], "got 1.1 cores");
        assert!(v["host"]["cores"].as_u64().unwrap() >= 1);
        assert!(v["elapsed_s"].as_f64().unwrap() >= 0.0);
    }

    #[test]
    fn an_unmet_precondition_makes_any_figure_inconclusive() {
        for holds in [true, false] {
            let claim = Claim::check_given("c", "s", Err("busy".into()), holds, "e");
            assert_eq!((claim.verdict, claim.reason.as_deref()), (Verdict::Inconclusive, Some("busy")));
        }
        assert_eq!(Claim::check_given("c", "s", Ok(()), false, "e").verdict, Verdict::DoesNotHold);
    }

    #[test]
    fn params_keep_their_order() {
        let text = sample().to_json();
        assert!(text.find("\"threads\"").unwrap() < text.find("\"mode\"").unwrap());
    }

    #[test]
    fn text_pivots_and_aligns_tables() {
        let text = sample().to_text();
        assert!(text.starts_with("demo: a claim\n"));
        assert!(text.contains("params  threads=5 mode=fast\n"));
        assert!(text.contains("experiment  expected     lost\n             updates  updates\nsplit            100        7\n"), "{text}");
        assert!(text.contains("locked           100        -\n"));
        assert!(text.contains("costs\nexperiment  time\n              ns\nlocked      12.3\n"));
        assert!(text.contains("✔ lost  updates were lost: 7 of 100\n"));
        assert!(text.contains("– python  python is slower: no python3\n"));
        assert!(text.contains("? scale  inconclusive: threads scale: got 1.1 cores (1.2x)\n"), "{text}");
    }

    #[test]
    fn prose_wraps_with_a_hanging_indent() {
        assert_eq!(wrap("✔ id  one two three four", 12, 2), "✔ id  one\n  two three\n  four\n");
        assert_eq!(wrap("params  a=1 b=2", 80, 8), "params  a=1 b=2\n");
        assert_eq!(wrap("short", 80, 2), "short\n");
        assert_eq!(wrap("a averyveryverylongword b", 8, 2), "a\n  averyveryverylongword\n  b\n");
        let text = sample().to_text_width(40);
        assert!(text.lines().all(|line| line.chars().count() <= 40 || !line.contains(' ')), "{text}");
    }

    #[test]
    fn numbers_keep_about_three_significant_digits() {
        assert_eq!(Number::from(1234.56).to_text(), "1235");
        assert_eq!(Number::from(12.345).to_text(), "12.3");
        assert_eq!(Number::from(1.2345).to_text(), "1.23");
        assert_eq!(Number::from(0.12345).to_text(), "0.123");
        assert_eq!(Number::from(42u64).to_text(), "42");
    }
}
