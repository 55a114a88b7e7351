'use strict';
// Supabase Realtime's `postgres_changes`, at /realtime/v1/websocket?apikey=...&vsn=1.0.0|2.0.0:
// the Phoenix channel protocol as the Realtime server speaks it to realtime-js v2.
//
// Frames: vsn 2.0.0 text frames are arrays [join_ref, ref, topic, event, payload]; vsn 1.0.0
// frames are objects {topic, event, payload, ref} (the v1 serializer never sends join_ref).
// Server pushes from a channel (system, phx_close) carry the channel's join_ref; change events
// are "fastlane" broadcasts with join_ref and ref null.
//
// Semantics follow supabase/realtime (realtime_channel.ex, apply_rls):
// - join reply {status:"ok", response:{postgres_changes:[{...params, id}]}} with the bindings in
//   the order sent, id = a hash of the params (the server's :erlang.phash2), then a `system`
//   message "Subscribed to PostgreSQL" (extension postgres_changes) or its error;
// - filters `col=op.value[,col=op.value]` (eq neq lt lte gt gte in like ilike is, `not.`), each
//   evaluated with the column's type; a filter column missing from the change never matches, so
//   with the default replica identity a filtered binding never sees a DELETE;
// - INSERT/UPDATE reach a subscriber only if RLS lets its role and claims select the row
//   (checked per event in the database); DELETE skips RLS, and on an RLS table its old_record
//   holds only the primary key;
// - a change over 1 MB arrives with only the values of at most 64 bytes, and
//   errors ["Error 413: Payload Too Large"];
// - the token is re-checked when it expires: the channel then gets
//   system {extension:"system", status:"error", message:"Token has expired N seconds ago"} and
//   phx_close, and is gone (realtime-js does not rejoin it); `access_token` swaps the token;
// - with config rt_subscribe_delay_ms, "Subscribed to PostgreSQL" comes that long after the
//   join reply, and changes committed before it are not sent (as on Supabase);
// - heartbeats on topic phoenix are answered; a socket silent for 60 s is closed.
const crypto = require('node:crypto');
const { WebSocketServer } = require('ws');
const jwt = require('./jwt');

const FILTER_OPS = new Set(['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'in', 'like', 'ilike', 'is']);

// Stable integer id for a binding's params, in the range of :erlang.phash2 (0..2^27-1).
function bindingId(params) {
  const canon = (v) => (v && typeof v === 'object' && !Array.isArray(v)
    ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon(v[k])}`).join(',')}}`
    : JSON.stringify(v));
  return crypto.createHash('md5').update(canon(params)).digest().readUInt32BE(0) % 134217728;
}

// "user_id=eq.abc,n=in.(1,2)" → [{column, op, value, negate}]; throws on a malformed filter.
function parseFilters(filter) {
  if (filter === undefined || filter === null || filter === '') return [];
  const parts = [];
  let depth = 0;
  let cur = '';
  for (const ch of String(filter)) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => {
    const m = /^([^=]+)=(not\.)?([a-z]+)\.(.*)$/s.exec(p);
    if (!m || !FILTER_OPS.has(m[3])) {
      throw new Error(`Error parsing \`filter\` params: ${JSON.stringify(p.split(/[=.]/))}`);
    }
    let value = m[4];
    if (m[3] === 'in') {
      const inner = /^\((.*)\)$/s.exec(value);
      if (!inner) throw new Error(`Error parsing \`filter\` params: ${JSON.stringify(p.split(/[=.]/))}`);
      const items = inner[1].split(',').map((s) => s.trim().replace(/^"(.*)"$/, '$1'));
      if (items.length > 100) throw new Error('too many values for `in` filter. Maximum 100');
      value = `{${items.map((s) => `"${s.replace(/(["\\])/g, '\\$1')}"`).join(',')}}`;
    }
    return { column: m[1], op: m[3], value, negate: !!m[2] };
  });
}

function commitTimestamp(ts) {
  // wal2json: "2026-11-25 06:18:38.624191+00" → "2026-11-25T06:18:38.624Z"
  let s = String(ts).replace(' ', 'T');
  if (/[+-]\d\d$/.test(s)) s += ':00';
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? new Date().toISOString() : d.toISOString();
}

function createRealtime({ db, cfg, log, keys }) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024 });
  const conns = new Set();
  const colCache = new Map(); // `${table}|${role}` → {at, cols:[{name,type}]}
  const stats = { events: 0 };

  // ---- token checks, with the server's wording ------------------------------------------------
  function checkToken(token) {
    // A new-style project key stands for its role, as the legacy key JWT of that role does.
    if (keys && keys.isNewStyle(token)) {
      const legacy = keys.asJwt(token);
      if (!legacy) return { error: 'InvalidJWTToken: Invalid API key', short: 'Invalid API key' };
      token = legacy;
    }
    const d = jwt.decode(token, cfg.jwtSecret);
    if (!d.ok) {
      return d.reason === 'signature'
        ? { error: 'JwtSignatureError: Failed to validate JWT signature', short: 'Failed to validate JWT signature' }
        : { error: 'MalformedJWT: The token provided is not a valid JWT', short: 'The token provided is not a valid JWT' };
    }
    const c = d.claims;
    if (!c.role || typeof c.exp !== 'number') {
      const msg = 'Fields `role` and `exp` are required in JWT';
      return { error: `InvalidJWTToken: ${msg}`, short: msg };
    }
    const now = Math.floor(Date.now() / 1000);
    if (c.exp - now <= 0) {
      const msg = `Token has expired ${now - c.exp} seconds ago`;
      return { error: `InvalidJWTToken: ${msg}`, short: msg };
    }
    return { claims: c };
  }

  // ---- the websocket upgrade --------------------------------------------------------------------
  function handleUpgrade(req, socket, head, url) {
    const reject = (status, msg) => {
      const body = JSON.stringify({ error: msg });
      socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Bad Request'}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    };
    const apikey = req.headers['x-api-key'] || url.searchParams.get('apikey');
    if (!apikey) return reject(401, 'API key is missing');
    if (keys && keys.kind(apikey) === 'secret' && keys.looksLikeBrowser(req.headers['user-agent'])) {
      return reject(401, 'Forbidden use of secret API key in browser');
    }
    const t = checkToken(apikey);
    if (t.error) return reject(401, t.short.startsWith('Token has expired') ? 'Token has expired' : t.short);
    const vsn = url.searchParams.get('vsn') || '1.0.0';
    if (!/^[12]\.0\.\d+$/.test(vsn)) return reject(400, `unsupported serializer version ${vsn}`);
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, vsn.startsWith('2') ? 2 : 1, apikey));
  }

  function onConnection(ws, vsn, apikey) {
    const conn = { ws, vsn, apikey, channels: new Map(), lastSeen: Date.now() };
    conns.add(conn);
    ws.on('message', (data, isBinary) => {
      if (conn.silent) return;
      conn.lastSeen = Date.now();
      if (isBinary) return; // binary frames are user broadcasts (vsn 2.0.0): not supported here
      let msg;
      try {
        const v = JSON.parse(data.toString('utf8'));
        msg = Array.isArray(v)
          ? { join_ref: v[0], ref: v[1], topic: v[2], event: v[3], payload: v[4] }
          : v;
      } catch (_) {
        log('realtime: undecodable frame dropped');
        return;
      }
      if (!msg || typeof msg.topic !== 'string' || typeof msg.event !== 'string') return;
      onMessage(conn, msg).catch((e) => log(`realtime: ${msg.event} failed: ${e.stack || e.message}`));
    });
    ws.on('close', () => closeConn(conn));
    ws.on('error', () => closeConn(conn));
  }

  function closeConn(conn) {
    for (const ch of conn.channels.values()) {
      clearTimeout(ch.expiryTimer);
      clearTimeout(ch.subscribeTimer);
    }
    conn.channels.clear();
    conns.delete(conn);
  }

  function send(conn, joinRef, ref, topic, event, payload) {
    if (conn.ws.readyState !== 1 || conn.silent) return;
    const frame = conn.vsn === 2
      ? JSON.stringify([joinRef ?? null, ref ?? null, topic, event, payload])
      : JSON.stringify({ topic, event, payload, ref: ref ?? null });
    conn.ws.send(frame);
  }

  const reply = (conn, msg, status, response) =>
    send(conn, msg.join_ref, msg.ref, msg.topic, 'phx_reply', { status, response });

  const subTopic = (topic) => topic.replace(/^realtime:/, '');

  function systemMessage(conn, ch, extension, status, message) {
    send(conn, ch.joinRef, null, ch.topic, 'system', { extension, status, message, channel: subTopic(ch.topic) });
  }

  // The server stops the channel: a system error, then phx_close; the client removes it.
  function shutdown(conn, ch, message) {
    systemMessage(conn, ch, 'system', 'error', message);
    closeChannel(conn, ch);
  }

  function closeChannel(conn, ch) {
    clearTimeout(ch.expiryTimer);
    clearTimeout(ch.subscribeTimer);
    send(conn, ch.joinRef, ch.joinRef, ch.topic, 'phx_close', {});
    if (conn.channels.get(ch.topic) === ch) conn.channels.delete(ch.topic);
  }

  // Re-check the token when it expires (the server's confirm_token timer, capped at 1 h).
  function scheduleExpiry(conn, ch) {
    clearTimeout(ch.expiryTimer);
    const now = Math.floor(Date.now() / 1000);
    const ms = Math.min(3600, Math.max(0, ch.claims.exp - now)) * 1000;
    ch.expiryTimer = setTimeout(() => {
      const t = checkToken(ch.token);
      if (t.error) shutdown(conn, ch, t.short);
      else scheduleExpiry(conn, ch);
    }, ms);
    ch.expiryTimer.unref();
  }

  // Validate one binding as the server's subscription_check_filters does. Returns an error
  // message or null; fills sub.filters.
  async function checkBinding(sub, role) {
    if (!sub.table || sub.table === '*' || sub.schema === '*') {
      if (sub.filters.length) return 'filters need a table';
      return null;
    }
    const cols = await columnsFor(sub.schema, sub.table, role);
    if (!cols) return `invalid entity ${sub.schema}.${sub.table}`;
    for (const f of sub.filters) {
      const c = cols.find((x) => x.name === f.column);
      if (!c) return `invalid column for filter ${f.column}`;
      if (f.op !== 'is' && f.op !== 'in') {
        try {
          await db.admin.query('select realtime.cast($1, $2::regtype)', [f.value, c.regtype]);
        } catch (e) {
          return e.message;
        }
      }
    }
    for (const s of sub.select || []) {
      if (!cols.find((x) => x.name === s)) return `invalid column for select ${s}`;
    }
    return null;
  }

  // Columns of a table the role may select, in table order: {name, type (typname), regtype}.
  async function columnsFor(schema, table, role) {
    const key = `${schema}.${table}|${role}`;
    const hit = colCache.get(key);
    if (hit && Date.now() - hit.at < 2000) return hit.cols;
    const r = await db.admin.query(
      `select a.attname as name, t.typname as type, format_type(a.atttypid, null) as regtype,
              pg_catalog.has_column_privilege($3, c.oid, a.attname, 'SELECT') as selectable
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
         join pg_type t on t.oid = a.atttypid
        where n.nspname = $1 and c.relname = $2 order by a.attnum`, [schema, table, role]).catch(() => ({ rows: [] }));
    const cols = r.rows.length ? r.rows.filter((c) => c.selectable) : null;
    colCache.set(key, { at: Date.now(), cols });
    return cols;
  }

  // ---- client messages --------------------------------------------------------------------------
  async function onMessage(conn, msg) {
    const { topic, event } = msg;
    const payload = msg.payload || {};
    if (topic === 'phoenix' && event === 'heartbeat') {
      // Fault hook (config rt_heartbeats=0): a server that stops answering heartbeats.
      if (!cfg.rtHeartbeats) return undefined;
      return reply(conn, msg, 'ok', {});
    }
    if (event === 'phx_join') {
      // Fault hook (config rt_join_delay_ms): a slow join, to kill the gateway during one.
      if (cfg.rtJoinDelayMs) await new Promise((r) => setTimeout(r, cfg.rtJoinDelayMs));
      return join(conn, msg, payload);
    }
    const ch = conn.channels.get(topic);
    if (!ch || (msg.join_ref && msg.join_ref !== ch.joinRef)) {
      // Phoenix answers pushes to a topic the socket has not joined like this.
      return reply(conn, msg, 'error', { reason: 'unmatched topic' });
    }
    if (event === 'phx_leave') {
      reply(conn, msg, 'ok', {});
      closeChannel(conn, ch);
      return undefined;
    }
    if (event === 'access_token') {
      const token = payload.access_token;
      if (!token || token === ch.token || String(token).startsWith('sb_')) return undefined;
      const t = checkToken(token);
      if (t.error) return shutdown(conn, ch, t.short);
      ch.token = token;
      ch.claims = t.claims;
      scheduleExpiry(conn, ch);
      return undefined;
    }
    if (event === 'presence') return reply(conn, msg, 'ok', {});
    // broadcast and anything else: accepted and ignored (no reply), as the server does for
    // unexpected events. Broadcast/presence fan-out is not part of the test stack.
    return undefined;
  }

  async function join(conn, msg, payload) {
    const { topic } = msg;
    if (!topic.startsWith('realtime:') || topic === 'realtime:') {
      return reply(conn, msg, 'error', { reason: 'TopicNameRequired: You must provide a topic name' });
    }
    const old = conn.channels.get(topic);
    if (old) closeChannel(conn, old); // Phoenix closes a duplicate join's older channel
    let token = payload.access_token || payload.user_token || conn.apikey;
    if (String(token).startsWith('sb_')) token = conn.apikey;
    const t = checkToken(token);
    if (t.error) return reply(conn, msg, 'error', { reason: t.error });

    const config = payload.config || {};
    const pgc = Array.isArray(config.postgres_changes) ? config.postgres_changes.filter((p) => p) : [];
    const ch = {
      topic, joinRef: msg.join_ref ?? msg.ref, token, claims: t.claims, subs: [], expiryTimer: null,
    };
    const errors = [];
    for (const params of pgc) {
      const sub = {
        id: bindingId(params),
        params,
        event: String(params.event || '*').toUpperCase(),
        schema: params.schema || 'public',
        table: params.table,
        select: Array.isArray(params.select) ? params.select : null,
        filters: [],
      };
      try {
        sub.filters = parseFilters(params.filter);
        const err = await checkBinding(sub, t.claims.role);
        if (err) errors.push(err);
        else ch.subs.push(sub);
      } catch (e) {
        errors.push(e.message);
      }
    }
    const wait = config.postgres_changes_options && config.postgres_changes_options.wait;
    if (wait && errors.length) {
      return reply(conn, msg, 'error', { reason: `RealtimeDisabledForConfiguration: ${errors[0]}` });
    }
    conn.channels.set(topic, ch);
    scheduleExpiry(conn, ch);
    reply(conn, msg, 'ok', { postgres_changes: pgc.map((p) => ({ ...p, id: bindingId(p) })) });
    if (config.presence && config.presence.enabled) send(conn, ch.joinRef, null, topic, 'presence_state', {});
    if (config.broadcast && config.broadcast.replication_ready) {
      systemMessage(conn, ch, 'system', 'ok', 'Replication connection established');
    }
    if (pgc.length) {
      if (errors.length) systemMessage(conn, ch, 'postgres_changes', 'error', errors.join('; '));
      else if (cfg.rtSubscribeDelayMs) {
        // Fault hook (config rt_subscribe_delay_ms): as on Supabase, where putting the
        // subscription in place takes seconds after the join reply; changes committed
        // meanwhile are not sent.
        ch.pending = true;
        ch.subscribe = () => {
          clearTimeout(ch.subscribeTimer);
          ch.pending = false;
          if (conn.channels.get(topic) === ch) systemMessage(conn, ch, 'postgres_changes', 'ok', 'Subscribed to PostgreSQL');
        };
        ch.subscribeTimer = setTimeout(ch.subscribe, cfg.rtSubscribeDelayMs);
        ch.subscribeTimer.unref();
      } else systemMessage(conn, ch, 'postgres_changes', 'ok', 'Subscribed to PostgreSQL');
    }
    return undefined;
  }

  // ---- change events ------------------------------------------------------------------------------
  const ACTIONS = { I: 'INSERT', U: 'UPDATE', D: 'DELETE' };

  function candidates(change, type) {
    const out = [];
    for (const conn of conns) {
      for (const ch of conn.channels.values()) {
        if (ch.pending) continue; // not subscribed yet (rt_subscribe_delay_ms)
        for (const sub of ch.subs) {
          if (sub.schema !== '*' && sub.schema !== change.schema) continue;
          if (sub.table && sub.table !== '*' && sub.table !== change.table) continue;
          if (sub.event !== '*' && sub.event !== type) continue;
          out.push({ conn, ch, sub });
        }
      }
    }
    return out;
  }

  // Called by the change stream for every decoded row change of a published table, in order.
  async function onChange(change, rawSize) {
    const type = ACTIONS[change.action];
    if (!type) return;
    const cands = candidates(change, type);
    if (!cands.length) return;
    stats.events++;
    const rel = `${JSON.stringify(change.schema)}.${JSON.stringify(change.table)}`;
    const tooBig = rawSize > cfg.maxRecordBytes;

    // Cast the wal2json values to the JSON the client gets (realtime.cast), and read whether the
    // table has RLS, in one round trip.
    const castSql = (p) => `(select coalesce(jsonb_agg(jsonb_build_object('name', x->>'name', 'type', x->>'type',
        'regtype', coalesce((x->>'typeoid')::regtype, (x->>'type')::regtype)::text,
        'value', realtime.cast((x->'value') #>> '{}', coalesce((x->>'typeoid')::regtype, (x->>'type')::regtype)))), '[]')
        from jsonb_array_elements(${p}::jsonb) x)`;
    const r = await db.admin.query(
      `select ${castSql('$1')} as cols, ${castSql('$2')} as old,
              (select relrowsecurity from pg_class where oid = $3::regclass) as rls`,
      [JSON.stringify(change.columns || []), JSON.stringify(change.identity || []), rel]);
    const { cols, old, rls } = r.rows[0];
    const pkNames = new Set((change.pk || []).map((p) => p.name));

    // Filters: every filter column must be present in the new row (or, for DELETE, the old
    // identity) and match with the column's type (realtime.is_visible_through_filters).
    const checks = [];
    cands.forEach((c, i) => {
      c.visible = true;
      const rows = type === 'DELETE' ? [old] : [cols];
      for (const f of c.sub.filters) {
        const col = rows[0].find((x) => x.name === f.column);
        if (!col) {
          c.visible = false;
          break;
        }
        const v = col.value;
        checks.push({ i, op: f.op, type: col.regtype, v1: v === null ? null : (typeof v === 'string' ? v : JSON.stringify(v)), v2: f.value, neg: f.negate });
      }
    });
    if (checks.length) {
      const res = await db.admin.query(
        `select f.i, bool_and(coalesce(realtime.check_filter(f.op, f.type::regtype, f.v1, f.v2, f.neg), false)) as ok
           from jsonb_to_recordset($1::jsonb) as f(i int, op text, type text, v1 text, v2 text, neg bool)
          group by f.i`, [JSON.stringify(checks)]).catch((e) => {
        log(`realtime: filter check failed: ${e.message}`);
        return { rows: checks.map((c) => ({ i: c.i, ok: false })) };
      });
      for (const row of res.rows) if (!row.ok) cands[row.i].visible = false;
    }
    let visible = cands.filter((c) => c.visible);

    // RLS for INSERT/UPDATE: can this subscriber's role, with its claims, select the row now?
    if (rls && type !== 'DELETE' && visible.length) {
      const pk = cols.filter((c) => pkNames.has(c.name));
      const verdict = new Map();
      for (const c of visible) {
        const key = JSON.stringify(c.ch.claims);
        if (!verdict.has(key)) verdict.set(key, await rlsAllows(change, pk, c.ch.claims));
      }
      visible = visible.filter((c) => verdict.get(JSON.stringify(c.ch.claims)));
    }
    if (!visible.length) return;

    // One message per channel and selected-columns group, carrying the ids of its bindings.
    const groups = new Map();
    for (const c of visible) {
      const key = `${c.ch.topic}|${c.sub.select ? c.sub.select.join(',') : ''}`;
      let g = groups.get(key);
      if (!g) {
        g = { conn: c.conn, ch: c.ch, select: c.sub.select, ids: [] };
        groups.set(key, g);
      }
      if (!g.ids.includes(c.sub.id)) g.ids.push(c.sub.id);
    }
    for (const g of groups.values()) {
      const role = g.ch.claims.role;
      const allowed = await columnsFor(change.schema, change.table, role);
      if (!allowed) continue;
      const selectable = new Set(allowed.map((c) => c.name));
      const wanted = (name) => selectable.has(name) && (!g.select || g.select.includes(name) || pkNames.has(name));
      const small = (v) => !tooBig || Buffer.byteLength(JSON.stringify(v)) <= 64;
      const obj = (list, extra) => {
        const o = {};
        for (const c of list) if (wanted(c.name) && small(c.value) && (!extra || extra(c))) o[c.name] = c.value;
        return o;
      };
      const data = {
        schema: change.schema,
        table: change.table,
        commit_timestamp: commitTimestamp(change.timestamp),
        type,
        columns: allowed.filter((c) => wanted(c.name)).map((c) => ({ name: c.name, type: c.type })),
      };
      if (type === 'INSERT' || type === 'UPDATE') {
        // Unchanged TOAST values are absent from the WAL; the server fills them from the old
        // identity only when replica identity is full, so they may be missing here too.
        const merged = [...cols, ...old.filter((o) => !cols.find((c) => c.name === o.name))];
        data.record = obj(merged);
      }
      if (type === 'UPDATE') data.old_record = obj(old);
      if (type === 'DELETE') data.old_record = obj(old, (c) => !rls || pkNames.has(c.name));
      data.errors = tooBig ? ['Error 413: Payload Too Large'] : null;
      send(g.conn, null, null, g.ch.topic, 'postgres_changes', { ids: g.ids, data });
    }
  }

  async function rlsAllows(change, pk, claims) {
    if (!pk.length) return false;
    const client = await db.admin.connect();
    try {
      await client.query('begin');
      await client.query(`select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)`,
        [String(claims.role), JSON.stringify(claims)]);
      const where = pk.map((c, i) => `${JSON.stringify(c.name)} = $${i + 1}::${c.regtype}`).join(' and ');
      const r = await client.query(
        `select exists(select 1 from ${JSON.stringify(change.schema)}.${JSON.stringify(change.table)} where ${where}) as ok`,
        pk.map((c) => (typeof c.value === 'string' ? c.value : JSON.stringify(c.value))));
      await client.query('rollback');
      return r.rows[0].ok;
    } catch (e) {
      await client.query('rollback').catch(() => {});
      if (cfg.debug) log(`realtime: RLS check on ${change.table} failed: ${e.message}`);
      return false; // no privilege, bad claims: the row is not visible to this subscriber
    } finally {
      client.release();
    }
  }

  // ---- housekeeping and fault hooks -----------------------------------------------------------------
  // Phoenix closes a websocket that has received nothing for 60 s.
  const idle = setInterval(() => {
    const now = Date.now();
    for (const conn of conns) if (now - conn.lastSeen > cfg.wsIdleTimeoutMs) conn.ws.terminate();
  }, 1000);
  idle.unref();

  return {
    handleUpgrade,
    onChange,
    busy: () => [...conns].some((c) => c.channels.size > 0),
    // Drop every websocket without a close frame (a network cut, as far as clients can tell).
    dropAll() {
      const n = conns.size;
      for (const conn of [...conns]) {
        conn.ws.terminate();
        closeConn(conn);
      }
      return n;
    },
    // Every websocket goes silent: nothing is read or sent any more, and the TCP connection
    // stays open (a network black hole; only the client's heartbeat can notice). The sockets
    // are closed for good after closeAfterMs.
    silenceAll(closeAfterMs = 120000) {
      const n = conns.size;
      for (const conn of [...conns]) {
        conn.silent = true;
        for (const ch of conn.channels.values()) clearTimeout(ch.expiryTimer);
        conn.channels.clear();
        conns.delete(conn);
        const sock = conn.ws._socket;
        if (sock) sock.pause();
        setTimeout(() => conn.ws.terminate(), closeAfterMs).unref();
      }
      return n;
    },
    // Put every subscription held back by rt_subscribe_delay_ms in place now.
    releaseSubscriptions() {
      let n = 0;
      for (const conn of conns) {
        for (const ch of [...conn.channels.values()]) {
          if (ch.pending) {
            ch.subscribe();
            n++;
          }
        }
      }
      return n;
    },
    status() {
      return {
        connections: conns.size,
        channels: [...conns].reduce((n, c) => n + c.channels.size, 0),
        // Joined, and waiting for rt_subscribe_delay_ms to pass.
        pending_subscriptions: [...conns].reduce((n, c) => n + [...c.channels.values()].filter((ch) => ch.pending).length, 0),
        events: stats.events,
      };
    },
    close() {
      clearInterval(idle);
      for (const conn of [...conns]) conn.ws.terminate();
      wss.close();
    },
  };
}

module.exports = { createRealtime, parseFilters, bindingId };
