//! The scenarios: what each connection sends, how an answer is judged, and the one-off check of each
//! scenario's answer before the load starts.

use std::{net::SocketAddr, sync::Arc};

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use hyper::StatusCode;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use serde::Deserialize;
use serde_json::{Value, json, value::RawValue};

use crate::driver::{Connection, Outcome, Session, SessionFactory};

pub const TYPENAME: &str = "{ __typename }";
pub const LIST: &str = "query BenchList($first: Int!) { patients(first: $first) { totalCount \
    nodes { id firstName lastName age gender doctors { id fullName specialization } } } }";
/// (a) without the nested doctors, to see what the nested level costs.
pub const LIST_PLAIN: &str = "query BenchListPlain($first: Int!) { patients(first: $first) { totalCount \
    nodes { id firstName lastName age gender } } }";
pub const PATIENT: &str =
    "query BenchPatient($id: ID!) { patient(id: $id) { id firstName lastName age gender phone } }";
pub const CREATE: &str = "mutation BenchCreate($input: CreatePatientInput!) { \
    createPatient(input: $input) { id firstName lastName } }";
pub const ASSIGN: &str = "mutation BenchAssign($patientId: ID!, $doctorId: ID!) { \
    assignDoctor(patientId: $patientId, doctorId: $doctorId) { id } }";
pub const UNASSIGN: &str = "mutation BenchUnassign($id: ID!) { unassignDoctor(mappingId: $id) }";
pub const LOGIN: &str =
    "mutation BenchLogin($input: LoginInput!) { login(input: $input) { accessToken } }";
pub const ME: &str = "query BenchMe { me { id name email role } }";
pub const UPDATE: &str = "mutation BenchUpdate($id: ID!, $input: UpdatePatientInput!) { \
    updatePatient(id: $id, input: $input) { id phone } }";
pub const DOCTORS: &str =
    "query BenchDoctors { doctors(first: 20) { nodes { id fullName specialization } } }";

/// The page size of scenario (a).
pub const LIST_PAGE: usize = 20;

/// What the scenarios work on: the benchmark user, their seeded patients, and one doctor per connection
/// created by the benchmark (so assigning it never collides with a seeded mapping).
pub struct Fixture {
    pub token: Arc<str>,
    /// Another seeded user's token: (c) creates patients there, so the benchmark user keeps exactly the
    /// seeded 1,000 and (a)'s `totalCount` costs the same in every round.
    pub creator_token: Arc<str>,
    pub email: String,
    pub password: String,
    pub patient_ids: Vec<String>,
    pub bench_doctor_ids: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scenario {
    /// `{ __typename }`: the framework's own ceiling.
    Typename,
    /// (a) `patients(first: 20)` with each patient's doctors and `totalCount`.
    List,
    /// (a) with `Cache-Control: no-cache`: every list computed, none answered by the response cache.
    ListComputed,
    /// (a) at one connection, computed: latency without queueing.
    ListOneConnection,
    /// (a) without `doctors`, at one connection, computed: the difference is what the nested level
    /// costs.
    ListPlainOneConnection,
    /// (b) `patient(id)`.
    Patient,
    /// (c) `createPatient`.
    Create,
    /// (d) `assignDoctor` then `unassignDoctor`.
    AssignUnassign,
    /// (e) `login`.
    Login,
    /// (f) `me`.
    Me,
    /// (g) 80 % reads, 20 % writes.
    Mixed,
    /// (h) (b) while a login storm runs.
    ReadsDuringLogins,
}

impl Scenario {
    pub const ALL: [Scenario; 12] = [
        Scenario::Typename,
        Scenario::List,
        Scenario::ListComputed,
        Scenario::ListOneConnection,
        Scenario::ListPlainOneConnection,
        Scenario::Patient,
        Scenario::Create,
        Scenario::AssignUnassign,
        Scenario::Login,
        Scenario::Me,
        Scenario::Mixed,
        Scenario::ReadsDuringLogins,
    ];

    /// Short key used on the command line and in the JSON.
    pub fn key(self) -> &'static str {
        match self {
            Scenario::Typename => "typename",
            Scenario::List => "a",
            Scenario::ListComputed => "ac",
            Scenario::ListOneConnection => "a1",
            Scenario::ListPlainOneConnection => "a0",
            Scenario::Patient => "b",
            Scenario::Create => "c",
            Scenario::AssignUnassign => "d",
            Scenario::Login => "e",
            Scenario::Me => "f",
            Scenario::Mixed => "g",
            Scenario::ReadsDuringLogins => "h",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Scenario::Typename => "{ __typename }",
            Scenario::List => "(a) patients(first: 20) + doctors + totalCount",
            Scenario::ListComputed => "(a) computed each time (Cache-Control: no-cache)",
            Scenario::ListOneConnection => "(a) computed, at 1 connection",
            Scenario::ListPlainOneConnection => "(a) computed without doctors, at 1 connection",
            Scenario::Patient => "(b) patient(id)",
            Scenario::Create => "(c) createPatient",
            Scenario::AssignUnassign => "(d) assignDoctor / unassignDoctor",
            Scenario::Login => "(e) login",
            Scenario::Me => "(f) me",
            Scenario::Mixed => "(g) mixed 80% reads / 20% writes",
            Scenario::ReadsDuringLogins => "(h) patient(id) during a login storm",
        }
    }

    pub fn parse(key: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.key() == key)
    }

    /// Whether its requests ask for a computed answer (`Cache-Control: no-cache`) rather than one the
    /// server's response cache may give: the doctors level at one connection is measured computed,
    /// as that is where a DataLoader delay would show.
    pub fn computed(self) -> bool {
        matches!(
            self,
            Scenario::ListComputed | Scenario::ListOneConnection | Scenario::ListPlainOneConnection
        )
    }

    /// Logins need the authentication rate limit raised; the others run at production settings.
    pub fn needs_raised_auth_limit(self) -> bool {
        matches!(self, Scenario::Login | Scenario::ReadsDuringLogins)
    }
}

/// One request a session can send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Typename,
    List,
    ListPlain,
    Patient,
    Create,
    Assign,
    Unassign,
    Login,
    Me,
    Update,
    Doctors,
}

/// The session of one connection: picks requests for its scenario and keeps the state between them.
struct Script {
    fixture: Arc<Fixture>,
    computed: bool,
    mix: &'static [(Op, u32)],
    rng: SmallRng,
    connection: usize,
    sent: u64,
    last: Op,
    /// The mapping made by the last successful assign, to remove next.
    pending_mapping: Option<String>,
    /// Index into the patients of the next assignment.
    pair_patient: usize,
}

/// Every assign is followed by its unassign, so per 100 picks there are 105 requests: 84 reads (80 %) and
/// 11 updates + 5 assigns + 5 unassigns (20 %) — and the data ends as it began, so a soak can run forever.
const READS_AND_WRITES: &[(Op, u32)] = &[
    (Op::Patient, 37),
    (Op::List, 21),
    (Op::Me, 16),
    (Op::Doctors, 10),
    (Op::Update, 11),
    (Op::Assign, 5),
];

fn mix_of(scenario: Scenario) -> &'static [(Op, u32)] {
    match scenario {
        Scenario::Typename => &[(Op::Typename, 1)],
        Scenario::List | Scenario::ListComputed | Scenario::ListOneConnection => &[(Op::List, 1)],
        Scenario::ListPlainOneConnection => &[(Op::ListPlain, 1)],
        Scenario::Patient | Scenario::ReadsDuringLogins => &[(Op::Patient, 1)],
        Scenario::Create => &[(Op::Create, 1)],
        Scenario::AssignUnassign => &[(Op::Assign, 1)],
        Scenario::Login => &[(Op::Login, 1)],
        Scenario::Me => &[(Op::Me, 1)],
        Scenario::Mixed => READS_AND_WRITES,
    }
}

/// Sessions for `scenario`; (h)'s login storm is `Scenario::Login`.
pub fn sessions(scenario: Scenario, fixture: Arc<Fixture>, seed: u64) -> SessionFactory {
    let mix = mix_of(scenario);
    Arc::new(move |connection| {
        let mut rng = SmallRng::seed_from_u64(seed ^ (connection as u64).wrapping_mul(0x9E37));
        let pair_patient = rng.random_range(0..fixture.patient_ids.len().max(1));
        Box::new(Script {
            fixture: fixture.clone(),
            computed: scenario.computed(),
            mix,
            rng,
            connection,
            sent: 0,
            last: Op::Typename,
            pending_mapping: None,
            pair_patient,
        }) as Box<dyn Session>
    })
}

fn body(query: &str, variables: Value) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&json!({ "query": query, "variables": variables }))
            .expect("a JSON request"),
    )
}

/// A name made of letters only (names are validated as person names), unique per connection and count.
fn letters(mut n: u64) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    let mut name = String::from_utf8(out).expect("ASCII letters");
    name.insert_str(0, "Load");
    name
}

impl Script {
    fn pick(&mut self) -> Op {
        if self.pending_mapping.is_some() {
            return Op::Unassign;
        }
        if self.mix.len() == 1 {
            return self.mix[0].0;
        }
        let total: u32 = self.mix.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.random_range(0..total);
        for (op, weight) in self.mix {
            if roll < *weight {
                return *op;
            }
            roll -= weight;
        }
        self.mix[0].0
    }

    fn random_patient(&mut self) -> &str {
        let ids = &self.fixture.patient_ids;
        &ids[self.rng.random_range(0..ids.len())]
    }

    fn request(&mut self, op: Op) -> (Bytes, Option<Arc<str>>) {
        self.last = op;
        self.sent += 1;
        let token = Some(if op == Op::Create {
            self.fixture.creator_token.clone()
        } else {
            self.fixture.token.clone()
        });
        let body = match op {
            Op::Typename => body(TYPENAME, json!({})),
            Op::List => body(LIST, json!({ "first": LIST_PAGE })),
            Op::ListPlain => body(LIST_PLAIN, json!({ "first": LIST_PAGE })),
            Op::Patient => {
                let id = self.random_patient().to_owned();
                body(PATIENT, json!({ "id": id }))
            }
            Op::Create => {
                let unique = (self.connection as u64) << 40 | self.sent;
                body(
                    CREATE,
                    json!({ "input": {
                        "firstName": "Bench",
                        "lastName": letters(unique),
                        "age": 40,
                        "gender": "OTHER",
                        "phone": "+1-555-0100",
                    }}),
                )
            }
            Op::Assign => {
                let ids = &self.fixture.patient_ids;
                let patient = &ids[self.pair_patient % ids.len()];
                let doctors = &self.fixture.bench_doctor_ids;
                let doctor = &doctors[self.connection % doctors.len()];
                body(ASSIGN, json!({ "patientId": patient, "doctorId": doctor }))
            }
            Op::Unassign => body(
                UNASSIGN,
                json!({ "id": self.pending_mapping.as_deref().unwrap_or_default() }),
            ),
            Op::Login => {
                return (
                    body(
                        LOGIN,
                        json!({ "input": {
                            "email": self.fixture.email,
                            "password": self.fixture.password,
                        }}),
                    ),
                    None,
                );
            }
            Op::Me => body(ME, json!({})),
            Op::Update => {
                let id = self.random_patient().to_owned();
                let phone = format!("+1-555-{:04}", self.rng.random_range(0..10_000));
                body(UPDATE, json!({ "id": id, "input": { "phone": phone } }))
            }
            Op::Doctors => body(DOCTORS, json!({})),
        };
        (body, token)
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    errors: Option<Vec<GraphqlError>>,
}

#[derive(Deserialize)]
struct GraphqlError {
    extensions: Option<Extensions>,
}

#[derive(Deserialize)]
struct Extensions {
    code: Option<String>,
}

#[derive(Deserialize)]
struct Assigned {
    #[serde(rename = "assignDoctor")]
    assign_doctor: IdOnly,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize)]
struct LoggedIn {
    login: Token,
}

#[derive(Deserialize)]
struct Token {
    #[serde(rename = "accessToken")]
    access_token: String,
}

#[derive(Deserialize)]
struct FoundPatient<'a> {
    #[serde(borrow)]
    patient: Option<&'a RawValue>,
}

/// Success means HTTP 200, no `errors`, and `data` present (a GraphQL error inside a 200 is a failure).
fn judge(status: StatusCode, body: &[u8]) -> Result<&RawValue, Outcome> {
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|_| Outcome::Failed(format!("HTTP {}: not GraphQL JSON", status.as_u16())))?;
    if let Some(errors) = envelope.errors
        && !errors.is_empty()
    {
        let code = errors[0]
            .extensions
            .as_ref()
            .and_then(|e| e.code.clone())
            .unwrap_or_else(|| "GRAPHQL_ERROR".into());
        return Err(Outcome::Failed(code));
    }
    if status != StatusCode::OK {
        return Err(Outcome::Failed(format!("HTTP {}", status.as_u16())));
    }
    match envelope.data {
        Some(data) if data.get() != "null" => Ok(data),
        _ => Err(Outcome::Failed("no data".into())),
    }
}

impl Session for Script {
    fn next_request(&mut self) -> (Bytes, Option<Arc<str>>) {
        let op = self.pick();
        self.request(op)
    }

    fn computed(&self) -> bool {
        self.computed
    }

    fn check(&mut self, status: StatusCode, body: &[u8]) -> Outcome {
        let data = match judge(status, body) {
            Ok(data) => data,
            Err(outcome) => return outcome,
        };
        match self.last {
            Op::Assign => match serde_json::from_str::<Assigned>(data.get()) {
                Ok(assigned) => self.pending_mapping = Some(assigned.assign_doctor.id),
                Err(_) => return Outcome::Failed("assign: no mapping id".into()),
            },
            Op::Unassign => {
                self.pending_mapping = None;
                self.pair_patient += 1;
            }
            Op::Login => match serde_json::from_str::<LoggedIn>(data.get()) {
                Ok(l) if !l.login.access_token.is_empty() => {}
                _ => return Outcome::Failed("login: no token".into()),
            },
            Op::Patient => match serde_json::from_str::<FoundPatient>(data.get()) {
                Ok(FoundPatient { patient: Some(p) }) if p.get() != "null" => {}
                _ => return Outcome::Failed("patient: not found".into()),
            },
            _ => {}
        }
        Outcome::Ok
    }

    fn cleanup(&mut self) -> Option<(Bytes, Option<Arc<str>>)> {
        self.pending_mapping
            .is_some()
            .then(|| self.request(Op::Unassign))
    }
}

// ---- setup and the checks before the load ----

/// Sends one request and returns `data`, failing on any error.
pub async fn call(
    conn: &mut Connection,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let (status, answer) = conn.post(body(query, variables), token, false).await?;
    let parsed: Value = serde_json::from_slice(&answer)
        .with_context(|| format!("HTTP {status}: {}", String::from_utf8_lossy(&answer)))?;
    if parsed.get("errors").is_some() || status != StatusCode::OK {
        bail!("HTTP {status}: {parsed}");
    }
    Ok(parsed["data"].clone())
}

pub async fn login(addr: SocketAddr, email: &str, password: &str) -> anyhow::Result<String> {
    let mut conn = Connection::open(addr).await?;
    let data = call(
        &mut conn,
        None,
        LOGIN,
        json!({ "input": { "email": email, "password": password } }),
    )
    .await
    .context("logging in the benchmark user")?;
    data["login"]["accessToken"]
        .as_str()
        .map(str::to_owned)
        .context("login without accessToken")
}

/// Ids of all the user's patients, oldest first (the seeded ones, before the benchmark creates more).
pub async fn patient_ids(conn: &mut Connection, token: &str) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let data = call(
            conn,
            Some(token),
            "query($after: String) { patients(first: 100, after: $after, \
             orderBy: { field: CREATED_AT, direction: ASC }) \
             { nodes { id } pageInfo { hasNextPage endCursor } } }",
            json!({ "after": after }),
        )
        .await?;
        let page = &data["patients"];
        for node in page["nodes"].as_array().into_iter().flatten() {
            ids.push(node["id"].as_str().context("patient id")?.to_owned());
        }
        if page["pageInfo"]["hasNextPage"] != true {
            return Ok(ids);
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
}

/// Creates `count` doctors for the assignment scenarios.
pub async fn create_bench_doctors(
    conn: &mut Connection,
    token: &str,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    for i in 0..count {
        let data = call(
            conn,
            Some(token),
            "mutation($input: CreateDoctorInput!) { createDoctor(input: $input) { id } }",
            json!({ "input": {
                "firstName": "Bench",
                "lastName": letters(i as u64),
                "specialization": "Benchmarking",
                "email": format!("bench-doctor-{i}@example.com"),
            }}),
        )
        .await?;
        ids.push(
            data["createDoctor"]["id"]
                .as_str()
                .context("doctor id")?
                .to_owned(),
        );
    }
    Ok(ids)
}

/// Removes every mapping of the benchmark's doctors and returns how many there were. After a run of (d)
/// or (g) there should be none (every session unassigns what it assigned); any found are reported.
pub async fn remove_leftover_mappings(addr: SocketAddr, fixture: &Fixture) -> anyhow::Result<u64> {
    let mut conn = Connection::open(addr).await?;
    let token = Some(&*fixture.token);
    let mut removed = 0;
    for doctor in &fixture.bench_doctor_ids {
        let data = call(
            &mut conn,
            token,
            "query($d: ID!) { mappings(first: 100, doctorId: $d) { nodes { id } } }",
            json!({ "d": doctor }),
        )
        .await?;
        for node in data["mappings"]["nodes"].as_array().into_iter().flatten() {
            call(&mut conn, token, UNASSIGN, json!({ "id": node["id"] })).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Checks that every request a scenario sends gets the right data and no errors, before any load.
pub async fn verify(
    addr: SocketAddr,
    scenario: Scenario,
    fixture: &Fixture,
    seeded_patients: usize,
) -> anyhow::Result<()> {
    let mut conn = Connection::open(addr).await?;
    let token = Some(&*fixture.token);
    let ops: &[Op] = match scenario {
        Scenario::Mixed => &[
            Op::Patient,
            Op::List,
            Op::Me,
            Op::Doctors,
            Op::Update,
            Op::Assign,
        ],
        Scenario::ReadsDuringLogins => &[Op::Patient, Op::Login],
        other => &[mix_of(other)[0].0],
    };
    for &op in ops {
        match op {
            Op::Typename => {
                let data = call(&mut conn, None, TYPENAME, json!({})).await?;
                ensure!(data["__typename"] == "Query", "{{ __typename }}: {data}");
            }
            Op::List | Op::ListPlain => {
                let query = if op == Op::List { LIST } else { LIST_PLAIN };
                let data = call(&mut conn, token, query, json!({ "first": LIST_PAGE })).await?;
                let page = &data["patients"];
                let total = page["totalCount"].as_u64().unwrap_or(0) as usize;
                ensure!(total >= seeded_patients, "totalCount {total}: {page}");
                let nodes = page["nodes"].as_array().context("nodes")?;
                ensure!(nodes.len() == LIST_PAGE.min(total), "{} nodes", nodes.len());
                let nested = op == Op::List;
                ensure!(
                    nodes
                        .iter()
                        .all(|n| n["id"].is_string() && (!nested || n["doctors"].is_array())),
                    "patients without id or doctors: {page}"
                );
                ensure!(
                    !nested
                        || nodes
                            .iter()
                            .any(|n| n["doctors"].as_array().is_some_and(|d| !d.is_empty())),
                    "no patient on the page has doctors: {page}"
                );
            }
            Op::Patient => {
                let id = &fixture.patient_ids[fixture.patient_ids.len() / 2];
                let data = call(&mut conn, token, PATIENT, json!({ "id": id })).await?;
                ensure!(data["patient"]["id"] == id.as_str(), "patient(id): {data}");
            }
            Op::Create => {
                let data = call(
                    &mut conn,
                    Some(&*fixture.creator_token),
                    CREATE,
                    json!({ "input": { "firstName": "Bench", "lastName": "Check", "age": 40,
                        "gender": "OTHER" } }),
                )
                .await?;
                ensure!(
                    data["createPatient"]["lastName"] == "Check"
                        && data["createPatient"]["id"].is_string(),
                    "createPatient: {data}"
                );
            }
            Op::Assign | Op::Unassign => {
                let patient = &fixture.patient_ids[0];
                let doctor = &fixture.bench_doctor_ids[0];
                let data = call(
                    &mut conn,
                    token,
                    "mutation($p: ID!, $d: ID!) { assignDoctor(patientId: $p, doctorId: $d) \
                     { id patient { id } doctor { id } } }",
                    json!({ "p": patient, "d": doctor }),
                )
                .await?;
                let mapping = &data["assignDoctor"];
                ensure!(
                    mapping["patient"]["id"] == patient.as_str()
                        && mapping["doctor"]["id"] == doctor.as_str(),
                    "assignDoctor: {data}"
                );
                let id = mapping["id"].as_str().context("mapping id")?;
                let data = call(&mut conn, token, UNASSIGN, json!({ "id": id })).await?;
                ensure!(data["unassignDoctor"] == id, "unassignDoctor: {data}");
            }
            Op::Login => {
                let token = login(addr, &fixture.email, &fixture.password).await?;
                ensure!(token.split('.').count() == 3, "login: not a JWT");
            }
            Op::Me => {
                let data = call(&mut conn, token, ME, json!({})).await?;
                ensure!(data["me"]["email"] == fixture.email.as_str(), "me: {data}");
            }
            Op::Update => {
                let id = &fixture.patient_ids[1 % fixture.patient_ids.len()];
                let data = call(
                    &mut conn,
                    token,
                    UPDATE,
                    json!({ "id": id, "input": { "phone": "+1-555-0199" } }),
                )
                .await?;
                ensure!(
                    data["updatePatient"]["phone"] == "+1-555-0199",
                    "updatePatient: {data}"
                );
            }
            Op::Doctors => {
                let data = call(&mut conn, token, DOCTORS, json!({})).await?;
                let nodes = data["doctors"]["nodes"].as_array().context("nodes")?;
                ensure!(nodes.len() == 20, "doctors: {} nodes", nodes.len());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_letters_and_unique() {
        let a = letters(0);
        let b = letters(1 << 40 | 7);
        assert_ne!(a, b);
        assert!(a.chars().chain(b.chars()).all(|c| c.is_ascii_alphabetic()));
    }

    #[test]
    fn a_graphql_error_inside_http_200_is_a_failure() {
        let body =
            br#"{"data":null,"errors":[{"message":"no","extensions":{"code":"FORBIDDEN"}}]}"#;
        assert_eq!(
            judge(StatusCode::OK, body).err(),
            Some(Outcome::Failed("FORBIDDEN".into()))
        );
        let partial = br#"{"data":{"me":{"id":"1"}},"errors":[{"message":"x"}]}"#;
        assert_eq!(
            judge(StatusCode::OK, partial).err(),
            Some(Outcome::Failed("GRAPHQL_ERROR".into()))
        );
        assert!(judge(StatusCode::OK, br#"{"data":{"me":{"id":"1"}}}"#).is_ok());
        assert_eq!(
            judge(StatusCode::SERVICE_UNAVAILABLE, b"busy").err(),
            Some(Outcome::Failed("HTTP 503: not GraphQL JSON".into()))
        );
    }

    #[test]
    fn every_scenario_key_parses_back() {
        for scenario in Scenario::ALL {
            assert_eq!(Scenario::parse(scenario.key()), Some(scenario));
        }
    }
}
