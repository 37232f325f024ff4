// Headless check of medgraph's offline GraphiQL page.
//
//   node check.mjs [BASE_URL]        (default http://127.0.0.1:8080)
//   SCREENSHOT=/tmp/graphiql.png node check.mjs http://127.0.0.1:8080
//
// Opens <base>/graphql as a browser navigation (Accept: text/html...), fails if
// the page requests anything from another host, waits for GraphiQL to render,
// runs `{ __typename }` and waits for `"__typename": "Query"` in the result.
// Exits 0 on success, 1 with a message otherwise.
import { chromium } from 'playwright-core';

const base = new URL(process.argv[2] || 'http://127.0.0.1:8080');
const pageUrl = new URL('/graphql', base).href;
const screenshot = process.env.SCREENSHOT || '';
const TIMEOUT_MS = Number(process.env.CHECK_TIMEOUT_MS || 30000);
const QUERY = '{ __typename }';
const EXPECTED = '"__typename": "Query"';

const foreign = new Set(); // requests to hosts other than the base URL's
const pageErrors = []; // uncaught exceptions and console errors
const failedRequests = []; // same-host requests that failed or returned >= 400

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
    });
    page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(`console.error: ${msg.text()}`);
    });
    page.on('requestfailed', (req) => {
      if (isAllowed(req.url())) failedRequests.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText}`);
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

    if (foreign.size) fail(`page made requests to other hosts than ${base.host} (see below)`);

    if (screenshot) await page.screenshot({ path: screenshot, fullPage: false });
    console.log(`OK: GraphiQL at ${pageUrl} rendered and ran ${QUERY} -> ${EXPECTED}`);
    if (screenshot) console.log(`screenshot: ${screenshot}`);
    if (pageErrors.length) console.log(`note: page logged errors:\n  ${pageErrors.join('\n  ')}`);
    return 0;
  } catch (err) {
    if (page && screenshot) await page.screenshot({ path: screenshot }).catch(() => {});
    console.error(`FAIL: ${err.checkFailure ? err.message : err.stack || err}`);
    if (foreign.size) console.error(`requests to other hosts:\n  ${[...foreign].join('\n  ')}`);
    if (failedRequests.length) console.error(`failed requests:\n  ${failedRequests.join('\n  ')}`);
    if (pageErrors.length) console.error(`page errors:\n  ${pageErrors.join('\n  ')}`);
    return 1;
  } finally {
    await browser.close().catch(() => {});
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`FAIL: ${err.stack || err}`);
    process.exit(1);
  },
);
