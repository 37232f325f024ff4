// Headless check of medgraph's offline GraphiQL page.
//
//   node check.mjs [BASE_URL]        (default http://127.0.0.1:8080)
//   SCREENSHOT=/tmp/graphiql.png node check.mjs http://127.0.0.1:8080
//
// Opens <base>/graphql as a browser navigation (Accept: text/html...), fails if
// the page requests anything from another host, waits for GraphiQL to render,
// runs `{ __typename }` and waits for `"__typename": "Query"` in the result.
// Then the subscription check: registers a user over HTTP, runs a
// patientEvents subscription from GraphiQL with the header editor's blank
// "Bearer " (the server must refuse it), puts the user's token into the header
// editor, runs it again (the new connection_init must carry the new token),
// creates a patient over HTTP and waits for the event in the result pane.
// Exits 0 on success, 1 with a message otherwise.
import { chromium } from 'playwright-core';

const base = new URL(process.argv[2] || 'http://127.0.0.1:8080');
const pageUrl = new URL('/graphql', base).href;
const screenshot = process.env.SCREENSHOT || '';
const TIMEOUT_MS = Number(process.env.CHECK_TIMEOUT_MS || 30000);
const QUERY = '{ __typename }';
const EXPECTED = '"__typename": "Query"';
const SUBSCRIPTION = 'subscription { patientEvents { action patient { firstName } } }';
const SUB_EXPECTED = ['"action": "CREATED"', '"Watched"'];
const CREATE_PATIENT =
  'mutation { createPatient(input: {firstName: "Watched", lastName: "Live", age: 40, gender: FEMALE}) { id } }';
const PASSWORD = 'correct horse battery staple';

const foreign = new Set(); // requests to hosts other than the base URL's
const pageErrors = []; // uncaught exceptions and console errors
const failedRequests = []; // same-host requests that failed or returned >= 400
const sockets = []; // { url, sent: [], received: [], closed } per WebSocket the page opened
const introspection = []; // outcome of each schema introspection GraphiQL ran: 'ok' or the errors

function isAllowed(url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol === 'data:' || u.protocol === 'blob:' || u.protocol === 'about:') return true;
  return u.protocol === base.protocol && u.host === base.host;
}

function fail(message) {
  const e = new Error(message);
  e.checkFailure = true;
  throw e;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A GraphQL request from Node (not the page), as a client app would send it.
async function gql(query, variables = {}, token = '') {
  const url = new URL('/graphql', base).href;
  let res, body;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
    body = await res.json();
  } catch (e) {
    fail(`POST ${url} failed: ${e.message}`);
  }
  if (!res.ok || body.errors) {
    fail(`POST ${url} ${query.split('(')[0]}: HTTP ${res.status} ${JSON.stringify(body).slice(0, 500)}`);
  }
  return body.data;
}

function socketSummary() {
  if (!sockets.length) return '(the page opened no WebSocket)';
  return sockets
    .map(
      (s, i) =>
        `#${i + 1} ${s.url}${s.closed ? ' (closed)' : ''}\n` +
        [...s.sent.map((f) => `    > ${f}`), ...s.received.map((f) => `    < ${f}`)]
          .map((f) => f.replace(/Bearer [A-Za-z0-9._-]+/g, 'Bearer <token>').slice(0, 300))
          .join('\n'),
    )
    .join('\n  ');
}

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  let page;
  try {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });

    // Block (and record) anything that would leave the server under test.
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (isAllowed(url)) return route.continue();
      foreign.add(`${route.request().method()} ${url}`);
      return route.abort('blockedbyclient');
    });
    context.on('request', (req) => {
      if (!isAllowed(req.url())) foreign.add(`${req.method()} ${req.url()}`);
    });

    page = await context.newPage();
    page.on('websocket', (ws) => {
      if (!isAllowed(ws.url().replace(/^ws/, 'http'))) foreign.add(`WEBSOCKET ${ws.url()}`);
      const record = { url: ws.url(), sent: [], received: [], closed: false };
      sockets.push(record);
      ws.on('framesent', (f) => record.sent.push(String(f.payload)));
      ws.on('framereceived', (f) => record.received.push(String(f.payload)));
      ws.on('close', () => (record.closed = true));
    });
    page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(`console.error: ${msg.text()}`);
    });
    page.on('requestfailed', (req) => {
      if (isAllowed(req.url())) failedRequests.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText}`);
    });
    page.on('requestfinished', async (req) => {
      if (req.method() !== 'POST' || !isAllowed(req.url()) || !(req.postData() || '').includes('IntrospectionQuery')) return;
      try {
        const body = await (await req.response()).json();
        introspection.push(body.errors ? body.errors.map((e) => e.message).join('; ') : 'ok');
      } catch (e) {
        introspection.push(`unreadable response: ${e.message}`);
      }
    });
    page.on('response', (res) => {
      if (isAllowed(res.url()) && res.status() >= 400) {
        failedRequests.push(`${res.request().method()} ${res.url()}: HTTP ${res.status()}`);
      }
    });

    // A plain navigation: Chromium sends Accept: text/html,application/xhtml+xml,...
    let res;
    try {
      res = await page.goto(pageUrl, { waitUntil: 'load', timeout: TIMEOUT_MS });
    } catch (e) {
      fail(`cannot open ${pageUrl}: ${String(e.message).split('\n')[0]}`);
    }
    if (!res) fail(`no response for ${pageUrl}`);
    if (res.status() !== 200) fail(`GET ${pageUrl} (Accept: text/html) returned HTTP ${res.status()}`);
    const ctype = res.headers()['content-type'] || '';
    if (!ctype.includes('text/html')) fail(`GET ${pageUrl} returned content-type "${ctype}", want text/html`);

    // GraphiQL rendered: the query editor (CodeMirror) and the run button exist.
    const editorSel = '.graphiql-query-editor .CodeMirror';
    const runSel = 'button.graphiql-execute-button';
    try {
      await page.waitForSelector(editorSel, { state: 'visible', timeout: TIMEOUT_MS });
      await page.waitForSelector(runSel, { state: 'visible', timeout: TIMEOUT_MS });
    } catch {
      fail('GraphiQL did not render (no query editor / run button)');
    }

    // Replace the query text: through the CodeMirror instance if reachable,
    // else with the keyboard (insertText avoids bracket auto-closing).
    const viaCodeMirror = await page.evaluate(
      ({ sel, q }) => {
        const el = document.querySelector(sel);
        if (el && el.CodeMirror) {
          el.CodeMirror.setValue(q);
          return true;
        }
        return false;
      },
      { sel: editorSel, q: QUERY },
    );
    if (!viaCodeMirror) {
      await page.click(editorSel);
      await page.keyboard.press('Control+A');
      await page.keyboard.press('Delete');
      await page.keyboard.insertText(QUERY);
    }
    const editorText = await page.evaluate(
      (sel) => {
        const el = document.querySelector(sel);
        return el && el.CodeMirror ? el.CodeMirror.getValue() : el?.innerText ?? '';
      },
      editorSel,
    );
    if (editorText.trim() !== QUERY) fail(`could not set the query editor text (it holds ${JSON.stringify(editorText)})`);

    // GraphiQL re-parses the document asynchronously: while it still sees the
    // default document's several operations the run button is a dropdown
    // trigger (aria-haspopup) rather than "execute". Wait until it is not, then
    // click, and retry a few times if no query is sent.
    await page
      .waitForFunction((sel) => !document.querySelector(sel)?.hasAttribute('aria-haspopup'), runSel, {
        timeout: 5000,
        polling: 50,
      })
      .catch(() => {});
    let sent = false;
    for (let attempt = 1; attempt <= 3 && !sent; attempt++) {
      const posted = page
        .waitForRequest(
          (req) => req.method() === 'POST' && isAllowed(req.url()) && (req.postData() || '').includes('__typename'),
          { timeout: 5000 },
        )
        .then(() => true, () => false);
      await page.click(runSel);
      sent = await posted;
      if (!sent) await page.keyboard.press('Escape');
    }
    if (!sent) fail('clicking the run button sent no query to the server');

    // Wait for the result pane to show the expected result.
    const responseSel = '.graphiql-response';
    try {
      await page.waitForFunction(
        ({ sel, expected }) => {
          const pane = document.querySelector(sel);
          if (!pane) return false;
          const cm = pane.querySelector('.CodeMirror');
          const text = cm && cm.CodeMirror ? cm.CodeMirror.getValue() : pane.innerText;
          return text.includes(expected);
        },
        { sel: responseSel, expected: EXPECTED },
        { timeout: TIMEOUT_MS, polling: 100 },
      );
    } catch {
      const got = await page
        .evaluate((sel) => {
          const pane = document.querySelector(sel);
          const cm = pane && pane.querySelector('.CodeMirror');
          return cm && cm.CodeMirror ? cm.CodeMirror.getValue() : pane ? pane.innerText : '(no result pane)';
        }, responseSel)
        .catch(() => '(unreadable)');
      fail(`result pane never showed ${EXPECTED}; it shows: ${JSON.stringify(got).slice(0, 500)}`);
    }

    console.log(`OK: GraphiQL at ${pageUrl} rendered and ran ${QUERY} -> ${EXPECTED}`);

    const refusal = await checkSubscription(page, editorSel, runSel, responseSel);

    if (foreign.size) fail(`page made requests to other hosts than ${base.host} (see below)`);

    if (screenshot) await page.screenshot({ path: screenshot, fullPage: false });
    console.log(`OK: without a token the subscription was refused: ${refusal}`);
    console.log(
      `OK: with the token from the header editor, ${SUBSCRIPTION} received a patient created over HTTP -> ${SUB_EXPECTED.join(', ')}`,
    );
    if (screenshot) console.log(`screenshot: ${screenshot}`);
    // Without the schema GraphiQL has no docs, autocompletion or validation: that is a failure.
    if (!introspection.includes('ok')) {
      throw new Error(
        `GraphiQL could not load the schema by introspection: ${introspection.join(' | ') || 'no introspection request seen'}`,
      );
    }
    if (pageErrors.length) {
      // GraphiQL 4.1.2's toolkit also leaves an unhandled rejection for every subscription that
      // ends in an error (here: the refused connection without a token).
      console.log(`note: page logged errors:\n  ${pageErrors.join('\n  ')}`);
    }
    return 0;
  } catch (err) {
    if (page && screenshot) await page.screenshot({ path: screenshot }).catch(() => {});
    console.error(`FAIL: ${err.checkFailure ? err.message : err.stack || err}`);
    if (foreign.size) console.error(`requests to other hosts:\n  ${[...foreign].join('\n  ')}`);
    if (failedRequests.length) console.error(`failed requests:\n  ${failedRequests.join('\n  ')}`);
    if (pageErrors.length) console.error(`page errors:\n  ${pageErrors.join('\n  ')}`);
    if (sockets.length) console.error(`WebSockets:\n  ${socketSummary()}`);
    return 1;
  } finally {
    await browser.close().catch(() => {});
  }
}

// The result pane's text.
function readPane(page, responseSel) {
  return page
    .evaluate((sel) => {
      const pane = document.querySelector(sel);
      const cm = pane && pane.querySelector('.CodeMirror');
      return cm && cm.CodeMirror ? cm.CodeMirror.getValue() : pane ? pane.innerText : '(no result pane)';
    }, responseSel)
    .catch(() => '(unreadable)');
}

// Sets a CodeMirror editor's text (and checks it took).
async function setEditor(page, sel, text, what) {
  const got = await page.evaluate(
    ({ sel, text }) => {
      const el = document.querySelector(sel);
      if (!el || !el.CodeMirror) return null;
      el.CodeMirror.setValue(text);
      return el.CodeMirror.getValue();
    },
    { sel, text },
  );
  if (got === null) fail(`no ${what} editor (${sel})`);
  if (got !== text) fail(`could not set the ${what} editor text (it holds ${JSON.stringify(got)})`);
}

// Runs the subscription in the query editor: clicks run, waits for a `subscribe` message on a
// WebSocket opened after `since` (sockets index), or for the result pane to show an error.
async function runSubscription(page, editorSel, runSel, responseSel, since) {
  // GraphiQL's fetcher sends an operation over the WebSocket only if the document it parsed (after
  // a short debounce) is a subscription; clicking earlier would post it over HTTP.
  await page
    .waitForFunction(
      (sel) => {
        const ast = document.querySelector(sel)?.CodeMirror?.documentAST;
        return !!ast && ast.definitions.some((d) => d.operation === 'subscription');
      },
      editorSel,
      { timeout: 5000, polling: 50 },
    )
    .catch(() => {});
  await page
    .waitForFunction((sel) => !document.querySelector(sel)?.hasAttribute('aria-haspopup'), runSel, {
      timeout: 5000,
      polling: 50,
    })
    .catch(() => {});
  const label = await page.getAttribute(runSel, 'aria-label');
  if (label && /stop/i.test(label)) fail(`the run button is a stop button ("${label}") before running the subscription`);
  await page.click(runSel);
  const deadline = Date.now() + TIMEOUT_MS;
  while (Date.now() < deadline) {
    const fresh = sockets.slice(since);
    const subscribed = fresh.find((s) => s.sent.some((f) => f.includes('"subscribe"') && f.includes('patientEvents')));
    if (subscribed) return { socket: subscribed };
    const pane = await readPane(page, responseSel);
    if (pane.includes('"errors"')) return { socket: fresh[fresh.length - 1], error: pane };
    await sleep(100);
  }
  return { socket: sockets.slice(since).pop() };
}

function connectionInit(socket) {
  const frame = socket && socket.sent.find((f) => f.includes('"connection_init"'));
  try {
    return frame ? JSON.parse(frame).payload : undefined;
  } catch {
    return undefined;
  }
}

async function checkSubscription(page, editorSel, runSel, responseSel) {
  // A fresh account over HTTP.
  const email = `graphiql-check-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.com`;
  const registered = await gql(
    'mutation Register($input: RegisterInput!) { register(input: $input) { accessToken } }',
    { input: { name: 'GraphiQL Check', email, password: PASSWORD } },
  );
  const token = registered?.register?.accessToken;
  if (!token) fail(`register returned no accessToken: ${JSON.stringify(registered)}`);

  // The header editor is the visible editor tool (defaultEditorToolsVisibility: 'headers').
  const headersTab = 'button[data-name="headers"]';
  if (await page.$(headersTab)) await page.click(headersTab);
  const headersSel = '.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror';
  try {
    await page.waitForSelector(headersSel, { state: 'visible', timeout: TIMEOUT_MS });
  } catch {
    fail('no visible header editor');
  }
  const prefilled = await page.evaluate((sel) => document.querySelector(sel).CodeMirror.getValue(), headersSel);
  let prefilledJson;
  try {
    prefilledJson = JSON.parse(prefilled);
  } catch {
    fail(`the header editor does not hold JSON: ${JSON.stringify(prefilled)}`);
  }
  if (prefilledJson.Authorization !== 'Bearer ') {
    fail(`the header editor is not pre-filled with {"Authorization": "Bearer "}: ${JSON.stringify(prefilled)}`);
  }

  await setEditor(page, editorSel, SUBSCRIPTION, 'query');

  // 1. With the pre-filled blank token the server refuses the connection.
  let since = sockets.length;
  const refused = await runSubscription(page, editorSel, runSel, responseSel, since);
  if (!refused.socket) fail(`running ${SUBSCRIPTION} opened no WebSocket; result pane: ${await readPane(page, responseSel)}`);
  const blankInit = connectionInit(refused.socket);
  if (!blankInit || blankInit.Authorization !== 'Bearer ') {
    fail(`connection_init did not carry the header editor's headers: ${JSON.stringify(blankInit)}`);
  }
  if (!refused.error) {
    await page
      .waitForFunction(
        ({ sel }) => (document.querySelector(sel)?.innerText || '').includes('errors'),
        { sel: responseSel },
        { timeout: 10000, polling: 100 },
      )
      .catch(() => {});
  }
  const refusalPane = await readPane(page, responseSel);
  if (!refusalPane.includes('"errors"')) {
    fail(`a subscription without a token was not refused; result pane: ${JSON.stringify(refusalPane).slice(0, 500)}`);
  }
  const refusal = (refusalPane.match(/"message": "([^"]*)"/) || [])[1] || refusalPane.slice(0, 200);

  // 2. Put the token into the header editor and run again: a new connection with the new token.
  await setEditor(page, headersSel, JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2), 'header');
  since = sockets.length;
  const run = await runSubscription(page, editorSel, runSel, responseSel, since);
  if (run.error) fail(`the subscription failed with the token in the header editor: ${run.error.slice(0, 500)}`);
  if (!run.socket) fail(`running ${SUBSCRIPTION} again opened no new WebSocket (the changed token was not used)`);
  const init = connectionInit(run.socket);
  if (!init || init.Authorization !== `Bearer ${token}`) {
    fail(`connection_init did not carry the token from the header editor: ${JSON.stringify(init).slice(0, 200)}`);
  }
  if (!run.socket.sent.some((f) => f.includes('"subscribe"'))) {
    fail(`the subscription was never sent; result pane: ${await readPane(page, responseSel)}`);
  }

  // 3. Create a patient over HTTP with the same token; the event must reach the result pane. The
  //    server starts listening just after the subscribe message, so retry the mutation a few times.
  const deadline = Date.now() + TIMEOUT_MS;
  let created = 0;
  while (Date.now() < deadline) {
    await sleep(created === 0 ? 300 : 0);
    await gql(CREATE_PATIENT, {}, token);
    created += 1;
    const shown = await page
      .waitForFunction(
        ({ sel, expected }) => {
          const pane = document.querySelector(sel);
          const cm = pane && pane.querySelector('.CodeMirror');
          const text = cm && cm.CodeMirror ? cm.CodeMirror.getValue() : pane ? pane.innerText : '';
          return expected.every((e) => text.includes(e));
        },
        { sel: responseSel, expected: SUB_EXPECTED },
        { timeout: Math.min(3000, Math.max(1, deadline - Date.now())), polling: 100 },
      )
      .then(() => true, () => false);
    if (shown) return refusal;
  }
  fail(
    `after ${created} patient(s) created over HTTP the result pane never showed ${SUB_EXPECTED.join(' and ')}; ` +
      `it shows: ${JSON.stringify(await readPane(page, responseSel)).slice(0, 500)}`,
  );
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`FAIL: ${err.stack || err}`);
    process.exit(1);
  },
);
