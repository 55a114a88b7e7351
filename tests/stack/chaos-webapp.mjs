// The web app's side of the chaos run (tests/nvim/stack_chaos.lua): signs in
// with the official supabase-js client, as prompt-builder does, and does random
// creates, updates, moves and deletes of prompts, context blocks and folders
// while faults are injected. A failed write is tried again the way a person
// would (until it gets a definite answer). It keeps what it expects of every
// row it wrote, then, once told to, refetches its whole library and writes a
// report; the Lua side compares both with the database.
//
// Usage: node chaos-webapp.mjs ENV_FILE SEED SECONDS DIR
//   DIR/web-settled   written once its writes have stopped and settled
//   DIR/web-refetch   it waits for this file, then refetches everything
//   DIR/web-report.json  the report (ops, expectations, its fetched view)
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import fs from 'node:fs';
import crypto from 'node:crypto';

const [envFile, seedArg, secondsArg, dir] = process.argv.slice(2);
if (!dir) {
  process.stderr.write('usage: node chaos-webapp.mjs ENV_FILE SEED SECONDS DIR\n');
  process.exit(2);
}
const env = {};
for (const line of fs.readFileSync(envFile, 'utf8').split('\n')) {
  const m = /^export ([A-Z_0-9]+)='(.*)'$/.exec(line.trim());
  if (m) env[m[1]] = m[2];
}

// A small seeded generator (mulberry32), so a run can be repeated.
let seed = Number(seedArg) >>> 0;
function rnd() {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rnd() * a.length)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (m) => process.stderr.write(`web: ${m}\n`);

const TABLES = { prompt: 'prompts', block: 'context_blocks', prompts: 'prompt_projects', datasets: 'dataset_projects' };
const FOLDER_OF = { prompt: 'prompt_projects', block: 'dataset_projects', prompts: 'prompt_projects', datasets: 'dataset_projects' };

// Each request gives up after 8 s: a browser tab does not wait forever either.
const supabase = createClient(env.SHELF_SUPABASE_URL, env.SHELF_SUPABASE_ANON_KEY, {
  auth: { persistSession: false, autoRefreshToken: false },
  realtime: { transport: WebSocket },
  global: { fetch: (url, opts = {}) => fetch(url, { ...opts, signal: AbortSignal.timeout(8000) }) },
});

const ops = { create: 0, update: 0, move: 0, delete: 0, delete_foreign: 0, sign_in: 0, failed_attempts: 0, retries: 0 };
const items = {};        // id -> { kind, table, marker, fields, state: live|deleted|gone, containers: [] }
const markers = {};      // marker -> [ids inserted]
const foreignDeletes = []; // ids of the other writer's rows we tried to delete
let userId = null;
let nextMarker = 1;

async function signIn() {
  for (;;) {
    ops.sign_in++;
    const { data, error } = await supabase.auth.signInWithPassword({ email: 'ada@example.com', password: 'ada-password' });
    if (!error && data.session) {
      userId = data.user.id;
      return;
    }
    await sleep(300 + rnd() * 700);
  }
}

// The session supabase-js will use, or a fresh sign-in when it lost it (an
// auth fault can make auth-js drop the session, as it does in a browser).
async function ensureSession() {
  const { data } = await supabase.auth.getSession().catch(() => ({ data: {} }));
  if (!data || !data.session) await signIn();
}

// Run one request until it gives a definite answer: 2xx, or an error the
// server means (not 5xx/429, not a network failure, not an auth problem).
// Returns { data, error, ambiguous } where ambiguous says an earlier attempt
// may have reached the database.
async function attempt(fn) {
  let ambiguous = false;
  for (let i = 0; ; i++) {
    await ensureSession();
    let res;
    try {
      res = await fn();
    } catch (e) {
      res = { error: { message: String(e && e.message), status: 0 } };
    }
    const e = res.error;
    if (!e) return { data: res.data, ambiguous };
    const status = res.status || e.status || 0;
    const code = e.code || '';
    const transient = status === 0 || status >= 500 || status === 429 || status === 401 ||
      code === 'PGRST301' || code === 'PGRST303' || code === '42501' || /fetch failed|abort|timeout|network|ECONN|socket/i.test(e.message || '');
    if (!transient) return { error: e, ambiguous };
    ops.failed_attempts++;
    if (status === 0 || status === 504 || /abort|timeout|socket/i.test(e.message || '')) ambiguous = true;
    if (status === 401 || code === 'PGRST301' || code === 'PGRST303' || code === '42501') {
      await supabase.auth.refreshSession().catch(() => {});
      const { data } = await supabase.auth.getSession().catch(() => ({ data: {} }));
      if (!data || !data.session) await signIn();
    }
    ops.retries++;
    await sleep(Math.min(3000, 200 * 2 ** Math.min(i, 4)) * (0.5 + rnd()));
  }
}

function ownLive(pred) {
  return Object.entries(items).filter(([, it]) => it.state === 'live' && (!pred || pred(it)));
}

async function folderIds(table) {
  const r = await attempt(() => supabase.from(table).select('id'));
  return r.error ? [] : r.data.map((x) => x.id);
}

function newFields(kind, marker, v) {
  if (kind === 'prompts' || kind === 'datasets') return { name: `${marker} v${v}` };
  const f = { title: `${marker} v${v}`, content: `${marker} content v${v} ${crypto.randomBytes(6).toString('hex')}`, tags: [`t${v % 3}`] };
  return f;
}

async function doCreate() {
  const kind = pick(['prompt', 'prompt', 'block', 'block', 'prompts', 'datasets']);
  const table = TABLES[kind];
  const marker = `W${nextMarker++}`;
  const fields = newFields(kind, marker, 0);
  // Sometimes inside a folder (either writer's).
  const folderCol = kind === 'prompts' || kind === 'datasets' ? 'parent_id' : 'project_id';
  if (rnd() < 0.5) {
    const ids = await folderIds(FOLDER_OF[kind]);
    if (ids.length) fields[folderCol] = pick(ids);
  }
  if (!(folderCol in fields)) fields[folderCol] = null;
  // The id is made here, so a request retried after a lost answer cannot
  // insert the row twice (upsert, ignoring a duplicate id).
  const id = crypto.randomUUID();
  markers[marker] = [id];
  ops.create++;
  let r = await attempt(() => supabase.from(table).upsert({ id, user_id: userId, ...fields }, { onConflict: 'id', ignoreDuplicates: true }).select());
  if (r.error && r.error.code === '23503') {
    // The folder went away meanwhile: put it at the top instead.
    fields[folderCol] = null;
    r = await attempt(() => supabase.from(table).upsert({ id, user_id: userId, ...fields }, { onConflict: 'id', ignoreDuplicates: true }).select());
  }
  if (r.error) {
    log(`create ${marker} failed for good: ${r.error.message}`);
    items[id] = { kind, table, marker, fields, state: 'unknown', containers: [fields[folderCol]] };
    return;
  }
  items[id] = { kind, table, marker, fields, state: 'live', containers: [fields[folderCol]], v: 0 };
}

async function doUpdate(move) {
  const own = ownLive();
  if (!own.length) return doCreate();
  const [id, it] = pick(own);
  const folder = it.kind === 'prompts' || it.kind === 'datasets';
  const col = folder ? 'parent_id' : 'project_id';
  const change = {};
  if (move) {
    let targets = await folderIds(FOLDER_OF[it.kind]);
    // No folder inside itself: only top level, or folders that are not ours
    // and not this one (the other writer never moves folders under ours).
    if (folder) targets = targets.filter((t) => t !== id && !isOwnDescendant(t, id));
    change[col] = targets.length && rnd() < 0.8 ? pick(targets) : null;
    it.containers.push(change[col]);
    ops.move++;
  } else {
    const v = (it.v || 0) + 1;
    Object.assign(change, newFields(it.kind, it.marker, v));
    it.pendingV = v;
    ops.update++;
  }
  // As the web app does, the client sets updated_at (the tables have no
  // trigger for it); shelfd's refresh compares these stamps.
  change.updated_at = new Date().toISOString();
  const r = await attempt(() => supabase.from(it.table).update(change).eq('id', id).select());
  if (r.error) {
    // 23503: the folder went away; nothing changed (if no earlier attempt landed).
    if (!r.ambiguous && move) it.containers.pop();
    if (r.ambiguous) it.uncertain = true;
    return;
  }
  if (!r.data.length) {
    it.state = 'gone'; // deleted by the other writer, or with its folder
    return;
  }
  delete change.updated_at;
  Object.assign(it.fields, change);
  if (!move) it.v = it.pendingV;
  if (move) it.containers = [change[col]];
  it.uncertain = false;
}

// Our folder `t` lies (maybe deeply) inside our folder `id`.
function isOwnDescendant(t, id) {
  let cur = items[t];
  for (let n = 0; cur && n < 100; n++) {
    const p = cur.fields.parent_id;
    if (!p) return false;
    if (p === id) return true;
    cur = items[p];
  }
  return cur !== undefined;
}

async function doDelete() {
  const own = ownLive();
  if (!own.length) return doCreate();
  const [id, it] = pick(own);
  ops.delete++;
  const r = await attempt(() => supabase.from(it.table).delete().eq('id', id).select());
  if (r.error) return;
  it.state = 'deleted';
}

// Now and then delete a row of the other writer, as a person in the web app
// would clean up something made in the editor.
async function doDeleteForeign() {
  const table = pick(Object.values(TABLES));
  const r = await attempt(() => supabase.from(table).select('id,title:' + (table.endsWith('projects') ? 'name' : 'title')));
  if (r.error) return;
  const theirs = r.data.filter((x) => x.title && x.title.startsWith('L'));
  if (!theirs.length) return;
  const row = pick(theirs);
  foreignDeletes.push(row.id);
  ops.delete_foreign++;
  await attempt(() => supabase.from(table).delete().eq('id', row.id));
}

async function main() {
  await signIn();
  const until = Date.now() + Number(secondsArg) * 1000;
  while (Date.now() < until) {
    const x = rnd();
    if (x < 0.3) await doCreate();
    else if (x < 0.6) await doUpdate(false);
    else if (x < 0.8) await doUpdate(true);
    else if (x < 0.95) await doDelete();
    else await doDeleteForeign();
    await sleep(50 + rnd() * 250);
  }
  fs.writeFileSync(`${dir}/web-settled`, `${Date.now()}\n`);
  while (!fs.existsSync(`${dir}/web-refetch`)) await sleep(50);
  // The web app's own view, refetched once the faults stopped.
  const t0 = Date.now();
  const view = {};
  for (const table of new Set(Object.values(TABLES))) {
    const cols = table.endsWith('projects') ? 'id,name,parent_id' : 'id,title,content,tags,project_id';
    for (;;) {
      const r = await attempt(() => supabase.from(table).select(cols));
      if (!r.error) {
        view[table] = r.data;
        break;
      }
      await sleep(500);
    }
  }
  const report = { ops, items, markers, foreign_deletes: foreignDeletes, view, refetch_ms: Date.now() - t0, user_id: userId };
  fs.writeFileSync(`${dir}/web-report.json.tmp`, JSON.stringify(report));
  fs.renameSync(`${dir}/web-report.json.tmp`, `${dir}/web-report.json`);
  process.exit(0);
}

main().catch((e) => {
  log(`failed: ${e.stack || e.message}`);
  process.exit(1);
});
