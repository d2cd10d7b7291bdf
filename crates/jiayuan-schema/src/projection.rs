//! 知悉范围与脱敏 the one projection of record data for a viewer: need-to-know, then masking.
//!
//! Every answer that carries record data (get, list, history, transition answers, alerts,
//! unmask, exports, and the test kit) goes through [`project`]; nothing else decides what a
//! viewer sees. The rules:
//! - a kind or a field the viewer's audience may not see is **absent**: not masked, not listed;
//! - a `Public` or `Internal` field is shown as it is;
//! - a `Personal` or `Sensitive` field is masked unless the viewer unmasks it: codes and numbers
//!   (identity numbers, phones, digit codes) keep at most their last 4 characters, a personal
//!   text (a name) its first character; a sensitive free text and every masked non-text value
//!   (numbers, choices, points, references of sensitive fields) is omitted and named in
//!   [`Projected::masked`], so that nothing of it (not a first letter next to a published option
//!   list) reaches the viewer;
//! - an unmask shows `Personal` fields in clear (the host has checked the role may unmask) and
//!   `Sensitive` fields only to the audiences the field names in `unmask_by` — never to a firm;
//! - a field the manifest does not declare (data of an older manifest) is treated as the
//!   strictest: omitted and named as masked.

use serde_json::{Map, Value};

use jiayuan_domain::{Sensitivity, mask};
use jiayuan_plugin_api::{Audience, FieldDef, FieldType, RecordKind};

/// Who looks, and whether they asked (and were allowed) to unmask.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    /// The viewer's audience; `None` is the host itself, which sees everything in clear.
    pub audience: Option<&'a Audience>,
    /// Whether the viewer unmasks (an audited request by a role that may unmask).
    pub unmask: bool,
}

impl<'a> Viewer<'a> {
    /// A viewer of `audience` reading masked data.
    pub fn masked(audience: &'a Audience) -> Viewer<'a> {
        Viewer { audience: Some(audience), unmask: false }
    }

    /// A viewer of `audience` unmasking.
    pub fn unmasking(audience: &'a Audience) -> Viewer<'a> {
        Viewer { audience: Some(audience), unmask: true }
    }

    /// The host itself.
    pub fn system() -> Viewer<'static> {
        Viewer { audience: None, unmask: true }
    }

    /// Whether the viewer may see records of `kind` at all.
    pub fn sees_kind(&self, kind: &RecordKind) -> bool {
        self.audience.is_none_or(|a| kind.visible(a))
    }

    /// Whether the viewer may see `field` at all.
    pub fn sees(&self, field: &FieldDef) -> bool {
        self.audience.is_none_or(|a| field.visible(a))
    }

    /// Whether the viewer sees `field` in clear.
    pub fn clear(&self, field: &FieldDef) -> bool {
        match field.sensitivity {
            Sensitivity::Public | Sensitivity::Internal => true,
            Sensitivity::Personal => self.unmask,
            Sensitivity::Sensitive => match self.audience {
                None => true,
                Some(a) => self.unmask && !a.is_firm() && Audience::any_admits(&field.unmask_by, a),
            },
        }
    }
}

/// A data object as one viewer sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Projected {
    /// The fields the viewer sees, masked where they must be.
    pub data: Map<String, Value>,
    /// Fields present but omitted because masked (non-text values, sensitive text, undeclared).
    pub masked: Vec<String>,
    /// Fields shown in clear that are masked by default (what an unmask audit names).
    pub unmasked: Vec<String>,
}

/// The fields of `kind` the viewer may see (for type checks of their input, filters and the
/// "allowed" list of an unknown-field error: a hidden field reads as unknown).
pub fn visible_fields(fields: &[FieldDef], viewer: &Viewer<'_>) -> Vec<FieldDef> {
    fields.iter().filter(|f| viewer.sees(f)).cloned().collect()
}

/// Projects `data` (a record's data object) of `kind` for `viewer`.
pub fn project(kind: &RecordKind, data: &Map<String, Value>, viewer: &Viewer<'_>) -> Projected {
    let mut out = Projected::default();
    for (name, value) in data {
        let Some(def) = kind.field(name) else {
            if viewer.audience.is_none() {
                out.data.insert(name.clone(), value.clone());
            } else {
                out.masked.push(name.clone());
            }
            continue;
        };
        if !viewer.sees(def) {
            continue;
        }
        if viewer.clear(def) {
            if def.sensitivity.is_masked() && viewer.audience.is_some() {
                out.unmasked.push(name.clone());
            }
            out.data.insert(name.clone(), value.clone());
            continue;
        }
        match masked_value(def, value) {
            Some(v) => {
                out.data.insert(name.clone(), v);
            }
            None => out.masked.push(name.clone()),
        }
    }
    out
}

/// The masked form of a value, or `None` when it is omitted.
fn masked_value(def: &FieldDef, value: &Value) -> Option<Value> {
    let is_reference = matches!(
        def.ty,
        FieldType::PersonRef | FieldType::HouseRef | FieldType::RecordRef { .. } | FieldType::AgencyUnitRef { .. }
    );
    match (def.sensitivity, value) {
        // A personal reference holds a registry id, not personal text: the registry masks what
        // it shows of that person, and reach decides who can read it.
        (Sensitivity::Personal, Value::Number(_)) if is_reference => Some(value.clone()),
        (Sensitivity::Personal, Value::String(s)) if def.ty.is_text() => Some(Value::String(mask(s, def.sensitivity))),
        (Sensitivity::Sensitive, Value::String(s)) if def.ty.is_text() && !matches!(def.ty, FieldType::Text { .. }) => {
            Some(Value::String(mask(s, def.sensitivity)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiayuan_plugin_api::{ChoiceOption, StateDef, Workflow};
    use serde_json::json;

    fn kind() -> RecordKind {
        let text = FieldType::Text { max_chars: 100 };
        let category = FieldType::Choice {
            options: vec![
                ChoiceOption::new("drug_user", "吸毒人员", "Drug user"),
                ChoiceOption::new("released", "刑满释放", "Released"),
            ],
        };
        let district_police = [Audience::District, Audience::agency("police")];
        RecordKind::new(
            "case",
            "案件",
            "Case",
            Workflow::new("open", vec![StateDef::new("open", "开", "Open")], vec![]),
        )
        .with_field(FieldDef::new("title", "标题", "Title", text.clone()))
        .with_field(FieldDef::new("name", "姓名", "Name", text.clone()).sensitivity(Sensitivity::Personal))
        .with_field(FieldDef::new("phone", "电话", "Phone", FieldType::Phone).sensitivity(Sensitivity::Personal))
        .with_field(
            FieldDef::new("id_no", "身份证", "ID", FieldType::ResidentId)
                .sensitivity(Sensitivity::Sensitive)
                .unmask_by(&[Audience::District]),
        )
        .with_field(FieldDef::new("owner", "人员", "Owner", FieldType::PersonRef).sensitivity(Sensitivity::Personal))
        .with_field(
            FieldDef::new("category", "类别", "Category", category)
                .optional()
                .sensitivity(Sensitivity::Sensitive)
                .visible_to(&district_police)
                .unmask_by(&district_police),
        )
        .with_field(
            FieldDef::new("grade", "等级", "Grade", FieldType::Integer { min: 0, max: 5 })
                .sensitivity(Sensitivity::Sensitive),
        )
        .with_field(FieldDef::new("story", "经过", "Story", text).sensitivity(Sensitivity::Sensitive))
    }

    fn data() -> Map<String, Value> {
        json!({
            "title": "楼道堆物", "name": "张三丰", "phone": "13812345678", "id_no": "440303199003041234",
            "owner": 42, "category": "drug_user", "grade": 3, "story": "吸毒史", "legacy": "x"
        })
        .as_object()
        .cloned()
        .expect("object")
    }

    #[test]
    fn a_firm_sees_no_hidden_field_and_no_masked_prefix() {
        let firm = Audience::Firm;
        let p = project(&kind(), &data(), &Viewer::masked(&firm));
        assert_eq!(
            Value::Object(p.data.clone()),
            json!({ "title": "楼道堆物", "name": "张**", "phone": "*******5678", "id_no": "**************1234", "owner": 42 })
        );
        assert_eq!(p.masked, vec!["grade", "legacy", "story"]);
        let unmasked = project(&kind(), &data(), &Viewer::unmasking(&firm));
        assert_eq!(unmasked.data["name"], json!("张三丰"), "personal: the host decided the role may unmask");
        assert_eq!(unmasked.data["id_no"], json!("**************1234"), "a firm never unmasks sensitive fields");
        assert!(!unmasked.data.contains_key("category"));
    }

    #[test]
    fn the_named_audiences_see_and_unmask_as_declared() {
        let police = Audience::agency("police");
        let masked = project(&kind(), &data(), &Viewer::masked(&police));
        assert!(!masked.data.contains_key("category") && masked.masked.contains(&"category".to_owned()));
        let clear = project(&kind(), &data(), &Viewer::unmasking(&police));
        assert_eq!(clear.data["category"], json!("drug_user"));
        assert_eq!(clear.data["id_no"], json!("**************1234"), "id_no unmasks for the district only");
        let district = Audience::District;
        let d = project(&kind(), &data(), &Viewer::unmasking(&district));
        assert_eq!(d.data["id_no"], json!("440303199003041234"));
        assert!(d.unmasked.contains(&"id_no".to_owned()) && d.unmasked.contains(&"category".to_owned()));
        let judicial = Audience::agency("judicial");
        assert!(!project(&kind(), &data(), &Viewer::unmasking(&judicial)).data.contains_key("category"));
    }

    #[test]
    fn the_host_sees_everything() {
        let p = project(&kind(), &data(), &Viewer::system());
        assert_eq!(p.data, data());
        assert!(p.masked.is_empty() && p.unmasked.is_empty());
    }
}
