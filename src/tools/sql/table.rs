//! The text table the model reads: a header, aligned columns, cells cut at
//! [`MAX_CELL_CHARS`], the whole cut at the shared output byte limit, and a footer that says how
//! many rows came back, whether more exist and how long the query took.

use serde_json::Value;

use super::super::output::MAX_BYTES;

/// Widest cell shown in the text table (the structured result keeps whole values).
pub const MAX_CELL_CHARS: usize = 80;

/// How a value reads in a cell: strings bare, NULL as `NULL`, the rest as JSON.
fn cell(v: &Value) -> String {
    let text = match v {
        Value::Null => "NULL".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let flat: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
        .collect();
    if flat.chars().count() > MAX_CELL_CHARS {
        let cut: String = flat.chars().take(MAX_CELL_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

/// Renders `rows` under `columns` with a footer line.
pub fn render(columns: &[String], rows: &[Vec<Value>], footer: &str) -> String {
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(cell).collect()).collect();
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |values: &[String]| -> String {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        padded.join(" | ").trim_end().to_string()
    };
    let mut out = String::new();
    out.push_str(&line(columns));
    out.push('\n');
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&rule.join("-+-"));
    out.push('\n');
    let mut shown = 0;
    for row in &cells {
        let l = line(row);
        if out.len() + l.len() + footer.len() + 100 > MAX_BYTES {
            break;
        }
        out.push_str(&l);
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
        assert_eq!(cell(&json!(long)).chars().count(), MAX_CELL_CHARS);
        assert_eq!(cell(&Value::Null), "NULL");
        let rows: Vec<Vec<Value>> = (0..5000).map(|i| vec![json!(i), json!(long)]).collect();
        let text = render(&["n".into(), "s".into()], &rows, "5000 rows");
        assert!(text.len() <= MAX_BYTES, "{}", text.len());
        assert!(text.contains("the structured result has them all"));
        assert!(text.ends_with("5000 rows"));
    }
}
