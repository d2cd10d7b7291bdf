//! The benchmark estate, shared by the platform benchmarks and the server's HTTP benchmarks
//! (which include this file by path): Luohu's divisions, one estate, and `n` houses each with an
//! adult owner (a dog per house keeps the dog plugin's household rules quiet).

use jiayuan_domain::{DocKind, EstateCode, EstateId, EstateKind, Hukou, IdentityDoc, ManagementStatus, Relation, Sex};
use jiayuan_store::{NewBuilding, NewEstate, NewHouse, NewOccupancy, NewPerson, Store};
use jiayuan_test_support::fixtures;

/// Seeds the estate; returns it and `(house id, owner id)` per house.
pub(crate) async fn estate_with_households(store: &Store, n: usize) -> (EstateId, Vec<(i64, i64)>) {
    for d in fixtures::luohu_divisions() {
        store.upsert_division(&d).await.expect("division");
    }
    let community = fixtures::luohu_divisions()
        .into_iter()
        .find(|d| d.level == jiayuan_domain::DivisionLevel::Community)
        .expect("a community")
        .code;
    let estate = store
        .insert_estate(&NewEstate {
            code: EstateCode::parse("LH-BENCH-001").expect("estate code"),
            kind: EstateKind::Estate,
            name: "基准花园".into(),
            community,
            address: "罗湖区基准路1号".into(),
            management: ManagementStatus::PropertyManaged,
            onboarding: None,
            households: n as u32,
        })
        .await
        .expect("estate");
    let building = store
        .insert_building(&NewBuilding {
            estate_id: Some(estate),
            name: "1栋".into(),
            floors: 30,
            height_m: 90.0,
            elevator: true,
        })
        .await
        .expect("building");
    let mut pairs = Vec::with_capacity(n);
    for i in 0..n {
        // Distinct birth dates keep the synthetic identity numbers distinct.
        let born = fixtures::date(1950, 1, 1).add_days((i % 20_000) as i32);
        let house = store
            .insert_house(&NewHouse {
                building_id: building,
                room: format!("{i}"),
                area_m2: 80.0,
                use_: jiayuan_domain::HouseUse::SelfOccupied,
                address_code: None,
            })
            .await
            .expect("house");
        let person = store
            .insert_person(&NewPerson {
                name: fixtures::chinese_name(i as u64, true),
                doc: IdentityDoc {
                    kind: DocKind::ResidentId,
                    number: fixtures::resident_id((i / 20_000) as u64, born, true),
                },
                sex: Some(Sex::Male),
                birth_date: Some(born),
                hukou: Hukou::Shenzhen,
                phone: None,
            })
            .await
            .expect("person");
        store
            .insert_occupancy(&NewOccupancy {
                person_id: person,
                house_id: house,
                from: fixtures::date(2020, 1, 1),
                to: None,
                relation: Relation::Owner,
                primary: true,
                reported_at: None,
            })
            .await
            .expect("occupancy");
        pairs.push((house.0, person.0));
    }
    (estate, pairs)
}
