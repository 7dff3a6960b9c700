//! The text table the model reads: a header, aligned columns, cells cut at
//! [`MAX_CELL_CHARS`], the whole cut at the shared output byte limit, and a footer that says how
//! many rows came back, whether more exist and how long the query took.

use serde_json::Value;

use super::super::output::MAX_BYTES;

/// Widest cell shown in the text table (the structured result keeps whole values).
pub const MAX_CELL_CHARS: usize = 80;

/// A cell's text: the value's own string, or a stretch of the table's scratch text (`made`),
/// so that a cell costs no allocation of its own (issue 14: without the `String` per cell a
/// 100-row query took 130 µs of CPU instead of 140).
#[derive(Clone, Copy)]
enum Shown<'a> {
    Own(&'a str),
    Made(usize, usize),
}

impl<'a> Shown<'a> {
    fn text<'b>(self, made: &'b str) -> &'b str
    where
        'a: 'b,
    {
        match self {
            Shown::Own(s) => s,
            Shown::Made(from, to) => &made[from..to],
        }
    }
}

/// Width in characters (the byte length for ASCII, which is checked much faster).
fn width_of(text: &str) -> usize {
    if text.is_ascii() {
        text.len()
    } else {
        text.chars().count()
    }
}

/// How a value reads in a cell: strings bare, NULL as `NULL`, the rest as JSON; with its
/// width in characters. Text that must be changed (flattened to one line or cut) and the JSON
/// of numbers and the like are written to `made`.
fn cell<'a>(v: &'a Value, made: &mut String) -> (Shown<'a>, usize) {
    let own = match v {
        Value::Null => Some("NULL"),
        Value::Bool(b) => Some(if *b { "true" } else { "false" }),
        Value::String(s) => Some(s.as_str()),
        _ => None,
    };
    let start = made.len();
    let Some(text) = own else {
        use std::fmt::Write as _;
        let _ = write!(made, "{v}");
        let width = width_of(&made[start..]);
        if width <= MAX_CELL_CHARS && !made[start..].contains(['\n', '\t']) {
            return (Shown::Made(start, made.len()), width);
        }
        let text = made.split_off(start);
        let width = fit(&text, width, made);
        return (Shown::Made(start, made.len()), width);
    };
    let width = width_of(text);
    if width <= MAX_CELL_CHARS && !text.contains(['\n', '\t']) {
        return (Shown::Own(text), width);
    }
    let width = fit(text, width, made);
    (Shown::Made(start, made.len()), width)
}

/// Appends `text` (`width` characters) to `made` on one line (new lines and tabs as spaces),
/// cut with `…` at [`MAX_CELL_CHARS`]; returns the width shown.
fn fit(text: &str, width: usize, made: &mut String) -> usize {
    let flat = text
        .chars()
        .map(|c| if c == '\n' || c == '\t' { ' ' } else { c });
    if width > MAX_CELL_CHARS {
        made.extend(flat.take(MAX_CELL_CHARS - 1));
        made.push('…');
        MAX_CELL_CHARS
    } else {
        made.extend(flat);
        width
    }
}

/// Appends one table line to `out`: each value padded to its column's width, ` | ` between,
/// trailing white space removed.
fn push_line<'a>(
    out: &mut String,
    values: impl Iterator<Item = (&'a str, usize)>,
    widths: &[usize],
) {
    let start = out.len();
    for (i, ((v, width), w)) in values.zip(widths).enumerate() {
        if i > 0 {
            out.push_str(" | ");
        }
        out.push_str(v);
        out.extend(std::iter::repeat_n(' ', w.saturating_sub(width)));
    }
    let kept = out[start..].trim_end().len();
    out.truncate(start + kept);
}

/// Renders `rows` under `columns` with a footer line.
pub fn render(columns: &[String], rows: &[Vec<Value>], footer: &str) -> String {
    let mut made = String::new();
    let mut cells: Vec<Vec<(Shown, usize)>> = Vec::with_capacity(rows.len());
    for r in rows {
        cells.push(r.iter().map(|v| cell(v, &mut made)).collect());
    }
    let heads: Vec<(&str, usize)> = columns.iter().map(|c| (c.as_str(), width_of(c))).collect();
    let mut widths: Vec<usize> = heads.iter().map(|h| h.1).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.1);
        }
    }
    let mut out = String::new();
    push_line(&mut out, heads.iter().copied(), &widths);
    out.push('\n');
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&rule.join("-+-"));
    out.push('\n');
    let mut shown = 0;
    for row in &cells {
        let before = out.len();
        push_line(
            &mut out,
            row.iter().map(|(v, w)| (v.text(&made), *w)),
            &widths,
        );
        if out.len() + footer.len() + 100 > MAX_BYTES {
            out.truncate(before);
            break;
        }
        out.push('\n');
        shown += 1;
    }
    if shown < cells.len() {
        out.push_str(&format!(
            "(text cut after {shown} of {} rows at {MAX_BYTES} bytes; the structured result has them all)\n",
            cells.len()
        ));
    }
    out.push_str(footer);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cell(v: &Value) -> (String, usize) {
        let mut made = String::new();
        let (shown, width) = super::cell(v, &mut made);
        (shown.text(&made).to_string(), width)
    }

    #[test]
    fn cells_are_cut_and_tables_capped() {
        let long = "x".repeat(MAX_CELL_CHARS * 2);
        assert_eq!(cell(&json!(1.5)), ("1.5".to_string(), 3));
        assert_eq!(cell(&json!(false)), ("false".to_string(), 5));
        assert_eq!(cell(&json!(["a\nb"])), (r#"["a\nb"]"#.to_string(), 8));
        assert_eq!(cell(&json!("é\tè")), ("é è".to_string(), 3));
        let wide = json!([long]);
        let (cut, width) = cell(&wide);
        assert_eq!(
            (cut.chars().count(), width),
            (MAX_CELL_CHARS, MAX_CELL_CHARS)
        );
        assert!(cut.starts_with(r#"["xxx"#) && cut.ends_with('…'), "{cut}");
        let (cut, width) = cell(&json!(long));
        assert_eq!(
            (cut.chars().count(), width),
            (MAX_CELL_CHARS, MAX_CELL_CHARS)
        );
        assert!(cut.ends_with('…'));
        assert_eq!(cell(&Value::Null), ("NULL".to_string(), 4));
        assert_eq!(cell(&json!("a\tb\nc")), ("a b c".to_string(), 5));
        let table = render(
            &["id".into(), "name".into()],
            &[vec![json!(1), json!("x")], vec![json!(22), Value::Null]],
            "2 rows",
        );
        assert_eq!(table, "id | name\n---+-----\n1  | x\n22 | NULL\n2 rows");
        let rows: Vec<Vec<Value>> = (0..5000).map(|i| vec![json!(i), json!(long)]).collect();
        let text = render(&["n".into(), "s".into()], &rows, "5000 rows");
        assert!(text.len() <= MAX_BYTES, "{}", text.len());
        assert!(text.contains("the structured result has them all"));
        assert!(text.ends_with("5000 rows"));
    }
}
