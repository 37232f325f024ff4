//! The PostgreSQL read pool (src/reads.rs) hands connections back without a ping, so it must never
//! hand back one that is out of step: a statement cancelled half-way closes its connection, a
//! statement PostgreSQL refused keeps it. PostgreSQL only (SQLite reads use SeaORM's pool).
mod common;

use std::time::Duration;

use common::*;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};

async fn one_number(app: &TestApp, sql: &str) -> Result<i32, sea_orm::DbErr> {
    let row = app
        .state
        .reads
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?
        .expect("a row");
    row.try_get::<i32>("", "n")
}

async fn single_connection_app() -> Option<TestApp> {
    if postgres_admin_url().is_none() {
        eprintln!("skipping: TEST_DATABASE_URL not set");
        return None;
    }
    Some(
        TestApp::spawn_with(TestDb::Postgres, |c| {
            c.db_max_connections = 1;
        })
        .await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_cancelled_half_way_closes_its_connection() {
    let Some(app) = single_connection_app().await else {
        return;
    };
    assert_eq!(one_number(&app, "SELECT 1 AS n").await.expect("read"), 1);
    assert_eq!(app.state.reads.pool_status(), Some((1, 1)));

    // The caller gives up while PostgreSQL is still working on the statement.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(200),
        one_number(&app, "SELECT 7 AS n FROM pg_sleep(1.5)"),
    )
    .await;
    assert!(cancelled.is_err(), "the slow statement was cancelled");
    assert_eq!(
        app.state.reads.pool_status(),
        Some((0, 0)),
        "the connection of the cancelled statement is not back in the pool"
    );

    // The next read gets a fresh connection and its own answer, not the cancelled one's.
    assert_eq!(one_number(&app, "SELECT 42 AS n").await.expect("read"), 42);
    assert_eq!(app.state.reads.pool_status(), Some((1, 1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_postgresql_refused_keeps_its_connection() {
    let Some(app) = single_connection_app().await else {
        return;
    };
    let refused = one_number(&app, "SELECT 1 / 0 AS n").await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("division by zero")),
        "{refused:?}"
    );
    assert_eq!(
        app.state.reads.pool_status(),
        Some((1, 1)),
        "the connection is still in step and back in the pool"
    );
    assert_eq!(one_number(&app, "SELECT 5 AS n").await.expect("read"), 5);
    assert_eq!(app.state.reads.pool_status(), Some((1, 1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_read_through_the_read_pool() {
    let Some(app) = single_connection_app().await else {
        return;
    };
    let user = app.signed_in_user().await;
    assert_eq!(
        app.state.reads.pool_status(),
        Some((0, 0)),
        "nothing read yet"
    );
    let before = app.state.sql_statement_count();
    let me = app
        .gql(
            Some(&user.access),
            "{ me { email } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(me.data()["me"]["email"], user.email.as_str());
    assert_eq!(app.state.sql_statement_count() - before, 1);
    assert_eq!(
        app.state.reads.pool_status(),
        Some((1, 1)),
        "`me` ran on the read pool"
    );
}

scenario!(a_read_right_after_a_write_sees_it, |app| async move {
    // Writes commit on the SeaORM pool, reads run on the read pool (PostgreSQL): each read must
    // see the change its caller was just told about.
    let user = app.signed_in_user().await;
    let read = "query($id: ID!) { patient(id: $id) { phone } }";
    for round in 0..5 {
        let id = app
            .create_patient(&user.access, patient_input("Fresh", "Write", 40))
            .await;
        let created = app.gql(Some(&user.access), read, json!({ "id": id })).await;
        assert_eq!(created.data()["patient"]["phone"], Value::Null);

        let phone = format!("+44 20 7946 00{round:02}");
        let updated = app
                .gql(
                    Some(&user.access),
                    "mutation($id: ID!, $phone: String) { updatePatient(id: $id, input: { phone: $phone }) { id } }",
                    json!({ "id": id, "phone": phone }),
                )
                .await;
        assert_eq!(updated.data()["updatePatient"]["id"], id.as_str());
        let after_update = app.gql(Some(&user.access), read, json!({ "id": id })).await;
        assert_eq!(after_update.data()["patient"]["phone"], phone.as_str());

        let deleted = app
            .gql(
                Some(&user.access),
                "mutation($id: ID!) { deletePatient(id: $id) }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(deleted.data()["deletePatient"], id.as_str());
        let after_delete = app.gql(Some(&user.access), read, json!({ "id": id })).await;
        assert_eq!(after_delete.data()["patient"], Value::Null);
    }
});
