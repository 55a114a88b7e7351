// A stand-in Supabase server that misbehaves on purpose, for the tests of
// shelfd's defences (tests/nvim/test_hostile.lua). It answers enough of Auth,
// PostgREST and Realtime (vsn 2.0.0) for shelfd to sign in, load, write and
// join, from an in-memory store that ignores every filter, and it can be told
// to answer malformed, truncated, huge or wrongly typed bodies, to hand out
// rows and realtime events of another user, or to send websocket garbage.
// Usage: node hostile.mjs   (prints "PORT <n>" on stdout once listening)
// Control (JSON bodies): POST /__hostile/mode {rest, auth}, POST /__hostile/rows
// {table, rows}, POST /__hostile/push {topic?, table, type, record} or
// {garbage: true}, GET /__hostile/requests (request lines seen so far).
import http from 'node:http';
import crypto from 'node:crypto';
import { WebSocketServer } from 'ws';

export const USER = '11111111-1111-4111-8111-111111111111';
export const OTHER = '22222222-2222-4222-8222-222222222222';

const tables = new Map(); // name -> Map(id -> row)
const requests = [];
const mode = { rest: 'ok', auth: 'ok' };
const sockets = new Set();

const table = (name) => {
  if (!tables.has(name)) tables.set(name, new Map());
  return tables.get(name);
};
const b64url = (b) => Buffer.from(b).toString('base64url');
// Tokens look like real JWTs (the secrets test hunts for that shape).
const jwt = () => `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url(JSON.stringify({
  sub: USER, role: 'authenticated', exp: Math.floor(Date.now() / 1000) + 3600, n: crypto.randomUUID(),
}))}.${b64url(crypto.randomBytes(32))}`;

function session() {
  const user = { id: mode.auth === 'bad_uid' ? 'x&select=evil' : USER, email: 'ada@example.com' };
  return {
    access_token: jwt(), token_type: 'bearer', expires_in: 3600,
    expires_at: Math.floor(Date.now() / 1000) + 3600,
    refresh_token: `rt-${crypto.randomBytes(12).toString('hex')}`, user,
  };
}

function readBody(req) {
  return new Promise((resolve) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
  });
}

function send(res, status, body, type = 'application/json') {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

// The misbehaving answers to a GET of a table, by mode.
function hostileList(res, rows) {
  switch (mode.rest) {
    case 'malformed': return send(res, 200, '[{"id": "oops", "title": ');
    case 'truncated': {
      // Promise more than is sent, then cut the connection.
      const text = JSON.stringify(rows);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': text.length + 1000 });
      res.write(text.slice(0, Math.floor(text.length / 2)));
      return setTimeout(() => res.socket.destroy(), 50);
    }
    case 'huge': {
      // 40 MiB of a valid-looking list, past shelfd's 32 MiB limit.
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = `{"id":"${crypto.randomUUID()}","title":"${'x'.repeat(1 << 20)}"},`;
      let n = 0;
      const more = () => {
        while (n < 40) {
          n++;
          if (!res.write(n === 1 ? `[${chunk}` : chunk)) return res.once('drain', more);
        }
        res.end('{}]');
      };
      return more();
    }
    case 'object': return send(res, 200, { id: USER, title: 'an object, not a list' });
    case 'html': return send(res, 200, '<html>gateway</html>', 'text/html');
    default: return send(res, 200, rows);
  }
}

function project(row, select) {
  if (!select || select === '*' || select.startsWith('*')) return row;
  const o = {};
  for (const c of select.split(',')) if (c in row) o[c] = row[c];
  return o;
}

async function rest(req, res, url) {
  const name = url.pathname.slice('/rest/v1/'.length);
  const t = table(name);
  const idEq = (url.searchParams.get('id') || '').replace(/^eq\./, '');
  const select = url.searchParams.get('select');
  if (req.method === 'GET') {
    let rows = [...t.values()];
    const inList = /^in\.\((.*)\)$/.exec(url.searchParams.get('id') || '');
    if (inList) rows = rows.filter((r) => inList[1].split(',').includes(r.id));
    else if (idEq) rows = rows.filter((r) => r.id === idEq);
    return hostileList(res, rows.map((r) => project(r, select)));
  }
  if (req.method === 'HEAD') {
    // A count (Prefer: count=exact) in Content-Range and no body; the filters
    // are ignored here as everywhere.
    res.writeHead(200, { 'content-range': `*/${t.size}` });
    return res.end();
  }
  const body = await readBody(req);
  if (req.method === 'POST') {
    let row;
    try { row = JSON.parse(body); } catch { return send(res, 400, { message: 'bad json' }); }
    const now = new Date().toISOString();
    row = { created_at: now, updated_at: now, ...row };
    if (t.has(row.id)) return send(res, 201, []);
    t.set(row.id, row);
    return send(res, 201, [row]);
  }
  if (req.method === 'PATCH') {
    const row = t.get(idEq);
    if (!row) return send(res, 200, []);
    Object.assign(row, JSON.parse(body));
    return send(res, 200, [row]);
  }
  if (req.method === 'DELETE') {
    const row = t.get(idEq);
    if (!row) return send(res, 200, []);
    t.delete(idEq);
    return send(res, 200, [{ id: row.id }]);
  }
  return send(res, 405, { message: 'method' });
}

async function auth(req, res, url) {
  await readBody(req);
  if (url.pathname === '/auth/v1/token') {
    if (mode.auth === 'not_json') return send(res, 200, 'welcome!', 'text/plain');
    if (mode.auth === 'no_tokens') return send(res, 200, { user: { id: USER } });
    return send(res, 200, session());
  }
  if (url.pathname === '/auth/v1/user') return send(res, 200, { id: USER, email: 'ada@example.com' });
  if (url.pathname === '/auth/v1/logout') return send(res, 204, '');
  return send(res, 404, { msg: 'not found' });
}

async function control(req, res, url) {
  const what = url.pathname.slice('/__hostile/'.length);
  if (what === 'requests') return send(res, 200, requests);
  const body = JSON.parse((await readBody(req)) || '{}');
  if (what === 'mode') Object.assign(mode, body);
  else if (what === 'rows') for (const r of body.rows) table(body.table).set(r.id, r);
  else if (what === 'push') push(body);
  else return send(res, 404, {});
  return send(res, 200, { ok: true, sockets: sockets.size });
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (!url.pathname.startsWith('/__hostile/')) requests.push(`${req.method} ${req.url}`);
  const route = url.pathname.startsWith('/rest/v1/') ? rest
    : url.pathname.startsWith('/auth/v1/') ? auth
      : url.pathname.startsWith('/__hostile/') ? control : null;
  if (!route) return send(res, 404, { message: 'no route' });
  route(req, res, url).catch((e) => send(res, 500, { message: String(e) }));
});

// --- Realtime ------------------------------------------------------------------
const wss = new WebSocketServer({ noServer: true, maxPayload: 64 << 20 });
server.on('upgrade', (req, sock, head) => {
  requests.push(`WS ${req.url}`);
  wss.handleUpgrade(req, sock, head, (ws) => {
    const conn = { ws, channels: new Map() };
    sockets.add(conn);
    ws.on('close', () => sockets.delete(conn));
    ws.on('message', (data) => {
      let m;
      try { m = JSON.parse(data.toString()); } catch { return; }
      const [joinRef, ref, topic, event, payload] = m;
      const reply = (response) => ws.send(JSON.stringify([joinRef, ref, topic, 'phx_reply', { status: 'ok', response }]));
      if (event === 'heartbeat') return reply({});
      if (event === 'phx_join') {
        const pgc = (payload.config && payload.config.postgres_changes) || [];
        const bound = pgc.map((p, i) => ({ ...p, id: 1000 + i }));
        conn.channels.set(topic, { joinRef, bound });
        reply({ postgres_changes: bound });
        ws.send(JSON.stringify([joinRef, null, topic, 'system',
          { extension: 'postgres_changes', status: 'ok', message: 'Subscribed to PostgreSQL', channel: topic }]));
      }
    });
  });
});

function push(body) {
  // The user's own rows are in the table too, as on a real server, so a
  // full refresh agrees with the events.
  if (body.record && body.record.user_id === USER && body.type !== 'DELETE') {
    table(body.table).set(body.record.id, body.record);
  }
  for (const conn of sockets) {
    for (const [topic, ch] of conn.channels) {
      if (body.garbage) {
        const junk = [
          'not json at all', '{"half":', '[]', '[1,2,3,4,5]', '[null,null,null,null,null]',
          JSON.stringify([null, null, topic, 'postgres_changes', 'a string payload']),
          JSON.stringify([null, null, topic, 'postgres_changes', { ids: 'x', data: 5 }]),
          JSON.stringify([null, null, topic, 'postgres_changes', { ids: [1000], data: { type: 7 } }]),
          JSON.stringify([null, null, topic, 'postgres_changes', { ids: [1000, 1001, 1002], data: { type: 'INSERT', record: 'x' } }]),
          JSON.stringify([null, null, topic, 'system', { status: 5, message: {} }]),
          JSON.stringify({ topic, event: 'phx_reply', payload: null, ref: null }),
        ];
        for (const j of junk) conn.ws.send(j);
        conn.ws.send(crypto.randomBytes(256)); // binary
        conn.ws.send('[' + ' '.repeat(9 << 20) + ']'); // past shelfd's 8 MiB frame limit
        continue;
      }
      const ids = ch.bound.filter((b) => b.table === body.table).map((b) => b.id);
      const data = {
        schema: 'public', table: body.table, commit_timestamp: new Date().toISOString(),
        type: body.type, columns: [], errors: null,
      };
      if (body.type === 'DELETE') data.old_record = body.record;
      else data.record = body.record;
      conn.ws.send(JSON.stringify([null, null, topic, 'postgres_changes', { ids, data }]));
    }
  }
}

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
