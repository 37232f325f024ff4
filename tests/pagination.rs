//! Cursor pagination, filters and ordering of `patients`, `doctors` and `mappings`.
mod common;

use std::collections::HashSet;

use common::*;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

const PATIENTS_PAGE: &str =
    "query($first: Int, $after: String, $filter: PatientFilter, $orderBy: PatientOrder) {
  patients(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
    totalCount
    edges { cursor node { id firstName lastName age } }
    nodes { id firstName lastName age }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}";

const DOCTORS_PAGE: &str =
    "query($first: Int, $after: String, $filter: DoctorFilter, $orderBy: DoctorOrder) {
  doctors(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
    totalCount
    nodes { id lastName specialization }
    pageInfo { hasNextPage endCursor }
  }
}";

async fn patients_page(app: &TestApp, token: &str, variables: Value) -> Value {
    app.gql(Some(token), PATIENTS_PAGE, variables).await.data()["patients"].clone()
}

/// Every patient the filter and order give, walking pages of `page_size`; checks the connection's invariants.
async fn walk_patients(
    app: &TestApp,
    token: &str,
    page_size: usize,
    filter: Value,
    order: Value,
) -> Vec<Value> {
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    let mut total = None;
    loop {
        let page = patients_page(
            app,
            token,
            json!({ "first": page_size, "after": after, "filter": filter, "orderBy": order }),
        )
        .await;
        let total_count = page["totalCount"].as_u64().expect("totalCount");
        assert_eq!(
            *total.get_or_insert(total_count),
            total_count,
            "totalCount changed between pages"
        );
        let edges = page["edges"].as_array().expect("edges");
        let nodes: Vec<Value> = edges.iter().map(|edge| edge["node"].clone()).collect();
        assert_eq!(page["nodes"], json!(nodes), "nodes and edges.node differ");
        assert!(edges.len() <= page_size);
        for edge in edges {
            let cursor = edge["cursor"].as_str().expect("cursor");
            assert!(!cursor.is_empty());
            assert_ne!(
                cursor,
                edge["node"]["id"].as_str().expect("id"),
                "cursor is just the id"
            );
        }
        if let (Some(first), Some(last)) = (edges.first(), edges.last()) {
            assert_eq!(page["pageInfo"]["startCursor"], first["cursor"]);
            assert_eq!(page["pageInfo"]["endCursor"], last["cursor"]);
        }
        seen.extend(nodes);
        if page["pageInfo"]["hasNextPage"] == json!(false) {
            assert_eq!(
                seen.len() as u64,
                total_count,
                "pages did not add up to totalCount"
            );
            return seen;
        }
        assert_eq!(
            edges.len(),
            page_size,
            "a page before the last one is not full"
        );
        after = Some(string(&page["pageInfo"]["endCursor"]));
    }
}

async fn doctors_page(app: &TestApp, token: &str, variables: Value) -> Value {
    app.gql(Some(token), DOCTORS_PAGE, variables).await.data()["doctors"].clone()
}

fn field_of(nodes: &[Value], field: &str) -> Vec<Value> {
    nodes.iter().map(|node| node[field].clone()).collect()
}

scenario!(
    walking_pages_with_the_end_cursor_visits_every_patient_once,
    |app| async move {
        let user = app.signed_in_user().await;
        let mut created = HashSet::new();
        for i in 0..25 {
            created.insert(
                app.create_patient(
                    &user.access,
                    patient_input(&format!("P{i:02}"), "Paged", 20 + i),
                )
                .await,
            );
        }
        let other = app.signed_in_user().await;
        app.create_patient(&other.access, patient_input("Not", "Mine", 30))
            .await;

        let mut after: Option<String> = None;
        let mut sizes = Vec::new();
        let mut seen = Vec::new();
        loop {
            let page =
                patients_page(&app, &user.access, json!({ "first": 10, "after": after })).await;
            assert_eq!(page["totalCount"], 25);
            let nodes = ids(&page["nodes"]);
            sizes.push(nodes.len());
            seen.extend(nodes);
            if page["pageInfo"]["hasNextPage"] == json!(false) {
                break;
            }
            assert_eq!(page["pageInfo"]["hasNextPage"], true);
            after = Some(string(&page["pageInfo"]["endCursor"]));
            assert!(sizes.len() < 10, "pagination does not end");
        }
        assert_eq!(sizes, vec![10, 10, 5]);
        let unique: HashSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "a patient appeared twice");
        assert_eq!(unique, created);

        walk_patients(&app, &user.access, 10, Value::Null, Value::Null).await;
    }
);

scenario!(the_default_page_has_twenty_items, |app| async move {
    let user = app.signed_in_user().await;
    for i in 0..21 {
        app.create_patient(
            &user.access,
            patient_input("Default", &format!("Page{i:02}"), 30),
        )
        .await;
    }
    let response = app
        .gql(
            user.token(),
            "{ patients { totalCount nodes { id } pageInfo { hasNextPage } } }",
            json!({}),
        )
        .await;
    let page = &response.data()["patients"];
    assert_eq!(page["nodes"].as_array().expect("nodes").len(), 20);
    assert_eq!(page["totalCount"], 21);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
});

scenario!(
    the_count_rides_on_the_page_statement_and_survives_an_empty_page,
    |app| async move {
        let user = app.signed_in_user().await;
        for i in 0..4 {
            app.create_patient(
                &user.access,
                patient_input("Counted", &format!("Page{i}"), 30),
            )
            .await;
        }
        let statements = |query: &'static str, variables: Value| {
            let app = &app;
            let token = user.access.clone();
            async move {
                let before = app.state.sql_statement_count();
                let response = app.gql_fresh(Some(&token), query, variables).await;
                let after = app.state.sql_statement_count();
                (response.data()["patients"].clone(), after - before)
            }
        };
        let (plain, plain_statements) = statements(
            "query($after: String) { patients(first: 2, after: $after) { nodes { id } pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
        // Selected through a fragment, as generated clients often do.
        let counted_query = "query($after: String) { patients(first: 2, after: $after) { ...Total nodes { id } pageInfo { endCursor } } }
            fragment Total on PatientConnection { totalCount }";
        let (first, counted_statements) = statements(counted_query, json!({})).await;
        assert_eq!(first["totalCount"], 4, "{first}");
        assert_eq!(first["nodes"], plain["nodes"]);
        assert_eq!(
            counted_statements, plain_statements,
            "totalCount must ride on the page's statement"
        );
        assert!(plain_statements > 0, "the statement counter does not count");

        let (second, _) = statements(
            counted_query,
            json!({ "after": first["pageInfo"]["endCursor"] }),
        )
        .await;
        assert_eq!(second["nodes"].as_array().expect("nodes").len(), 2);
        // Past the last row the page is empty, and the list still has its length.
        let (empty, _) = statements(
            counted_query,
            json!({ "after": second["pageInfo"]["endCursor"] }),
        )
        .await;
        assert_eq!(empty["nodes"], json!([]), "{empty}");
        assert_eq!(empty["totalCount"], 4, "{empty}");
        assert_eq!(empty["pageInfo"]["endCursor"], Value::Null);
    }
);

scenario!(
    the_total_kept_by_the_database_follows_every_write,
    |app| async move {
        // An unfiltered list reads its totalCount from user_tallies (kept by triggers); a
        // filtered one counts. Both must agree after single, concurrent and refused creates, deletes,
        // and a deleted account's cascade.
        let totals = |token: String| {
            let app = &app;
            async move {
                let stored = patients_page(app, &token, json!({ "first": 1 })).await;
                let counted = patients_page(
                    app,
                    &token,
                    json!({ "first": 1, "filter": { "minAge": 0 } }),
                )
                .await;
                (stored["totalCount"].clone(), counted["totalCount"].clone())
            }
        };
        let user = app.signed_in_user().await;
        let other = app.signed_in_user().await;
        assert_eq!(totals(user.access.clone()).await, (json!(0), json!(0)));

        let mut mine = Vec::new();
        for i in 0..6 {
            mine.push(
                app.create_patient(
                    &user.access,
                    patient_input("Kept", &format!("Count{i}"), 40),
                )
                .await,
            );
        }
        app.create_patient(&other.access, patient_input("Other", "Count", 40))
            .await;
        let create =
            "mutation($input: CreatePatientInput!) { createPatient(input: $input) { id } }";
        // Concurrent creates share statements on PostgreSQL (several records, one trigger run).
        let concurrent = app
            .gql_concurrently(
                12,
                Some(&user.access),
                create,
                json!({ "input": patient_input("Same", "Moment", 50) }),
            )
            .await;
        assert!(concurrent.iter().all(|r| r.errors().is_empty()));
        app.gql(
            Some(&user.access),
            create,
            json!({ "input": patient_input("", "Refused", 50) }),
        )
        .await
        .assert_bad_input("firstName");
        for id in &mine[..2] {
            let deleted = app
                .gql(
                    Some(&user.access),
                    "mutation($id: ID!) { deletePatient(id: $id) }",
                    json!({ "id": id }),
                )
                .await;
            assert!(deleted.errors().is_empty(), "{:?}", deleted.errors());
        }
        assert_eq!(totals(user.access.clone()).await, (json!(16), json!(16)));
        assert_eq!(totals(other.access.clone()).await, (json!(1), json!(1)));

        // The account goes with its patients (ON DELETE CASCADE): the triggers must not stand in
        // the way, and the other user's count is untouched.
        let gone: uuid::Uuid = user.user_id.parse().expect("a UUID");
        medgraph::entities::user::Entity::delete_by_id(gone)
            .exec(&app.state.db)
            .await
            .expect("delete the account with its patients");
        assert_eq!(totals(other.access.clone()).await, (json!(1), json!(1)));
    }
);

scenario!(
    first_must_be_between_one_and_one_hundred,
    |app| async move {
        let user = app.signed_in_user().await;
        app.create_patient(&user.access, patient_input("Only", "One", 30))
            .await;
        for first in [101, 0, -1] {
            app.gql(user.token(), PATIENTS_PAGE, json!({ "first": first }))
                .await
                .assert_bad_input("first");
            app.gql(user.token(), DOCTORS_PAGE, json!({ "first": first }))
                .await
                .assert_bad_input("first");
            app.gql(
                user.token(),
                "query($first: Int) { mappings(first: $first) { totalCount } }",
                json!({ "first": first }),
            )
            .await
            .assert_bad_input("first");
        }
        let page = patients_page(&app, &user.access, json!({ "first": 100 })).await;
        assert_eq!(page["nodes"].as_array().expect("nodes").len(), 1);
        assert_eq!(page["pageInfo"]["hasNextPage"], false);
    }
);

scenario!(a_garbage_after_cursor_is_rejected, |app| async move {
    let user = app.signed_in_user().await;
    app.create_patient(&user.access, patient_input("Only", "One", 30))
        .await;
    // The last one is base64 of "not a cursor": decodable, but not a cursor.
    for after in ["garbage!!", "bm90IGEgY3Vyc29y"] {
        app.gql(user.token(), PATIENTS_PAGE, json!({ "after": after }))
            .await
            .assert_bad_input("after");
    }
    app.gql(user.token(), DOCTORS_PAGE, json!({ "after": "garbage!!" }))
        .await
        .assert_bad_input("after");
});

scenario!(
    patient_search_matches_first_or_last_name_case_insensitively,
    |app| async move {
        let user = app.signed_in_user().await;
        let anna = app
            .create_patient(&user.access, patient_input("Anna", "Smith", 30))
            .await;
        let annaberg = app
            .create_patient(&user.access, patient_input("John", "Annaberg", 40))
            .await;
        app.create_patient(&user.access, patient_input("Bob", "Jones", 50))
            .await;
        let other = app.signed_in_user().await;
        app.create_patient(&other.access, patient_input("Anna", "Foreign", 30))
            .await;

        let found = walk_patients(
            &app,
            &user.access,
            1,
            json!({ "search": "aNNa" }),
            Value::Null,
        )
        .await;
        let mut found_ids: Vec<String> = found.iter().map(|node| string(&node["id"])).collect();
        found_ids.sort();
        let mut expected = vec![anna, annaberg];
        expected.sort();
        assert_eq!(found_ids, expected);

        let none =
            patients_page(&app, &user.access, json!({ "filter": { "search": "zzz" } })).await;
        assert_eq!(none["totalCount"], 0);
        assert_eq!(none["nodes"], json!([]));
    }
);

scenario!(patients_filter_by_gender_and_age_range, |app| async move {
    let user = app.signed_in_user().await;
    let mut female_30 = patient_input("Female", "Thirty", 30);
    female_30["gender"] = json!("FEMALE");
    let female_30 = app.create_patient(&user.access, female_30).await;
    let mut female_70 = patient_input("Female", "Seventy", 70);
    female_70["gender"] = json!("FEMALE");
    app.create_patient(&user.access, female_70).await;
    let mut male_50 = patient_input("Male", "Fifty", 50);
    male_50["gender"] = json!("MALE");
    let male_50 = app.create_patient(&user.access, male_50).await;
    app.create_patient(&user.access, patient_input("Unknown", "Ten", 10))
        .await;
    // Age from a date of birth counts too: 40 years and a day ago.
    let born = chrono::Utc::now()
        .date_naive()
        .checked_sub_months(chrono::Months::new(12 * 40))
        .and_then(|date| date.pred_opt())
        .expect("date");
    let from_birth_date = app
        .create_patient(
            &user.access,
            json!({ "firstName": "Born", "lastName": "Forty", "gender": "OTHER", "dateOfBirth": born.to_string() }),
        )
        .await;

    let by_gender = walk_patients(
        &app,
        &user.access,
        1,
        json!({ "gender": "FEMALE" }),
        Value::Null,
    )
    .await;
    assert_eq!(by_gender.len(), 2);
    assert!(by_gender.iter().all(|node| node["firstName"] == "Female"));

    let order = json!({ "field": "AGE", "direction": "ASC" });
    let in_range = walk_patients(
        &app,
        &user.access,
        2,
        json!({ "minAge": 30, "maxAge": 50 }),
        order.clone(),
    )
    .await;
    let in_range_ids: Vec<String> = in_range.iter().map(|node| string(&node["id"])).collect();
    assert_eq!(
        in_range_ids,
        vec![female_30.clone(), from_birth_date, male_50]
    );

    let combined = walk_patients(
        &app,
        &user.access,
        5,
        json!({ "gender": "FEMALE", "maxAge": 50 }),
        order,
    )
    .await;
    assert_eq!(
        combined
            .iter()
            .map(|node| string(&node["id"]))
            .collect::<Vec<_>>(),
        vec![female_30]
    );
});

scenario!(
    patients_are_ordered_by_last_name_age_or_creation_across_pages,
    |app| async move {
        let user = app.signed_in_user().await;
        let people = [
            ("A", "Miller", 44),
            ("B", "Adams", 12),
            ("C", "Young", 85),
            ("D", "Miller", 30),
            ("E", "Baker", 61),
            ("F", "Clark", 5),
            ("G", "Adams", 70),
        ];
        let mut created = Vec::new();
        for (first, last, age) in people {
            created.push(
                app.create_patient(&user.access, patient_input(first, last, age))
                    .await,
            );
        }

        let by_last_asc = walk_patients(
            &app,
            &user.access,
            3,
            Value::Null,
            json!({ "field": "LAST_NAME", "direction": "ASC" }),
        )
        .await;
        let names: Vec<Value> = field_of(&by_last_asc, "lastName");
        assert_eq!(
            names,
            json!([
                "Adams", "Adams", "Baker", "Clark", "Miller", "Miller", "Young"
            ])
            .as_array()
            .expect("array")
            .clone()
        );
        assert_eq!(
            by_last_asc
                .iter()
                .map(|n| string(&n["id"]))
                .collect::<HashSet<_>>()
                .len(),
            7
        );

        let by_last_desc = walk_patients(
            &app,
            &user.access,
            2,
            Value::Null,
            json!({ "field": "LAST_NAME", "direction": "DESC" }),
        )
        .await;
        assert_eq!(
            field_of(&by_last_desc, "lastName"),
            json!([
                "Young", "Miller", "Miller", "Clark", "Baker", "Adams", "Adams"
            ])
            .as_array()
            .expect("array")
            .clone()
        );
        assert_eq!(
            by_last_desc
                .iter()
                .map(|n| string(&n["id"]))
                .collect::<HashSet<_>>()
                .len(),
            7
        );

        let by_age = walk_patients(
            &app,
            &user.access,
            3,
            Value::Null,
            json!({ "field": "AGE" }),
        )
        .await;
        assert_eq!(
            field_of(&by_age, "age"),
            json!([5, 12, 30, 44, 61, 70, 85])
                .as_array()
                .expect("array")
                .clone()
        );
        let by_age_desc = walk_patients(
            &app,
            &user.access,
            4,
            Value::Null,
            json!({ "field": "AGE", "direction": "DESC" }),
        )
        .await;
        assert_eq!(
            field_of(&by_age_desc, "age"),
            json!([85, 70, 61, 44, 30, 12, 5])
                .as_array()
                .expect("array")
                .clone()
        );

        let by_creation = walk_patients(
            &app,
            &user.access,
            3,
            Value::Null,
            json!({ "field": "CREATED_AT", "direction": "ASC" }),
        )
        .await;
        assert_eq!(
            by_creation
                .iter()
                .map(|n| string(&n["id"]))
                .collect::<Vec<_>>(),
            created
        );
        let by_creation_desc = walk_patients(
            &app,
            &user.access,
            3,
            Value::Null,
            json!({ "field": "CREATED_AT", "direction": "DESC" }),
        )
        .await;
        created.reverse();
        assert_eq!(
            by_creation_desc
                .iter()
                .map(|n| string(&n["id"]))
                .collect::<Vec<_>>(),
            created
        );
    }
);

scenario!(
    doctors_filter_by_specialization_and_name_and_order_by_specialization,
    |app| async move {
        let user = app.signed_in_user().await;
        let cardio = app
            .create_doctor(&user.access, doctor_input("Heart", "Walker", "Cardiology"))
            .await;
        let cardio_too = app
            .create_doctor(&user.access, doctor_input("Valve", "Stone", "CARDIOLOGY"))
            .await;
        app.create_doctor(
            &user.access,
            doctor_input("Small", "Hart", "Pediatric Cardiology"),
        )
        .await;
        let derm = app
            .create_doctor(
                &user.access,
                doctor_input("Skin", "Walkerson", "Dermatology"),
            )
            .await;
        app.create_doctor(&user.access, doctor_input("Bone", "Setter", "Orthopedics"))
            .await;

        let by_specialization = doctors_page(
            &app,
            &user.access,
            json!({ "filter": { "specialization": "cardiology" } }),
        )
        .await;
        assert_eq!(by_specialization["totalCount"], 2);
        let mut found = ids(&by_specialization["nodes"]);
        found.sort();
        let mut expected = vec![cardio.clone(), cardio_too];
        expected.sort();
        assert_eq!(found, expected);

        let by_name = doctors_page(
            &app,
            &user.access,
            json!({ "filter": { "search": "walker" } }),
        )
        .await;
        assert_eq!(by_name["totalCount"], 2);
        let mut found = ids(&by_name["nodes"]);
        found.sort();
        let mut expected = vec![cardio, derm];
        expected.sort();
        assert_eq!(found, expected);

        let ordered = doctors_page(
            &app,
            &user.access,
            json!({ "orderBy": { "field": "SPECIALIZATION", "direction": "DESC" } }),
        )
        .await;
        let specializations: Vec<String> = ordered["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|node| string(&node["specialization"]).to_lowercase())
            .collect();
        assert_eq!(
            specializations,
            [
                "pediatric cardiology",
                "orthopedics",
                "dermatology",
                "cardiology",
                "cardiology"
            ]
        );

        let by_last_name = doctors_page(
            &app,
            &user.access,
            json!({ "orderBy": { "field": "LAST_NAME" }, "first": 2 }),
        )
        .await;
        assert_eq!(by_last_name["totalCount"], 5);
        assert_eq!(by_last_name["pageInfo"]["hasNextPage"], true);
        let last_names: Vec<String> = by_last_name["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| string(&n["lastName"]))
            .collect();
        assert_eq!(last_names, ["Hart", "Setter"]);
    }
);

scenario!(
    mappings_are_paginated_like_the_other_lists,
    |app| async move {
        let user = app.signed_in_user().await;
        let patient = app
            .create_patient(&user.access, patient_input("Many", "Doctors", 30))
            .await;
        let mut assigned = HashSet::new();
        for i in 0..5 {
            let doctor = app
                .create_doctor(
                    &user.access,
                    doctor_input("Doc", &format!("Number{i}"), "Cardiology"),
                )
                .await;
            assigned.insert(app.assign(&user.access, &patient, &doctor).await);
        }
        let query = "query($after: String) { mappings(first: 2, after: $after) { totalCount nodes { id } pageInfo { hasNextPage endCursor } } }";
        let mut after: Option<String> = None;
        let mut seen = Vec::new();
        loop {
            let response = app
                .gql(user.token(), query, json!({ "after": after }))
                .await;
            let page = &response.data()["mappings"];
            assert_eq!(page["totalCount"], 5);
            seen.extend(ids(&page["nodes"]));
            if page["pageInfo"]["hasNextPage"] == json!(false) {
                break;
            }
            after = Some(string(&page["pageInfo"]["endCursor"]));
            assert!(seen.len() <= 5, "pagination does not end");
        }
        assert_eq!(seen.len(), 5);
        assert_eq!(seen.into_iter().collect::<HashSet<_>>(), assigned);
    }
);
