//! Automatic persisted queries (Apollo APQ): a client sends only a document's SHA-256; an unknown hash
//! gets PersistedQueryNotFound, the client retries with the document, and later the hash alone works.

mod common;

use common::scenario;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn post(app: &common::TestApp, token: &str, body: Value) -> (reqwest::StatusCode, Value) {
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .header(
            "accept",
            "application/graphql-response+json, application/json;q=0.9",
        )
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = response.status();
    (status, response.json().await.expect("json body"))
}

scenario!(
    a_persisted_query_round_trips_through_its_hash,
    |app| async move {
        let user = app.signed_in_user().await;
        let query = "query MyName { me { name } }";
        let hash = sha256_hex(query);
        let extensions = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}});

        let (status, unknown) = post(&app, &user.access, json!({"extensions": extensions})).await;
        assert_eq!(status, 200, "{unknown}");
        assert_eq!(
            unknown["errors"][0]["message"], "PersistedQueryNotFound",
            "{unknown}"
        );

        let (status, registered) = post(
            &app,
            &user.access,
            json!({"query": query, "extensions": extensions}),
        )
        .await;
        assert_eq!(status, 200, "{registered}");
        assert!(registered["data"]["me"]["name"].is_string(), "{registered}");

        let (status, by_hash) = post(&app, &user.access, json!({"extensions": extensions})).await;
        assert_eq!(status, 200, "{by_hash}");
        assert_eq!(by_hash["data"], registered["data"]);

        // GET works too (urql and Apollo send persisted queries as GET).
        let response = get_by_hash(&app, &user.access, &extensions).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["data"], registered["data"]);
    }
);

scenario!(
    a_document_that_does_not_match_its_hash_is_refused,
    |app| async move {
        let user = app.signed_in_user().await;
        let extensions =
            json!({"persistedQuery": {"version": 1, "sha256Hash": sha256_hex("{ __typename }")}});
        let (_, body) = post(
            &app,
            &user.access,
            json!({"query": "{ me { id } }", "extensions": extensions}),
        )
        .await;
        assert!(body.get("data").is_none_or(Value::is_null), "{body}");
        assert!(
            !body["errors"].as_array().expect("errors").is_empty(),
            "{body}"
        );
    }
);

scenario!(
    a_persisted_mutation_cannot_be_run_by_its_hash_over_get,
    |app| async move {
        let user = app.signed_in_user().await;
        let mutation = r#"mutation Add { createPatient(input: {firstName: "Via", lastName: "Get", age: 30, gender: FEMALE}) { id } }"#;
        let extensions =
            json!({"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(mutation)}});
        let (status, registered) = post(
            &app,
            &user.access,
            json!({"query": mutation, "extensions": extensions}),
        )
        .await;
        assert_eq!(status, 200, "{registered}");
        assert!(
            registered["data"]["createPatient"]["id"].is_string(),
            "{registered}"
        );

        let response = get_by_hash(&app, &user.access, &extensions).await;
        assert_eq!(response.status(), 405);
        assert_eq!(
            response.headers().get("allow").map(|v| v.to_str().ok()),
            Some(Some("GET, POST"))
        );
        let body: Value = response.json().await.expect("json");
        assert!(body.get("data").is_none(), "{body}");

        let count = app
            .gql(
                Some(&user.access),
                "{ patients(first: 10) { totalCount } }",
                json!({}),
            )
            .await;
        assert_eq!(
            count.data()["patients"]["totalCount"],
            1,
            "the GET did not create a second patient"
        );
    }
);

/// A GET that names a persisted document by its hash only (as urql and Apollo send them).
async fn get_by_hash(app: &common::TestApp, token: &str, extensions: &Value) -> reqwest::Response {
    let url = format!(
        "/graphql?extensions={}",
        url_escape(&serde_json::to_string(extensions).expect("json"))
    );
    app.client
        .get(app.url(&url))
        .bearer_auth(token)
        .send()
        .await
        .expect("get")
}

fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
