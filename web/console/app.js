// Crossdesk agent console: a static page over the agent API (README, "Endpoints").
// Rules of this file: every text that comes from the API (customers, agents, subjects) is put
// into the page with textContent or as an attribute value, never through innerHTML; no eval,
// no inline handlers or styles (the console's Content-Security-Policy forbids them).

const TOKEN_KEY = 'crossdesk.console.token';
const PKCE_KEY = 'crossdesk.console.pkce';
const LIST_POLL_MS = 4000;
const TICKET_POLL_MS = 3000;

const CHANNELS = {
  facebook: { label: 'Facebook', short: 'FB' },
  instagram: { label: 'Instagram', short: 'IG' },
  twitter: { label: 'X / Twitter', short: 'X' },
  email: { label: 'Email', short: '@' },
  chat: { label: 'Website chat', short: 'Chat' },
};

const PD_LABELS = {
  email_address: 'an email address',
  phone_number: 'a phone number',
  iban: 'an IBAN',
  card_number: 'a card number',
};

const $ = (id) => document.getElementById(id);
// Where the console is served (`/console/`); ticket pages are `<base>tickets/<id>`.
const BASE = new URL('.', import.meta.url).pathname;

/** Creates an element; `text` goes in as textContent, never as HTML. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const state = {
  config: null,
  token: null,
  tickets: [],
  listEtag: null,
  listQuery: '',
  selectedId: null,
  ticket: null,
  ticketEtag: null,
  renderedMessages: new Map(), // message id -> signature of what is rendered
  listTimer: null,
  ticketTimer: null,
  contactId: null,
  cannedLoaded: false,
  online: true,
  // The Idempotency-Key of the reply being sent: kept while the same text is sent again after
  // the network failed (the first request may have arrived), new for a new text.
  replyKey: null,
  // Paging the ticket list: tickets per page, the cursors of the pages before the one shown
  // (empty on the first page), and the cursor of the next page when there is one.
  pageSize: '100',
  listFilters: null,
  listPages: [],
  listNext: null,
};

// ---------------------------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, { method = 'GET', body, etag, idempotencyKey } = {}) {
  const headers = { Authorization: `Bearer ${state.token}`, Accept: 'application/json' };
  if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (etag) headers['If-None-Match'] = etag;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (err) {
    setOnline(false);
    throw new ApiError(0, 'network', 'The server cannot be reached.');
  }
  setOnline(true);
  if (response.status === 304) return { notModified: true, etag };
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    if (response.status === 401) {
      signOut('Your sign-in is no longer valid. Please sign in again.');
    }
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || 'http_' + response.status, error.message || `Request failed (${response.status}).`);
  }
  return { data, etag: response.headers.get('ETag') };
}

function setOnline(online) {
  if (state.online === online) return;
  state.online = online;
  $('live-state').textContent = online ? 'Live: updates every few seconds' : 'Offline: retrying…';
}

// ---------------------------------------------------------------------------------------------
// Sign in

async function loadConfig() {
  try {
    const response = await fetch(`${BASE}config.json`, { cache: 'no-store' });
    if (response.ok) return await response.json();
  } catch {
    /* fall through */
  }
  return { auth: 'token' };
}

function base64url(bytes) {
  let binary = '';
  for (const b of new Uint8Array(bytes)) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(n = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

async function startOidc() {
  const cfg = state.config;
  const verifier = randomString(48);
  const challenge = base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const oidcState = randomString(16);
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state: oidcState, return_to: location.pathname }));
  const url = new URL(cfg.authorize_url);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', cfg.client_id);
  url.searchParams.set('redirect_uri', cfg.redirect_uri || location.origin + BASE);
  url.searchParams.set('scope', cfg.scope || 'openid email profile');
  url.searchParams.set('code_challenge', challenge);
  url.searchParams.set('code_challenge_method', 'S256');
  url.searchParams.set('state', oidcState);
  location.assign(url.toString());
}

/** Finishes the authorization code flow when the provider sent us back with ?code=…&state=…. */
async function finishOidc() {
  const params = new URLSearchParams(location.search);
  const code = params.get('code');
  const error = params.get('error');
  if (!code && !error) return false;
  const saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) || 'null');
  sessionStorage.removeItem(PKCE_KEY);
  history.replaceState(null, '', (saved && saved.return_to) || BASE);
  if (error) {
    $('signin-error').textContent = `Sign-in failed: ${params.get('error_description') || error}`;
    return false;
  }
  if (!saved || saved.state !== params.get('state')) {
    $('signin-error').textContent = 'Sign-in failed: the answer did not match this sign-in. Please try again.';
    return false;
  }
  const cfg = state.config;
  const form = new URLSearchParams({
    grant_type: 'authorization_code',
    code,
    redirect_uri: cfg.redirect_uri || location.origin + BASE,
    client_id: cfg.client_id,
    code_verifier: saved.verifier,
  });
  try {
    const response = await fetch(cfg.token_url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: form,
    });
    const data = await response.json();
    if (!response.ok || !data.access_token) throw new Error(data.error_description || data.error || response.status);
    sessionStorage.setItem(TOKEN_KEY, data.access_token);
    return true;
  } catch (err) {
    $('signin-error').textContent = `Sign-in failed: ${err.message}`;
    return false;
  }
}

function showSignIn(message) {
  $('main').hidden = true;
  $('sign-out').hidden = true;
  $('signin').hidden = false;
  const oidc = state.config && state.config.auth === 'oidc';
  $('token-form').hidden = oidc;
  $('oidc-signin').hidden = !oidc;
  if (message) $('signin-error').textContent = message;
  (oidc ? $('oidc-button') : $('token-input')).focus();
}

function signOut(message) {
  stopPolling();
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.listEtag = null;
  state.ticketEtag = null;
  showSignIn(message);
}

async function trySignIn(token) {
  state.token = token;
  try {
    await api('/api/tickets?limit=1');
  } catch (err) {
    state.token = null;
    if (err.status === 401) return 'That token was not accepted.';
    return err.message;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  return null;
}

function enterConsole() {
  $('signin').hidden = true;
  $('signin-error').textContent = '';
  $('main').hidden = false;
  $('sign-out').hidden = false;
  $('live-state').textContent = 'Live: updates every few seconds';
  readFilters();
  refreshList();
  route();
}

// ---------------------------------------------------------------------------------------------
// Formatting

function channelBadge(channel) {
  const info = CHANNELS[channel] || { label: channel, short: channel };
  return el('span', { class: `badge channel-badge ch-${channel}`, title: info.label },
    el('span', { 'aria-hidden': 'true', text: info.short }),
    el('span', { class: 'visually-hidden', text: info.label }));
}

function age(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 60) return 'now';
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function ageLabel(iso) {
  const a = age(iso);
  return a === 'now' ? 'just now' : `${a} ago`;
}

function formatTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

function slaBadge(workflow) {
  if (!workflow) return null;
  const sla = workflow.sla || {};
  const due = sla.first_response_due;
  const st = workflow.sla_state;
  if (st === 'breached') {
    return el('span', { class: 'badge sla-breached', text: due ? `SLA breached · due ${formatTime(due)}` : 'SLA breached' });
  }
  if (st === 'nearing') {
    return el('span', { class: 'badge sla-nearing', text: due ? `SLA nearing · due ${formatTime(due)}` : 'SLA nearing' });
  }
  if (st === 'met') return el('span', { class: 'badge sla-met', text: 'SLA met' });
  if (due) return el('span', { class: 'badge sla-ok', text: `due ${formatTime(due)}` });
  return null;
}

function pdLabel(kind) {
  if (typeof kind === 'string') return PD_LABELS[kind] || kind.replace(/_/g, ' ');
  if (kind && kind.pattern) return `a ${String(kind.pattern).replace(/_/g, ' ')}`;
  return 'personal data';
}

function customerName(ticket) {
  const c = ticket.contact || {};
  if (c.name) return c.name;
  if (c.emails && c.emails.length) return c.emails[0];
  if (c.identities && c.identities.length) return c.identities[0];
  return 'Unknown customer';
}

function firstLine(text) {
  return String(text || '').split(/\r?\n/).find((l) => l.trim()) || '';
}

// ---------------------------------------------------------------------------------------------
// Inbox

function filterQuery() {
  const f = $('filters');
  const q = new URLSearchParams();
  for (const name of ['status', 'channel', 'assignee', 'tag']) {
    const value = f.elements[name].value.trim();
    if (value) q.set(name, value);
  }
  if (f.elements.sla.checked) q.set('sla', 'breaching');
  q.set('limit', state.pageSize);
  // Other filters start again at the first page.
  const filters = q.toString();
  if (filters !== state.listFilters) {
    state.listFilters = filters;
    state.listPages = [];
  }
  const after = state.listPages[state.listPages.length - 1];
  if (after) q.set('after', after);
  return q.toString();
}

/** Shows the page buttons: older when the server named a next page, newer past the first. */
function renderPager() {
  $('page-older').disabled = !state.listNext;
  $('page-newer').disabled = state.listPages.length === 0;
  $('list-pager').hidden = !state.listNext && state.listPages.length === 0;
}

function turnPage(older) {
  if (older && state.listNext) state.listPages.push(state.listNext);
  if (!older) state.listPages.pop();
  refreshList();
}

function readFilters() {
  const f = $('filters');
  const params = new URLSearchParams(location.search);
  for (const name of ['status', 'channel', 'assignee', 'tag']) {
    if (params.has(name)) f.elements[name].value = params.get(name);
  }
  if (params.has('sla')) f.elements.sla.checked = params.get('sla') === 'breaching';
  // Tickets per page (1 to 200; the API's limit).
  const size = Number(params.get('limit'));
  if (Number.isInteger(size) && size >= 1 && size <= 200) state.pageSize = String(size);
}

async function refreshList() {
  clearTimeout(state.listTimer);
  if (!state.token) return;
  const query = filterQuery();
  if (query !== state.listQuery) {
    state.listQuery = query;
    state.listEtag = null;
  }
  try {
    const result = await api(`/api/tickets?${query}`, { etag: state.listEtag });
    if (query === state.listQuery && !result.notModified) {
      state.listEtag = result.etag;
      state.tickets = (result.data && result.data.tickets) || [];
      state.listNext = (result.data && result.data.next) || null;
      renderList();
      renderPager();
    }
    $('inbox-error').textContent = '';
  } catch (err) {
    if (err.status !== 401) $('inbox-error').textContent = err.message;
  }
  if (state.token) state.listTimer = setTimeout(refreshList, document.hidden ? LIST_POLL_MS * 3 : LIST_POLL_MS);
}

function renderList() {
  const list = $('ticket-list');
  const hadFocus = list.contains(document.activeElement) ? document.activeElement.closest('li')?.dataset.id : null;
  const items = state.tickets.map((t) => {
    const name = customerName(t);
    const preview = firstLine(t.preview || t.subject);
    const when = t.updated_at || t.created_at;
    const workflow = t.workflow || {};
    const badges = el('span', { class: 'badges' });
    if (t.status && t.status !== 'open') badges.append(el('span', { class: 'badge status-badge', text: t.status }));
    const sla = slaBadge(workflow);
    if (sla && workflow.sla_state !== 'met' && workflow.sla_state !== 'ok') badges.append(sla);
    if (workflow.personal_data && workflow.personal_data.length && !workflow.handoff) {
      badges.append(el('span', { class: 'badge pd-badge', text: 'Personal data' }));
    }
    if (workflow.assignee) badges.append(el('span', { class: 'badge', text: `@${workflow.assignee}` }));
    for (const tag of workflow.tags || []) badges.append(el('span', { class: 'badge tag-badge', text: `#${tag}` }));
    const button = el('button', {
      type: 'button',
      'aria-current': t.id === state.selectedId ? 'true' : null,
      onclick: () => openTicket(t.id),
    },
    channelBadge(t.channel),
    el('span', { class: 'who', text: name }),
    el('time', { class: 'age', datetime: when, title: when ? new Date(when).toLocaleString() : '', text: age(when) },
      el('span', { class: 'visually-hidden', text: ' ago' })),
    el('span', { class: 'preview', text: preview }),
    badges.childNodes.length ? badges : null);
    return el('li', { class: `ticket-item${t.id === state.selectedId ? ' selected' : ''}`, dataset: { id: t.id } }, button);
  });
  list.replaceChildren(...items);
  // Announce tickets that appeared since the last refresh (not on the first load or a new filter).
  const ids = new Set(state.tickets.map((t) => t.id));
  if (state.knownIds && state.knownQuery === state.listQuery) {
    const added = state.tickets.filter((t) => !state.knownIds.has(t.id));
    if (added.length) {
      $('list-announcer').textContent = added.length === 1
        ? `New ticket from ${customerName(added[0])}: ${firstLine(added[0].preview || added[0].subject).slice(0, 140)}`
        : `${added.length} new tickets`;
    }
  }
  state.knownIds = ids;
  state.knownQuery = state.listQuery;
  $('inbox-empty').hidden = items.length > 0;
  $('inbox-count').textContent = `(${items.length})`;
  if (hadFocus) {
    const again = list.querySelector(`li[data-id="${CSS.escape(hadFocus)}"] > button`);
    if (again) again.focus();
  }
}

function markSelected() {
  for (const li of $('ticket-list').children) {
    const on = li.dataset.id === state.selectedId;
    li.classList.toggle('selected', on);
    const b = li.querySelector('button');
    if (on) b.setAttribute('aria-current', 'true');
    else b.removeAttribute('aria-current');
  }
}

// ---------------------------------------------------------------------------------------------
// Routing: <base>tickets/<id> (the server answers every extension-less path under the console
// with index.html), so a ticket has a link notifications can point at.

function ticketPath(id) {
  return `${BASE}tickets/${encodeURIComponent(id)}`;
}

function route() {
  const rest = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : '';
  const m = rest.match(/^tickets\/([^/]+)/) || location.hash.match(/^#\/tickets\/([^?/]+)/);
  if (m) {
    const id = decodeURIComponent(m[1]);
    if (id !== state.selectedId) showTicket(id);
  } else if (state.selectedId) {
    closeTicket();
  }
}

function openTicket(id) {
  if (location.pathname !== ticketPath(id)) history.pushState(null, '', ticketPath(id) + location.search);
  showTicket(id);
}

function closeTicket() {
  const previous = state.selectedId;
  state.selectedId = null;
  state.ticket = null;
  clearTimeout(state.ticketTimer);
  $('ticket-detail').hidden = true;
  $('ticket-placeholder').hidden = false;
  document.body.classList.remove('viewing-ticket');
  markSelected();
  if (location.pathname !== BASE || location.hash) history.pushState(null, '', BASE + location.search);
  const li = previous && $('ticket-list').querySelector(`li[data-id="${CSS.escape(previous)}"] > button`);
  if (li) li.focus();
}

async function showTicket(id) {
  state.selectedId = id;
  state.ticket = null;
  state.ticketEtag = null;
  state.renderedMessages = new Map();
  state.contactId = null;
  $('timeline').replaceChildren();
  $('ticket-error').textContent = '';
  $('reply-status').textContent = '';
  $('note-status').textContent = '';
  $('pd-result').textContent = '';
  $('wf-status-msg').textContent = '';
  $('customer').replaceChildren();
  $('similar').replaceChildren();
  $('ticket-placeholder').hidden = true;
  $('ticket-detail').hidden = false;
  document.body.classList.add('viewing-ticket');
  markSelected();
  await refreshTicket({ first: true });
  loadCanned();
}

async function refreshTicket({ first = false } = {}) {
  clearTimeout(state.ticketTimer);
  const id = state.selectedId;
  if (!id || !state.token) return;
  try {
    const result = await api(`/api/tickets/${encodeURIComponent(id)}`, { etag: state.ticketEtag });
    if (id !== state.selectedId) return;
    if (!result.notModified) {
      state.ticketEtag = result.etag;
      renderTicket(result.data, first);
    }
    $('ticket-error').textContent = '';
  } catch (err) {
    if (id !== state.selectedId) return;
    if (err.status === 404) $('ticket-title').textContent = 'Ticket not found';
    if (err.status !== 401) $('ticket-error').textContent = err.message;
  }
  if (id === state.selectedId && state.token) {
    state.ticketTimer = setTimeout(refreshTicket, document.hidden ? TICKET_POLL_MS * 3 : TICKET_POLL_MS);
  }
}

function renderTicket(ticket, first) {
  const previous = state.ticket;
  state.ticket = ticket;
  const workflow = ticket.workflow || {};
  $('ticket-title').textContent = ticket.subject || firstLine(ticket.preview) || `Ticket ${ticket.id}`;
  if (first) document.title = `${ticket.subject || ticket.id} · Crossdesk`;

  const meta = $('ticket-meta');
  meta.replaceChildren(
    channelBadge(ticket.channel),
    el('span', { class: 'badge status-badge', text: ticket.status }),
    el('span', { class: 'badge', text: `Priority: ${workflow.priority || 'normal'}` }),
    slaBadge(workflow) || '',
    el('span', { class: 'badge', text: `#${ticket.id}` }),
  );

  renderPersonalData(workflow);
  renderTimeline(ticket.messages || [], !first);
  renderReplyTargets(ticket.reply_windows || [], previous);
  renderWorkflow(ticket, previous);
  renderSimilar(workflow.similar || []);
  if (ticket.contact_id && ticket.contact_id !== state.contactId) {
    state.contactId = ticket.contact_id;
    loadCustomer(ticket.contact_id);
  } else if (previous && previous.updated_at !== ticket.updated_at) {
    loadCustomer(ticket.contact_id);
  }
  // Keep the list row in step without waiting for the next list poll.
  const row = state.tickets.find((t) => t.id === ticket.id);
  if (row && row.updated_at !== ticket.updated_at) refreshList();
}

function renderPersonalData(workflow) {
  const kinds = workflow.personal_data || [];
  const banner = $('pd-banner');
  if (!kinds.length) {
    banner.hidden = true;
    return;
  }
  banner.hidden = false;
  const what = kinds.map(pdLabel).join(', ');
  if (workflow.handoff) {
    $('pd-text').textContent = `A public message contains ${what}. Moved to private ${ageLabel(workflow.handoff.at)} by ${workflow.handoff.agent_id}.`;
    $('handoff-button').hidden = true;
  } else {
    $('pd-text').textContent = `A public message contains ${what}. Answer publicly with a short invitation and continue privately.`;
    $('handoff-button').hidden = false;
  }
}

function messageSignature(m) {
  return JSON.stringify([m.text, m.event, m.delivery, m.visibility, m.internal_note, (m.attachments || []).length]);
}

function renderMessage(m) {
  const isNote = !!m.internal_note;
  const classes = ['msg', m.direction, m.visibility || 'private'];
  if (isNote) classes.push('note');
  if (m.event === 'removed' || m.event === 'deleted') classes.push('removed');
  const visBadge = isNote
    ? el('span', { class: 'badge vis-note', text: 'Internal note' })
    : el('span', { class: `badge vis-${m.visibility === 'public' ? 'public' : 'private'}`, text: m.visibility === 'public' ? 'Public' : 'Private' });
  const author = (m.author && (m.author.name || (m.author.handle && '@' + m.author.handle) || m.author.email || m.author.platform_id))
    || (m.direction === 'outbound' ? 'Agent' : 'Customer');
  const head = el('div', { class: 'msg-head' },
    channelBadge(m.channel),
    el('span', { class: 'author', text: author }),
    visBadge,
    m.direction === 'outbound' && !isNote ? el('span', { class: 'visually-hidden', text: 'sent by us' }) : null,
    el('time', { datetime: m.sent_at, title: m.sent_at ? new Date(m.sent_at).toLocaleString() : '', text: formatTime(m.sent_at) }),
    m.event && m.event !== 'created' ? el('span', { class: 'badge', text: m.event }) : null);
  const body = el('p', { class: 'msg-text', text: m.text || '' });
  const li = el('li', { class: classes.join(' '), dataset: { id: m.id } }, head, body);
  if (m.attachments && m.attachments.length) {
    li.append(el('ul', { class: 'attachments', 'aria-label': 'Attachments' },
      ...m.attachments.map((a, i) => el('li', { text: `${a.filename || a.name || a.kind || 'attachment'} ${a.content_type || a.mime_type || ''}`.trim() || `attachment ${i + 1}` }))));
  }
  if (m.direction === 'outbound' && !isNote) {
    const d = m.delivery || { status: 'unknown' };
    const status = ['queued', 'sent', 'failed', 'unknown'].includes(d.status) ? d.status : 'unknown';
    const labels = { queued: 'Queued', sent: 'Sent', failed: 'Failed', unknown: 'Delivery unknown' };
    const wrap = el('div', { class: 'delivery' },
      el('span', { class: `badge del-${status}`, dataset: { delivery: status }, text: labels[status] }));
    if (status === 'failed') {
      const reason = (d.error && (d.error.reason || d.error.message || d.error.code)) || 'no reason given';
      wrap.append(el('p', { class: 'delivery-reason', text: `Not delivered: ${reason}` }));
    }
    li.append(wrap);
  }
  return li;
}

function renderTimeline(messages, announce) {
  const timeline = $('timeline');
  const stuckToBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
  const fresh = [];
  const nodes = new Map([...timeline.children].map((li) => [li.dataset.id, li]));
  let previous = null;
  for (const m of messages) {
    const sig = messageSignature(m);
    let node = nodes.get(m.id);
    if (!node) {
      node = renderMessage(m);
      fresh.push(m);
    } else if (state.renderedMessages.get(m.id) !== sig) {
      const replacement = renderMessage(m);
      node.replaceWith(replacement);
      node = replacement;
    }
    state.renderedMessages.set(m.id, sig);
    const wanted = previous ? previous.nextSibling : timeline.firstChild;
    if (wanted !== node) timeline.insertBefore(node, wanted);
    previous = node;
  }
  if (announce && fresh.length) {
    const inbound = fresh.filter((m) => m.direction === 'inbound');
    if (inbound.length) {
      const last = inbound[inbound.length - 1];
      const who = (last.author && last.author.name) || 'the customer';
      $('announcer').textContent = `${inbound.length} new message${inbound.length > 1 ? 's' : ''} from ${who}: ${firstLine(last.text).slice(0, 140)}`;
    }
    if (stuckToBottom) timeline.lastElementChild?.scrollIntoView({ block: 'nearest' });
  }
}

function renderReplyTargets(windows, previousTicket) {
  const select = $('reply-target');
  const previousValue = select.value;
  const sameTicket = previousTicket && state.ticket && previousTicket.id === state.ticket.id;
  const options = windows.map((w) => {
    const info = CHANNELS[w.channel] || { label: w.channel };
    let label = `${info.label} · ${w.visibility}`;
    if (!w.can_reply) label += ' (closed)';
    else if (w.window_ends_at) label += ` (open until ${formatTime(w.window_ends_at)})`;
    return el('option', { value: `${w.channel}|${w.visibility}`, disabled: !w.can_reply, text: label });
  });
  select.replaceChildren(...options);
  const open = windows.filter((w) => w.can_reply);
  if (sameTicket && open.some((w) => `${w.channel}|${w.visibility}` === previousValue)) {
    select.value = previousValue;
  } else if (open.length) {
    // Default: the channel and visibility of the latest customer message, if it can be answered.
    const lastIn = [...(state.ticket.messages || [])].reverse().find((m) => m.direction === 'inbound');
    const preferred = lastIn && open.find((w) => w.channel === lastIn.channel && w.visibility === lastIn.visibility);
    const pick = preferred || open[0];
    select.value = `${pick.channel}|${pick.visibility}`;
  }
  const reasons = windows.filter((w) => !w.can_reply).map((w) => {
    const info = CHANNELS[w.channel] || { label: w.channel };
    const alt = w.alternative ? ` ${typeof w.alternative === 'string' ? w.alternative : JSON.stringify(w.alternative)}` : '';
    return el('li', { text: `${info.label} ${w.visibility}: ${w.reason || 'the reply window is closed.'}${alt}` });
  });
  $('window-reasons').replaceChildren(...reasons);
  const none = open.length === 0;
  select.disabled = none;
  $('reply-text').disabled = none;
  $('reply-send').disabled = none;
  if (none && !reasons.length) $('window-reasons').replaceChildren(el('li', { text: 'This ticket cannot be answered on any channel right now.' }));
}

function renderWorkflow(ticket, previousTicket) {
  const workflow = ticket.workflow || {};
  const form = $('workflow-form');
  const sameTicket = previousTicket && previousTicket.id === ticket.id;
  const editing = sameTicket && form.contains(document.activeElement);
  if (!editing) {
    form.elements.status.value = ticket.status || 'open';
    form.elements.priority.value = workflow.priority || 'normal';
    form.elements.assignee.value = workflow.assignee || '';
    form.elements.team.value = workflow.team || '';
  }
  const tags = (workflow.tags || []).map((tag) => el('li', {},
    el('span', { text: tag }),
    el('button', { type: 'button', 'aria-label': `Remove tag ${tag}`, title: `Remove tag ${tag}`, onclick: () => patchTicket({ remove_tags: [tag] }, $('wf-status-msg')), text: '×' })));
  if (!tags.length) tags.push(el('li', { class: 'small', text: 'No tags' }));
  $('tag-list').replaceChildren(...tags);
}

function renderSimilar(similar) {
  const items = similar.map((s) => el('li', {},
    el('button', { type: 'button', class: 'link', onclick: () => openTicket(s.ticket_id), text: s.subject || s.ticket_id }),
    el('span', { class: 'small', text: ` · #${s.ticket_id}` })));
  if (!items.length) items.push(el('li', { class: 'small', text: 'No similar tickets.' }));
  $('similar').replaceChildren(...items);
}

async function loadCustomer(contactId) {
  if (!contactId) return;
  try {
    const { data } = await api(`/api/contacts/${encodeURIComponent(contactId)}`);
    if (!state.ticket || state.ticket.contact_id !== contactId) return;
    const box = $('customer');
    const tickets = (data.tickets || []).map((t) => el('li', {},
      channelBadge(t.channel), ' ',
      t.id === state.selectedId
        ? el('span', { text: `${t.subject || firstLine(t.preview) || t.id} (this ticket)` })
        : el('button', { type: 'button', class: 'link', onclick: () => openTicket(t.id), text: t.subject || firstLine(t.preview) || t.id }),
      el('span', { class: 'small', text: ` · ${t.status} · ${ageLabel(t.updated_at)}` })));
    const suggestions = ((data.links && data.links.suggestions) || []).map((s) => el('li', {
      text: `Possibly the same person: ${s.contact_id || s.id || ''} ${s.reason ? `(${s.reason})` : ''}`.trim(),
    }));
    box.replaceChildren(
      el('p', { class: 'customer-name', text: data.name || (data.emails && data.emails[0]) || 'Unnamed customer' }),
      el('p', { class: 'identities', text: [...(data.emails || []), ...(data.identities || [])].join(' · ') }),
      el('h4', { text: `History (${tickets.length} ticket${tickets.length === 1 ? '' : 's'})` }),
      el('ul', { class: 'plain-list', 'aria-label': 'Tickets of this customer' }, ...tickets),
      suggestions.length ? el('ul', { class: 'plain-list small', 'aria-label': 'Link suggestions' }, ...suggestions) : '',
    );
  } catch (err) {
    if (err.status !== 401) $('customer').replaceChildren(el('p', { class: 'error', text: err.message }));
  }
}

async function loadCanned() {
  if (state.cannedLoaded) return;
  try {
    const { data } = await api('/api/canned-responses');
    const list = (data && data.canned_responses) || [];
    state.cannedLoaded = true;
    const select = $('canned');
    select.append(...list.map((c) => el('option', { value: c.name, text: c.title || c.name })));
    if (!list.length) {
      select.replaceChildren(el('option', { value: '', text: 'No canned responses configured' }));
      select.disabled = true;
    }
  } catch {
    /* the picker stays empty */
  }
}

async function insertCanned() {
  const select = $('canned');
  const name = select.value;
  if (!name || !state.selectedId) return;
  try {
    const { data } = await api(`/api/tickets/${encodeURIComponent(state.selectedId)}/canned-responses/${encodeURIComponent(name)}`);
    const box = $('reply-text');
    box.value = box.value ? `${box.value.replace(/\s+$/, '')}\n\n${data.text}` : data.text;
    box.focus();
    $('reply-status').textContent = `Inserted “${data.title || name}”.`;
  } catch (err) {
    $('reply-status').textContent = err.message;
  }
  select.value = '';
}

// ---------------------------------------------------------------------------------------------
// Actions

/** 128 random bits as hex: an idempotency key. */
function randomKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function sendReply(event) {
  event.preventDefault();
  const text = $('reply-text').value;
  if (!text.trim() || !state.selectedId) return;
  const [channel, visibility] = ($('reply-target').value || '|').split('|');
  const body = { text };
  if (channel) body.channel = channel;
  if (visibility) body.visibility = visibility;
  const button = $('reply-send');
  button.disabled = true;
  $('reply-status').textContent = 'Sending…';
  try {
    if (!state.replyKey) state.replyKey = randomKey();
    await api(`/api/tickets/${encodeURIComponent(state.selectedId)}/replies`, {
      method: 'POST',
      body,
      idempotencyKey: state.replyKey,
    });
    state.replyKey = null;
    $('reply-text').value = '';
    $('reply-status').textContent = 'Reply queued.';
    state.ticketEtag = null;
    await refreshTicket();
  } catch (err) {
    // Answered: the server decided, so sending again is a new request.
    if (err.status !== 0) state.replyKey = null;
    $('reply-status').textContent = err.code === 'window_closed' ? `Not sent: ${err.message}` : `Not sent: ${err.message}`;
  } finally {
    button.disabled = $('reply-text').disabled;
  }
}

async function addNote(event) {
  event.preventDefault();
  const text = $('note-text').value;
  if (!text.trim() || !state.selectedId) return;
  $('note-status').textContent = 'Saving…';
  try {
    await api(`/api/tickets/${encodeURIComponent(state.selectedId)}/notes`, { method: 'POST', body: { text } });
    $('note-text').value = '';
    $('note-status').textContent = 'Note added.';
    state.ticketEtag = null;
    await refreshTicket();
  } catch (err) {
    $('note-status').textContent = `Not saved: ${err.message}`;
  }
}

async function handoff() {
  if (!state.selectedId) return;
  const button = $('handoff-button');
  button.disabled = true;
  $('pd-result').textContent = 'Moving to private…';
  try {
    const { data } = await api(`/api/tickets/${encodeURIComponent(state.selectedId)}/handoff`, { method: 'POST', body: {} });
    $('pd-result').textContent = `Moved to private (${data.language}): public answer and private message queued.`;
    state.ticketEtag = null;
    await refreshTicket();
  } catch (err) {
    $('pd-result').textContent = `Not moved: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}

async function patchTicket(body, statusNode) {
  if (!state.selectedId) return;
  statusNode.textContent = 'Saving…';
  try {
    const { data } = await api(`/api/tickets/${encodeURIComponent(state.selectedId)}`, { method: 'PATCH', body });
    statusNode.textContent = 'Saved.';
    state.ticketEtag = null;
    if (data && data.id === state.selectedId) renderTicket(data, false);
    state.listEtag = null;
    refreshList();
  } catch (err) {
    statusNode.textContent = `Not saved: ${err.message}`;
  }
}

function saveWorkflow(event) {
  event.preventDefault();
  const f = $('workflow-form').elements;
  const wf = (state.ticket && state.ticket.workflow) || {};
  const body = {};
  if (f.status.value !== state.ticket?.status) body.status = f.status.value;
  if (f.priority.value !== (wf.priority || 'normal')) body.priority = f.priority.value;
  const assignee = f.assignee.value.trim();
  if (assignee !== (wf.assignee || '')) body.assignee = assignee || null;
  const team = f.team.value.trim();
  if (team !== (wf.team || '')) body.team = team || null;
  if (!Object.keys(body).length) {
    $('wf-status-msg').textContent = 'Nothing changed.';
    return;
  }
  patchTicket(body, $('wf-status-msg'));
}

function addTag(event) {
  event.preventDefault();
  const input = $('tag-input');
  const tag = input.value.trim();
  if (!tag) return;
  input.value = '';
  patchTicket({ add_tags: [tag] }, $('wf-status-msg'));
}

// ---------------------------------------------------------------------------------------------
// Keyboard

function moveSelection(step) {
  const ids = state.tickets.map((t) => t.id);
  if (!ids.length) return;
  const at = ids.indexOf(state.selectedId);
  const next = at === -1 ? (step > 0 ? 0 : ids.length - 1) : Math.min(ids.length - 1, Math.max(0, at + step));
  openTicket(ids[next]);
  const row = $('ticket-list').querySelector(`li[data-id="${CSS.escape(ids[next])}"]`);
  if (row) row.scrollIntoView({ block: 'nearest' });
}

function onKey(event) {
  if (!state.token || event.defaultPrevented) return;
  const t = event.target;
  const typing = t instanceof HTMLElement && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName));
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey) && t instanceof HTMLTextAreaElement && t.form) {
    event.preventDefault();
    t.form.requestSubmit();
    return;
  }
  if (event.key === 'Escape') {
    if ($('help').open) return; // the dialog closes itself
    if (typing) {
      t.blur();
      event.preventDefault();
      return;
    }
    if (state.selectedId) {
      event.preventDefault();
      closeTicket();
    }
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  switch (event.key) {
    case 'j':
      event.preventDefault();
      moveSelection(1);
      break;
    case 'k':
      event.preventDefault();
      moveSelection(-1);
      break;
    case 'r':
      if (state.selectedId && !$('reply-text').disabled) {
        event.preventDefault();
        $('reply-text').focus();
      }
      break;
    case 'n':
      if (state.selectedId) {
        event.preventDefault();
        $('note-text').focus();
      }
      break;
    case '?':
      event.preventDefault();
      openHelp();
      break;
    default:
  }
}

function openHelp() {
  const dialog = $('help');
  if (!dialog.open) dialog.showModal();
  $('help-close').focus();
}

function stopPolling() {
  clearTimeout(state.listTimer);
  clearTimeout(state.ticketTimer);
}

// ---------------------------------------------------------------------------------------------
// Start

async function main() {
  state.config = await loadConfig();
  $('token-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const value = $('token-input').value.trim();
    if (!value) return;
    $('signin-error').textContent = 'Checking…';
    const problem = await trySignIn(value);
    if (problem) {
      $('signin-error').textContent = problem;
      $('token-input').focus();
      return;
    }
    $('token-input').value = '';
    enterConsole();
  });
  $('oidc-button').addEventListener('click', () => startOidc().catch((err) => { $('signin-error').textContent = err.message; }));
  $('sign-out').addEventListener('click', () => signOut('Signed out.'));
  $('help-open').addEventListener('click', openHelp);
  $('filters').addEventListener('change', () => {
    state.listEtag = null;
    refreshList();
  });
  $('filters').addEventListener('submit', (event) => {
    event.preventDefault();
    refreshList();
  });
  let typingTimer;
  $('filters').addEventListener('input', (event) => {
    if (event.target.type !== 'text') return;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(refreshList, 400);
  });
  $('page-older').addEventListener('click', () => turnPage(true));
  $('page-newer').addEventListener('click', () => turnPage(false));
  $('back').addEventListener('click', closeTicket);
  $('reply-form').addEventListener('submit', sendReply);
  $('reply-text').addEventListener('input', () => {
    state.replyKey = null;
  });
  $('note-form').addEventListener('submit', addNote);
  $('handoff-button').addEventListener('click', handoff);
  $('workflow-form').addEventListener('submit', saveWorkflow);
  $('tag-form').addEventListener('submit', addTag);
  $('canned').addEventListener('change', insertCanned);
  document.addEventListener('keydown', onKey);
  window.addEventListener('popstate', () => state.token && route());
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.token) {
      refreshList();
      refreshTicket();
    }
  });

  if (state.config.auth === 'oidc') await finishOidc();
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    state.token = saved;
    enterConsole();
  } else {
    showSignIn();
  }
}

main();
