//! The header of every chart: its title and a legend row (wrapped when long) above the plot,
//! so the legend never hides data, whatever the series do.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{FONT, palette, text};

const TITLE_SIZE: u32 = 18;
const LEGEND_SIZE: u32 = 13;
const MARGIN: i32 = 14;
const TITLE_HEIGHT: i32 = 30;
const ROW_HEIGHT: i32 = 20;
const SWATCH: i32 = 24;
const GAP: i32 = 18;

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy)]
pub enum Swatch {
    /// A series: a line with a dot.
    Line(RGBColor),
    /// A threshold: a dashed line.
    Dashed(RGBColor),
    /// A marked point: a ring around a dot.
    Marker(RGBColor),
    /// A bar colour.
    Box(RGBColor),
}

/// Where each legend entry goes: `(x, row)`, and the number of rows.
fn layout<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(Swatch, String)],
) -> Result<(Vec<(i32, i32)>, i32), String> {
    let width = area.dim_in_pixel().0 as i32;
    let style = TextStyle::from((FONT, LEGEND_SIZE).into_font());
    let mut out = Vec::with_capacity(entries.len());
    let (mut x, mut row) = (MARGIN, 0);
    for (_, label) in entries {
        let w = area.estimate_text_size(label, &style).map_err(text)?.0 as i32 + SWATCH + 6;
        if x > MARGIN && x + w > width - MARGIN {
            x = MARGIN;
            row += 1;
        }
        out.push((x, row));
        x += w + GAP;
    }
    let rows = if entries.is_empty() { 0 } else { row + 1 };
    Ok((out, rows))
}

/// Draws the title and legend on `root` and returns the area left for the plot.
pub fn header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    entries: &[(Swatch, String)],
) -> Result<DrawingArea<DB, Shift>, String> {
    let (places, rows) = layout(root, entries)?;
    let title_style = TextStyle::from((FONT, TITLE_SIZE).into_font());
    root.draw_text(title, &title_style, (MARGIN, 8))
        .map_err(text)?;
    let style = TextStyle::from((FONT, LEGEND_SIZE).into_font()).color(&palette::BLACK);
    for ((swatch, label), (x, row)) in entries.iter().zip(places) {
        let y = TITLE_HEIGHT + row * ROW_HEIGHT + ROW_HEIGHT / 2;
        draw_swatch(root, *swatch, x, y)?;
        root.draw_text(
            label,
            &style,
            (x + SWATCH + 6, y - LEGEND_SIZE as i32 / 2 - 1),
        )
        .map_err(text)?;
    }
    let height = TITLE_HEIGHT + rows * ROW_HEIGHT + 4;
    Ok(root.split_vertically(height).1)
}

fn draw_swatch<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    swatch: Swatch,
    x: i32,
    y: i32,
) -> Result<(), String> {
    let mid = (x + SWATCH / 2, y);
    match swatch {
        Swatch::Line(c) => {
            area.draw(&PathElement::new(
                vec![(x, y), (x + SWATCH, y)],
                c.stroke_width(2),
            ))
            .map_err(text)?;
            area.draw(&Circle::new(mid, 3, c.filled())).map_err(text)
        }
        Swatch::Dashed(c) => {
            for dx in [0, 9, 18] {
                area.draw(&PathElement::new(
                    vec![(x + dx, y), (x + dx + 6, y)],
                    c.stroke_width(2),
                ))
                .map_err(text)?;
            }
            Ok(())
        }
        Swatch::Marker(c) => {
            area.draw(&Circle::new(mid, 7, c.stroke_width(2)))
                .map_err(text)?;
            area.draw(&Circle::new(mid, 3, c.filled())).map_err(text)
        }
        Swatch::Box(c) => area
            .draw(&Rectangle::new(
                [(x + 4, y - 6), (x + SWATCH - 4, y + 6)],
                c.filled(),
            ))
            .map_err(text),
    }
}
