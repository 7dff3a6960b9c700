//! Charts people read, shared by the Data Ghost report and the monitor's alert value charts:
//! time axes labelled for the span they cover ([`axis`]), numbers with separators, suffixes and
//! percentages ([`format`]), a colour-blind-safe palette ([`palette`]), anomalies marked and
//! thresholds drawn, each with a legend entry. Drawn with plotters into PNG bitmaps with the
//! bundled DejaVu Sans font (registered from `assets/fonts`, so no system fonts are needed).

pub mod axis;
mod bars;
pub mod format;
mod legend;
pub mod palette;
mod time;

use std::path::Path;
use std::sync::Once;

use plotters::style::{FontStyle, register_font};

pub use bars::{Bar, BarChart, bar_chart};
pub use time::{Series, Threshold, TimeChart, time_chart};

/// Width of every chart, in pixels.
pub const CHART_WIDTH: u32 = 800;
/// Height of every chart, in pixels.
pub const CHART_HEIGHT: u32 = 400;
pub(crate) const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// What the numbers of a chart are, which decides how they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Whole things (rows): `1,200`, `1.5M`; axis steps of at least 1.
    Count,
    /// A fraction in `0..=1` (null rates): `52.5%`.
    Ratio,
    /// Any other number (an alert's value): `0.25`, `1,250`, `12.5k`.
    Number,
}

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("chart {path}: {message}")]
pub struct ChartError {
    pub path: String,
    pub message: String,
}

impl ChartError {
    pub(crate) fn at(path: &Path) -> impl Fn(String) -> ChartError + '_ {
        move |message| ChartError {
            path: path.display().to_string(),
            message,
        }
    }
}

/// Registers the bundled font once per process.
pub(crate) fn register() -> Result<(), String> {
    static REGISTER: Once = Once::new();
    let mut result = Ok(());
    REGISTER.call_once(|| {
        result = register_font(FONT, FontStyle::Normal, FONT_BYTES)
            .map_err(|_| "the bundled font could not be loaded".to_string());
    });
    result
}

/// A plotters error as text.
pub(crate) fn text<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// An `f64` axis with ticks exactly where [`axis`] put them (plotters' own `with_key_points`
/// cannot take a label formatter on `f64` ranges).
pub(crate) struct Ticked {
    range: std::ops::Range<f64>,
    ticks: Vec<f64>,
}

impl Ticked {
    pub(crate) fn new(range: std::ops::Range<f64>, ticks: Vec<f64>) -> Ticked {
        let ticks = ticks
            .into_iter()
            .filter(|t| range.start <= *t && *t <= range.end)
            .collect();
        Ticked { range, ticks }
    }
}

impl plotters::coord::ranged1d::Ranged for Ticked {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        if span <= 0.0 {
            return limit.0;
        }
        let share = (value - self.range.start) / span;
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: plotters::coord::ranged1d::KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }
}
