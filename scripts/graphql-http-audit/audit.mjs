#!/usr/bin/env node
// Runs graphql-http's GraphQL-over-HTTP server audits (`serverAudits`) against a running server.
//
//   node audit.mjs [url]        (default http://127.0.0.1:8080/graphql)
//
// Prints one line per audit, `PASS|FAIL|WARN|ACCEPTED  MUST|SHOULD|MAY  <id> <name>`, with the reason and the
// response (status, content type, body excerpt) under every one that did not pass, then the counts.
// A failing MUST (or an audit that could not run at all) is FAIL; a failing SHOULD or MAY is WARN. Both make
// the exit code 1, so a regression in either fails CI. SHOULDs we chose not to meet are listed in
// accepted-shoulds.txt beside this file, one audit id (or full name) a line followed by `# reason`; they
// print as ACCEPTED with that reason and do not fail the run.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serverAudits } from 'graphql-http';

const url = process.argv[2] ?? 'http://127.0.0.1:8080/graphql';
const acceptedFile = join(dirname(fileURLToPath(import.meta.url)), 'accepted-shoulds.txt');
const REQUEST_TIMEOUT_MS = 10_000;
const EXCERPT_CHARS = 300;

/** Map of audit id or name -> reason, from the optional allow-list. */
function readAccepted() {
  let text;
  try {
    text = readFileSync(acceptedFile, 'utf8');
  } catch (e) {
    if (e.code === 'ENOENT') return new Map();
    throw e;
  }
  const accepted = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const hash = line.indexOf('#');
    const key = (hash === -1 ? line : line.slice(0, hash)).trim();
    const reason = hash === -1 ? '' : line.slice(hash + 1).trim();
    if (!reason) {
      console.error(`accepted-shoulds.txt: "${key}" has no "# reason" comment`);
      process.exit(2);
    }
    accepted.set(key, reason);
  }
  return accepted;
}

// Node 20's global fetch, with a time limit so a hanging server fails the audit instead of the run.
const fetchFn = (input, init = {}) =>
  fetch(input, { ...init, signal: init.signal ?? AbortSignal.timeout(REQUEST_TIMEOUT_MS) });

async function describeResponse(res) {
  if (!res) return '';
  let body;
  try {
    body = res.bodyUsed ? '(body already read)' : await res.clone().text();
  } catch (e) {
    body = `(body unreadable: ${e.message})`;
  }
  body = body.replace(/\s+/g, ' ').trim();
  if (body.length > EXCERPT_CHARS) body = `${body.slice(0, EXCERPT_CHARS)}…`;
  const type = res.headers.get('content-type') ?? '(no content-type)';
  return `HTTP ${res.status} ${type}: ${body || '(empty body)'}`;
}

const accepted = readAccepted();
const used = new Set();
const counts = { passed: 0, failed: 0, warned: 0, accepted: 0 };

console.log(`graphql-http server audits against ${url}`);
for (const { id, name, fn } of serverAudits({ url, fetchFn })) {
  const level = name.split(' ', 1)[0];
  const label = `${level.padEnd(6)}  ${id} ${name}`;
  const listedReason = accepted.get(id) ?? accepted.get(name);
  if (listedReason !== undefined) used.add(accepted.has(id) ? id : name);
  if (level === 'MUST' && listedReason !== undefined) {
    console.log(`note: accepted-shoulds.txt lists the MUST ${id}: only SHOULDs and MAYs can be accepted, entry ignored`);
  }
  const acceptedReason = level === 'MUST' ? undefined : listedReason;
  let result;
  try {
    result = await fn();
  } catch (e) {
    // graphql-http throws only for fatal problems (e.g. the server could not be reached).
    counts.failed++;
    console.log(`FAIL      ${label}\n          could not run: ${e?.cause?.message ?? e?.message ?? e}`);
    continue;
  }
  if (result.status === 'ok') {
    counts.passed++;
    console.log(`PASS      ${label}`);
    if (acceptedReason !== undefined) {
      console.log('          (listed in accepted-shoulds.txt but passes now: remove it from the list)');
    }
    continue;
  }
  const detail = `          ${result.reason}\n          ${await describeResponse(result.response)}`;
  if (level === 'MUST') {
    counts.failed++;
    console.log(`FAIL      ${label}\n${detail}`);
  } else if (acceptedReason !== undefined) {
    counts.accepted++;
    console.log(`ACCEPTED  ${label}\n          accepted: ${acceptedReason}\n${detail}`);
  } else {
    counts.warned++;
    console.log(`WARN      ${label}\n${detail}`);
  }
}

for (const key of accepted.keys()) {
  if (!used.has(key)) console.log(`note: accepted-shoulds.txt entry "${key}" matches no audit`);
}
console.log(
  `graphql-http audit: ${counts.warned} SHOULD/MAY not met (warnings), ${counts.accepted} accepted in accepted-shoulds.txt`,
);
console.log(`graphql-http audit: ${counts.passed} passed, ${counts.failed} failed`);
process.exit(counts.failed > 0 || counts.warned > 0 ? 1 : 0);
