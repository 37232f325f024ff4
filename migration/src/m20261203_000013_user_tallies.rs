use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

use crate::{
    Users, m20261202_000011_patient_counts as counts, m20261202_000012_response_stamps as stamps,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `user_tallies`: each user's patient count and data stamp (migrations 11 and 12), spread over
/// 16 rows per user on PostgreSQL. On the user's own row every write of theirs (a create, an
/// assignment, an update) took that row's lock until its commit, so one user's concurrent writes took
/// turns: 32 connections assigning doctors for one user fell from 1,685 to 766 a second when the stamp
/// joined the count there. A writer now updates the row of its database session
/// (`pg_backend_pid() % 16`), so writes on different connections rarely meet, and every statement
/// of a transaction updates the same row (no cycles between two transactions' locks). The count is
/// the sum of the rows' counts; the stamp the sum of their versions, which grows with every change
/// that commits, whichever row it moved. SQLite, with its single writer, keeps one row per user.
const POSTGRES_UP: [&str; 9] = [
    // Each new user gets their rows in the statement that creates them.
    r#"CREATE FUNCTION medgraph_users_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_tallies (user_id, shard) SELECT id, s FROM added CROSS JOIN generate_series(0, 15) s;
    RETURN NULL;
END $$"#,
    "CREATE TRIGGER users_tallied AFTER INSERT ON users REFERENCING NEW TABLE AS added \
     FOR EACH STATEMENT EXECUTE FUNCTION medgraph_users_added()",
    // Owners in id order, as before: two statements never wait on each other in a cycle.
    r#"CREATE OR REPLACE FUNCTION medgraph_patients_added() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE owner record;
BEGIN
    FOR owner IN SELECT owner_id, COUNT(*) AS n FROM added GROUP BY owner_id ORDER BY owner_id LOOP
        UPDATE user_tallies SET patient_count = patient_count + owner.n, version = version + 1
            WHERE user_id = owner.owner_id AND shard = pg_backend_pid() % 16;
    END LOOP;
    RETURN NULL;
END $$"#,
    r#"CREATE OR REPLACE FUNCTION medgraph_patients_removed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE owner record;
BEGIN
    FOR owner IN SELECT owner_id, COUNT(*) AS n FROM removed GROUP BY owner_id ORDER BY owner_id LOOP
        UPDATE user_tallies SET patient_count = patient_count - owner.n, version = version + 1
            WHERE user_id = owner.owner_id AND shard = pg_backend_pid() % 16;
    END LOOP;
    RETURN NULL;
END $$"#,
    // A change of owner; the stamps of both move through medgraph_patients_changed.
    r#"CREATE OR REPLACE FUNCTION medgraph_patient_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE user_tallies SET patient_count = patient_count - 1
        WHERE user_id = OLD.owner_id AND shard = pg_backend_pid() % 16;
    UPDATE user_tallies SET patient_count = patient_count + 1
        WHERE user_id = NEW.owner_id AND shard = pg_backend_pid() % 16;
    RETURN NULL;
END $$"#,
    r#"CREATE OR REPLACE FUNCTION medgraph_patients_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE owner record;
BEGIN
    FOR owner IN SELECT owner_id FROM touched UNION SELECT owner_id FROM touched_before
            ORDER BY owner_id LOOP
        UPDATE user_tallies SET version = version + 1
            WHERE user_id = owner.owner_id AND shard = pg_backend_pid() % 16;
    END LOOP;
    RETURN NULL;
END $$"#,
    r#"CREATE OR REPLACE FUNCTION medgraph_mappings_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE owner record;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        FOR owner IN SELECT DISTINCT p.owner_id FROM patients p
                WHERE p.id IN (SELECT patient_id FROM touched UNION SELECT patient_id FROM touched_before)
                ORDER BY p.owner_id LOOP
            UPDATE user_tallies SET version = version + 1
                WHERE user_id = owner.owner_id AND shard = pg_backend_pid() % 16;
        END LOOP;
    ELSE
        FOR owner IN SELECT DISTINCT p.owner_id FROM patients p
                WHERE p.id IN (SELECT patient_id FROM touched) ORDER BY p.owner_id LOOP
            UPDATE user_tallies SET version = version + 1
                WHERE user_id = owner.owner_id AND shard = pg_backend_pid() % 16;
        END LOOP;
    END IF;
    RETURN NULL;
END $$"#,
    // The users that exist already: the first row carries their count and stamp.
    "INSERT INTO user_tallies (user_id, shard, patient_count, version) \
     SELECT id, s, CASE WHEN s = 0 THEN patient_count ELSE 0 END, \
     CASE WHEN s = 0 THEN data_version ELSE 0 END \
     FROM users CROSS JOIN generate_series(0, 15) s",
    // The functions above no longer write the columns, and nothing reads them.
    "ALTER TABLE users DROP COLUMN patient_count, DROP COLUMN data_version",
];

/// SQLite's triggers of migrations 11 and 12 that write `users`, dropped and made again on
/// `user_tallies`.
const SQLITE_REPLACED: [&str; 9] = [
    "patients_counted_insert",
    "patients_counted_delete",
    "patients_counted_owner",
    "patients_versioned_insert",
    "patients_versioned_delete",
    "patients_versioned_update",
    "mappings_versioned_insert",
    "mappings_versioned_delete",
    "mappings_versioned_update",
];

const SQLITE_UP: [&str; 10] = [
    "CREATE TRIGGER users_tallied AFTER INSERT ON users BEGIN \
     INSERT INTO user_tallies (user_id, shard) VALUES (NEW.id, 0); END",
    "CREATE TRIGGER patients_counted_insert AFTER INSERT ON patients BEGIN \
     UPDATE user_tallies SET patient_count = patient_count + 1, version = version + 1 \
     WHERE user_id = NEW.owner_id; END",
    "CREATE TRIGGER patients_counted_delete AFTER DELETE ON patients BEGIN \
     UPDATE user_tallies SET patient_count = patient_count - 1, version = version + 1 \
     WHERE user_id = OLD.owner_id; END",
    "CREATE TRIGGER patients_counted_owner AFTER UPDATE OF owner_id ON patients \
     WHEN OLD.owner_id IS NOT NEW.owner_id BEGIN \
     UPDATE user_tallies SET patient_count = patient_count - 1 WHERE user_id = OLD.owner_id; \
     UPDATE user_tallies SET patient_count = patient_count + 1 WHERE user_id = NEW.owner_id; END",
    "CREATE TRIGGER patients_versioned_update AFTER UPDATE ON patients BEGIN \
     UPDATE user_tallies SET version = version + 1 WHERE user_id IN (OLD.owner_id, NEW.owner_id); END",
    "CREATE TRIGGER mappings_versioned_insert AFTER INSERT ON patient_doctors BEGIN \
     UPDATE user_tallies SET version = version + 1 \
     WHERE user_id = (SELECT owner_id FROM patients WHERE id = NEW.patient_id); END",
    "CREATE TRIGGER mappings_versioned_delete AFTER DELETE ON patient_doctors BEGIN \
     UPDATE user_tallies SET version = version + 1 \
     WHERE user_id = (SELECT owner_id FROM patients WHERE id = OLD.patient_id); END",
    "CREATE TRIGGER mappings_versioned_update AFTER UPDATE ON patient_doctors BEGIN \
     UPDATE user_tallies SET version = version + 1 \
     WHERE user_id IN (SELECT owner_id FROM patients WHERE id IN (OLD.patient_id, NEW.patient_id)); END",
    "INSERT INTO user_tallies (user_id, shard, patient_count, version) \
     SELECT id, 0, patient_count, data_version FROM users",
    // The triggers that read them are gone; SQLite refuses to drop a column a trigger names.
    "ALTER TABLE users DROP COLUMN patient_count",
];

#[derive(DeriveIden)]
enum UserTallies {
    Table,
    UserId,
    Shard,
    PatientCount,
    Version,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        if backend == DatabaseBackend::Postgres {
            // No writer may change a count or a stamp between the copy below and the new functions
            // (the migration runs in one transaction on PostgreSQL).
            // `users` at once in the mode its column drop needs, so the lock is never upgraded.
            db.execute_unprepared("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
                .await?;
            db.execute_unprepared("LOCK TABLE patients, patient_doctors IN SHARE MODE")
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(UserTallies::Table)
                    .col(ColumnDef::new(UserTallies::UserId).uuid().not_null())
                    .col(ColumnDef::new(UserTallies::Shard).integer().not_null())
                    .col(
                        ColumnDef::new(UserTallies::PatientCount)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(UserTallies::Version)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .primary_key(
                        Index::create()
                            .col(UserTallies::UserId)
                            .col(UserTallies::Shard),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_user_tallies_user")
                            .from(UserTallies::Table, UserTallies::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        match backend {
            DatabaseBackend::Postgres => {
                for statement in POSTGRES_UP {
                    db.execute_unprepared(statement).await?;
                }
            }
            _ => {
                for trigger in SQLITE_REPLACED {
                    db.execute_unprepared(&format!("DROP TRIGGER {trigger}"))
                        .await?;
                }
                for statement in SQLITE_UP {
                    db.execute_unprepared(statement).await?;
                }
                db.execute_unprepared("ALTER TABLE users DROP COLUMN data_version")
                    .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        for column in ["patient_count", "data_version"] {
            db.execute_unprepared(&format!(
                "ALTER TABLE users ADD COLUMN {column} BIGINT NOT NULL DEFAULT 0"
            ))
            .await?;
        }
        db.execute_unprepared(
            "UPDATE users SET \
             patient_count = (SELECT COALESCE(SUM(t.patient_count), 0) FROM user_tallies t \
             WHERE t.user_id = users.id), \
             data_version = (SELECT COALESCE(SUM(t.version), 0) FROM user_tallies t \
             WHERE t.user_id = users.id)",
        )
        .await?;
        match backend {
            DatabaseBackend::Postgres => {
                db.execute_unprepared("DROP TRIGGER users_tallied ON users")
                    .await?;
                db.execute_unprepared("DROP FUNCTION medgraph_users_added()")
                    .await?;
                // The functions as migrations 11 and 12 made them.
                let earlier = std::iter::once(counts::POSTGRES_UP[2])
                    .chain(stamps::POSTGRES_UP[..4].iter().copied());
                for statement in earlier {
                    db.execute_unprepared(&statement.replacen(
                        "CREATE FUNCTION",
                        "CREATE OR REPLACE FUNCTION",
                        1,
                    ))
                    .await?;
                }
            }
            _ => {
                db.execute_unprepared("DROP TRIGGER users_tallied").await?;
                // Up merged the stamps of inserts and deletes into the counting triggers.
                for trigger in SQLITE_REPLACED {
                    db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {trigger}"))
                        .await?;
                }
                let earlier = counts::SQLITE_UP.iter().chain(&stamps::SQLITE_UP[..6]);
                for statement in earlier {
                    db.execute_unprepared(statement).await?;
                }
            }
        }
        manager
            .drop_table(Table::drop().table(UserTallies::Table).to_owned())
            .await
    }
}
