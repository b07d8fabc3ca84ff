/*! Crossdesk chat widget.
 * Add one tag to a page:
 *   <script src="https://desk.example.com/widget.js" data-crossdesk-url="https://desk.example.com" defer></script>
 * Optional attributes: data-title, data-greeting, data-position="left".
 * It adds a launcher button (it never opens by itself) and talks to the public chat API
 * (web/API.md): a signed visitor session, messages, and polling for agent answers.
 * Everything lives in a shadow root; the only global is `window.Crossdesk.widget`.
 * Text from visitors and agents is always rendered as text (textContent), never as HTML.
 */
(function () {
  'use strict';

  var ns = (window.Crossdesk = window.Crossdesk || {});
  if (ns.widget) return; // included twice

  var script = document.currentScript;
  var scriptUrl = script && script.src ? new URL(script.src, location.href) : null;
  var base = ((script && script.getAttribute('data-crossdesk-url')) || (scriptUrl ? scriptUrl.origin : location.origin)).replace(/\/+$/, '');
  var title = (script && script.getAttribute('data-title')) || 'Chat with us';
  var greeting = (script && script.getAttribute('data-greeting')) || 'Hi! Ask us anything. We usually answer within a few minutes.';
  var left = script && script.getAttribute('data-position') === 'left';

  var STORE_KEY = 'crossdesk.chat:' + base;
  var OPEN_POLL_MS = 2500;
  var CLOSED_POLL_MS = 15000;
  var HIDDEN_POLL_MS = 30000;
  var REFRESH_BEFORE_MS = 5 * 60 * 1000;
  var MAX_CACHE = 200;

  // ---------------------------------------------------------------------------------------------
  // Stored state: session, token, cursor, the conversation, unsent messages.

  function load() {
    try {
      var raw = localStorage.getItem(STORE_KEY);
      if (raw) return JSON.parse(raw);
    } catch (e) {
      /* storage blocked or corrupt: start fresh */
    }
    return {};
  }
  var store = load();
  store.messages = store.messages || [];
  store.pending = store.pending || [];
  store.seen = store.seen || 0; // outbound messages the visitor has seen

  function save() {
    try {
      if (store.messages.length > MAX_CACHE) store.messages = store.messages.slice(-MAX_CACHE);
      localStorage.setItem(STORE_KEY, JSON.stringify(store));
    } catch (e) {
      /* private mode without storage: the conversation lasts for this page only */
    }
  }

  // Another tab of the same site changed the conversation.
  window.addEventListener('storage', function (event) {
    if (event.key !== STORE_KEY) return;
    store = load();
    store.messages = store.messages || [];
    store.pending = store.pending || [];
    render();
  });

  // ---------------------------------------------------------------------------------------------
  // HTTP

  function HttpError(status, code, message, retryAfter) {
    this.status = status;
    this.code = code;
    this.message = message;
    this.retryAfter = retryAfter;
  }

  function request(method, path, body, auth) {
    var headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (auth) headers.Authorization = 'Bearer ' + store.token;
    return fetch(base + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      mode: 'cors',
    }).then(
      function (response) {
        return response.text().then(function (text) {
          var data = null;
          try {
            data = text ? JSON.parse(text) : null;
          } catch (e) {
            data = null;
          }
          if (!response.ok) {
            var err = (data && data.error) || {};
            var retry = parseInt(response.headers.get('Retry-After') || '', 10);
            throw new HttpError(response.status, err.code || 'http_' + response.status, err.message || 'Request failed (' + response.status + ')', isNaN(retry) ? null : retry);
          }
          return data;
        });
      },
      function () {
        throw new HttpError(0, 'network', 'No connection', null);
      }
    );
  }

  function details() {
    var out = {};
    if (store.name) out.name = store.name;
    if (store.email) out.email = store.email;
    return out;
  }

  function adoptSession(data) {
    if (store.session_id && store.session_id !== data.session_id) {
      // A new session is a new conversation.
      store.messages = [];
      store.cursor = null;
      store.seen = 0;
    }
    store.session_id = data.session_id;
    store.visitor_id = data.visitor_id;
    store.token = data.token;
    store.expires_at = data.expires_at;
    save();
  }

  var sessionPromise = null;
  function ensureSession() {
    if (store.token && Date.parse(store.expires_at) - Date.now() > REFRESH_BEFORE_MS) return Promise.resolve();
    if (sessionPromise) return sessionPromise;
    var p;
    if (store.token) {
      p = request('POST', '/chat/api/sessions/refresh', undefined, true).then(adoptSession, function (err) {
        if (err.status === 401) {
          store.token = null;
          return request('POST', '/chat/api/sessions', details()).then(adoptSession);
        }
        // Keep the old token if it is still valid; the next call retries the refresh.
        if (store.token && Date.parse(store.expires_at) > Date.now()) return;
        throw err;
      });
    } else {
      p = request('POST', '/chat/api/sessions', details()).then(adoptSession);
    }
    sessionPromise = p.then(
      function () {
        sessionPromise = null;
      },
      function (err) {
        sessionPromise = null;
        throw err;
      }
    );
    return sessionPromise;
  }

  /** An authenticated call; one 401 leads to a token refresh (or a new session) and a retry. */
  function authed(method, path, body) {
    return ensureSession().then(function () {
      return request(method, path, body, true).catch(function (err) {
        if (err.status !== 401) throw err;
        store.expires_at = new Date(0).toISOString();
        return ensureSession().then(function () {
          return request(method, path, body, true);
        });
      });
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Sending

  function newClientId() {
    if (window.crypto && crypto.randomUUID) return 'w' + crypto.randomUUID().replace(/-/g, '');
    var a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return 'w' + Array.prototype.map.call(a, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }

  var sendTimer = null;
  var sending = false;

  function queueMessage(text) {
    store.pending.push({ client_id: newClientId(), text: text, state: 'sending', at: new Date().toISOString() });
    save();
    render();
    flush();
  }

  /** Sends unsent messages in order, each with its own client_id (a retry is stored once). */
  function flush() {
    if (sending) return;
    var next = null;
    for (var i = 0; i < store.pending.length; i++) {
      if (store.pending[i].state === 'sending' || store.pending[i].state === 'waiting') {
        next = store.pending[i];
        break;
      }
    }
    if (!next) return;
    sending = true;
    next.state = 'sending';
    render();
    var body = { text: next.text, client_id: next.client_id };
    if (store.name) body.name = store.name;
    if (store.email) body.email = store.email;
    authed('POST', '/chat/api/messages', body).then(
      function (data) {
        sending = false;
        next.state = 'sent';
        next.id = data && data.id;
        next.tries = 0;
        setNotice('');
        save();
        render();
        poll(200);
        flush();
      },
      function (err) {
        sending = false;
        next.tries = (next.tries || 0) + 1;
        if (err.status === 429) {
          var wait = Math.max(1, err.retryAfter || 10);
          next.state = 'waiting';
          setNotice('You are writing faster than we can take it. We will send your message in ' + wait + ' seconds.');
          clearTimeout(sendTimer);
          sendTimer = setTimeout(flush, wait * 1000);
        } else if (err.status === 400 || err.status === 413) {
          next.state = 'rejected';
          next.error = err.status === 413 ? 'This message is too long.' : err.message;
          setNotice('');
        } else if (next.tries < 3) {
          next.state = 'waiting';
          clearTimeout(sendTimer);
          sendTimer = setTimeout(flush, 1500 * next.tries);
        } else {
          next.state = 'failed';
          setNotice(err.status === 0 ? 'No connection. Your message was not sent yet.' : 'Your message was not sent yet.');
        }
        save();
        render();
      }
    );
  }

  function retry(clientId) {
    store.pending.forEach(function (p) {
      if (p.client_id === clientId) {
        p.state = 'sending';
        p.tries = 0;
      }
    });
    save();
    render();
    flush();
  }

  function discard(clientId) {
    store.pending = store.pending.filter(function (p) { return p.client_id !== clientId; });
    save();
    render();
  }

  // ---------------------------------------------------------------------------------------------
  // Receiving

  var pollTimer = null;
  var polling = false;
  var backoffUntil = 0;
  var isOpen = false;

  function pollDelay() {
    if (document.hidden) return HIDDEN_POLL_MS;
    return isOpen ? OPEN_POLL_MS : CLOSED_POLL_MS;
  }

  function poll(delay) {
    clearTimeout(pollTimer);
    if (!store.token) return; // nothing to fetch before the first message
    pollTimer = setTimeout(fetchMessages, Math.max(delay === undefined ? pollDelay() : delay, backoffUntil - Date.now()));
  }

  function fetchMessages() {
    if (polling || !store.token) return;
    polling = true;
    var path = '/chat/api/messages' + (store.cursor ? '?after=' + encodeURIComponent(store.cursor) : '');
    authed('GET', path).then(
      function (data) {
        polling = false;
        var incoming = (data && data.messages) || [];
        var known = {};
        store.messages.forEach(function (m) { known[m.id] = true; });
        var fresh = incoming.filter(function (m) { return m && m.id && !known[m.id]; });
        if (fresh.length) {
          store.messages = store.messages.concat(fresh);
          var ids = {};
          var clientIds = {};
          store.messages.forEach(function (m) {
            ids[m.id] = true;
            if (m.client_id) clientIds[m.client_id] = true;
          });
          // A message is shown from the server's copy once it is there (the same client_id, or
          // the id its POST answered).
          store.pending = store.pending.filter(function (p) { return !clientIds[p.client_id] && !(p.id && ids[p.id]); });
        }
        if (data && data.cursor) store.cursor = data.cursor;
        if (isOpen) markSeen();
        save();
        if (fresh.length) {
          render();
          var answers = fresh.filter(function (m) { return m.direction === 'outbound'; });
          if (answers.length && isOpen) announce('New answer' + (answers[answers.length - 1].author_name ? ' from ' + answers[answers.length - 1].author_name : '') + ': ' + answers[answers.length - 1].text);
        }
        if (connectionNotice) setNotice('');
        poll();
      },
      function (err) {
        polling = false;
        if (err.status === 429) {
          backoffUntil = Date.now() + Math.max(1, err.retryAfter || 10) * 1000;
        } else if (err.status === 0) {
          if (isOpen) setNotice('Connection lost. Reconnecting…', true);
          backoffUntil = Date.now() + 5000;
        } else {
          backoffUntil = Date.now() + 10000;
        }
        poll();
      }
    );
  }

  function unread() {
    var n = 0;
    store.messages.forEach(function (m) { if (m.direction === 'outbound') n++; });
    return Math.max(0, n - store.seen);
  }

  function markSeen() {
    var n = 0;
    store.messages.forEach(function (m) { if (m.direction === 'outbound') n++; });
    store.seen = n;
  }

  // ---------------------------------------------------------------------------------------------
  // The UI (shadow DOM)

  var CSS = [
    ':host{all:initial}',
    '*{box-sizing:border-box}',
    '.root{position:fixed;bottom:20px;' + (left ? 'left' : 'right') + ':20px;z-index:2147483000;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:#1b1f24}',
    '.launcher{display:flex;align-items:center;gap:8px;border:0;border-radius:999px;padding:12px 18px;background:#0b57d0;color:#fff;font:inherit;font-weight:600;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25)}',
    '.launcher svg{width:22px;height:22px;fill:currentColor}',
    '.launcher:focus-visible,button:focus-visible,input:focus-visible,textarea:focus-visible,summary:focus-visible{outline:3px solid #b3261e;outline-offset:2px}',
    '.badge{min-width:20px;height:20px;border-radius:10px;background:#b3261e;color:#fff;font-size:12px;line-height:20px;text-align:center;padding:0 6px}',
    '.panel{position:absolute;bottom:64px;' + (left ? 'left' : 'right') + ':0;width:360px;max-width:calc(100vw - 24px);height:520px;max-height:calc(100vh - 100px);display:flex;flex-direction:column;background:#fff;border:1px solid #c9ced6;border-radius:14px;box-shadow:0 10px 32px rgba(0,0,0,.25);overflow:hidden}',
    '.panel[hidden],[hidden]{display:none!important}',
    '.head{display:flex;align-items:center;justify-content:space-between;padding:12px 14px;background:#0b57d0;color:#fff}',
    '.head h2{font-size:16px;margin:0}',
    '.close{background:transparent;border:1px solid rgba(255,255,255,.7);color:#fff;border-radius:8px;font:inherit;padding:2px 10px;cursor:pointer}',
    '.log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f4f5f7;margin:0;list-style:none}',
    '.msg{max-width:85%;padding:8px 11px;border-radius:12px;white-space:pre-wrap;overflow-wrap:anywhere}',
    '.msg.in{align-self:flex-end;background:#0b57d0;color:#fff;border-bottom-right-radius:4px}',
    '.msg.out{align-self:flex-start;background:#fff;border:1px solid #c9ced6;border-bottom-left-radius:4px}',
    '.msg.greeting{background:#e8f0fe;border:0}',
    '.who{display:block;font-size:12px;font-weight:700;color:#4a5360;margin-bottom:2px}',
    '.state{display:block;font-size:12px;margin-top:3px;opacity:.9}',
    '.msg.failed,.msg.rejected{background:#fde7e7;color:#1b1f24;border:1px solid #a50e0e}',
    '.msg .actions{display:flex;gap:8px;margin-top:4px}',
    '.msg .actions button{font:inherit;font-size:12px;border-radius:6px;border:1px solid #a50e0e;background:#fff;color:#a50e0e;padding:1px 8px;cursor:pointer}',
    '.notice{margin:0;padding:8px 12px;background:#fff0c2;color:#5c3a00;font-size:13px;border-top:1px solid #e0c060}',
    '.notice:empty{display:none}',
    'details{border-top:1px solid #e3e6ea;padding:6px 12px;font-size:13px}',
    'summary{cursor:pointer;color:#0b57d0;font-weight:600}',
    '.fields{display:grid;gap:6px;margin-top:6px}',
    'label{font-size:12px;font-weight:600;color:#333a44;display:block}',
    'input,textarea{width:100%;font:inherit;border:1px solid #6b7480;border-radius:8px;padding:7px 9px;color:#1b1f24;background:#fff}',
    'form.compose{display:flex;gap:8px;padding:10px 12px;border-top:1px solid #e3e6ea;align-items:flex-end}',
    'form.compose .grow{flex:1}',
    'textarea{resize:none;height:44px;max-height:120px}',
    '.send{border:0;border-radius:10px;background:#0b57d0;color:#fff;font:inherit;font-weight:600;padding:10px 14px;cursor:pointer}',
    '.send:disabled{opacity:.6;cursor:default}',
    '.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}',
    '@media (max-width:480px){.root{bottom:12px;' + (left ? 'left' : 'right') + ':12px}.panel{position:fixed;inset:auto 8px 76px 8px;width:auto;max-width:none;height:calc(100vh - 100px)}}',
  ].join('\n');

  function h(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === 'text') node.textContent = v;
        else if (k === 'class') node.className = v;
        else node.setAttribute(k, v === true ? '' : String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined || c === false) continue;
      node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return node;
  }

  var host, ui = {}, connectionNotice = false;

  function icon() {
    var svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    var path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
    path.setAttribute('d', 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6v2h2V9H7zm4 0v2h2V9h-2zm4 0v2h2V9h-2z');
    svg.appendChild(path);
    return svg;
  }

  function build() {
    host = document.createElement('div');
    host.id = 'crossdesk-chat';
    host.setAttribute('data-crossdesk-widget', '');
    var shadow = host.attachShadow({ mode: 'open' });
    // Constructable style sheets work under a strict CSP (style-src 'self'); <style> is the fallback.
    try {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      shadow.adoptedStyleSheets = [sheet];
    } catch (e) {
      shadow.appendChild(h('style', { text: CSS }));
    }

    ui.launcherCount = h('span', { class: 'badge', hidden: true });
    ui.launcher = h('button', { type: 'button', class: 'launcher', 'aria-expanded': 'false', 'aria-controls': 'cd-panel' }, icon(), h('span', { class: 'label', text: title }), ui.launcherCount);
    ui.log = h('ol', { class: 'log', role: 'log', 'aria-label': 'Conversation', tabindex: '0' });
    ui.live = h('p', { class: 'sr', 'aria-live': 'polite', 'aria-atomic': 'true' });
    ui.notice = h('p', { class: 'notice', role: 'status' });
    ui.name = h('input', { id: 'cd-name', type: 'text', autocomplete: 'name', maxlength: '120' });
    ui.email = h('input', { id: 'cd-email', type: 'email', autocomplete: 'email', maxlength: '254' });
    ui.details = h('details', null,
      h('summary', { text: 'Your name and email (optional)' }),
      h('div', { class: 'fields' },
        h('div', null, h('label', { for: 'cd-name', text: 'Name' }), ui.name),
        h('div', null, h('label', { for: 'cd-email', text: 'Email, so we can answer if you leave' }), ui.email)));
    ui.text = h('textarea', { id: 'cd-text', rows: '2', maxlength: '4000', placeholder: 'Write a message…', required: true });
    ui.send = h('button', { type: 'submit', class: 'send', text: 'Send' });
    ui.form = h('form', { class: 'compose' }, h('div', { class: 'grow' }, h('label', { for: 'cd-text', class: 'sr', text: 'Your message' }), ui.text), ui.send);
    ui.close = h('button', { type: 'button', class: 'close', 'aria-label': 'Close chat', text: 'Close' });
    ui.panel = h('div', { class: 'panel', id: 'cd-panel', role: 'dialog', 'aria-label': title, hidden: true },
      h('div', { class: 'head' }, h('h2', { text: title }), ui.close),
      ui.log, ui.live, ui.notice, ui.details, ui.form);
    shadow.appendChild(h('div', { class: 'root' }, ui.panel, ui.launcher));

    ui.launcher.addEventListener('click', function () { isOpen ? close() : open(); });
    ui.close.addEventListener('click', function () { close(); ui.launcher.focus(); });
    ui.panel.addEventListener('keydown', function (e) {
      if (e.key === 'Escape') {
        close();
        ui.launcher.focus();
      }
    });
    ui.text.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        ui.form.requestSubmit ? ui.form.requestSubmit() : submit(e);
      }
    });
    ui.form.addEventListener('submit', submit);
    function keepDetails() {
      store.name = ui.name.value.trim() || undefined;
      store.email = ui.email.value.trim() || undefined;
      save();
    }
    ui.name.addEventListener('change', keepDetails);
    ui.email.addEventListener('change', keepDetails);
    ui.name.value = store.name || '';
    ui.email.value = store.email || '';

    document.body.appendChild(host);
  }

  function submit(e) {
    if (e && e.preventDefault) e.preventDefault();
    var text = ui.text.value.trim();
    if (!text) return;
    if (ui.email.value && !ui.email.checkValidity()) {
      ui.details.open = true;
      setNotice('Please check the email address, or leave it empty.');
      ui.email.focus();
      return;
    }
    store.name = ui.name.value.trim() || undefined;
    store.email = ui.email.value.trim() || undefined;
    ui.text.value = '';
    queueMessage(text);
    ui.text.focus();
  }

  function setNotice(text, isConnection) {
    connectionNotice = !!(text && isConnection);
    if (ui.notice) ui.notice.textContent = text;
  }

  function announce(text) {
    if (ui.live) ui.live.textContent = text;
  }

  function bubble(cls, text, who, stateText) {
    var li = h('li', { class: 'msg ' + cls });
    if (who) li.appendChild(h('span', { class: 'who', text: who }));
    li.appendChild(h('span', { class: 'text', text: text }));
    if (stateText) li.appendChild(h('span', { class: 'state', text: stateText }));
    return li;
  }

  function render() {
    if (!ui.log) return;
    var atBottom = ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 40;
    var items = [bubble('out greeting', greeting, null, null)];
    store.messages.forEach(function (m) {
      var mine = m.direction === 'inbound';
      var li = bubble(mine ? 'in' : 'out', m.text || '', mine ? null : (m.author_name || 'Support'), null);
      li.setAttribute('data-id', m.id);
      if (mine) li.insertBefore(h('span', { class: 'sr', text: 'You: ' }), li.firstChild);
      items.push(li);
    });
    store.pending.forEach(function (p) {
      var label = { sending: 'Sending…', waiting: 'Waiting to send…', sent: 'Sent', failed: 'Not sent', rejected: 'Not sent: ' + (p.error || 'rejected') }[p.state] || '';
      var li = bubble('in ' + p.state, p.text, null, label);
      li.setAttribute('data-client-id', p.client_id);
      if (p.state === 'failed' || p.state === 'rejected') {
        var actions = h('span', { class: 'actions' });
        if (p.state === 'failed') {
          var again = h('button', { type: 'button', text: 'Try again' });
          again.addEventListener('click', function () { retry(p.client_id); });
          actions.appendChild(again);
        }
        var drop = h('button', { type: 'button', text: 'Remove' });
        drop.addEventListener('click', function () { discard(p.client_id); });
        actions.appendChild(drop);
        li.appendChild(actions);
      }
      items.push(li);
    });
    while (ui.log.firstChild) ui.log.removeChild(ui.log.firstChild);
    items.forEach(function (li) { ui.log.appendChild(li); });
    if (atBottom || isOpen) ui.log.scrollTop = ui.log.scrollHeight;
    var n = isOpen ? 0 : unread();
    ui.launcherCount.hidden = n === 0;
    ui.launcherCount.textContent = n ? String(n) : '';
    ui.launcher.setAttribute('aria-label', n ? title + ' (' + n + ' new message' + (n > 1 ? 's' : '') + ')' : title);
  }

  function open() {
    isOpen = true;
    ui.panel.hidden = false;
    ui.launcher.setAttribute('aria-expanded', 'true');
    markSeen();
    save();
    render();
    ui.text.focus();
    poll(0);
    flush();
  }

  function close() {
    isOpen = false;
    ui.panel.hidden = true;
    ui.launcher.setAttribute('aria-expanded', 'false');
    render();
    poll();
  }

  function reset() {
    store = { messages: [], pending: [], seen: 0 };
    save();
    render();
  }

  function start() {
    build();
    render();
    document.addEventListener('visibilitychange', function () { if (store.token) poll(document.hidden ? undefined : 0); });
    // Messages that were waiting when the page was left go out now; the conversation is refreshed.
    store.pending.forEach(function (p) { if (p.state === 'sending' || p.state === 'waiting') p.state = 'waiting'; });
    if (store.pending.length) flush();
    if (store.token) poll(0);
  }

  ns.widget = {
    open: function () { if (ui.panel && !isOpen) open(); },
    close: function () { if (ui.panel && isOpen) close(); },
    /** Forgets the conversation on this device (a new one starts with the next message). */
    reset: reset,
    version: '1',
  };

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
