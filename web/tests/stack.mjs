// Helpers of the browser tests: start the real `crossdesk-local` binary on a free port with a
// fresh data dir (like tests/common/mod.rs), sign webhooks, launch headless Chromium.
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startDevServer } from './dev-server.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ARTIFACTS = path.join(ROOT, 'target', 'browser-artifacts');

export const SECRETS = {
  CROSSDESK_FACEBOOK_APP_SECRET: 'test-facebook-app-secret',
  CROSSDESK_FACEBOOK_VERIFY_TOKEN: 'test-verify-token',
  CROSSDESK_TWITTER_CONSUMER_SECRET: 'test-twitter-consumer-secret',
  CROSSDESK_CHAT_SECRET: 'test-chat-secret',
  CROSSDESK_AGENT_TOKEN: 'test-agent-token',
  CROSSDESK_EMAIL_THREAD_KEY: 'test-email-thread-key-0123456789',
  CROSSDESK_CHAT_SESSION_KEY: 'test-chat-session-key-0123456789abcdef',
};
export const AGENT_TOKEN = SECRETS.CROSSDESK_AGENT_TOKEN;

/** Starts crossdesk-local; resolves with { base, stop, logs }. */
export async function startStack() {
  const bin = path.resolve(ROOT, process.env.CROSSDESK_LOCAL_BIN || 'target/debug/crossdesk-local');
  if (!existsSync(bin)) {
    throw new Error(`${bin} does not exist: build it first (cargo build --bin crossdesk-local) or set CROSSDESK_LOCAL_BIN`);
  }
  const dataDir = mkdtempSync(path.join(tmpdir(), 'crossdesk-browser-'));
  const env = {
    PATH: process.env.PATH || '',
    CROSSDESK_PORT: '0',
    CROSSDESK_DATA_DIR: dataDir,
    RUST_LOG: 'warn',
    CROSSDESK_CONFIG: path.join(ROOT, 'web', 'tests', 'crossdesk.test.toml'),
    ...SECRETS,
  };
  const child = spawn(bin, [], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  child.stderr.on('data', (d) => { logs += d; });
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`crossdesk-local did not start in 30 s:\n${logs}`)), 30000);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      logs += d;
      const m = out.match(/crossdesk-local listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].replace(/\/$/, ''));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`crossdesk-local exited with ${code}:\n${logs}`));
    });
  });
  let web = base;
  let devServer = null;
  if (process.env.CROSSDESK_WEB_DEV_PROXY === '1') {
    // Development aid: serve web/ from Node and proxy the API to the stack.
    devServer = await startDevServer({ upstream: base });
    web = devServer.url;
  }
  return {
    base: web,
    api: base,
    dataDir,
    logs: () => logs,
    async stop() {
      if (devServer) await devServer.close();
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => { child.once('exit', r); setTimeout(r, 3000); });
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Posts a Facebook webhook body signed like Meta does (X-Hub-Signature-256 over the raw body). */
export async function postFacebook(base, payload) {
  const raw = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const sig = createHmac('sha256', SECRETS.CROSSDESK_FACEBOOK_APP_SECRET).update(raw).digest('hex');
  const response = await fetch(`${base}/webhooks/facebook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': `sha256=${sig}` },
    body: raw,
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`facebook webhook: ${response.status} ${text}`);
  return JSON.parse(text);
}

/** A page feed comment (events/facebook/feed-comment-add.json's shape) written now. */
export function feedComment({ commentId, userId, name, message }) {
  const now = Math.floor(Date.now() / 1000);
  return {
    object: 'page',
    entry: [{
      id: 'PAGE_ID_100200300',
      time: now,
      changes: [{
        field: 'feed',
        value: {
          from: { id: userId, name },
          post_id: 'PAGE_ID_100200300_POST_777',
          comment_id: commentId,
          parent_id: 'PAGE_ID_100200300_POST_777',
          created_time: now,
          item: 'comment',
          verb: 'add',
          message,
        },
      }],
    }],
  };
}

/** The agent API, as a test would call it. */
export async function agentApi(base, pathAndQuery, init = {}) {
  const response = await fetch(`${base}${pathAndQuery}`, {
    ...init,
    headers: { authorization: `Bearer ${AGENT_TOKEN}`, 'content-type': 'application/json', ...(init.headers || {}) },
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
}

export async function launchBrowser(extraArgs = []) {
  const executablePath = process.env.CHROMIUM_PATH || ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(existsSync);
  if (!executablePath) throw new Error('Chromium not found: apt-get install -y chromium (or set CHROMIUM_PATH)');
  return chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', ...extraArgs] });
}

export function artifact(name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}

/** Fails the test on any JavaScript dialog (an XSS payload firing) or page error. */
export function guard(page, problems) {
  page.on('dialog', async (dialog) => {
    problems.push(`dialog fired: ${dialog.type()} ${dialog.message()}`);
    await dialog.dismiss().catch(() => {});
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|Refused to/.test(msg.text())) {
      problems.push(`CSP violation: ${msg.text()}`);
    }
  });
}

export async function signIn(page, base) {
  await page.goto(`${base}/console/`);
  await page.getByLabel('Agent token').fill(AGENT_TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#main').waitFor({ state: 'visible' });
}
