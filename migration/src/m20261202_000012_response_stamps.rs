use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

use crate::m20261202_000011_patient_counts as counts;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Stamps that move whenever what a user's patient lists show changes, so the server's response cache
/// can check a stored answer with one read of one row instead of running the list again:
/// `users.data_version` (the user's patients and their assignments) and `directory_version.version`
/// (the shared doctors directory). Triggers bump them inside the writer's own transaction, so every
/// writer (the API, the batched creates, cascades, `medgraph seed`, a script) moves them, and a reader
/// never sees a change without its stamp. They only ever grow.
pub(crate) const POSTGRES_UP: [&str; 13] = [
    // The patient-count functions of the previous migration, bumping the stamp in the same row update.
    r#"CREATE OR REPLACE FUNCTION medgraph_patients_added() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE owner record;
BEGIN
    FOR owner IN SELECT owner_id, COUNT(*) AS n FROM added GROUP BY owner_id ORDER BY owner_id LOOP
        UPDATE users SET patient_count = patient_count + owner.n, data_version = data_version + 1
            WHERE id = owner.owner_id;
    END LOOP;
    RETURN NULL;
END $$"#,
    r#"CREATE OR REPLACE FUNCTION medgraph_patients_removed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE owner record;
BEGIN
    FOR owner IN SELECT owner_id, COUNT(*) AS n FROM removed GROUP BY owner_id ORDER BY owner_id LOOP
        UPDATE users SET patient_count = patient_count - owner.n, data_version = data_version + 1
            WHERE id = owner.owner_id;
    END LOOP;
    RETURN NULL;
END $$"#,
    // Owners in id order, as above: two statements never wait on each other in a cycle.
    r#"CREATE FUNCTION medgraph_patients_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE owner record;
BEGIN
    FOR owner IN SELECT owner_id FROM touched UNION SELECT owner_id FROM touched_before
            ORDER BY owner_id LOOP
        UPDATE users SET data_version = data_version + 1 WHERE id = owner.owner_id;
    END LOOP;
    RETURN NULL;
END $$"#,
    // A mapping's owner is its patient's. (When the patient itself is being deleted, its own trigger
    // moves the stamp.)
    r#"CREATE FUNCTION medgraph_mappings_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE owner record;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        FOR owner IN SELECT DISTINCT p.owner_id FROM patients p
                WHERE p.id IN (SELECT patient_id FROM touched UNION SELECT patient_id FROM touched_before)
                ORDER BY p.owner_id LOOP
            UPDATE users SET data_version = data_version + 1 WHERE id = owner.owner_id;
        END LOOP;
    ELSE
        FOR owner IN SELECT DISTINCT p.owner_id FROM patients p
                WHERE p.id IN (SELECT patient_id FROM touched) ORDER BY p.owner_id LOOP
            UPDATE users SET data_version = data_version + 1 WHERE id = owner.owner_id;
        END LOOP;
    END IF;
    RETURN NULL;
END $$"#,
    r#"CREATE FUNCTION medgraph_directory_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE directory_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END $$"#,
    "CREATE TRIGGER patients_versioned_update AFTER UPDATE ON patients \
     REFERENCING OLD TABLE AS touched_before NEW TABLE AS touched \
     FOR EACH STATEMENT EXECUTE FUNCTION medgraph_patients_changed()",
    "CREATE TRIGGER mappings_versioned_insert AFTER INSERT ON patient_doctors \
     REFERENCING NEW TABLE AS touched FOR EACH STATEMENT EXECUTE FUNCTION medgraph_mappings_changed()",
    "CREATE TRIGGER mappings_versioned_delete AFTER DELETE ON patient_doctors \
     REFERENCING OLD TABLE AS touched FOR EACH STATEMENT EXECUTE FUNCTION medgraph_mappings_changed()",
    "CREATE TRIGGER mappings_versioned_update AFTER UPDATE ON patient_doctors \
     REFERENCING OLD TABLE AS touched_before NEW TABLE AS touched \
     FOR EACH STATEMENT EXECUTE FUNCTION medgraph_mappings_changed()",
    "CREATE TRIGGER doctors_versioned AFTER INSERT OR UPDATE OR DELETE ON doctors \
     FOR EACH STATEMENT EXECUTE FUNCTION medgraph_directory_changed()",
    "CREATE TRIGGER doctors_versioned_truncate AFTER TRUNCATE ON doctors \
     FOR EACH STATEMENT EXECUTE FUNCTION medgraph_directory_changed()",
    // A TRUNCATE names no owners: it moves the directory's stamp, which every cached answer carries,
    // so it invalidates them all.
    "CREATE TRIGGER patients_versioned_truncate AFTER TRUNCATE ON patients \
     FOR EACH STATEMENT EXECUTE FUNCTION medgraph_directory_changed()",
    "CREATE TRIGGER mappings_versioned_truncate AFTER TRUNCATE ON patient_doctors \
     FOR EACH STATEMENT EXECUTE FUNCTION medgraph_directory_changed()",
];

const POSTGRES_DOWN: [&str; 11] = [
    "DROP TRIGGER mappings_versioned_truncate ON patient_doctors",
    "DROP TRIGGER patients_versioned_truncate ON patients",
    "DROP TRIGGER doctors_versioned_truncate ON doctors",
    "DROP TRIGGER doctors_versioned ON doctors",
    "DROP TRIGGER mappings_versioned_update ON patient_doctors",
    "DROP TRIGGER mappings_versioned_delete ON patient_doctors",
    "DROP TRIGGER mappings_versioned_insert ON patient_doctors",
    "DROP TRIGGER patients_versioned_update ON patients",
    "DROP FUNCTION medgraph_directory_changed()",
    "DROP FUNCTION medgraph_mappings_changed()",
    "DROP FUNCTION medgraph_patients_changed()",
];

/// Row-level triggers (SQLite has no others); the counting triggers of the previous migration stay
/// as they are.
pub(crate) const SQLITE_UP: [&str; 9] = [
    "CREATE TRIGGER patients_versioned_insert AFTER INSERT ON patients BEGIN \
     UPDATE users SET data_version = data_version + 1 WHERE id = NEW.owner_id; END",
    "CREATE TRIGGER patients_versioned_delete AFTER DELETE ON patients BEGIN \
     UPDATE users SET data_version = data_version + 1 WHERE id = OLD.owner_id; END",
    "CREATE TRIGGER patients_versioned_update AFTER UPDATE ON patients BEGIN \
     UPDATE users SET data_version = data_version + 1 WHERE id IN (OLD.owner_id, NEW.owner_id); END",
    "CREATE TRIGGER mappings_versioned_insert AFTER INSERT ON patient_doctors BEGIN \
     UPDATE users SET data_version = data_version + 1 \
     WHERE id = (SELECT owner_id FROM patients WHERE id = NEW.patient_id); END",
    "CREATE TRIGGER mappings_versioned_delete AFTER DELETE ON patient_doctors BEGIN \
     UPDATE users SET data_version = data_version + 1 \
     WHERE id = (SELECT owner_id FROM patients WHERE id = OLD.patient_id); END",
    "CREATE TRIGGER mappings_versioned_update AFTER UPDATE ON patient_doctors BEGIN \
     UPDATE users SET data_version = data_version + 1 \
     WHERE id IN (SELECT owner_id FROM patients WHERE id IN (OLD.patient_id, NEW.patient_id)); END",
    "CREATE TRIGGER doctors_versioned_insert AFTER INSERT ON doctors BEGIN \
     UPDATE directory_version SET version = version + 1 WHERE id = 1; END",
    "CREATE TRIGGER doctors_versioned_update AFTER UPDATE ON doctors BEGIN \
     UPDATE directory_version SET version = version + 1 WHERE id = 1; END",
    "CREATE TRIGGER doctors_versioned_delete AFTER DELETE ON doctors BEGIN \
     UPDATE directory_version SET version = version + 1 WHERE id = 1; END",
];

const SQLITE_DOWN: [&str; 9] = [
    "DROP TRIGGER doctors_versioned_delete",
    "DROP TRIGGER doctors_versioned_update",
    "DROP TRIGGER doctors_versioned_insert",
    "DROP TRIGGER mappings_versioned_update",
    "DROP TRIGGER mappings_versioned_delete",
    "DROP TRIGGER mappings_versioned_insert",
    "DROP TRIGGER patients_versioned_update",
    "DROP TRIGGER patients_versioned_delete",
    "DROP TRIGGER patients_versioned_insert",
];

#[derive(DeriveIden)]
enum Users {
    Table,
    DataVersion,
}

#[derive(DeriveIden)]
enum DirectoryVersion {
    Table,
    Id,
    Version,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(
                        ColumnDef::new(Users::DataVersion)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DirectoryVersion::Table)
                    .col(
                        ColumnDef::new(DirectoryVersion::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(DirectoryVersion::Version)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        // The stamps start at the clock's microseconds, not 0: after a `down` and an `up` they never
        // take a value again that a running server may still hold for other data.
        let (now_micros, statements): (&str, &[&str]) = match manager.get_database_backend() {
            DatabaseBackend::Postgres => (
                "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)",
                &POSTGRES_UP,
            ),
            _ => (
                "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)",
                &SQLITE_UP,
            ),
        };
        db.execute_unprepared(&format!(
            "INSERT INTO directory_version (id, version) VALUES (1, {now_micros})"
        ))
        .await?;
        db.execute_unprepared(&format!("UPDATE users SET data_version = {now_micros}"))
            .await?;
        for statement in statements {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                for statement in POSTGRES_DOWN {
                    db.execute_unprepared(statement).await?;
                }
                // The counting functions as the previous migration made them.
                for statement in &counts::POSTGRES_UP[..2] {
                    db.execute_unprepared(&statement.replacen(
                        "CREATE FUNCTION",
                        "CREATE OR REPLACE FUNCTION",
                        1,
                    ))
                    .await?;
                }
            }
            _ => {
                for statement in SQLITE_DOWN {
                    db.execute_unprepared(statement).await?;
                }
            }
        }
        manager
            .drop_table(Table::drop().table(DirectoryVersion::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::DataVersion)
                    .to_owned(),
            )
            .await
    }
}
