//! Repositories of the shared registry: divisions, grid cells, estates, firms, service
//! assignments, buildings, houses and persons.
//!
//! Inserts take `New*` structs — the domain struct without its id, which the database assigns —
//! and return the new id; reads return the domain types.
//!
//! A person's identity-document number and phone are encrypted with the store's
//! [`FieldKeys`](crate::FieldKeys) before they reach the database, and found again through
//! their blind indexes; callers only ever see plaintext [`Person`] values.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use jiayuan_domain::{
    AddressCode, AssignmentId, Building, BuildingId, Date, Division, DivisionCode, DocKind, Estate, EstateCode,
    EstateId, EstateKind, FirmId, FirmKind, GridCell, House, HouseId, HouseUse, Hukou, IdentityDoc, Lease, LeaseId,
    ManagementStatus, Occupancy, OccupancyId, OnboardingStage, Person, PersonId, Phone, PropertyFirm, Relation,
    ServiceAssignment, Sex, normalise_doc_number,
};

use crate::convert::{
    enum_text, narrow, parse_code, parse_code_opt, parse_date, parse_date_opt, parse_enum, parse_enum_opt,
};
use crate::crypto::FieldKeys;
use crate::entity::{
    assignment, building, division, division_version, estate, firm, grid_cell, house, lease, occupancy, person,
};
use crate::error::{StoreError, db};
use crate::store::Store;

/// Associated data and blind-index domain of a person's document number.
pub(crate) const DOC_NUMBER: &str = "persons.doc_number";
/// Associated data and blind-index domain of a person's phone.
pub(crate) const PHONE: &str = "persons.phone";

/// The form of a phone number its blind index is computed over: the [`Phone`] normal form when
/// it parses, the trimmed text otherwise (so a stored value is always found by itself).
pub(crate) fn normalise_phone(phone: &str) -> String {
    Phone::parse(phone).map(|p| p.as_str().to_owned()).unwrap_or_else(|_| phone.trim().to_owned())
}

/// A 小区 estate to register ([`Estate`] without its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEstate {
    /// The stable estate code (natural key).
    pub code: EstateCode,
    /// Estate, urban village or building group.
    pub kind: EstateKind,
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
    /// Whether it has an elevator.
    pub elevator: bool,
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
    /// The 25-digit standard-address code, when known (unique).
    pub address_code: Option<AddressCode>,
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
}

/// A 居住关系 occupancy to register ([`Occupancy`] without its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOccupancy {
    /// Who.
    pub person_id: PersonId,
    /// Where.
    pub house_id: HouseId,
    /// First day.
    pub from: Date,
    /// Last day (`None`: still living there).
    pub to: Option<Date>,
    /// How the person relates to the house.
    pub relation: Relation,
    /// Whether this is the person's primary residence.
    pub primary: bool,
    /// When it was reported, if it was.
    pub reported_at: Option<jiayuan_domain::Timestamp>,
}

/// A 租赁 lease to register ([`Lease`] without its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLease {
    /// The house rented out.
    pub house_id: HouseId,
    /// The landlord (申报义务人).
    pub landlord_id: PersonId,
    /// First day.
    pub from: Date,
    /// Last day (`None`: open-ended).
    pub to: Option<Date>,
    /// Contract or filing reference.
    pub contract_ref: Option<String>,
}

impl Store {
    /// Inserts or updates one version of a division (see
    /// [`RegistryTxn::upsert_division`](crate::RegistryTxn::upsert_division)), unaudited: the
    /// seeding path. People change divisions through the host's registry service.
    pub async fn upsert_division(&self, d: &Division) -> Result<(), StoreError> {
        let mut txn = self.registry_txn().await?;
        match txn.upsert_division(d).await {
            Ok(_) => txn.commit().await,
            Err(e) => {
                let _ = txn.rollback().await;
                Err(e)
            }
        }
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

    /// Registers a grid cell (unaudited seeding path). A second cell with the same code is
    /// [`StoreError::UniqueKey`]; an unknown community is [`StoreError::Rule`].
    pub async fn insert_grid_cell(&self, g: &GridCell) -> Result<(), StoreError> {
        let mut txn = self.registry_txn().await?;
        let result = txn.upsert_grid_cell(g).await;
        txn.finish_insert(result, "grid_cells.code", &g.code).await.map(|_| ())
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

    /// Registers an estate and returns its id (unaudited seeding path; a taken estate code is
    /// [`StoreError::UniqueKey`]).
    pub async fn insert_estate(&self, e: &NewEstate) -> Result<EstateId, StoreError> {
        let mut txn = self.registry_txn().await?;
        let result = txn.upsert_estate(e).await;
        txn.finish_insert(result, "estates.code", e.code.as_str()).await
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

    /// Registers a property firm and returns its id (unaudited seeding path; a taken credit code
    /// is [`StoreError::UniqueKey`]).
    pub async fn insert_firm(&self, f: &NewFirm) -> Result<FirmId, StoreError> {
        let mut txn = self.registry_txn().await?;
        let result = txn.upsert_firm(f).await;
        txn.finish_insert(result, "firms.credit_code", &f.credit_code).await
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

    /// Registers a service assignment and returns its id (unaudited seeding path).
    pub async fn insert_assignment(&self, a: &NewAssignment) -> Result<AssignmentId, StoreError> {
        let mut txn = self.registry_txn().await?;
        let result = txn.put_assignment(a).await;
        txn.finish_insert(result, "service_assignments", "").await
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
            .filter(covering(assignment::Column::FromDate, assignment::Column::ToDate, &day))
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
            .filter(covering(assignment::Column::FromDate, assignment::Column::ToDate, &day))
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

    /// Registers a building and returns its id (unaudited seeding path).
    pub async fn insert_building(&self, b: &NewBuilding) -> Result<BuildingId, StoreError> {
        let mut txn = self.registry_txn().await?;
        let result = txn.upsert_building(b).await;
        txn.finish_insert(result, "buildings.name", &b.name).await
    }

    /// One building.
    pub async fn building(&self, id: BuildingId) -> Result<Option<Building>, StoreError> {
        let row = building::Entity::find_by_id(id.0).one(&self.reader).await.map_err(db("read building"))?;
        row.map(building_from_row).transpose()
    }

    /// Registers a house and returns its id (unaudited seeding path). Its estate is the
    /// building's estate; an unknown building is [`StoreError::Rule`].
    pub async fn insert_house(&self, h: &NewHouse) -> Result<HouseId, StoreError> {
        let mut txn = self.registry_txn().await?;
        let result = txn.upsert_house(h).await;
        txn.finish_insert(result, "houses.room", &h.room).await
    }

    /// Registers an occupancy (unaudited seeding path).
    pub async fn insert_occupancy(&self, o: &NewOccupancy) -> Result<OccupancyId, StoreError> {
        let mut txn = self.registry_txn().await?;
        let result = txn.put_occupancy(o).await;
        txn.finish_insert(result, "occupancies", "").await
    }

    /// Registers a lease (unaudited seeding path).
    pub async fn insert_lease(&self, l: &NewLease) -> Result<LeaseId, StoreError> {
        let mut txn = self.registry_txn().await?;
        let result = txn.put_lease(l).await;
        txn.finish_insert(result, "leases", "").await
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
    /// This is the seeding path (unaudited); people register persons through the host's
    /// registry service, which audits in the same transaction.
    pub async fn insert_person(&self, p: &NewPerson) -> Result<PersonId, StoreError> {
        let mut txn = self.registry_txn().await?;
        let result = txn.upsert_person(p).await;
        txn.finish_insert(result, "persons.doc", &p.doc.number).await
    }

    /// One person (with the house of their current primary residence).
    pub async fn person(&self, id: PersonId) -> Result<Option<Person>, StoreError> {
        let row = person::Entity::find_by_id(id.0).one(&self.reader).await.map_err(db("read person"))?;
        match row {
            Some(r) => Ok(Some(self.person_with_home(r).await?)),
            None => Ok(None),
        }
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
        match row {
            Some(r) => Ok(Some(self.person_with_home(r).await?)),
            None => Ok(None),
        }
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
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(self.person_with_home(r).await?);
        }
        Ok(out)
    }

    /// Persons in id order after `after`, at most `limit` (for exports).
    pub async fn persons_page(&self, after: PersonId, limit: u64) -> Result<Vec<Person>, StoreError> {
        let rows = person::Entity::find()
            .filter(person::Column::Id.gt(after.0))
            .order_by_asc(person::Column::Id)
            .limit(limit)
            .all(&self.reader)
            .await
            .map_err(db("list persons"))?;
        let today = crate::convert::today().to_string();
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let homes: Vec<(i64, i64)> = occupancy::Entity::find()
            .select_only()
            .column(occupancy::Column::PersonId)
            .column(occupancy::Column::HouseId)
            .filter(occupancy::Column::PersonId.is_in(ids))
            .filter(occupancy::Column::IsPrimary.eq(true))
            .filter(covering(occupancy::Column::FromDate, occupancy::Column::ToDate, &today))
            .into_tuple()
            .all(&self.reader)
            .await
            .map_err(db("list persons' homes"))?;
        let homes: HashMap<i64, i64> = homes.into_iter().collect();
        rows.into_iter()
            .map(|r| {
                let home = homes.get(&r.id).copied().map(HouseId);
                person_from_row(&self.keys, r, home)
            })
            .collect()
    }

    async fn person_with_home(&self, r: person::Model) -> Result<Person, StoreError> {
        let today = crate::convert::today();
        let home = self.primary_home(PersonId(r.id), today).await?;
        person_from_row(&self.keys, r, home)
    }

    /// The house of the person's primary residence on `on`, if any.
    pub async fn primary_home(&self, person: PersonId, on: Date) -> Result<Option<HouseId>, StoreError> {
        let day = on.to_string();
        let house: Option<i64> = occupancy::Entity::find()
            .select_only()
            .column(occupancy::Column::HouseId)
            .filter(occupancy::Column::PersonId.eq(person.0))
            .filter(occupancy::Column::IsPrimary.eq(true))
            .filter(covering(occupancy::Column::FromDate, occupancy::Column::ToDate, &day))
            .order_by_desc(occupancy::Column::FromDate)
            .into_tuple()
            .one(&self.reader)
            .await
            .map_err(db("find primary residence"))?;
        Ok(house.map(HouseId))
    }

    /// A person's occupancies, oldest first (history kept).
    pub async fn occupancies_of_person(&self, person: PersonId) -> Result<Vec<Occupancy>, StoreError> {
        let rows = occupancy::Entity::find()
            .filter(occupancy::Column::PersonId.eq(person.0))
            .order_by_asc(occupancy::Column::FromDate)
            .order_by_asc(occupancy::Column::Id)
            .all(&self.reader)
            .await
            .map_err(db("list occupancies"))?;
        rows.into_iter().map(occupancy_from_row).collect()
    }

    /// The occupancies of a house, oldest first; with `on`, only those covering that day.
    pub async fn occupancies_of_house(&self, house: HouseId, on: Option<Date>) -> Result<Vec<Occupancy>, StoreError> {
        let mut q = occupancy::Entity::find().filter(occupancy::Column::HouseId.eq(house.0));
        if let Some(on) = on {
            let day = on.to_string();
            q = q.filter(covering(occupancy::Column::FromDate, occupancy::Column::ToDate, &day));
        }
        let rows = q
            .order_by_asc(occupancy::Column::FromDate)
            .order_by_asc(occupancy::Column::Id)
            .all(&self.reader)
            .await
            .map_err(db("list occupancies"))?;
        rows.into_iter().map(occupancy_from_row).collect()
    }

    /// One occupancy.
    pub async fn occupancy(&self, id: OccupancyId) -> Result<Option<Occupancy>, StoreError> {
        let row = occupancy::Entity::find_by_id(id.0).one(&self.reader).await.map_err(db("read occupancy"))?;
        row.map(occupancy_from_row).transpose()
    }

    /// The leases of a house, oldest first.
    pub async fn leases_of_house(&self, house: HouseId) -> Result<Vec<Lease>, StoreError> {
        let rows = lease::Entity::find()
            .filter(lease::Column::HouseId.eq(house.0))
            .order_by_asc(lease::Column::FromDate)
            .all(&self.reader)
            .await
            .map_err(db("list leases"))?;
        rows.into_iter().map(lease_from_row).collect()
    }

    /// One lease.
    pub async fn lease(&self, id: LeaseId) -> Result<Option<Lease>, StoreError> {
        let row = lease::Entity::find_by_id(id.0).one(&self.reader).await.map_err(db("read lease"))?;
        row.map(lease_from_row).transpose()
    }

    /// The buildings of an estate, ordered by id.
    pub async fn buildings_of_estate(&self, estate: EstateId) -> Result<Vec<Building>, StoreError> {
        let rows = building::Entity::find()
            .filter(building::Column::EstateId.eq(estate.0))
            .order_by_asc(building::Column::Id)
            .all(&self.reader)
            .await
            .map_err(db("list buildings"))?;
        rows.into_iter().map(building_from_row).collect()
    }

    /// Every version of every division, by code then first day.
    pub async fn division_versions(&self) -> Result<Vec<Division>, StoreError> {
        let summaries = self.divisions().await?;
        let by_code: HashMap<String, Division> =
            summaries.into_iter().map(|d| (d.code.as_str().to_owned(), d)).collect();
        let rows = division_version::Entity::find()
            .order_by_asc(division_version::Column::Code)
            .order_by_asc(division_version::Column::ValidFrom)
            .all(&self.reader)
            .await
            .map_err(db("list division versions"))?;
        rows.into_iter()
            .map(|r| {
                let summary = by_code.get(&r.code).ok_or_else(|| StoreError::Corrupt {
                    what: "division_versions.code",
                    detail: "a version without its division".into(),
                })?;
                Ok(Division {
                    code: summary.code.clone(),
                    level: summary.level,
                    name_zh: r.name_zh,
                    parent: summary.parent.clone(),
                    valid_from: parse_date("division.valid_from", &r.valid_from)?,
                    valid_to: parse_date_opt("division.valid_to", r.valid_to.as_deref())?,
                })
            })
            .collect()
    }

    /// The estates each person is tied to on `on`: through an occupancy covering that day, a
    /// lease covering it (as landlord), or a record of that estate whose `person_keys` (indexed
    /// fields that reference persons, `(plugin, field)`) names them. One query per kind of tie.
    pub async fn person_estates(
        &self,
        persons: &[PersonId],
        on: Date,
        person_keys: &[(String, String)],
    ) -> Result<HashMap<PersonId, Vec<EstateId>>, StoreError> {
        person_estates_in(&self.reader, persons, on, person_keys).await
    }
}

/// One line of an import's log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportLogRow {
    /// The file's row (the first of a run).
    pub row: i64,
    /// The last row of a run of consecutive rows that did the same (equal to `row` otherwise).
    pub row_to: i64,
    /// `inserted`, `updated`, `refused` or `referred`.
    pub action: String,
    /// What was written (`person/12,occupancy/40`; a run: `person/1-1000`), if anything.
    pub target: Option<String>,
    /// Field names changed, or rule codes broken.
    pub detail: Vec<String>,
}

impl Store {
    /// The row log of an import, by row.
    pub async fn import_log(&self, import: i64) -> Result<Vec<ImportLogRow>, StoreError> {
        use crate::entity::import_row;
        let rows = import_row::Entity::find()
            .filter(import_row::Column::ImportId.eq(import))
            .order_by_asc(import_row::Column::RowNo)
            .all(&self.reader)
            .await
            .map_err(db("read import log"))?;
        Ok(rows
            .into_iter()
            .map(|r| ImportLogRow {
                row: r.row_no,
                row_to: r.row_to,
                action: r.action,
                target: r.target,
                detail: serde_json::from_str(&r.detail_json).unwrap_or_default(),
            })
            .collect())
    }
}

/// The ties of persons to estates on `on` (see [`Store::person_estates`]), on any connection
/// (the read pool, or a registry transaction that must see its own writes).
pub(crate) async fn person_estates_in(
    conn: &impl sea_orm::ConnectionTrait,
    persons: &[PersonId],
    on: Date,
    person_keys: &[(String, String)],
) -> Result<HashMap<PersonId, Vec<EstateId>>, StoreError> {
    const OP: &str = "find persons' estates";
    let day = on.to_string();
    let mut out: HashMap<PersonId, Vec<EstateId>> = HashMap::new();
    for chunk in persons.chunks(crate::registry_write::PERSON_CHUNK) {
        let ids: Vec<i64> = chunk.iter().map(|p| p.0).collect();
        let occ: Vec<(i64, i64)> = occupancy::Entity::find()
            .select_only()
            .column(occupancy::Column::PersonId)
            .column(occupancy::Column::HouseId)
            .filter(occupancy::Column::PersonId.is_in(ids.clone()))
            .filter(covering(occupancy::Column::FromDate, occupancy::Column::ToDate, &day))
            .into_tuple()
            .all(conn)
            .await
            .map_err(db(OP))?;
        let leases: Vec<(i64, i64)> = lease::Entity::find()
            .select_only()
            .column(lease::Column::LandlordId)
            .column(lease::Column::HouseId)
            .filter(lease::Column::LandlordId.is_in(ids))
            .filter(covering(lease::Column::FromDate, lease::Column::ToDate, &day))
            .into_tuple()
            .all(conn)
            .await
            .map_err(db(OP))?;
        let ties: Vec<(i64, i64)> = occ.into_iter().chain(leases).collect();
        let houses: Vec<i64> = ties.iter().map(|(_, h)| *h).collect();
        let estates: Vec<(i64, Option<i64>)> = house::Entity::find()
            .select_only()
            .column(house::Column::Id)
            .column(house::Column::EstateId)
            .filter(house::Column::Id.is_in(houses))
            .into_tuple()
            .all(conn)
            .await
            .map_err(db(OP))?;
        let estates: HashMap<i64, i64> = estates.into_iter().filter_map(|(h, e)| e.map(|e| (h, e))).collect();
        for (person, house) in ties {
            if let Some(estate) = estates.get(&house) {
                tie(&mut out, person, *estate);
            }
        }
        if !person_keys.is_empty() {
            use crate::entity::{record, record_key};
            let values: Vec<String> = chunk.iter().map(|p| p.0.to_string()).collect();
            let mut cond = Condition::any();
            for (plugin, field) in person_keys {
                cond = cond.add(
                    Condition::all()
                        .add(record_key::Column::Plugin.eq(plugin.clone()))
                        .add(record_key::Column::Field.eq(field.clone())),
                );
            }
            let rows: Vec<(String, i64)> = record_key::Entity::find()
                .select_only()
                .column(record_key::Column::Value)
                .column_as(record::Column::EstateId, "estate_id")
                .join(
                    sea_orm::JoinType::InnerJoin,
                    record_key::Entity::belongs_to(record::Entity)
                        .from(record_key::Column::RecordId)
                        .to(record::Column::Id)
                        .into(),
                )
                .filter(cond)
                .filter(record_key::Column::Value.is_in(values))
                .distinct()
                .into_tuple()
                .all(conn)
                .await
                .map_err(db("find records naming persons"))?;
            for (value, estate) in rows {
                if let Ok(id) = value.parse::<i64>() {
                    tie(&mut out, id, estate);
                }
            }
        }
    }
    Ok(out)
}

/// Rows whose period (`from`..=`to`, an open `to` never ending) covers `day` (`YYYY-MM-DD`).
fn covering(from: impl ColumnTrait, to: impl ColumnTrait, day: &str) -> Condition {
    Condition::all().add(from.lte(day.to_owned())).add(Condition::any().add(to.is_null()).add(to.gte(day.to_owned())))
}

/// Adds `estate` to `person`'s ties once.
fn tie(out: &mut HashMap<PersonId, Vec<EstateId>>, person: i64, estate: i64) {
    let list = out.entry(PersonId(person)).or_default();
    if !list.contains(&EstateId(estate)) {
        list.push(EstateId(estate));
    }
}

fn occupancy_from_row(r: occupancy::Model) -> Result<Occupancy, StoreError> {
    Ok(Occupancy {
        id: OccupancyId(r.id),
        person_id: PersonId(r.person_id),
        house_id: HouseId(r.house_id),
        from: parse_date("occupancy.from", &r.from_date)?,
        to: parse_date_opt("occupancy.to", r.to_date.as_deref())?,
        relation: parse_enum("occupancy.relation", &r.relation)?,
        primary: r.is_primary,
        reported_at: r
            .reported_at
            .as_deref()
            .map(|t| {
                t.parse::<i64>().map(jiayuan_domain::Timestamp).map_err(|_| StoreError::Corrupt {
                    what: "occupancy.reported_at",
                    detail: "not milliseconds".into(),
                })
            })
            .transpose()?,
    })
}

fn lease_from_row(r: lease::Model) -> Result<Lease, StoreError> {
    Ok(Lease {
        id: LeaseId(r.id),
        house_id: HouseId(r.house_id),
        landlord_id: PersonId(r.landlord_id),
        from: parse_date("lease.from", &r.from_date)?,
        to: parse_date_opt("lease.to", r.to_date.as_deref())?,
        contract_ref: r.contract_ref,
    })
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
        estate_id: r.estate_id.map(EstateId),
        valid_from: parse_date("grid_cell.valid_from", &r.valid_from)?,
        valid_to: parse_date_opt("grid_cell.valid_to", r.valid_to.as_deref())?,
    })
}

fn estate_from_row(r: estate::Model) -> Result<Estate, StoreError> {
    let code = r.code.as_deref().unwrap_or_default();
    Ok(Estate {
        id: EstateId(r.id),
        code: EstateCode::parse(code)
            .map_err(|e| StoreError::Corrupt { what: "estate.code", detail: e.to_string() })?,
        kind: parse_enum("estate.kind", &r.kind)?,
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
        elevator: r.elevator,
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
        address_code: r
            .address_code
            .as_deref()
            .map(|c| {
                AddressCode::parse(c)
                    .map_err(|e| StoreError::Corrupt { what: "house.address_code", detail: e.to_string() })
            })
            .transpose()?,
    })
}

/// A person row with its encrypted columns decrypted, and the house of their primary residence.
fn person_from_row(keys: &FieldKeys, r: person::Model, home: Option<HouseId>) -> Result<Person, StoreError> {
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
        house_id: home,
    })
}
