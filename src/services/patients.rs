//! Patients: each belongs to exactly one user, and every query here is scoped to the caller, so a
//! foreign patient behaves exactly like a missing one.

use chrono::NaiveDate;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, QueryTrait, Select, Set,
    sea_query::{Alias, DeleteStatement, Expr, ExprTrait, LikeExpr, Query, UpdateStatement},
};
use uuid::Uuid;

use crate::{
    auth::Actor,
    domain::{BirthDate, Gender, OptionalText, PatientId, PersonName, birth_date_for_age},
    entities::patient,
    error::{AppError, AppResult, Validator},
    point_reads::ByIdReads,
    services::{
        like_pattern, now,
        pagination::{Keyset, Page, PageRequest, SortKey, fetch_page_counted_by},
        search_text,
    },
};

pub const ADDRESS_MAX: usize = 500;
pub const PHONE_MAX: usize = 40;
pub const NOTES_MAX: usize = 10_000;

/// A change to one field of a record: leave it, clear it, or set it.
#[derive(Clone, Debug, Default)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

pub struct NewPatient {
    pub first_name: String,
    pub last_name: String,
    pub age: Option<i32>,
    pub date_of_birth: Option<NaiveDate>,
    pub gender: Gender,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub notes: Option<String>,
}

#[derive(Clone, Default)]
pub struct PatientChanges {
    pub first_name: Patch<String>,
    pub last_name: Patch<String>,
    pub age: Patch<i32>,
    pub date_of_birth: Patch<NaiveDate>,
    pub gender: Patch<Gender>,
    pub address: Patch<String>,
    pub phone: Patch<String>,
    pub notes: Patch<String>,
    /// When given, the update applies only if the record is still at this version.
    pub expected_version: Option<i32>,
}

#[derive(Default)]
pub struct PatientFilter {
    pub search: Option<String>,
    pub gender: Option<Gender>,
    pub min_age: Option<i32>,
    pub max_age: Option<i32>,
}

impl PatientFilter {
    /// No condition at all: the list is all of the owner's patients.
    fn is_empty(&self) -> bool {
        self.search.is_none()
            && self.gender.is_none()
            && self.min_age.is_none()
            && self.max_age.is_none()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatientSort {
    CreatedAt,
    LastName,
    Age,
}

fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

/// The caller's new patient with id `id`, validated and ready to insert.
pub fn new_record(actor: &Actor, id: Uuid, input: NewPatient) -> AppResult<patient::ActiveModel> {
    let mut v = Validator::new();
    let first_name = v.check("firstName", PersonName::parse(&input.first_name));
    let last_name = v.check("lastName", PersonName::parse(&input.last_name));
    let address = v.check(
        "address",
        OptionalText::parse(input.address.as_deref(), ADDRESS_MAX, true),
    );
    let phone = v.check(
        "phone",
        OptionalText::parse(input.phone.as_deref(), PHONE_MAX, false),
    );
    let notes = v.check(
        "notes",
        OptionalText::parse(input.notes.as_deref(), NOTES_MAX, true),
    );
    let birth = match BirthDate::from_input(input.age, input.date_of_birth, today()) {
        Ok(birth) => Some(birth),
        Err((field, reason)) => {
            v.add(field, reason);
            None
        }
    };
    v.finish()?;
    let (Some(first_name), Some(last_name), Some(address), Some(phone), Some(notes), Some(birth)) =
        (first_name, last_name, address, phone, notes, birth)
    else {
        return Err(AppError::Internal(anyhow::anyhow!(
            "validator passed without values"
        )));
    };

    let at = now();
    let search = search_text(&[&first_name, &last_name]);
    Ok(patient::ActiveModel {
        id: Set(id),
        owner_id: Set(actor.user_id.0),
        first_name: Set(first_name),
        last_name: Set(last_name),
        birth_date: Set(birth.date),
        birth_date_estimated: Set(birth.estimated),
        gender: Set(input.gender.as_str().to_owned()),
        address: Set(address),
        phone: Set(phone),
        search_text: Set(search),
        notes: Set(notes),
        version: Set(1),
        created_at: Set(at),
        updated_at: Set(at),
    })
}

/// The caller's patient, or `None` when it does not exist or belongs to someone else.
pub async fn get(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: PatientId,
) -> AppResult<Option<patient::Model>> {
    Ok(owned(actor)
        .filter(patient::Column::Id.eq(id.0))
        .one(db)
        .await?)
}

/// `get` through the point reads that concurrent requests share (PostgreSQL): the row is fetched by id
/// alone, so it is the caller's only when they own it.
pub async fn get_coalesced(
    reads: &ByIdReads<patient::Entity>,
    actor: &Actor,
    id: PatientId,
) -> AppResult<Option<patient::Model>> {
    Ok(reads
        .get(id.0)
        .await?
        .filter(|patient| patient.owner_id == actor.user_id.0))
}

pub async fn get_many(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: &[PatientId],
) -> AppResult<Vec<patient::Model>> {
    Ok(owned(actor)
        .filter(patient::Column::Id.is_in(ids.iter().map(|id| id.0)))
        .all(db)
        .await?)
}

pub async fn require(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: PatientId,
) -> AppResult<patient::Model> {
    get(db, actor, id)
        .await?
        .ok_or(AppError::NotFound("Patient"))
}

pub async fn update(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: PatientId,
    changes: PatientChanges,
) -> AppResult<patient::Model> {
    // Locked until the transaction ends (FOR UPDATE on PostgreSQL; SQLite's write transaction already
    // excludes other writers): a concurrent update waits instead of making this one fail as stale when
    // the caller did not ask for a version check.
    let current = owned(actor)
        .filter(patient::Column::Id.eq(id.0))
        .lock_exclusive()
        .one(db)
        .await?
        .ok_or(AppError::NotFound("Patient"))?;
    let version = current.version;
    // Conditional on the version read above, so a concurrent update is never silently overwritten.
    patient::Entity::update(changed(current, changes)?)
        .validate()?
        .filter(patient::Column::Version.eq(version))
        .exec(db)
        .await
        .map_err(|e| match e {
            sea_orm::DbErr::RecordNotUpdated => AppError::Conflict(STALE),
            other => other.into(),
        })
}

/// `update` as one PostgreSQL statement (for `audit::audited_statement`), without a lock: reads the
/// caller's patient and returns the statement that applies `changes` to it only while it is still at
/// the version read. The statement changes nothing when someone else changed or deleted the patient in
/// between; the caller then reads it again.
pub async fn update_statement(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: PatientId,
    changes: PatientChanges,
) -> AppResult<UpdateStatement> {
    let current = owned(actor)
        .filter(patient::Column::Id.eq(id.0))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("Patient"))?;
    let version = current.version;
    let mut statement = patient::Entity::update(changed(current, changes)?)
        .validate()?
        .filter(patient::Column::Version.eq(version))
        .filter(patient::Column::OwnerId.eq(actor.user_id.0))
        .into_query();
    statement.returning_all();
    Ok(statement)
}

/// The stored patient with `changes` applied and checked (field errors; CONFLICT when
/// `expected_version` is not the stored one), its version and `updated_at` advanced.
fn changed(current: patient::Model, changes: PatientChanges) -> AppResult<patient::ActiveModel> {
    let mut v = Validator::new();
    let mut model: patient::ActiveModel = current.clone().into();

    match changes.first_name {
        Patch::Keep => {}
        Patch::Clear => v.add("firstName", "must not be null"),
        Patch::Set(name) => {
            if let Some(name) = v.check("firstName", PersonName::parse(&name)) {
                model.first_name = Set(name);
            }
        }
    }
    match changes.last_name {
        Patch::Keep => {}
        Patch::Clear => v.add("lastName", "must not be null"),
        Patch::Set(name) => {
            if let Some(name) = v.check("lastName", PersonName::parse(&name)) {
                model.last_name = Set(name);
            }
        }
    }
    match changes.gender {
        Patch::Keep => {}
        Patch::Clear => v.add("gender", "must not be null"),
        Patch::Set(gender) => model.gender = Set(gender.as_str().to_owned()),
    }
    for (field, patch, max, multiline, target) in [
        (
            "address",
            changes.address,
            ADDRESS_MAX,
            true,
            &mut model.address,
        ),
        ("phone", changes.phone, PHONE_MAX, false, &mut model.phone),
        ("notes", changes.notes, NOTES_MAX, true, &mut model.notes),
    ] {
        match patch {
            Patch::Keep => {}
            Patch::Clear => *target = Set(None),
            Patch::Set(text) => {
                if let Some(text) = v.check(field, OptionalText::parse(Some(&text), max, multiline))
                {
                    *target = Set(text);
                }
            }
        }
    }
    match birth_after(&current, changes.age, changes.date_of_birth) {
        Ok(Some(birth)) => {
            model.birth_date = Set(birth.date);
            model.birth_date_estimated = Set(birth.estimated);
        }
        Ok(None) => {}
        Err((field, reason)) => v.add(field, reason),
    }
    v.finish()?;

    if changes
        .expected_version
        .is_some_and(|expected| expected != current.version)
    {
        return Err(AppError::Conflict(STALE));
    }
    model.search_text = Set(search_text(&[
        model.first_name.try_as_ref().map_or("", String::as_str),
        model.last_name.try_as_ref().map_or("", String::as_str),
    ]));
    model.updated_at = Set(now());
    model.version = Set(current.version + 1);
    Ok(model)
}

const STALE: &str = "The patient was changed by someone else; reload it and try again";

/// The birth date after applying age / dateOfBirth changes, or `None` when neither changed.
fn birth_after(
    current: &patient::Model,
    age: Patch<i32>,
    date_of_birth: Patch<NaiveDate>,
) -> Result<Option<BirthDate>, (&'static str, String)> {
    let stored = BirthDate {
        date: current.birth_date,
        estimated: current.birth_date_estimated,
    };
    let today = today();
    let (age, dob) = match (age, date_of_birth) {
        (Patch::Keep, Patch::Keep) => return Ok(None),
        // A new age must agree with a known exact date of birth (never silently drop it); it re-anchors an
        // estimated one.
        (Patch::Set(age), Patch::Keep) => (Some(age), stored.date_of_birth()),
        // Clearing the age is fine while an exact date of birth carries it.
        (Patch::Clear, Patch::Keep) => match stored.date_of_birth() {
            Some(_) => return Ok(None),
            None => return Err(("age", "is required unless dateOfBirth is given".into())),
        },
        (Patch::Keep, Patch::Set(dob)) => (None, Some(dob)),
        (Patch::Keep | Patch::Clear, Patch::Clear) => {
            return Err(("age", "is required when dateOfBirth is cleared".into()));
        }
        (Patch::Set(age), Patch::Set(dob)) => (Some(age), Some(dob)),
        (Patch::Clear, Patch::Set(dob)) => (None, Some(dob)),
        (Patch::Set(age), Patch::Clear) => (Some(age), None),
    };
    BirthDate::from_input(age, dob, today).map(Some)
}

pub async fn delete(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: PatientId,
) -> AppResult<PatientId> {
    let result = patient::Entity::delete_many()
        .filter(patient::Column::Id.eq(id.0))
        .filter(patient::Column::OwnerId.eq(actor.user_id.0))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Err(AppError::NotFound("Patient"));
    }
    Ok(id)
}

/// `delete` as one PostgreSQL statement (for `audit::audited_statement`): the caller's patient only.
pub fn delete_statement(actor: &Actor, id: PatientId) -> DeleteStatement {
    Query::delete()
        .from_table(patient::Entity)
        .and_where(patient::Column::Id.eq(id.0))
        .and_where(patient::Column::OwnerId.eq(actor.user_id.0))
        .returning_all()
        .to_owned()
}

pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    filter: PatientFilter,
    sort: PatientSort,
    descending: bool,
    page: &PageRequest,
) -> AppResult<Page<patient::Model>> {
    let stored_total = filter.is_empty().then(|| stored_count(actor));
    let select = filtered(owned(actor), filter)?;
    let ordering = format!("{sort:?}:{}", if descending { "DESC" } else { "ASC" });
    match sort {
        PatientSort::CreatedAt => {
            fetch_page_counted_by(
                db,
                select,
                Keyset {
                    sort: patient::Column::CreatedAt,
                    id: patient::Column::Id,
                    descending,
                    name: &ordering,
                },
                page,
                |p| (SortKey::Time(p.created_at), p.id),
                stored_total,
            )
            .await
        }
        PatientSort::LastName => {
            fetch_page_counted_by(
                db,
                select,
                Keyset {
                    sort: patient::Column::LastName,
                    id: patient::Column::Id,
                    descending,
                    name: &ordering,
                },
                page,
                |p| (SortKey::Text(p.last_name.clone()), p.id),
                stored_total,
            )
            .await
        }
        // Older means an earlier birth date: ascending age is descending birth date.
        PatientSort::Age => {
            fetch_page_counted_by(
                db,
                select,
                Keyset {
                    sort: patient::Column::BirthDate,
                    id: patient::Column::Id,
                    descending: !descending,
                    name: &ordering,
                },
                page,
                |p| (SortKey::Date(p.birth_date), p.id),
                stored_total,
            )
            .await
        }
    }
}

/// How many patients the caller owns: the sum of their `user_tallies` rows, which the database's
/// triggers keep (migrations `m20261202_000011_patient_counts`, `m20261203_000013_user_tallies`).
fn stored_count(actor: &Actor) -> Expr {
    let tallies = Alias::new("user_tallies");
    Expr::SubQuery(
        None,
        Box::new(
            Query::select()
                .expr(Expr::cust(
                    "CAST(COALESCE(SUM(user_tallies.patient_count), 0) AS BIGINT)",
                ))
                .from(tallies.clone())
                .and_where(Expr::col((tallies, Alias::new("user_id"))).eq(actor.user_id.0))
                .to_owned()
                .into(),
        ),
    )
}

fn owned(actor: &Actor) -> Select<patient::Entity> {
    patient::Entity::find().filter(patient::Column::OwnerId.eq(actor.user_id.0))
}

fn filtered(
    mut select: Select<patient::Entity>,
    filter: PatientFilter,
) -> AppResult<Select<patient::Entity>> {
    let mut v = Validator::new();
    for (field, age) in [("minAge", filter.min_age), ("maxAge", filter.max_age)] {
        if let Some(age) = age
            && !(0..=crate::domain::PATIENT_MAX_AGE).contains(&age)
        {
            v.add(
                field,
                format!("must be between 0 and {}", crate::domain::PATIENT_MAX_AGE),
            );
        }
    }
    if let (Some(min), Some(max)) = (filter.min_age, filter.max_age)
        && min > max
    {
        v.add("maxAge", "must not be less than minAge");
    }
    if let Some(search) = &filter.search
        && search.chars().count() > 200
    {
        v.add("search", "must be at most 200 characters");
    }
    v.finish()?;

    if let Some(search) = filter.search.as_deref() {
        // Every word must appear in the name, case-insensitively (search_text is lower-cased in Rust).
        for term in search.split_whitespace() {
            select = select.filter(
                Expr::col(patient::Column::SearchText)
                    .like(LikeExpr::new(like_pattern(term)).escape('\\')),
            );
        }
    }
    if let Some(gender) = filter.gender {
        select = select.filter(patient::Column::Gender.eq(gender.as_str()));
    }
    let today = today();
    if let Some(min) = filter.min_age {
        select = select.filter(patient::Column::BirthDate.lte(birth_date_for_age(min, today)));
    }
    if let Some(max) = filter.max_age {
        select = select.filter(patient::Column::BirthDate.gt(birth_date_for_age(max + 1, today)));
    }
    Ok(select)
}
