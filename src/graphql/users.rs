//! Accounts and sessions: `me`, `register`, `login`, `refreshToken`, `logout`, `updateMe`, `changePassword`.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};

use crate::{
    domain,
    entities::user,
    graphql::{context::ContextExt, scalars::DateTime},
    services::accounts::{self, Registration, Session},
};

/// What an account may do beyond its own data.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// A regular account: manages its own patients, reads the doctors directory.
    User,
    /// May also change or remove any doctor entry.
    Admin,
}

impl From<domain::Role> for Role {
    fn from(role: domain::Role) -> Self {
        match role {
            domain::Role::User => Role::User,
            domain::Role::Admin => Role::Admin,
        }
    }
}

/// A registered account.
#[derive(SimpleObject, Clone)]
pub struct User {
    /// Stable id of the account.
    pub id: ID,
    /// Display name.
    pub name: String,
    /// Email address, lower-cased.
    pub email: String,
    /// The account's role.
    pub role: Role,
    /// When the account was registered.
    pub created_at: DateTime,
}

impl From<user::Model> for User {
    fn from(u: user::Model) -> Self {
        let role = accounts::role_of(&u).into();
        User {
            id: ID(u.id.to_string()),
            name: u.name,
            email: u.email,
            role,
            created_at: DateTime(u.created_at),
        }
    }
}

/// A new session: a short-lived access token and a single-use refresh token.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// JWT to send as `Authorization: Bearer <accessToken>`.
    pub access_token: String,
    /// Opaque token for `refreshToken`; single use, it rotates on every refresh.
    pub refresh_token: String,
    /// Always "Bearer".
    pub token_type: String,
    /// Seconds until `accessToken` expires.
    pub expires_in: i64,
    /// The signed-in account.
    pub user: User,
}

impl From<Session> for AuthPayload {
    fn from(s: Session) -> Self {
        AuthPayload {
            access_token: s.access_token,
            refresh_token: s.refresh_token,
            token_type: "Bearer".into(),
            expires_in: s.expires_in,
            user: s.user.into(),
        }
    }
}

/// A new account.
#[derive(InputObject)]
pub struct RegisterInput {
    /// 1 to 100 characters.
    pub name: String,
    /// A valid email address; stored lower-cased.
    pub email: String,
    /// At least 15 characters (configurable), not a commonly used password.
    pub password: String,
}

/// Credentials for `login`.
#[derive(InputObject)]
pub struct LoginInput {
    /// The account's email (any case).
    pub email: String,
    /// The account's password.
    pub password: String,
}

/// Profile changes; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateMeInput {
    /// New display name, 1 to 100 characters.
    pub name: Option<String>,
}

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// The signed-in account.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let me = match &app.coalesced {
            Some(coalesced) => accounts::me_coalesced(&coalesced.users, &actor).await?,
            None => accounts::me(&app.reads, &actor).await?,
        };
        Ok(me.into())
    }
}

#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    /// Creates an account and signs it in.
    async fn register(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new account.")] input: RegisterInput,
    ) -> async_graphql::Result<AuthPayload> {
        ctx.limit_auth_attempt()?;
        let app = ctx.app()?;
        let registration = Registration {
            name: input.name,
            email: input.email,
            password: input.password,
        };
        Ok(accounts::register(
            &app.db,
            &app.auth,
            &ctx.meta(),
            registration,
            domain::Role::User,
        )
        .await?
        .into())
    }

    /// Signs in with email and password. A wrong email and a wrong password give the same error.
    async fn login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Email and password.")] input: LoginInput,
    ) -> async_graphql::Result<AuthPayload> {
        if let Err(limited) = ctx.limit_auth_attempt() {
            crate::observability::record_login("rate_limited");
            return Err(limited);
        }
        let app = ctx.app()?;
        let meta = ctx.meta();
        let result =
            accounts::login(&app.db, &app.auth, &meta, &input.email, &input.password).await;
        crate::observability::record_login(match &result {
            Ok(_) => "success",
            Err(crate::error::AppError::RateLimited { .. }) => "rate_limited",
            Err(_) => "failure",
        });
        Ok(result?.into())
    }

    /// Exchanges a refresh token for a new pair. Each refresh token works once; reusing a spent one
    /// signs out every session descended from the same login.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refresh token from the last AuthPayload; it is spent by this call.")]
        refresh_token: String,
    ) -> async_graphql::Result<AuthPayload> {
        ctx.limit_auth_attempt()?;
        let app = ctx.app()?;
        Ok(
            accounts::refresh(&app.db, &app.auth, &ctx.meta(), &refresh_token)
                .await?
                .into(),
        )
    }

    /// Revokes a refresh token. True when a live token was revoked; false when it was unknown or spent.
    async fn logout(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refresh token to revoke.")] refresh_token: String,
    ) -> async_graphql::Result<bool> {
        Ok(accounts::logout(&ctx.app()?.db, &ctx.meta(), &refresh_token).await?)
    }

    /// Changes the signed-in account's profile.
    async fn update_me(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The profile changes.")] input: UpdateMeInput,
    ) -> async_graphql::Result<User> {
        let actor = ctx.actor()?;
        Ok(accounts::update_me(&ctx.app()?.db, &actor, input.name)
            .await?
            .into())
    }

    /// Changes the password after checking the current one, and revokes all of the account's refresh
    /// tokens (other devices are signed out when their access token expires).
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The password in use now.")] current_password: String,
        #[graphql(desc = "The new password (same rules as at registration).")] new_password: String,
    ) -> async_graphql::Result<bool> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        accounts::change_password(
            &app.db,
            &app.auth,
            &actor,
            &ctx.meta(),
            &current_password,
            &new_password,
        )
        .await?;
        Ok(true)
    }
}
