'use strict';
// The gateway of the local Supabase-compatible test stack: one HTTP server on 127.0.0.1 that
// routes like a Supabase project URL does.
//   /rest/v1/*                 PostgREST subset                  (rest.js)
//   /auth/v1/*                 Auth (GoTrue) subset              (auth.js, auth-flows.js)
//   /realtime/v1/websocket     Realtime postgres_changes         (realtime.js, changes.js)
//   /__stack/*                 test hooks, only with header x-stack-admin: $STACK_ADMIN_SECRET
//   /__provider/<name>/*       a stand-in OAuth provider (Google, GitHub, ...) (auth-flows.js)
//   /site/                     the project's Site URL: a stand-in of the web app
// API keys (keys.js): the legacy anon / service_role JWTs and the new sb_publishable_ /
// sb_secret_ keys, all accepted as Supabase's gateway accepts them; a secret key sent by a
// browser (its User-Agent) is refused.
//
// Settings (environment): STACK_PORT (0 = any), STACK_PGHOST, STACK_PGPORT, STACK_PGDATABASE,
// STACK_JWT_SECRET, STACK_ADMIN_SECRET, STACK_JWT_EXP (s, 3600), STACK_JWT_LEEWAY (PostgREST's
// clock skew allowance, s, 30), STACK_REFRESH_REUSE_INTERVAL (s, 10), STACK_PGRST_VERSION (13:
// an expired JWT is PGRST303; 12: PGRST301), STACK_RT_POLL_MS (10), STACK_WS_IDLE_MS (60000),
// STACK_SITE_URL (Auth's Site URL; default http://localhost:<port>/site/), STACK_REDIRECT_URLS
// (Auth's redirect allow-list: comma-separated globs), STACK_ISSUED_FILE (every auth code,
// code verifier, email token and code of a sign-in, one a line, for the
// secrets check).
// Auth hooks: POST /__stack/auth {site_url, redirect_urls:[...], providers:[...], redirect_rule:
// 'current'|'legacy'} (redirect_rule legacy: loopback IPs need the allow-list, as before
// supabase/auth v2.171.0); config flow_state_expiry (s, 300), otp_exp (s, 3600),
// email_min_interval (s, 0; Supabase's default is 60); GET|DELETE /__stack/mailbox[?to=EMAIL]
// reads or empties the mails Auth sent; POST /__stack/provider {email, name, decision:
// allow|deny|manual} sets who the stand-in provider signs in and what its page does.
// Fault hooks (POST /__stack/config): rt_heartbeats=0 leaves heartbeats unanswered,
// rt_join_delay_ms slows every phx_join, rt_subscribe_delay_ms holds "Subscribed to
// PostgreSQL" (and the changes) back after a join reply (POST /__stack/realtime/subscribe
// ends the wait), auth_reported_exp tells clients a longer token life than the true one,
// max_rows caps every read at that many rows (PostgREST's db-max-rows; 0, the default here: none);
// POST /__stack/realtime/silence black-holes every websocket; POST /__stack/faults fails,
// delays or drops the next matching requests, or (answer_delay_ms) carries one out and
// holds its answer back. GET|DELETE /__stack/requests reads or empties the list of HTTP
// requests seen (not the hooks' own): method, path, query, done, status answered.
const http = require('node:http');
const jwt = require('./jwt');
const { createDb, pgStatus, pgErrorBody } = require('./db');
const { createRest, HttpError, pgrstError } = require('./rest');
const { createAuth } = require('./auth');
const { createRealtime } = require('./realtime');
const { createChangeStream } = require('./changes');
const { createKeys } = require('./keys');

const env = process.env;
const num = (v, d) => (v === undefined || v === '' ? d : Number(v));
const cfg = {
  port: num(env.STACK_PORT, 0),
  pgHost: env.STACK_PGHOST || '127.0.0.1',
  pgPort: num(env.STACK_PGPORT, 5432),
  pgDatabase: env.STACK_PGDATABASE || 'postgres',
  jwtSecret: env.STACK_JWT_SECRET || 'super-secret-jwt-token-with-at-least-32-characters-long',
  adminSecret: env.STACK_ADMIN_SECRET || '',
  jwtExp: num(env.STACK_JWT_EXP, 3600),
  jwtLeeway: num(env.STACK_JWT_LEEWAY, 30),
  refreshReuseInterval: num(env.STACK_REFRESH_REUSE_INTERVAL, 10),
  pgrstVersion: num(env.STACK_PGRST_VERSION, 13),
  rtPollMs: num(env.STACK_RT_POLL_MS, 10),
  wsIdleTimeoutMs: num(env.STACK_WS_IDLE_MS, 60000),
  rtHeartbeats: 1, // 0: heartbeats go unanswered (fault hook)
  rtJoinDelayMs: 0, // fault hook: each phx_join waits this long
  rtSubscribeDelayMs: 0, // fault hook: "Subscribed to PostgreSQL" this long after a join reply
  authReportedExp: 0, // fault hook: the token lifetime told to clients (0: the true one)
  maxRecordBytes: 1024 * 1024,
  maxRows: num(env.STACK_MAX_ROWS, 0), // PostgREST's db-max-rows (0: none; Supabase's default is 1000)
  flowStateExpiry: 300, // s: a PKCE flow state's life (GoTrue's default 5 minutes)
  otpExp: 3600, // s: an email link or code's life (the dashboard's default)
  emailMinInterval: 0, // s between two mails to one address (Supabase: 60; 0 here for tests)
  siteUrl: env.STACK_SITE_URL || '',
  redirectUrls: (env.STACK_REDIRECT_URLS || '').split(',').map((x) => x.trim()).filter(Boolean),
  redirectRule: 'current',
  authProviders: ['google', 'github'],
  issuedFile: env.STACK_ISSUED_FILE || '', // where sign-in secrets are listed (auth-flows.js)
  publicUrl: '',
  debug: !!env.STACK_DEBUG,
};
// Settings the admin hook may change at run time.
const TUNABLE = ['jwtExp', 'jwtLeeway', 'refreshReuseInterval', 'pgrstVersion', 'rtPollMs', 'wsIdleTimeoutMs', 'maxRecordBytes', 'maxRows',
  'rtHeartbeats', 'rtJoinDelayMs', 'rtSubscribeDelayMs', 'authReportedExp', 'flowStateExpiry', 'otpExp', 'emailMinInterval'];

const log = (m) => process.stderr.write(`${new Date().toISOString()} gateway: ${m}\n`);
const keys = createKeys(cfg);
const serviceKey = keys.keys.serviceRole;

const db = createDb({ host: cfg.pgHost, port: cfg.pgPort, database: cfg.pgDatabase });
const rest = createRest({ db, cfg });
const auth = createAuth({ db, cfg, log });
const realtime = createRealtime({ db, cfg, log, keys });
const changes = createChangeStream({
  host: cfg.pgHost, port: cfg.pgPort, database: cfg.pgDatabase,
  pollMs: () => cfg.rtPollMs, idlePollMs: 100, busy: realtime.busy, onChange: realtime.onChange, log,
});

// ---- requests seen (GET /__stack/requests): what a test can wait on instead of a time --------
// Each: n (1, 2, ...), method, path, query (the query string, '?...' or ''), prefer (the Prefer
// header or null), done (its handling ended: answered, or the client gone), status (the HTTP
// status answered; null while under way, or if no answer could be sent).
const SEEN_MAX = 1000;
let seen = [];
let seenNext = 0;

function noteRequest(req, url) {
  const r = { n: ++seenNext, method: req.method, path: url.pathname, query: url.search,
    prefer: req.headers.prefer || null, done: false, status: null };
  seen.push(r);
  if (seen.length > SEEN_MAX) seen.shift();
  return r;
}

// ---- fault injection: the next N matching requests fail, are delayed, or lose their connection --
let faults = []; // {count, status, body, headers, delayMs, answerDelayMs, drop, path, method}

function takeFault(req, url) {
  for (const f of faults) {
    if (f.count <= 0) continue;
    if (f.path && !url.pathname.startsWith(f.path)) continue;
    if (f.method && f.method !== req.method) continue;
    if (f.query && !url.search.includes(f.query)) continue;
    f.count--;
    faults = faults.filter((x) => x.count > 0);
    return f;
  }
  return null;
}

function send(res, status, body, headers = {}) {
  if (res.headersSent || res.destroyed) return;
  let text = body;
  const h = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) h[k] = v;
  if (body !== '' && body !== undefined && body !== null && typeof body !== 'string') {
    text = JSON.stringify(body);
    if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['Content-Type'] = 'application/json; charset=utf-8';
  }
  text = text === undefined || text === null ? '' : text;
  h['Content-Length'] = Buffer.byteLength(text);
  res.writeHead(status, h);
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// The API gateway in front of a Supabase project wants a project API key in the apikey header
// (or query param) on /rest and /auth. A new-style key is not a JWT: when the Authorization
// header is missing or carries the same key (supabase-js sends it there without a session),
// the request goes on with a JWT of the key's role, as the platform does.
function checkApiKey(req, url) {
  const key = req.headers.apikey || url.searchParams.get('apikey');
  if (!key) {
    throw new HttpError(401, { message: 'No API key found in request', hint: 'No `apikey` request header or url param was found.' });
  }
  const kind = keys.kind(key);
  if (!kind) {
    throw new HttpError(401, { message: 'Invalid API key', hint: 'Double check your Supabase `anon` or `service_role` API key.' });
  }
  if (kind === 'secret' && keys.looksLikeBrowser(req.headers['user-agent'])) {
    throw new HttpError(401, { message: 'Forbidden use of secret API key in browser',
      hint: 'Secret API keys can only be used in a protected environment and should never be used in a browser.' });
  }
  const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization || '');
  const bearer = m ? m[1].trim() : '';
  if (keys.isNewStyle(bearer) && bearer !== key) {
    throw new HttpError(401, { message: 'Invalid API key', hint: 'An API key in the Authorization header must be the one in the apikey header.' });
  }
  if (keys.isNewStyle(key) && (!bearer || bearer === key)) req.headers.authorization = `Bearer ${keys.asJwt(key)}`;
  return key;
}

// PostgREST's JWT handling: Authorization: Bearer, else the apikey; no role claim means anon.
function restAuth(req, key) {
  const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization || '');
  const token = m ? m[1].trim() : key;
  const d = jwt.decode(token, cfg.jwtSecret);
  const jwtError = (code, message, details, description) => new HttpError(401,
    { code, details: details || null, hint: null, message },
    { 'WWW-Authenticate': `Bearer error="invalid_token", error_description="${description || message}"` });
  if (!d.ok) {
    if (d.reason === 'signature') throw jwtError('PGRST301', 'JWSError JWSInvalidSignature', null, 'JWSError JWSInvalidSignature');
    throw jwtError('PGRST301', 'Expected 3 parts in JWT; got ' + (d.parts || 1), null, 'JWSError JWSInvalidNumberOfParts');
  }
  const c = d.claims;
  const now = Math.floor(Date.now() / 1000);
  if (typeof c.exp === 'number' && now > c.exp + cfg.jwtLeeway) {
    throw jwtError(cfg.pgrstVersion >= 13 ? 'PGRST303' : 'PGRST301', 'JWT expired');
  }
  if (typeof c.nbf === 'number' && now < c.nbf - cfg.jwtLeeway) throw jwtError('PGRST303', 'JWT not yet valid');
  return { role: c.role || 'anon', claims: c };
}

async function admin(req, res, url, body) {
  if (!cfg.adminSecret || req.headers['x-stack-admin'] !== cfg.adminSecret) {
    return send(res, 403, { message: 'admin hook: wrong or missing x-stack-admin header' });
  }
  let b = {};
  try {
    b = body.length ? JSON.parse(body.toString('utf8')) : {};
  } catch (_) {
    return send(res, 400, { message: 'bad JSON' });
  }
  const p = url.pathname;
  if (p === '/__stack/status') {
    return send(res, 200, { realtime: realtime.status(), faults, config: Object.fromEntries(TUNABLE.map((k) => [k, cfg[k]])), pid: process.pid,
      auth: authSettings() });
  }
  if (p === '/__stack/auth' && req.method === 'POST') {
    if (b.site_url !== undefined) cfg.siteUrl = String(b.site_url);
    if (b.redirect_urls !== undefined) cfg.redirectUrls = [].concat(b.redirect_urls).map(String);
    if (b.providers !== undefined) cfg.authProviders = [].concat(b.providers).map((x) => String(x).toLowerCase());
    if (b.redirect_rule !== undefined) {
      if (!['current', 'legacy'].includes(b.redirect_rule)) return send(res, 400, { message: 'redirect_rule: current or legacy' });
      cfg.redirectRule = b.redirect_rule;
    }
    return send(res, 200, authSettings());
  }
  if (p === '/__stack/mailbox' && req.method === 'GET') {
    return send(res, 200, { messages: auth.flows.readMailbox(url.searchParams.get('to')) });
  }
  if (p === '/__stack/mailbox' && req.method === 'DELETE') {
    auth.flows.clearMailbox();
    return send(res, 200, { messages: [] });
  }
  if (p === '/__stack/provider' && req.method === 'POST') {
    if (b.decision !== undefined && !['allow', 'deny', 'manual'].includes(b.decision)) {
      return send(res, 400, { message: 'decision: allow, deny or manual' });
    }
    return send(res, 200, auth.flows.setProvider(b));
  }
  if (p === '/__stack/requests' && req.method === 'GET') {
    return send(res, 200, { requests: seen });
  }
  if (p === '/__stack/requests' && req.method === 'DELETE') {
    seen = [];
    return send(res, 200, { requests: seen });
  }
  if (p === '/__stack/faults' && req.method === 'POST') {
    // {count, status, body, headers, delay_ms, answer_delay_ms, drop, path, method, query}; count defaults to 1
    faults.push({
      count: b.count === undefined ? 1 : Number(b.count),
      status: b.status,
      body: b.body,
      headers: b.headers,
      delayMs: Number(b.delay_ms || 0),
      answerDelayMs: Number(b.answer_delay_ms || 0),
      drop: !!b.drop,
      path: b.path,
      method: b.method,
      query: b.query, // a part of the query string the request must have
    });
    return send(res, 200, { faults });
  }
  if (p === '/__stack/faults' && req.method === 'DELETE') {
    faults = [];
    return send(res, 200, { faults });
  }
  if (p === '/__stack/realtime/drop' && req.method === 'POST') {
    return send(res, 200, { dropped: realtime.dropAll() });
  }
  if (p === '/__stack/realtime/subscribe' && req.method === 'POST') {
    return send(res, 200, { released: realtime.releaseSubscriptions() });
  }
  if (p === '/__stack/realtime/silence' && req.method === 'POST') {
    return send(res, 200, { silenced: realtime.silenceAll(b.close_after_ms) });
  }
  if (p === '/__stack/config' && req.method === 'POST') {
    const map = { flow_state_expiry: 'flowStateExpiry', otp_exp: 'otpExp', email_min_interval: 'emailMinInterval', jwt_exp: 'jwtExp', jwt_leeway: 'jwtLeeway', refresh_reuse_interval: 'refreshReuseInterval', pgrst_version: 'pgrstVersion', rt_poll_ms: 'rtPollMs', ws_idle_ms: 'wsIdleTimeoutMs', max_record_bytes: 'maxRecordBytes', max_rows: 'maxRows',
      rt_heartbeats: 'rtHeartbeats', rt_join_delay_ms: 'rtJoinDelayMs', rt_subscribe_delay_ms: 'rtSubscribeDelayMs',
      auth_reported_exp: 'authReportedExp' };
    for (const [k, v] of Object.entries(b)) {
      const key = map[k] || k;
      if (!TUNABLE.includes(key)) return send(res, 400, { message: `unknown setting ${k}` });
      cfg[key] = Number(v);
    }
    return send(res, 200, Object.fromEntries(TUNABLE.map((k) => [k, cfg[k]])));
  }
  if (p === '/__stack/users' && req.method === 'POST') {
    // Same as the Auth admin API, without needing the service key.
    const r = await auth.handle({ method: 'POST', headers: { authorization: `Bearer ${serviceKey}` } },
      new URL('http://x/auth/v1/admin/users'), Buffer.from(JSON.stringify(b)));
    return send(res, r.status, r.body, r.headers);
  }
  return send(res, 404, { message: 'unknown admin hook' });
}

function authSettings() {
  return { site_url: auth.flows.siteUrl(), redirect_urls: cfg.redirectUrls, providers: cfg.authProviders, redirect_rule: cfg.redirectRule };
}

// Auth's endpoints a browser navigates to carry no API key (the platform leaves them open).
const OPEN_AUTH = ['/auth/v1/health', '/auth/v1/authorize', '/auth/v1/callback', '/auth/v1/verify'];

async function route(req, res) {
  const url = new URL(req.url, `http://${req.headers.host || '127.0.0.1'}`);
  const body = await readBody(req);
  if (url.pathname.startsWith('/__stack/')) {
    return admin(req, res, url, body).catch((e) => send(res, e.status || 500, e.body || { message: e.message }));
  }
  const seenReq = noteRequest(req, url);
  try {
    return await serve(req, res, url, body);
  } finally {
    seenReq.status = res.headersSent ? res.statusCode : null;
    seenReq.done = true;
  }
}

async function serve(req, res, url, body) {
  const page = auth.flows.handlePage(req, url);
  if (page) return send(res, page.status, page.body, page.headers);

  const fault = takeFault(req, url);
  if (fault) {
    if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
    if (fault.drop) {
      req.socket.destroy();
      return undefined;
    }
    if (fault.status) {
      return send(res, fault.status, fault.body !== undefined ? fault.body : { message: `injected fault ${fault.status}` },
        fault.headers || {});
    }
  }

  // answer_delay_ms: the request is carried out now, its answer held back (an answer
  // lost to the client's timeout, for a write that did land).
  const held = async () => {
    if (fault && fault.answerDelayMs) await new Promise((r) => setTimeout(r, fault.answerDelayMs));
  };
  try {
    if (url.pathname.startsWith('/auth/v1/')) {
      if (!(OPEN_AUTH.includes(url.pathname) && (req.method === 'GET' || url.pathname === '/auth/v1/health'))) checkApiKey(req, url);
      const r = await auth.handle(req, url, body);
      await held();
      return send(res, r.status, r.body, r.headers);
    }
    if (url.pathname === '/rest/v1' || url.pathname.startsWith('/rest/v1/')) {
      const key = checkApiKey(req, url);
      const a = restAuth(req, key);
      const r = await rest.handle(req, url, body, a);
      await held();
      return send(res, r.status, req.method === 'HEAD' ? '' : r.body, r.headers);
    }
    return send(res, 404, { message: 'no Route matched with those values' });
  } catch (e) {
    if (e instanceof HttpError) return send(res, e.status, e.body, e.headers);
    if (e && typeof e.code === 'string' && e.severity) {
      // A database error, mapped as PostgREST maps it (also for the Auth endpoints, which
      // would never show one in practice).
      const role = url.pathname.startsWith('/rest/') ? (safeRole(req) || 'anon') : 'service_role';
      return send(res, pgStatus(e.code, role), pgErrorBody(e));
    }
    if (e && (e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET' || /terminat|Connection/.test(e.message || ''))) {
      return send(res, 503, { code: 'PGRST001', details: e.message, hint: null, message: 'Database client error. Retrying the connection.' });
    }
    log(`internal error on ${req.method} ${url.pathname}: ${e && e.stack}`);
    return send(res, 500, { code: 'PGRST000', details: String(e && e.message), hint: null, message: 'internal gateway error' });
  }
}

function safeRole(req) {
  const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization || '');
  const d = jwt.decode(m ? m[1] : req.headers.apikey, cfg.jwtSecret);
  return d.ok ? d.claims.role : null;
}

const server = http.createServer((req, res) => {
  route(req, res).catch((e) => {
    log(`unhandled: ${e && e.stack}`);
    send(res, 500, { message: 'internal gateway error' });
  });
});
server.keepAliveTimeout = 65000;

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  socket.on('error', () => {});
  const fault = takeFault(req, url);
  if (fault && (fault.drop || fault.status)) {
    if (fault.drop) return socket.destroy();
    const b = JSON.stringify(fault.body || { error: `injected fault ${fault.status}` });
    return socket.end(`HTTP/1.1 ${fault.status} Injected\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(b)}\r\nConnection: close\r\n\r\n${b}`);
  }
  if (url.pathname === '/realtime/v1/websocket' || url.pathname === '/realtime/v1/websocket/') {
    return realtime.handleUpgrade(req, socket, head, url);
  }
  return socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
});

async function main() {
  // Fail early (and clearly) if the database is not there; the schema cache is loaded now.
  await db.loadSchema();
  changes.start();
  server.listen(cfg.port, '127.0.0.1', () => {
    const { port } = server.address();
    cfg.publicUrl = `http://127.0.0.1:${port}`;
    log(`listening on ${cfg.publicUrl} (pid ${process.pid})`);
    if (process.send) process.send({ port });
  });
}

let stopping = false;
async function shutdown(sig) {
  if (stopping) return;
  stopping = true;
  log(`${sig}: shutting down`);
  realtime.close();
  server.close();
  for (const s of sockets) s.destroy();
  await changes.stop();
  await db.end();
  process.exit(0);
}
const sockets = new Set();
server.on('connection', (s) => {
  sockets.add(s);
  s.on('close', () => sockets.delete(s));
});
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

main().catch((e) => {
  log(`cannot start: ${e.message}`);
  process.exit(1);
});
