//! `plot`: turns benchmark results into rows and SVG plots, with no Python.
//!
//! ```text
//! plot criterion [--criterion-dir DIR] [--groups G,G] [--out-dir DIR] [--stamp STAMP]
//! plot coldstart [FILE.json] [--out-dir DIR]
//! ```
//!
//! `criterion` reads criterion's `DIR/<group>/<bench>/new/{sample,estimates}.json`
//! (default `DIR`: `$CARGO_TARGET_DIR/criterion`, else `target/criterion`)
//! and writes every sample as a row to `criterion-STAMP.{csv,json}` (and
//! `criterion-latest.*`), then one SVG per group, `criterion-GROUP-STAMP.svg`:
//! per mode, the distribution of the samples' time per iteration (criterion
//! times each sample as a batch of iterations and records the batch's total,
//! so a point is a batch's mean, not a single iteration), as a box (quartiles,
//! median line, whiskers to min and max) over the points, log-scale x.
//!
//! `coldstart` reads the JSON that `coldstart` wrote (default:
//! `coldstart-latest.json`) and draws `coldstart-STAMP.svg` the same way:
//! deploy -> first response per (mode, cache), against the steady-state
//! requests.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use gust_benches::support::{
    CsvRow, median, quantile, results_dir, utc_stamp, write_csv, write_json,
};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Serialize;
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(about = "Rows and SVG plots of gust's benchmark results")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Export criterion's samples and plot each group.
    Criterion {
        /// criterion's output directory [default: $CARGO_TARGET_DIR/criterion,
        /// else target/criterion].
        #[arg(long)]
        criterion_dir: Option<PathBuf>,
        /// Groups to export.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "instantiate,instantiate_and_handle,by_component"
        )]
        groups: Vec<String>,
        /// Where the rows and plots go [default: benches/results].
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Names the output files [default: now, UTC].
        #[arg(long)]
        stamp: Option<String>,
    },
    /// Plot the rows of a `coldstart` run.
    Coldstart {
        /// The run's JSON [default: benches/results/coldstart-latest.json].
        file: Option<PathBuf>,
        /// Where the plot goes [default: benches/results].
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}

/// One criterion sample: `iters` iterations timed together.
#[derive(Debug, Clone, Serialize)]
struct Sample {
    group: String,
    mode: String,
    sample: usize,
    iters: f64,
    total_ns: f64,
    per_iter_ns: f64,
}

impl CsvRow for Sample {
    fn header() -> &'static [&'static str] {
        &[
            "group",
            "mode",
            "sample",
            "iters",
            "total_ns",
            "per_iter_ns",
        ]
    }

    fn values(&self) -> Vec<String> {
        vec![
            self.group.clone(),
            self.mode.clone(),
            self.sample.to_string(),
            format!("{}", self.iters),
            format!("{:.1}", self.total_ns),
            format!("{:.1}", self.per_iter_ns),
        ]
    }
}

/// criterion's own estimates for one benchmark (nanoseconds).
#[derive(Debug, Clone, Serialize)]
struct Summary {
    group: String,
    mode: String,
    samples: usize,
    median_ns: f64,
    median_lower_ns: f64,
    median_upper_ns: f64,
    mean_ns: f64,
    /// Quartiles of the samples' time per iteration.
    q1_ns: f64,
    q3_ns: f64,
}

#[derive(Debug, Serialize)]
struct CriterionReport {
    stamp: String,
    criterion_dir: String,
    summary: Vec<Summary>,
    samples: Vec<Sample>,
}

fn default_criterion_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
            PathBuf::from,
        )
        .join("criterion")
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn numbers(value: &Value, key: &str) -> anyhow::Result<Vec<f64>> {
    value[key]
        .as_array()
        .with_context(|| format!("no `{key}` array"))?
        .iter()
        .map(|v| v.as_f64().context("not a number"))
        .collect()
}

fn criterion(dir: &Path, groups: &[String], out_dir: &Path, stamp: &str) -> anyhow::Result<()> {
    let mut samples = Vec::new();
    let mut summary = Vec::new();
    for group in groups {
        let group_dir = dir.join(group);
        if !group_dir.is_dir() {
            // A filtered criterion run may skip a whole group.
            eprintln!("no results for group {group} in {}; skipped", dir.display());
            continue;
        }
        let mut modes: Vec<String> = std::fs::read_dir(&group_dir)
            .with_context(|| format!("reading {} (run the benchmarks first)", group_dir.display()))?
            .filter_map(Result::ok)
            .filter(|e| e.path().join("new/sample.json").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        modes.sort();
        if modes.is_empty() {
            bail!("no benchmarks with results in {}", group_dir.display());
        }
        for mode in modes {
            let new = group_dir.join(&mode).join("new");
            let sample = read_json(&new.join("sample.json"))?;
            let estimates = read_json(&new.join("estimates.json"))?;
            let iters = numbers(&sample, "iters")?;
            let times = numbers(&sample, "times")?;
            let per_iter: Vec<f64> = iters.iter().zip(&times).map(|(i, t)| t / i).collect();
            for (k, ((&iters, &total_ns), &per_iter_ns)) in
                iters.iter().zip(&times).zip(&per_iter).enumerate()
            {
                samples.push(Sample {
                    group: group.clone(),
                    mode: mode.clone(),
                    sample: k,
                    iters,
                    total_ns,
                    per_iter_ns,
                });
            }
            let est = |stat: &str, field: &str| -> f64 {
                let v = &estimates[stat];
                match field {
                    "point" => v["point_estimate"].as_f64(),
                    "lower" => v["confidence_interval"]["lower_bound"].as_f64(),
                    _ => v["confidence_interval"]["upper_bound"].as_f64(),
                }
                .unwrap_or(f64::NAN)
            };
            summary.push(Summary {
                group: group.clone(),
                mode: mode.clone(),
                samples: per_iter.len(),
                median_ns: est("median", "point"),
                median_lower_ns: est("median", "lower"),
                median_upper_ns: est("median", "upper"),
                mean_ns: est("mean", "point"),
                q1_ns: quantile(&per_iter, 0.25),
                q3_ns: quantile(&per_iter, 0.75),
            });
        }
    }

    if summary.is_empty() {
        bail!(
            "no criterion results in {} (run the benchmarks first)",
            dir.display()
        );
    }
    let report = CriterionReport {
        stamp: stamp.to_owned(),
        criterion_dir: dir.display().to_string(),
        summary,
        samples,
    };
    let csv = out_dir.join(format!("criterion-{stamp}.csv"));
    let json = out_dir.join(format!("criterion-{stamp}.json"));
    write_csv(&csv, &report.samples)?;
    write_json(&json, &report)?;
    std::fs::copy(&csv, out_dir.join("criterion-latest.csv"))?;
    std::fs::copy(&json, out_dir.join("criterion-latest.json"))?;

    println!("| group | mode | median | 95 % CI of the median | samples |");
    println!("|---|---|---:|---|---:|");
    for s in &report.summary {
        println!(
            "| {} | {} | {} | [{}, {}] | {} |",
            s.group,
            s.mode,
            human_ns(s.median_ns),
            human_ns(s.median_lower_ns),
            human_ns(s.median_upper_ns),
            s.samples
        );
    }
    println!("\nrows: {}, {}", csv.display(), json.display());

    for group in groups {
        let categories: Vec<Category> = report
            .summary
            .iter()
            .filter(|s| &s.group == group)
            .enumerate()
            .map(|(i, s)| Category {
                name: s.mode.clone(),
                values: report
                    .samples
                    .iter()
                    .filter(|r| &r.group == group && r.mode == s.mode)
                    .map(|r| r.per_iter_ns / 1e3)
                    .collect(),
                color: Palette99::pick(i).to_rgba(),
            })
            .collect();
        if categories.is_empty() {
            // Skipped above: this run has no results for the group.
            continue;
        }
        let markers: Vec<(f64, String)> =
            if group == "instantiate_and_handle" || group == "by_component" {
                vec![(20.0, "target: 20 µs".to_owned())]
            } else {
                Vec::new()
            };
        let svg = out_dir.join(format!("criterion-{group}-{stamp}.svg"));
        strip_box_svg(
            &svg,
            &format!("{group}: time per iteration by mode (criterion samples)"),
            "µs",
            &categories,
            &markers,
        )?;
        println!("plot: {}", svg.display());
    }
    Ok(())
}

fn coldstart(file: &Path, out_dir: &Path) -> anyhow::Result<()> {
    let report = read_json(file)?;
    let stamp = report["stamp"].as_str().unwrap_or("unknown").to_owned();
    let rows = report["rows"].as_array().context("no `rows`")?;
    // Rows before the p3 hello have no `component`: they are all `hello`.
    let component_of =
        |r: &serde_json::Value| r["component"].as_str().unwrap_or("hello").to_owned();
    let values_of = |component: &str, mode: &str, cache: Option<&str>, field: &str| -> Vec<f64> {
        rows.iter()
            .filter(|r| component_of(r) == component)
            .filter(|r| r["mode"] == mode && cache.is_none_or(|c| r["cache"] == c))
            .filter_map(|r| r[field].as_f64())
            .collect()
    };
    let values =
        |mode: &str, cache: Option<&str>, field: &str| values_of("hello", mode, cache, field);
    let mut categories = Vec::new();
    let mut add = |name: &str, values: Vec<f64>, color: RGBAColor| {
        if !values.is_empty() {
            categories.push(Category {
                name: name.to_owned(),
                values,
                color,
            });
        }
    };
    let cold = RGBColor(214, 39, 40).to_rgba();
    let warm = RGBColor(31, 119, 180).to_rgba();
    let steady = RGBColor(44, 160, 44).to_rgba();
    let first = RGBColor(148, 103, 189).to_rgba();
    for (mode, label) in [("in_process", "in-process"), ("process", "gust process")] {
        let what = if mode == "process" {
            "start → first 200"
        } else {
            "deploy → first response"
        };
        add(
            &format!("{label}, cold cache: {what}"),
            values(mode, Some("cold"), "deploy_to_first_ms"),
            cold,
        );
        add(
            &format!("{label}, warm cache: {what}"),
            values(mode, Some("warm"), "deploy_to_first_ms"),
            warm,
        );
        if mode == "in_process" {
            add(
                &format!("{label}, warm: first request alone"),
                values(mode, Some("warm"), "first_ms"),
                first,
            );
        }
        add(
            &format!("{label}: steady-state request (median per function)"),
            values(mode, None, "steady_median_ms"),
            steady,
        );
    }
    // The WASIp3 hello (coldstart's `p3-hello` rows), in-process only.
    add(
        "p3 hello in-process, cold cache: deploy → first response",
        values_of("p3-hello", "in_process", Some("cold"), "deploy_to_first_ms"),
        cold,
    );
    add(
        "p3 hello in-process, warm cache: deploy → first response",
        values_of("p3-hello", "in_process", Some("warm"), "deploy_to_first_ms"),
        warm,
    );
    add(
        "p3 hello in-process: steady-state request (median per function)",
        values_of("p3-hello", "in_process", None, "steady_median_ms"),
        steady,
    );
    // Every other component (the Python, JavaScript, Go and C hellos),
    // in-process: cold and warm deploy → first response.
    let mut others: Vec<String> = Vec::new();
    for r in rows {
        let c = component_of(r);
        if c != "hello" && c != "p3-hello" && !others.contains(&c) {
            others.push(c);
        }
    }
    for c in &others {
        add(
            &format!("{c} in-process, cold cache: deploy → first response"),
            values_of(c, "in_process", Some("cold"), "deploy_to_first_ms"),
            cold,
        );
        add(
            &format!("{c} in-process, warm cache: deploy → first response"),
            values_of(c, "in_process", Some("warm"), "deploy_to_first_ms"),
            warm,
        );
        add(
            &format!("{c} in-process: steady-state request (median per function)"),
            values_of(c, "in_process", None, "steady_median_ms"),
            steady,
        );
    }
    if categories.is_empty() {
        bail!("{} has no rows", file.display());
    }
    let steady_median = median(&values("in_process", Some("warm"), "steady_median_ms"));
    let mut markers = Vec::new();
    if steady_median.is_finite() {
        markers.push((
            steady_median + 1.0,
            format!("target: steady + 1 ms = {:.2} ms", steady_median + 1.0),
        ));
    }
    let svg = out_dir.join(format!("coldstart-{stamp}.svg"));
    strip_box_svg(
        &svg,
        "Newly deployed function: time to first response, cold vs warm cache",
        "ms",
        &categories,
        &markers,
    )?;
    println!("plot: {}", svg.display());
    Ok(())
}

/// One row of a plot: a named distribution.
struct Category {
    name: String,
    values: Vec<f64>,
    color: RGBAColor,
}

/// `v` with about three significant digits.
fn human(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// `v` (in `unit`, µs or ms) with its unit, switching to a larger unit
/// past 1000.
fn with_unit(v: f64, unit: &str) -> String {
    match unit {
        "µs" if v >= 1e6 => format!("{} s", human(v / 1e6)),
        "µs" if v >= 1e3 => format!("{} ms", human(v / 1e3)),
        "ms" if v >= 1e3 => format!("{} s", human(v / 1e3)),
        _ => format!("{} {unit}", human(v)),
    }
}

fn human_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// A horizontal box plot per category over its jittered points, log-scale
/// x, with vertical reference lines at `markers`.
fn strip_box_svg(
    path: &Path,
    title: &str,
    unit: &str,
    categories: &[Category],
    markers: &[(f64, String)],
) -> anyhow::Result<()> {
    let all: Vec<f64> = categories
        .iter()
        .flat_map(|c| c.values.iter().copied())
        .chain(markers.iter().map(|m| m.0))
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    if all.is_empty() {
        bail!("nothing to plot for {}", path.display());
    }
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min) / 1.6;
    let hi = all.iter().copied().fold(0.0, f64::max) * 1.6;
    let n = categories.len();
    let height = 110 + 64 * n as u32;
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(42)
        .y_label_area_size(330)
        .build_cartesian_2d((lo..hi).log_scale(), -0.5f64..(n as f64 - 0.5))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("log scale; box: quartiles, thick bar: median, whiskers: min to max, dots: samples")
        .x_label_formatter(&|v| with_unit(*v, unit))
        .label_style(("sans-serif", 13))
        .draw()?;

    let label_style =
        TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let detail_style = TextStyle::from(("sans-serif", 11).into_font())
        .color(&RGBColor(90, 90, 90))
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, cat) in categories.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        let values: Vec<f64> = cat
            .values
            .iter()
            .copied()
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        if values.is_empty() {
            continue;
        }
        let (min, q1, med, q3, max) = (
            quantile(&values, 0.0),
            quantile(&values, 0.25),
            quantile(&values, 0.5),
            quantile(&values, 0.75),
            quantile(&values, 1.0),
        );
        let color = cat.color;
        // Points, jittered vertically (a fixed low-discrepancy sequence, so
        // plots are reproducible).
        chart.draw_series(values.iter().enumerate().map(|(k, &v)| {
            let jitter = ((k as f64 * 0.618_034).fract() - 0.5) * 0.5;
            Circle::new((v, y + jitter), 2, color.mix(0.45).filled())
        }))?;
        // Whiskers (min to max) with caps, the box, the median.
        chart.draw_series([
            PathElement::new(vec![(min, y), (q1, y)], color.stroke_width(1)),
            PathElement::new(vec![(q3, y), (max, y)], color.stroke_width(1)),
            PathElement::new(
                vec![(min, y - 0.12), (min, y + 0.12)],
                color.stroke_width(1),
            ),
            PathElement::new(
                vec![(max, y - 0.12), (max, y + 0.12)],
                color.stroke_width(1),
            ),
        ])?;
        chart.draw_series([
            Rectangle::new([(q1, y - 0.3), (q3, y + 0.3)], color.mix(0.12).filled()),
            Rectangle::new([(q1, y - 0.3), (q3, y + 0.3)], color.stroke_width(1)),
        ])?;
        chart.draw_series([PathElement::new(
            vec![(med, y - 0.3), (med, y + 0.3)],
            color.stroke_width(3),
        )])?;
        let (_, py) = chart.plotting_area().map_coordinate(&(lo, y));
        root.draw(&Text::new(
            cat.name.clone(),
            (12, py - 8),
            label_style.clone(),
        ))?;
        root.draw(&Text::new(
            format!(
                "median {}, IQR {} – {}, n={}",
                with_unit(med, unit),
                with_unit(q1, unit),
                with_unit(q3, unit),
                values.len()
            ),
            (12, py + 9),
            detail_style.clone(),
        ))?;
    }
    for (x, label) in markers {
        let red = RGBColor(200, 0, 0);
        chart.draw_series([PathElement::new(
            vec![(*x, -0.5), (*x, n as f64 - 0.5)],
            red.stroke_width(1),
        )])?;
        chart.draw_series([Text::new(
            label.clone(),
            (*x * 1.03, n as f64 - 0.62),
            TextStyle::from(("sans-serif", 12).into_font())
                .color(&red)
                .pos(Pos::new(HPos::Left, VPos::Top)),
        )])?;
    }
    root.present()?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Criterion {
            criterion_dir,
            groups,
            out_dir,
            stamp,
        } => {
            let out_dir = out_dir.unwrap_or_else(results_dir);
            std::fs::create_dir_all(&out_dir)?;
            criterion(
                &criterion_dir.unwrap_or_else(default_criterion_dir),
                &groups,
                &out_dir,
                &stamp.unwrap_or_else(utc_stamp),
            )
        }
        Cmd::Coldstart { file, out_dir } => {
            let out_dir = out_dir.unwrap_or_else(results_dir);
            std::fs::create_dir_all(&out_dir)?;
            coldstart(
                &file.unwrap_or_else(|| results_dir().join("coldstart-latest.json")),
                &out_dir,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A criterion result directory holding one benchmark of `group`.
    fn fake_criterion(dir: &Path, group: &str, mode: &str) {
        let new = dir.join(group).join(mode).join("new");
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(
            new.join("sample.json"),
            r#"{"iters": [10, 20, 30], "times": [300, 500, 1000]}"#,
        )
        .unwrap();
        let estimate = r#"{"point_estimate": 25.0, "confidence_interval": {"lower_bound": 20.0, "upper_bound": 30.0}}"#;
        std::fs::write(
            new.join("estimates.json"),
            format!(r#"{{"median": {estimate}, "mean": {estimate}}}"#),
        )
        .unwrap();
    }

    #[test]
    fn groups_a_filtered_run_skipped_are_left_out_and_none_at_all_is_an_error() {
        let criterion_dir = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        fake_criterion(criterion_dir.path(), "by_component", "hello");
        let groups = |names: &[&str]| names.iter().map(|g| (*g).to_owned()).collect::<Vec<_>>();

        criterion(
            criterion_dir.path(),
            &groups(&["instantiate", "by_component"]),
            out.path(),
            "t",
        )
        .unwrap();
        let csv = std::fs::read_to_string(out.path().join("criterion-t.csv")).unwrap();
        let rows: Vec<&str> = csv.lines().skip(1).collect();
        assert_eq!(rows.len(), 3, "{csv}");
        assert!(
            rows.iter().all(|r| r.starts_with("by_component,hello,")),
            "{csv}"
        );
        assert!(out.path().join("criterion-by_component-t.svg").is_file());

        let err = criterion(
            criterion_dir.path(),
            &groups(&["instantiate"]),
            out.path(),
            "u",
        )
        .unwrap_err();
        assert!(err.to_string().contains("no criterion results"), "{err}");
    }
}
