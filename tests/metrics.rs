//! `/metrics` in Prometheus format: requests and latency per operation, errors per code, login
//! outcomes and database pool usage.

mod common;

use common::scenario;
use serde_json::json;

scenario!(
    metrics_count_operations_errors_logins_and_pool_usage,
    |app| async move {
        let user = app.signed_in_user().await;
        let named = app
            .gql(
                user.token(),
                "query DashboardCounts { patients { totalCount } }",
                json!({}),
            )
            .await;
        assert_eq!(named.data()["patients"]["totalCount"], 0);
        app.gql(None, "query Anonymous { me { id } }", json!({}))
            .await
            .assert_code("UNAUTHENTICATED");
        app.try_login(&user.email, "definitely the wrong password")
            .await
            .assert_code("UNAUTHENTICATED");
        app.login(&user.email, common::PASSWORD).await;

        let response = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .expect("metrics");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .expect("header")
            .to_owned();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let text = response.text().await.expect("body");

        for expected in [
            r#"graphql_requests_total{operation="DashboardCounts"}"#,
            r#"graphql_request_duration_seconds_bucket{operation="DashboardCounts",le="#,
            r#"graphql_errors_total{code="UNAUTHENTICATED"}"#,
            r#"auth_logins_total{outcome="failure"}"#,
            r#"auth_logins_total{outcome="success"}"#,
            "db_pool_connections ",
            "db_pool_idle_connections ",
        ] {
            assert!(text.contains(expected), "missing {expected} in:\n{text}");
        }
    }
);
