// The agent console and the chat widget in a real browser (headless Chromium via
// playwright-core), against the real local stack (`crossdesk-local`, started here).
//   npm ci --prefix web/tests && node --test web/tests/
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import {
  ROOT, AGENT_TOKEN, startStack, launchBrowser, guard, signIn, artifact, postFacebook, feedComment, agentApi,
} from './stack.mjs';

const XSS = '<img src=x onerror=alert(1)>';
const WAIT = 15000; // an answer or a webhook shows up within seconds; this is the ceiling

let stack;
let browser;
const problems = [];

before(async () => {
  stack = await startStack();
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (stack) await stack.stop();
});

beforeEach(() => {
  problems.length = 0;
});

function noProblems() {
  assert.deepEqual(problems, [], 'no dialog, page error or CSP violation');
}

/** The widget's shadow DOM, through Playwright's shadow-piercing locators. */
function widget(page) {
  return {
    launcher: page.locator('#crossdesk-chat').getByRole('button', { name: /Chat with/ }),
    panel: page.locator('#crossdesk-chat [role=dialog]'),
    text: page.locator('#crossdesk-chat').getByLabel('Your message'),
    send: page.locator('#crossdesk-chat').getByRole('button', { name: 'Send' }),
    log: page.locator('#crossdesk-chat [role=log]'),
  };
}

async function openDemo(context) {
  const page = await context.newPage();
  guard(page, problems);
  await page.goto(`${stack.base}/demo/`);
  return page;
}

test('static files are served with a Content-Security-Policy', async () => {
  for (const p of ['/console/', '/console/app.js', '/console/app.css', '/widget.js', '/demo/']) {
    const response = await fetch(`${stack.base}${p}`);
    assert.equal(response.status, 200, p);
  }
  const html = await fetch(`${stack.base}/console/`);
  assert.match(html.headers.get('content-security-policy') || '', /script-src 'self'/);
  const cfg = await (await fetch(`${stack.base}/console/config.json`)).json();
  assert.equal(cfg.auth, 'token');
});

test('chat: a visitor writes in the widget, an agent answers in the console, the answer reaches the widget', async () => {
  const visitor = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const agent = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  try {
    const demo = await openDemo(visitor);
    const w = widget(demo);
    await w.launcher.waitFor();
    // It never opens by itself.
    await demo.waitForTimeout(300);
    assert.equal(await w.panel.isVisible(), false, 'the widget stays closed until clicked');
    await w.launcher.click();
    await w.panel.waitFor({ state: 'visible' });
    await demo.locator('#crossdesk-chat summary').click();
    await demo.locator('#crossdesk-chat').getByLabel('Name').fill('Wanda Widget');
    await demo.locator('#crossdesk-chat').getByLabel(/^Email/).fill('wanda@example.com');
    await w.text.fill('Hello from the demo shop! Where is order 4711?');
    await w.send.click();
    await w.log.getByText('Hello from the demo shop! Where is order 4711?').waitFor();

    // The agent sees the ticket appear in the open console, without reloading.
    const console_ = await agent.newPage();
    guard(console_, problems);
    await signIn(console_, stack.base);
    const row = console_.locator('.ticket-item', { hasText: 'Wanda Widget' });
    await row.waitFor({ timeout: WAIT });
    await assert.doesNotReject(row.getByText('Hello from the demo shop!').waitFor());
    await row.getByRole('button').click();
    await console_.locator('#timeline').getByText('Where is order 4711?').waitFor();
    assert.match(await console_.locator('#reply-target').inputValue(), /^chat\|/);

    await console_.getByLabel('Reply text').fill('Hi Wanda, order 4711 ships tomorrow.');
    const replyRequest = console_.waitForRequest((r) => r.url().endsWith('/replies') && r.method() === 'POST');
    await console_.getByRole('button', { name: 'Send reply' }).click();
    // Each reply carries its own idempotency key, so a repeated request cannot send it twice.
    assert.match((await replyRequest).headers()['idempotency-key'] ?? '', /^[0-9a-f]{32}$/);
    const reply = console_.locator('#timeline li', { hasText: 'order 4711 ships tomorrow' });
    await reply.waitFor();
    await reply.locator('[data-delivery]').waitFor();
    // The answer reaches the widget within seconds (polling), and is marked sent in the console.
    await w.log.getByText('Hi Wanda, order 4711 ships tomorrow.').waitFor({ timeout: WAIT });
    await reply.locator('[data-delivery=sent]').waitFor({ timeout: WAIT });

    await console_.screenshot({ path: artifact('console-chat-ticket.png') });
    await demo.screenshot({ path: artifact('widget-conversation.png') });

    // The conversation survives a page load (session, cursor and messages in localStorage),
    // and the widget is closed again after it.
    // Let the stored token be near its end: the next call refreshes it first.
    await demo.evaluate(() => {
      const key = Object.keys(localStorage).find((k) => k.startsWith('crossdesk.chat:'));
      const stored = JSON.parse(localStorage.getItem(key));
      stored.expires_at = new Date(Date.now() + 60000).toISOString();
      localStorage.setItem(key, JSON.stringify(stored));
    });
    const refreshed = demo.waitForResponse((r) => r.url().endsWith('/chat/api/sessions/refresh') && r.status() === 200, { timeout: WAIT });
    await demo.reload();
    await refreshed;
    await w.launcher.waitFor();
    assert.equal(await w.panel.isVisible(), false);
    await w.launcher.click();
    await w.log.getByText('Hi Wanda, order 4711 ships tomorrow.').waitFor();
    await w.log.getByText('Where is order 4711?').waitFor();
    noProblems();
  } finally {
    await visitor.close();
    await agent.close();
  }
});

test('facebook: a signed page comment arriving while the console is open appears without a reload', async () => {
  const agent = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  try {
    const page = await agent.newPage();
    guard(page, problems);
    await signIn(page, stack.base);
    await page.evaluate(() => { window.__noReload = 'still here'; });

    const comment = `Is my parcel lost? Write me at sam.${Date.now()}@example.com`;
    await postFacebook(stack.api, feedComment({
      commentId: `POST_777_COMMENT_${Date.now()}`,
      userId: 'USER_ID_BROWSER_1',
      name: 'Sam Browser',
      message: comment,
    }));
    const row = page.locator('.ticket-item', { hasText: 'Sam Browser' });
    await row.waitFor({ timeout: WAIT });
    assert.equal(await page.evaluate(() => window.__noReload), 'still here', 'the page was not reloaded');
    await row.locator('.ch-facebook').waitFor();
    // A public comment has a 10-minute first-response target here: the SLA badge says nearing.
    await row.locator('.sla-nearing').getByText(/SLA nearing · due/).waitFor();

    // Open it with the keyboard: j selects the first ticket (the newest).
    await page.locator('body').click({ position: { x: 5, y: 200 } });
    await page.keyboard.press('j');
    await page.locator('#ticket-title').getByText(/Is my parcel lost\?/).waitFor();
    const message = page.locator('#timeline li.msg', { hasText: 'Is my parcel lost?' });
    await message.locator('.vis-public').waitFor();
    // The personal-data flag, and the one-click handoff.
    await page.locator('#pd-banner').getByText(/email address/).waitFor();
    await page.getByRole('button', { name: 'Move to private' }).click();
    await page.locator('#pd-result').getByText(/Moved to private/).waitFor({ timeout: WAIT });
    // Both messages of the handoff show their delivery status (Facebook has no sending
    // credentials on the test stack: failed, with the reason).
    const outbound = page.locator('#timeline li.msg.outbound');
    await assert.doesNotReject(outbound.nth(1).waitFor());
    for (const li of await outbound.all()) {
      assert.ok(await li.locator('[data-delivery]').count(), 'every outbound message shows its delivery');
    }
    await page.locator('#timeline li.msg.outbound.public').first().waitFor();
    await page.locator('#timeline li.msg.outbound.private').first().waitFor();

    // A canned response, rendered for this ticket, goes into the reply box.
    await page.getByLabel('Canned response').selectOption({ label: 'Parcel tracking' });
    await assert.doesNotReject(page.waitForFunction(() => /^Hi Sam, here is how to track your parcel/.test(document.getElementById('reply-text').value)));
    await page.getByLabel('Reply text').fill('');

    // An internal note looks different, and says so. Esc leaves the reply box, n goes to the note.
    await page.keyboard.press('Escape');
    await page.keyboard.press('n');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'note-text');
    await page.keyboard.type('Customer called too, same question.');
    await page.getByRole('button', { name: 'Add note' }).click();
    await page.locator('#timeline li.msg.note', { hasText: 'Customer called too' }).locator('.vis-note').waitFor();

    // Assign and tag.
    await page.locator('#wf-assignee').fill('agent-7');
    await page.locator('#workflow-form').getByRole('button', { name: 'Save' }).click();
    await page.getByLabel('New tag').fill('Shipping');
    await page.getByRole('button', { name: 'Add tag' }).click();
    await page.locator('#tag-list').getByText('shipping').waitFor();
    await row.getByText('@agent-7').waitFor({ timeout: WAIT });

    // The customer panel lists their history.
    await page.locator('#customer').getByText('Sam Browser').waitFor();
    await page.screenshot({ path: artifact('console-facebook-handoff.png') });
    noProblems();
  } finally {
    await agent.close();
  }
});

test('a closed reply window is offered disabled, with the reason', async () => {
  const agent = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  try {
    // The repository's sample comment is from 2024: Meta's 7-day private-reply window is closed.
    const sample = JSON.parse(readFileSync(path.join(ROOT, 'events/facebook/feed-comment-add.json'), 'utf8'));
    await postFacebook(stack.api, sample);
    const page = await agent.newPage();
    guard(page, problems);
    await signIn(page, stack.base);
    await page.locator('.ticket-item', { hasText: 'Where is my order?' }).getByRole('button').click();
    await page.locator('#timeline').getByText('Where is my order?').waitFor();
    assert.equal(await page.locator('#reply-target option[value="facebook|private"]').isDisabled(), true);
    assert.equal(await page.locator('#reply-target').inputValue(), 'facebook|public');
    await page.locator('#window-reasons').getByText(/within 7 days/).waitFor();
    // Each ticket has its own address (notifications link to it): a reload opens it again.
    assert.match(new URL(page.url()).pathname, /^\/console\/tickets\/[A-Z0-9]+$/);
    await page.reload();
    await page.locator('#timeline').getByText('Where is my order?').waitFor();
    noProblems();
  } finally {
    await agent.close();
  }
});

test('text is text: an HTML payload shows literally in the widget and the console, no script runs', async () => {
  const visitor = await browser.newContext();
  const agent = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  try {
    const demo = await openDemo(visitor);
    const w = widget(demo);
    await w.launcher.click();
    await demo.locator('#crossdesk-chat summary').click();
    await demo.locator('#crossdesk-chat').getByLabel('Name').fill(XSS);
    await w.text.fill(XSS);
    await w.send.click();
    await w.log.getByText(XSS, { exact: true }).waitFor();
    assert.equal(await demo.locator('#crossdesk-chat img').count(), 0, 'no <img> in the widget');

    const page = await agent.newPage();
    guard(page, problems);
    await signIn(page, stack.base);
    const row = page.locator('.ticket-item', { hasText: XSS }).first();
    await row.waitFor({ timeout: WAIT });
    await row.getByRole('button').click();
    await page.locator('#timeline .msg-text').getByText(XSS, { exact: true }).waitFor();
    await page.locator('#timeline .author').getByText(XSS, { exact: true }).first().waitFor();
    assert.equal(await page.locator('#main img').count(), 0, 'no <img> in the console');
    await page.getByLabel('Reply text').fill(`You wrote: ${XSS}`);
    await page.getByRole('button', { name: 'Send reply' }).click();
    await w.log.getByText(`You wrote: ${XSS}`, { exact: true }).waitFor({ timeout: WAIT });
    assert.equal(await demo.locator('#crossdesk-chat img').count(), 0);
    await demo.waitForTimeout(300);
    noProblems();
  } finally {
    await visitor.close();
    await agent.close();
  }
});

test('widget: a failed send is retried with the same client_id, a 429 is waited out politely', async () => {
  const visitor = await browser.newContext();
  try {
    const demo = await openDemo(visitor);
    const w = widget(demo);
    const posts = [];
    await demo.route('**/chat/api/messages', async (route) => {
      const request = route.request();
      if (request.method() !== 'POST') return route.continue();
      posts.push(JSON.parse(request.postData()).client_id);
      if (posts.length === 1) return route.abort('connectionreset');
      if (posts.length === 2) {
        return route.fulfill({
          status: 429,
          headers: { 'retry-after': '1', 'content-type': 'application/json', 'access-control-allow-origin': '*' },
          body: '{"error":{"code":"rate_limited","message":"slow down"}}',
        });
      }
      return route.continue();
    });
    await w.launcher.click();
    const text = `Retry me please ${Date.now()}`;
    await w.text.fill(text);
    await w.send.click();
    await demo.locator('#crossdesk-chat [role=status]').getByText(/writing faster than we can take it/).waitFor({ timeout: WAIT });
    await w.log.locator('li', { hasText: text }).getByText('Sent').waitFor({ timeout: WAIT }).catch(() => {});
    // The server's copy replaces the local one: the message is shown once.
    await assert.doesNotReject(demo.waitForFunction((t) => {
      const log = document.querySelector('#crossdesk-chat').shadowRoot.querySelector('[role=log]');
      return [...log.querySelectorAll('li[data-id]')].filter((li) => li.textContent.includes(t)).length === 1
        && ![...log.querySelectorAll('li[data-client-id]')].some((li) => li.textContent.includes(t));
    }, text, { timeout: WAIT }));
    assert.equal(posts.length, 3, 'sent three times: network error, 429, accepted');
    assert.equal(new Set(posts).size, 1, 'every attempt carries the same client_id');
    // And the desk stored it once.
    const list = await agentApi(stack.api, '/api/tickets?channel=chat&limit=200');
    const tickets = list.body.tickets.filter((t) => (t.preview || '').includes(text));
    assert.equal(tickets.length, 1);
    const view = await agentApi(stack.api, `/api/tickets/${tickets[0].id}`);
    assert.equal(view.body.messages.filter((m) => m.text === text).length, 1, 'stored once');
    noProblems();
  } finally {
    await visitor.close();
  }
});

/** Another site on loopback (a company's shop, an identity provider): `handler(req, body, res)`. */
async function otherSite(handler) {
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    try {
      await handler(req, Buffer.concat(chunks).toString(), res);
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  // `localhost` and `127.0.0.1` are different origins.
  return { url: `http://localhost:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

test('widget on another origin: one script tag, the chat API answers with CORS', async () => {
  const shop = await otherSite((req, body, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html lang="en"><head><title>Shop</title>
      <script src="${stack.base}/widget.js" data-crossdesk-url="${stack.base}" data-title="Chat with Shop" defer></script>
      </head><body><h1>Another shop</h1></body></html>`);
  });
  const visitor = await browser.newContext();
  try {
    const page = await visitor.newPage();
    guard(page, problems);
    await page.goto(`${shop.url}/`);
    const w = widget(page);
    await w.launcher.click();
    await w.text.fill('Cross-origin hello');
    await w.send.click();
    await w.log.locator('li[data-id]', { hasText: 'Cross-origin hello' }).waitFor({ timeout: WAIT });
    assert.deepEqual(await page.evaluate(() => Object.keys(window.Crossdesk)), ['widget'], 'one namespaced global');
    noProblems();
  } finally {
    await visitor.close();
    await shop.close();
  }
});

test('console sign-in with OIDC: authorization code with PKCE, token kept in sessionStorage', async () => {
  const redirect = `${stack.base}/console/`;
  let challenge = null;
  let verified = false;
  const idp = await otherSite((req, body, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/oauth2/authorize') {
      assert.equal(url.searchParams.get('response_type'), 'code');
      assert.equal(url.searchParams.get('client_id'), 'console-client');
      assert.equal(url.searchParams.get('redirect_uri'), redirect);
      assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
      challenge = url.searchParams.get('code_challenge');
      const back = new URL(redirect);
      back.searchParams.set('code', 'the-code');
      back.searchParams.set('state', url.searchParams.get('state'));
      // (A page that sends the browser back, rather than a 302: Playwright routes, which set the
      // console's CSP below, do not see the target of a redirect.)
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><meta http-equiv="refresh" content="0;url=${back.toString().replace(/&/g, '&amp;')}">`);
      return;
    }
    const cors = { 'access-control-allow-origin': '*', 'access-control-allow-headers': 'content-type' };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, cors);
      res.end();
      return;
    }
    const form = new URLSearchParams(body);
    const expected = createHash('sha256').update(form.get('code_verifier') || '').digest('base64url');
    verified = form.get('grant_type') === 'authorization_code' && form.get('code') === 'the-code'
      && form.get('client_id') === 'console-client' && expected === challenge;
    res.writeHead(verified ? 200 : 400, { 'content-type': 'application/json', ...cors });
    res.end(JSON.stringify(verified ? { access_token: AGENT_TOKEN, token_type: 'Bearer', expires_in: 3600 } : { error: 'invalid_grant' }));
  });
  // A page whose answer a route rewrote counts as public to Chromium's Local Network Access
  // checks, which would then refuse its calls to the (loopback) identity provider.
  const oidcBrowser = await launchBrowser(['--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests']);
  const agent = await oidcBrowser.newContext();
  try {
    const page = await agent.newPage();
    guard(page, problems);
    await page.route('**/console/config.json', (route) => route.fulfill({
      contentType: 'application/json',
      body: JSON.stringify({
        auth: 'oidc',
        issuer: idp.url,
        client_id: 'console-client',
        authorize_url: `${idp.url}/oauth2/authorize`,
        token_url: `${idp.url}/oauth2/token`,
        redirect_uri: redirect,
      }),
    }));
    // The local stack signs in with the token, so its console CSP allows only 'self'; with OIDC
    // the server adds the token endpoint's origin to connect-src (web/API.md), as done here.
    await page.route(/\/console\/(\?.*)?$/, async (route) => {
      const response = await route.fetch();
      const headers = response.headers();
      headers['content-security-policy'] = (headers['content-security-policy'] || '')
        .replace("connect-src 'self'", `connect-src 'self' ${idp.url}`);
      await route.fulfill({ response, headers });
    });
    await page.goto(`${stack.base}/console/`);
    await page.getByRole('button', { name: 'Sign in with single sign-on' }).click();
    await page.locator('#main').waitFor({ state: 'visible', timeout: WAIT }).catch(async (err) => {
      throw new Error(`${err.message}\nsign-in says: ${await page.locator('#signin-error').textContent()}\n${problems.join('\n')}`);
    });
    assert.ok(verified, 'the code verifier matched the challenge');
    assert.equal(new URL(page.url()).search, '', 'the code is removed from the address bar');
    // The inbox loaded with the access token (its count is filled in after the first answer).
    await page.locator('#inbox-count').getByText(/^\(\d+\)$/).waitFor({ timeout: WAIT });
    assert.equal(await page.locator('#inbox-error').textContent(), '');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('crossdesk.console.token')), AGENT_TOKEN);
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
    noProblems();
  } finally {
    await oidcBrowser.close();
    await idp.close();
  }
});

test('phone-sized console: one column, keyboard help, screenshots', async () => {
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  try {
    const page = await phone.newPage();
    guard(page, problems);
    await signIn(page, stack.base);
    await page.locator('.ticket-item').first().waitFor({ timeout: WAIT });
    // Every control has a name (a label or aria-label).
    const unlabeled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')]
      .filter((c) => !(c.labels && c.labels.length) && !c.getAttribute('aria-label') && !c.textContent.trim())
      .map((c) => c.outerHTML.slice(0, 80)));
    assert.deepEqual(unlabeled, [], 'controls without a label');
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `no horizontal scrolling on a phone (page is ${width}px wide)`);
    await page.screenshot({ path: artifact('console-phone-inbox.png') });
    await page.locator('.ticket-item', { hasText: 'Wanda Widget' }).getByRole('button').click();
    await page.locator('#timeline li').first().waitFor();
    assert.equal(await page.locator('#inbox').isVisible(), false, 'one column: the ticket replaces the inbox');
    await page.screenshot({ path: artifact('console-phone-ticket.png') });
    await page.getByRole('button', { name: /Inbox/ }).click();
    await page.locator('#inbox').waitFor({ state: 'visible' });

    // Desktop: shortcuts help, and the two pictures the README shows.
    const d = await desktop.newPage();
    guard(d, problems);
    await signIn(d, stack.base);
    await d.locator('.ticket-item', { hasText: 'Sam Browser' }).getByRole('button').click();
    await d.locator('#timeline li').first().waitFor();
    await d.keyboard.press('Escape');
    await d.keyboard.press('?');
    await d.getByRole('dialog', { name: 'Keyboard shortcuts' }).waitFor();
    await d.keyboard.press('Escape');
    await d.locator('.ticket-item', { hasText: 'Wanda Widget' }).getByRole('button').click();
    await d.locator('#timeline').getByText('order 4711 ships tomorrow').waitFor();
    await d.screenshot({ path: artifact('console-chat.png') });
    // The README's picture: the Facebook ticket (public and private messages, a failed delivery
    // with its reason, an internal note, the handoff, tags and the customer panel).
    await d.locator('.ticket-item', { hasText: 'Sam Browser' }).getByRole('button').click();
    await d.locator('#timeline li.note').first().waitFor();
    await d.evaluate(() => window.scrollTo(0, 0));
    await d.setViewportSize({ width: 1280, height: 1000 });
    await d.screenshot({ path: artifact('console.png') });

    const visitor = await browser.newContext({ viewport: { width: 900, height: 720 } });
    const demo = await openDemo(visitor);
    const w = widget(demo);
    await w.launcher.click();
    await w.text.fill('Do you have the Cargo Long in green?');
    await w.send.click();
    await w.log.getByText('Do you have the Cargo Long in green?').waitFor();
    let ticket;
    for (let i = 0; i < 50 && !ticket; i++) {
      const list = await agentApi(stack.api, '/api/tickets?channel=chat&limit=200');
      ticket = list.body.tickets.find((t) => (t.preview || '').includes('Cargo Long in green'));
      if (!ticket) await demo.waitForTimeout(200);
    }
    assert.ok(ticket, 'the widget message became a ticket');
    const answer = await agentApi(stack.api, `/api/tickets/${ticket.id}/replies`, {
      method: 'POST',
      body: JSON.stringify({ text: 'Yes! It comes in forest green. Shall I reserve one for you?' }),
    });
    assert.equal(answer.status, 202);
    await w.log.getByText('Yes! It comes in forest green. Shall I reserve one for you?').waitFor({ timeout: WAIT });
    await demo.screenshot({ path: artifact('widget.png') });
    await visitor.close();

    if (process.env.CROSSDESK_UPDATE_DOCS_SCREENSHOTS === '1') {
      mkdirSync(path.join(ROOT, 'docs'), { recursive: true });
      copyFileSync(artifact('console.png'), path.join(ROOT, 'docs', 'console.png'));
      copyFileSync(artifact('widget.png'), path.join(ROOT, 'docs', 'widget.png'));
    }
    noProblems();
  } finally {
    await phone.close();
    await desktop.close();
  }
});

test('the agent API answers 304 to an unchanged If-None-Match (what the console polls with)', async () => {
  const first = await agentApi(stack.api, '/api/tickets?status=open');
  assert.equal(first.status, 200);
  const etag = first.headers.get('etag');
  assert.ok(etag, 'GET /api/tickets carries an ETag');
  const again = await fetch(`${stack.api}/api/tickets?status=open`, {
    headers: { authorization: 'Bearer test-agent-token', 'if-none-match': etag },
  });
  assert.equal(again.status, 304);
});

test('the ticket list pages: older tickets a page at a time, and back to the newest', async () => {
  // A few more customers, so there are pages to turn.
  const before = (await agentApi(stack.api, '/api/tickets?limit=200')).body.tickets.length;
  for (const n of [1, 2, 3]) {
    await postFacebook(stack.api, feedComment({
      commentId: `POST_777_PAGER_${n}_${Date.now()}`,
      userId: `USER_PAGER_${n}`,
      name: `Pat Pager ${n}`,
      message: `Pager question ${n}`,
    }));
  }
  const deadline = Date.now() + WAIT;
  while ((await agentApi(stack.api, '/api/tickets?limit=200')).body.tickets.length < before + 3) {
    assert.ok(Date.now() < deadline, 'the new tickets are stored');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const agent = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  try {
    const page = await agent.newPage();
    guard(page, problems);
    await page.goto(`${stack.base}/console/?limit=2`);
    await page.getByLabel('Agent token').fill(AGENT_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const items = page.locator('#ticket-list li.ticket-item');
    const shown = async () => items.evaluateAll((lis) => lis.map((li) => li.dataset.id));
    await page.locator('#list-pager').waitFor({ state: 'visible', timeout: WAIT });
    const first = await shown();
    assert.equal(first.length, 2, 'two tickets per page');
    assert.equal(await page.locator('#page-newer').isDisabled(), true, 'the first page is the newest');

    await page.getByRole('button', { name: 'Older tickets →' }).click();
    await page.waitForFunction((ids) => {
      const now = [...document.querySelectorAll('#ticket-list li.ticket-item')].map((li) => li.dataset.id);
      return now.length > 0 && now.every((id) => !ids.includes(id));
    }, first, { timeout: WAIT });
    const second = await shown();
    assert.ok(second.length >= 1 && second.length <= 2, `${second}`);

    await page.getByRole('button', { name: '← Newer tickets' }).click();
    await page.waitForFunction((ids) => {
      const now = [...document.querySelectorAll('#ticket-list li.ticket-item')].map((li) => li.dataset.id);
      return now.join() === ids.join();
    }, first, { timeout: WAIT });
    assert.equal(await page.locator('#page-newer').isDisabled(), true);
    noProblems();
  } finally {
    await agent.close();
  }
});
