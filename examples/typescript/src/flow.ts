// Runs the whole examples/ flow against a running medgraph server with urql and the typed documents that
// graphql-codegen generated into ./gql (results and variables are checked by `tsc --noEmit`).
//
//   npx tsx src/flow.ts [URL]        URL defaults to $MEDGRAPH_URL, then http://127.0.0.1:8080/graphql
//
// Prints one line per step; throws on any GraphQL or network error and exits non-zero on failure.
import { randomUUID } from "node:crypto";

import {
  Client,
  CombinedError,
  fetchExchange,
  type AnyVariables,
  type DocumentInput,
  type OperationResult,
} from "@urql/core";

import {
  AssignDoctorDocument,
  CreateDoctorDocument,
  CreatePatientDocument,
  DeletePatientDocument,
  DoctorsForPatientDocument,
  ListPatientsDocument,
  LoginDocument,
  LogoutDocument,
  MeDocument,
  RefreshTokenDocument,
  RegisterDocument,
  UnassignDoctorDocument,
  UpdatePatientDocument,
} from "./gql/graphql.js";

const url = process.argv[2] ?? process.env["MEDGRAPH_URL"] ?? "http://127.0.0.1:8080/graphql";
const STEP_TIMEOUT_MS = 30_000;

/** The access token of the signed-in user; sent as `Authorization: Bearer <token>` once set. */
let accessToken: string | undefined;
/** The HTTP method of the last request, to show that queries go as GET and mutations as POST. */
let lastMethod = "?";

const client = new Client({
  url,
  // No document cache: every step goes to the server.
  exchanges: [fetchExchange],
  requestPolicy: "network-only",
  // urql's default, spelled out: queries as GET (GraphQL over HTTP) while the URL stays short, mutations as POST.
  preferGetMethod: "within-url-limit",
  // Called for every operation, so a new token (login, refresh) is used from the next request on.
  fetchOptions: () => ({
    headers: accessToken === undefined ? {} : { authorization: `Bearer ${accessToken}` },
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  }),
  fetch: (input, init) => {
    lastMethod = init?.method ?? "GET";
    return fetch(input, init);
  },
});

class StepError extends Error {}

/** One line describing a failed result: each GraphQL error with its code, or the network error. */
function describe(error: CombinedError): string {
  const status = error.response instanceof Response ? ` (HTTP ${error.response.status})` : "";
  if (error.networkError) return `network error${status}: ${error.networkError.message}`;
  const errors = error.graphQLErrors.map((e) => {
    const code = e.extensions["code"];
    return typeof code === "string" ? `${code}: ${e.message}` : e.message;
  });
  return `GraphQL error${status}: ${errors.join("; ")}`;
}

function unwrap<Data, Variables extends AnyVariables>(
  name: string,
  result: OperationResult<Data, Variables>,
): Data {
  if (result.error) throw new StepError(`${name}: ${describe(result.error)}`);
  if (result.data === undefined || result.data === null) throw new StepError(`${name}: no data in the response`);
  return result.data;
}

async function query<Data, Variables extends AnyVariables>(
  name: string,
  document: DocumentInput<Data, Variables>,
  variables: Variables,
): Promise<Data> {
  return unwrap(name, await client.query(document, variables).toPromise());
}

async function mutate<Data, Variables extends AnyVariables>(
  name: string,
  document: DocumentInput<Data, Variables>,
  variables: Variables,
): Promise<Data> {
  return unwrap(name, await client.mutation(document, variables).toPromise());
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new StepError(message);
}

let passed = 0;
function ok(name: string, detail: string): void {
  passed += 1;
  console.log(`ok ${String(passed).padStart(2)} ${name.padEnd(18)} ${lastMethod.padEnd(4)} ${detail}`);
}

async function flow(): Promise<void> {
  const unique = `${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`;
  const email = `ts-flow-${unique}@example.com`;
  const password = "correct horse battery staple";

  // 01 register
  const registered = await mutate("register", RegisterDocument, {
    input: { name: "Dr. Ada (TypeScript flow)", email, password },
  });
  check(registered.register.tokenType === "Bearer", `register: tokenType is ${registered.register.tokenType}`);
  check(registered.register.user.email === email, `register: email is ${registered.register.user.email}`);
  ok("register", `user ${registered.register.user.id} <${email}>, role ${registered.register.user.role}`);

  // 02 login
  const login = await mutate("login", LoginDocument, { input: { email, password } });
  accessToken = login.login.accessToken;
  const refresh = login.login.refreshToken;
  check(login.login.user.id === registered.register.user.id, "login: another user came back");
  ok("login", `access token expires in ${login.login.expiresIn}s`);

  // 03 me
  const me = await query("me", MeDocument, {});
  check(me.me.email === email, `me: email is ${me.me.email}`);
  ok("me", `${me.me.name} <${me.me.email}>, created ${me.me.createdAt}`);

  // 04 createDoctor
  const doctor = await mutate("createDoctor", CreateDoctorDocument, {
    input: {
      firstName: "Gregory",
      lastName: "House",
      specialization: "Diagnostics",
      email: `house-${unique}@example.com`,
    },
  });
  const doctorId = doctor.createDoctor.id;
  ok("createDoctor", `doctor ${doctorId} ${doctor.createDoctor.fullName} (${doctor.createDoctor.specialization})`);

  // 05 createPatient
  const patient = await mutate("createPatient", CreatePatientDocument, {
    input: { firstName: "Jane", lastName: "Doe", dateOfBirth: "1991-04-30", gender: "FEMALE" },
  });
  const patientId = patient.createPatient.id;
  check(patient.createPatient.dateOfBirth === "1991-04-30", `createPatient: dateOfBirth is ${patient.createPatient.dateOfBirth}`);
  ok("createPatient", `patient ${patientId} ${patient.createPatient.fullName}, age ${patient.createPatient.age}`);

  // 06 assignDoctor
  const mapping = await mutate("assignDoctor", AssignDoctorDocument, { patientId, doctorId });
  const mappingId = mapping.assignDoctor.id;
  check(mapping.assignDoctor.patient.id === patientId, "assignDoctor: another patient came back");
  check(mapping.assignDoctor.doctor.id === doctorId, "assignDoctor: another doctor came back");
  ok("assignDoctor", `mapping ${mappingId} at ${mapping.assignDoctor.assignedAt}`);

  // 07 listPatients: the new patient is there, with the doctor
  const list = await query("listPatients", ListPatientsDocument, {
    first: 10,
    orderBy: { field: "LAST_NAME", direction: "ASC" },
  });
  const listed = list.patients.nodes.find((p) => p.id === patientId);
  check(listed !== undefined, `listPatients: patient ${patientId} is not in the first page`);
  check(
    listed.doctors.some((d) => d.id === doctorId),
    `listPatients: doctor ${doctorId} is not among the patient's doctors`,
  );
  ok("listPatients", `${list.patients.totalCount} patient(s); ${listed.fullName} has ${listed.doctors.map((d) => d.fullName).join(", ")}`);

  // 08 doctorsForPatient
  const doctors = await query("doctorsForPatient", DoctorsForPatientDocument, { patientId });
  check(
    doctors.doctorsForPatient.some((d) => d.id === doctorId),
    "doctorsForPatient: the assigned doctor is missing",
  );
  check(
    doctors.mappings.nodes.some((m) => m.id === mappingId),
    "doctorsForPatient: the mapping is missing from mappings",
  );
  ok("doctorsForPatient", `${doctors.doctorsForPatient.length} doctor(s), ${doctors.mappings.totalCount} mapping(s)`);

  // 09 updatePatient: set the phone, clear the notes with an explicit null
  const updated = await mutate("updatePatient", UpdatePatientDocument, {
    id: patientId,
    input: { phone: "+1-555-0100", notes: null },
  });
  check(updated.updatePatient.phone === "+1-555-0100", `updatePatient: phone is ${updated.updatePatient.phone}`);
  check(updated.updatePatient.notes === null, "updatePatient: notes were not cleared");
  ok("updatePatient", `phone ${updated.updatePatient.phone}, updated ${updated.updatePatient.updatedAt}`);

  // 10 unassignDoctor
  const unassigned = await mutate("unassignDoctor", UnassignDoctorDocument, { mappingId });
  check(unassigned.unassignDoctor === mappingId, `unassignDoctor: returned ${unassigned.unassignDoctor}`);
  ok("unassignDoctor", `mapping ${unassigned.unassignDoctor} removed`);

  // 11 deletePatient
  const deleted = await mutate("deletePatient", DeletePatientDocument, { id: patientId });
  check(deleted.deletePatient === patientId, `deletePatient: returned ${deleted.deletePatient}`);
  ok("deletePatient", `patient ${deleted.deletePatient} deleted`);

  // 12 refreshToken: a new pair; the old refresh token is spent
  const refreshed = await mutate("refreshToken", RefreshTokenDocument, { refreshToken: refresh });
  check(refreshed.refreshToken.refreshToken !== refresh, "refreshToken: the refresh token did not change");
  accessToken = refreshed.refreshToken.accessToken;
  ok("refreshToken", `new pair, access token expires in ${refreshed.refreshToken.expiresIn}s`);

  // 13 logout: revoke the new refresh token
  const logout = await mutate("logout", LogoutDocument, { refreshToken: refreshed.refreshToken.refreshToken });
  check(logout.logout, "logout: returned false");
  ok("logout", "refresh token revoked");
}

try {
  await flow();
  console.log(`flow ok: all ${passed} steps against ${url}`);
} catch (error) {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`FAIL step ${passed + 1}: ${message}`);
  if (!(error instanceof StepError) && error instanceof Error && error.stack) console.error(error.stack);
  process.exitCode = 1;
}
