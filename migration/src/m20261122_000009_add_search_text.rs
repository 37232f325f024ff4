use sea_orm_migration::{prelude::*, schema::*};

use crate::{Doctors, Patients};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Lower-cased by the application (Unicode-aware), because SQLite's LOWER() folds ASCII only and
        // "Zoë Ångström" must be found by "ångström" on both databases.
        for table in [Patients::Table.into_iden(), Doctors::Table.into_iden()] {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(string(Alias::new("search_text")).default("").to_owned())
                        .to_owned(),
                )
                .await?;
        }
        // Rows that existed before: the database's own LOWER() is the best available here.
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE patients SET search_text = LOWER(first_name || ' ' || last_name)",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE doctors SET search_text = LOWER(first_name || ' ' || last_name || ' ' || specialization)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [Patients::Table.into_iden(), Doctors::Table.into_iden()] {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .drop_column(Alias::new("search_text"))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
