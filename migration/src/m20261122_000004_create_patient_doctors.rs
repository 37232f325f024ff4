use sea_orm_migration::{prelude::*, schema::*};

use crate::{Doctors, PatientDoctors, Patients, Users};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PatientDoctors::Table)
                    .if_not_exists()
                    .col(pk_uuid(PatientDoctors::Id))
                    .col(uuid(PatientDoctors::PatientId))
                    .col(uuid(PatientDoctors::DoctorId))
                    .col(timestamp_with_time_zone(PatientDoctors::AssignedAt))
                    .col(uuid_null(PatientDoctors::AssignedBy))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_patient_doctors_patient")
                            .from(PatientDoctors::Table, PatientDoctors::PatientId)
                            .to(Patients::Table, Patients::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_patient_doctors_doctor")
                            .from(PatientDoctors::Table, PatientDoctors::DoctorId)
                            .to(Doctors::Table, Doctors::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_patient_doctors_assigned_by")
                            .from(PatientDoctors::Table, PatientDoctors::AssignedBy)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        // The pair is unique in the database, so two concurrent assignments cannot both succeed;
        // the index also serves lookups by patient.
        manager
            .create_index(
                Index::create()
                    .name("uq_patient_doctors_pair")
                    .table(PatientDoctors::Table)
                    .col(PatientDoctors::PatientId)
                    .col(PatientDoctors::DoctorId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_patient_doctors_doctor")
                    .table(PatientDoctors::Table)
                    .col(PatientDoctors::DoctorId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PatientDoctors::Table).to_owned())
            .await
    }
}
