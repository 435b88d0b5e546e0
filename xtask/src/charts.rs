//! The report's charts, drawn from a lesson's results with plotters' SVG
//! backend (text is left for the browser to render: no fonts needed here).
//!
//! A chart is data: which metrics of a lesson's results to draw, and against
//! what reference (the ideal speedup, the file's size, a latency floor). A
//! lesson without a chart of its own gets one of its key figure's metric
//! across its experiments, so every lesson has at least one picture.

use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;

pub use crate::all::{about_three_digits as three_digits, shortened};

/// One drawn chart: an id for the page (`<lesson>-<n>`), its title, and the SVG.
#[derive(Debug, Clone)]
pub struct Chart {
    pub id: String,
    pub title: String,
    pub svg: String,
}

/// How a chart is drawn from a lesson's results.
enum Spec {
    /// One bar per experiment that has the metric (of those in `only`, if
    /// any); with several metrics,
    /// bars side by side per experiment. A reference, if any, is a
    /// horizontal line across the chart.
    Bars {
        title: &'static str,
        metrics: Vec<String>,
        only: &'static [&'static str],
        reference: Option<Reference>,
    },
    /// `metric` against the number in each experiment's label ("2 threads",
    /// "4 workers"), with the ideal line: one unit of speedup per thread up
    /// to the cores the machine has.
    AgainstCount { title: &'static str, metric: &'static str, x_label: &'static str },
}

/// A horizontal line a chart's bars are read against.
enum Reference {
    /// A parameter of the run (in the unit of the bars, times `scale`).
    Param { name: &'static str, label: &'static str },
    /// A constant, such as 1x for "as fast as a plain loop".
    Value { value: f64, label: &'static str },
}

/// The charts each lesson draws (see the module's doc for the rest).
fn specs(lesson: &str) -> Vec<Spec> {
    match lesson {
        "cpu-bound" => vec![Spec::AgainstCount {
            title: "Speedup of CPU-bound threads against their number, with the ideal line",
            metric: "speedup",
            x_label: "threads",
        }],
        "lock-fix" => vec![Spec::Bars {
            title: "Nanoseconds per increment for each fix, contended and alone",
            metrics: owned(&["contended", "alone"]),
            only: &[],
            reference: None,
        }],
        "mmap-workaround" => vec![Spec::Bars {
            title: "Memory holding the text (PSS) per strategy, against the file's size",
            metrics: owned(&["PSS for text"]),
            only: &[],
            reference: Some(Reference::Param { name: "size_mib", label: "file size" }),
        }],
        "fork-vs-spawn" => vec![Spec::Bars {
            title: "Start cost per method: CPU time and latency per start",
            metrics: owned(&["CPU per start", "latency"]),
            only: &[],
            reference: None,
        }],
        "io-bound" => vec![Spec::Bars {
            title: "Time of each download strategy against its latency floor",
            metrics: owned(&["time", "expected"]),
            only: &[],
            reference: None,
        }],
        "race-condition" => vec![Spec::Bars {
            title: "Updates the split load/store should count, and what racing threads left",
            metrics: owned(&["expected", "final median", "final min"]),
            only: &["split load/store"],
            reference: None,
        }],
        "spawn-cost" => vec![
            Spec::Bars {
                title: "CPU time and latency to start and end one unit, each way",
                metrics: owned(&["CPU per unit", "latency"]),
                only: &["thread", "fork", "spawn, this program", "spawn /bin/true"],
                reference: None,
            },
            Spec::Bars {
                title: "Private memory a live unit adds (MiB)",
                metrics: owned(&["private"]),
                only: &[],
                reference: None,
            },
        ],
        "pool-map" => vec![Spec::Bars {
            title: "Speedup of each way to map against a plain loop, heavy items and tiny ones",
            metrics: owned(&["speedup"]),
            only: &[],
            reference: Some(Reference::Value { value: 1.0, label: "plain loop" }),
        }],
        "starvation" => vec![Spec::Bars {
            title: "Acquisitions (turns) per thread with each lock: unfair, fair unlocking, std",
            metrics: owned(&["unlock", "unlock_fair", "std Mutex"]),
            // The threads, not the total (the first eight of more).
            only: &[
                "thread 0", "thread 1", "thread 2", "thread 3", "thread 4", "thread 5", "thread 6",
                "thread 7",
            ],
            reference: None,
        }],
        "thread-basics" => vec![Spec::Bars {
            title: "Two orders on two threads and on one, in units of one order's time",
            metrics: owned(&["time/one order"]),
            only: &[],
            reference: Some(Reference::Value { value: 1.0, label: "one order" }),
        }],
        _ => Vec::new(),
    }
}

/// A lesson's charts, drawn from its report.
pub fn charts(report: &Value) -> Vec<Chart> {
    let lesson = report["lesson"].as_str().unwrap_or("lesson");
    let results = Results::of(report);
    let mut drawn = Vec::new();
    let mut specs = specs(lesson);
    if specs.is_empty()
        && let Some(metric) = results.key_metric()
    {
        specs.push(Spec::Bars { title: "", metrics: vec![metric], only: &[], reference: None });
    }
    for spec in &specs {
        let id = format!("{lesson}-{}", drawn.len() + 1);
        if let Some(chart) = draw(&id, spec, &results, report) {
            drawn.push(chart);
        }
    }
    drawn
}

fn owned(metrics: &[&str]) -> Vec<String> {
    metrics.iter().map(|m| m.to_string()).collect()
}

/// A figure of a report, as the chart needs it.
#[derive(Debug, Clone)]
struct Figure {
    experiment: String,
    metric: String,
    value: f64,
    unit: String,
    key: bool,
}

struct Results(Vec<Figure>);

impl Results {
    fn of(report: &Value) -> Self {
        let figures = report["results"].as_array().map(Vec::as_slice).unwrap_or_default();
        Results(
            figures
                .iter()
                .filter_map(|r| {
                    Some(Figure {
                        experiment: r["experiment"].as_str()?.to_string(),
                        metric: r["metric"].as_str()?.to_string(),
                        value: r["value"].as_f64()?,
                        unit: r["unit"].as_str().unwrap_or("").to_string(),
                        key: r["key"] == true,
                    })
                })
                .collect(),
        )
    }

    fn key_metric(&self) -> Option<String> {
        self.0.iter().find(|f| f.key).or(self.0.first()).map(|f| f.metric.clone())
    }

    /// The experiments that have any of `metrics`, in the report's order.
    fn experiments(&self, metrics: &[String]) -> Vec<String> {
        let mut found: Vec<String> = Vec::new();
        for figure in self.0.iter().filter(|f| metrics.contains(&f.metric)) {
            if !found.contains(&figure.experiment) {
                found.push(figure.experiment.clone());
            }
        }
        found
    }

    fn value(&self, experiment: &str, metric: &str) -> Option<&Figure> {
        self.0.iter().find(|f| f.experiment == experiment && f.metric == metric)
    }
}

const WIDTH: u32 = 760;
const HEIGHT: u32 = 340;
/// One color per metric, in the order a chart lists them.
const SERIES: [RGBColor; 4] =
    [RGBColor(44, 106, 168), RGBColor(230, 140, 40), RGBColor(90, 160, 90), RGBColor(150, 90, 170)];
const REFERENCE: RGBColor = RGBColor(200, 40, 40);

fn draw(id: &str, spec: &Spec, results: &Results, report: &Value) -> Option<Chart> {
    let mut svg = String::new();
    let title = match spec {
        Spec::Bars { title, metrics, only, reference } => {
            let mut experiments = results.experiments(metrics);
            experiments.retain(|e| only.is_empty() || only.contains(&e.as_str()));
            if experiments.is_empty() {
                return None;
            }
            let reference = reference.as_ref().and_then(|r| match r {
                Reference::Param { name, label } => Some((report["params"][name].as_f64()?, *label)),
                Reference::Value { value, label } => Some((*value, *label)),
            });
            let unit = metrics.iter().find_map(|m| experiments.iter().find_map(|e| results.value(e, m)));
            let unit = unit.map(|f| f.unit.clone()).unwrap_or_default();
            let title = if title.is_empty() {
                format!("{} per experiment ({unit})", metrics[0])
            } else {
                title.to_string()
            };
            let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
            bars(&root, &title, &unit, &experiments, metrics, results, reference).ok()?;
            root.present().ok()?;
            title
        }
        Spec::AgainstCount { title, metric, x_label } => {
            let points: Vec<(f64, f64)> = results
                .0
                .iter()
                .filter(|f| f.metric == *metric)
                .filter_map(|f| Some((leading_count(&f.experiment)?, f.value)))
                .collect();
            if points.len() < 2 {
                return None;
            }
            let cores = report["host"]["cores"].as_f64().unwrap_or(1.0);
            let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
            against_count(&root, title, x_label, &points, cores).ok()?;
            root.present().ok()?;
            title.to_string()
        }
    };
    Some(Chart { id: id.to_string(), title, svg })
}

/// The number an experiment's label starts with ("4 threads" -> 4), if it
/// is only a count and a noun.
fn leading_count(experiment: &str) -> Option<f64> {
    let mut words = experiment.split_whitespace();
    let count = words.next()?.parse::<f64>().ok()?;
    (words.count() == 1).then_some(count)
}

type Drawn = Result<(), Box<dyn std::error::Error>>;

fn bars(
    root: &DrawingArea<SVGBackend, Shift>,
    title: &str,
    unit: &str,
    experiments: &[String],
    metrics: &[String],
    results: &Results,
    reference: Option<(f64, &str)>,
) -> Drawn {
    root.fill(&WHITE)?;
    let values = experiments.iter().flat_map(|e| metrics.iter().filter_map(move |m| results.value(e, m)));
    let top = values.map(|f| f.value).chain(reference.map(|r| r.0)).fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.18 } else { 1.0 };
    let n = experiments.len();
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(84)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..top)?;
    // Each label gets its share of the width (about 8 px a character).
    let room = ((WIDTH as usize - 90) / n / 8).max(6);
    let names: Vec<String> = experiments.iter().map(|e| shortened(e, room)).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.max(2) * 2 + 1)
        .x_label_formatter(&|x| {
            let index = x.round();
            if (x - index).abs() < 1e-6 && index >= 0.0 {
                names.get(index as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc("experiment (its name in the lesson's table)")
        .y_desc(unit)
        .y_label_formatter(&|y| three_digits(*y))
        .label_style(("sans-serif", 15))
        .draw()?;
    let group = 0.7;
    let width = group / metrics.len() as f64;
    for (k, metric) in metrics.iter().enumerate() {
        let color = SERIES[k % SERIES.len()];
        let bars: Vec<(f64, f64)> = experiments
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                results.value(e, metric).map(|f| (i as f64 - group / 2.0 + width * k as f64, f.value))
            })
            .collect();
        chart
            .draw_series(bars.iter().map(|&(left, value)| {
                Rectangle::new([(left + width * 0.06, 0.0), (left + width * 0.94, value)], color.filled())
            }))?
            .label(metric.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        chart.draw_series(bars.iter().map(|&(left, value)| {
            Text::new(
                three_digits(value),
                (left + width / 2.0, value + top * 0.015),
                ("sans-serif", 15).into_font().color(&BLACK).pos(text_above()),
            )
        }))?;
    }
    if let Some((value, label)) = reference {
        chart
            .draw_series(LineSeries::new(
                [(-0.5, value), (n as f64 - 0.5, value)],
                REFERENCE.stroke_width(2),
            ))?
            .label(format!("{label}: {}", three_digits(value)))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], REFERENCE.stroke_width(2)));
    }
    if metrics.len() > 1 || reference.is_some() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 15))
            .draw()?;
    }
    Ok(())
}

fn text_above() -> plotters::style::text_anchor::Pos {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    Pos::new(HPos::Center, VPos::Bottom)
}

fn against_count(
    root: &DrawingArea<SVGBackend, Shift>,
    title: &str,
    x_label: &str,
    points: &[(f64, f64)],
    cores: f64,
) -> Drawn {
    root.fill(&WHITE)?;
    let right = points.iter().map(|p| p.0).fold(1.0f64, f64::max);
    let top = points.iter().map(|p| p.1).fold(cores, f64::max) * 1.2;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.5f64..right + 0.5, 0f64..top)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_labels(right as usize + 2)
        .x_label_formatter(&|x| if (x - x.round()).abs() < 1e-6 { format!("{x:.0}") } else { String::new() })
        .x_desc(x_label)
        .y_desc("speedup (x)")
        .label_style(("sans-serif", 15))
        .draw()?;
    // The ideal: each thread adds one core's worth, until the cores run out.
    let ideal: Vec<(f64, f64)> = (1..=right as usize).map(|n| (n as f64, (n as f64).min(cores))).collect();
    chart
        .draw_series(LineSeries::new(ideal, REFERENCE.stroke_width(2)))?
        .label(format!("ideal on {cores} cores"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], REFERENCE.stroke_width(2)));
    let color = SERIES[0];
    chart
        .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?
        .label("measured")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 12, y)], color.stroke_width(2)));
    chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    chart.draw_series(points.iter().map(|&(x, y)| {
        Text::new(
            format!("{}x", three_digits(y)),
            (x, y + top * 0.03),
            ("sans-serif", 15).into_font().color(&BLACK).pos(text_above()),
        )
    }))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 15))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Value {
        serde_json::json!({
            "lesson": "mmap-workaround",
            "params": {"size_mib": 128},
            "host": {"cores": 2},
            "results": [
                {"experiment": "one thread", "metric": "PSS for text", "value": 128.0, "unit": "MiB"},
                {"experiment": "processes, copied chunks", "metric": "PSS for text", "value": 256.1, "unit": "MiB", "key": true},
                {"experiment": "processes, copied chunks", "metric": "time", "value": 3.0, "unit": "ms"},
            ]
        })
    }

    #[test]
    fn a_bar_chart_draws_a_bar_and_a_number_per_experiment_and_its_reference() {
        let charts = charts(&report());
        assert_eq!(charts.len(), 1);
        let svg = &charts[0].svg;
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(
            svg.contains("\n256\n</text>") && svg.contains("\n128\n</text>"),
            "the numbers are on the chart: {svg}"
        );
        assert!(svg.contains("file size: 128"), "the reference line is labelled");
        assert!(svg.contains("processes, copied chunks"));
    }

    #[test]
    fn a_lesson_without_charts_of_its_own_gets_its_key_metric() {
        let mut report = report();
        report["lesson"] = "daemon-workers".into();
        let charts = charts(&report);
        assert_eq!(charts.len(), 1);
        assert!(charts[0].title.starts_with("PSS for text per experiment (MiB)"), "{}", charts[0].title);
    }

    #[test]
    fn speedup_is_drawn_against_the_count_in_the_label() {
        assert_eq!(leading_count("4 threads"), Some(4.0));
        assert_eq!(leading_count("2 threads, one global lock"), None);
        assert_eq!(leading_count("python 2 threads"), None);
        let report = serde_json::json!({"lesson": "cpu-bound", "host": {"cores": 2}, "params": {}, "results": [
            {"experiment": "1 thread", "metric": "speedup", "value": 1.0, "unit": "x"},
            {"experiment": "2 threads", "metric": "speedup", "value": 1.9, "unit": "x"},
        ]});
        let charts = charts(&report);
        assert!(charts[0].svg.contains("\n1.90x\n") && charts[0].svg.contains("ideal on 2 cores"));
    }
}
