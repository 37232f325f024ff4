//! The shared doctors directory: every signed-in user reads and adds; only the creator or an admin
//! changes or removes an entry.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Select, Set,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};
use uuid::Uuid;

use crate::{
    auth::Actor,
    domain::{DoctorId, Email, OptionalText, PersonName, RequiredText},
    entities::doctor,
    error::{AppError, AppResult, Validator},
    services::{
        like_pattern, now,
        pagination::{Keyset, Page, PageRequest, SortKey, fetch_page},
        patients::{PHONE_MAX, Patch},
        search_text,
    },
};

pub const SPECIALIZATION_MAX: usize = 100;
pub const EMAIL_TAKEN: &str = "A doctor with this email already exists";

pub struct NewDoctor {
    pub first_name: String,
    pub last_name: String,
    pub specialization: String,
    pub email: String,
    pub phone: Option<String>,
}

#[derive(Default)]
pub struct DoctorChanges {
    pub first_name: Patch<String>,
    pub last_name: Patch<String>,
    pub specialization: Patch<String>,
    pub email: Patch<String>,
    pub phone: Patch<String>,
}

#[derive(Default)]
pub struct DoctorFilter {
    pub search: Option<String>,
    pub specialization: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DoctorSort {
    CreatedAt,
    LastName,
    Specialization,
}

/// A new directory entry with id `id`, created by the caller, validated and ready to insert.
pub fn new_record(actor: &Actor, id: Uuid, input: NewDoctor) -> AppResult<doctor::ActiveModel> {
    let mut v = Validator::new();
    let first_name = v.check("firstName", PersonName::parse(&input.first_name));
    let last_name = v.check("lastName", PersonName::parse(&input.last_name));
    let specialization = v.check(
        "specialization",
        RequiredText::parse(&input.specialization, SPECIALIZATION_MAX),
    );
    let email = v.check("email", Email::parse(&input.email));
    let phone = v.check(
        "phone",
        OptionalText::parse(input.phone.as_deref(), PHONE_MAX, false),
    );
    v.finish()?;
    let (Some(first_name), Some(last_name), Some(specialization), Some(email), Some(phone)) =
        (first_name, last_name, specialization, email, phone)
    else {
        return Err(AppError::Internal(anyhow::anyhow!(
            "validator passed without values"
        )));
    };
    let at = now();
    let search = search_text(&[&first_name, &last_name, &specialization]);
    Ok(doctor::ActiveModel {
        id: Set(id),
        created_by: Set(Some(actor.user_id.0)),
        first_name: Set(first_name),
        last_name: Set(last_name),
        specialization: Set(specialization),
        email: Set(email.into_inner()),
        search_text: Set(search),
        phone: Set(phone),
        created_at: Set(at),
        updated_at: Set(at),
    })
}

pub async fn get(db: &impl ConnectionTrait, id: DoctorId) -> AppResult<Option<doctor::Model>> {
    Ok(doctor::Entity::find_by_id(id.0).one(db).await?)
}

pub async fn get_many(
    db: &impl ConnectionTrait,
    ids: &[DoctorId],
) -> AppResult<Vec<doctor::Model>> {
    Ok(doctor::Entity::find()
        .filter(doctor::Column::Id.is_in(ids.iter().map(|id| id.0)))
        .all(db)
        .await?)
}

/// The doctor, if the caller may change it: NOT_FOUND when missing, FORBIDDEN when someone else's.
async fn editable(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: DoctorId,
) -> AppResult<doctor::Model> {
    let doctor = get(db, id).await?.ok_or(AppError::NotFound("Doctor"))?;
    if !actor.is_admin() && doctor.created_by != Some(actor.user_id.0) {
        return Err(AppError::Forbidden(
            "Only the doctor's creator or an admin can change it",
        ));
    }
    Ok(doctor)
}

pub async fn update(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: DoctorId,
    changes: DoctorChanges,
) -> AppResult<doctor::Model> {
    let current = editable(db, actor, id).await?;
    let mut model: doctor::ActiveModel = current.into();
    let mut v = Validator::new();
    for (field, patch, parse, target) in [
        (
            "firstName",
            changes.first_name,
            PersonName::parse as fn(&str) -> Result<String, String>,
            &mut model.first_name,
        ),
        (
            "lastName",
            changes.last_name,
            PersonName::parse,
            &mut model.last_name,
        ),
        (
            "specialization",
            changes.specialization,
            |s: &str| RequiredText::parse(s, SPECIALIZATION_MAX),
            &mut model.specialization,
        ),
        (
            "email",
            changes.email,
            |s: &str| Email::parse(s).map(Email::into_inner),
            &mut model.email,
        ),
    ] {
        match patch {
            Patch::Keep => {}
            Patch::Clear => v.add(field, "must not be null"),
            Patch::Set(value) => {
                if let Some(value) = v.check(field, parse(&value)) {
                    *target = Set(value);
                }
            }
        }
    }
    match changes.phone {
        Patch::Keep => {}
        Patch::Clear => model.phone = Set(None),
        Patch::Set(phone) => {
            if let Some(phone) =
                v.check("phone", OptionalText::parse(Some(&phone), PHONE_MAX, false))
            {
                model.phone = Set(phone);
            }
        }
    }
    v.finish()?;
    model.search_text = Set(search_text(&[
        model.first_name.try_as_ref().map_or("", String::as_str),
        model.last_name.try_as_ref().map_or("", String::as_str),
        model.specialization.try_as_ref().map_or("", String::as_str),
    ]));
    model.updated_at = Set(now());
    model
        .update(db)
        .await
        .map_err(|e| AppError::from_db(e, EMAIL_TAKEN))
}

/// Removes the doctor and, through the foreign key's cascade, its assignments.
pub async fn delete(db: &impl ConnectionTrait, actor: &Actor, id: DoctorId) -> AppResult<DoctorId> {
    editable(db, actor, id).await?;
    let result = doctor::Entity::delete_by_id(id.0).exec(db).await?;
    if result.rows_affected == 0 {
        return Err(AppError::NotFound("Doctor"));
    }
    Ok(id)
}

pub async fn list(
    db: &impl ConnectionTrait,
    filter: DoctorFilter,
    sort: DoctorSort,
    descending: bool,
    page: &PageRequest,
) -> AppResult<Page<doctor::Model>> {
    let select = filtered(doctor::Entity::find(), filter)?;
    let ordering = format!("{sort:?}:{}", if descending { "DESC" } else { "ASC" });
    let (id, desc) = (doctor::Column::Id, descending);
    match sort {
        DoctorSort::CreatedAt => {
            fetch_page(
                db,
                select,
                Keyset {
                    sort: doctor::Column::CreatedAt,
                    id,
                    descending: desc,
                    name: &ordering,
                },
                page,
                |d| (SortKey::Time(d.created_at), d.id),
            )
            .await
        }
        DoctorSort::LastName => {
            fetch_page(
                db,
                select,
                Keyset {
                    sort: doctor::Column::LastName,
                    id,
                    descending: desc,
                    name: &ordering,
                },
                page,
                |d| (SortKey::Text(d.last_name.clone()), d.id),
            )
            .await
        }
        DoctorSort::Specialization => {
            fetch_page(
                db,
                select,
                Keyset {
                    sort: doctor::Column::Specialization,
                    id,
                    descending: desc,
                    name: &ordering,
                },
                page,
                |d| (SortKey::Text(d.specialization.clone()), d.id),
            )
            .await
        }
    }
}

fn filtered(
    mut select: Select<doctor::Entity>,
    filter: DoctorFilter,
) -> AppResult<Select<doctor::Entity>> {
    let mut v = Validator::new();
    for (field, value) in [
        ("search", &filter.search),
        ("specialization", &filter.specialization),
    ] {
        if value.as_ref().is_some_and(|s| s.chars().count() > 200) {
            v.add(field, "must be at most 200 characters");
        }
    }
    v.finish()?;
    if let Some(search) = filter.search.as_deref() {
        // Every word must appear in the name or specialization, case-insensitively.
        for term in search.split_whitespace() {
            select = select.filter(
                Expr::col(doctor::Column::SearchText)
                    .like(LikeExpr::new(like_pattern(term)).escape('\\')),
            );
        }
    }
    if let Some(specialization) = filter
        .specialization
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        select = select.filter(
            Expr::expr(Func::lower(Expr::col(doctor::Column::Specialization)))
                .eq(specialization.to_lowercase()),
        );
    }
    Ok(select)
}
