//! PNG charts for the report, drawn with plotters into bitmaps with the bundled DejaVu Sans font
//! (registered from `assets/fonts`, so no system fonts are needed): row-count history per table,
//! null-rate changes, and value distributions of columns with new values.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

/// Width of every chart, in pixels.
pub const CHART_WIDTH: u32 = 800;
/// Height of every chart, in pixels.
pub const CHART_HEIGHT: u32 = 400;
/// Bars drawn in one distribution or null-rate chart (the rest are left out).
pub const MAX_BARS: usize = 20;
/// Characters of a bar label kept.
const LABEL_CHARS: usize = 16;
const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("chart {path}: {message}")]
pub struct ChartError {
    pub path: String,
    pub message: String,
}

fn register() -> Result<(), String> {
    static REGISTER: Once = Once::new();
    let mut result = Ok(());
    REGISTER.call_once(|| {
        result = register_font(FONT, FontStyle::Normal, FONT_BYTES)
            .map_err(|_| "the bundled font could not be loaded".to_string());
    });
    result
}

fn err(path: &Path) -> impl Fn(String) -> ChartError + '_ {
    move |message| ChartError {
        path: path.display().to_string(),
        message,
    }
}

fn label(s: &str) -> String {
    let mut out: String = s.chars().take(LABEL_CHARS).collect();
    if s.chars().count() > LABEL_CHARS {
        out.push('…');
    }
    out
}

/// Row count of `table` over runs: `points` are `(run label, rows)`, oldest first.
pub fn row_count_history(
    path: &Path,
    table: &str,
    points: &[(String, i64)],
) -> Result<(), ChartError> {
    draw_row_counts(path, table, points).map_err(err(path))
}

fn draw_row_counts(path: &Path, table: &str, points: &[(String, i64)]) -> Result<(), String> {
    register()?;
    let root = BitMapBackend::new(path, (CHART_WIDTH, CHART_HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1) as f64;
    let n = points.len().max(2);
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("Row count: {table}"), (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..(n - 1) as f64, 0f64..max * 1.1)
        .map_err(|e| e.to_string())?;
    let labels: Vec<String> = points.iter().map(|p| p.0.clone()).collect();
    chart
        .configure_mesh()
        .x_labels(n.min(8))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style((FONT, 12))
        .draw()
        .map_err(|e| e.to_string())?;
    let series: Vec<(f64, f64)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| (i as f64, p.1 as f64))
        .collect();
    chart
        .draw_series(LineSeries::new(series.clone(), BLUE.stroke_width(2)))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(series.iter().map(|p| Circle::new(*p, 4, BLUE.filled())))
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Null rates of `table`'s columns before (usual) and now: `(column, before, now)` in 0..=1.
pub fn null_rates(
    path: &Path,
    table: &str,
    columns: &[(String, f64, f64)],
) -> Result<(), ChartError> {
    let bars: Vec<(String, Vec<(f64, RGBColor)>)> = columns
        .iter()
        .take(MAX_BARS)
        .map(|(c, before, now)| (c.clone(), vec![(before * 100.0, BLUE), (now * 100.0, RED)]))
        .collect();
    draw_bars(
        path,
        &format!("Null rate % (blue: usual, red: now): {table}"),
        &bars,
        100.0,
    )
    .map_err(err(path))
}

/// Value counts of `column`: `(value, rows, is_new)`; new values in red.
pub fn value_distribution(
    path: &Path,
    table: &str,
    column: &str,
    values: &[(String, i64, bool)],
) -> Result<(), ChartError> {
    let bars: Vec<(String, Vec<(f64, RGBColor)>)> = values
        .iter()
        .take(MAX_BARS)
        .map(|(v, n, new)| (v.clone(), vec![(*n as f64, if *new { RED } else { BLUE })]))
        .collect();
    let max = values.iter().map(|v| v.1).max().unwrap_or(1).max(1) as f64;
    draw_bars(
        path,
        &format!("Values of {table}.{column} (red: new)"),
        &bars,
        max * 1.1,
    )
    .map_err(err(path))
}

/// Grouped bars: one group per label, one bar per value in the group.
fn draw_bars(
    path: &Path,
    title: &str,
    groups: &[(String, Vec<(f64, RGBColor)>)],
    y_max: f64,
) -> Result<(), String> {
    register()?;
    let root = BitMapBackend::new(path, (CHART_WIDTH, CHART_HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let n = groups.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..n as f64, 0f64..y_max.max(1.0))
        .map_err(|e| e.to_string())?;
    let names: Vec<String> = groups.iter().map(|g| label(&g.0)).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style((FONT, 12))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (_, bars)) in groups.iter().enumerate() {
        let width = 0.8 / bars.len().max(1) as f64;
        for (j, (value, color)) in bars.iter().enumerate() {
            let x0 = i as f64 + 0.1 + j as f64 * width;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x0 + width * 0.9, *value)],
                    color.filled(),
                )))
                .map_err(|e| e.to_string())?;
        }
    }
    // Group names under the axis, centred on their group.
    let area = chart.plotting_area();
    for (i, name) in names.iter().enumerate() {
        let (x, y) = area.map_coordinate(&(i as f64 + 0.5, 0.0));
        let style =
            TextStyle::from((FONT, 12).into_font()).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            ));
        root.draw(&Text::new(name.clone(), (x, y + 6), style))
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}
