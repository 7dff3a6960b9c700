//! Names and values made safe for the Markdown report. Table, column and index names and data
//! values come from the watched database, so any of them may hold a backtick, a `|`, a newline
//! or a `]` that would break a code span, a table row or a link.

/// Text made safe inside a Markdown code span on one line: backticks become quotes, `|`
/// (which breaks tables) becomes `¦`, control characters (newlines) become spaces.
pub fn inline(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            '`' => '\'',
            '|' => '¦',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// Text made safe as a link's or image's text: [`inline`], and square brackets become
/// parentheses so they cannot close the text early.
pub fn link_text(value: &str) -> String {
    inline(value)
        .chars()
        .map(|c| match c {
            '[' => '(',
            ']' => ')',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_cannot_break_the_markdown() {
        assert_eq!(inline("a`b|c\nd"), "a'b¦c d");
        assert_eq!(link_text("t](x.png) [y"), "t)(x.png) (y");
    }
}
