//! Repositories of the shared registry: divisions, grid cells, estates, firms, service
//! assignments, buildings, houses and persons.
//!
//! Inserts take `New*` structs — the domain struct without its id, which the database assigns —
//! and return the new id; reads return the domain types.
//!
//! A person's identity-document number and phone are encrypted with the store's
//! [`FieldKeys`](crate::FieldKeys) before they reach the database, and found again through
//! their blind indexes; callers only ever see plaintext [`Person`] values.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TryInsertResult,
};

use jiayuan_domain::{
    AssignmentId, Building, BuildingId, Date, Division, DivisionCode, DocKind, Estate, EstateId, FirmId, FirmKind,
    GridCell, House, HouseId, HouseUse, Hukou, IdentityDoc, ManagementStatus, OnboardingStage, Person, PersonId, Phone,
    PropertyFirm, Sensitivity, ServiceAssignment, Sex, normalise_doc_number,
};

use crate::convert::{
    enum_text, narrow, parse_code, parse_code_opt, parse_date, parse_date_opt, parse_enum, parse_enum_opt,
};
use crate::crypto::FieldKeys;
use crate::entity::{assignment, building, division, estate, firm, grid_cell, house, person};
use crate::error::{StoreError, db};
use crate::store::{Store, finish};

/// Associated data and blind-index domain of a person's document number.
const DOC_NUMBER: &str = "persons.doc_number";
/// Associated data and blind-index domain of a person's phone.
const PHONE: &str = "persons.phone";

/// The form of a phone number its blind index is computed over: the [`Phone`] normal form when
/// it parses, the trimmed text otherwise (so a stored value is always found by itself).
fn normalise_phone(phone: &str) -> String {
    Phone::parse(phone).map(|p| p.as_str().to_owned()).unwrap_or_else(|_| phone.trim().to_owned())
}

/// A 小区 estate to register ([`Estate`] without its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEstate {
    /// Name, e.g. 翠竹苑.
    pub name: String,
    /// The 社区 community it lies in (must be a registered division).
    pub community: DivisionCode,
    /// Standard address text.
    pub address: String,
    /// How it is managed.
    pub management: ManagementStatus,
    /// Onboarding stage, for estates that had no management.
    pub onboarding: Option<OnboardingStage>,
    /// Number of households.
    pub households: u32,
}

/// A 物业服务企业 property firm to register ([`PropertyFirm`] without its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFirm {
    /// Registered name.
    pub name: String,
    /// 统一社会信用代码 unified social credit code, as registered.
    pub credit_code: String,
    /// Why a non-conforming credit code was accepted, if it was.
    pub credit_code_override: Option<String>,
    /// Ordinary firm or fallback state operator.
    pub kind: FirmKind,
    /// 法定代表人 legal representative.
    pub legal_representative: Option<String>,
    /// Contact phone, normalised.
    pub contact_phone: Option<String>,
}

/// A 服务委托 service assignment to register ([`ServiceAssignment`] without its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAssignment {
    /// The firm.
    pub firm_id: FirmId,
    /// The estate.
    pub estate_id: EstateId,
    /// First day of service.
    pub from: Date,
    /// Last day of service (`None`: open-ended).
    pub to: Option<Date>,
    /// Reference of the delegation contract, if filed.
    pub contract_ref: Option<String>,
}

/// A 楼栋 building to register ([`Building`] without its id).
#[derive(Debug, Clone, PartialEq)]
pub struct NewBuilding {
    /// The estate it belongs to (`None` outside estates).
    pub estate_id: Option<EstateId>,
    /// Name or number, e.g. 3栋.
    pub name: String,
    /// Floors above ground.
    pub floors: u16,
    /// Height in metres.
    pub height_m: f32,
}

/// A 房屋 house to register ([`House`] without its id and without its estate: the store copies
/// the estate from the building, so the two can never disagree).
#[derive(Debug, Clone, PartialEq)]
pub struct NewHouse {
    /// The building (must exist).
    pub building_id: BuildingId,
    /// Room number, e.g. 1203.
    pub room: String,
    /// Floor area in square metres.
    pub area_m2: f32,
    /// Use.
    pub use_: HouseUse,
}

/// A person to register ([`Person`] without its id). Persons are unique by identity document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPerson {
    /// Name.
    pub name: String,
    /// Identity document (kind + normalised number); unique in the registry.
    pub doc: IdentityDoc,
    /// Sex.
    pub sex: Option<Sex>,
    /// Birth date.
    pub birth_date: Option<Date>,
    /// Household registration.
    pub hukou: Hukou,
    /// Mobile phone, normalised.
    pub phone: Option<String>,
    /// Where the person lives, if known (must exist).
    pub house_id: Option<HouseId>,
}

impl Store {
    /// Inserts a division or replaces the one with the same code.
    pub async fn upsert_division(&self, d: &Division) -> Result<(), StoreError> {
        const OP: &str = "upsert division";
        let model = division::ActiveModel {
            code: Set(d.code.as_str().to_owned()),
            level: Set(enum_text("division.level", &d.level)?),
            name_zh: Set(d.name_zh.clone()),
            parent_code: Set(d.parent.as_ref().map(|p| p.as_str().to_owned())),
            valid_from: Set(d.valid_from.to_string()),
            valid_to: Set(d.valid_to.map(|t| t.to_string())),
        };
        let txn = self.begin_write(OP).await?;
        let result = division::Entity::insert(model)
            .on_conflict(
                OnConflict::column(division::Column::Code)
                    .update_columns([
                        division::Column::Level,
                        division::Column::NameZh,
                        division::Column::ParentCode,
                        division::Column::ValidFrom,
                        division::Column::ValidTo,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .map(|_| ())
            .map_err(db(OP));
        finish(txn, result, OP).await
    }

    /// Every division, ordered by code.
    pub async fn divisions(&self) -> Result<Vec<Division>, StoreError> {
        let rows = division::Entity::find()
            .order_by_asc(division::Column::Code)
            .all(&self.reader)
            .await
            .map_err(db("list divisions"))?;
        rows.into_iter().map(division_from_row).collect()
    }

    /// Registers a grid cell. A second cell with the same code is [`StoreError::UniqueKey`];
    /// an unknown community is [`StoreError::MissingReference`].
    pub async fn insert_grid_cell(&self, g: &GridCell) -> Result<(), StoreError> {
        const OP: &str = "insert grid cell";
        let model = grid_cell::ActiveModel {
            code: Set(g.code.clone()),
            kind: Set(enum_text("grid_cell.kind", &g.kind)?),
            community_code: Set(g.community.as_str().to_owned()),
            name: Set(g.name.clone()),
            valid_from: Set(g.valid_from.to_string()),
            valid_to: Set(g.valid_to.map(|t| t.to_string())),
        };
        let txn = self.begin_write(OP).await?;
        let result = match grid_cell::Entity::insert(model)
            .on_conflict_do_nothing_on([grid_cell::Column::Code])
            .exec_without_returning(&txn)
            .await
        {
            Ok(TryInsertResult::Inserted(n)) if n > 0 => Ok(()),
            Ok(_) => Err(StoreError::UniqueKey { field: "grid_cells.code".into(), value: g.code.clone() }),
            Err(e) => Err(db(OP)(e)),
        };
        finish(txn, result, OP).await
    }

    /// Every grid cell, ordered by code.
    pub async fn grid_cells(&self) -> Result<Vec<GridCell>, StoreError> {
        let rows = grid_cell::Entity::find()
            .order_by_asc(grid_cell::Column::Code)
            .all(&self.reader)
            .await
            .map_err(db("list grid cells"))?;
        rows.into_iter().map(grid_cell_from_row).collect()
    }

    /// Registers an estate and returns its id.
    pub async fn insert_estate(&self, e: &NewEstate) -> Result<EstateId, StoreError> {
        const OP: &str = "insert estate";
        let model = estate::ActiveModel {
            id: NotSet,
            name: Set(e.name.clone()),
            community_code: Set(e.community.as_str().to_owned()),
            address: Set(e.address.clone()),
            management: Set(enum_text("estate.management", &e.management)?),
            onboarding: Set(e.onboarding.as_ref().map(|o| enum_text("estate.onboarding", o)).transpose()?),
            households: Set(i64::from(e.households)),
        };
        let txn = self.begin_write(OP).await?;
        let result = estate::Entity::insert(model).exec(&txn).await.map(|r| EstateId(r.last_insert_id)).map_err(db(OP));
        finish(txn, result, OP).await
    }

    /// One estate.
    pub async fn estate(&self, id: EstateId) -> Result<Option<Estate>, StoreError> {
        let row = estate::Entity::find_by_id(id.0).one(&self.reader).await.map_err(db("read estate"))?;
        row.map(estate_from_row).transpose()
    }

    /// Every estate, ordered by id.
    pub async fn estates(&self) -> Result<Vec<Estate>, StoreError> {
        let rows = estate::Entity::find()
            .order_by_asc(estate::Column::Id)
            .all(&self.reader)
            .await
            .map_err(db("list estates"))?;
        rows.into_iter().map(estate_from_row).collect()
    }

    /// Registers a property firm and returns its id.
    pub async fn insert_firm(&self, f: &NewFirm) -> Result<FirmId, StoreError> {
        const OP: &str = "insert firm";
        let model = firm::ActiveModel {
            id: NotSet,
            name: Set(f.name.clone()),
            credit_code: Set(f.credit_code.clone()),
            credit_code_override: Set(f.credit_code_override.clone()),
            kind: Set(enum_text("firm.kind", &f.kind)?),
            legal_representative: Set(f.legal_representative.clone()),
            contact_phone: Set(f.contact_phone.clone()),
        };
        let txn = self.begin_write(OP).await?;
        let result = firm::Entity::insert(model).exec(&txn).await.map(|r| FirmId(r.last_insert_id)).map_err(db(OP));
        finish(txn, result, OP).await
    }

    /// One property firm.
    pub async fn firm(&self, id: FirmId) -> Result<Option<PropertyFirm>, StoreError> {
        let row = firm::Entity::find_by_id(id.0).one(&self.reader).await.map_err(db("read firm"))?;
        row.map(firm_from_row).transpose()
    }

    /// Every property firm, ordered by id.
    pub async fn firms(&self) -> Result<Vec<PropertyFirm>, StoreError> {
        let rows =
            firm::Entity::find().order_by_asc(firm::Column::Id).all(&self.reader).await.map_err(db("list firms"))?;
        rows.into_iter().map(firm_from_row).collect()
    }

    /// Registers a service assignment and returns its id.
    pub async fn insert_assignment(&self, a: &NewAssignment) -> Result<AssignmentId, StoreError> {
        const OP: &str = "insert service assignment";
        let model = assignment::ActiveModel {
            id: NotSet,
            firm_id: Set(a.firm_id.0),
            estate_id: Set(a.estate_id.0),
            from_date: Set(a.from.to_string()),
            to_date: Set(a.to.map(|t| t.to_string())),
            contract_ref: Set(a.contract_ref.clone()),
        };
        let txn = self.begin_write(OP).await?;
        let result =
            assignment::Entity::insert(model).exec(&txn).await.map(|r| AssignmentId(r.last_insert_id)).map_err(db(OP));
        finish(txn, result, OP).await
    }

    /// The service assignments of an estate, oldest first.
    pub async fn assignments_of_estate(&self, estate: EstateId) -> Result<Vec<ServiceAssignment>, StoreError> {
        let rows = assignment::Entity::find()
            .filter(assignment::Column::EstateId.eq(estate.0))
            .order_by_asc(assignment::Column::FromDate)
            .order_by_asc(assignment::Column::Id)
            .all(&self.reader)
            .await
            .map_err(db("list service assignments"))?;
        rows.into_iter().map(assignment_from_row).collect()
    }

    /// The firm serving `estate` on day `on`: the assignment covering that day that started
    /// last (ties: the one registered last).
    pub async fn firm_serving(&self, estate: EstateId, on: Date) -> Result<Option<FirmId>, StoreError> {
        let day = on.to_string();
        let firm = assignment::Entity::find()
            .select_only()
            .column(assignment::Column::FirmId)
            .filter(assignment::Column::EstateId.eq(estate.0))
            .filter(assignment::Column::FromDate.lte(day.clone()))
            .filter(Condition::any().add(assignment::Column::ToDate.is_null()).add(assignment::Column::ToDate.gte(day)))
            .order_by_desc(assignment::Column::FromDate)
            .order_by_desc(assignment::Column::Id)
            .into_tuple::<i64>()
            .one(&self.reader)
            .await
            .map_err(db("find serving firm"))?;
        Ok(firm.map(FirmId))
    }

    /// The firm serving each estate on day `on` (the same rule as [`Store::firm_serving`]), in one
    /// query: estates without a firm that day are absent.
    pub async fn serving_firms(&self, on: Date) -> Result<std::collections::HashMap<EstateId, FirmId>, StoreError> {
        let day = on.to_string();
        let rows: Vec<(i64, i64)> = assignment::Entity::find()
            .select_only()
            .column(assignment::Column::EstateId)
            .column(assignment::Column::FirmId)
            .filter(assignment::Column::FromDate.lte(day.clone()))
            .filter(Condition::any().add(assignment::Column::ToDate.is_null()).add(assignment::Column::ToDate.gte(day)))
            .order_by_asc(assignment::Column::EstateId)
            .order_by_desc(assignment::Column::FromDate)
            .order_by_desc(assignment::Column::Id)
            .into_tuple()
            .all(&self.reader)
            .await
            .map_err(db("find serving firms"))?;
        let mut serving = std::collections::HashMap::new();
        for (estate, firm) in rows {
            serving.entry(EstateId(estate)).or_insert(FirmId(firm));
        }
        Ok(serving)
    }

    /// Registers a building and returns its id.
    pub async fn insert_building(&self, b: &NewBuilding) -> Result<BuildingId, StoreError> {
        const OP: &str = "insert building";
        let model = building::ActiveModel {
            id: NotSet,
            estate_id: Set(b.estate_id.map(|e| e.0)),
            name: Set(b.name.clone()),
            floors: Set(i32::from(b.floors)),
            height_m: Set(f64::from(b.height_m)),
        };
        let txn = self.begin_write(OP).await?;
        let result =
            building::Entity::insert(model).exec(&txn).await.map(|r| BuildingId(r.last_insert_id)).map_err(db(OP));
        finish(txn, result, OP).await
    }

    /// One building.
    pub async fn building(&self, id: BuildingId) -> Result<Option<Building>, StoreError> {
        let row = building::Entity::find_by_id(id.0).one(&self.reader).await.map_err(db("read building"))?;
        row.map(building_from_row).transpose()
    }

    /// Registers a house and returns its id. Its estate is the building's estate; an unknown
    /// building is [`StoreError::NotFound`].
    pub async fn insert_house(&self, h: &NewHouse) -> Result<HouseId, StoreError> {
        const OP: &str = "insert house";
        let use_text = enum_text("house.use", &h.use_)?;
        let txn = self.begin_write(OP).await?;
        let result = insert_house_in(&txn, h, use_text).await;
        finish(txn, result, OP).await
    }

    /// One house.
    pub async fn house(&self, id: HouseId) -> Result<Option<House>, StoreError> {
        let row = house::Entity::find_by_id(id.0).one(&self.reader).await.map_err(db("read house"))?;
        row.map(house_from_row).transpose()
    }

    /// The houses of an estate, ordered by id.
    pub async fn houses_of_estate(&self, estate: EstateId) -> Result<Vec<House>, StoreError> {
        let rows = house::Entity::find()
            .filter(house::Column::EstateId.eq(estate.0))
            .order_by_asc(house::Column::Id)
            .all(&self.reader)
            .await
            .map_err(db("list houses"))?;
        rows.into_iter().map(house_from_row).collect()
    }

    /// Registers a person and returns the id. A person with the same document (kind + number,
    /// compared in [`normalise_doc_number`] form) already registered is
    /// [`StoreError::UniqueKey`] with field `persons.doc` and the number masked.
    ///
    /// The document number and the phone are stored encrypted, with blind indexes.
    ///
    /// This is the import and seeding path; a person registered by someone (the API) goes
    /// through [`Store::register_person`], which is audited.
    pub async fn insert_person(&self, p: &NewPerson) -> Result<PersonId, StoreError> {
        self.insert_person_audited(p, None).await
    }

    /// Registers a person like [`Store::insert_person`] and appends a `person.create` audit event
    /// by `actor` in the same transaction (ids and the document kind only, never the person's data).
    pub async fn register_person(
        &self,
        p: &NewPerson,
        actor: &str,
        at: jiayuan_domain::Timestamp,
    ) -> Result<PersonId, StoreError> {
        self.insert_person_audited(p, Some((actor, at))).await
    }

    async fn insert_person_audited(
        &self,
        p: &NewPerson,
        audit: Option<(&str, jiayuan_domain::Timestamp)>,
    ) -> Result<PersonId, StoreError> {
        const OP: &str = "insert person";
        let keys = &self.keys;
        let model = person::ActiveModel {
            id: NotSet,
            name: Set(p.name.clone()),
            doc_kind: Set(enum_text("person.doc_kind", &p.doc.kind)?),
            doc_number_enc: Set(keys.encrypt(DOC_NUMBER, &p.doc.number)?),
            doc_bidx: Set(keys.blind_index(DOC_NUMBER, &normalise_doc_number(&p.doc.number))),
            sex: Set(p.sex.as_ref().map(|s| enum_text("person.sex", s)).transpose()?),
            birth_date: Set(p.birth_date.map(|d| d.to_string())),
            hukou: Set(enum_text("person.hukou", &p.hukou)?),
            phone_enc: Set(p.phone.as_deref().map(|phone| keys.encrypt(PHONE, phone)).transpose()?),
            phone_bidx: Set(p.phone.as_deref().map(|phone| keys.blind_index(PHONE, &normalise_phone(phone)))),
            house_id: Set(p.house_id.map(|h| h.0)),
        };
        let txn = self.begin_write(OP).await?;
        let result = match person::Entity::insert(model)
            .on_conflict_do_nothing_on([person::Column::DocKind, person::Column::DocBidx])
            .exec(&txn)
            .await
        {
            Ok(TryInsertResult::Inserted(r)) => Ok(PersonId(r.last_insert_id)),
            Ok(_) => Err(StoreError::UniqueKey {
                field: "persons.doc".into(),
                value: jiayuan_domain::mask(&p.doc.number, Sensitivity::Personal),
            }),
            Err(e) => Err(db(OP)(e)),
        };
        let result = match (result, audit) {
            (Ok(id), Some((actor, at))) => {
                let event = crate::audit::NewAudit {
                    at,
                    actor: actor.to_owned(),
                    action: "person.create".into(),
                    target: crate::audit::AuditTarget::Object(format!("person/{id}")),
                    estate_id: None,
                    detail_json: serde_json::json!({
                        "doc_kind": enum_text("person.doc_kind", &p.doc.kind)?,
                        "house_id": p.house_id.map(|h| h.0),
                    })
                    .to_string(),
                };
                let batch = crate::records::WriteBatch { audit: vec![event], ..Default::default() };
                crate::audit::append(&txn, &batch, &[]).await.map(|()| id)
            }
            (result, _) => result,
        };
        finish(txn, result, OP).await
    }

    /// One person.
    pub async fn person(&self, id: PersonId) -> Result<Option<Person>, StoreError> {
        let row = person::Entity::find_by_id(id.0).one(&self.reader).await.map_err(db("read person"))?;
        row.map(|r| person_from_row(&self.keys, r)).transpose()
    }

    /// The person registered with this document, if any. `number` is compared in
    /// [`normalise_doc_number`] form (whitespace removed, ASCII letters upper-cased), through
    /// the document's blind index.
    pub async fn person_by_doc(&self, kind: DocKind, number: &str) -> Result<Option<Person>, StoreError> {
        let row = person::Entity::find()
            .filter(person::Column::DocBidx.eq(self.keys.blind_index(DOC_NUMBER, &normalise_doc_number(number))))
            .filter(person::Column::DocKind.eq(enum_text("person.doc_kind", &kind)?))
            .one(&self.reader)
            .await
            .map_err(db("find person by document"))?;
        row.map(|r| person_from_row(&self.keys, r)).transpose()
    }

    /// The persons registered with this phone number, ordered by id. `phone` is compared in
    /// its [`Phone`] normal form (`+86 139-1234-5678` finds `13912345678`), through the phone's
    /// blind index.
    pub async fn persons_by_phone(&self, phone: &str) -> Result<Vec<Person>, StoreError> {
        let rows = person::Entity::find()
            .filter(person::Column::PhoneBidx.eq(self.keys.blind_index(PHONE, &normalise_phone(phone))))
            .order_by_asc(person::Column::Id)
            .all(&self.reader)
            .await
            .map_err(db("find persons by phone"))?;
        rows.into_iter().map(|r| person_from_row(&self.keys, r)).collect()
    }
}

async fn insert_house_in(txn: &DatabaseTransaction, h: &NewHouse, use_text: String) -> Result<HouseId, StoreError> {
    const OP: &str = "insert house";
    let estate_of_building: Option<Option<i64>> = building::Entity::find_by_id(h.building_id.0)
        .select_only()
        .column(building::Column::EstateId)
        .into_tuple()
        .one(txn)
        .await
        .map_err(db(OP))?;
    let Some(estate_id) = estate_of_building else {
        return Err(StoreError::NotFound { what: "building", id: h.building_id.to_string() });
    };
    let model = house::ActiveModel {
        id: NotSet,
        building_id: Set(h.building_id.0),
        estate_id: Set(estate_id),
        room: Set(h.room.clone()),
        area_m2: Set(f64::from(h.area_m2)),
        house_use: Set(use_text),
    };
    house::Entity::insert(model).exec(txn).await.map(|r| HouseId(r.last_insert_id)).map_err(db(OP))
}

fn division_from_row(r: division::Model) -> Result<Division, StoreError> {
    Ok(Division {
        code: parse_code("division.code", &r.code)?,
        level: parse_enum("division.level", &r.level)?,
        name_zh: r.name_zh,
        parent: parse_code_opt("division.parent", r.parent_code.as_deref())?,
        valid_from: parse_date("division.valid_from", &r.valid_from)?,
        valid_to: parse_date_opt("division.valid_to", r.valid_to.as_deref())?,
    })
}

fn grid_cell_from_row(r: grid_cell::Model) -> Result<GridCell, StoreError> {
    Ok(GridCell {
        code: r.code,
        kind: parse_enum("grid_cell.kind", &r.kind)?,
        community: parse_code("grid_cell.community", &r.community_code)?,
        name: r.name,
        valid_from: parse_date("grid_cell.valid_from", &r.valid_from)?,
        valid_to: parse_date_opt("grid_cell.valid_to", r.valid_to.as_deref())?,
    })
}

fn estate_from_row(r: estate::Model) -> Result<Estate, StoreError> {
    Ok(Estate {
        id: EstateId(r.id),
        name: r.name,
        community: parse_code("estate.community", &r.community_code)?,
        address: r.address,
        management: parse_enum("estate.management", &r.management)?,
        onboarding: parse_enum_opt("estate.onboarding", r.onboarding.as_deref())?,
        households: narrow("estate.households", r.households)?,
    })
}

fn firm_from_row(r: firm::Model) -> Result<PropertyFirm, StoreError> {
    Ok(PropertyFirm {
        id: FirmId(r.id),
        name: r.name,
        credit_code: r.credit_code,
        credit_code_override: r.credit_code_override,
        kind: parse_enum("firm.kind", &r.kind)?,
        legal_representative: r.legal_representative,
        contact_phone: r.contact_phone,
    })
}

fn assignment_from_row(r: assignment::Model) -> Result<ServiceAssignment, StoreError> {
    Ok(ServiceAssignment {
        id: AssignmentId(r.id),
        firm_id: FirmId(r.firm_id),
        estate_id: EstateId(r.estate_id),
        from: parse_date("service_assignment.from", &r.from_date)?,
        to: parse_date_opt("service_assignment.to", r.to_date.as_deref())?,
        contract_ref: r.contract_ref,
    })
}

fn building_from_row(r: building::Model) -> Result<Building, StoreError> {
    Ok(Building {
        id: BuildingId(r.id),
        estate_id: r.estate_id.map(EstateId),
        name: r.name,
        floors: narrow("building.floors", i64::from(r.floors))?,
        // Stored as a double from an f32, so the narrowing is exact.
        height_m: r.height_m as f32,
    })
}

fn house_from_row(r: house::Model) -> Result<House, StoreError> {
    Ok(House {
        id: HouseId(r.id),
        building_id: BuildingId(r.building_id),
        estate_id: r.estate_id.map(EstateId),
        room: r.room,
        // Stored as a double from an f32, so the narrowing is exact.
        area_m2: r.area_m2 as f32,
        use_: parse_enum("house.use", &r.house_use)?,
    })
}

/// A person row with its encrypted columns decrypted.
fn person_from_row(keys: &FieldKeys, r: person::Model) -> Result<Person, StoreError> {
    Ok(Person {
        id: PersonId(r.id),
        name: r.name,
        doc: IdentityDoc {
            kind: parse_enum("person.doc_kind", &r.doc_kind)?,
            number: keys.decrypt(DOC_NUMBER, &r.doc_number_enc)?,
        },
        sex: parse_enum_opt("person.sex", r.sex.as_deref())?,
        birth_date: parse_date_opt("person.birth_date", r.birth_date.as_deref())?,
        hukou: parse_enum("person.hukou", &r.hukou)?,
        phone: r.phone_enc.as_deref().map(|phone| keys.decrypt(PHONE, phone)).transpose()?,
        house_id: r.house_id.map(HouseId),
    })
}
