use sea_orm_migration::{prelude::*, schema::*};

use crate::AuditEvents;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .if_not_exists()
                    .col(pk_uuid(AuditEvents::Id))
                    .col(timestamp_with_time_zone(AuditEvents::OccurredAt))
                    // No foreign keys: the trail must outlive the users and records it mentions.
                    .col(uuid_null(AuditEvents::UserId))
                    .col(string_len(AuditEvents::Action, 32))
                    .col(string_len_null(AuditEvents::EntityType, 32))
                    .col(uuid_null(AuditEvents::EntityId))
                    .col(string_len(AuditEvents::Outcome, 16))
                    .col(string_len_null(AuditEvents::ClientIp, 64))
                    .col(string_len_null(AuditEvents::RequestId, 64))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "idx_audit_events_occurred",
                vec![AuditEvents::OccurredAt, AuditEvents::Id],
            ),
            (
                "idx_audit_events_entity",
                vec![
                    AuditEvents::EntityType,
                    AuditEvents::EntityId,
                    AuditEvents::OccurredAt,
                ],
            ),
            (
                "idx_audit_events_user",
                vec![AuditEvents::UserId, AuditEvents::OccurredAt],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(AuditEvents::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await
    }
}
