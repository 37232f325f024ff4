/* eslint-disable */
import * as types from './graphql.js';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "mutation Register($input: RegisterInput!) {\n  register(input: $input) {\n    accessToken\n    refreshToken\n    tokenType\n    expiresIn\n    user {\n      id\n      name\n      email\n      role\n      createdAt\n    }\n  }\n}": typeof types.RegisterDocument,
    "mutation Login($input: LoginInput!) {\n  login(input: $input) {\n    accessToken\n    refreshToken\n    expiresIn\n    user {\n      id\n      email\n    }\n  }\n}": typeof types.LoginDocument,
    "query Me {\n  me {\n    id\n    name\n    email\n    role\n    createdAt\n  }\n}": typeof types.MeDocument,
    "mutation CreateDoctor($input: CreateDoctorInput!) {\n  createDoctor(input: $input) {\n    id\n    fullName\n    specialization\n    email\n  }\n}": typeof types.CreateDoctorDocument,
    "mutation CreatePatient($input: CreatePatientInput!) {\n  createPatient(input: $input) {\n    id\n    fullName\n    age\n    dateOfBirth\n    gender\n  }\n}": typeof types.CreatePatientDocument,
    "mutation AssignDoctor($patientId: ID!, $doctorId: ID!) {\n  assignDoctor(patientId: $patientId, doctorId: $doctorId) {\n    id\n    assignedAt\n    patient {\n      id\n      fullName\n    }\n    doctor {\n      id\n      fullName\n    }\n  }\n}": typeof types.AssignDoctorDocument,
    "query ListPatients($first: Int = 20, $after: String, $filter: PatientFilter, $orderBy: PatientOrder) {\n  patients(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    nodes {\n      id\n      fullName\n      age\n      gender\n      doctors {\n        id\n        fullName\n        specialization\n      }\n    }\n  }\n}": typeof types.ListPatientsDocument,
    "query DoctorsForPatient($patientId: ID!) {\n  doctorsForPatient(patientId: $patientId) {\n    id\n    fullName\n    specialization\n  }\n  mappings(patientId: $patientId) {\n    totalCount\n    nodes {\n      id\n      assignedAt\n      doctor {\n        fullName\n      }\n    }\n  }\n}": typeof types.DoctorsForPatientDocument,
    "mutation UpdatePatient($id: ID!, $input: UpdatePatientInput!) {\n  updatePatient(id: $id, input: $input) {\n    id\n    fullName\n    phone\n    notes\n    updatedAt\n  }\n}": typeof types.UpdatePatientDocument,
    "mutation UnassignDoctor($mappingId: ID!) {\n  unassignDoctor(mappingId: $mappingId)\n}": typeof types.UnassignDoctorDocument,
    "mutation DeletePatient($id: ID!) {\n  deletePatient(id: $id)\n}": typeof types.DeletePatientDocument,
    "mutation RefreshToken($refreshToken: String!) {\n  refreshToken(refreshToken: $refreshToken) {\n    accessToken\n    refreshToken\n    expiresIn\n  }\n}": typeof types.RefreshTokenDocument,
    "mutation Logout($refreshToken: String!) {\n  logout(refreshToken: $refreshToken)\n}": typeof types.LogoutDocument,
};
const documents: Documents = {
    "mutation Register($input: RegisterInput!) {\n  register(input: $input) {\n    accessToken\n    refreshToken\n    tokenType\n    expiresIn\n    user {\n      id\n      name\n      email\n      role\n      createdAt\n    }\n  }\n}": types.RegisterDocument,
    "mutation Login($input: LoginInput!) {\n  login(input: $input) {\n    accessToken\n    refreshToken\n    expiresIn\n    user {\n      id\n      email\n    }\n  }\n}": types.LoginDocument,
    "query Me {\n  me {\n    id\n    name\n    email\n    role\n    createdAt\n  }\n}": types.MeDocument,
    "mutation CreateDoctor($input: CreateDoctorInput!) {\n  createDoctor(input: $input) {\n    id\n    fullName\n    specialization\n    email\n  }\n}": types.CreateDoctorDocument,
    "mutation CreatePatient($input: CreatePatientInput!) {\n  createPatient(input: $input) {\n    id\n    fullName\n    age\n    dateOfBirth\n    gender\n  }\n}": types.CreatePatientDocument,
    "mutation AssignDoctor($patientId: ID!, $doctorId: ID!) {\n  assignDoctor(patientId: $patientId, doctorId: $doctorId) {\n    id\n    assignedAt\n    patient {\n      id\n      fullName\n    }\n    doctor {\n      id\n      fullName\n    }\n  }\n}": types.AssignDoctorDocument,
    "query ListPatients($first: Int = 20, $after: String, $filter: PatientFilter, $orderBy: PatientOrder) {\n  patients(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    nodes {\n      id\n      fullName\n      age\n      gender\n      doctors {\n        id\n        fullName\n        specialization\n      }\n    }\n  }\n}": types.ListPatientsDocument,
    "query DoctorsForPatient($patientId: ID!) {\n  doctorsForPatient(patientId: $patientId) {\n    id\n    fullName\n    specialization\n  }\n  mappings(patientId: $patientId) {\n    totalCount\n    nodes {\n      id\n      assignedAt\n      doctor {\n        fullName\n      }\n    }\n  }\n}": types.DoctorsForPatientDocument,
    "mutation UpdatePatient($id: ID!, $input: UpdatePatientInput!) {\n  updatePatient(id: $id, input: $input) {\n    id\n    fullName\n    phone\n    notes\n    updatedAt\n  }\n}": types.UpdatePatientDocument,
    "mutation UnassignDoctor($mappingId: ID!) {\n  unassignDoctor(mappingId: $mappingId)\n}": types.UnassignDoctorDocument,
    "mutation DeletePatient($id: ID!) {\n  deletePatient(id: $id)\n}": types.DeletePatientDocument,
    "mutation RefreshToken($refreshToken: String!) {\n  refreshToken(refreshToken: $refreshToken) {\n    accessToken\n    refreshToken\n    expiresIn\n  }\n}": types.RefreshTokenDocument,
    "mutation Logout($refreshToken: String!) {\n  logout(refreshToken: $refreshToken)\n}": types.LogoutDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation Register($input: RegisterInput!) {\n  register(input: $input) {\n    accessToken\n    refreshToken\n    tokenType\n    expiresIn\n    user {\n      id\n      name\n      email\n      role\n      createdAt\n    }\n  }\n}"): (typeof documents)["mutation Register($input: RegisterInput!) {\n  register(input: $input) {\n    accessToken\n    refreshToken\n    tokenType\n    expiresIn\n    user {\n      id\n      name\n      email\n      role\n      createdAt\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation Login($input: LoginInput!) {\n  login(input: $input) {\n    accessToken\n    refreshToken\n    expiresIn\n    user {\n      id\n      email\n    }\n  }\n}"): (typeof documents)["mutation Login($input: LoginInput!) {\n  login(input: $input) {\n    accessToken\n    refreshToken\n    expiresIn\n    user {\n      id\n      email\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query Me {\n  me {\n    id\n    name\n    email\n    role\n    createdAt\n  }\n}"): (typeof documents)["query Me {\n  me {\n    id\n    name\n    email\n    role\n    createdAt\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation CreateDoctor($input: CreateDoctorInput!) {\n  createDoctor(input: $input) {\n    id\n    fullName\n    specialization\n    email\n  }\n}"): (typeof documents)["mutation CreateDoctor($input: CreateDoctorInput!) {\n  createDoctor(input: $input) {\n    id\n    fullName\n    specialization\n    email\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation CreatePatient($input: CreatePatientInput!) {\n  createPatient(input: $input) {\n    id\n    fullName\n    age\n    dateOfBirth\n    gender\n  }\n}"): (typeof documents)["mutation CreatePatient($input: CreatePatientInput!) {\n  createPatient(input: $input) {\n    id\n    fullName\n    age\n    dateOfBirth\n    gender\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation AssignDoctor($patientId: ID!, $doctorId: ID!) {\n  assignDoctor(patientId: $patientId, doctorId: $doctorId) {\n    id\n    assignedAt\n    patient {\n      id\n      fullName\n    }\n    doctor {\n      id\n      fullName\n    }\n  }\n}"): (typeof documents)["mutation AssignDoctor($patientId: ID!, $doctorId: ID!) {\n  assignDoctor(patientId: $patientId, doctorId: $doctorId) {\n    id\n    assignedAt\n    patient {\n      id\n      fullName\n    }\n    doctor {\n      id\n      fullName\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query ListPatients($first: Int = 20, $after: String, $filter: PatientFilter, $orderBy: PatientOrder) {\n  patients(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    nodes {\n      id\n      fullName\n      age\n      gender\n      doctors {\n        id\n        fullName\n        specialization\n      }\n    }\n  }\n}"): (typeof documents)["query ListPatients($first: Int = 20, $after: String, $filter: PatientFilter, $orderBy: PatientOrder) {\n  patients(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    nodes {\n      id\n      fullName\n      age\n      gender\n      doctors {\n        id\n        fullName\n        specialization\n      }\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query DoctorsForPatient($patientId: ID!) {\n  doctorsForPatient(patientId: $patientId) {\n    id\n    fullName\n    specialization\n  }\n  mappings(patientId: $patientId) {\n    totalCount\n    nodes {\n      id\n      assignedAt\n      doctor {\n        fullName\n      }\n    }\n  }\n}"): (typeof documents)["query DoctorsForPatient($patientId: ID!) {\n  doctorsForPatient(patientId: $patientId) {\n    id\n    fullName\n    specialization\n  }\n  mappings(patientId: $patientId) {\n    totalCount\n    nodes {\n      id\n      assignedAt\n      doctor {\n        fullName\n      }\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation UpdatePatient($id: ID!, $input: UpdatePatientInput!) {\n  updatePatient(id: $id, input: $input) {\n    id\n    fullName\n    phone\n    notes\n    updatedAt\n  }\n}"): (typeof documents)["mutation UpdatePatient($id: ID!, $input: UpdatePatientInput!) {\n  updatePatient(id: $id, input: $input) {\n    id\n    fullName\n    phone\n    notes\n    updatedAt\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation UnassignDoctor($mappingId: ID!) {\n  unassignDoctor(mappingId: $mappingId)\n}"): (typeof documents)["mutation UnassignDoctor($mappingId: ID!) {\n  unassignDoctor(mappingId: $mappingId)\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation DeletePatient($id: ID!) {\n  deletePatient(id: $id)\n}"): (typeof documents)["mutation DeletePatient($id: ID!) {\n  deletePatient(id: $id)\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation RefreshToken($refreshToken: String!) {\n  refreshToken(refreshToken: $refreshToken) {\n    accessToken\n    refreshToken\n    expiresIn\n  }\n}"): (typeof documents)["mutation RefreshToken($refreshToken: String!) {\n  refreshToken(refreshToken: $refreshToken) {\n    accessToken\n    refreshToken\n    expiresIn\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation Logout($refreshToken: String!) {\n  logout(refreshToken: $refreshToken)\n}"): (typeof documents)["mutation Logout($refreshToken: String!) {\n  logout(refreshToken: $refreshToken)\n}"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;