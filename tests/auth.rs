//! Accounts and tokens: register, login, `me`, refresh rotation with reuse detection, logout, the profile.
mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ME: &str = "{ me { id name email role createdAt } }";

async fn refresh(app: &TestApp, refresh_token: &str) -> GqlResponse {
    app.gql(
        None,
        &format!("mutation($t: String!) {{ refreshToken(refreshToken: $t) {{ {AUTH_PAYLOAD} }} }}"),
        json!({ "t": refresh_token }),
    )
    .await
}

async fn change_password(app: &TestApp, token: &str, current: &str, new: &str) -> GqlResponse {
    app.gql(
        Some(token),
        "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
        json!({ "c": current, "n": new }),
    )
    .await
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner_pad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let outer_pad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&inner_pad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&outer_pad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

fn jwt_part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("serialize"))
}

/// The claims of a real token, decoded (without checking anything).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("JSON claims")
}

fn signed_hs256(claims: &Value, secret: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        jwt_part(&json!({ "alg": "HS256", "typ": "JWT" })),
        jwt_part(claims)
    );
    let signature = URL_SAFE_NO_PAD.encode(hmac_sha256(secret, signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

scenario!(
    registering_returns_bearer_tokens_and_the_new_user,
    |app| async move {
        let email = unique_email("grace");
        let response = app.try_register("Grace Hopper", &email, PASSWORD).await;
        let payload = &response.data()["register"];
        assert_eq!(payload["tokenType"], "Bearer");
        assert_eq!(payload["expiresIn"], 900);
        assert_eq!(payload["user"]["name"], "Grace Hopper");
        assert_eq!(payload["user"]["email"], email.as_str());
        assert_eq!(payload["user"]["role"], "USER");
        assert!(
            payload["user"]["createdAt"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
        assert_ne!(payload["accessToken"], payload["refreshToken"]);

        let access = string(&payload["accessToken"]);
        let me = app.gql(Some(&access), ME, json!({})).await;
        assert_eq!(me.data()["me"]["id"], payload["user"]["id"]);
        assert_eq!(me.data()["me"]["email"], email.as_str());
    }
);

scenario!(login_returns_tokens_that_work, |app| async move {
    let user = app.signed_in_user().await;
    let response = app.try_login(&user.email, PASSWORD).await;
    let payload = &response.data()["login"];
    assert_eq!(payload["tokenType"], "Bearer");
    assert_eq!(payload["expiresIn"], 900);
    assert_eq!(payload["user"]["id"], user.user_id.as_str());
    let me = app
        .gql(payload["accessToken"].as_str(), ME, json!({}))
        .await;
    assert_eq!(me.data()["me"]["id"], user.user_id.as_str());
    let refreshed = refresh(
        &app,
        payload["refreshToken"].as_str().expect("refresh token"),
    )
    .await;
    assert_eq!(
        refreshed.data()["refreshToken"]["user"]["id"],
        user.user_id.as_str()
    );
});

scenario!(
    a_password_shorter_than_the_minimum_is_rejected,
    |app| async move {
        assert_eq!(
            app.password_min_length, 15,
            "Config::for_tests sets a 15-character minimum"
        );
        let too_short = "x".repeat(app.password_min_length - 1);
        let response = app
            .try_register("Short Password", &unique_email("short"), &too_short)
            .await;
        response.assert_bad_input("password");

        let just_long_enough = "abcdefghijklmnopqrstuvwxyz"[..app.password_min_length].to_owned();
        let response = app
            .try_register("Long Enough", &unique_email("long"), &just_long_enough)
            .await;
        assert_eq!(response.data()["register"]["user"]["name"], "Long Enough");
    }
);

scenario!(a_commonly_used_password_is_rejected, |app| async move {
    let list = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/auth/common_passwords.txt"
    ))
    .expect("src/auth/common_passwords.txt exists");
    let common = list
        .lines()
        .map(str::trim)
        .find(|line| !line.starts_with('#') && line.chars().count() >= app.password_min_length)
        .expect("the list has a password at least as long as the minimum");
    let response = app
        .try_register("Common Password", &unique_email("common"), common)
        .await;
    response.assert_bad_input("password");
});

scenario!(an_invalid_email_is_rejected, |app| async move {
    for email in ["not-an-email", "", "two@@example.com"] {
        let response = app.try_register("Bad Email", email, PASSWORD).await;
        response.assert_bad_input("email");
    }
});

scenario!(an_empty_or_too_long_name_is_rejected, |app| async move {
    for name in [String::new(), "   ".to_owned(), "n".repeat(101)] {
        let response = app
            .try_register(&name, &unique_email("name"), PASSWORD)
            .await;
        response.assert_bad_input("name");
    }
    let longest = "n".repeat(100);
    let response = app
        .try_register(&longest, &unique_email("name"), PASSWORD)
        .await;
    assert_eq!(
        response.data()["register"]["user"]["name"],
        longest.as_str()
    );
});

scenario!(email_is_trimmed_and_lower_cased, |app| async move {
    let registered = app
        .register("Alice", "  Alice@Example.COM ", PASSWORD)
        .await;
    assert_eq!(registered.email, "alice@example.com");

    let logged_in = app.login("alice@example.com", PASSWORD).await;
    assert_eq!(logged_in.user_id, registered.user_id);

    let again = app
        .try_register("Other Alice", "ALICE@example.com", PASSWORD)
        .await;
    again.assert_code("CONFLICT");
});

scenario!(
    wrong_password_and_unknown_email_fail_login_the_same_way,
    |app| async move {
        let user = app.signed_in_user().await;
        let wrong_password = app.try_login(&user.email, "this is not the password").await;
        let unknown_email = app.try_login(&unique_email("nobody"), PASSWORD).await;
        wrong_password.assert_code("UNAUTHENTICATED");
        unknown_email.assert_code("UNAUTHENTICATED");
        assert_eq!(
            wrong_password.error_message(),
            unknown_email.error_message()
        );
        assert!(
            wrong_password.body["data"].is_null(),
            "{}",
            wrong_password.body
        );
    }
);

scenario!(me_requires_a_token, |app| async move {
    app.gql(None, ME, json!({}))
        .await
        .assert_code("UNAUTHENTICATED");
    for (mutation, variables) in [
        (
            "mutation { updateMe(input: { name: \"Nobody\" }) { id } }",
            json!({}),
        ),
        (
            "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
            json!({ "c": "whatever it is now", "n": "whatever it will be next" }),
        ),
    ] {
        app.gql(None, mutation, variables)
            .await
            .assert_code("UNAUTHENTICATED");
    }
    app.gql(Some("garbage"), ME, json!({}))
        .await
        .assert_code("UNAUTHENTICATED");
    app.gql(Some("a.b.c"), ME, json!({}))
        .await
        .assert_code("UNAUTHENTICATED");
});

scenario!(
    a_forged_or_tampered_access_token_is_rejected,
    |app| async move {
        let user = app.signed_in_user().await;
        let claims = claims_of(&user.access);
        assert!(claims["exp"].is_number(), "access token claims: {claims}");

        let other_secret = signed_hs256(&claims, b"not the server's secret, but 32+ bytes long");
        app.gql(Some(&other_secret), ME, json!({}))
            .await
            .assert_code("UNAUTHENTICATED");

        let unsigned = format!(
            "{}.{}.",
            jwt_part(&json!({ "alg": "none", "typ": "JWT" })),
            jwt_part(&claims)
        );
        app.gql(Some(&unsigned), ME, json!({}))
            .await
            .assert_code("UNAUTHENTICATED");

        let mut admin_claims = claims.clone();
        admin_claims["role"] = json!("ADMIN");
        let original_signature = user.access.rsplit('.').next().expect("signature");
        let tampered = format!(
            "{}.{}.{original_signature}",
            user.access.split('.').next().expect("header"),
            jwt_part(&admin_claims)
        );
        app.gql(Some(&tampered), ME, json!({}))
            .await
            .assert_code("UNAUTHENTICATED");

        // The refresh token is not an access token.
        app.gql(Some(&user.refresh), ME, json!({}))
            .await
            .assert_code("UNAUTHENTICATED");

        // The genuine token still works.
        assert_eq!(
            app.gql(user.token(), ME, json!({})).await.data()["me"]["id"],
            user.user_id.as_str()
        );
    }
);

scenario!(refresh_rotates_the_token_pair, |app| async move {
    let user = app.signed_in_user().await;
    let response = refresh(&app, &user.refresh).await;
    let payload = &response.data()["refreshToken"];
    assert_eq!(payload["tokenType"], "Bearer");
    assert_eq!(payload["expiresIn"], 900);
    assert_eq!(payload["user"]["id"], user.user_id.as_str());
    let new_refresh = string(&payload["refreshToken"]);
    assert_ne!(new_refresh, user.refresh);

    let me = app
        .gql(payload["accessToken"].as_str(), ME, json!({}))
        .await;
    assert_eq!(me.data()["me"]["id"], user.user_id.as_str());

    let next = refresh(&app, &new_refresh).await;
    assert_ne!(
        string(&next.data()["refreshToken"]["refreshToken"]),
        new_refresh
    );
});

scenario!(
    reusing_a_rotated_refresh_token_revokes_its_whole_family,
    |app| async move {
        let user = app.signed_in_user().await;
        let first_rotation = refresh(&app, &user.refresh).await;
        let rotated = string(&first_rotation.data()["refreshToken"]["refreshToken"]);

        refresh(&app, &user.refresh)
            .await
            .assert_code("UNAUTHENTICATED");
        refresh(&app, &rotated).await.assert_code("UNAUTHENTICATED");

        // Another sign-in (another family) is unaffected.
        let other_device = app.login(&user.email, PASSWORD).await;
        refresh(&app, &other_device.refresh).await.data();
    }
);

scenario!(an_unknown_refresh_token_is_rejected, |app| async move {
    refresh(&app, "not-a-refresh-token")
        .await
        .assert_code("UNAUTHENTICATED");
});

scenario!(logout_revokes_the_refresh_token, |app| async move {
    let user = app.signed_in_user().await;
    let response = app
        .gql(
            None,
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": user.refresh }),
        )
        .await;
    assert_eq!(response.data()["logout"], true);
    refresh(&app, &user.refresh)
        .await
        .assert_code("UNAUTHENTICATED");
});

scenario!(
    change_password_with_a_wrong_current_password_is_rejected,
    |app| async move {
        let user = app.signed_in_user().await;
        let response = change_password(
            &app,
            &user.access,
            "not my current password",
            "a brand new long passphrase",
        )
        .await;
        response.assert_bad_input("currentPassword");
        app.login(&user.email, PASSWORD).await;
        app.try_login(&user.email, "a brand new long passphrase")
            .await
            .assert_code("UNAUTHENTICATED");
    }
);

scenario!(
    change_password_applies_the_password_rules,
    |app| async move {
        let user = app.signed_in_user().await;
        let response = change_password(&app, &user.access, PASSWORD, "short").await;
        response.assert_bad_input("newPassword");
        app.login(&user.email, PASSWORD).await;
    }
);

scenario!(
    change_password_replaces_the_password_and_revokes_refresh_tokens,
    |app| async move {
        let user = app.signed_in_user().await;
        let other_device = app.login(&user.email, PASSWORD).await;
        let new_password = "a brand new long passphrase";

        let response = change_password(&app, &user.access, PASSWORD, new_password).await;
        assert_eq!(response.data()["changePassword"], true);

        refresh(&app, &user.refresh)
            .await
            .assert_code("UNAUTHENTICATED");
        refresh(&app, &other_device.refresh)
            .await
            .assert_code("UNAUTHENTICATED");
        app.try_login(&user.email, PASSWORD)
            .await
            .assert_code("UNAUTHENTICATED");
        let after = app.login(&user.email, new_password).await;
        assert_eq!(after.user_id, user.user_id);
    }
);

scenario!(update_me_changes_the_name, |app| async move {
    let user = app.signed_in_user().await;
    let update = "mutation($input: UpdateMeInput!) { updateMe(input: $input) { id name email } }";
    let response = app
        .gql(
            user.token(),
            update,
            json!({ "input": { "name": "  Ada Lovelace  " } }),
        )
        .await;
    assert_eq!(response.data()["updateMe"]["name"], "Ada Lovelace");
    assert_eq!(response.data()["updateMe"]["email"], user.email.as_str());
    let me = app.gql(user.token(), ME, json!({})).await;
    assert_eq!(me.data()["me"]["name"], "Ada Lovelace");

    for bad in [String::new(), "n".repeat(101)] {
        app.gql(user.token(), update, json!({ "input": { "name": bad } }))
            .await
            .assert_bad_input("name");
    }
    let me = app.gql(user.token(), ME, json!({})).await;
    assert_eq!(me.data()["me"]["name"], "Ada Lovelace");

    app.gql(None, update, json!({ "input": { "name": "Nobody" } }))
        .await
        .assert_code("UNAUTHENTICATED");
});

/// A refresh token past `REFRESH_TOKEN_TTL` is refused like a spent one.
async fn an_expired_refresh_token_is_refused(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        c.refresh_token_ttl = std::time::Duration::from_secs(1);
    })
    .await;
    let user = app.signed_in_user().await;
    let fresh = refresh(&app, &user.refresh).await;
    let rotated = string(&fresh.data()["refreshToken"]["refreshToken"]);
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    refresh(&app, &rotated).await.assert_code("UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_refresh_token_is_refused_sqlite() {
    an_expired_refresh_token_is_refused(TestDb::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_refresh_token_is_refused_postgres() {
    if postgres_admin_url().is_none() {
        eprintln!("skipping: TEST_DATABASE_URL not set");
        return;
    }
    an_expired_refresh_token_is_refused(TestDb::Postgres).await;
}

scenario!(
    the_database_itself_refuses_an_email_that_differs_only_in_case,
    |app| async move {
        use medgraph::entities::user;
        use sea_orm::{ActiveModelTrait, EntityTrait, Set, SqlErr};
        let email = unique_email("case");
        app.register("Case One", &email, PASSWORD).await;
        let existing = user::Entity::find()
            .all(&app.state.db)
            .await
            .expect("read users")
            .into_iter()
            .find(|u| u.email == email)
            .expect("the registered user");
        // Written around the application, which would have lower-cased it.
        let mut shouting = user::ActiveModel::from(existing).reset_all();
        shouting.id = Set(uuid::Uuid::now_v7());
        shouting.email = Set(email.to_uppercase());
        let err = user::Entity::insert(shouting)
            .exec(&app.state.db)
            .await
            .expect_err("a second account for the same address");
        assert!(
            matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))),
            "{err}"
        );
    }
);
