//! Numbers as people read them on a chart: thousands separators (`12,345`), short suffixes for
//! large counts (`1.25M`), percentages for rates (`52.5%`), and only as many decimals as the
//! spacing of the ticks needs, so two neighbouring tick labels never read the same.

use super::ValueKind;

/// At or above this magnitude, counts and numbers get a suffix (`12.5k`) instead of digits.
pub const SUFFIX_FROM: f64 = 10_000.0;
/// Most decimals ever shown (a tick step below 1e-6 is shown at this precision).
const MAX_DECIMALS: usize = 6;
const SUFFIXES: &[(f64, &str)] = &[(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];

/// `n` with a comma every three digits: `-1234567` -> `-1,234,567`.
pub fn thousands(n: i64) -> String {
    group(&n.unsigned_abs().to_string(), n < 0)
}

fn group(digits: &str, negative: bool) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if negative {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Decimals needed to tell apart values `step` apart (`0.25` -> 2, `5` -> 0, `0.001` -> 3).
pub fn decimals_for(step: f64) -> usize {
    if !step.is_finite() || step <= 0.0 {
        return 0;
    }
    let mut decimals = 0;
    let mut scaled = step;
    // Stop when the step is a whole number at this precision (allowing for float noise).
    while decimals < MAX_DECIMALS && (scaled - scaled.round()).abs() > 1e-9 * scaled {
        decimals += 1;
        scaled *= 10.0;
    }
    decimals
}

/// `v` with `decimals` decimals and thousands separators: `(12345.678, 1)` -> `12,345.7`.
pub fn fixed(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let text = format!("{:.*}", decimals, v.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    // "-0" and "-0.0" read as zero.
    let negative = v < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0');
    let mut out = group(int, negative);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// `v` with a suffix when it is large, trailing zeros dropped: `1250000` -> `1.25M`,
/// `250000` -> `250k`, `9500` -> `9,500`. `step` is the spacing of the labels being made
/// (`0.0` for a lone value), so that neighbours differ.
pub fn short(v: f64, step: f64) -> String {
    if v.abs() >= SUFFIX_FROM {
        for (unit, suffix) in SUFFIXES {
            if v.abs() >= *unit {
                let decimals = if step > 0.0 {
                    decimals_for(step / unit)
                } else {
                    2
                };
                return format!("{}{suffix}", trim(&fixed(v / unit, decimals)));
            }
        }
    }
    let decimals = if step > 0.0 {
        decimals_for(step)
    } else {
        lone_decimals(v)
    };
    trim(&fixed(v, decimals))
}

/// Decimals for a value shown on its own: three significant digits below 1, two decimals below
/// 100, none above.
fn lone_decimals(v: f64) -> usize {
    let a = v.abs();
    if a == 0.0 || a >= 100.0 {
        0
    } else if a >= 1.0 {
        2
    } else {
        // 0.0123 -> 4 decimals (three significant digits).
        let leading_zeros = (-a.log10()).floor().max(0.0) as usize;
        (leading_zeros + 3).min(MAX_DECIMALS)
    }
}

/// Drops trailing zeros of a decimal fraction: `1.50` -> `1.5`, `2.00` -> `2`.
fn trim(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// A rate in `0..=1` as a percentage: `(0.525, 0.1)` -> `52.5%`; `step` as in [`short`].
pub fn percent(rate: f64, step: f64) -> String {
    let decimals = if step > 0.0 {
        decimals_for(step * 100.0)
    } else {
        1
    };
    format!("{}%", trim(&fixed(rate * 100.0, decimals)))
}

/// A tick label of an axis of `kind`, ticks `step` apart.
pub fn tick(kind: ValueKind, v: f64, step: f64) -> String {
    match kind {
        ValueKind::Ratio => percent(v, step),
        ValueKind::Count | ValueKind::Number => short(v, step),
    }
}

/// One value of `kind` on its own (a bar's label, a legend entry): counts in full with
/// separators, rates as percentages, other numbers short.
pub fn value(kind: ValueKind, v: f64) -> String {
    match kind {
        ValueKind::Count if v.abs() < 1e15 && v.fract() == 0.0 => thousands(v as i64),
        ValueKind::Ratio => percent(v, 0.0),
        _ => short(v, 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_every_three_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-1_234_567), "-1,234,567");
        assert_eq!(thousands(i64::MIN), "-9,223,372,036,854,775,808");
    }

    #[test]
    fn decimals_follow_the_tick_step() {
        assert_eq!(decimals_for(1.0), 0);
        assert_eq!(decimals_for(250_000.0), 0);
        assert_eq!(decimals_for(0.5), 1);
        assert_eq!(decimals_for(0.25), 2);
        assert_eq!(decimals_for(0.1 + 0.2 - 0.2), 1);
        assert_eq!(decimals_for(0.002), 3);
        assert_eq!(decimals_for(1e-12), MAX_DECIMALS);
        assert_eq!(decimals_for(0.0), 0);
        assert_eq!(decimals_for(f64::NAN), 0);
    }

    #[test]
    fn fixed_has_separators_and_no_negative_zero() {
        assert_eq!(fixed(12_345.678, 1), "12,345.7");
        assert_eq!(fixed(-1_000.0, 0), "-1,000");
        assert_eq!(fixed(-0.0001, 2), "0.00");
        assert_eq!(fixed(f64::INFINITY, 0), "inf");
    }

    #[test]
    fn large_counts_get_suffixes_small_ones_separators() {
        assert_eq!(short(9_500.0, 500.0), "9,500");
        assert_eq!(short(250_000.0, 250_000.0), "250k");
        assert_eq!(short(1_250_000.0, 250_000.0), "1.25M");
        assert_eq!(short(1_000_000.0, 250_000.0), "1M");
        assert_eq!(short(12_500.0, 2_500.0), "12.5k");
        assert_eq!(short(3_000_000_000.0, 1e9), "3G");
        assert_eq!(short(-20_000.0, 10_000.0), "-20k");
        assert_eq!(short(0.0, 250_000.0), "0");
        // A lone value: a few significant digits.
        assert_eq!(short(1_234_567.0, 0.0), "1.23M");
        assert_eq!(short(42.126, 0.0), "42.13");
        assert_eq!(short(0.012345, 0.0), "0.0123");
        assert_eq!(short(512.4, 0.0), "512");
    }

    #[test]
    fn neighbouring_ticks_never_read_the_same() {
        for (start, step, n) in [
            (0.0, 0.25, 9),
            (1_000_000.0, 1_000.0, 6),
            (0.0, 20_000.0, 8),
            (99_000.0, 500.0, 6),
        ] {
            let labels: Vec<String> = (0..n)
                .map(|i| short(start + step * f64::from(i), step))
                .collect();
            let mut unique = labels.clone();
            unique.dedup();
            assert_eq!(unique, labels, "{labels:?}");
        }
    }

    #[test]
    fn rates_are_percentages() {
        assert_eq!(percent(0.525, 0.005), "52.5%");
        assert_eq!(percent(0.6, 0.2), "60%");
        assert_eq!(percent(0.5, 0.1), "50%");
        assert_eq!(percent(0.035, 0.0), "3.5%");
        assert_eq!(percent(0.0015, 0.0005), "0.15%");
        assert_eq!(percent(1.0, 0.2), "100%");
        assert_eq!(tick(ValueKind::Ratio, 0.2, 0.1), "20%");
        assert_eq!(value(ValueKind::Ratio, 0.52), "52%");
    }

    #[test]
    fn values_on_their_own() {
        assert_eq!(value(ValueKind::Count, 1_200.0), "1,200");
        assert_eq!(value(ValueKind::Count, 12_345_678.0), "12,345,678");
        assert_eq!(value(ValueKind::Number, 12_345_678.0), "12.35M");
        assert_eq!(value(ValueKind::Number, 0.5), "0.5");
    }
}
