//! The one implementation of record-data type checks, shared by the host's record engine and the
//! plugin test kit's `TestHost`: a record's data (or a transition's input) is checked against the
//! [`FieldDef`]s of a plugin's manifest before any hook sees it, so a hook only ever sees data
//! whose every field exists, has its declared type and lies within its declared bounds.
//!
//! Each problem becomes a [`FieldViolation`] naming the field, a stable code and the reason in
//! Chinese and English. The codes: `not_object`, `unknown_field`, `derived_field`, `required`,
//! `wrong_type`, `too_long`, `control_character`, `out_of_range`, `bad_date`, `bad_datetime`,
//! `bad_option`, `bad_digits`, `bad_phone`, `bad_resident_id`, `bad_point`. Phones and identity
//! numbers go through the `jiayuan-domain` validators. Whether a referenced person, house or
//! record exists is not a type: the checks hand back the [`Reference`]s for the caller to resolve.
//! [`index_entries`] gives the values of a kind's declared keys, as the record index stores them.
#![forbid(unsafe_code)]

pub mod deadline;
pub mod guard;
pub mod projection;

use serde_json::{Map, Value};

use jiayuan_domain::{Date, Timestamp};
use jiayuan_plugin_api::{ChoiceOption, FieldDef, FieldType, FieldViolation, KeyDef};

/// What the checked object is, which decides the rule for derived fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The data of a new record, as a caller supplied it: derived fields may not be supplied.
    Create,
    /// A transition's input (checked against the transition's input fields), or data a hook
    /// returned (a replacement data object or a child draft): derived fields may appear.
    TransitionInput,
}

/// A reference that the caller must resolve after the type check (existence is not a type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A `PersonRef` field: a person in the registry.
    Person {
        /// The field that holds the reference.
        field: String,
        /// The person's id.
        id: i64,
    },
    /// A `HouseRef` field: a house in the registry (of the record's estate).
    House {
        /// The field that holds the reference.
        field: String,
        /// The house's id.
        id: i64,
    },
    /// A `RecordRef` field: a record of the declared kind (in the record's estate).
    Record {
        /// The field that holds the reference.
        field: String,
        /// The record kind the field declares.
        kind: String,
        /// The record's id.
        id: i64,
    },
    /// An `AgencyUnitRef` field: an agency unit of the declared kind (`*`: any).
    AgencyUnit {
        /// The field that holds the reference.
        field: String,
        /// The agency kind the field declares.
        kind: String,
        /// The unit's id.
        id: i64,
    },
}

impl Reference {
    /// The field that holds the reference.
    pub fn field(&self) -> &str {
        match self {
            Reference::Person { field, .. }
            | Reference::House { field, .. }
            | Reference::Record { field, .. }
            | Reference::AgencyUnit { field, .. } => field,
        }
    }
}

/// The checked object and the references it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The normalised data: nulls dropped, phones and identity numbers in canonical form, dates
    /// as `YYYY-MM-DD`, choices deduplicated.
    pub data: Map<String, Value>,
    /// The references to persons, houses and records, in field order.
    pub references: Vec<Reference>,
}

/// One value of a record's declared keys, as the record index stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The key field.
    pub field: String,
    /// Its value: a string as it is, any other JSON value as JSON text.
    pub value: String,
    /// Whether no two live records of the kind may share the value.
    pub unique: bool,
}

fn violation(field: &str, code: &str, zh: String, en: String) -> FieldViolation {
    FieldViolation::new(field, code, zh, en)
}

/// Checks `value` (which must be a JSON object) against `fields`, as of `today` (a resident
/// identity number may not encode a birth date after it). Returns every problem, not the first.
pub fn check_object(
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
            errors.push(unknown_field(name, &field_names(fields)));
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

/// The values of `keys` in a (checked) data object; a key whose field is absent or null has none.
pub fn index_entries(keys: &[KeyDef], data: &Map<String, Value>) -> Vec<IndexEntry> {
    keys.iter()
        .filter_map(|k| {
            let value = match data.get(&k.field)? {
                Value::String(s) => s.clone(),
                Value::Null => return None,
                other => other.to_string(),
            };
            Some(IndexEntry { field: k.field.clone(), value, unique: k.unique })
        })
        .collect()
}

/// The violation for a field that is not among `allowed` (a comma-separated list of names): also
/// what a caller gets for a field its audience may not see, so that reads exactly alike.
pub fn unknown_field(name: &str, allowed: &str) -> FieldViolation {
    violation(
        name,
        "unknown_field",
        format!("未知字段 `{name}`"),
        format!("unknown field `{name}`; allowed: {allowed}"),
    )
}

/// The references a stored (already checked) data object holds, in field order: what the host's
/// reference index records for each version of a record.
pub fn references_in(fields: &[FieldDef], data: &Map<String, Value>) -> Vec<Reference> {
    let mut out = Vec::new();
    for def in fields {
        let Some(id) = data.get(&def.name).and_then(Value::as_i64) else { continue };
        let field = def.name.clone();
        out.push(match &def.ty {
            FieldType::PersonRef => Reference::Person { field, id },
            FieldType::HouseRef => Reference::House { field, id },
            FieldType::RecordRef { kind } => Reference::Record { field, kind: kind.clone(), id },
            FieldType::AgencyUnitRef { kind } => Reference::AgencyUnit { field, kind: kind.clone(), id },
            _ => continue,
        });
    }
    out
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
            Timestamp::parse_rfc3339(s).ok_or_else(|| {
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
        FieldType::AgencyUnitRef { kind } => {
            let id = positive_id(def, v)?;
            Ok((Value::from(id), Some(Reference::AgencyUnit { field: name.to_owned(), kind: kind.clone(), id })))
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
        // A type of a newer contract than this host knows: refuse the value rather than store
        // something unchecked.
        _ => Err(violation(
            name,
            "unsupported_type",
            format!("字段 `{name}` 的类型不受本平台版本支持"),
            format!("field `{name}` has a type this host version does not support"),
        )),
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

fn bad_option(name: &str, found: &str, options: &[ChoiceOption]) -> FieldViolation {
    let list = options.iter().map(|o| o.value.as_str()).collect::<Vec<_>>().join(", ");
    violation(
        name,
        "bad_option",
        format!("字段 `{name}` 的值 `{found}` 不在可选项中（{list}）"),
        format!("field `{name}`: `{found}` is not one of {list}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiayuan_plugin_api::Sensitivity;
    use proptest::prelude::*;
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
            FieldDef::new("phone", "电话", "Phone", FieldType::Phone).optional(),
            FieldDef::new("id_no", "身份证", "ID", FieldType::ResidentId).optional(),
            FieldDef::new("licence_no", "证号", "Licence", FieldType::Text { max_chars: 20 }).derived(),
        ]
    }

    fn today() -> Date {
        Date::from_ymd(2026, 11, 28).expect("valid")
    }

    fn codes(r: Result<Checked, Vec<FieldViolation>>) -> Vec<(String, String)> {
        let mut got: Vec<_> = r.expect_err("must fail").into_iter().map(|v| (v.field, v.code)).collect();
        got.sort();
        got
    }

    fn pairs(want: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut want: Vec<_> = want.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
        want.sort();
        want
    }

    #[test]
    fn a_good_object_passes_and_yields_references() {
        let v = json!({"name": "旺财", "sex": "male", "owner": 7, "chip": "900123456789012", "seen_at": "2026-11-28T09:30:00+08:00"});
        let c = check_object(&fields(), &v, Mode::Create, today()).expect("valid");
        assert_eq!(c.references, vec![Reference::Person { field: "owner".into(), id: 7 }]);
        assert_eq!(c.data.get("chip"), Some(&json!("900123456789012")));
    }

    #[test]
    fn values_are_normalised_and_nulls_dropped() {
        let v = json!({"name": "旺财", "sex": "male", "owner": 7, "phone": "+86 138-1234-5678",
                       "id_no": "11010519491231002x", "chip": null});
        let c = check_object(&fields(), &v, Mode::Create, today()).expect("valid");
        assert_eq!(c.data.get("phone"), Some(&json!("13812345678")));
        assert_eq!(c.data.get("id_no"), Some(&json!("11010519491231002X")));
        assert!(!c.data.contains_key("chip"), "nulls are dropped");
    }

    #[test]
    fn each_problem_names_its_field() {
        let v = json!({"name": "旺财旺财旺", "sex": "cat", "weight": 500, "chip": "123", "colour": "black",
                       "licence_no": "X", "seen_at": "yesterday", "phone": "12345678901", "id_no": "11010519491231002"});
        let got = codes(check_object(&fields(), &v, Mode::Create, today()));
        let want = pairs(&[
            ("name", "too_long"),
            ("sex", "bad_option"),
            ("weight", "out_of_range"),
            ("chip", "bad_digits"),
            ("colour", "unknown_field"),
            ("licence_no", "derived_field"),
            ("seen_at", "bad_datetime"),
            ("phone", "bad_phone"),
            ("id_no", "bad_resident_id"),
            ("owner", "required"),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn messages_name_the_value_and_the_reason() {
        let v = json!({"name": "旺财", "sex": "cat", "owner": "7", "colour": "black"});
        let violations = check_object(&fields(), &v, Mode::Create, today()).expect_err("must fail");
        let en = |field: &str| violations.iter().find(|v| v.field == field).map(|v| v.message_en.clone());
        assert_eq!(en("sex").as_deref(), Some("field `sex`: `cat` is not one of male, female"));
        assert_eq!(en("owner").as_deref(), Some("field `owner` must be a positive integer id, found a string"));
        assert_eq!(
            en("colour").as_deref(),
            Some("unknown field `colour`; allowed: name, weight, chip, sex, owner, seen_at, phone, id_no")
        );
    }

    #[test]
    fn non_objects_and_wrong_types_are_refused() {
        assert_eq!(
            codes(check_object(&fields(), &json!([1]), Mode::Create, today())),
            pairs(&[("data", "not_object")])
        );
        let v = json!({"name": 3, "sex": "male", "owner": "7"});
        let got = codes(check_object(&fields(), &v, Mode::Create, today()));
        assert_eq!(got, pairs(&[("name", "wrong_type"), ("owner", "wrong_type")]));
    }

    #[test]
    fn derived_fields_may_appear_only_outside_a_create() {
        let v = json!({"name": "旺财", "sex": "male", "owner": 7, "licence_no": "440303-2026-000001"});
        assert_eq!(
            codes(check_object(&fields(), &v, Mode::Create, today())),
            pairs(&[("licence_no", "derived_field")])
        );
        let c = check_object(&fields(), &v, Mode::TransitionInput, today()).expect("a hook may set derived fields");
        assert_eq!(c.data.get("licence_no"), Some(&json!("440303-2026-000001")));
        // Required non-derived fields are required in every mode.
        let got = codes(check_object(&fields(), &json!({"sex": "male", "owner": 7}), Mode::TransitionInput, today()));
        assert_eq!(got, pairs(&[("name", "required")]));
    }

    #[test]
    fn future_birth_dates_are_refused() {
        let field = [FieldDef::new("id_no", "身份证", "ID", FieldType::ResidentId)];
        // Born 2026-11-29, the day after `today`.
        let first17 = "44030320261129001";
        let check = jiayuan_domain::resident_id::resident_id_check_char(first17).expect("17 digits");
        let born_tomorrow = format!("{first17}{check}");
        let got = codes(check_object(&field, &json!({ "id_no": born_tomorrow }), Mode::Create, today()));
        assert_eq!(got, pairs(&[("id_no", "bad_resident_id")]));
        let ok = check_object(&field, &json!({ "id_no": born_tomorrow }), Mode::Create, today().add_days(1));
        assert!(ok.is_ok(), "born today is fine: {ok:?}");
    }

    #[test]
    fn index_entries_hold_the_key_fields_present() {
        let keys = [KeyDef::unique("chip"), KeyDef::lookup("owner")];
        let data = json!({"chip": "900123456789012", "owner": 7});
        let data = data.as_object().expect("an object");
        assert_eq!(
            index_entries(&keys, data),
            vec![
                IndexEntry { field: "chip".into(), value: "900123456789012".into(), unique: true },
                IndexEntry { field: "owner".into(), value: "7".into(), unique: false },
            ]
        );
        let absent = json!({"chip": null});
        assert_eq!(index_entries(&keys, absent.as_object().expect("an object")), vec![]);
    }

    proptest! {
        #[test]
        fn integers_pass_exactly_within_bounds(n in any::<i64>(), a in -1000i64..1000, b in -1000i64..1000) {
            let (min, max) = (a.min(b), a.max(b));
            let field = [FieldDef::new("n", "数", "N", FieldType::Integer { min, max })];
            let result = check_object(&field, &json!({ "n": n }), Mode::Create, today());
            prop_assert_eq!(result.is_ok(), (min..=max).contains(&n));
        }

        #[test]
        fn every_shanghai_instant_is_a_date_time(ms in 0i64..4_102_444_800_000) {
            let field = [FieldDef::new("at", "时间", "At", FieldType::DateTime)];
            let text = Timestamp(ms).to_rfc3339_shanghai();
            let c = check_object(&field, &json!({ "at": text }), Mode::Create, today());
            prop_assert_eq!(c.map(|c| c.data.get("at").cloned()), Ok(Some(Value::String(text))));
        }
    }
}
