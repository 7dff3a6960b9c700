//! The colours of every chart: the Okabe-Ito palette, which stays distinguishable under the
//! common colour-vision deficiencies (protanopia, deuteranopia, tritanopia) and in greyscale
//! by lightness. Vermillion is kept for what the reader should look at (an anomaly, a new
//! value, a threshold); series take the other colours in order.

use plotters::style::RGBColor;

pub const BLACK: RGBColor = RGBColor(0, 0, 0);
pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
pub const SKY_BLUE: RGBColor = RGBColor(86, 180, 233);
pub const BLUISH_GREEN: RGBColor = RGBColor(0, 158, 115);
pub const YELLOW: RGBColor = RGBColor(240, 228, 66);
pub const BLUE: RGBColor = RGBColor(0, 114, 178);
pub const VERMILLION: RGBColor = RGBColor(213, 94, 0);
pub const REDDISH_PURPLE: RGBColor = RGBColor(204, 121, 167);
/// Grid lines and axis text that should not compete with the data.
pub const GREY: RGBColor = RGBColor(110, 110, 110);

/// What the reader should look at: anomalies, new values, thresholds.
pub const ALERT: RGBColor = VERMILLION;

/// Series colours in order of use (vermillion left out; yellow, hard to see on white, last).
pub const SERIES: &[RGBColor] = &[
    BLUE,
    ORANGE,
    BLUISH_GREEN,
    REDDISH_PURPLE,
    SKY_BLUE,
    BLACK,
    YELLOW,
];

/// The colour of the `i`th series (repeating after the palette runs out).
pub fn series(i: usize) -> RGBColor {
    SERIES[i % SERIES.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alert_colour_is_never_a_series_colour() {
        assert!((0..20).all(|i| series(i) != ALERT));
        assert_eq!(series(0), BLUE);
        assert_eq!(series(SERIES.len()), BLUE);
    }
}
