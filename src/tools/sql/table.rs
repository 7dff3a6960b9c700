//! The text table the model reads: a header, aligned columns, cells cut at
//! [`MAX_CELL_CHARS`], the whole cut at the shared output byte limit, and a footer that says how
//! many rows came back, whether more exist and how long the query took.

use serde_json::Value;

use super::super::output::MAX_BYTES;

/// Widest cell shown in the text table (the structured result keeps whole values).
pub const MAX_CELL_CHARS: usize = 80;

/// How a value reads in a cell: strings bare, NULL as `NULL`, the rest as JSON; with its
/// width in characters.
fn cell(v: &Value) -> (String, usize) {
    let text = match v {
        Value::Null => "NULL".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let width = text.chars().count();
    if width <= MAX_CELL_CHARS && !text.contains(['\n', '\t']) {
        return (text, width);
    }
    let flat = text.replace(['\n', '\t'], " ");
    if width > MAX_CELL_CHARS {
        let mut cut: String = flat.chars().take(MAX_CELL_CHARS - 1).collect();
        cut.push('…');
        (cut, MAX_CELL_CHARS)
    } else {
        (flat, width)
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
    let cells: Vec<Vec<(String, usize)>> =
        rows.iter().map(|r| r.iter().map(cell).collect()).collect();
    let heads: Vec<(&str, usize)> = columns
        .iter()
        .map(|c| (c.as_str(), c.chars().count()))
        .collect();
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
        push_line(&mut out, row.iter().map(|(v, w)| (v.as_str(), *w)), &widths);
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

    #[test]
    fn cells_are_cut_and_tables_capped() {
        let long = "x".repeat(MAX_CELL_CHARS * 2);
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
