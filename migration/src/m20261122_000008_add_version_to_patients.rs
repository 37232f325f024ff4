use sea_orm_migration::{prelude::*, schema::*};

use crate::Patients;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Optimistic concurrency: every update bumps it, and a stale `expectedVersion` is refused.
        manager
            .alter_table(
                Table::alter()
                    .table(Patients::Table)
                    .add_column(integer(Patients::Version).default(1).to_owned())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Patients::Table)
                    .drop_column(Patients::Version)
                    .to_owned(),
            )
            .await
    }
}
