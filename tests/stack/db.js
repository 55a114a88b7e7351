'use strict';
// PostgreSQL access for the gateway: connection pools, the schema cache PostgREST keeps, running
// a request as the JWT's role, and PostgREST's mapping of database errors to HTTP statuses.
const pg = require('pg');

// timestamptz/json values are passed through as text: Postgres builds the response JSON itself
// (json_agg), as PostgREST does, so node-side type parsing is never wanted.
pg.types.setTypeParser(1184, (v) => v);
pg.types.setTypeParser(1114, (v) => v);

function createDb({ host, port, database }) {
  const base = { host, port, database, application_name: 'shelf-stack-gateway' };
  // PostgREST connects as `authenticator` and switches role per request; RLS applies.
  const api = new pg.Pool({ ...base, user: 'authenticator', max: 8, idleTimeoutMillis: 10000 });
  // Auth and Realtime work as the database owner, as GoTrue (supabase_auth_admin) and the
  // Realtime server (supabase_admin) do.
  const admin = new pg.Pool({ ...base, user: 'postgres', max: 6, idleTimeoutMillis: 10000 });
  // A broken server connection must not crash the gateway; the next checkout reconnects. The
  // pools only listen for errors of idle clients: a client checked out while PostgreSQL
  // restarts would throw an unhandled 'error' (and end the gateway) without its own listener.
  // Its next query fails instead, and the pool drops it on release.
  for (const pool of [api, admin]) {
    pool.on('error', () => {});
    pool.on('connect', (client) => client.on('error', () => {}));
  }

  const cache = { tables: null, loadedAt: 0 };

  // Tables and views of schema public with columns, primary keys and foreign keys: what
  // PostgREST reads into its schema cache to validate requests and resolve embeddings.
  async function loadSchema() {
    const { rows } = await admin.query(`
      select c.relname as table, c.relkind as kind,
        (select coalesce(json_agg(json_build_object(
            'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod), 'typname', t.typname,
            'notnull', a.attnotnull, 'hasdefault', a.atthasdef) order by a.attnum), '[]')
           from pg_attribute a join pg_type t on t.oid = a.atttypid
          where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped) as columns,
        (select coalesce(json_agg(a.attname order by array_position(k.conkey, a.attnum)), '[]')
           from pg_constraint k join pg_attribute a on a.attrelid = k.conrelid and a.attnum = any(k.conkey)
          where k.conrelid = c.oid and k.contype = 'p') as pk,
        (select coalesce(json_agg(json_build_object(
            'name', k.conname, 'table', fc.relname,
            'cols', (select json_agg(a.attname order by i) from unnest(k.conkey) with ordinality u(n, i)
                       join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n),
            'refcols', (select json_agg(a.attname order by i) from unnest(k.confkey) with ordinality u(n, i)
                       join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.n))), '[]')
           from pg_constraint k join pg_class fc on fc.oid = k.confrelid
           join pg_namespace fn on fn.oid = fc.relnamespace
          where k.conrelid = c.oid and k.contype = 'f' and fn.nspname = 'public') as fks
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'v', 'p', 'm', 'f')`);
    const tables = new Map();
    for (const r of rows) {
      tables.set(r.table, {
        name: r.table,
        columns: new Map(r.columns.map((c) => [c.name, c])),
        pk: r.pk,
        fks: r.fks,
      });
    }
    cache.tables = tables;
    cache.loadedAt = Date.now();
    return tables;
  }

  // PostgREST reloads its cache on a NOTIFY or restart; here an unknown name triggers a reload
  // (at most every 200 ms), so tables created after the gateway started are found.
  async function table(name) {
    if (!cache.tables) await loadSchema();
    let t = cache.tables.get(name);
    if (!t && Date.now() - cache.loadedAt > 200) {
      await loadSchema();
      t = cache.tables.get(name);
    }
    return t || null;
  }

  // Runs fn(client) in one transaction as `role` with the request's claims, the way PostgREST
  // does: set_config('role', ...) is `set local role`, and request.jwt.claims feeds auth.uid().
  // fn returns {result, rollback}; an exception rolls back and propagates.
  async function asRole(role, claims, req, fn) {
    const client = await api.connect();
    let broken = false;
    try {
      const esc = (v) => client.escapeLiteral(String(v));
      await client.query(
        'begin isolation level read committed; select ' +
          `set_config('role', ${esc(role)}, true), ` +
          `set_config('request.jwt.claims', ${esc(JSON.stringify(claims || {}))}, true), ` +
          `set_config('request.method', ${esc(req.method)}, true), ` +
          `set_config('request.path', ${esc(req.path)}, true), ` +
          `set_config('request.headers', ${esc(JSON.stringify(req.headers || {}))}, true)`);
      const out = await fn(client);
      await client.query(out && out.rollback ? 'rollback' : 'commit');
      return out ? out.result : undefined;
    } catch (err) {
      try {
        await client.query('rollback');
      } catch (_) {
        broken = true;
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  async function end() {
    await Promise.allSettled([api.end(), admin.end()]);
  }

  return { api, admin, loadSchema, table, asRole, end };
}

// PostgREST's status for a database error (src/PostgREST/Error.hs): by SQLSTATE class, with
// 42501 (insufficient privilege, also RLS check violations) 401 for anon and 403 otherwise.
function pgStatus(code, role) {
  if (!code) return 500;
  if (code === '42501') return role === 'anon' ? 401 : 403;
  const exact = { '23503': 409, '23505': 409, '25006': 405, '42883': 404, '42P01': 404, P0001: 400, '42P17': 500 };
  if (exact[code]) return exact[code];
  const cls = code.slice(0, 2);
  const byClass = {
    '08': 503, '09': 500, '0L': 403, '0P': 403, '25': 500, '28': 403, '2D': 500, '38': 500, '39': 500,
    '3B': 500, '40': 500, '53': 503, '54': 500, '55': 500, '57': 500, '58': 500, F0: 500, HV: 500,
    P0: 500, XX: 500,
  };
  return byClass[cls] || 400;
}

// PostgREST's error body for a database error: all four keys, null when absent.
function pgErrorBody(err) {
  return {
    code: err.code || null,
    details: err.detail || null,
    hint: err.hint || null,
    message: err.message,
  };
}

module.exports = { createDb, pgStatus, pgErrorBody };
