//! Storage tests: one story run against SQLite (temp file) and, when `JIAYUAN_TEST_PG_URL` is
//! set, against PostgreSQL (a fresh schema per run, dropped afterwards); plus SQLite-only tests
//! of the connection settings, concurrent writers and BUSY handling.

use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, Statement};
use sea_orm_migration::MigratorTrait;

use jiayuan_domain::{
    AddressCode, Date, Division, DivisionCode, DivisionLevel, DocKind, Estate, EstateCode, EstateId, EstateKind,
    FirmId, FirmKind, GridCell, GridKind, HouseUse, Hukou, IdentityDoc, ManagementStatus, OnboardingStage, Place,
    RecordId, Relation, Sex, Timestamp,
};

use crate::entity::{alert, record, record_event, record_key};

mod second_edition;
use crate::migration::Migrator;
use crate::*;

const MIGRATIONS: [&str; 8] = [
    "m20261128_000001_create_registry",
    "m20261128_000002_create_records",
    "m20261128_000003_create_enablement",
    "m20261128_000004_create_audit",
    "m20261128_000005_create_accounts",
    "m20261128_000006_index_record_pages",
    "m20261201_000007_registry_administration",
    "m20261201_000008_contract_second_edition",
];

/// The SQLite file every test store lives in, inside its own temp dir.
pub(crate) const TEST_DB: &str = "jiayuan.db";

fn code(s: &str) -> DivisionCode {
    DivisionCode::parse(s).expect("test division codes are 12 digits")
}

fn day(y: i32, m: u32, d: u32) -> Date {
    Date::from_ymd(y, m, d).expect("test dates exist")
}

pub(crate) fn estate_code(s: &str) -> EstateCode {
    EstateCode::parse(s).expect("test estate codes are valid")
}

/// A credit code with a valid GB 32100 check character, from its first 17 characters.
pub(crate) fn valid_credit_code(first17: &str) -> String {
    let check = jiayuan_domain::credit_code_check_char(first17).expect("test credit codes use the charset");
    format!("{first17}{check}")
}

fn key(field: &str, value: &str, unique: bool) -> IndexKey {
    IndexKey { field: field.into(), value: value.into(), unique }
}

fn new_record(plugin: &str, kind: &str, estate: EstateId, state: &str, keys: Vec<IndexKey>, at: i64) -> NewRecord {
    NewRecord {
        plugin: plugin.into(),
        kind: kind.into(),
        place: Place::Estate(estate),
        parent: None,
        state: state.into(),
        data_json: format!(r#"{{"at":{at}}}"#),
        keys,
        refs: Vec::new(),
        at: Timestamp(at),
        occurred_at: Timestamp(at),
        backdated_reason: None,
        actor: "user:1".into(),
    }
}

fn new_alert(plugin: &str, record: Option<AlertTarget>, estate: Option<EstateId>, dedupe: &str, at: i64) -> NewAlert {
    NewAlert {
        plugin: plugin.into(),
        record,
        estate_id: estate,
        grid_cell: None,
        rule: "overdue".into(),
        dedupe_key: dedupe.into(),
        severity: "warning".into(),
        message_zh: "已逾期".into(),
        message_en: "overdue".into(),
        due_at: Some(Timestamp(at + 1000)),
        at: Timestamp(at),
    }
}

fn update(
    plugin: &str,
    id: RecordId,
    expected: i64,
    action: &str,
    state: &str,
    keys: Vec<IndexKey>,
    at: i64,
) -> RecordUpdate {
    RecordUpdate {
        plugin: plugin.into(),
        id,
        expected_version: expected,
        action: action.into(),
        new_state: state.into(),
        data_json: format!(r#"{{"at":{at}}}"#),
        keys,
        refs: Vec::new(),
        move_to: None,
        assignee: None,
        at: Timestamp(at),
        occurred_at: Timestamp(at),
        backdated_reason: None,
        actor: "user:2".into(),
    }
}

/// Rows in (records, record_keys, record_events, alerts).
async fn table_counts(store: &Store) -> (u64, u64, u64, u64) {
    let db = &store.reader;
    (
        record::Entity::find().count(db).await.expect("count records"),
        record_key::Entity::find().count(db).await.expect("count keys"),
        record_event::Entity::find().count(db).await.expect("count events"),
        alert::Entity::find().count(db).await.expect("count alerts"),
    )
}

fn by_plugin(plugin: &str) -> RecordFilter {
    RecordFilter { plugin: plugin.into(), ..RecordFilter::default() }
}

/// The whole storage story; every backend must pass it unchanged.
async fn story(store: Store) {
    // --- Migrations: the first run applies everything, the second nothing.
    let first = store.migrate().await.expect("first migration");
    assert_eq!(first.applied, MIGRATIONS);
    let second = store.migrate().await.expect("second migration");
    assert!(second.applied.is_empty(), "{second:?}");
    store.ping().await.expect("ping");

    // --- Divisions: upsert inserts, then replaces.
    let district = Division {
        code: code("440303000000"),
        level: DivisionLevel::District,
        name_zh: "罗湖区".into(),
        parent: None,
        valid_from: day(1983, 1, 1),
        valid_to: None,
    };
    let street = Division {
        code: code("440303004000"),
        level: DivisionLevel::Street,
        name_zh: "翠竹".into(),
        parent: Some(code("440303000000")),
        valid_from: day(1990, 1, 1),
        valid_to: None,
    };
    let community = Division {
        code: code("440303004001"),
        level: DivisionLevel::Community,
        name_zh: "翠竹社区".into(),
        parent: Some(code("440303004000")),
        valid_from: day(2005, 3, 1),
        valid_to: Some(day(2030, 12, 31)),
    };
    for d in [&district, &street, &community] {
        store.upsert_division(d).await.expect("insert division");
    }
    let street = Division { name_zh: "翠竹街道".into(), ..street };
    store.upsert_division(&street).await.expect("replace division");
    assert_eq!(store.divisions().await.expect("divisions"), vec![district.clone(), street.clone(), community.clone()]);

    // --- Grid cells: round trip; a second cell with the same code is refused.
    let cell = GridCell {
        code: "440303004001001".into(),
        kind: GridKind::Basic,
        community: community.code.clone(),
        name: "翠竹基础网格".into(),
        estate_id: None,
        valid_from: day(2024, 1, 1),
        valid_to: None,
    };
    store.insert_grid_cell(&cell).await.expect("insert grid cell");
    let again = store.insert_grid_cell(&GridCell { name: "dup".into(), ..cell.clone() }).await;
    assert!(matches!(&again, Err(StoreError::UniqueKey { field, .. }) if field == "grid_cells.code"), "{again:?}");
    assert_eq!(store.grid_cells().await.expect("grid cells"), vec![cell]);

    // --- Estates: round trip; an unknown community is a missing reference.
    let cuizhu = NewEstate {
        code: estate_code("LH-CZ-001"),
        kind: EstateKind::Estate,
        name: "翠竹苑".into(),
        community: community.code.clone(),
        address: "深圳市罗湖区翠竹路1号".into(),
        management: ManagementStatus::PropertyManaged,
        onboarding: None,
        households: 1_200,
    };
    let old_village = NewEstate {
        code: estate_code("LH-CZ-002"),
        kind: EstateKind::UrbanVillage,
        name: "老村".into(),
        management: ManagementStatus::Unmanaged,
        onboarding: Some(OnboardingStage::OwnerVote),
        households: 80,
        ..cuizhu.clone()
    };
    let e1 = store.insert_estate(&cuizhu).await.expect("insert estate");
    let e2 = store.insert_estate(&old_village).await.expect("insert estate");
    assert_ne!(e1, e2);
    let expected = Estate {
        id: e1,
        code: estate_code("LH-CZ-001"),
        kind: EstateKind::Estate,
        name: cuizhu.name.clone(),
        community: cuizhu.community.clone(),
        address: cuizhu.address.clone(),
        management: cuizhu.management,
        onboarding: None,
        households: 1_200,
    };
    assert_eq!(store.estate(e1).await.expect("estate"), Some(expected.clone()));
    let estates = store.estates().await.expect("estates");
    assert_eq!(estates.len(), 2);
    assert_eq!(estates[0], expected);
    assert_eq!(
        (estates[1].onboarding, estates[1].management),
        (Some(OnboardingStage::OwnerVote), ManagementStatus::Unmanaged)
    );
    assert_eq!(store.estate(EstateId(e2.0 + 1000)).await.expect("estate"), None);
    let orphan = store
        .insert_estate(&NewEstate { code: estate_code("LH-XX-009"), community: code("440303099001"), ..cuizhu.clone() })
        .await;
    assert!(matches!(orphan, Err(StoreError::Rule { field: "community", rule: "not_registered" })), "{orphan:?}");
    let again = store.insert_estate(&NewEstate { name: "翠竹苑（改名）".into(), ..cuizhu.clone() }).await;
    assert!(matches!(&again, Err(StoreError::UniqueKey { field, .. }) if field == "estates.code"), "{again:?}");

    // --- Firms and service assignments.
    let firm_a = NewFirm {
        name: "深圳市甲物业服务有限公司".into(),
        credit_code: "91440300MA5F000000".into(),
        credit_code_override: Some("early pilot code".into()),
        kind: FirmKind::PropertyFirm,
        legal_representative: Some("张三".into()),
        contact_phone: Some("13812345678".into()),
    };
    let firm_b = NewFirm {
        name: "正阳公司".into(),
        credit_code: valid_credit_code("91440303MA5G00001"),
        credit_code_override: None,
        kind: FirmKind::FallbackStateOperator,
        legal_representative: None,
        contact_phone: None,
    };
    let fa = store.insert_firm(&firm_a).await.expect("insert firm");
    let fb = store.insert_firm(&firm_b).await.expect("insert firm");
    let stored_a = store.firm(fa).await.expect("firm").expect("firm a exists");
    assert_eq!((stored_a.id, &stored_a.name, stored_a.kind), (fa, &firm_a.name, FirmKind::PropertyFirm));
    assert_eq!(stored_a.credit_code_override.as_deref(), Some("early pilot code"));
    assert_eq!(stored_a.contact_phone.as_deref(), Some("13812345678"));
    let firms = store.firms().await.expect("firms");
    assert_eq!(
        firms.iter().map(|f| (f.id, f.kind)).collect::<Vec<_>>(),
        vec![(fa, FirmKind::PropertyFirm), (fb, FirmKind::FallbackStateOperator)]
    );
    assert_eq!(store.firm(FirmId(fb.0 + 1000)).await.expect("firm"), None);

    let first_contract = NewAssignment {
        firm_id: fa,
        estate_id: e1,
        from: day(2024, 1, 1),
        to: Some(day(2025, 6, 30)),
        contract_ref: Some("LH-2024-001".into()),
    };
    let a1 = store.insert_assignment(&first_contract).await.expect("insert assignment");
    let a2 = store
        .insert_assignment(&NewAssignment {
            firm_id: fb,
            from: day(2025, 7, 1),
            to: None,
            contract_ref: None,
            ..first_contract.clone()
        })
        .await
        .expect("insert assignment");
    let assignments = store.assignments_of_estate(e1).await.expect("assignments");
    assert_eq!(
        assignments.iter().map(|a| (a.id, a.firm_id, a.from, a.to)).collect::<Vec<_>>(),
        vec![(a1, fa, day(2024, 1, 1), Some(day(2025, 6, 30))), (a2, fb, day(2025, 7, 1), None)]
    );
    assert_eq!(store.firm_serving(e1, day(2023, 12, 31)).await.expect("serving"), None);
    assert_eq!(store.firm_serving(e1, day(2024, 1, 1)).await.expect("serving"), Some(fa));
    assert_eq!(store.firm_serving(e1, day(2025, 6, 30)).await.expect("serving"), Some(fa));
    assert_eq!(store.firm_serving(e1, day(2025, 7, 1)).await.expect("serving"), Some(fb));
    assert_eq!(store.firm_serving(e1, day(2031, 1, 1)).await.expect("serving"), Some(fb));
    assert_eq!(store.firm_serving(e2, day(2025, 1, 1)).await.expect("serving"), None);
    for on in [day(2023, 12, 31), day(2024, 1, 1), day(2025, 6, 30), day(2025, 7, 1), day(2031, 1, 1)] {
        let all = store.serving_firms(on).await.expect("serving firms");
        assert_eq!(all.get(&e1).copied(), store.firm_serving(e1, on).await.expect("serving"), "{on}");
        assert_eq!(all.get(&e2), None, "{on}");
    }
    let bad = store
        .insert_assignment(&NewAssignment { firm_id: FirmId(fb.0 + 1000), estate_id: e2, ..first_contract.clone() })
        .await;
    assert!(matches!(bad, Err(StoreError::Rule { field: "firm", rule: "not_registered" })), "{bad:?}");

    // --- Buildings and houses: a house takes its estate from its building.
    let b1 = store
        .insert_building(&NewBuilding {
            estate_id: Some(e1),
            name: "3栋".into(),
            floors: 32,
            height_m: 98.6,
            elevator: true,
        })
        .await
        .expect("insert building");
    let building = store.building(b1).await.expect("building").expect("building exists");
    assert_eq!(
        (building.estate_id, building.name.as_str(), building.floors, building.height_m, building.elevator),
        (Some(e1), "3栋", 32, 98.6, true)
    );
    assert!(building.is_high_rise());
    let h1 = store
        .insert_house(&NewHouse {
            building_id: b1,
            room: "1203".into(),
            area_m2: 89.5,
            use_: HouseUse::Rented,
            address_code: Some(AddressCode::parse("4403030040010000300001203").expect("25 digits")),
        })
        .await
        .expect("insert house");
    let h2 = store
        .insert_house(&NewHouse {
            building_id: b1,
            room: "1204".into(),
            area_m2: 60.25,
            use_: HouseUse::SelfOccupied,
            address_code: None,
        })
        .await
        .expect("insert house");
    let house = store.house(h1).await.expect("house").expect("house exists");
    assert_eq!(
        (house.building_id, house.estate_id, house.room.as_str(), house.area_m2, house.use_),
        (b1, Some(e1), "1203", 89.5, HouseUse::Rented)
    );
    assert_eq!(house.address_code.as_ref().map(AddressCode::as_str), Some("4403030040010000300001203"));
    let houses = store.houses_of_estate(e1).await.expect("houses");
    assert_eq!(houses.iter().map(|h| h.id).collect::<Vec<_>>(), vec![h1, h2]);
    assert!(store.houses_of_estate(e2).await.expect("houses").is_empty());
    let homeless = store
        .insert_house(&NewHouse {
            building_id: jiayuan_domain::BuildingId(b1.0 + 1000),
            room: "1".into(),
            area_m2: 1.0,
            use_: HouseUse::Vacant,
            address_code: None,
        })
        .await;
    assert!(matches!(homeless, Err(StoreError::Rule { field: "building", rule: "not_registered" })), "{homeless:?}");

    // --- Persons: round trip, lookup by document, one person per document.
    let resident = NewPerson {
        name: "阿依古丽·买买提".into(),
        doc: IdentityDoc { kind: DocKind::ResidentId, number: "440303199001010014".into() },
        sex: Some(Sex::Female),
        birth_date: Some(day(1990, 1, 1)),
        hukou: Hukou::NonShenzhen,
        phone: Some("13912345678".into()),
    };
    let p1 = store.insert_person(&resident).await.expect("insert person");
    store
        .insert_occupancy(&NewOccupancy {
            person_id: p1,
            house_id: h1,
            from: day(2020, 1, 1),
            to: None,
            relation: Relation::Tenant,
            primary: true,
            reported_at: None,
        })
        .await
        .expect("insert occupancy");
    let person = store.person(p1).await.expect("person").expect("person exists");
    assert_eq!(
        (person.id, &person.name, &person.doc, person.sex, person.birth_date, person.hukou, person.house_id),
        (p1, &resident.name, &resident.doc, Some(Sex::Female), Some(day(1990, 1, 1)), Hukou::NonShenzhen, Some(h1))
    );
    assert_eq!(
        store.person_by_doc(DocKind::ResidentId, "440303199001010014").await.expect("by doc"),
        Some(person.clone())
    );
    assert_eq!(store.person_by_doc(DocKind::Passport, "440303199001010014").await.expect("by doc"), None);
    let twin = store.insert_person(&NewPerson { name: "other".into(), ..resident.clone() }).await;
    match twin {
        Err(StoreError::UniqueKey { field, value }) => {
            assert_eq!(field, "persons.doc");
            assert!(!value.contains("199001010014"), "the number must be masked: {value}");
        }
        other => panic!("expected a unique-key error, got {other:?}"),
    }
    let visitor = NewPerson {
        name: "Visitor".into(),
        doc: IdentityDoc { kind: DocKind::Passport, number: "E12345678".into() },
        sex: None,
        birth_date: None,
        hukou: Hukou::Foreign,
        phone: None,
    };
    let p2 = store.insert_person(&visitor).await.expect("insert person");
    assert_eq!(
        store.person(p2).await.expect("person").map(|p| (p.sex, p.birth_date, p.house_id, p.phone)),
        Some((None, None, None, None))
    );

    // --- Persons at rest: document number and phone are encrypted, found by blind index.
    assert_eq!(person.phone.as_deref(), Some("13912345678"));
    assert_eq!(store.persons_by_phone("13912345678").await.expect("by phone"), vec![person.clone()]);
    assert_eq!(store.persons_by_phone("+86 139-1234-5678").await.expect("by phone"), vec![person.clone()]);
    assert!(store.persons_by_phone("13912345679").await.expect("by phone").is_empty());
    assert_eq!(
        store.person_by_doc(DocKind::Passport, " e1234 5678").await.expect("by doc, normalised"),
        store.person(p2).await.expect("person")
    );
    let sharing = NewPerson {
        name: "同住人".into(),
        doc: IdentityDoc { kind: DocKind::ResidentId, number: "44030319900101003X".into() },
        ..resident.clone()
    };
    let p3 = store.insert_person(&sharing).await.expect("a second person with the same phone");
    let by_phone: Vec<jiayuan_domain::PersonId> =
        store.persons_by_phone("13912345678").await.expect("by phone").iter().map(|p| p.id).collect();
    assert_eq!(by_phone, vec![p1, p3]);
    for row in crate::entity::person::Entity::find().all(&store.reader).await.expect("raw person rows") {
        let raw = format!("{row:?}");
        for plaintext in ["440303199001010014", "44030319900101003X", "E12345678", "13912345678", "12345678"] {
            assert!(!raw.contains(plaintext), "plaintext {plaintext} stored in {raw}");
        }
        assert!(row.doc_number_enc.starts_with("v1:"), "{raw}");
        assert_eq!(row.doc_bidx.len(), 64, "{raw}");
        assert_eq!(row.phone_enc.is_some(), row.phone_bidx.is_some(), "{raw}");
    }

    // --- Records: a create + child (in-batch parent) + alert commit together.
    let at0 = 1_764_000_000_000;
    let mut parent = new_record(
        "dog",
        "licence",
        e1,
        "submitted",
        vec![key("licence_no", "L-001", true), key("owner", "p1", false)],
        at0,
    );
    parent.keys.push(key("owner", "p1", false)); // repeated keys are merged
    let mut child = new_record("dog", "vaccination", e1, "recorded", vec![key("licence_no", "L-001", true)], at0);
    child.parent = Some(ParentRef::InBatch(0));
    let res = store
        .write(WriteBatch {
            creates: vec![parent, child],
            updates: vec![],
            alerts: vec![new_alert("dog", Some(AlertTarget::InBatch(0)), Some(e1), "dog:L-001:overdue", at0)],
            audit: vec![],
        })
        .await
        .expect("first batch");
    assert_eq!(res.created.len(), 2);
    assert_eq!(res.alerts_raised, 1);
    let (lic, vac) = (res.created[0], res.created[1]);
    assert!(lic < vac);
    let stored = store.record("dog", lic).await.expect("record").expect("licence exists");
    assert_eq!(
        stored,
        StoredRecord {
            id: lic,
            plugin: "dog".into(),
            kind: "licence".into(),
            place: Place::Estate(e1),
            parent_id: None,
            state: "submitted".into(),
            data_json: format!(r#"{{"at":{at0}}}"#),
            created_at: Timestamp(at0),
            updated_at: Timestamp(at0),
            state_entered_at: Timestamp(at0),
            version: 1,
            created_by: "user:1".into(),
            assignee: None,
            occurred_at: Timestamp(at0),
        }
    );
    assert_eq!(store.record("dog", vac).await.expect("record").and_then(|r| r.parent_id), Some(lic));
    assert_eq!(store.record("waste", lic).await.expect("record"), None, "records are per plugin");
    let events = store.events("dog", lic).await.expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].action.as_str(), events[0].from_state.as_deref(), events[0].to_state.as_str()),
        ("create", None, "submitted")
    );
    assert_eq!((events[0].record_id, events[0].at, events[0].actor.as_str()), (lic, Timestamp(at0), "user:1"));
    assert!(store.events("waste", lic).await.expect("events").is_empty());
    let alerts = store.alerts(&AlertFilter { record_id: Some(lic), ..AlertFilter::default() }).await.expect("alerts");
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (alerts[0].plugin.as_str(), alerts[0].record_id, alerts[0].estate_id, alerts[0].rule.as_str()),
        ("dog", Some(lic), Some(e1), "overdue")
    );
    assert_eq!(
        (alerts[0].due_at, alerts[0].raised_at, alerts[0].message_zh.as_str()),
        (Some(Timestamp(at0 + 1000)), Timestamp(at0), "已逾期")
    );
    // The same unique value in another kind is fine (uniqueness is per plugin + kind + field).
    let key_lookup = |field: &str, value: &str, kind: Option<&str>| RecordFilter {
        plugin: "dog".into(),
        kind: kind.map(str::to_owned),
        key: Some((field.into(), value.into())),
        ..RecordFilter::default()
    };
    let ids = |rs: Vec<StoredRecord>| rs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.records(&key_lookup("licence_no", "L-001", Some("licence"))).await.expect("records")),
        vec![lic]
    );
    assert_eq!(ids(store.records(&key_lookup("licence_no", "L-001", None)).await.expect("records")), vec![lic, vac]);
    assert_eq!(ids(store.records(&key_lookup("owner", "p1", None)).await.expect("records")), vec![lic]);
    assert_eq!(store.count_records(&key_lookup("owner", "nobody", None)).await.expect("count"), 0);

    // --- A batch whose second create takes a used unique key writes nothing at all.
    let before = table_counts(&store).await;
    let dup = store
        .write(WriteBatch {
            creates: vec![
                new_record("dog", "licence", e1, "submitted", vec![key("licence_no", "L-002", true)], at0 + 1),
                new_record("dog", "licence", e2, "submitted", vec![key("licence_no", "L-001", true)], at0 + 1),
            ],
            updates: vec![],
            alerts: vec![new_alert("dog", Some(AlertTarget::InBatch(0)), None, "dog:L-002:new", at0 + 1)],
            audit: vec![],
        })
        .await;
    assert!(
        matches!(&dup, Err(StoreError::UniqueKey { field, value }) if field == "licence_no" && value == "L-001"),
        "{dup:?}"
    );
    assert_eq!(table_counts(&store).await, before);
    // Two creates of one batch sharing a unique value: the same, and nothing is written.
    let twins = store
        .write(WriteBatch {
            creates: vec![
                new_record("dog", "licence", e1, "submitted", vec![key("licence_no", "L-900", true)], at0 + 2),
                new_record("dog", "licence", e1, "submitted", vec![key("licence_no", "L-900", true)], at0 + 2),
            ],
            ..WriteBatch::default()
        })
        .await;
    assert!(matches!(&twins, Err(StoreError::UniqueKey { value, .. }) if value == "L-900"), "{twins:?}");
    assert_eq!(table_counts(&store).await, before);
    // An unknown estate or a foreign parent is refused, again without a trace.
    let nowhere = store
        .write(WriteBatch {
            creates: vec![new_record("dog", "licence", EstateId(e2.0 + 1000), "s", vec![], at0)],
            ..WriteBatch::default()
        })
        .await;
    assert!(matches!(nowhere, Err(StoreError::MissingReference { .. })), "{nowhere:?}");
    let mut stray = new_record("waste", "bin", e1, "s", vec![], at0);
    stray.parent = Some(ParentRef::Existing(lic));
    let stray = store.write(WriteBatch { creates: vec![stray], ..WriteBatch::default() }).await;
    assert!(matches!(stray, Err(StoreError::NotFound { what: "parent record", .. })), "{stray:?}");
    assert_eq!(table_counts(&store).await, before);

    // --- Updates: version bump, state_entered_at only on a state change, keys replaced.
    let at1 = at0 + 60_000;
    let at2 = at0 + 120_000;
    store
        .write(WriteBatch {
            updates: vec![update("dog", lic, 1, "approve", "approved", vec![key("licence_no", "L-001X", true)], at1)],
            ..WriteBatch::default()
        })
        .await
        .expect("approve");
    store
        .write(WriteBatch {
            updates: vec![update(
                "dog",
                lic,
                2,
                "edit",
                "approved",
                vec![key("licence_no", "L-001X", true), key("owner", "p2", false)],
                at2,
            )],
            ..WriteBatch::default()
        })
        .await
        .expect("edit");
    let stored = store.record("dog", lic).await.expect("record").expect("licence exists");
    assert_eq!((stored.version, stored.state.as_str(), stored.created_at), (3, "approved", Timestamp(at0)));
    assert_eq!((stored.updated_at, stored.state_entered_at), (Timestamp(at2), Timestamp(at1)));
    assert_eq!(stored.data_json, format!(r#"{{"at":{at2}}}"#));
    assert!(store.records(&key_lookup("licence_no", "L-001", Some("licence"))).await.expect("records").is_empty());
    assert_eq!(
        ids(store.records(&key_lookup("licence_no", "L-001X", Some("licence"))).await.expect("records")),
        vec![lic]
    );
    assert_eq!(ids(store.records(&key_lookup("owner", "p2", None)).await.expect("records")), vec![lic]);
    assert!(store.records(&key_lookup("owner", "p1", None)).await.expect("records").is_empty());
    // The old unique value is free again.
    let reuse = store
        .write(WriteBatch {
            creates: vec![new_record("dog", "licence", e2, "submitted", vec![key("licence_no", "L-001", true)], at2)],
            ..WriteBatch::default()
        })
        .await
        .expect("reuse a released unique value");
    let lic2 = reuse.created[0];
    // An update may not take a unique value another record holds; nothing of it is written.
    let before = table_counts(&store).await;
    let taken = store
        .write(WriteBatch {
            updates: vec![update("dog", lic2, 1, "renumber", "approved", vec![key("licence_no", "L-001X", true)], at2)],
            ..WriteBatch::default()
        })
        .await;
    assert!(matches!(&taken, Err(StoreError::UniqueKey { value, .. }) if value == "L-001X"), "{taken:?}");
    assert_eq!(table_counts(&store).await, before);
    let unchanged = store.record("dog", lic2).await.expect("record").expect("lic2 exists");
    assert_eq!((unchanged.version, unchanged.state.as_str()), (1, "submitted"));
    assert_eq!(
        ids(store.records(&key_lookup("licence_no", "L-001", Some("licence"))).await.expect("records")),
        vec![lic2]
    );

    // --- A stale expected version conflicts and writes nothing (not even the batch's create).
    let before = table_counts(&store).await;
    let stale = store
        .write(WriteBatch {
            creates: vec![new_record("dog", "licence", e1, "submitted", vec![], at2)],
            updates: vec![update("dog", lic, 1, "revoke", "revoked", vec![], at2)],
            alerts: vec![],
            audit: vec![],
        })
        .await;
    assert!(matches!(stale, Err(StoreError::VersionConflict { id, expected: 1, found: 3 }) if id == lic), "{stale:?}");
    assert_eq!(table_counts(&store).await, before);
    assert_eq!(
        store.record("dog", lic).await.expect("record").map(|r| (r.version, r.state)),
        Some((3, "approved".to_owned()))
    );
    let ghost = store
        .write(WriteBatch { updates: vec![update("waste", lic, 3, "x", "y", vec![], at2)], ..WriteBatch::default() })
        .await;
    assert!(matches!(ghost, Err(StoreError::NotFound { what: "record", .. })), "{ghost:?}");

    // --- Events are ordered.
    let events = store.events("dog", lic).await.expect("events");
    let summary: Vec<(&str, Option<&str>, &str)> =
        events.iter().map(|e| (e.action.as_str(), e.from_state.as_deref(), e.to_state.as_str())).collect();
    assert_eq!(
        summary,
        vec![
            ("create", None, "submitted"),
            ("approve", Some("submitted"), "approved"),
            ("edit", Some("approved"), "approved")
        ]
    );
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(events.iter().map(|e| e.at).collect::<Vec<_>>(), vec![Timestamp(at0), Timestamp(at1), Timestamp(at2)]);
    assert_eq!(events[2].actor, "user:2");

    // --- Alerts with a stored dedupe key are not duplicated.
    let res = store
        .write(WriteBatch {
            alerts: vec![
                new_alert("dog", Some(AlertTarget::Existing(lic)), Some(e1), "dog:L-001:overdue", at2),
                new_alert("dog", Some(AlertTarget::Existing(lic)), Some(e1), "dog:L-001:expiring", at2),
                new_alert("dog", None, Some(e2), "dog:district:weekly", at2),
                new_alert("dog", None, Some(e2), "dog:district:weekly", at2),
            ],
            ..WriteBatch::default()
        })
        .await
        .expect("alerts");
    assert_eq!(res.alerts_raised, 2);
    let on_licence =
        store.alerts(&AlertFilter { record_id: Some(lic), ..AlertFilter::default() }).await.expect("alerts");
    assert_eq!(on_licence.iter().map(|a| a.raised_at).collect::<Vec<_>>(), vec![Timestamp(at0), Timestamp(at2)]);
    let in_e2 = store
        .alerts(&AlertFilter {
            places: Some(PlaceSet { estates: vec![e2], grid_cells: vec![] }),
            ..AlertFilter::default()
        })
        .await
        .expect("alerts");
    assert_eq!(in_e2.len(), 1);
    assert!(
        store
            .alerts(&AlertFilter { places: Some(PlaceSet::default()), ..AlertFilter::default() })
            .await
            .expect("alerts")
            .is_empty()
    );
    assert!(
        store
            .alerts(&AlertFilter { plugin: Some("waste".into()), ..AlertFilter::default() })
            .await
            .expect("alerts")
            .is_empty()
    );
    let all = store.alerts(&AlertFilter::default()).await.expect("alerts");
    assert_eq!(all.len(), 3);
    let page = store
        .alerts(&AlertFilter { after: Some(all[0].id), limit: 1, ..AlertFilter::default() })
        .await
        .expect("alerts");
    assert_eq!(page.iter().map(|a| a.id).collect::<Vec<_>>(), vec![all[1].id]);
    let foreign = store
        .write(WriteBatch {
            alerts: vec![new_alert("waste", Some(AlertTarget::Existing(lic)), None, "waste:x", at2)],
            ..WriteBatch::default()
        })
        .await;
    assert!(matches!(foreign, Err(StoreError::NotFound { what: "alert record", .. })), "{foreign:?}");

    // --- Keyset pagination returns every record exactly once.
    let mut bulk = Vec::new();
    for i in 0..23 {
        let estate = if i % 3 == 0 { e2 } else { e1 };
        let state = if i % 2 == 0 { "open" } else { "closed" };
        // Four records per instant, so the time orders must break ties by id.
        bulk.push(new_record("dog", "patrol", estate, state, vec![key("seq", &i.to_string(), true)], at2 + i / 4));
    }
    let made = store.write(WriteBatch { creates: bulk, ..WriteBatch::default() }).await.expect("bulk").created;
    let patrols = RecordFilter { kind: Some("patrol".into()), limit: 5, ..by_plugin("dog") };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.records(&RecordFilter { after, ..patrols.clone() }).await.expect("page");
        assert!(page.len() <= 5);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page.iter().map(|r| r.id));
    }
    assert_eq!(seen, made, "every record once, in id order");
    let all_patrols = store.records(&RecordFilter { limit: 0, ..patrols.clone() }).await.expect("all");
    for order in [RecordOrder::IdAsc, RecordOrder::IdDesc, RecordOrder::UpdatedAsc, RecordOrder::UpdatedDesc] {
        let mut expected: Vec<(i64, i64)> = all_patrols.iter().map(|r| (r.updated_at.0, r.id.0)).collect();
        match order {
            RecordOrder::IdAsc => expected.sort_by_key(|&(_, id)| id),
            RecordOrder::IdDesc => expected.sort_by_key(|&(_, id)| std::cmp::Reverse(id)),
            RecordOrder::UpdatedAsc => expected.sort(),
            RecordOrder::UpdatedDesc => expected.sort_by(|a, b| b.cmp(a)),
        }
        let mut seen = Vec::new();
        let mut position = None;
        loop {
            let filter = RecordFilter { order, after_position: position, ..patrols.clone() };
            let page = store.records(&filter).await.expect("page");
            let Some(last) = page.last() else { break };
            position = Some(RecordPosition { id: last.id, updated_at: last.updated_at });
            seen.extend(page.iter().map(|r| (r.updated_at.0, r.id.0)));
        }
        assert_eq!(seen, expected, "{order:?}: every record once, in order, ties broken by id");
    }
    assert_eq!(store.count_records(&patrols).await.expect("count"), 23);
    let open_in_e1 = RecordFilter {
        places: Some(PlaceSet { estates: vec![e1], grid_cells: vec![] }),
        states: vec!["open".into()],
        ..patrols.clone()
    };
    let expected_open: Vec<i64> = (0..23).filter(|i| i % 3 != 0 && i % 2 == 0).collect();
    assert_eq!(store.count_records(&open_in_e1).await.expect("count"), expected_open.len() as u64);
    assert!(
        store
            .records(&open_in_e1)
            .await
            .expect("records")
            .iter()
            .all(|r| r.estate_id() == Some(e1) && r.state == "open")
    );
    let nothing = RecordFilter { places: Some(PlaceSet::default()), ..patrols.clone() };
    assert!(store.records(&nothing).await.expect("records").is_empty());
    assert_eq!(store.count_records(&nothing).await.expect("count"), 0);
    let children = RecordFilter { parent_id: Some(lic), ..by_plugin("dog") };
    assert_eq!(ids(store.records(&children).await.expect("records")), vec![vac]);
    assert_eq!(store.count_records(&by_plugin("dog")).await.expect("count"), 2 + 1 + 23);
    let everything = store.records(&RecordFilter { limit: 0, ..by_plugin("dog") }).await.expect("records");
    assert_eq!(everything.len(), 26);
    assert!(everything.iter().any(|r| r.id == lic2));
    assert!(store.records(&by_plugin("waste")).await.expect("records").is_empty());

    // --- Enablement overrides: upsert on (item, scope), clear.
    let over = |scope: EnablementScope, enabled: bool, reason: &str, at: i64| EnablementOverride {
        item: "dog-licensing".into(),
        scope,
        enabled,
        reason: reason.into(),
        changed_by: "admin:1".into(),
        changed_at: Timestamp(at),
    };
    store.set_enablement(&over(EnablementScope::District, false, "pilot paused", at0)).await.expect("set");
    store
        .set_enablement(&over(EnablementScope::Street(street.code.clone()), true, "street pilot", at0))
        .await
        .expect("set");
    store.set_enablement(&over(EnablementScope::Estate(e1), true, "estate pilot", at0)).await.expect("set");
    store.set_enablement(&over(EnablementScope::Firm(fa), false, "firm suspended", at0)).await.expect("set");
    store.set_enablement(&over(EnablementScope::District, true, "pilot resumed", at1)).await.expect("replace");
    let listed = store.enablement_overrides().await.expect("overrides");
    assert_eq!(
        listed,
        vec![
            over(EnablementScope::District, true, "pilot resumed", at1),
            over(EnablementScope::Estate(e1), true, "estate pilot", at0),
            over(EnablementScope::Firm(fa), false, "firm suspended", at0),
            over(EnablementScope::Street(street.code.clone()), true, "street pilot", at0),
        ]
    );
    assert!(
        store
            .clear_enablement("dog-licensing", &EnablementScope::Estate(e1), "admin", Timestamp(at1))
            .await
            .expect("clear")
    );
    assert!(
        !store
            .clear_enablement("dog-licensing", &EnablementScope::Estate(e1), "admin", Timestamp(at1))
            .await
            .expect("clear again")
    );
    assert!(
        !store
            .clear_enablement("waste-sorting", &EnablementScope::District, "admin", Timestamp(at1))
            .await
            .expect("clear other item")
    );
    assert_eq!(store.enablement_overrides().await.expect("overrides").len(), 3);
    // Each change (not the no-op clears) appended its audit event in its transaction.
    let report = store.verify_audit().await.expect("verify");
    assert_eq!((report.events, report.fault), (6, None));
    let actions: Vec<String> = crate::entity::audit_event::Entity::find()
        .all(&store.reader)
        .await
        .expect("audit rows")
        .into_iter()
        .map(|r| format!("{} {} {}", r.actor, r.action, r.object))
        .collect();
    assert_eq!(actions[0], "admin:1 enablement.set enablement/dog-licensing/district");
    assert_eq!(actions[5], format!("admin enablement.clear enablement/dog-licensing/estate/{}", e1.0));

    // --- The migrations also go down and up again cleanly.
    Migrator::down(&store.writer, None).await.expect("migrate down");
    assert_eq!(store.migrate().await.expect("migrate up again").applied, MIGRATIONS);
    assert!(store.estates().await.expect("estates").is_empty());
}

/// A migrated store on a fresh SQLite file, with one estate.
pub(crate) async fn store_with_estate(dir: &tempfile::TempDir, busy_timeout_ms: u64) -> (Store, EstateId) {
    let settings = DatabaseSettings {
        busy_timeout_ms,
        ..DatabaseSettings::with_insecure_test_keys(format!("sqlite://{}?mode=rwc", dir.path().join(TEST_DB).display()))
    };
    let store = Store::connect(&settings).await.expect("connect");
    store.migrate().await.expect("migrate");
    for (c, name) in [("440303000000", "罗湖区"), ("440303004000", "翠竹街道"), ("440303004001", "翠竹社区")]
    {
        let c = code(c);
        store
            .upsert_division(&Division {
                level: c.level(),
                parent: c.parent(),
                code: c,
                name_zh: name.into(),
                valid_from: day(2005, 1, 1),
                valid_to: None,
            })
            .await
            .expect("division");
    }
    // An upsert, so a second store on the same file finds the same estate.
    let mut txn = store.registry_txn().await.expect("registry txn");
    let estate = txn
        .upsert_estate(&NewEstate {
            code: estate_code("LH-CZ-001"),
            kind: EstateKind::Estate,
            name: "翠竹苑".into(),
            community: code("440303004001"),
            address: "翠竹路".into(),
            management: ManagementStatus::PropertyManaged,
            onboarding: None,
            households: 10,
        })
        .await
        .expect("estate")
        .id();
    txn.commit().await.expect("commit estate");
    (store, estate)
}

fn sqlite_settings(dir: &tempfile::TempDir) -> DatabaseSettings {
    DatabaseSettings::with_insecure_test_keys(format!("sqlite://{}?mode=rwc", dir.path().join(TEST_DB).display()))
}

#[tokio::test]
async fn story_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::connect(&sqlite_settings(&dir)).await.expect("connect");
    assert_eq!(store.backend(), Backend::Sqlite);
    story(store.clone()).await;
    store.close().await.expect("close");
}

#[tokio::test]
async fn story_on_postgres() {
    let Ok(base) = std::env::var("JIAYUAN_TEST_PG_URL") else {
        eprintln!("JIAYUAN_TEST_PG_URL is not set: skipping the PostgreSQL story");
        return;
    };
    let schema = format!("jy_test_{}", uuid::Uuid::new_v4().simple());
    let admin = sea_orm::Database::connect(base.as_str()).await.expect("connect to the test database");
    admin.execute_unprepared(&format!("CREATE SCHEMA {schema}")).await.expect("create schema");
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options[search_path]={schema}");
    let outcome = tokio::spawn(async move {
        let store = Store::connect(&DatabaseSettings::with_insecure_test_keys(url)).await.expect("connect");
        assert_eq!(store.backend(), Backend::Postgres);
        story(store.clone()).await;
        store.close().await.expect("close");
    })
    .await;
    admin.execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE")).await.expect("drop schema");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test]
async fn sqlite_file_is_created_with_wal_and_a_read_only_pool() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("new.db");
    assert!(!path.exists());
    let settings = DatabaseSettings {
        url: format!("sqlite://{}?mode=rwc", path.display()),
        max_connections: 2,
        busy_timeout_ms: 1234,
        acquire_timeout_ms: 5_000,
        field_keys: Some(FieldKeys::insecure_test_keys()),
    };
    let store = Store::connect(&settings).await.expect("connect");
    assert!(path.exists());
    let pragma = |conn: &sea_orm::DatabaseConnection, name: &str| {
        let conn = conn.clone();
        let sql = format!("PRAGMA {name}");
        async move {
            let row = conn
                .query_one_raw(Statement::from_string(DbBackend::Sqlite, sql))
                .await
                .expect("pragma query")
                .expect("pragma row");
            row.try_get_by_index::<String>(0)
                .or_else(|_| row.try_get_by_index::<i64>(0).map(|v| v.to_string()))
                .expect("pragma value")
        }
    };
    assert_eq!(pragma(&store.writer, "journal_mode").await, "wal");
    assert_eq!(pragma(&store.writer, "synchronous").await, "1", "NORMAL");
    assert_eq!(pragma(&store.writer, "foreign_keys").await, "1");
    assert_eq!(pragma(&store.writer, "busy_timeout").await, "1234");
    assert_eq!(pragma(&store.reader, "query_only").await, "1");
    assert_eq!(pragma(&store.reader, "journal_mode").await, "wal");
    let write_on_reader = store.reader.execute_unprepared("CREATE TABLE t (x INTEGER)").await;
    assert!(write_on_reader.is_err(), "the read pool must refuse writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_sqlite_all_succeed() {
    const TASKS: usize = 8;
    const WRITES: i64 = 50;
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, estate) = store_with_estate(&dir, 5_000).await;

    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let first = WriteBatch {
                creates: vec![new_record("load", "case", estate, "open", vec![], 0)],
                ..WriteBatch::default()
            };
            let mine = store.write(first).await?.created[0];
            for i in 0..WRITES {
                // Read, then write based on what was read: the pattern that fails with DEFERRED
                // transactions on a multi-connection pool.
                let current = store
                    .record("load", mine)
                    .await?
                    .ok_or(StoreError::NotFound { what: "record", id: mine.to_string() })?;
                store
                    .write(WriteBatch {
                        creates: vec![new_record(
                            "load",
                            "note",
                            estate,
                            "new",
                            vec![key("n", &format!("{t}-{i}"), true)],
                            i,
                        )],
                        updates: vec![update("load", mine, current.version, "touch", "open", vec![], i)],
                        alerts: vec![new_alert(
                            "load",
                            Some(AlertTarget::InBatch(0)),
                            Some(estate),
                            &format!("load:{t}:{i}"),
                            i,
                        )],
                        audit: vec![],
                    })
                    .await?;
            }
            Ok::<RecordId, StoreError>(mine)
        }));
    }
    let mut mine = Vec::new();
    for task in tasks {
        mine.push(task.await.expect("task ran").expect("every write succeeds"));
    }
    for id in mine {
        assert_eq!(store.record("load", id).await.expect("record").map(|r| r.version), Some(1 + WRITES));
    }
    let notes = RecordFilter { kind: Some("note".into()), ..by_plugin("load") };
    assert_eq!(store.count_records(&notes).await.expect("count"), TASKS as u64 * WRITES as u64);
    let (records, keys, events, alerts) = table_counts(&store).await;
    let n = TASKS as u64 * WRITES as u64;
    assert_eq!((records, keys, events, alerts), (TASKS as u64 + n, n, TASKS as u64 + 2 * n, n));
}

#[tokio::test]
async fn a_held_sqlite_lock_gives_busy_after_retries_then_clears() {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = sqlite_settings(&dir);
    let holder = Store::connect(&settings).await.expect("connect holder");
    holder.migrate().await.expect("migrate");
    let impatient =
        Store::connect(&DatabaseSettings { busy_timeout_ms: 1, ..settings.clone() }).await.expect("connect");
    let override_row = EnablementOverride {
        item: "waste-sorting".into(),
        scope: EnablementScope::District,
        enabled: true,
        reason: "r".into(),
        changed_by: "admin".into(),
        changed_at: Timestamp(1),
    };

    // Another connection (think: a second process) holds the write lock for the whole attempt.
    let lock = holder.begin_write("hold the lock").await.expect("begin immediate");
    let blocked = impatient.set_enablement(&override_row).await;
    assert!(matches!(blocked, Err(StoreError::Busy)), "{blocked:?}");
    lock.rollback().await.expect("release the lock");

    impatient.set_enablement(&override_row).await.expect("write once the lock is free");
    assert_eq!(holder.enablement_overrides().await.expect("overrides"), vec![override_row]);
}

#[tokio::test]
async fn connect_errors_do_not_leak_the_password() {
    let settings = DatabaseSettings {
        acquire_timeout_ms: 200,
        ..DatabaseSettings::with_insecure_test_keys("postgres://jiayuan:s3cret-pw@127.0.0.1:1/nowhere")
    };
    assert!(!format!("{settings:?}").contains("s3cret-pw"));
    let err = Store::connect(&settings).await.expect_err("nothing listens on port 1");
    let text = err.to_string();
    assert!(matches!(err, StoreError::Connect { .. }), "{text}");
    assert!(!text.contains("s3cret-pw"), "{text}");
    assert!(text.contains("postgres://jiayuan:***@127.0.0.1:1/nowhere"), "{text}");
    let unsupported = Store::connect(&DatabaseSettings::new("mysql://u:pw@h/db")).await.expect_err("unsupported");
    assert!(!unsupported.to_string().contains(":pw@"), "{unsupported}");
}

/// The host runs store calls inside axum handlers and spawned tasks: every future must be `Send`.
/// (A compile-time check; the function only needs to type-check.)
#[allow(dead_code, clippy::let_underscore_future)]
fn store_futures_are_send(store: &Store, batch: WriteBatch, filter: &RecordFilter) {
    fn send<T: Send>(_: &T) {}
    send(&Store::connect(&DatabaseSettings::with_insecure_test_keys("sqlite://x")));
    send(&store.migrate());
    send(&store.ping());
    send(&store.write(batch));
    send(&store.record("p", RecordId(1)));
    send(&store.records(filter));
    send(&store.count_records(filter));
    send(&store.events("p", RecordId(1)));
    send(&store.alerts(&AlertFilter::default()));
    send(&store.estates());
    send(&store.firm_serving(EstateId(1), day(2026, 1, 1)));
    send(&store.enablement_overrides());
    send(&store.clear_enablement("i", &EnablementScope::District, "admin", Timestamp(0)));
}

// --- Registry rules (upserts by natural key, inside one RegistryTxn) ---------------------------

/// A firm with a valid credit code derived from `n`.
fn test_firm(n: u32, name: &str) -> NewFirm {
    NewFirm {
        name: name.into(),
        credit_code: valid_credit_code(&format!("91440303MA5G{n:05}")),
        credit_code_override: None,
        kind: FirmKind::PropertyFirm,
        legal_representative: None,
        contact_phone: None,
    }
}

/// A building with one house in `estate`, returning the house.
async fn one_house(txn: &mut RegistryTxn, estate: EstateId, room: &str) -> jiayuan_domain::HouseId {
    let b = txn
        .upsert_building(&NewBuilding {
            estate_id: Some(estate),
            name: "1栋".into(),
            floors: 6,
            height_m: 18.0,
            elevator: false,
        })
        .await
        .expect("building")
        .id();
    txn.upsert_house(&NewHouse {
        building_id: b,
        room: room.into(),
        area_m2: 70.0,
        use_: HouseUse::SelfOccupied,
        address_code: None,
    })
    .await
    .expect("house")
    .id()
}

fn test_person(number: &str, phone: Option<&str>) -> NewPerson {
    NewPerson {
        name: "测试人".into(),
        doc: IdentityDoc { kind: DocKind::ResidentId, number: number.into() },
        sex: Some(Sex::Male),
        birth_date: None,
        hukou: Hukou::Shenzhen,
        phone: phone.map(str::to_owned),
    }
}

#[tokio::test]
async fn re_upserting_the_same_estate_is_unchanged_and_a_new_value_is_an_update() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, estate) = store_with_estate(&dir, 5_000).await;
    let same = NewEstate {
        code: estate_code("lh-cz-001"),
        kind: EstateKind::Estate,
        name: "翠竹苑".into(),
        community: code("440303004001"),
        address: "翠竹路".into(),
        management: ManagementStatus::PropertyManaged,
        onboarding: None,
        households: 10,
    };
    let mut txn = store.registry_txn().await.expect("txn");
    assert_eq!(txn.upsert_estate(&same).await.expect("upsert"), Change::Unchanged(estate));
    let more = NewEstate { households: 12, address: "翠竹路1号".into(), ..same };
    assert_eq!(
        txn.upsert_estate(&more).await.expect("upsert"),
        Change::Updated { id: estate, fields: vec!["address", "households"] }
    );
    txn.commit().await.expect("commit");
    assert_eq!(store.estate(estate).await.expect("estate").map(|e| e.households), Some(12));
}

#[tokio::test]
async fn overlapping_assignments_of_different_firms_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, estate) = store_with_estate(&dir, 5_000).await;
    let mut txn = store.registry_txn().await.expect("txn");
    let fa = txn.upsert_firm(&test_firm(1, "甲物业")).await.expect("firm a").id();
    let fb = txn.upsert_firm(&test_firm(2, "乙物业")).await.expect("firm b").id();
    let first = NewAssignment { firm_id: fa, estate_id: estate, from: day(2024, 1, 1), to: None, contract_ref: None };
    assert!(matches!(txn.put_assignment(&first).await, Ok(Change::Inserted(_))));
    assert!(matches!(txn.put_assignment(&first).await, Ok(Change::Unchanged(_))));
    let other = NewAssignment { firm_id: fb, from: day(2025, 1, 1), ..first.clone() };
    let refused = txn.put_assignment(&other).await;
    assert!(matches!(refused, Err(StoreError::Rule { rule: "estate_already_served", .. })), "{refused:?}");
    // Ending the first one the day before makes room for the second.
    let ended = NewAssignment { to: Some(day(2024, 12, 31)), ..first };
    assert!(matches!(txn.put_assignment(&ended).await, Ok(Change::Updated { .. })));
    assert!(matches!(txn.put_assignment(&other).await, Ok(Change::Inserted(_))));
    txn.commit().await.expect("commit");
    assert_eq!(store.firm_serving(estate, day(2025, 6, 1)).await.expect("serving"), Some(fb));
}

#[tokio::test]
async fn a_later_open_primary_occupancy_ends_the_first_the_day_before() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, estate) = store_with_estate(&dir, 5_000).await;
    let mut txn = store.registry_txn().await.expect("txn");
    let old_home = one_house(&mut txn, estate, "101").await;
    let new_home = one_house(&mut txn, estate, "202").await;
    let p = txn.upsert_person(&test_person("440303199001010014", None)).await.expect("person").id();
    let occ = |house, from| NewOccupancy {
        person_id: p,
        house_id: house,
        from,
        to: None,
        relation: Relation::Owner,
        primary: true,
        reported_at: None,
    };
    let first = txn.put_occupancy(&occ(old_home, day(2020, 1, 1))).await.expect("first").id();
    let second = txn.put_occupancy(&occ(new_home, day(2024, 3, 1))).await.expect("second").id();
    // Starting on or before the first one's start cannot end it.
    let refused = txn.put_occupancy(&occ(old_home, day(2019, 6, 1))).await;
    assert!(matches!(refused, Err(StoreError::Rule { field: "from", rule: "primary_overlaps" })), "{refused:?}");
    txn.commit().await.expect("commit");
    let first = store.occupancy(first).await.expect("read").expect("first kept");
    assert_eq!(first.to, Some(day(2024, 2, 29)));
    assert_eq!(store.occupancy(second).await.expect("read").and_then(|o| o.to), None);
    assert_eq!(store.primary_home(p, day(2023, 1, 1)).await.expect("home"), Some(old_home));
    assert_eq!(store.primary_home(p, day(2024, 3, 1)).await.expect("home"), Some(new_home));
    assert_eq!(store.person(p).await.expect("person").and_then(|p| p.house_id), Some(new_home));
}

#[tokio::test]
async fn upserting_persons_with_a_changed_phone_updates_the_phone_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, _) = store_with_estate(&dir, 5_000).await;
    let a = test_person("440303199001010014", Some("13912345678"));
    let b = test_person("44030319900101003X", None);
    let mut txn = store.registry_txn().await.expect("txn");
    let first = txn.upsert_persons(&[a.clone(), b.clone()]).await.expect("insert");
    assert!(first.iter().all(|c| matches!(c, Change::Inserted(_))), "{first:?}");
    let (pa, pb) = (first[0].id(), first[1].id());
    let moved = NewPerson { phone: Some("+86 139-8765-4321".into()), ..a.clone() };
    let second = txn.upsert_persons(&[moved, b.clone()]).await.expect("update");
    assert_eq!(second, vec![Change::Updated { id: pa, fields: vec!["phone"] }, Change::Unchanged(pb)]);
    // The same phone in another spelling is no change.
    let respelt = NewPerson { phone: Some("139 8765 4321".into()), ..a };
    assert_eq!(txn.upsert_persons(&[respelt]).await.expect("same"), vec![Change::Unchanged(pa)]);
    let twice = txn.upsert_persons(&[b.clone(), b]).await;
    assert!(matches!(twice, Err(StoreError::Rule { rule: "duplicate_in_batch", .. })), "{twice:?}");
    txn.commit().await.expect("commit");
    assert_eq!(store.persons_by_phone("13987654321").await.expect("by phone").len(), 1);
}

#[tokio::test]
async fn division_versions_of_one_code_may_not_overlap() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, _) = store_with_estate(&dir, 5_000).await;
    let c = code("440303004002");
    let version = |name: &str, from: Date, to: Option<Date>| Division {
        code: c.clone(),
        level: c.level(),
        parent: c.parent(),
        name_zh: name.into(),
        valid_from: from,
        valid_to: to,
    };
    let old = version("旧名社区", day(2005, 1, 1), Some(day(2019, 12, 31)));
    let new = version("新名社区", day(2020, 1, 1), None);
    let mut txn = store.registry_txn().await.expect("txn");
    assert_eq!(txn.upsert_division(&old).await.expect("old"), Change::Inserted(c.clone()));
    assert_eq!(txn.upsert_division(&new).await.expect("new"), Change::Inserted(c.clone()));
    assert_eq!(txn.upsert_division(&new).await.expect("again"), Change::Unchanged(c.clone()));
    let overlapping = version("重叠", day(2019, 6, 1), Some(day(2020, 6, 30)));
    let refused = txn.upsert_division(&overlapping).await;
    assert!(matches!(refused, Err(StoreError::Rule { field: "valid_from", rule: "versions_overlap" })), "{refused:?}");
    txn.commit().await.expect("commit");
    let versions: Vec<Division> =
        store.division_versions().await.expect("versions").into_iter().filter(|d| d.code == c).collect();
    assert_eq!(versions, vec![old, new.clone()]);
    let summary = store.divisions().await.expect("divisions").into_iter().find(|d| d.code == c);
    assert_eq!(
        summary.map(|d| (d.name_zh, d.valid_from, d.valid_to)),
        Some(("新名社区".into(), day(2005, 1, 1), None))
    );
}
