use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "doctors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub created_by: Option<Uuid>,
    pub first_name: String,
    pub last_name: String,
    pub specialization: String,
    #[sea_orm(unique)]
    pub email: String,
    pub phone: Option<String>,
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
