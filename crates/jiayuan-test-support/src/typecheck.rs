//! The host's type checks, re-done for [`crate::TestHost`]: every field exists, has its declared
//! type and lies within its bounds before a hook sees it. Phones and identity numbers go through
//! the same `jiayuan-domain` validators as in the host, and the violation codes match the host's
//! (`not_object`, `unknown_field`, `derived_field`, `required`, `wrong_type`, `too_long`,
//! `control_character`, `out_of_range`, `bad_date`, `bad_datetime`, `bad_option`, `bad_digits`,
//! `bad_phone`, `bad_resident_id`, `bad_point`).

use serde_json::{Map, Value};

use jiayuan_domain::{Date, Timestamp};
use jiayuan_plugin_api::{FieldDef, FieldType, FieldViolation};

/// What object is being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Input of a create: derived fields may not be supplied.
    Create,
    /// Input of a transition: only the transition's input fields.
    TransitionInput,
    /// Data a hook returned: derived fields allowed, required fields must be present.
    Stored,
}

/// A reference to resolve after the type check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reference {
    Person { field: String, id: i64 },
    House { field: String, id: i64 },
    Record { field: String, kind: String, id: i64 },
}

fn violation(field: &str, code: &str, zh: String, en: String) -> FieldViolation {
    FieldViolation::new(field, code, zh, en)
}

/// A checked object: the normalised data (nulls dropped) and the references it holds.
pub(crate) type Checked = (Map<String, Value>, Vec<Reference>);

/// Checks `value` against `fields`; returns the normalised object (nulls dropped) and its references.
pub(crate) fn check_object(
    fields: &[FieldDef],
    value: &Value,
    mode: Mode,
    today: Date,
) -> Result<Checked, Vec<FieldViolation>> {
    let Some(obj) = value.as_object() else {
        return Err(vec![violation(
            "data",
            "not_object",
            "数据必须是 JSON 对象".into(),
            "data must be a JSON object".into(),
        )]);
    };
    let mut errors = Vec::new();
    let mut data = Map::new();
    let mut refs = Vec::new();
    for (name, v) in obj {
        let Some(def) = fields.iter().find(|f| &f.name == name) else {
            errors.push(violation(
                name,
                "unknown_field",
                format!("未知字段 `{name}`"),
                format!("unknown field `{name}`"),
            ));
            continue;
        };
        if def.derived && mode == Mode::Create {
            errors.push(violation(
                name,
                "derived_field",
                format!("字段 `{name}` 由系统生成，不能填写"),
                format!("field `{name}` is derived by the service item and cannot be supplied"),
            ));
            continue;
        }
        if v.is_null() {
            continue;
        }
        match check_value(def, v, today) {
            Ok((normalised, r)) => {
                data.insert(name.clone(), normalised);
                refs.extend(r);
            }
            Err(e) => errors.push(e),
        }
    }
    for def in fields {
        let needed = def.required && (mode == Mode::Stored || !def.derived);
        if needed && obj.get(&def.name).is_none_or(Value::is_null) {
            errors.push(violation(
                &def.name,
                "required",
                format!("缺少必填字段 `{}`（{}）", def.name, def.label.zh),
                format!("required field `{}` ({}) is missing", def.name, def.label.en),
            ));
        }
    }
    if errors.is_empty() { Ok((data, refs)) } else { Err(errors) }
}

fn wrong_type(name: &str, expected: &str) -> FieldViolation {
    violation(name, "wrong_type", format!("字段 `{name}` 类型错误"), format!("field `{name}` must be {expected}"))
}

fn check_value(def: &FieldDef, v: &Value, today: Date) -> Result<(Value, Option<Reference>), FieldViolation> {
    let name = def.name.as_str();
    let text = |expected: &str| v.as_str().ok_or_else(|| wrong_type(name, expected));
    let plain = |v: Value| Ok((v, None));
    match &def.ty {
        FieldType::Text { max_chars } => {
            let s = text("a string")?;
            let n = s.chars().count();
            if n > *max_chars as usize {
                return Err(violation(
                    name,
                    "too_long",
                    format!("字段 `{name}` 最多 {max_chars} 个字符，实际 {n} 个"),
                    format!("field `{name}` allows at most {max_chars} characters, found {n}"),
                ));
            }
            if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                return Err(violation(
                    name,
                    "control_character",
                    format!("字段 `{name}` 含有控制字符"),
                    format!("field `{name}` contains a control character"),
                ));
            }
            plain(Value::String(s.to_owned()))
        }
        FieldType::Integer { min, max } => {
            let n = v.as_i64().ok_or_else(|| wrong_type(name, "an integer"))?;
            if n < *min || n > *max {
                return Err(out_of_range(name, n as f64, *min as f64, *max as f64));
            }
            plain(Value::from(n))
        }
        FieldType::Decimal { min, max } => {
            let n = v.as_f64().ok_or_else(|| wrong_type(name, "a number"))?;
            if !n.is_finite() || n < *min || n > *max {
                return Err(out_of_range(name, n, *min, *max));
            }
            plain(v.clone())
        }
        FieldType::Bool => plain(Value::Bool(v.as_bool().ok_or_else(|| wrong_type(name, "true or false"))?)),
        FieldType::Date => {
            let s = text("a date string YYYY-MM-DD")?;
            let d: Date = s.parse().map_err(|e| {
                violation(
                    name,
                    "bad_date",
                    format!("字段 `{name}` 不是有效日期（YYYY-MM-DD）"),
                    format!("field `{name}`: {e}"),
                )
            })?;
            plain(Value::String(d.to_string()))
        }
        FieldType::DateTime => {
            let s = text("an RFC 3339 date-time string")?;
            parse_rfc3339(s).ok_or_else(|| {
                violation(
                    name,
                    "bad_datetime",
                    format!("字段 `{name}` 不是带时区的 RFC 3339 时间"),
                    format!("field `{name}` must be an RFC 3339 date-time with offset, e.g. 2026-11-28T09:30:00+08:00"),
                )
            })?;
            plain(Value::String(s.to_owned()))
        }
        FieldType::Choice { options } => {
            let s = text("an option value")?;
            if !options.iter().any(|o| o.value == s) {
                return Err(bad_option(name, s));
            }
            plain(Value::String(s.to_owned()))
        }
        FieldType::MultiChoice { options } => {
            let items = v.as_array().ok_or_else(|| wrong_type(name, "an array of option values"))?;
            let mut seen: Vec<&str> = Vec::new();
            for item in items {
                let s = item.as_str().ok_or_else(|| wrong_type(name, "an array of option values"))?;
                if !options.iter().any(|o| o.value == s) {
                    return Err(bad_option(name, s));
                }
                if !seen.contains(&s) {
                    seen.push(s);
                }
            }
            plain(Value::from(seen))
        }
        FieldType::Digits { len } => {
            let s = text("a string of digits")?;
            if s.len() != *len as usize || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(violation(
                    name,
                    "bad_digits",
                    format!("字段 `{name}` 应为 {len} 位数字"),
                    format!("field `{name}` must be exactly {len} digits, found {} characters", s.chars().count()),
                ));
            }
            plain(Value::String(s.to_owned()))
        }
        FieldType::Phone => {
            let s = text("a phone number string")?;
            let p = jiayuan_domain::Phone::parse(s).map_err(|e| {
                violation(
                    name,
                    "bad_phone",
                    format!("字段 `{name}` 不是有效的电话号码"),
                    format!("field `{name}`: {e}"),
                )
            })?;
            plain(Value::String(p.as_str().to_owned()))
        }
        FieldType::ResidentId => {
            let s = text("an identity number string")?;
            let info = jiayuan_domain::resident_id::parse_resident_id(s, today).map_err(|e| {
                violation(
                    name,
                    "bad_resident_id",
                    format!("字段 `{name}` 不是有效的居民身份证号码"),
                    format!("field `{name}`: {e}"),
                )
            })?;
            plain(Value::String(info.normalised))
        }
        FieldType::PersonRef => {
            let id = positive_id(name, v)?;
            Ok((Value::from(id), Some(Reference::Person { field: name.to_owned(), id })))
        }
        FieldType::HouseRef => {
            let id = positive_id(name, v)?;
            Ok((Value::from(id), Some(Reference::House { field: name.to_owned(), id })))
        }
        FieldType::RecordRef { kind } => {
            let id = positive_id(name, v)?;
            Ok((Value::from(id), Some(Reference::Record { field: name.to_owned(), kind: kind.clone(), id })))
        }
        FieldType::GeoPoint => {
            let obj = v.as_object().ok_or_else(|| wrong_type(name, "an object {lat, lon}"))?;
            let lat = obj.get("lat").and_then(Value::as_f64);
            let lon = obj.get("lon").and_then(Value::as_f64);
            match (lat, lon) {
                (Some(lat), Some(lon))
                    if obj.len() == 2 && (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
                {
                    plain(serde_json::json!({ "lat": lat, "lon": lon }))
                }
                _ => Err(violation(
                    name,
                    "bad_point",
                    format!("字段 `{name}` 应为 WGS84 坐标"),
                    format!("field `{name}` must be a WGS84 point {{\"lat\": -90..90, \"lon\": -180..180}}"),
                )),
            }
        }
    }
}

fn positive_id(name: &str, v: &Value) -> Result<i64, FieldViolation> {
    v.as_i64().filter(|n| *n > 0).ok_or_else(|| wrong_type(name, "a positive integer id"))
}

fn out_of_range(name: &str, found: f64, min: f64, max: f64) -> FieldViolation {
    violation(
        name,
        "out_of_range",
        format!("字段 `{name}` 的值 {found} 超出范围 {min}–{max}"),
        format!("field `{name}` is {found}, outside {min}..={max}"),
    )
}

fn bad_option(name: &str, found: &str) -> FieldViolation {
    violation(
        name,
        "bad_option",
        format!("字段 `{name}` 的值 `{found}` 不在可选项中"),
        format!("field `{name}`: `{found}` is not one of its options"),
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`.
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
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &s[start..i.min(start + 3)];
        millis = frac.parse::<i64>().ok()? * 10_i64.pow(3 - frac.len() as u32);
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            if *sign == b'-' { -(oh * 60 + om) } else { oh * 60 + om }
        }
        _ => return None,
    };
    let day_ms = i64::from(day.days_since_epoch()) * 86_400_000;
    Some(Timestamp(day_ms + ((h * 60 + mi - offset_min) * 60 + sec) * 1000 + millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::date;
    use jiayuan_plugin_api::ChoiceOption;
    use serde_json::json;

    fn fields() -> Vec<FieldDef> {
        vec![
            FieldDef::new("name", "名字", "Name", FieldType::Text { max_chars: 4 }),
            FieldDef::new("chip", "芯片", "Chip", FieldType::Digits { len: 15 }).optional(),
            FieldDef::new(
                "sex",
                "性别",
                "Sex",
                FieldType::Choice { options: vec![ChoiceOption::new("male", "公", "Male")] },
            ),
            FieldDef::new("phone", "电话", "Phone", FieldType::Phone).optional(),
            FieldDef::new("id_no", "身份证", "ID", FieldType::ResidentId).optional(),
            FieldDef::new("owner", "犬主", "Owner", FieldType::PersonRef),
            FieldDef::new("seen_at", "时间", "Seen at", FieldType::DateTime).optional(),
            FieldDef::new("licence_no", "证号", "Licence", FieldType::Text { max_chars: 20 }).derived(),
        ]
    }

    fn codes(r: Result<Checked, Vec<FieldViolation>>) -> Vec<(String, String)> {
        r.expect_err("must fail").into_iter().map(|v| (v.field, v.code)).collect()
    }

    #[test]
    fn valid_input_is_normalised_and_references_collected() {
        let v = json!({"name": "旺财", "sex": "male", "owner": 7, "phone": "+86 138-1234-5678",
                       "id_no": "11010519491231002x", "chip": null, "seen_at": "2026-11-28T09:30:00+08:00"});
        let (data, refs) = check_object(&fields(), &v, Mode::Create, date(2026, 1, 1)).expect("valid");
        assert_eq!(data.get("phone"), Some(&json!("13812345678")));
        assert_eq!(data.get("id_no"), Some(&json!("11010519491231002X")));
        assert!(!data.contains_key("chip"), "nulls are dropped");
        assert_eq!(refs, vec![Reference::Person { field: "owner".into(), id: 7 }]);
    }

    #[test]
    fn each_problem_is_named() {
        let v = json!({"name": "旺财旺财旺", "sex": "cat", "chip": "123", "colour": "black", "licence_no": "X",
                       "seen_at": "yesterday", "phone": "12345678901", "id_no": "11010519491231002"});
        let mut got = codes(check_object(&fields(), &v, Mode::Create, date(2026, 1, 1)));
        got.sort();
        let mut want: Vec<(String, String)> = [
            ("chip", "bad_digits"),
            ("colour", "unknown_field"),
            ("id_no", "bad_resident_id"),
            ("licence_no", "derived_field"),
            ("name", "too_long"),
            ("owner", "required"),
            ("phone", "bad_phone"),
            ("seen_at", "bad_datetime"),
            ("sex", "bad_option"),
        ]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn stored_data_must_carry_required_derived_fields_only_when_required() {
        let v = json!({"name": "旺财", "sex": "male", "owner": 7, "licence_no": "440303-2026-000001"});
        assert!(check_object(&fields(), &v, Mode::Stored, date(2026, 1, 1)).is_ok());
        assert_eq!(
            codes(check_object(&fields(), &json!([1]), Mode::Stored, date(2026, 1, 1))),
            vec![("data".to_owned(), "not_object".to_owned())]
        );
    }

    #[test]
    fn rfc3339_instants() {
        assert_eq!(parse_rfc3339("1970-01-01T08:00:00+08:00"), Some(Timestamp(0)));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(Timestamp(1500)));
        assert_eq!(parse_rfc3339("2026-03-02T09:30:00+08:00"), Some(crate::fixtures::at(date(2026, 3, 2), 9, 30)));
        assert_eq!(parse_rfc3339("2026-03-02 09:30"), None);
        assert_eq!(parse_rfc3339("2026-03-02T24:00:00Z"), None);
    }

    #[test]
    fn future_birth_dates_are_refused() {
        let field = [FieldDef::new("id_no", "身份证", "ID", FieldType::ResidentId)];
        let born_tomorrow = crate::fixtures::resident_id(1, date(2026, 1, 2), true);
        let got = codes(check_object(&field, &json!({ "id_no": born_tomorrow }), Mode::Create, date(2026, 1, 1)));
        assert_eq!(got, vec![("id_no".to_owned(), "bad_resident_id".to_owned())]);
    }
}
