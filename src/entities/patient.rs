use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "patients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub owner_id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub birth_date: Date,
    pub birth_date_estimated: bool,
    pub gender: String,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub notes: Option<String>,
    pub version: i32,
    /// Lower-cased names (and specialization) for case-insensitive search on both databases.
    pub search_text: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::patient_doctor::Entity")]
    PatientDoctor,
}

impl Related<super::patient_doctor::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PatientDoctor.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
