//! Time arguments of the `cloudwatch` tool: ISO-8601 instants (`2024-05-01T12:00:00Z`, with
//! an offset, or a bare date) or forms relative to now (`now`, `-30m`, `-2h`, `-1d`, `-90s`,
//! `-1w`), so the model can say "the last two hours" without knowing the clock.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};

/// Largest relative offset accepted (a bound on `-Nd` so the arithmetic cannot overflow;
/// CloudWatch keeps metrics for 15 months at most).
pub const MAX_RELATIVE_DAYS: i64 = 3 * 366;

/// Parses `s` as an instant, reading relative forms against `now`.
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = s.trim();
    if text.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Some(rest) = text.strip_prefix('-') {
        return relative(rest).map(|d| now - d).ok_or_else(|| hint(s));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc());
    }
    Err(hint(s))
}

/// `30m`, `2h`, `1d`: a number then one unit letter (s, m, h, d, w).
fn relative(rest: &str) -> Option<Duration> {
    let unit_at = rest.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = rest.split_at(unit_at);
    let n: i64 = digits.parse().ok()?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    let seconds = n.checked_mul(seconds_per_unit)?;
    if seconds > MAX_RELATIVE_DAYS * 86_400 {
        return None;
    }
    Some(Duration::seconds(seconds))
}

fn hint(s: &str) -> String {
    format!(
        "cannot read time `{s}`: use ISO-8601 (`2024-05-01T12:00:00Z`, `2024-05-01`) or a \
         relative form (`now`, `-90s`, `-30m`, `-2h`, `-1d`, `-1w`; at most {MAX_RELATIVE_DAYS}d back)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn relative_forms_count_back_from_now() {
        let n = now();
        assert_eq!(parse_time("now", n).unwrap(), n);
        assert_eq!(parse_time("NOW", n).unwrap(), n);
        assert_eq!(parse_time("-90s", n).unwrap(), n - Duration::seconds(90));
        assert_eq!(parse_time("-30m", n).unwrap(), n - Duration::minutes(30));
        assert_eq!(parse_time(" -2h ", n).unwrap(), n - Duration::hours(2));
        assert_eq!(parse_time("-1d", n).unwrap(), n - Duration::days(1));
        assert_eq!(parse_time("-1w", n).unwrap(), n - Duration::days(7));
    }

    #[test]
    fn iso_forms_are_read_as_utc() {
        let n = now();
        let want = DateTime::parse_from_rfc3339("2024-04-30T10:15:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_time("2024-04-30T10:15:00Z", n).unwrap(), want);
        assert_eq!(parse_time("2024-04-30T12:15:00+02:00", n).unwrap(), want);
        assert_eq!(parse_time("2024-04-30T10:15:00", n).unwrap(), want);
        assert_eq!(parse_time("2024-04-30T10:15", n).unwrap(), want);
        assert_eq!(
            parse_time("2024-04-30", n).unwrap(),
            want - Duration::minutes(10 * 60 + 15)
        );
    }

    #[test]
    fn nonsense_is_refused_with_the_accepted_forms() {
        let n = now();
        for bad in [
            "",
            "-",
            "-5",
            "-5y",
            "yesterday",
            "-m",
            "2024-13-01",
            "+5m",
            "-9999999999999999d",
        ] {
            let err = parse_time(bad, n).unwrap_err();
            assert!(
                err.contains("-30m") && err.contains("ISO-8601"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn relative_offsets_are_bounded() {
        let n = now();
        assert!(parse_time(&format!("-{MAX_RELATIVE_DAYS}d"), n).is_ok());
        assert!(parse_time(&format!("-{}d", MAX_RELATIVE_DAYS + 1), n).is_err());
    }
}
