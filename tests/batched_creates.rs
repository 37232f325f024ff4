//! `createPatient` under concurrency. On PostgreSQL concurrent creates share statements
//! (src/batched_creates.rs): every caller must still get exactly its own record, owned by it, with its
//! own CREATE audit row, and one record the database refuses must not take the others with it.
mod common;

use common::*;
use medgraph::entities::{audit_event, user};
use sea_orm::{ColumnTrait, DbBackend, EntityTrait, QueryFilter};
use serde_json::json;

const CREATE: &str = "mutation($input: CreatePatientInput!) { createPatient(input: $input) { id firstName lastName } }";
fn uuid(id: &str) -> uuid::Uuid {
    id.parse().expect("a UUID")
}

const MINE: &str = "{ patients(first: 100) { totalCount nodes { id firstName } } }";

scenario!(
    concurrent_creates_of_several_users_each_store_their_own,
    |app| async move {
        const USERS: usize = 3;
        const EACH: usize = 16;
        let mut users = Vec::new();
        for _ in 0..USERS {
            users.push(app.signed_in_user().await);
        }
        let creates: Vec<(usize, String)> = (0..EACH)
            .flat_map(|i| (0..USERS).map(move |u| (u, format!("U{u}n{i}"))))
            .collect();
        let before = app.state.sql_statement_count();
        let answers = futures_util::future::join_all(creates.iter().map(|(u, name)| {
            app.gql(
                Some(&users[*u].access),
                CREATE,
                json!({ "input": patient_input(name, "Batched", 40) }),
            )
        }))
        .await;
        let statements = app.state.sql_statement_count() - before;

        let mut created = Vec::new();
        for ((u, name), answer) in creates.iter().zip(&answers) {
            let patient = &answer.data()["createPatient"];
            assert_eq!(patient["firstName"], name.as_str(), "{}", answer.body);
            assert_eq!(patient["lastName"], "Batched");
            created.push((*u, string(&patient["id"])));
        }
        for (u, owner) in users.iter().enumerate() {
            let list = app.gql(Some(&owner.access), MINE, json!({})).await;
            let connection = &list.data()["patients"];
            assert_eq!(connection["totalCount"], EACH, "{}", list.body);
            let mut listed: Vec<String> = connection["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .map(|node| string(&node["id"]))
                .collect();
            let mut own: Vec<String> = created
                .iter()
                .filter(|(by, _)| *by == u)
                .map(|(_, id)| id.clone())
                .collect();
            listed.sort();
            own.sort();
            assert_eq!(
                listed, own,
                "user {u} lists other records than they created"
            );
        }
        for (u, id) in &created {
            let rows = audit_event::Entity::find()
                .filter(audit_event::Column::EntityId.eq(uuid(id)))
                .filter(audit_event::Column::Action.eq("CREATE"))
                .all(&app.state.db)
                .await
                .expect("query audit_events");
            assert_eq!(rows.len(), 1, "CREATE rows of {id}: {rows:?}");
            assert_eq!(rows[0].user_id, Some(uuid(&users[*u].user_id)));
            assert_eq!(rows[0].entity_type.as_deref(), Some("PATIENT"));
            assert_eq!(rows[0].outcome, "SUCCESS");
        }
        if app.state.db.get_database_backend() == DbBackend::Postgres {
            // One statement per create unbatched; the 48 arrive together, so some share one.
            assert!(
                statements < creates.len() as u64,
                "{statements} statements for {} concurrent creates",
                creates.len()
            );
        }
    }
);

scenario!(
    a_create_the_database_refuses_does_not_take_concurrent_ones_with_it,
    |app| async move {
        let kept = app.signed_in_user().await;
        let gone = app.signed_in_user().await;
        // The account goes while its access token is still valid: its creates pass validation and
        // are refused by the database (the owner's foreign key), in the same moments as the others.
        user::Entity::delete_by_id(uuid(&gone.user_id))
            .exec(&app.state.db)
            .await
            .expect("delete the account");
        let creates: Vec<(bool, String)> =
            (0..24).map(|i| (i % 3 == 0, format!("Mixed{i}"))).collect();
        let answers = futures_util::future::join_all(creates.iter().map(|(refused, name)| {
            let token = if *refused { &gone.access } else { &kept.access };
            app.gql(
                Some(token),
                CREATE,
                json!({ "input": patient_input(name, "Mixed", 50) }),
            )
        }))
        .await;
        for ((refused, name), answer) in creates.iter().zip(&answers) {
            if *refused {
                assert!(!answer.errors().is_empty(), "{}", answer.body);
            } else {
                assert_eq!(
                    answer.data()["createPatient"]["firstName"],
                    name.as_str(),
                    "{}",
                    answer.body
                );
            }
        }
        let list = app.gql(Some(&kept.access), MINE, json!({})).await;
        assert_eq!(list.data()["patients"]["totalCount"], 16, "{}", list.body);
    }
);
