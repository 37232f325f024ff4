use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `users.patient_count`: how many patients each user owns, kept by the database itself (triggers),
/// so an unfiltered `patients` list reads its `totalCount` from one row instead of counting every
/// patient of its owner on every request (a quarter of a PostgreSQL list's cost at 1,000 patients,
/// and growing with the list). Triggers rather than application code, so every writer (the batched
/// creates, cascades from a deleted account, a script) keeps it true, inside the writer's transaction.
pub(crate) const POSTGRES_UP: [&str; 6] = [
    // Statement-level with transition tables: a batched insert of 16 patients updates each owner once.
    // Owners are updated in id order, so two concurrent batches never wait on each other in a cycle.
    r#"CREATE FUNCTION medgraph_patients_added() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE owner record;
BEGIN
    FOR owner IN SELECT owner_id, COUNT(*) AS n FROM added GROUP BY owner_id ORDER BY owner_id LOOP
        UPDATE users SET patient_count = patient_count + owner.n WHERE id = owner.owner_id;
    END LOOP;
    RETURN NULL;
END $$"#,
    r#"CREATE FUNCTION medgraph_patients_removed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE owner record;
BEGIN
    FOR owner IN SELECT owner_id, COUNT(*) AS n FROM removed GROUP BY owner_id ORDER BY owner_id LOOP
        UPDATE users SET patient_count = patient_count - owner.n WHERE id = owner.owner_id;
    END LOOP;
    RETURN NULL;
END $$"#,
    r#"CREATE FUNCTION medgraph_patient_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET patient_count = patient_count - 1 WHERE id = OLD.owner_id;
    UPDATE users SET patient_count = patient_count + 1 WHERE id = NEW.owner_id;
    RETURN NULL;
END $$"#,
    "CREATE TRIGGER patients_counted_insert AFTER INSERT ON patients REFERENCING NEW TABLE AS added \
     FOR EACH STATEMENT EXECUTE FUNCTION medgraph_patients_added()",
    "CREATE TRIGGER patients_counted_delete AFTER DELETE ON patients REFERENCING OLD TABLE AS removed \
     FOR EACH STATEMENT EXECUTE FUNCTION medgraph_patients_removed()",
    // PostgreSQL refuses transition tables on a trigger with a column list, so a change of owner
    // (which the API never makes) has a row-level trigger.
    "CREATE TRIGGER patients_counted_owner AFTER UPDATE OF owner_id ON patients \
     FOR EACH ROW WHEN (OLD.owner_id IS DISTINCT FROM NEW.owner_id) \
     EXECUTE FUNCTION medgraph_patient_moved()",
];

const POSTGRES_DOWN: [&str; 6] = [
    "DROP TRIGGER patients_counted_owner ON patients",
    "DROP TRIGGER patients_counted_delete ON patients",
    "DROP TRIGGER patients_counted_insert ON patients",
    "DROP FUNCTION medgraph_patient_moved()",
    "DROP FUNCTION medgraph_patients_removed()",
    "DROP FUNCTION medgraph_patients_added()",
];

/// SQLite has row-level triggers only; its single writer makes their order moot.
pub(crate) const SQLITE_UP: [&str; 3] = [
    "CREATE TRIGGER patients_counted_insert AFTER INSERT ON patients BEGIN \
     UPDATE users SET patient_count = patient_count + 1 WHERE id = NEW.owner_id; END",
    "CREATE TRIGGER patients_counted_delete AFTER DELETE ON patients BEGIN \
     UPDATE users SET patient_count = patient_count - 1 WHERE id = OLD.owner_id; END",
    "CREATE TRIGGER patients_counted_owner AFTER UPDATE OF owner_id ON patients \
     WHEN OLD.owner_id IS NOT NEW.owner_id BEGIN \
     UPDATE users SET patient_count = patient_count - 1 WHERE id = OLD.owner_id; \
     UPDATE users SET patient_count = patient_count + 1 WHERE id = NEW.owner_id; END",
];

const SQLITE_DOWN: [&str; 3] = [
    "DROP TRIGGER patients_counted_owner",
    "DROP TRIGGER patients_counted_delete",
    "DROP TRIGGER patients_counted_insert",
];

#[derive(DeriveIden)]
enum Users {
    Table,
    PatientCount,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(
                        ColumnDef::new(Users::PatientCount)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let statements: &[&str] = match manager.get_database_backend() {
            DatabaseBackend::Postgres => &POSTGRES_UP,
            _ => &SQLITE_UP,
        };
        for statement in statements {
            db.execute_unprepared(statement).await?;
        }
        // The patients that exist already, counted after the triggers are in place, so a patient
        // created meanwhile is counted by one or the other.
        db.execute_unprepared(
            "UPDATE users SET patient_count = \
             (SELECT COUNT(*) FROM patients WHERE patients.owner_id = users.id)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let statements: &[&str] = match manager.get_database_backend() {
            DatabaseBackend::Postgres => &POSTGRES_DOWN,
            _ => &SQLITE_DOWN,
        };
        for statement in statements {
            db.execute_unprepared(statement).await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::PatientCount)
                    .to_owned(),
            )
            .await
    }
}
