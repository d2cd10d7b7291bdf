//! A test plugin whose behaviour is steered by the `code` it is given, for the kit's own tests.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use jiayuan_domain::{BuildingId, EstateId, House, HouseId, HouseUse, PersonId};
use jiayuan_plugin_api::manifest::Offset as Off;
use jiayuan_plugin_api::{
    Actor, AlertDraft, Anchor, ChildDraft, CreateCall, DeadlineAction, FieldDef, FieldType, FieldViolation,
    HostContext, KeyDef, Label, LogLevel, Manifest, Outcome, PluginError, RecordKind, ServicePlugin, Severity,
    StateDef, TransitionDef, Workflow,
};

use crate::TestHost;
use crate::fixtures::{date, demo_estates, person};

/// A plugin whose behaviour is steered by the `code` of what it is given.
pub(crate) struct Probe;

#[async_trait]
impl ServicePlugin for Probe {
    fn manifest(&self) -> Manifest {
        let item = RecordKind {
            id: "item".into(),
            label: Label::new("条目", "Item"),
            fields: vec![
                FieldDef::new("code", "编码", "Code", FieldType::Text { max_chars: 12 }),
                FieldDef::new("tag", "标签", "Tag", FieldType::Text { max_chars: 12 }).optional(),
                FieldDef::new("owner", "人员", "Person", FieldType::PersonRef).optional(),
                FieldDef::new("link", "关联", "Link", FieldType::RecordRef { kind: "item".into() }).optional(),
                FieldDef::new("note", "备注", "Note", FieldType::Text { max_chars: 12 }).derived(),
            ],
            parent: None,
            workflow: Workflow {
                initial: "open".into(),
                states: vec![
                    StateDef::new("open", "开", "Open"),
                    StateDef::new("held", "挂起", "Held"),
                    StateDef::new("done", "完成", "Done").terminal(),
                ],
                transitions: vec![
                    TransitionDef::new("hold", "挂起", "Hold", &["open"], "held", &[Actor::FirmStaff])
                        .with_input(vec![FieldDef::new("tag", "标签", "Tag", FieldType::Text { max_chars: 12 })]),
                    TransitionDef::new("release", "恢复", "Release", &["held"], "open", &[Actor::System]),
                    TransitionDef::new("finish", "完成", "Finish", &["open"], "done", &[Actor::FirmStaff]),
                ],
            },
            keys: vec![KeyDef { field: "code".into(), unique: true }, KeyDef { field: "tag".into(), unique: false }],
        };
        let part = RecordKind {
            id: "part".into(),
            label: Label::new("部件", "Part"),
            fields: vec![FieldDef::new("name", "名称", "Name", FieldType::Text { max_chars: 12 })],
            parent: Some("item".into()),
            workflow: Workflow {
                initial: "new".into(),
                states: vec![StateDef::new("new", "新", "New").terminal()],
                transitions: vec![],
            },
            keys: vec![],
        };
        Manifest {
            id: "probe".into(),
            name: Label::new("探针", "Probe"),
            version: "0.0.1".into(),
            record_kinds: vec![item, part],
            deadlines: vec![
                jiayuan_plugin_api::DeadlineRule {
                    id: "stale".into(),
                    kind: "item".into(),
                    in_states: vec!["open".into()],
                    anchor: Anchor::Created,
                    offset: Off::Hours(2),
                    action: DeadlineAction::Alert {
                        severity: Severity::Warning, message: Label::new("超时", "Stale")
                    },
                    legal_basis: None,
                },
                jiayuan_plugin_api::DeadlineRule {
                    id: "auto_release".into(),
                    kind: "item".into(),
                    in_states: vec!["held".into()],
                    anchor: Anchor::StateEntered,
                    offset: Off::WorkingDays(1),
                    action: DeadlineAction::Transition { transition: "release".into() },
                    legal_basis: None,
                },
            ],
            kpis: vec![],
        }
    }

    async fn on_create(&self, ctx: &dyn HostContext, call: CreateCall) -> Result<Outcome, PluginError> {
        let mut data: Map<String, Value> = serde_json::from_str(&call.data_json).expect("object");
        let code = data.get("code").and_then(Value::as_str).unwrap_or_default().to_owned();
        ctx.log(LogLevel::Info, "create", &[("code", &code)]);
        let alert = |key: &str| AlertDraft {
            key: key.into(),
            severity: Severity::Critical,
            message: Label::new("警", "Alert"),
        };
        Ok(match code.as_str() {
            "refuse" => Outcome::refuse(vec![FieldViolation::new("code", "no", "不行", "no")]).with_alert(alert("r")),
            "invalid" => return Err(PluginError::invalid("code", "bad", "坏", "bad")),
            "bad-state" => Outcome { state: Some("nowhere".into()), ..Outcome::accept() },
            "held" => Outcome { state: Some("held".into()), ..Outcome::accept() },
            "bad-derived" => Outcome::with_data(json!({"code": code, "note": 5}).to_string()),
            "kids" => Outcome {
                children: vec![
                    ChildDraft { kind: "part".into(), data_json: json!({"name": "a"}).to_string() },
                    ChildDraft { kind: "part".into(), data_json: json!({"name": "b"}).to_string() },
                ],
                ..Outcome::accept()
            },
            "alert" => Outcome::accept().with_alert(alert("a")).with_alert(alert("a")),
            _ if call.kind != "item" => Outcome::accept(),
            _ => {
                data.insert("note".into(), json!("seen"));
                Outcome::with_data(Value::Object(data).to_string())
            }
        })
    }
}

/// A host for [`Probe`] with demo estates 1 and 2, person 1 and house 7 (in estate 1).
pub(crate) fn host() -> TestHost {
    let host = TestHost::new(Probe);
    for e in demo_estates().into_iter().take(2) {
        host.add_estate(e);
    }
    host.add_person(person(PersonId(1), 1, date(1980, 1, 1), true, None));
    host.add_house(House {
        id: HouseId(7),
        building_id: BuildingId(1),
        estate_id: Some(EstateId(1)),
        room: "101".into(),
        area_m2: 50.0,
        use_: HouseUse::Rented,
        address_code: None,
    });
    host
}
