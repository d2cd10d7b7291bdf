//! Small helpers shared by the hooks: typed views of record data, paged queries, RFC 3339 text.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use jiayuan_domain::DocKind;
use jiayuan_domain::{Date, Person, Timestamp};
use jiayuan_plugin_api::{FieldViolation, HostContext, PluginError, Record, RecordQuery};

/// Records asked for per page; the host caps pages (at 1000 today), so every read pages.
pub(crate) const PAGE: u32 = 500;

/// The data object of a record or call, typed. The host has type-checked it against the
/// manifest, so a failure here is a contract bug, not bad input.
pub(crate) fn typed<T: DeserializeOwned>(json: &str, what: &str) -> Result<T, PluginError> {
    serde_json::from_str(json)
        .map_err(|e| PluginError::Internal(format!("{what} data does not match the manifest: {e}")))
}

/// The data object as a JSON map, to add derived fields to.
pub(crate) fn object(json: &str, what: &str) -> Result<Map<String, Value>, PluginError> {
    typed(json, what)
}

/// Every record matching `query`, reading page by page.
pub(crate) async fn query_all(ctx: &dyn HostContext, mut query: RecordQuery) -> Result<Vec<Record>, PluginError> {
    query.limit = PAGE;
    let mut out: Vec<Record> = Vec::new();
    loop {
        let page = ctx.records().query(&query).await?;
        let Some(last) = page.last().map(|r| r.id) else { break };
        out.extend(page);
        query.after = Some(last);
    }
    Ok(out)
}

/// A violation.
pub(crate) fn violation(field: &str, code: &str, zh: String, en: String) -> FieldViolation {
    FieldViolation::new(field, code, zh, en)
}

/// A person's birth date: the registry's, or the one encoded in a resident identity number.
pub(crate) fn birth_date(person: &Person) -> Option<Date> {
    person.birth_date.or_else(|| {
        let n = &person.doc.number;
        if person.doc.kind != DocKind::ResidentId || n.len() != 18 || !n.is_ascii() {
            return None;
        }
        format!("{}-{}-{}", &n[6..10], &n[10..12], &n[12..14]).parse().ok()
    })
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)` (the host has already checked the shape).
pub(crate) fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let day: Date = s.get(..10)?.parse().ok()?;
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) { part.parse().ok() } else { None }
    };
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let frac = s.get(start..i.min(start + 3))?;
        millis = frac.parse::<i64>().ok()? * 10_i64.pow(3 - frac.len() as u32);
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let m = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'-' { -m } else { m }
        }
        _ => return None,
    };
    let day_ms = i64::from(day.days_since_epoch()) * 86_400_000;
    Some(Timestamp(day_ms + ((h * 60 + mi - offset_min) * 60 + sec) * 1000 + millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiayuan_domain::{Hukou, IdentityDoc, PersonId};

    #[test]
    fn instants_parse_in_any_offset() {
        let d: Date = "2026-03-02".parse().expect("date");
        let nine = Timestamp(d.start_in_shanghai().0 + 9 * 3_600_000);
        assert_eq!(parse_rfc3339("2026-03-02T09:00:00+08:00"), Some(nine));
        assert_eq!(parse_rfc3339("2026-03-02T01:00:00Z"), Some(nine));
        assert_eq!(parse_rfc3339("2026-03-01T21:00:00.250-04:00"), Some(Timestamp(nine.0 + 250)));
        assert_eq!(parse_rfc3339("2026-03-02"), None);
    }

    #[test]
    fn birth_date_falls_back_to_the_identity_number() {
        let mut p = Person {
            id: PersonId(1),
            name: "王芳".into(),
            doc: IdentityDoc { kind: DocKind::ResidentId, number: "11010519491231002X".into() },
            sex: None,
            birth_date: None,
            hukou: Hukou::Shenzhen,
            phone: None,
            house_id: None,
        };
        assert_eq!(birth_date(&p).map(|d| d.to_string()), Some("1949-12-31".to_owned()));
        p.doc.kind = DocKind::Passport;
        assert_eq!(birth_date(&p), None);
    }
}
