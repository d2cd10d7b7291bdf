//! A test plugin whose behaviour is steered by the `code` it is given, for the kit's own tests.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use jiayuan_domain::{BuildingId, EstateId, House, HouseId, HouseUse, PersonId};
use jiayuan_plugin_api::manifest::Offset as Off;
use jiayuan_plugin_api::{
    AlertDraft, Anchor, Audience, ChildDraft, CreateCall, DeadlineAction, FieldDef, FieldType, FieldViolation,
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
        let item = RecordKind::new(
            "item",
            "条目",
            "Item",
            Workflow::new(
                "open",
                vec![
                    StateDef::new("open", "开", "Open"),
                    StateDef::new("held", "挂起", "Held"),
                    StateDef::new("done", "完成", "Done").terminal(),
                ],
                vec![
                    TransitionDef::new("hold", "挂起", "Hold", &["open"], "held")
                        .by(&[Audience::Firm])
                        .with_input(vec![FieldDef::new("tag", "标签", "Tag", FieldType::Text { max_chars: 12 })]),
                    TransitionDef::new("release", "恢复", "Release", &["held"], "open").by_system(),
                    TransitionDef::new("finish", "完成", "Finish", &["open"], "done").by(&[Audience::Firm]),
                ],
            ),
        )
        .with_fields([
            FieldDef::new("code", "编码", "Code", FieldType::Text { max_chars: 12 }),
            FieldDef::new("tag", "标签", "Tag", FieldType::Text { max_chars: 12 }).optional(),
            FieldDef::new("owner", "人员", "Person", FieldType::PersonRef).optional(),
            FieldDef::new("link", "关联", "Link", FieldType::RecordRef { kind: "item".into() }).optional(),
            FieldDef::new("note", "备注", "Note", FieldType::Text { max_chars: 12 }).derived(),
        ])
        .with_key(KeyDef::unique("code"))
        .with_key(KeyDef::lookup("tag"));
        let part = RecordKind::new(
            "part",
            "部件",
            "Part",
            Workflow::new("new", vec![StateDef::new("new", "新", "New").terminal()], vec![]),
        )
        .child_of("item")
        .with_field(FieldDef::new("name", "名称", "Name", FieldType::Text { max_chars: 12 }));
        let stale = DeadlineAction::Alert { severity: Severity::Warning, message: Label::new("超时", "Stale") };
        Manifest::new("probe", "探针", "Probe", "0.0.1")
            .with_kind(item)
            .with_kind(part)
            .with_deadline(jiayuan_plugin_api::DeadlineRule::new(
                "stale",
                "item",
                &["open"],
                Anchor::Created,
                Off::Hours(2),
                stale,
            ))
            .with_deadline(jiayuan_plugin_api::DeadlineRule::new(
                "auto_release",
                "item",
                &["held"],
                Anchor::StateEntered,
                Off::WorkingDays(1),
                DeadlineAction::Transition { transition: "release".into() },
            ))
            .reads(&[jiayuan_plugin_api::PersonField::BirthDate, jiayuan_plugin_api::PersonField::Name])
    }

    async fn on_create(&self, ctx: &dyn HostContext, call: CreateCall) -> Result<Outcome, PluginError> {
        let mut data: Map<String, Value> = serde_json::from_str(&call.data_json).expect("object");
        let code = data.get("code").and_then(Value::as_str).unwrap_or_default().to_owned();
        ctx.log(LogLevel::Info, "create", &[("code", &code)]);
        let alert = |key: &str| AlertDraft::new(key, Severity::Critical, Label::new("警", "Alert"));
        Ok(match code.as_str() {
            "refuse" => Outcome::refuse(vec![FieldViolation::new("code", "no", "不行", "no")]).with_alert(alert("r")),
            "invalid" => return Err(PluginError::invalid("code", "bad", "坏", "bad")),
            "bad-state" => Outcome::accept().with_state("nowhere"),
            "held" => Outcome::accept().with_state("held"),
            "bad-derived" => Outcome::accept().with_data(json!({"code": code, "note": 5}).to_string()),
            "kids" => Outcome::accept()
                .with_child(ChildDraft::new("part", json!({"name": "a"}).to_string()))
                .with_child(ChildDraft::new("part", json!({"name": "b"}).to_string())),
            "alert" => Outcome::accept().with_alert(alert("a")).with_alert(alert("a")),
            _ if call.kind != "item" => Outcome::accept(),
            _ => {
                data.insert("note".into(), json!("seen"));
                Outcome::accept().with_data(Value::Object(data).to_string())
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
