//! The HTTP surface: health probes, GraphQL over GET, the offline GraphiQL page, and the shape of errors.
mod common;

use common::*;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::json;

/// What urql and other GraphQL-over-HTTP clients send.
const GRAPHQL_ACCEPT: &str = "application/graphql-response+json, application/json";
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// The values of `attribute="…"` in an HTML page.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let marker = format!("{attribute}=\"");
    html.match_indices(&marker)
        .filter_map(|(start, _)| {
            let rest = &html[start + marker.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

scenario!(health_and_readiness_probes_answer_ok, |app| async move {
    let health = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("GET /healthz");
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("GET /readyz");
    assert_eq!(ready.status(), StatusCode::OK);
});

scenario!(a_query_over_get_returns_data, |app| async move {
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ __typename }")])
        .header(ACCEPT, GRAPHQL_ACCEPT)
        .send()
        .await
        .expect("GET /graphql");
    assert_eq!(response.status(), StatusCode::OK);
    let body = GqlResponse::read(response).await;
    assert_eq!(body.data()["__typename"], "Query");

    let user = app.signed_in_user().await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ me { id } }")])
        .header(ACCEPT, GRAPHQL_ACCEPT)
        .bearer_auth(&user.access)
        .send()
        .await
        .expect("GET /graphql");
    let body = GqlResponse::read(response).await;
    assert_eq!(body.data()["me"]["id"], user.user_id.as_str());
});

scenario!(
    a_mutation_over_get_is_refused_and_changes_nothing,
    |app| async move {
        let user = app.signed_in_user().await;
        let mutation = r#"mutation { createDoctor(input: { firstName: "Via", lastName: "Get", specialization: "Cardiology", email: "via.get@example.com" }) { id } }"#;
        let response = app
            .client
            .get(app.url("/graphql"))
            .query(&[("query", mutation)])
            .header(ACCEPT, GRAPHQL_ACCEPT)
            .bearer_auth(&user.access)
            .send()
            .await
            .expect("GET /graphql");
        let status = response.status();
        assert!(
            status == StatusCode::METHOD_NOT_ALLOWED || status == StatusCode::BAD_REQUEST,
            "mutation over GET answered {status}: {}",
            response.text().await.unwrap_or_default()
        );

        let doctors = app
            .gql(user.token(), "{ doctors { totalCount } }", json!({}))
            .await;
        assert_eq!(doctors.data()["doctors"]["totalCount"], 0);
    }
);

scenario!(
    get_selects_the_operation_named_by_operation_name,
    |app| async move {
        let user = app.signed_in_user().await;
        let document = "query Name { me { name } } query Kind { __typename } mutation Drop { logout(refreshToken: \"x\") }";
        let get = |operation: &'static str| {
            app.client
                .get(app.url("/graphql"))
                .query(&[("query", document), ("operationName", operation)])
                .header(ACCEPT, GRAPHQL_ACCEPT)
                .bearer_auth(&user.access)
                .send()
        };
        let kind = GqlResponse::read(get("Kind").await.expect("GET Kind")).await;
        assert_eq!(kind.data()["__typename"], "Query");
        assert!(
            kind.data().get("me").is_none(),
            "only the named operation runs"
        );
        let name = GqlResponse::read(get("Name").await.expect("GET Name")).await;
        assert!(name.data()["me"]["name"].is_string());
        let mutation = get("Drop").await.expect("GET Drop");
        assert_eq!(mutation.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
);

scenario!(
    a_get_whose_parameters_are_not_utf8_is_a_bad_request,
    |app| async move {
        let response = app
            .client
            .get(app.url("/graphql?query=%7B__typename%FF%7D"))
            .header(ACCEPT, GRAPHQL_ACCEPT)
            .send()
            .await
            .expect("GET /graphql");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value = response.json().await.expect("json");
        assert!(body.get("data").is_none(), "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("UTF-8")),
            "{body}"
        );
    }
);

scenario!(
    the_graphiql_page_is_served_without_internet_access,
    |app| async move {
        let response = app
            .client
            .get(app.url("/graphql"))
            .header(ACCEPT, BROWSER_ACCEPT)
            .send()
            .await
            .expect("GET /graphql as a browser");
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/html"),
            "content-type {content_type}"
        );
        let html = response.text().await.expect("page body");
        assert!(html.to_lowercase().contains("graphiql"), "{html}");
        assert!(
            !html.contains("https://"),
            "the page refers to the internet: {html}"
        );

        let assets: Vec<&str> = attribute_values(&html, "src")
            .into_iter()
            .chain(attribute_values(&html, "href"))
            .filter(|value| {
                !value.is_empty() && !value.starts_with('#') && !value.starts_with("data:")
            })
            .collect();
        assert!(
            !assets.is_empty(),
            "the page loads no scripts or styles: {html}"
        );
        for asset in assets {
            assert!(!asset.starts_with("//"), "protocol-relative URL {asset}");
            let path = format!(
                "/{}",
                asset.trim_start_matches("./").trim_start_matches('/')
            );
            let response = app
                .client
                .get(app.url(&path))
                .send()
                .await
                .expect("GET asset");
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "asset {asset} (GET {path})"
            );
        }
    }
);

scenario!(the_vendored_graphiql_script_is_served, |app| async move {
    let response = app
        .client
        .get(app.url("/graphiql/graphiql.min.js"))
        .send()
        .await
        .expect("GET graphiql.min.js");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.contains("javascript"),
        "content-type {content_type}"
    );
    assert!(response.bytes().await.expect("script").len() > 10_000);
});

scenario!(
    a_request_without_a_token_is_unauthenticated,
    |app| async move {
        let response = app
            .gql(None, "{ patients { totalCount } }", json!({}))
            .await;
        response.assert_code("UNAUTHENTICATED");
        assert!(response.body["data"].is_null(), "{}", response.body);
    }
);

scenario!(
    every_execution_error_carries_a_code_and_no_database_internals,
    |app| async move {
        // GqlResponse::read checks each response: codes come from errors.md, messages show no SQL or driver names.
        let user = app.signed_in_user().await;
        let other = app.signed_in_user().await;
        let mut responses = vec![
            app.try_register("Dup", &user.email, PASSWORD).await,
            app.try_login(&user.email, "wrong password for sure").await,
            app.gql(None, "{ me { id } }", json!({})).await,
            app.gql(
                user.token(),
                "query($id: ID!) { patient(id: $id) { id } }",
                json!({ "id": "nope" }),
            )
            .await,
        ];
        let mut duplicate = doctor_input("Dup", "Email", "Cardiology");
        duplicate["email"] = json!("dup.email@example.com");
        let doctor = app.create_doctor(&user.access, duplicate.clone()).await;
        responses.push(
            app.gql(
                user.token(),
                "mutation($input: CreateDoctorInput!) { createDoctor(input: $input) { id } }",
                json!({ "input": duplicate }),
            )
            .await,
        );
        responses.push(
            app.gql(
                other.token(),
                "mutation($id: ID!) { deleteDoctor(id: $id) }",
                json!({ "id": doctor }),
            )
            .await,
        );
        let patient = app
            .create_patient(&user.access, patient_input("Dup", "Assignment", 30))
            .await;
        app.assign(&user.access, &patient, &doctor).await;
        responses.push(app.try_assign(&user.access, &patient, &doctor).await);
        responses.push(app.try_assign(&other.access, &patient, &doctor).await);

        let codes: Vec<String> = responses.iter().map(GqlResponse::error_code).collect();
        assert_eq!(
            codes,
            [
                "CONFLICT",
                "UNAUTHENTICATED",
                "UNAUTHENTICATED",
                "BAD_USER_INPUT",
                "CONFLICT",
                "FORBIDDEN",
                "CONFLICT",
                "NOT_FOUND"
            ]
        );
    }
);

scenario!(
    a_malformed_request_body_is_a_client_error,
    |app| async move {
        let response = app
            .client
            .post(app.url("/graphql"))
            .header(CONTENT_TYPE, "application/json")
            .body("{ this is not json")
            .send()
            .await
            .expect("POST /graphql");
        assert!(
            response.status().is_client_error(),
            "status {}",
            response.status()
        );
    }
);

scenario!(
    response_fields_come_in_the_order_the_query_asked_for,
    |app| async move {
        let response = app
            .client
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .body(r#"{"query": "{ zeta: __typename __typename alpha: __typename }"}"#)
            .send()
            .await
            .expect("send");
        let text = response.text().await.expect("body");
        let position = |key: &str| {
            text.find(key)
                .unwrap_or_else(|| panic!("{key} missing in {text}"))
        };
        assert!(position("\"zeta\"") < position("\"__typename\""), "{text}");
        assert!(position("\"__typename\"") < position("\"alpha\""), "{text}");
    }
);
