//! Shared setup of the dog-licensing tests: a TestHost with two estates, their houses and a few
//! residents, and builders for valid input.
#![allow(dead_code, unreachable_pub)]

use jiayuan_domain::{BuildingId, Date, EstateId, House, HouseId, HouseUse, PersonId, RecordId};
use jiayuan_plugin_api::Actor;
use jiayuan_plugin_dog_licensing::DogLicensing;
use jiayuan_test_support::fixtures::{date, demo_estates, microchip_no, person};
use jiayuan_test_support::{HostError, TestHost};
use serde_json::{Value, json};

/// 翠竹苑, community 440303004008 翠竹社区 (翠竹街道).
pub const CUIZHU: EstateId = EstateId(1);
/// 湖贝新村, community 440303003002 (东门街道).
pub const HUBEI: EstateId = EstateId(4);

/// Houses of 翠竹苑.
pub const H1: HouseId = HouseId(1101);
pub const H2: HouseId = HouseId(1102);
/// A house of 湖贝新村.
pub const H3: HouseId = HouseId(4101);

/// An adult (born 1985), another adult (born 1990), a minor (born 2012), an owner who turns 18
/// on 2026-03-03 (the day after the host's default today).
pub const ADULT: PersonId = PersonId(1);
pub const ADULT2: PersonId = PersonId(2);
pub const MINOR: PersonId = PersonId(3);
pub const ALMOST_18: PersonId = PersonId(4);

/// The default today of a TestHost (a Monday).
pub fn today() -> Date {
    date(2026, 3, 2)
}

pub fn host() -> TestHost {
    let host = TestHost::new(DogLicensing::new());
    for e in demo_estates().into_iter().filter(|e| e.id == CUIZHU || e.id == HUBEI) {
        host.add_estate(e);
    }
    for (id, estate, room) in [(H1, CUIZHU, "1203"), (H2, CUIZHU, "1204"), (H3, HUBEI, "301")] {
        host.add_house(House {
            id,
            building_id: BuildingId(id.0 / 100),
            estate_id: Some(estate),
            room: room.into(),
            area_m2: 89.5,
            use_: HouseUse::SelfOccupied,
            address_code: None,
        });
    }
    host.add_person(person(ADULT, 1, date(1985, 6, 15), true, Some(H1)));
    host.add_person(person(ADULT2, 2, date(1990, 1, 20), false, Some(H2)));
    host.add_person(person(MINOR, 3, date(2012, 5, 4), false, Some(H1)));
    host.add_person(person(ALMOST_18, 4, date(2008, 3, 3), true, Some(H3)));
    host
}

/// Valid dog data: a chipped 柯基 of `owner` at `house`.
pub fn dog(name: &str, chip_seed: u64, owner: PersonId, house: HouseId) -> Value {
    json!({
        "name": name,
        "breed": "柯基",
        "sex": "female",
        "colour": "黄白",
        "birth_date": "2023-04-01",
        "weight_kg": 11.5,
        "sterilised": true,
        "chip_no": microchip_no(chip_seed),
        "owner_id": owner.0,
        "house_id": house.0,
    })
}

/// `data` with `key` set to `value`.
pub fn with(mut data: Value, key: &str, value: Value) -> Value {
    data[key] = value;
    data
}

/// `data` without `key`.
pub fn without(mut data: Value, key: &str) -> Value {
    if let Some(o) = data.as_object_mut() {
        o.remove(key);
    }
    data
}

/// A rabies vaccination.
pub fn vaccination(on: &str, next_due: &str) -> Value {
    json!({ "vaccinated_on": on, "clinic": "罗湖区动物防疫站翠竹点", "batch": "RV2026-0117", "next_due": next_due })
}

/// Registers a chipped dog at `house` and returns its id.
pub async fn registered(host: &TestHost, estate: EstateId, seed: u64, house: HouseId) -> RecordId {
    host.create(estate, "dog", dog(&format!("狗{seed}"), seed, ADULT, house))
        .await
        .unwrap_or_else(|e| panic!("dog {seed}: {e}"))
        .id
}

/// A licence of `dog` taken through application, review and approval.
pub async fn approved_licence(host: &TestHost, dog: RecordId) -> Result<RecordId, HostError> {
    let licence = host.create_child(dog, "licence", json!({})).await?.id;
    host.transition(licence, "submit", Actor::firm(), json!({})).await?;
    host.transition(licence, "approve", Actor::agency("police"), json!({})).await?;
    Ok(licence)
}

/// The field `field` of record `id` as a string.
pub fn field(host: &TestHost, id: RecordId, field: &str) -> Option<String> {
    host.data(id).and_then(|d| d.get(field).and_then(Value::as_str).map(str::to_owned))
}
