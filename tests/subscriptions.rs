//! Subscriptions over graphql-transport-ws at /graphql/ws: authenticated in connection_init, only the
//! viewer's own changes, and (on PostgreSQL) changes made through another instance arrive too.

mod common;

use std::time::Duration;

use common::process::Server;
use common::{TestApp, patient_input, scenario};
use futures_util::{SinkExt, StreamExt};
use medgraph::config::JwtSecret;
use serde_json::{Value, json};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Longest wait for a message that must arrive.
const WAIT: Duration = Duration::from_secs(10);

async fn open(app_addr: std::net::SocketAddr) -> Socket {
    let mut request = format!("ws://{app_addr}/graphql/ws")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (socket, response) = connect_async(request).await.expect("websocket handshake");
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("graphql-transport-ws")
    );
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("send");
}

/// The next protocol message (pings answered), or None when the server closed the connection.
async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a message within the wait")?;
        match message.expect("websocket message") {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).expect("json message");
                if value["type"] == "ping" {
                    send(socket, json!({"type": "pong"})).await;
                    continue;
                }
                return Some(value);
            }
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

async fn subscribed(app_addr: std::net::SocketAddr, token: &str, query: &str) -> Socket {
    let mut socket = open(app_addr).await;
    send(
        &mut socket,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    )
    .await;
    assert_eq!(
        next(&mut socket).await.expect("ack")["type"],
        "connection_ack"
    );
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": query}}),
    )
    .await;
    socket
}

/// Waits until `app` has registered `count` subscriptions (and, on PostgreSQL, listens): graphql-ws
/// has no acknowledgement of a subscribe message, so a change made right after sending it could
/// otherwise commit before the subscription exists.
async fn started(app: &TestApp, count: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let postgres = app.state.db.get_database_backend() == sea_orm::DbBackend::Postgres;
    while app.state.events.subscriber_count() < count
        || (postgres && !app.state.events.is_listening())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the subscription did not start"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

const PATIENT_EVENTS: &str =
    "subscription { patientEvents { action patientId patient { firstName } } }";

scenario!(
    a_connection_without_a_valid_token_is_refused,
    |app| async move {
        for payload in [json!({}), json!({"Authorization": "Bearer not-a-token"})] {
            let mut socket = open(app.addr).await;
            send(
                &mut socket,
                json!({"type": "connection_init", "payload": payload}),
            )
            .await;
            let answer = next(&mut socket).await;
            assert!(
                answer
                    .as_ref()
                    .is_none_or(|m| m["type"] != "connection_ack"),
                "no ack without a valid token, got {answer:?}"
            );
        }
    }
);

scenario!(patient_events_reach_only_their_owner, |app| async move {
    let owner = app.signed_in_user().await;
    let stranger = app.signed_in_user().await;
    let mut socket = subscribed(app.addr, &owner.access, PATIENT_EVENTS).await;
    started(&app, 1).await;

    // The stranger's change first: had it leaked, it would be the first message.
    app.create_patient(&stranger.access, patient_input("Not", "Yours", 50))
        .await;
    let id = app
        .create_patient(&owner.access, patient_input("Mine", "Only", 40))
        .await;

    let event = next(&mut socket).await.expect("an event");
    assert_eq!(event["type"], "next", "{event}");
    let payload = &event["payload"]["data"]["patientEvents"];
    assert_eq!(payload["action"], "CREATED");
    assert_eq!(payload["patientId"], Value::String(id.clone()));
    assert_eq!(payload["patient"]["firstName"], "Mine");

    // A refused change is rolled back, and so is its event: the next message is the delete's.
    let refused = app
        .gql(
            owner.token(),
            "mutation($id: ID!) { updatePatient(id: $id, input: { phone: \"1\" }, expectedVersion: 99) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(refused.error_code(), "CONFLICT");

    app.gql(
        owner.token(),
        "mutation($id: ID!) { deletePatient(id: $id) }",
        json!({"id": id}),
    )
    .await
    .data();
    let deleted = next(&mut socket).await.expect("an event");
    assert_eq!(
        deleted["payload"]["data"]["patientEvents"]["action"],
        "DELETED"
    );
    assert_eq!(
        deleted["payload"]["data"]["patientEvents"]["patient"],
        Value::Null
    );
});

scenario!(mapping_events_follow_assignments, |app| async move {
    let owner = app.signed_in_user().await;
    let mut socket = subscribed(
        app.addr,
        &owner.access,
        "subscription { mappingEvents { action mappingId patient { firstName } doctor { lastName } } }",
    )
    .await;
    started(&app, 1).await;
    let patient = app
        .create_patient(&owner.access, patient_input("Pat", "Ient", 30))
        .await;
    let doctor = app
        .create_doctor(
            &owner.access,
            common::doctor_input("Doc", "Holliday", "Cardiology"),
        )
        .await;
    let mapping = app.assign(&owner.access, &patient, &doctor).await;

    let assigned = next(&mut socket).await.expect("an event");
    let payload = &assigned["payload"]["data"]["mappingEvents"];
    assert_eq!(payload["action"], "ASSIGNED", "{assigned}");
    assert_eq!(payload["mappingId"], Value::String(mapping.clone()));
    assert_eq!(payload["doctor"]["lastName"], "Holliday");

    app.gql(
        owner.token(),
        "mutation($id: ID!) { unassignDoctor(mappingId: $id) }",
        json!({"id": mapping}),
    )
    .await
    .data();
    let unassigned = next(&mut socket).await.expect("an event");
    assert_eq!(
        unassigned["payload"]["data"]["mappingEvents"]["action"],
        "UNASSIGNED"
    );
});

scenario!(
    mapping_events_reach_only_the_patients_owner,
    |app| async move {
        let owner = app.signed_in_user().await;
        let stranger = app.signed_in_user().await;
        let mut strangers_socket = subscribed(
            app.addr,
            &stranger.access,
            "subscription { mappingEvents { action mappingId } }",
        )
        .await;
        started(&app, 1).await;
        let doctor = app
            .create_doctor(
                &owner.access,
                common::doctor_input("Shared", "Doc", "Oncology"),
            )
            .await;
        let owners_patient = app
            .create_patient(&owner.access, patient_input("Own", "Er", 50))
            .await;
        app.assign(&owner.access, &owners_patient, &doctor).await;
        // The stranger's own assignment comes next: the first event it sees must be that one.
        let strangers_patient = app
            .create_patient(&stranger.access, patient_input("Str", "Anger", 40))
            .await;
        let strangers_mapping = app
            .assign(&stranger.access, &strangers_patient, &doctor)
            .await;
        let first = next(&mut strangers_socket).await.expect("an event");
        assert_eq!(
            first["payload"]["data"]["mappingEvents"]["mappingId"],
            Value::String(strangers_mapping),
            "{first}"
        );
    }
);

scenario!(
    a_subscription_over_the_shape_limits_is_refused,
    |app| async move {
        let user = app.signed_in_user().await;
        let aliases: String = (0..20).map(|i| format!("a{i}: action ")).collect();
        let mut socket = subscribed(
            app.addr,
            &user.access,
            &format!("subscription {{ patientEvents {{ {aliases} }} }}"),
        )
        .await;
        // async-graphql answers a refused document with one `next` carrying only errors.
        let answer = next(&mut socket).await.expect("an answer");
        assert_eq!(answer["type"], "next", "{answer}");
        assert!(answer["payload"]["data"].is_null(), "{answer}");
        assert!(
            answer["payload"]["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("aliases")),
            "{answer}"
        );
    }
);

/// A subscription ends (`complete`) when the access token its connection signed in with expires.
async fn subscriptions_end_when_the_connection_token_expires(db: common::TestDb) {
    let app = common::TestApp::spawn_with(db, |c| {
        c.access_token_ttl = Duration::from_secs(2);
    })
    .await;
    let owner = app.signed_in_user().await;
    let mut socket = subscribed(app.addr, &owner.access, PATIENT_EVENTS).await;
    started(&app, 1).await;
    // Still signed in: events arrive.
    app.create_patient(&owner.access, patient_input("Before", "Expiry", 30))
        .await;
    let event = next(&mut socket).await.expect("an event");
    assert_eq!(event["type"], "next", "{event}");
    // Then the token runs out, and the server completes the subscription.
    let started = std::time::Instant::now();
    let end = next(&mut socket).await.expect("a message");
    assert_eq!(end["type"], "complete", "{end}");
    assert!(
        started.elapsed() <= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_end_when_the_connection_token_expires_sqlite() {
    subscriptions_end_when_the_connection_token_expires(common::TestDb::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_end_when_the_connection_token_expires_postgres() {
    if common::postgres_admin_url().is_none() {
        eprintln!("skipping: TEST_DATABASE_URL not set");
        return;
    }
    subscriptions_end_when_the_connection_token_expires(common::TestDb::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_through_one_server_process_reaches_a_subscriber_of_another() {
    if common::postgres_admin_url().is_none() {
        eprintln!("skipping: TEST_DATABASE_URL not set");
        return;
    }
    const SECRET: &str = "subscriptions-test-secret-of-at-least-32-bytes";
    let first = TestApp::spawn_with(common::TestDb::Postgres, |c| {
        c.jwt_secret = JwtSecret::new(SECRET)
    })
    .await;
    // A second server: the medgraph binary as its own OS process on the same database, as behind a load
    // balancer.
    let second = Server::start(&first.state.config.database_url, SECRET, &[]).await;
    let owner = first.signed_in_user().await;

    for (subscriber, writer) in [(second.addr(), first.addr), (first.addr, second.addr())] {
        let mut socket = subscribed(subscriber, &owner.access, PATIENT_EVENTS).await;
        // The subscription starts listening asynchronously: repeat the change until one arrives.
        let mut created = Vec::new();
        let event = loop {
            created.push(create_patient_at(&first, writer, &owner.access).await);
            match tokio::time::timeout(Duration::from_millis(500), next(&mut socket)).await {
                Ok(event) => break event.expect("an event"),
                Err(_) if created.len() < 10 => continue,
                Err(_) => panic!(
                    "no event reached the other server after {} changes",
                    created.len()
                ),
            }
        };
        let payload = &event["payload"]["data"]["patientEvents"];
        assert_eq!(payload["action"], "CREATED", "{event}");
        assert!(created.contains(&payload["patientId"].as_str().expect("id").to_owned()));
        assert_eq!(payload["patient"]["firstName"], "Cross");
    }
}

/// Creates a patient through the server at `addr` (either process).
async fn create_patient_at(app: &TestApp, addr: std::net::SocketAddr, token: &str) -> String {
    let body: Value = app
        .client
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(token)
        .json(&json!({
            "query": "mutation($input: CreatePatientInput!) { createPatient(input: $input) { id } }",
            "variables": {"input": patient_input("Cross", "Instance", 33)},
        }))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    body["data"]["createPatient"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("createPatient failed: {body}"))
        .to_owned()
}

/// LISTEN connections of the test database (each one's backend is woken by every NOTIFY).
async fn listening_connections(app: &TestApp) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let row = app
        .state
        .db
        .query_one_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN %'",
        ))
        .await
        .expect("read pg_stat_activity")
        .expect("a row");
    row.try_get("", "n").expect("a count")
}

async fn wait_until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_listens_only_while_it_has_subscriptions() {
    if common::postgres_admin_url().is_none() {
        eprintln!("skipping: TEST_DATABASE_URL not set");
        return;
    }
    let app = TestApp::spawn_with(common::TestDb::Postgres, |c| {
        c.events_listen_linger = Duration::from_millis(300);
    })
    .await;
    let owner = app.signed_in_user().await;
    assert!(app.state.events.is_listening(), "listening after the start");

    wait_until("stops listening without subscriptions", async || {
        !app.state.events.is_listening() && listening_connections(&app).await == 0
    })
    .await;
    // Changes meanwhile still notify (for other instances), and nothing breaks.
    let quiet = app
        .create_patient(&owner.access, patient_input("Quiet", "Time", 30))
        .await;

    // The next subscription listens again before it starts, so the first change after it arrives.
    let mut socket = subscribed(app.addr, &owner.access, PATIENT_EVENTS).await;
    started(&app, 1).await;
    wait_until("listens again for a subscription", async || {
        app.state.events.is_listening()
    })
    .await;
    assert_eq!(listening_connections(&app).await, 1);
    let id = app
        .create_patient(&owner.access, patient_input("Heard", "Again", 31))
        .await;
    // The quiet change's NOTIFY goes out after its commit and may reach the new subscription first.
    let mut event = next(&mut socket).await.expect("an event");
    if event["payload"]["data"]["patientEvents"]["patientId"] == Value::String(quiet) {
        event = next(&mut socket).await.expect("an event");
    }
    assert_eq!(
        event["payload"]["data"]["patientEvents"]["patientId"],
        Value::String(id),
        "{event}"
    );

    // Still listening while the subscription lasts (several lingers), then not after it ends.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(app.state.events.is_listening());
    drop(socket);
    wait_until("stops listening after the last subscription", async || {
        !app.state.events.is_listening() && listening_connections(&app).await == 0
    })
    .await;
}

scenario!(
    identical_events_of_concurrent_changes_each_arrive,
    |app| async move {
        let owner = app.signed_in_user().await;
        let mut socket = subscribed(app.addr, &owner.access, PATIENT_EVENTS).await;
        started(&app, 1).await;
        let id = app
            .create_patient(&owner.access, patient_input("Many", "Updates", 40))
            .await;
        let created = next(&mut socket).await.expect("the create's event");
        assert_eq!(
            created["payload"]["data"]["patientEvents"]["action"], "CREATED",
            "{created}"
        );
        // Ten updates of one patient make ten identical events, and each is delivered (events are
        // sent after their commits, in batches, and PostgreSQL folds identical notifications of one
        // transaction: the payloads are numbered, see the unit test in services/events.rs).
        const UPDATES: usize = 10;
        for answer in app
            .gql_concurrently(
                UPDATES,
                owner.token(),
                "mutation($id: ID!) { updatePatient(id: $id, input: { lastName: \"Again\" }) { id } }",
                json!({ "id": id }),
            )
            .await
        {
            answer.data();
        }
        for n in 0..UPDATES {
            let event = next(&mut socket)
                .await
                .unwrap_or_else(|| panic!("event {n}"));
            let payload = &event["payload"]["data"]["patientEvents"];
            assert_eq!(payload["action"], "UPDATED", "{event}");
            assert_eq!(payload["patientId"], Value::String(id.clone()));
        }
    }
);
