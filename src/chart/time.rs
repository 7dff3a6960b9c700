//! Values over time: one line per series on a time axis labelled for its span, the points to
//! look at (an anomaly, a breach) ringed in vermillion with their value written beside them,
//! and an optional threshold as a dashed line; every element has a legend entry.

use std::path::Path;

use chrono::{DateTime, Utc};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis;
use super::legend::{self, Swatch};
use super::{
    CHART_HEIGHT, CHART_WIDTH, ChartError, FONT, Ticked, ValueKind, format, palette, text,
};

/// Ticks on the time axis at most.
const MAX_TIME_TICKS: usize = 7;
/// Ticks on the value axis at most.
const MAX_VALUE_TICKS: usize = 6;
/// Room above the highest value, as a fraction of the range (so a ring is not cut off).
const HEADROOM: f64 = 0.08;
/// A marked point's value is written only this far (a fraction of the axis) from another's.
const LABEL_GAP_FRACTION: f64 = 0.15;
/// Near an end of an axis (this fraction of it), a value label is pulled inwards.
const EDGE_FRACTION: f64 = 0.08;

/// One line of a time chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// `(time, value)`, any order.
    pub points: Vec<(DateTime<Utc>, f64)>,
}

/// A horizontal line the values are judged against.
#[derive(Debug, Clone)]
pub struct Threshold {
    pub value: f64,
    /// Its legend entry (`threshold: avg > 500`).
    pub label: String,
}

/// A chart of values over time.
#[derive(Debug, Clone)]
pub struct TimeChart<'a> {
    pub title: &'a str,
    pub kind: ValueKind,
    pub series: &'a [Series],
    /// Points to look at (anomalies, breaches): ringed, with their value written beside them.
    pub marked: &'a [(DateTime<Utc>, f64)],
    /// The legend entry of the marked points.
    pub marked_label: &'a str,
    pub threshold: Option<&'a Threshold>,
}

/// Draws `chart` into a PNG at `path`.
pub fn time_chart(path: &Path, chart: &TimeChart) -> Result<(), ChartError> {
    draw(path, chart).map_err(ChartError::at(path))
}

/// The value range shown: from 0 for counts, rates and mostly positive numbers, with headroom.
fn value_range(chart: &TimeChart) -> (f64, f64) {
    let values = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(chart.marked.iter().map(|p| p.1))
        .chain(chart.threshold.map(|t| t.value))
        .filter(|v| v.is_finite());
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return (0.0, 1.0);
    }
    let from_zero = lo >= 0.0 && (chart.kind != ValueKind::Number || lo <= hi / 2.0);
    let lo = if from_zero { 0.0 } else { lo };
    let room = ((hi - lo) * HEADROOM).max(if hi == lo { hi.abs() * 0.1 } else { 0.0 });
    let hi = hi + room;
    let lo = if from_zero { 0.0 } else { lo - room };
    match chart.kind {
        ValueKind::Ratio => (lo.max(0.0), hi.min(1.0).max(lo + 0.01)),
        _ => (lo, hi),
    }
}

fn draw(path: &Path, chart: &TimeChart) -> Result<(), String> {
    super::register()?;
    let root = BitMapBackend::new(path, (CHART_WIDTH, CHART_HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(text)?;
    let times: Vec<DateTime<Utc>> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .chain(chart.marked.iter().map(|p| p.0))
        .collect();
    let times = if times.is_empty() {
        vec![Utc::now()]
    } else {
        times
    };
    let axis = axis::time_axis(&times, MAX_TIME_TICKS).ok_or("no times to draw")?;
    let (lo, hi) = value_range(chart);
    let (y_ticks, y_step) =
        axis::value_ticks(lo, hi, MAX_VALUE_TICKS, chart.kind == ValueKind::Count);
    let (y_bottom, y_top) = match (y_ticks.first(), y_ticks.last()) {
        (Some(a), Some(b)) if b > a => (*a, *b),
        _ => (lo, hi),
    };

    let mut entries: Vec<(Swatch, String)> = chart
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| (Swatch::Line(palette::series(i)), s.name.clone()))
        .collect();
    if !chart.marked.is_empty() {
        entries.push((
            Swatch::Marker(palette::ALERT),
            chart.marked_label.to_string(),
        ));
    }
    if let Some(t) = chart.threshold {
        entries.push((Swatch::Dashed(palette::ALERT), t.label.clone()));
    }
    let body = legend::header(&root, chart.title, &entries)?;

    let x_ticks: Vec<f64> = axis.ticks.iter().map(|t| axis.x(*t)).collect();
    let mut plot = ChartBuilder::on(&body)
        .margin_left(8)
        .margin_right(40)
        .margin_bottom(6)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(
            Ticked::new(0f64..axis.width(), x_ticks),
            Ticked::new(y_bottom..y_top, y_ticks),
        )
        .map_err(text)?;
    let x_label = |x: &f64| axis.tick_at(*x).map(|t| axis.label(t)).unwrap_or_default();
    let y_label = |y: &f64| format::tick(chart.kind, *y, y_step);
    plot.configure_mesh()
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .x_desc(axis.caption())
        .label_style((FONT, 12).into_font().color(&palette::BLACK))
        .axis_desc_style((FONT, 12).into_font().color(&palette::GREY))
        .bold_line_style(RGBColor(225, 225, 225))
        .axis_style(palette::GREY)
        .draw()
        .map_err(text)?;

    for (i, s) in chart.series.iter().enumerate() {
        let color = palette::series(i);
        let mut points: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|p| (axis.x(p.0), p.1))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        plot.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(text)?;
        plot.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))
            .map_err(text)?;
    }
    if let Some(t) = chart.threshold {
        plot.draw_series(DashedLineSeries::new(
            vec![(0.0, t.value), (axis.width(), t.value)],
            8,
            5,
            palette::ALERT.stroke_width(2),
        ))
        .map_err(text)?;
    }
    let mut marked: Vec<(f64, f64)> = chart
        .marked
        .iter()
        .filter(|p| p.1.is_finite())
        .map(|(at, v)| (axis.x(*at), *v))
        .collect();
    marked.sort_by(|a, b| b.0.total_cmp(&a.0));
    plot.draw_series(marked.iter().flat_map(|p| {
        [
            Circle::new(*p, 8, palette::ALERT.stroke_width(3)),
            Circle::new(*p, 4, palette::ALERT.filled()),
        ]
    }))
    .map_err(text)?;
    // Values beside the rings, on the side with room: the latest, and earlier ones only where
    // they do not run into a label already written.
    let mut written: Vec<f64> = Vec::new();
    for p in &marked {
        if written
            .iter()
            .any(|x| (x - p.0).abs() < axis.width() * LABEL_GAP_FRACTION)
        {
            continue;
        }
        written.push(p.0);
        // Above the ring (below it near the top), pulled inwards at the ends of the axis.
        let h = if p.0 > axis.width() * (1.0 - EDGE_FRACTION) {
            HPos::Right
        } else if p.0 < axis.width() * EDGE_FRACTION {
            HPos::Left
        } else {
            HPos::Center
        };
        let dx = match h {
            HPos::Right => 8,
            HPos::Left => -8,
            HPos::Center => 0,
        };
        let near_top = p.1 > y_top - (y_top - y_bottom) * EDGE_FRACTION * 2.0;
        let (dy, v) = if near_top {
            (12, VPos::Top)
        } else {
            (-12, VPos::Bottom)
        };
        let style = TextStyle::from((FONT, 13).into_font())
            .color(&palette::ALERT)
            .pos(Pos::new(h, v));
        let label = format::value(chart.kind, p.1);
        plot.draw_series(std::iter::once(
            EmptyElement::at(*p) + Text::new(label, (dx, dy), style),
        ))
        .map_err(text)?;
    }
    if chart.series.iter().all(|s| s.points.is_empty()) {
        let style = TextStyle::from((FONT, 16).into_font()).color(&palette::GREY);
        body.draw_text("no values yet", &style, (CHART_WIDTH as i32 / 2 - 50, 60))
            .map_err(text)?;
    }
    root.present().map_err(text)
}
