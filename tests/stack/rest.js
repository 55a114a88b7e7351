'use strict';
// A PostgREST-compatible subset at /rest/v1/<table>: what supabase-js (postgrest-js) and the
// shelfd C client send. Postgres builds the response JSON (json_agg), as PostgREST does, and
// each request runs in one transaction as the JWT's role so row-level security applies.
//
// Covered: GET/HEAD with select (columns, alias:col, col::type, json paths, embedded to-one and
// to-many resources), filters (eq neq gt gte lt lte like ilike match imatch is isdistinct in cs cd
// ov, not., or=(...)/and=(...)), order, limit, offset; POST (object or array, columns=,
// Prefer missing=default, resolution=merge-duplicates|ignore-duplicates with on_conflict=);
// PATCH and DELETE with filters; Prefer return=minimal|representation|headers-only, count=exact;
// Accept application/vnd.pgrst.object+json; Accept-Profile/Content-Profile; PostgREST errors.
// Not covered: RPC (/rpc/fn), the OpenAPI root, Range headers, CSV, full-text search operators.

const OBJECT_MIME = 'application/vnd.pgrst.object+json';

class HttpError extends Error {
  constructor(status, body, headers) {
    super(body && body.message);
    this.status = status;
    this.body = body;
    this.headers = headers || {};
  }
}

const pgrstError = (status, code, message, details = null, hint = null) =>
  new HttpError(status, { code, details, hint, message });

const qi = (name) => `"${String(name).replace(/"/g, '""')}"`;

// Split on commas that are not inside parentheses or double quotes.
function splitTop(s) {
  const out = [];
  let depth = 0;
  let quoted = false;
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === '\\' && quoted && i + 1 < s.length) {
      cur += ch + s[++i];
      continue;
    }
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === '(') depth++;
    else if (!quoted && ch === ')') depth--;
    if (ch === ',' && depth === 0 && !quoted) {
      out.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  if (cur !== '' || out.length) out.push(cur);
  return out;
}

const unquote = (v) =>
  v.length >= 2 && v[0] === '"' && v[v.length - 1] === '"' ? v.slice(1, -1).replace(/\\(.)/g, '$1') : v;

// `col`, `col->a->>b`: a column reference with optional JSON path. Returns {sql, name}.
function columnExpr(qual, expr) {
  const m = /^([^-]+?)((?:->>?[^-]+)*)$/.exec(expr.trim());
  if (!m) throw pgrstError(400, 'PGRST100', `"failed to parse column" (${expr})`);
  let sql = `${qual}.${qi(m[1])}`;
  let name = m[1];
  const path = m[2].match(/->>?[^-]+/g) || [];
  for (const step of path) {
    const arrow = step.startsWith('->>') ? '->>' : '->';
    const key = step.slice(arrow.length);
    sql += /^\d+$/.test(key) ? `${arrow}${key}` : `${arrow}'${key.replace(/'/g, "''")}'`;
    name = key;
  }
  return { sql, name, base: m[1] };
}

// One filter `[not.]op.value` on a column; params receives the bound values. In a logic tree
// (inTree) a value may be double-quoted, with \ escaping (PostgREST's reserved characters).
function filterSql(colSql, raw, params, inTree) {
  let negate = false;
  let rest = raw;
  if (rest.startsWith('not.')) {
    negate = true;
    rest = rest.slice(4);
  }
  const dot = rest.indexOf('.');
  if (dot < 0) throw pgrstError(400, 'PGRST100', `"failed to parse filter (${raw})"`, 'unexpected end of input');
  let op = rest.slice(0, dot);
  const val = inTree && op !== 'in' ? unquote(rest.slice(dot + 1)) : rest.slice(dot + 1);
  op = op.replace(/\(.*\)$/, ''); // fts language modifiers etc. are not supported; drop them
  const bind = (v) => {
    params.push(v);
    return `$${params.length}`;
  };
  let sql;
  const binOps = { eq: '=', neq: '<>', gt: '>', gte: '>=', lt: '<', lte: '<=', match: '~', imatch: '~*' };
  if (binOps[op]) {
    sql = `${colSql} ${binOps[op]} ${bind(val)}`;
  } else if (op === 'like' || op === 'ilike') {
    sql = `${colSql} ${op} ${bind(val.replace(/\*/g, '%'))}`;
  } else if (op === 'is') {
    const kw = { null: 'NULL', not_null: 'NOT NULL', true: 'TRUE', false: 'FALSE', unknown: 'UNKNOWN' }[val.toLowerCase()];
    if (!kw) throw pgrstError(400, 'PGRST100', `"failed to parse filter (${raw})"`, 'unexpected "' + val + '" expecting null or trilean value (unknown, true, false)');
    sql = `${colSql} IS ${kw}`;
  } else if (op === 'isdistinct') {
    sql = `${colSql} IS DISTINCT FROM ${bind(val)}`;
  } else if (op === 'in') {
    const m = /^\((.*)\)$/s.exec(val);
    if (!m) throw pgrstError(400, 'PGRST100', `"failed to parse filter (${raw})"`, 'unexpected end of input expecting "("');
    const items = m[1] === '' ? [] : splitTop(m[1]).map((s) => unquote(s.trim()));
    sql = `${colSql} = ANY(${bind(items)})`;
  } else if (op === 'cs' || op === 'cd' || op === 'ov') {
    let v = val;
    // ov and range/array literals may be written with parentheses, as PostgREST accepts
    if (op === 'ov' && /^\(.*\)$/s.test(v)) v = `{${v.slice(1, -1)}}`;
    sql = `${colSql} ${{ cs: '@>', cd: '<@', ov: '&&' }[op]} ${bind(v)}`;
  } else {
    throw pgrstError(400, 'PGRST100', `"failed to parse filter (${raw})"`, `unknown operator "${op}"`);
  }
  return negate ? `NOT (${sql})` : sql;
}

// `or=(a.eq.1,and(b.gt.2,c.is.null))`: a logic tree of `col.op.value` items.
function logicSql(qual, kind, body, negate, params) {
  const m = /^\((.*)\)$/s.exec(body);
  if (!m) throw pgrstError(400, 'PGRST100', `"failed to parse logic tree (${body})"`, 'unexpected end of input expecting "("');
  const parts = splitTop(m[1]).map((item) => {
    const lm = /^(not\.)?(and|or)(\(.*\))$/s.exec(item);
    if (lm) return logicSql(qual, lm[2], lm[3], !!lm[1], params);
    const dot = item.indexOf('.');
    if (dot < 0) throw pgrstError(400, 'PGRST100', `"failed to parse logic tree (${body})"`);
    return filterSql(columnExpr(qual, item.slice(0, dot)).sql, item.slice(dot + 1), params, true);
  });
  const sql = `(${parts.join(kind === 'or' ? ' OR ' : ' AND ')})`;
  return negate ? `NOT ${sql}` : sql;
}

const RESERVED = new Set(['select', 'order', 'limit', 'offset', 'on_conflict', 'columns']);

function whereSql(qual, query, params) {
  const conds = [];
  for (const [key, value] of query) {
    if (RESERVED.has(key)) continue;
    const lm = /^(not\.)?(and|or)$/.exec(key);
    if (lm) {
      conds.push(logicSql(qual, lm[2], value, !!lm[1], params));
      continue;
    }
    if (key.includes('.') && !key.includes('->')) {
      throw pgrstError(400, 'PGRST100', `"filters on embedded resources are not supported by the test stack (${key})"`);
    }
    conds.push(filterSql(columnExpr(qual, key).sql, value, params));
  }
  return conds.length ? ` WHERE ${conds.join(' AND ')}` : '';
}

function orderSql(qual, order) {
  if (!order) return '';
  const terms = splitTop(order).map((term) => {
    const parts = term.split('.');
    let dir = '';
    let nulls = '';
    while (parts.length > 1 && /^(asc|desc|nullsfirst|nullslast)$/.test(parts[parts.length - 1])) {
      const p = parts.pop();
      if (p === 'asc' || p === 'desc') dir = ` ${p.toUpperCase()}`;
      else nulls = p === 'nullsfirst' ? ' NULLS FIRST' : ' NULLS LAST';
    }
    return columnExpr(qual, parts.join('.')).sql + dir + nulls;
  });
  return ` ORDER BY ${terms.join(', ')}`;
}

function parseSelect(s) {
  const items = [];
  for (const raw of splitTop((s || '*').replace(/\s+(?=([^"]*"[^"]*")*[^"]*$)/g, ''))) {
    if (raw === '') continue;
    const em = /^(?:([^:(]+):)?([^(!:]+)(?:!([^(]+))?\((.*)\)$/s.exec(raw);
    if (em) {
      items.push({ kind: 'embed', alias: em[1] || em[2], rel: em[2], hint: em[3], inner: parseSelect(em[4] || '*') });
      continue;
    }
    const cm = /^(?:([^:]+):(?!:))?(.+?)(?:::([\w ]+(?:\[\])?))?$/s.exec(raw);
    if (raw === '*') items.push({ kind: 'star' });
    else items.push({ kind: 'col', alias: cm[1], expr: cm[2], cast: cm[3] });
  }
  return items;
}

function createRest({ db, cfg }) {
  let aliasSeq = 0;

  async function needTable(name) {
    const t = await db.table(name);
    if (!t) {
      throw pgrstError(404, 'PGRST205', `Could not find the table 'public.${name}' in the schema cache`);
    }
    return t;
  }

  // The select list for `meta` rows qualified by `qual`, with embedded resources as correlated
  // subqueries (to-one: a JSON object or null, to-many: a JSON array), as PostgREST builds them.
  async function selectList(meta, qual, items) {
    const out = [];
    for (const it of items) {
      if (it.kind === 'star') {
        out.push(`${qual}.*`);
      } else if (it.kind === 'col') {
        const c = columnExpr(qual, it.expr);
        out.push(`${c.sql}${it.cast ? `::${it.cast}` : ''} AS ${qi(it.alias || c.name)}`);
      } else {
        const rel = await db.table(it.rel);
        const notFound = pgrstError(400, 'PGRST200',
          `Could not find a relationship between '${meta.name}' and '${it.rel}' in the schema cache`, null,
          'Perhaps you meant a different relationship or check the spelling.');
        if (!rel) throw notFound;
        const hintOk = (fk) => !it.hint || it.hint === fk.name || fk.cols.includes(it.hint) || it.hint === 'inner' || it.hint === 'left';
        const alias = qi(`pgrst_${++aliasSeq % 100000}_${it.rel}`);
        const toOne = meta.fks.find((fk) => fk.table === rel.name && hintOk(fk));
        const toMany = rel.fks.find((fk) => fk.table === meta.name && hintOk(fk));
        const inner = (await selectList(rel, alias, it.inner)).join(', ');
        if (toOne) {
          const on = toOne.cols.map((c, i) => `${alias}.${qi(toOne.refcols[i])} = ${qual}.${qi(c)}`).join(' AND ');
          out.push(`(SELECT row_to_json(pgrst_x) FROM (SELECT ${inner} FROM "public".${qi(rel.name)} AS ${alias} WHERE ${on} LIMIT 1) pgrst_x) AS ${qi(it.alias)}`);
        } else if (toMany) {
          const on = toMany.cols.map((c, i) => `${alias}.${qi(c)} = ${qual}.${qi(toMany.refcols[i])}`).join(' AND ');
          out.push(`(SELECT coalesce(json_agg(pgrst_x), '[]') FROM (SELECT ${inner} FROM "public".${qi(rel.name)} AS ${alias} WHERE ${on}) pgrst_x) AS ${qi(it.alias)}`);
        } else {
          throw notFound;
        }
      }
    }
    return out;
  }

  function parsePrefer(h) {
    const p = {};
    for (const part of String(h || '').split(',')) {
      const [k, v] = part.trim().split('=');
      if (k) p[k] = v === undefined ? true : v;
    }
    return p;
  }

  // Handles one /rest/v1/... request. auth = {role, claims}. Returns {status, headers, body}.
  async function handle(req, url, rawBody, auth) {
    const method = req.method;
    const name = decodeURIComponent(url.pathname.replace(/^\/rest\/v1\/?/, ''));
    if (!name) {
      throw pgrstError(404, 'PGRST125', `Invalid path specified in request URL`);
    }
    if (name.startsWith('rpc/')) {
      throw pgrstError(404, 'PGRST202', `Could not find the function public.${name.slice(4)} in the schema cache (RPC is not part of the test stack)`);
    }
    const profile = req.headers[method === 'GET' || method === 'HEAD' ? 'accept-profile' : 'content-profile'];
    if (profile && profile !== 'public') {
      throw pgrstError(406, 'PGRST106', 'Invalid schema: ' + profile, null, 'Only the following schemas are exposed: public');
    }
    const meta = await needTable(name);
    const query = [...url.searchParams.entries()];
    const q = new Map(query);
    const prefer = parsePrefer(req.headers.prefer);
    const single = String(req.headers.accept || '').includes(OBJECT_MIME);
    const applied = [];
    const params = [];
    const tq = `"public".${qi(name)}`;
    const selectItems = parseSelect(q.get('select'));

    let sql;
    let countSql = null;
    let status;
    let wantBody;

    if (method === 'GET' || method === 'HEAD') {
      const where = whereSql(tq, query, params);
      let tail = orderSql(tq, q.get('order'));
      const limit = q.get('limit');
      const offset = q.get('offset');
      const int = (v, what) => {
        if (!/^\d+$/.test(v)) throw pgrstError(400, 'PGRST100', `"failed to parse ${what} parameter (${v})"`);
        return v;
      };
      // PostgREST's db-max-rows (Supabase's "Max rows", 1000 on a new project) caps every read.
      let cap = limit !== undefined ? Number(int(limit, 'limit')) : null;
      if (cfg.maxRows > 0 && (cap === null || cap > cfg.maxRows)) cap = cfg.maxRows;
      if (cap !== null) tail += ` LIMIT ${cap}`;
      if (offset !== undefined) tail += ` OFFSET ${int(offset, 'offset')}`;
      const cols = (await selectList(meta, tq, selectItems)).join(', ');
      sql = `SELECT coalesce(json_agg(pgrst_s), '[]')::text AS body, (json_agg(pgrst_s)->0)::text AS one, count(*)::int AS n FROM (SELECT ${cols} FROM ${tq}${where}${tail}) pgrst_s`;
      if (prefer.count === 'exact') {
        countSql = `SELECT count(*)::int AS total FROM ${tq}${where}`;
        applied.push('count=exact');
      }
      status = 200;
      wantBody = method === 'GET';
    } else if (method === 'POST' || method === 'PATCH' || method === 'DELETE') {
      let body = null;
      if (method !== 'DELETE') {
        try {
          body = rawBody.length ? JSON.parse(rawBody.toString('utf8')) : null;
        } catch (e) {
          throw pgrstError(400, 'PGRST102', 'Empty or invalid json', null, null);
        }
        if (body === null || typeof body !== 'object') throw pgrstError(400, 'PGRST102', 'Empty or invalid json');
      }
      const ret = prefer.return || 'minimal';
      if (prefer.return) applied.push(`return=${prefer.return}`);
      wantBody = ret === 'representation';
      const checkCols = (cols) => {
        for (const c of cols) {
          if (!meta.columns.has(c)) {
            throw pgrstError(400, 'PGRST204', `Could not find the '${c}' column of '${name}' in the schema cache`);
          }
        }
      };
      const pop = (p) => `(jsonb_populate_record(NULL::${tq}, ${p}::jsonb))`;
      let dml;
      if (method === 'POST') {
        const rows = Array.isArray(body) ? body : [body];
        let cols;
        if (q.has('columns')) cols = splitTop(q.get('columns')).map((c) => unquote(c.trim()));
        else cols = [...new Set(rows.flatMap((r) => Object.keys(r || {})))];
        checkCols(cols);
        const missingDefault = prefer.missing === 'default';
        if (missingDefault) applied.push('missing=default');
        if (rows.length === 0) {
          dml = `INSERT INTO ${tq} SELECT * FROM ${tq} WHERE false`;
        } else if (cols.length === 0) {
          dml = `INSERT INTO ${tq} SELECT FROM generate_series(1, ${rows.length})`;
        } else {
          const values = rows.map((r) => {
            params.push(JSON.stringify(r));
            const p = `$${params.length}`;
            return `(${cols.map((c) => (missingDefault && !(c in r) ? 'DEFAULT' : `${pop(p)}.${qi(c)}`)).join(', ')})`;
          });
          dml = `INSERT INTO ${tq} (${cols.map(qi).join(', ')}) VALUES ${values.join(', ')}`;
        }
        const res = prefer.resolution;
        if (res === 'merge-duplicates' || res === 'ignore-duplicates') {
          applied.push(`resolution=${res}`);
          const target = q.has('on_conflict') ? splitTop(q.get('on_conflict')).map((c) => c.trim()) : meta.pk;
          if (!target.length) throw pgrstError(400, 'PGRST100', 'on_conflict needs a primary key or columns');
          const upd = cols.filter((c) => !target.includes(c));
          dml += ` ON CONFLICT (${target.map(qi).join(', ')}) ` +
            (res === 'merge-duplicates' && upd.length
              ? `DO UPDATE SET ${upd.map((c) => `${qi(c)} = EXCLUDED.${qi(c)}`).join(', ')}`
              : 'DO NOTHING');
        }
        status = 201;
      } else if (method === 'PATCH') {
        if (Array.isArray(body)) throw pgrstError(400, 'PGRST102', 'Expected a single JSON object for an update');
        const cols = Object.keys(body);
        checkCols(cols);
        params.push(JSON.stringify(body));
        const p = `$${params.length}`;
        const where = whereSql(tq, query, params);
        dml = cols.length
          ? `UPDATE ${tq} SET ${cols.map((c) => `${qi(c)} = ${pop(p)}.${qi(c)}`).join(', ')}${where}`
          : `SELECT * FROM ${tq} WHERE false`;
        status = wantBody ? 200 : 204;
      } else {
        dml = `DELETE FROM ${tq}${whereSql(tq, query, params)}`;
        status = wantBody ? 200 : 204;
      }
      const returning = dml.startsWith('SELECT') ? '' : ` RETURNING ${tq}.*`;
      if (wantBody || single) {
        const cols = (await selectList(meta, '"pgrst_source"', selectItems)).join(', ');
        sql = `WITH pgrst_source AS (${dml}${returning}) SELECT coalesce(json_agg(pgrst_s), '[]')::text AS body, (json_agg(pgrst_s)->0)::text AS one, count(*)::int AS n FROM (SELECT ${cols} FROM pgrst_source) pgrst_s`;
      } else {
        sql = `WITH pgrst_source AS (${dml}${returning ? ' RETURNING 1' : ''}) SELECT '' AS body, NULL AS one, count(*)::int AS n FROM pgrst_source`;
      }
      if (status === 201 && !wantBody) status = 201;
    } else {
      throw pgrstError(405, 'PGRST117', `Unsupported HTTP method: ${method}`);
    }

    const result = await db.asRole(auth.role, auth.claims, { method, path: url.pathname, headers: req.headers }, async (client) => {
      const r = (await client.query(sql, params)).rows[0];
      const total = countSql ? (await client.query(countSql, params)).rows[0].total : null;
      // .single(): anything but exactly one row is an error and nothing is changed (PostgREST
      // rolls the transaction back).
      if (single && r.n !== 1) {
        return { rollback: true, result: { singleError: r.n } };
      }
      return { result: { ...r, total } };
    });
    if (result.singleError !== undefined) {
      throw pgrstError(406, 'PGRST116', 'JSON object requested, multiple (or no) rows returned',
        `The result contains ${result.singleError} rows`);
    }

    const headers = { 'Content-Type': `${single ? OBJECT_MIME : 'application/json'}; charset=utf-8` };
    const n = result.n;
    if (method === 'GET' || method === 'HEAD') {
      const off = Number(q.get('offset') || 0);
      const total = result.total === null ? '*' : String(result.total);
      headers['Content-Range'] = n > 0 ? `${off}-${off + n - 1}/${total}` : `*/${total}`;
      if (result.total !== null && n < result.total && (n > 0 || off > 0)) status = 206;
    } else {
      headers['Content-Range'] = method === 'POST' ? `*/*` : (n > 0 ? `0-${n - 1}/*` : '*/*');
    }
    if (applied.length) headers['Preference-Applied'] = applied.join(', ');
    let body = '';
    if (wantBody) body = single ? result.one : result.body;
    else if (single && method !== 'DELETE' && method !== 'PATCH' && method !== 'POST') body = result.one;
    if (!wantBody && method !== 'GET') headers['Content-Type'] = undefined;
    return { status, headers, body };
  }

  return { handle };
}

module.exports = { createRest, HttpError, pgrstError, OBJECT_MIME };
