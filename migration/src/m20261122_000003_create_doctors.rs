use sea_orm_migration::{prelude::*, schema::*};

use crate::{Doctors, Users};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Doctors::Table)
                    .if_not_exists()
                    .col(pk_uuid(Doctors::Id))
                    // A directory entry outlives the account that created it; only admins edit it then.
                    .col(uuid_null(Doctors::CreatedBy))
                    .col(string_len(Doctors::FirstName, 100))
                    .col(string_len(Doctors::LastName, 100))
                    .col(string_len(Doctors::Specialization, 100))
                    // Lower-cased by the application: unique case-insensitively.
                    .col(string_len_uniq(Doctors::Email, 254))
                    .col(string_len_null(Doctors::Phone, 40))
                    .col(timestamp_with_time_zone(Doctors::CreatedAt))
                    .col(timestamp_with_time_zone(Doctors::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_doctors_created_by")
                            .from(Doctors::Table, Doctors::CreatedBy)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_doctors_created", Doctors::CreatedAt),
            ("idx_doctors_last_name", Doctors::LastName),
            ("idx_doctors_specialization", Doctors::Specialization),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Doctors::Table)
                        .col(column)
                        .col(Doctors::Id)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Doctors::Table).to_owned())
            .await
    }
}
