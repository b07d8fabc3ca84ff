// A development server for the static files: serves web/ like the local stack does
// (/console/, /widget.js, /demo/) with the console's Content-Security-Policy, and proxies every
// other path to a running stack. Use it while editing the files without rebuilding Rust:
//   node web/tests/dev-server.mjs http://127.0.0.1:8080      (prints its own URL)
// The browser tests use it instead of the stack's own routes when CROSSDESK_WEB_DEV_PROXY=1.
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data: https:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";
const FILES = {
  '/console/': ['console/index.html', 'text/html; charset=utf-8'],
  '/console/index.html': ['console/index.html', 'text/html; charset=utf-8'],
  '/console/app.js': ['console/app.js', 'text/javascript; charset=utf-8'],
  '/console/app.css': ['console/app.css', 'text/css; charset=utf-8'],
  '/widget.js': ['widget.js', 'text/javascript; charset=utf-8'],
  '/demo/': ['demo/index.html', 'text/html; charset=utf-8'],
  '/demo/demo.css': ['demo/demo.css', 'text/css; charset=utf-8'],
};

export function startDevServer({ upstream, port = 0 }) {
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/console/config.json') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"auth":"token"}');
      return;
    }
    let file = FILES[url.pathname];
    if (!file && /^\/console\/[^.]*$/.test(url.pathname)) file = FILES['/console/'];
    if (file && req.method === 'GET') {
      const body = await readFile(path.join(WEB, file[0]));
      const headers = { 'content-type': file[1], 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' };
      if (file[1].startsWith('text/html')) headers['content-security-policy'] = CSP;
      res.writeHead(200, headers);
      res.end(body);
      return;
    }
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const headers = { ...req.headers };
    delete headers.host;
    try {
      const answer = await fetch(upstream + req.url, {
        method: req.method,
        headers,
        body: chunks.length ? Buffer.concat(chunks) : undefined,
      });
      const out = {};
      answer.headers.forEach((v, k) => {
        if (k !== 'content-encoding' && k !== 'content-length' && k !== 'transfer-encoding') out[k] = v;
      });
      res.writeHead(answer.status, out);
      res.end(Buffer.from(await answer.arrayBuffer()));
    } catch (err) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(String(err));
    }
  });
  return new Promise((resolve) => {
    server.listen(port, '127.0.0.1', () => {
      const { port: p } = server.address();
      resolve({ url: `http://127.0.0.1:${p}`, close: () => new Promise((r) => server.close(r)) });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const upstream = (process.argv[2] || 'http://127.0.0.1:8080').replace(/\/$/, '');
  const port = Number(process.argv[3] || 0);
  startDevServer({ upstream, port }).then(({ url }) => console.log(`dev server on ${url} → ${upstream}`));
}
