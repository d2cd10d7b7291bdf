//! Type checks of record data against a manifest's field declarations.
//!
//! Runs before any plugin hook: a hook only ever sees data whose every field exists, has its
//! declared type and lies within its declared bounds. Each problem becomes a [`FieldViolation`]
//! naming the field, a stable code and the reason in Chinese and English.

use serde_json::{Map, Value};

use jiayuan_domain::Date;
use jiayuan_plugin_api::{FieldDef, FieldType, FieldViolation, KeyDef};

/// Whether the object is a whole new record or the input of a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A new record: derived fields may not be supplied.
    Create,
    /// A transition's input: only the transition's input fields may appear.
    TransitionInput,
}

/// A reference that the engine must resolve after the type check (existence is not a type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reference {
    Person { field: String, id: i64 },
    House { field: String, id: i64 },
    Record { field: String, kind: String, id: i64 },
}

/// The checked object and the references it holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Checked {
    pub(crate) data: Map<String, Value>,
    pub(crate) references: Vec<Reference>,
}

fn violation(field: &str, code: &str, zh: String, en: String) -> FieldViolation {
    FieldViolation::new(field, code, zh, en)
}

/// Checks `value` (which must be a JSON object) against `fields`.
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
            format!("data must be a JSON object, found {}", json_kind(value)),
        )]);
    };
    let mut errors = Vec::new();
    let mut data = Map::new();
    let mut references = Vec::new();
    for (name, v) in obj {
        let Some(def) = fields.iter().find(|f| &f.name == name) else {
            errors.push(violation(
                name,
                "unknown_field",
                format!("未知字段 `{name}`"),
                format!("unknown field `{name}`; allowed: {}", field_names(fields)),
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
            Ok((normalised, reference)) => {
                data.insert(name.clone(), normalised);
                references.extend(reference);
            }
            Err(e) => errors.push(e),
        }
    }
    for def in fields {
        if def.required && !def.derived && obj.get(&def.name).is_none_or(Value::is_null) {
            errors.push(violation(
                &def.name,
                "required",
                format!("缺少必填字段 `{}`（{}）", def.name, def.label.zh),
                format!("required field `{}` ({}) is missing", def.name, def.label.en),
            ));
        }
    }
    if errors.is_empty() { Ok(Checked { data, references }) } else { Err(errors) }
}

fn field_names(fields: &[FieldDef]) -> String {
    fields.iter().filter(|f| !f.derived).map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn type_error(def: &FieldDef, expected_zh: &str, expected_en: &str, v: &Value) -> FieldViolation {
    violation(
        &def.name,
        "wrong_type",
        format!("字段 `{}` 应为{expected_zh}", def.name),
        format!("field `{}` must be {expected_en}, found {}", def.name, json_kind(v)),
    )
}

fn check_value(def: &FieldDef, v: &Value, today: Date) -> Result<(Value, Option<Reference>), FieldViolation> {
    let name = def.name.as_str();
    let plain = |v: Value| Ok((v, None));
    match &def.ty {
        FieldType::Text { max_chars } => {
            let s = v.as_str().ok_or_else(|| type_error(def, "文本", "a string", v))?;
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
            let n = v.as_i64().ok_or_else(|| type_error(def, "整数", "an integer", v))?;
            if n < *min || n > *max {
                return Err(out_of_range(name, &n.to_string(), &min.to_string(), &max.to_string()));
            }
            plain(Value::from(n))
        }
        FieldType::Decimal { min, max } => {
            let n = v.as_f64().ok_or_else(|| type_error(def, "数字", "a number", v))?;
            if !n.is_finite() || n < *min || n > *max {
                return Err(out_of_range(name, &n.to_string(), &min.to_string(), &max.to_string()));
            }
            plain(v.clone())
        }
        FieldType::Bool => {
            let b = v.as_bool().ok_or_else(|| type_error(def, "布尔值", "true or false", v))?;
            plain(Value::Bool(b))
        }
        FieldType::Date => {
            let s = v.as_str().ok_or_else(|| type_error(def, "日期（YYYY-MM-DD）", "a date string YYYY-MM-DD", v))?;
            let d: Date = s.parse().map_err(|e: jiayuan_domain::time::DateParseError| {
                violation(
                    name,
                    "bad_date",
                    format!("字段 `{name}` 不是有效日期（YYYY-MM-DD）：{}", e.input),
                    format!("field `{name}`: {e}"),
                )
            })?;
            plain(Value::String(d.to_string()))
        }
        FieldType::DateTime => {
            let s = v.as_str().ok_or_else(|| type_error(def, "时间（RFC 3339）", "an RFC 3339 date-time string", v))?;
            parse_rfc3339(s).ok_or_else(|| {
                violation(
                    name,
                    "bad_datetime",
                    format!("字段 `{name}` 不是带时区的 RFC 3339 时间，例如 2026-11-28T09:30:00+08:00"),
                    format!("field `{name}` must be an RFC 3339 date-time with offset, e.g. 2026-11-28T09:30:00+08:00"),
                )
            })?;
            plain(Value::String(s.to_owned()))
        }
        FieldType::Choice { options } => {
            let s = v.as_str().ok_or_else(|| type_error(def, "选项值", "an option value (string)", v))?;
            if !options.iter().any(|o| o.value == s) {
                return Err(bad_option(name, s, options));
            }
            plain(Value::String(s.to_owned()))
        }
        FieldType::MultiChoice { options } => {
            let items = v.as_array().ok_or_else(|| type_error(def, "选项数组", "an array of option values", v))?;
            let mut seen = Vec::new();
            for item in items {
                let s = item.as_str().ok_or_else(|| type_error(def, "选项数组", "an array of option values", v))?;
                if !options.iter().any(|o| o.value == s) {
                    return Err(bad_option(name, s, options));
                }
                if !seen.contains(&s) {
                    seen.push(s);
                }
            }
            plain(Value::from(seen))
        }
        FieldType::Digits { len } => {
            let s = v.as_str().ok_or_else(|| type_error(def, "数字串", "a string of digits", v))?;
            if s.len() != *len as usize || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(violation(
                    name,
                    "bad_digits",
                    format!("字段 `{name}` 应为 {len} 位数字，实际为 {} 个字符", s.chars().count()),
                    format!("field `{name}` must be exactly {len} digits, found {} characters", s.chars().count()),
                ));
            }
            plain(Value::String(s.to_owned()))
        }
        FieldType::Phone => {
            let s = v.as_str().ok_or_else(|| type_error(def, "电话号码", "a phone number string", v))?;
            let phone = jiayuan_domain::phone::Phone::parse(s).map_err(|e| {
                violation(
                    name,
                    "bad_phone",
                    format!("字段 `{name}` 不是有效的电话号码"),
                    format!("field `{name}`: {e}"),
                )
            })?;
            plain(Value::String(phone.as_str().to_owned()))
        }
        FieldType::ResidentId => {
            let s = v.as_str().ok_or_else(|| type_error(def, "身份证号码", "an identity number string", v))?;
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
            let id = positive_id(def, v)?;
            Ok((Value::from(id), Some(Reference::Person { field: name.to_owned(), id })))
        }
        FieldType::HouseRef => {
            let id = positive_id(def, v)?;
            Ok((Value::from(id), Some(Reference::House { field: name.to_owned(), id })))
        }
        FieldType::RecordRef { kind } => {
            let id = positive_id(def, v)?;
            Ok((Value::from(id), Some(Reference::Record { field: name.to_owned(), kind: kind.clone(), id })))
        }
        FieldType::GeoPoint => {
            let obj = v.as_object().ok_or_else(|| type_error(def, "坐标 {lat, lon}", "an object {lat, lon}", v))?;
            let lat = obj.get("lat").and_then(Value::as_f64);
            let lon = obj.get("lon").and_then(Value::as_f64);
            match (lat, lon) {
                (Some(lat), Some(lon))
                    if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) && obj.len() == 2 =>
                {
                    plain(serde_json::json!({ "lat": lat, "lon": lon }))
                }
                _ => Err(violation(
                    name,
                    "bad_point",
                    format!("字段 `{name}` 应为 WGS84 坐标 {{\"lat\": 纬度, \"lon\": 经度}}"),
                    format!("field `{name}` must be a WGS84 point {{\"lat\": -90..90, \"lon\": -180..180}}"),
                )),
            }
        }
    }
}

fn positive_id(def: &FieldDef, v: &Value) -> Result<i64, FieldViolation> {
    match v.as_i64() {
        Some(n) if n > 0 => Ok(n),
        _ => Err(type_error(def, "正整数编号", "a positive integer id", v)),
    }
}

fn out_of_range(name: &str, found: &str, min: &str, max: &str) -> FieldViolation {
    violation(
        name,
        "out_of_range",
        format!("字段 `{name}` 的值 {found} 超出范围 {min}–{max}"),
        format!("field `{name}` is {found}, outside {min}..={max}"),
    )
}

fn bad_option(name: &str, found: &str, options: &[jiayuan_plugin_api::ChoiceOption]) -> FieldViolation {
    let list = options.iter().map(|o| o.value.as_str()).collect::<Vec<_>>().join(", ");
    violation(
        name,
        "bad_option",
        format!("字段 `{name}` 的值 `{found}` 不在可选项中（{list}）"),
        format!("field `{name}`: `{found}` is not one of {list}"),
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)` into Unix milliseconds.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[10] != b'T' && b[10] != b't' && b[10] != b' ' {
        return None;
    }
    let date: Date = s.get(..10)?.parse().ok()?;
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
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
            let m = oh * 60 + om;
            if *sign == b'-' { -m } else { m }
        }
        _ => return None,
    };
    let day_ms = date.days_since_epoch() as i64 * 86_400_000;
    Some(day_ms + ((h * 60 + mi - offset_min) * 60 + sec) * 1000 + millis)
}

/// The index keys of a checked data object.
pub(crate) fn index_keys(keys: &[KeyDef], data: &Map<String, Value>) -> Vec<jiayuan_store::IndexKey> {
    keys.iter()
        .filter_map(|k| {
            let value = match data.get(&k.field)? {
                Value::String(s) => s.clone(),
                Value::Null => return None,
                other => other.to_string(),
            };
            Some(jiayuan_store::IndexKey { field: k.field.clone(), value, unique: k.unique })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiayuan_plugin_api::{ChoiceOption, Sensitivity};
    use serde_json::json;

    fn fields() -> Vec<FieldDef> {
        vec![
            FieldDef::new("name", "名字", "Name", FieldType::Text { max_chars: 4 }),
            FieldDef::new("weight", "体重", "Weight", FieldType::Decimal { min: 0.0, max: 120.0 }).optional(),
            FieldDef::new("chip", "芯片", "Chip", FieldType::Digits { len: 15 }).optional(),
            FieldDef::new(
                "sex",
                "性别",
                "Sex",
                FieldType::Choice {
                    options: vec![ChoiceOption::new("male", "公", "Male"), ChoiceOption::new("female", "母", "Female")],
                },
            ),
            FieldDef::new("owner", "犬主", "Owner", FieldType::PersonRef).sensitivity(Sensitivity::Personal),
            FieldDef::new("seen_at", "时间", "Seen at", FieldType::DateTime).optional(),
            FieldDef::new("licence_no", "证号", "Licence", FieldType::Text { max_chars: 20 }).derived(),
        ]
    }

    fn today() -> Date {
        Date::from_ymd(2026, 11, 28).expect("valid")
    }

    fn codes(r: Result<Checked, Vec<FieldViolation>>) -> Vec<(String, String)> {
        r.expect_err("must fail").into_iter().map(|v| (v.field, v.code)).collect()
    }

    #[test]
    fn a_good_object_passes_and_yields_references() {
        let v = json!({"name": "旺财", "sex": "male", "owner": 7, "chip": "900123456789012", "seen_at": "2026-11-28T09:30:00+08:00"});
        let c = check_object(&fields(), &v, Mode::Create, today()).expect("valid");
        assert_eq!(c.references, vec![Reference::Person { field: "owner".into(), id: 7 }]);
        assert_eq!(c.data.get("chip"), Some(&json!("900123456789012")));
    }

    #[test]
    fn each_problem_names_its_field() {
        let v = json!({"name": "旺财旺财旺", "sex": "cat", "weight": 500, "chip": "123", "colour": "black", "licence_no": "X", "seen_at": "yesterday"});
        let mut got = codes(check_object(&fields(), &v, Mode::Create, today()));
        got.sort();
        let mut want = vec![
            ("name", "too_long"),
            ("sex", "bad_option"),
            ("weight", "out_of_range"),
            ("chip", "bad_digits"),
            ("colour", "unknown_field"),
            ("licence_no", "derived_field"),
            ("seen_at", "bad_datetime"),
            ("owner", "required"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect::<Vec<_>>();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn non_objects_and_wrong_types_are_refused() {
        assert_eq!(
            codes(check_object(&fields(), &json!([1]), Mode::Create, today())),
            vec![("data".into(), "not_object".into())]
        );
        let v = json!({"name": 3, "sex": "male", "owner": "7"});
        let mut got = codes(check_object(&fields(), &v, Mode::Create, today()));
        got.sort();
        assert_eq!(got, vec![("name".into(), "wrong_type".into()), ("owner".into(), "wrong_type".into())]);
    }

    #[test]
    fn rfc3339_parsing() {
        assert_eq!(parse_rfc3339("1970-01-01T08:00:00+08:00"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(parse_rfc3339("2026-11-28T09:30:00"), None);
        assert_eq!(parse_rfc3339("2026-11-28T25:30:00Z"), None);
        assert_eq!(parse_rfc3339("2026-02-30T01:00:00Z"), None);
    }
}
