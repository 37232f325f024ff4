use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The application stores emails lower-cased, so the plain UNIQUE indexes already compare them without
/// case; these make the database itself refuse `Ada@…` beside `ada@…` whoever writes the row (a script,
/// a manual fix). LOWER() is ASCII-only on SQLite, which covers what the application cannot (it folds
/// Unicode before writing).
const INDEXES: [(&str, &str); 2] = [
    ("users_email_lower_key", "users"),
    ("doctors_email_lower_key", "doctors"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (index, table) in INDEXES {
            db.execute_unprepared(&format!(
                "CREATE UNIQUE INDEX {index} ON {table} (LOWER(email))"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (index, _) in INDEXES {
            db.execute_unprepared(&format!("DROP INDEX {index}"))
                .await?;
        }
        Ok(())
    }
}
