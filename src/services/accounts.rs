//! Accounts and sessions: registration, login, refresh-token rotation with reuse detection, logout,
//! profile and password changes, and the operator's role changes.

use chrono::Duration as ChronoDuration;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use crate::{
    auth::{
        Actor, Auth,
        tokens::{hash_refresh_token, new_refresh_token},
    },
    domain::{Email, PersonName, Role, UserId},
    entities::{refresh_token, user},
    error::{AppError, AppResult, Validator},
    point_reads::ByIdReads,
    services::{
        audit::{self, Action, AuditMeta, EntityKind, Outcome},
        now,
    },
};

/// A signed-in session as handed to the client.
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub user: user::Model,
}

pub struct Registration {
    pub name: String,
    pub email: String,
    pub password: String,
}

pub async fn register(
    db: &DatabaseConnection,
    auth: &Auth,
    meta: &AuditMeta,
    input: Registration,
    role: Role,
) -> AppResult<Session> {
    // Hash before the transaction, so no connection is held during the slow part; the account, its
    // first session and their audit rows then commit together, or none does.
    let model = new_user(auth, input, role).await?;
    let txn = crate::services::begin_write(db).await?;
    let user = insert_user(&txn, model).await?;
    let meta = meta.for_user(user.id);
    audit::record(
        &txn,
        &meta,
        Action::Create,
        Some((EntityKind::User, user.id)),
        Outcome::Success,
    )
    .await?;
    audit::record(
        &txn,
        &meta,
        Action::Login,
        Some((EntityKind::User, user.id)),
        Outcome::Success,
    )
    .await?;
    let session = start_session(&txn, auth, user).await?;
    txn.commit().await?;
    Ok(session)
}

/// Creates an account (also used by `medgraph user create`).
pub async fn create_user(
    db: &impl ConnectionTrait,
    auth: &Auth,
    input: Registration,
    role: Role,
) -> AppResult<user::Model> {
    let model = new_user(auth, input, role).await?;
    insert_user(db, model).await
}

/// Validates a registration and hashes its password: the account, ready to insert.
async fn new_user(auth: &Auth, input: Registration, role: Role) -> AppResult<user::ActiveModel> {
    let mut v = Validator::new();
    let name = v.check("name", PersonName::parse(&input.name));
    let email = v.check("email", Email::parse(&input.email));
    let context: Vec<&str> = [Some(input.name.trim()), email.as_ref().map(Email::as_str)]
        .into_iter()
        .flatten()
        .collect();
    v.check("password", auth.policy.check(&input.password, &context));
    v.finish()?;
    let (Some(name), Some(email)) = (name, email) else {
        return Err(AppError::Internal(anyhow::anyhow!(
            "validator passed without values"
        )));
    };

    let password_hash = auth.hasher.hash(&input.password).await?;
    let at = now();
    Ok(user::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name),
        email: Set(email.into_inner()),
        password_hash: Set(password_hash),
        role: Set(role.as_str().to_owned()),
        failed_logins: Set(0),
        last_failed_login_at: Set(None),
        locked_at: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
    })
}

async fn insert_user(
    db: &impl ConnectionTrait,
    model: user::ActiveModel,
) -> AppResult<user::Model> {
    model
        .insert(db)
        .await
        .map_err(|e| AppError::from_db(e, "Email is already registered"))
}

pub async fn login(
    db: &DatabaseConnection,
    auth: &Auth,
    meta: &AuditMeta,
    email: &str,
    password: &str,
) -> AppResult<Session> {
    let found = match Email::parse(email) {
        Ok(email) => find_by_email(db, email.as_str()).await?,
        Err(_) => None,
    };
    let Some(user) = found else {
        // Same work as a real check, so timing does not reveal whether the account exists.
        auth.hasher.verify_dummy(password).await?;
        audit::record(db, meta, Action::LoginFailed, None, Outcome::Failure).await?;
        return Err(AppError::InvalidCredentials);
    };
    let account = Some((EntityKind::User, user.id));
    let failed = |meta: AuditMeta| async move {
        audit::record(db, &meta, Action::LoginFailed, account, Outcome::Failure).await
    };
    if let Err(refusal) = throttle(&auth.abuse, &user) {
        failed(meta.for_user(user.id)).await?;
        return Err(refusal);
    }
    if !auth.hasher.verify(password, &user.password_hash).await? {
        record_failed_login(db, &auth.abuse, user.id).await?;
        failed(meta.for_user(user.id)).await?;
        return Err(AppError::InvalidCredentials);
    }
    if user.failed_logins > 0 {
        user::Entity::update_many()
            .col_expr(user::Column::FailedLogins, Expr::value(0))
            .col_expr(
                user::Column::LastFailedLoginAt,
                Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .filter(user::Column::Id.eq(user.id))
            .exec(db)
            .await?;
    }
    audit::record(
        db,
        &meta.for_user(user.id),
        Action::Login,
        account,
        Outcome::Success,
    )
    .await?;
    start_session(db, auth, user).await
}

/// Longest wait the exponential back-off imposes between two attempts on one account.
const MAX_BACKOFF_SECS: u64 = 15 * 60;

/// Refuses an attempt on a locked account, or one made during its back-off after repeated failures
/// (1 s after the `backoff_after`-th failure, then 2 s, 4 s, … up to 15 minutes).
fn throttle(limits: &crate::config::AbuseLimits, user: &user::Model) -> AppResult<()> {
    if user.locked_at.is_some() {
        return Err(AppError::RateLimited {
            message: "Account locked after too many failed logins; an administrator must unlock it",
            retry_after: None,
        });
    }
    let failures = u32::try_from(user.failed_logins).unwrap_or(0);
    if failures < limits.backoff_after {
        return Ok(());
    }
    let exponent = std::cmp::min(failures - limits.backoff_after, 20);
    let wait = std::cmp::min(1u64 << exponent, MAX_BACKOFF_SECS);
    let Some(last) = user.last_failed_login_at else {
        return Ok(());
    };
    let until = last + chrono::Duration::seconds(i64::try_from(wait).unwrap_or(i64::MAX));
    let remaining = (until - now()).num_milliseconds();
    if remaining > 0 {
        let secs = u64::try_from(remaining).unwrap_or(0).div_ceil(1000);
        return Err(AppError::RateLimited {
            message: "Too many failed logins for this account; wait before trying again",
            retry_after: Some(std::cmp::max(secs, 1)),
        });
    }
    Ok(())
}

/// Counts a failed login in the database (so every instance sees it) and locks the account at the limit.
async fn record_failed_login(
    db: &impl ConnectionTrait,
    limits: &crate::config::AbuseLimits,
    user_id: Uuid,
) -> AppResult<()> {
    let at = now();
    user::Entity::update_many()
        .col_expr(
            user::Column::FailedLogins,
            Expr::col(user::Column::FailedLogins).add(1),
        )
        .col_expr(user::Column::LastFailedLoginAt, Expr::value(at))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    let locked = user::Entity::update_many()
        .col_expr(user::Column::LockedAt, Expr::value(at))
        .filter(user::Column::Id.eq(user_id))
        .filter(
            user::Column::FailedLogins.gte(i32::try_from(limits.lockout_after).unwrap_or(i32::MAX)),
        )
        .filter(user::Column::LockedAt.is_null())
        .exec(db)
        .await?;
    if locked.rows_affected > 0 {
        tracing::warn!(%user_id, "account locked after repeated failed logins");
    }
    Ok(())
}

/// Unlocks an account and clears its failure count (`medgraph user unlock`).
pub async fn unlock(db: &impl ConnectionTrait, email: &str) -> AppResult<()> {
    let email = Email::parse(email).map_err(|reason| AppError::field("email", reason))?;
    let result = user::Entity::update_many()
        .col_expr(user::Column::FailedLogins, Expr::value(0))
        .col_expr(
            user::Column::LastFailedLoginAt,
            Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
        )
        .col_expr(
            user::Column::LockedAt,
            Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
        )
        .filter(user::Column::Email.eq(email.as_str()))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Err(AppError::NotFound("User"));
    }
    Ok(())
}

/// Exchanges a refresh token for a new pair. The presented token is spent; presenting a spent token
/// again means it was stolen (or replayed), so its whole family is revoked.
pub async fn refresh(
    db: &DatabaseConnection,
    auth: &Auth,
    meta: &AuditMeta,
    presented: &str,
) -> AppResult<Session> {
    let hash = hash_refresh_token(presented.trim());
    let Some(current) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(hash))
        .one(db)
        .await?
    else {
        return Err(AppError::InvalidRefreshToken);
    };
    let at = now();
    let meta = meta.for_user(current.user_id);
    let account = Some((EntityKind::User, current.user_id));
    if current.revoked_at.is_some() {
        if current.replaced_by.is_some() {
            revoke_family(db, current.family_id).await?;
            audit::record(db, &meta, Action::TokenReuse, account, Outcome::Failure).await?;
            tracing::warn!(user_id = %current.user_id, family = %current.family_id,
                "refresh token reused after rotation; token family revoked");
        }
        return Err(AppError::InvalidRefreshToken);
    }
    if current.expires_at <= at {
        return Err(AppError::InvalidRefreshToken);
    }

    let txn = crate::services::begin_write(db).await?;
    let (token, token_hash) = new_refresh_token();
    let new_id = Uuid::now_v7();
    // Spend the old token only if nobody else spent it first: the loser of a race is treated as reuse.
    let spent = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(at))
        .col_expr(refresh_token::Column::ReplacedBy, Expr::value(new_id))
        .filter(refresh_token::Column::Id.eq(current.id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    if spent.rows_affected != 1 {
        txn.rollback().await?;
        revoke_family(db, current.family_id).await?;
        audit::record(db, &meta, Action::TokenReuse, account, Outcome::Failure).await?;
        return Err(AppError::InvalidRefreshToken);
    }
    audit::record(&txn, &meta, Action::TokenRefresh, account, Outcome::Success).await?;
    insert_refresh_token(
        &txn,
        auth,
        new_id,
        current.user_id,
        current.family_id,
        token_hash,
    )
    .await?;
    let user = user::Entity::find_by_id(current.user_id)
        .one(&txn)
        .await?
        .ok_or(AppError::InvalidRefreshToken)?;
    txn.commit().await?;
    session_for(auth, user, token)
}

/// Revokes a refresh token. True when a live token was revoked, false when it was unknown or spent.
pub async fn logout(db: &DatabaseConnection, meta: &AuditMeta, presented: &str) -> AppResult<bool> {
    let hash = hash_refresh_token(presented.trim());
    let Some(token) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(hash))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    let txn = crate::services::begin_write(db).await?;
    let result = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(now()))
        .filter(refresh_token::Column::Id.eq(token.id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    let revoked = result.rows_affected > 0;
    if revoked {
        let meta = meta.for_user(token.user_id);
        audit::record(
            &txn,
            &meta,
            Action::Logout,
            Some((EntityKind::User, token.user_id)),
            Outcome::Success,
        )
        .await?;
    }
    txn.commit().await?;
    Ok(revoked)
}

pub async fn me(db: &impl ConnectionTrait, actor: &Actor) -> AppResult<user::Model> {
    // A token can outlive its account; such a caller is no longer authenticated.
    user::Entity::find_by_id(actor.user_id.0)
        .one(db)
        .await?
        .ok_or(AppError::Unauthenticated)
}

/// `me` through the point reads that concurrent requests share (PostgreSQL).
pub async fn me_coalesced(
    reads: &ByIdReads<user::Entity>,
    actor: &Actor,
) -> AppResult<user::Model> {
    reads
        .get(actor.user_id.0)
        .await?
        .ok_or(AppError::Unauthenticated)
}

pub async fn update_me(
    db: &impl ConnectionTrait,
    actor: &Actor,
    name: Option<String>,
) -> AppResult<user::Model> {
    let current = me(db, actor).await?;
    let Some(name) = name else { return Ok(current) };
    let name = PersonName::parse(&name).map_err(|reason| AppError::field("name", reason))?;
    let mut model: user::ActiveModel = current.into();
    model.name = Set(name);
    model.updated_at = Set(now());
    Ok(model.update(db).await?)
}

/// Changes the password after checking the current one, and signs out every other session by revoking
/// all of the user's refresh tokens (access tokens lapse within their short lifetime). Checking the
/// current password is a sign-in attempt: it gets the account's back-off and lockout, a wrong one
/// counts as a failed login, and both outcomes are in the audit trail (the change in its transaction).
pub async fn change_password(
    db: &DatabaseConnection,
    auth: &Auth,
    actor: &Actor,
    meta: &AuditMeta,
    current_password: &str,
    new_password: &str,
) -> AppResult<()> {
    let user = me(db, actor).await?;
    let account = Some((EntityKind::User, user.id));
    if let Err(refusal) = throttle(&auth.abuse, &user) {
        audit::record(db, meta, Action::LoginFailed, account, Outcome::Failure).await?;
        return Err(refusal);
    }
    if !auth
        .hasher
        .verify(current_password, &user.password_hash)
        .await?
    {
        record_failed_login(db, &auth.abuse, user.id).await?;
        audit::record(db, meta, Action::LoginFailed, account, Outcome::Failure).await?;
        return Err(AppError::field("currentPassword", "is incorrect"));
    }
    auth.policy
        .check(new_password, &[&user.name, &user.email])
        .map_err(|reason| AppError::field("newPassword", reason))?;
    let password_hash = auth.hasher.hash(new_password).await?;

    let txn = crate::services::begin_write(db).await?;
    let user_id = user.id;
    let mut model: user::ActiveModel = user.into();
    model.password_hash = Set(password_hash);
    model.failed_logins = Set(0);
    model.last_failed_login_at = Set(None);
    model.updated_at = Set(now());
    model.update(&txn).await?;
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(now()))
        .filter(refresh_token::Column::UserId.eq(user_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    audit::record(&txn, meta, Action::Update, account, Outcome::Success).await?;
    txn.commit().await?;
    Ok(())
}

/// Sets an account's role (`medgraph user promote`). Takes effect with the user's next access token.
pub async fn set_role(db: &impl ConnectionTrait, email: &str, role: Role) -> AppResult<()> {
    let email = Email::parse(email).map_err(|reason| AppError::field("email", reason))?;
    let result = user::Entity::update_many()
        .col_expr(user::Column::Role, Expr::value(role.as_str()))
        .col_expr(user::Column::UpdatedAt, Expr::value(now()))
        .filter(user::Column::Email.eq(email.as_str()))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Err(AppError::NotFound("User"));
    }
    Ok(())
}

pub async fn find_by_email(
    db: &impl ConnectionTrait,
    email: &str,
) -> AppResult<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(db)
        .await?)
}

pub fn role_of(user: &user::Model) -> Role {
    Role::parse(&user.role).unwrap_or(Role::User)
}

async fn start_session(
    db: &impl ConnectionTrait,
    auth: &Auth,
    user: user::Model,
) -> AppResult<Session> {
    let (token, token_hash) = new_refresh_token();
    let id = Uuid::now_v7();
    insert_refresh_token(db, auth, id, user.id, id, token_hash).await?;
    session_for(auth, user, token)
}

fn session_for(auth: &Auth, user: user::Model, refresh_token: String) -> AppResult<Session> {
    let access_token = auth.tokens.issue_access(UserId(user.id), role_of(&user))?;
    Ok(Session {
        access_token,
        refresh_token,
        expires_in: auth.tokens.access_ttl_secs(),
        user,
    })
}

async fn insert_refresh_token(
    db: &impl ConnectionTrait,
    auth: &Auth,
    id: Uuid,
    user_id: Uuid,
    family_id: Uuid,
    token_hash: String,
) -> AppResult<()> {
    let at = now();
    let ttl = ChronoDuration::from_std(auth.tokens.refresh_ttl).unwrap_or(ChronoDuration::days(14));
    refresh_token::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        token_hash: Set(token_hash),
        family_id: Set(family_id),
        expires_at: Set(at + ttl),
        revoked_at: Set(None),
        replaced_by: Set(None),
        created_at: Set(at),
    }
    .insert(db)
    .await?;
    Ok(())
}

async fn revoke_family(db: &impl ConnectionTrait, family_id: Uuid) -> AppResult<()> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(now()))
        .filter(refresh_token::Column::FamilyId.eq(family_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
