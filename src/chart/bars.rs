//! Bars: one per label (the values of a column), the highlighted ones (new values) in
//! vermillion, each bar's value written on it when it fits, labels cut to fit their slot.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::legend::{self, Swatch};
use super::{
    CHART_HEIGHT, CHART_WIDTH, ChartError, FONT, Ticked, ValueKind, axis, format, palette, text,
};

const MAX_VALUE_TICKS: usize = 6;
const LABEL_SIZE: u32 = 12;
const VALUE_SIZE: u32 = 12;

/// One bar.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    /// Drawn in the alert colour (a new value).
    pub highlight: bool,
}

/// A bar chart.
#[derive(Debug, Clone)]
pub struct BarChart<'a> {
    pub title: &'a str,
    pub kind: ValueKind,
    pub bars: &'a [Bar],
    /// Legend entry of the plain bars.
    pub label: &'a str,
    /// Legend entry of the highlighted bars (shown when there are any).
    pub highlight_label: &'a str,
}

/// Draws `chart` into a PNG at `path`.
pub fn bar_chart(path: &Path, chart: &BarChart) -> Result<(), ChartError> {
    draw(path, chart).map_err(ChartError::at(path))
}

/// `s` cut (with `…`) to at most `width` pixels in `style`.
fn fit<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    s: &str,
    style: &TextStyle,
    width: u32,
) -> Result<String, String> {
    if area.estimate_text_size(s, style).map_err(text)?.0 <= width {
        return Ok(s.to_string());
    }
    let chars: Vec<char> = s.chars().collect();
    for keep in (0..chars.len()).rev() {
        let cut: String = chars[..keep].iter().collect::<String>() + "…";
        if area.estimate_text_size(&cut, style).map_err(text)?.0 <= width {
            return Ok(cut);
        }
    }
    Ok(String::new())
}

fn draw(path: &Path, chart: &BarChart) -> Result<(), String> {
    super::register()?;
    let root = BitMapBackend::new(path, (CHART_WIDTH, CHART_HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(text)?;
    let mut entries = vec![(Swatch::Box(palette::BLUE), chart.label.to_string())];
    if chart.bars.iter().any(|b| b.highlight) {
        entries.push((
            Swatch::Box(palette::ALERT),
            chart.highlight_label.to_string(),
        ));
    }
    let body = legend::header(&root, chart.title, &entries)?;
    let max = chart
        .bars
        .iter()
        .map(|b| b.value)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let (y_ticks, y_step) = axis::value_ticks(
        0.0,
        max * 1.08,
        MAX_VALUE_TICKS,
        chart.kind == ValueKind::Count,
    );
    let top = y_ticks.last().copied().filter(|t| *t > 0.0).unwrap_or(1.0);
    let n = chart.bars.len().max(1);
    let mut plot = ChartBuilder::on(&body)
        .margin_left(8)
        .margin_right(20)
        .margin_bottom(6)
        .x_label_area_size(28)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..n as f64, Ticked::new(0f64..top, y_ticks))
        .map_err(text)?;
    let y_label = |y: &f64| format::tick(chart.kind, *y, y_step);
    plot.configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_label_formatter(&y_label)
        .label_style((FONT, LABEL_SIZE).into_font().color(&palette::BLACK))
        .bold_line_style(RGBColor(225, 225, 225))
        .axis_style(palette::GREY)
        .draw()
        .map_err(text)?;
    plot.draw_series(chart.bars.iter().enumerate().map(|(i, b)| {
        let color = if b.highlight {
            palette::ALERT
        } else {
            palette::BLUE
        };
        Rectangle::new(
            [(i as f64 + 0.12, 0.0), (i as f64 + 0.88, b.value.max(0.0))],
            color.filled(),
        )
    }))
    .map_err(text)?;

    let area = plot.plotting_area();
    let slot = (area.dim_in_pixel().0 / n as u32).saturating_sub(4);
    let centre = |style: TextStyle<'static>, v: VPos| style.pos(Pos::new(HPos::Center, v));
    let label_style = centre(
        TextStyle::from((FONT, LABEL_SIZE).into_font()).color(&palette::BLACK),
        VPos::Top,
    );
    let value_style = centre(
        TextStyle::from((FONT, VALUE_SIZE).into_font()).color(&palette::BLACK),
        VPos::Bottom,
    );
    for (i, b) in chart.bars.iter().enumerate() {
        let (x, y) = area.map_coordinate(&(i as f64 + 0.5, 0.0));
        let name = fit(&root, &b.label, &label_style, slot)?;
        root.draw_text(&name, &label_style, (x, y + 6))
            .map_err(text)?;
        let value = format::value(chart.kind, b.value);
        if root
            .estimate_text_size(&value, &value_style)
            .map_err(text)?
            .0
            <= slot
        {
            let (x, y) = area.map_coordinate(&(i as f64 + 0.5, b.value.max(0.0)));
            root.draw_text(&value, &value_style, (x, y - 3))
                .map_err(text)?;
        }
    }
    root.present().map_err(text)
}
