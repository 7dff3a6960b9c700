//! A cheap pre-parse screen that keeps hostile input (huge or deeply nested command lines)
//! away from the recursive shell parser, so such input is refused quickly instead of
//! exhausting the stack.

/// Longest command line the guard will judge.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;
/// Deepest nesting of brackets, substitutions and compound commands the guard will parse.
pub const MAX_NESTING: usize = 64;
/// Deepest nesting of parentheses (subshells, `$(`, `<(`): the parser backtracks
/// exponentially on unclosed ones, so they get a tighter bound.
pub const MAX_PAREN_NESTING: usize = 16;

/// Cheap pre-parse check that keeps hostile input (deep nesting, huge size) away from the
/// recursive parser. Returns why the input is refused.
pub fn too_complex(src: &str) -> Option<String> {
    if src.len() > MAX_INPUT_BYTES {
        return Some(format!(
            "the command is {} bytes; the guard judges at most {MAX_INPUT_BYTES}",
            src.len()
        ));
    }
    let mut depth: usize = 0;
    let mut max_depth: usize = 0;
    let mut parens: usize = 0;
    let bytes = src.as_bytes();
    let mut word = String::new();
    let flush = |word: &mut String, depth: &mut usize, max: &mut usize| {
        match word.as_str() {
            "if" | "case" | "do" => {
                *depth += 1;
                *max = (*max).max(*depth);
            }
            "fi" | "esac" | "done" => *depth = depth.saturating_sub(1),
            _ => {}
        }
        word.clear();
    };
    for &b in bytes {
        match b {
            b'(' | b'{' | b'[' => {
                flush(&mut word, &mut depth, &mut max_depth);
                depth += 1;
                max_depth = max_depth.max(depth);
                if b == b'(' {
                    parens += 1;
                    if parens > MAX_PAREN_NESTING {
                        return Some(format!(
                            "the command nests parentheses deeper than {MAX_PAREN_NESTING} levels"
                        ));
                    }
                }
            }
            b')' | b'}' | b']' => {
                flush(&mut word, &mut depth, &mut max_depth);
                depth = depth.saturating_sub(1);
                if b == b')' {
                    parens = parens.saturating_sub(1);
                }
            }
            b'`' | b'<' => {
                flush(&mut word, &mut depth, &mut max_depth);
                max_depth = max_depth.max(depth + 1);
            }
            b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' => {
                flush(&mut word, &mut depth, &mut max_depth)
            }
            _ => word.push(b as char),
        }
        if max_depth > MAX_NESTING {
            return Some(format!(
                "the command nests deeper than {MAX_NESTING} levels"
            ));
        }
    }
    let backticks = bytes.iter().filter(|&&b| b == b'`').count();
    if backticks > 2 * MAX_NESTING {
        return Some(format!(
            "the command has {backticks} backticks; the guard judges at most {}",
            2 * MAX_NESTING
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced() {
        assert!(too_complex(&"x".repeat(MAX_INPUT_BYTES + 1)).is_some());
        assert!(too_complex(&"x".repeat(MAX_INPUT_BYTES)).is_none());
        let nested = |n: usize| "(".repeat(n) + &")".repeat(n);
        assert!(too_complex(&nested(MAX_PAREN_NESTING)).is_none());
        assert!(too_complex(&nested(MAX_PAREN_NESTING + 1)).is_some());
        let braces = |n: usize| "{ ".repeat(n) + &"}".repeat(n);
        assert!(too_complex(&braces(MAX_NESTING)).is_none());
        assert!(too_complex(&braces(MAX_NESTING + 1)).is_some());
        let ifs = |n: usize| "if a; then ".repeat(n) + &"fi; ".repeat(n);
        assert!(too_complex(&ifs(MAX_NESTING)).is_none());
        assert!(too_complex(&ifs(MAX_NESTING + 1)).is_some());
        // Sequential constructs do not add up.
        assert!(too_complex(&"(a); ".repeat(1000)).is_none());
        assert!(
            too_complex(&"while a; do b; done; for x in y; do z; done; ".repeat(100)).is_none()
        );
        assert!(too_complex(&"case x in a) b;; esac; if a; then b; fi; ".repeat(100)).is_none());
    }
}
