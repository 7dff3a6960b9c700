//! Faithful JSON for database values: PostgreSQL's binary wire format decoded for the types
//! whose JSON is richer than their text (numbers, NUMERIC as exact text, booleans, timestamps as
//! ISO-8601, JSON as JSON, bytea as hex, uuid, enums, arrays of these); every other PostgreSQL
//! type reaches this module already printed as text by the server (see [`super::pg_text`]).
//! SQLite's dynamic values come as stored. A binary value this module cannot read becomes a
//! clear marker, never a panic.

use chrono::{Datelike, Duration as ChronoDuration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde_json::{Value, json};
use sqlx::postgres::{PgTypeInfo, PgTypeKind, PgValueRef};
use sqlx::sqlite::SqliteValueRef;
use sqlx::{TypeInfo, ValueRef};

/// Elements shown of one array value; longer arrays end with a `"… N more"` marker.
pub const MAX_ARRAY_ELEMENTS: usize = 1000;

/// A PostgreSQL value as JSON.
pub fn pg_value(value: PgValueRef<'_>) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    let info = value.type_info().into_owned();
    match value.as_bytes() {
        Ok(bytes) => pg_binary(&info, bytes),
        Err(e) => Value::String(format!("<unreadable {}: {e}>", info.name())),
    }
}

fn be<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at + N)?.try_into().ok()
}

fn marker(info: &PgTypeInfo, bytes: &[u8]) -> Value {
    Value::String(format!(
        "<{} value, not decoded: \\x{}>",
        info.name().to_ascii_lowercase(),
        hex::encode(bytes)
    ))
}

/// Decodes one binary-format value of type `info`.
pub fn pg_binary(info: &PgTypeInfo, bytes: &[u8]) -> Value {
    let Some(kind) = super::pg_text::kind_of(info) else {
        return marker(info, bytes);
    };
    let decoded = match kind {
        PgTypeKind::Array(elem) => pg_array(elem, bytes),
        PgTypeKind::Domain(base) => Some(pg_binary(base, bytes)),
        PgTypeKind::Enum(_) => std::str::from_utf8(bytes).ok().map(|s| json!(s)),
        _ => pg_scalar(&info.name().to_ascii_uppercase(), bytes),
    };
    decoded.unwrap_or_else(|| marker(info, bytes))
}

fn pg_scalar(name: &str, b: &[u8]) -> Option<Value> {
    Some(match name {
        "BOOL" => json!(*b.first()? != 0),
        "INT2" => json!(i16::from_be_bytes(be(b, 0)?)),
        "INT4" => json!(i32::from_be_bytes(be(b, 0)?)),
        "INT8" => json!(i64::from_be_bytes(be(b, 0)?)),
        "OID" | "XID" | "CID" => json!(u32::from_be_bytes(be(b, 0)?)),
        // The shortest decimal that reads back as the same float4, as PostgreSQL prints it.
        "FLOAT4" => float(f32::from_be_bytes(be(b, 0)?).to_string().parse().ok()?),
        "FLOAT8" => float(f64::from_be_bytes(be(b, 0)?)),
        "NUMERIC" => json!(numeric_text(b)?),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "CITEXT" | "UNKNOWN" => {
            json!(std::str::from_utf8(b).ok()?)
        }
        "VOID" => Value::Null,
        "UUID" => json!(uuid_text(b)?),
        "JSON" => serde_json::from_slice(b).ok()?,
        "JSONB" => match b.split_first()? {
            (1, rest) => serde_json::from_slice(rest).ok()?,
            _ => return None,
        },
        "BYTEA" => json!(format!("\\x{}", hex::encode(b))),
        "DATE" => json!(date_text(i32::from_be_bytes(be(b, 0)?))?),
        "TIME" => json!(time_text(i64::from_be_bytes(be(b, 0)?))?),
        "TIMESTAMP" => json!(timestamp_text(i64::from_be_bytes(be(b, 0)?), "")?),
        "TIMESTAMPTZ" => json!(timestamp_text(i64::from_be_bytes(be(b, 0)?), "Z")?),
        _ => return None,
    })
}

/// A finite float as a JSON number; NaN and the infinities as PostgreSQL spells them.
pub(super) fn float(x: f64) -> Value {
    serde_json::Number::from_f64(x)
        .map(Value::Number)
        .unwrap_or_else(|| {
            json!(match (x.is_nan(), x > 0.0) {
                (true, _) => "NaN",
                (false, true) => "Infinity",
                (false, false) => "-Infinity",
            })
        })
}

/// NUMERIC's base-10000 digits as exact decimal text (`-12.50`, `NaN`, `Infinity`).
fn numeric_text(b: &[u8]) -> Option<String> {
    let ndigits = usize::try_from(i16::from_be_bytes(be(b, 0)?)).ok()?;
    let weight = i64::from(i16::from_be_bytes(be(b, 2)?));
    let sign = u16::from_be_bytes(be(b, 4)?);
    let dscale = usize::from(u16::from_be_bytes(be(b, 6)?));
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        _ => {}
    }
    let digits: Vec<i16> = (0..ndigits)
        .map(|i| be(b, 8 + 2 * i).map(i16::from_be_bytes))
        .collect::<Option<_>>()?;
    let group = |idx: i64| -> i16 {
        usize::try_from(idx)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        out.push_str(&group(0).to_string());
        for idx in 1..=weight {
            out.push_str(&format!("{:04}", group(idx)));
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut idx = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", group(idx)));
            idx += 1;
        }
        frac.truncate(dscale);
        out.push('.');
        out.push_str(&frac);
    }
    Some(out)
}

fn uuid_text(b: &[u8]) -> Option<String> {
    let h = hex::encode(b.get(..16)?);
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

fn epoch() -> Option<NaiveDateTime> {
    NaiveDate::from_ymd_opt(2000, 1, 1)?.and_hms_opt(0, 0, 0)
}

/// `YYYY-MM-DD`, with PostgreSQL's ` BC` for years before 1 (year 0 is 1 BC).
fn ymd(date: NaiveDate) -> (String, &'static str) {
    let year = date.year();
    let (shown, era) = if year <= 0 {
        (1 - year, " BC")
    } else {
        (year, "")
    };
    (
        format!("{shown:04}-{:02}-{:02}", date.month(), date.day()),
        era,
    )
}

fn date_text(days: i32) -> Option<String> {
    match days {
        i32::MAX => Some("infinity".into()),
        i32::MIN => Some("-infinity".into()),
        d => {
            let (text, era) = ymd((epoch()? + ChronoDuration::try_days(i64::from(d))?).date());
            Some(format!("{text}{era}"))
        }
    }
}

/// `HH:MM:SS[.ffffff]` with the fraction's trailing zeros dropped, as PostgreSQL prints it.
fn clock_text(t: NaiveTime) -> String {
    let whole = t.format("%H:%M:%S").to_string();
    let micros = t.nanosecond() / 1000;
    if micros == 0 {
        return whole;
    }
    let frac = format!("{micros:06}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

fn time_text(micros: i64) -> Option<String> {
    let t = NaiveTime::from_hms_opt(0, 0, 0)? + ChronoDuration::microseconds(micros);
    Some(clock_text(t))
}

fn timestamp_text(micros: i64, zone: &str) -> Option<String> {
    match micros {
        i64::MAX => Some("infinity".into()),
        i64::MIN => Some("-infinity".into()),
        m => {
            let ts = epoch()?.checked_add_signed(ChronoDuration::microseconds(m))?;
            let (date, era) = ymd(ts.date());
            Some(format!("{date}T{}{zone}{era}", clock_text(ts.time())))
        }
    }
}

/// A binary array: dimensions, then each element with its length; nested dimensions nest.
fn pg_array(elem: &PgTypeInfo, b: &[u8]) -> Option<Value> {
    let ndim = usize::try_from(i32::from_be_bytes(be(b, 0)?)).ok()?;
    if ndim == 0 {
        return Some(json!([]));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|d| usize::try_from(i32::from_be_bytes(be(b, 12 + 8 * d)?)).ok())
        .collect::<Option<_>>()?;
    let mut at = 12 + 8 * ndim;
    let total: usize = dims.iter().product();
    let mut flat = Vec::with_capacity(total.min(MAX_ARRAY_ELEMENTS));
    for _ in 0..total {
        let len = i32::from_be_bytes(be(b, at)?);
        at += 4;
        if len < 0 {
            flat.push(Value::Null);
            continue;
        }
        let len = usize::try_from(len).ok()?;
        flat.push(pg_binary(elem, b.get(at..at + len)?));
        at += len;
    }
    Some(nest(&flat, &dims))
}

fn nest(flat: &[Value], dims: &[usize]) -> Value {
    let Some((&first, rest)) = dims.split_first() else {
        return flat.first().cloned().unwrap_or(Value::Null);
    };
    let stride = rest.iter().product::<usize>().max(1);
    let mut out: Vec<Value> = flat
        .chunks(stride)
        .take(first.min(MAX_ARRAY_ELEMENTS))
        .map(|c| {
            if rest.is_empty() {
                c.first().cloned().unwrap_or(Value::Null)
            } else {
                nest(c, rest)
            }
        })
        .collect();
    if first > MAX_ARRAY_ELEMENTS {
        out.push(json!(format!("… {} more", first - MAX_ARRAY_ELEMENTS)));
    }
    Value::Array(out)
}

/// A SQLite value as stored (its own type, not the column's declared one), except that a
/// 0/1 integer in a column declared BOOLEAN becomes a boolean.
pub fn sqlite_value(value: SqliteValueRef<'_>, declared: &str) -> Value {
    use sqlx::Decode;
    if value.is_null() {
        return Value::Null;
    }
    // The stored type, matched without an upper-cased copy per cell (a hundred-row query has
    // hundreds); a value's stored type is one of SQLite's five storage classes.
    let stored = {
        let info = value.type_info();
        let name = info.name();
        ["INTEGER", "REAL", "BLOB"]
            .into_iter()
            .find(|t| name.eq_ignore_ascii_case(t))
            .unwrap_or("TEXT")
    };
    let decoded = match stored {
        "INTEGER" => {
            <i64 as Decode<sqlx::Sqlite>>::decode(value).map(|i| sqlite_integer(i, declared))
        }
        "REAL" => <f64 as Decode<sqlx::Sqlite>>::decode(value).map(float),
        "BLOB" => <Vec<u8> as Decode<sqlx::Sqlite>>::decode(value).map(|b| sqlite_blob(&b)),
        _ => <String as Decode<sqlx::Sqlite>>::decode(value).map(Value::String),
    };
    decoded.unwrap_or_else(|e| json!(format!("<unreadable {stored} value: {e}>")))
}

/// A SQLite integer as the tool shows it: `true`/`false` for 1/0 in a column declared BOOLEAN.
pub(super) fn sqlite_integer(i: i64, declared: &str) -> Value {
    if declared.eq_ignore_ascii_case("BOOLEAN") && (i == 0 || i == 1) {
        json!(i == 1)
    } else {
        json!(i)
    }
}

/// A SQLite blob as PostgreSQL prints a `bytea` (`\xdeadbeef`).
pub(super) fn sqlite_blob(b: &[u8]) -> Value {
    json!(format!("\\x{}", hex::encode(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> String {
        let mut b = Vec::new();
        for v in [ndigits, weight] {
            b.extend(v.to_be_bytes());
        }
        for v in [sign, dscale] {
            b.extend(v.to_be_bytes());
        }
        for d in digits {
            b.extend(d.to_be_bytes());
        }
        numeric_text(&b).unwrap_or_default()
    }

    #[test]
    fn numeric_is_exact_text() {
        assert_eq!(numeric(2, 0, 0, 2, &[12, 5000]), "12.50");
        assert_eq!(numeric(2, 1, 0x4000, 0, &[1, 2345]), "-12345");
        assert_eq!(numeric(1, -1, 0, 4, &[5]), "0.0005");
        assert_eq!(numeric(1, -2, 0, 6, &[700]), "0.000007");
        assert_eq!(numeric(0, 0, 0, 0, &[]), "0");
        assert_eq!(numeric(0, 0, 0xC000, 0, &[]), "NaN");
    }

    #[test]
    fn times_are_iso_with_postgres_fractions_and_eras() {
        assert_eq!(
            timestamp_text(0, "Z").as_deref(),
            Some("2000-01-01T00:00:00Z")
        );
        assert_eq!(
            timestamp_text(1_500_000, "").as_deref(),
            Some("2000-01-01T00:00:01.5")
        );
        assert_eq!(date_text(-1).as_deref(), Some("1999-12-31"));
        // 0001-01-01 is day -730119; the day before it is 1 BC.
        assert_eq!(date_text(-730_120).as_deref(), Some("0001-12-31 BC"));
        assert_eq!(time_text(45_296_120_000).as_deref(), Some("12:34:56.12"));
        assert_eq!(float(f64::NEG_INFINITY), json!("-Infinity"));
    }

    #[test]
    fn arrays_are_capped() {
        let flat: Vec<Value> = (0..MAX_ARRAY_ELEMENTS + 5).map(|i| json!(i)).collect();
        let Value::Array(items) = nest(&flat, &[flat.len()]) else {
            panic!("not an array")
        };
        assert_eq!(items.len(), MAX_ARRAY_ELEMENTS + 1);
        assert_eq!(items[MAX_ARRAY_ELEMENTS], json!("… 5 more"));
    }
}
