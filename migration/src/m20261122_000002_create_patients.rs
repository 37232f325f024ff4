use sea_orm_migration::{prelude::*, schema::*};

use crate::{Patients, Users};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Patients::Table)
                    .if_not_exists()
                    .col(pk_uuid(Patients::Id))
                    .col(uuid(Patients::OwnerId))
                    .col(string_len(Patients::FirstName, 100))
                    .col(string_len(Patients::LastName, 100))
                    // Exact date of birth, or one estimated from an age given at registration
                    // (BirthDateEstimated), so age filters and sorting work in SQL on both backends.
                    .col(date(Patients::BirthDate))
                    .col(boolean(Patients::BirthDateEstimated))
                    .col(string_len(Patients::Gender, 16))
                    .col(text_null(Patients::Address))
                    .col(string_len_null(Patients::Phone, 40))
                    .col(text_null(Patients::Notes))
                    .col(timestamp_with_time_zone(Patients::CreatedAt))
                    .col(timestamp_with_time_zone(Patients::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_patients_owner")
                            .from(Patients::Table, Patients::OwnerId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_patients_owner_created", Patients::CreatedAt),
            ("idx_patients_owner_last_name", Patients::LastName),
            ("idx_patients_owner_birth_date", Patients::BirthDate),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Patients::Table)
                        .col(Patients::OwnerId)
                        .col(column)
                        .col(Patients::Id)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Patients::Table).to_owned())
            .await
    }
}
