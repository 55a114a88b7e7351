// The stack's own test: the official @supabase/supabase-js client (pinned in package.json)
// against the local stack. If the official client disagrees with the stack, the stack is wrong.
//
// Starts a stack in a temp folder and stops it at the end, or uses a running one when
// STACK_ENV names its env file (then it is left running). Run: node --test --test-force-exit
// selftest.mjs (force-exit: supabase-js leaves ~10 s of internal timers behind after the last
// request, which would only delay the exit).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { Stack, sleep, noLock } from './selftest-support.mjs';

const require = createRequire(import.meta.url);
const { createClient } = require('@supabase/supabase-js');
const WebSocket = require('ws');
const jwt = require('./jwt.js');

const HERE = dirname(fileURLToPath(import.meta.url));
const stack = new Stack();
let env = {};
let sql; // pg client as postgres: "changes made elsewhere" (SQL editor, another service)
const A = { email: 'alice@example.com', password: 'alice-password' };
const B = { email: 'bob@example.com', password: 'bob-password' };

function client() {
  return stack.client(env.SHELF_SUPABASE_ANON_KEY);
}

const admin = (path, body, method) => stack.admin(path, body, method);

// Wait until list has an element matching pred (events arrive asynchronously).
async function waitFor(list, pred, what, ms = 4000) {
  const t0 = Date.now();
  for (;;) {
    const hit = list.find(pred);
    if (hit) return hit;
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}; got ${JSON.stringify(list).slice(0, 600)}`);
    await sleep(5);
  }
}

function subscribe(channel) {
  return new Promise((resolve, reject) => {
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') resolve(channel);
      else if (status !== 'CLOSED') reject(new Error(`${status}: ${err && err.message}`));
    });
  });
}

// A raw Phoenix client, to check frames exactly as a C client sees them.
async function rawSocket(vsn, token = env.SHELF_SUPABASE_ANON_KEY) {
  const url = `${env.SHELF_SUPABASE_URL.replace('http', 'ws')}/realtime/v1/websocket?apikey=${token}&vsn=${vsn}`;
  const ws = new WebSocket(url);
  const frames = [];
  ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
  await new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); });
  const closed = new Promise((res) => ws.once('close', (code) => res(code)));
  return { ws, frames, closed };
}

const grant = (body) => fetch(`${env.SHELF_SUPABASE_URL}/auth/v1/token?grant_type=refresh_token`, {
  method: 'POST', headers: { apikey: env.SHELF_SUPABASE_ANON_KEY, 'Content-Type': 'application/json' }, body: JSON.stringify(body),
});

// Leave every channel while the server still answers, then close the sockets, so that no
// realtime-js reconnect or rejoin timer keeps the process alive.
const closeClients = () => stack.closeClients();

let alice; let bob; let aliceId; let bobId;

before(async () => {
  await stack.start();
  ({ env, sql } = stack);
  await sql.query('delete from auth.users where email = any($1)', [[A.email, B.email]]);
});

after(() => stack.stop());

test('auth: admin API creates a user, signUp auto-confirms, password grant, getUser', async () => {
  const service = createClient(env.SHELF_SUPABASE_URL, env.SERVICE_ROLE_KEY, { auth: { persistSession: false, autoRefreshToken: false, lock: noLock }, realtime: { transport: WebSocket } });
  const created = await service.auth.admin.createUser({ email: A.email, password: A.password, email_confirm: true });
  assert.equal(created.error, null);
  aliceId = created.data.user.id;
  const dup = await service.auth.admin.createUser({ email: A.email, password: A.password });
  assert.equal(dup.error.status, 422);
  assert.equal(dup.error.code, 'email_exists');

  bob = client();
  const up = await bob.auth.signUp({ email: B.email, password: B.password });
  assert.equal(up.error, null);
  assert.ok(up.data.session.access_token);
  bobId = up.data.user.id;

  alice = client();
  const bad = await alice.auth.signInWithPassword({ email: A.email, password: 'wrong' });
  assert.equal(bad.error.status, 400);
  assert.equal(bad.error.code, 'invalid_credentials');
  assert.equal(bad.error.message, 'Invalid login credentials');
  const weak = await client().auth.signUp({ email: 'weak@example.com', password: '123' });
  assert.equal(weak.error.code, 'weak_password');

  const ok = await alice.auth.signInWithPassword(A);
  assert.equal(ok.error, null);
  const s = ok.data.session;
  assert.equal(s.token_type, 'bearer');
  assert.ok(s.expires_in > 0 && s.expires_at > Date.now() / 1000);
  const claims = jwt.decode(s.access_token, env.JWT_SECRET).claims;
  assert.equal(claims.sub, aliceId);
  assert.equal(claims.role, 'authenticated');
  assert.equal(claims.aud, 'authenticated');
  assert.ok(claims.session_id && claims.exp && claims.iat);
  const me = await alice.auth.getUser();
  assert.equal(me.data.user.id, aliceId);
  assert.equal(me.data.user.email, A.email);

  // A C client sends no X-Supabase-Api-Version: GoTrue's older error body.
  const r = await fetch(`${env.SHELF_SUPABASE_URL}/auth/v1/token?grant_type=password`, {
    method: 'POST', headers: { apikey: env.SHELF_SUPABASE_ANON_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify({ email: A.email, password: 'wrong' }),
  });
  assert.equal(r.status, 400);
  assert.deepEqual(await r.json(), { code: 400, error_code: 'invalid_credentials', msg: 'Invalid login credentials' });
});

test('rest: CRUD on all four tables with defaults, embedding, filters, order, count', async () => {
  const ds = await alice.from('dataset_projects').insert({ user_id: aliceId, name: 'Research' }).select().single();
  assert.equal(ds.error, null);
  assert.equal(ds.status, 201);
  assert.equal(ds.data.icon, '📁');
  assert.equal(ds.data.is_system, false);
  assert.equal(ds.data.parent_id, null);
  const sub = await alice.from('dataset_projects').insert({ user_id: aliceId, name: 'Papers', parent_id: ds.data.id }).select().single();
  assert.equal(sub.data.parent_id, ds.data.id);

  const blocks = await alice.from('context_blocks').insert([
    { user_id: aliceId, project_id: sub.data.id, title: 'B1', content: 'one', tags: ['x', 'y'] },
    { user_id: aliceId, title: 'B2', content: 'two' },
  ], { defaultToNull: false }).select();
  assert.equal(blocks.error, null);
  assert.equal(blocks.data.length, 2);
  assert.deepEqual(blocks.data[1].tags, []); // default '{}' thanks to Prefer: missing=default

  const pp = await alice.from('prompt_projects').insert({ user_id: aliceId, name: 'Prompts', icon: '🧪' }).select().single();
  assert.equal(pp.data.icon, '🧪');
  const pr = await alice.from('prompts').insert({
    user_id: aliceId, project_id: pp.data.id, title: 'P1', description: 'd', content: 'Hello {x}', folder: 'f', tags: ['t'],
  }).select().single();
  assert.equal(pr.error, null);
  assert.deepEqual(pr.data.tags, ['t']);

  // The web app's reads: embedded folder, newest first.
  const list = await alice.from('context_blocks').select('*, dataset_projects(id, name, icon)').order('updated_at', { ascending: false });
  assert.equal(list.error, null);
  assert.equal(list.data.length, 2);
  const b1 = list.data.find((b) => b.title === 'B1');
  assert.deepEqual(b1.dataset_projects, { id: sub.data.id, name: 'Papers', icon: '📁' });
  assert.equal(list.data.find((b) => b.title === 'B2').dataset_projects, null);

  const sel = await alice.from('context_blocks').select('id, title', { count: 'exact' })
    .in('title', ['B1', 'B2', 'nope']).is('project_id', null).neq('title', 'B1').order('title').range(0, 4);
  assert.equal(sel.error, null);
  assert.deepEqual(sel.data.map((r) => r.title), ['B2']);
  assert.equal(sel.count, 1);
  const ranged = await alice.from('context_blocks').select('title').gte('created_at', '2000-01-01').lt('title', 'B9').order('title', { ascending: true }).range(1, 1);
  assert.deepEqual(ranged.data, [{ title: 'B2' }]);

  const upd = await alice.from('prompts').update({ title: 'P1b', updated_at: new Date().toISOString() })
    .eq('id', pr.data.id).eq('user_id', aliceId).select().single();
  assert.equal(upd.error, null);
  assert.equal(upd.data.title, 'P1b');
  const noRep = await alice.from('prompts').update({ description: 'e' }).eq('id', pr.data.id);
  assert.equal(noRep.status, 204);
  assert.equal(noRep.data, null);

  const ups = await alice.from('prompts').upsert({ id: pr.data.id, user_id: aliceId, title: 'P1c', content: 'c' }).select().single();
  assert.equal(ups.error, null);
  assert.equal(ups.data.title, 'P1c');
  assert.equal(ups.data.description, 'e'); // untouched column kept

  // Deleting a folder deletes its sub-folders and their blocks (on delete cascade).
  const del = await alice.from('dataset_projects').delete().eq('id', ds.data.id).select();
  assert.equal(del.status, 200);
  assert.equal(del.data.length, 1);
  const left = await alice.from('context_blocks').select('title');
  assert.deepEqual(left.data.map((r) => r.title), ['B2']);
});

test('rest: PostgREST error codes and statuses', async () => {
  const f = await alice.from('dataset_projects').insert({ user_id: aliceId, name: 'Dup' }).select().single();
  const p = await alice.from('dataset_projects').insert({ user_id: aliceId, name: 'Child', parent_id: f.data.id });
  assert.equal(p.status, 201);
  const dup = await alice.from('dataset_projects').insert({ user_id: aliceId, name: 'Child', parent_id: f.data.id });
  assert.equal(dup.status, 409);
  assert.equal(dup.error.code, '23505');
  const fk = await alice.from('context_blocks').insert({ user_id: aliceId, project_id: '00000000-0000-0000-0000-000000000000', title: 't', content: 'c' });
  assert.equal(fk.status, 409);
  assert.equal(fk.error.code, '23503');
  const bad = await alice.from('prompts').select().eq('id', 'not-a-uuid');
  assert.equal(bad.status, 400);
  assert.equal(bad.error.code, '22P02');
  const nn = await alice.from('prompts').insert({ user_id: aliceId, title: 't' });
  assert.equal(nn.status, 400);
  assert.equal(nn.error.code, '23502');
  const none = await alice.from('prompts').select().eq('id', '00000000-0000-0000-0000-000000000000').single();
  assert.equal(none.status, 406);
  assert.equal(none.error.code, 'PGRST116');
  const maybe = await alice.from('prompts').select().eq('id', '00000000-0000-0000-0000-000000000000').maybeSingle();
  assert.equal(maybe.error, null);
  assert.equal(maybe.data, null);
  const table = await alice.from('nope').select();
  assert.equal(table.status, 404);
  assert.equal(table.error.code, 'PGRST205');
  const col = await alice.from('prompts').insert({ user_id: aliceId, title: 't', content: 'c', nope: 1 });
  assert.equal(col.status, 400);
  assert.equal(col.error.code, 'PGRST204');
  for (const e of [dup, fk, bad, none, table]) {
    assert.deepEqual(Object.keys(e.error).sort(), ['code', 'details', 'hint', 'message']);
  }
});

test('rest: row-level security isolates users', async () => {
  const mine = await alice.from('prompts').insert({ user_id: aliceId, title: 'secret', content: 's' }).select().single();
  const seen = await bob.from('prompts').select();
  assert.equal(seen.error, null);
  assert.deepEqual(seen.data, []);
  const upd = await bob.from('prompts').update({ title: 'pwned' }).eq('id', mine.data.id).select();
  assert.deepEqual(upd.data, []); // hidden rows are not errors: 0 rows
  const one = await bob.from('prompts').update({ title: 'pwned' }).eq('id', mine.data.id).select().single();
  assert.equal(one.error.code, 'PGRST116');
  const del = await bob.from('prompts').delete().eq('id', mine.data.id).select();
  assert.deepEqual(del.data, []);
  const steal = await bob.from('prompts').insert({ user_id: aliceId, title: 'forged', content: 'f' });
  assert.equal(steal.status, 403);
  assert.equal(steal.error.code, '42501');
  const still = await alice.from('prompts').select('title').eq('id', mine.data.id).single();
  assert.equal(still.data.title, 'secret');

  const anon = client();
  const a1 = await anon.from('prompts').select();
  assert.equal(a1.status, 200);
  assert.deepEqual(a1.data, []);
  const a2 = await anon.from('prompts').insert({ user_id: aliceId, title: 'x', content: 'y' });
  assert.equal(a2.status, 401);
  assert.equal(a2.error.code, '42501');
});

test('rest: JWT errors (bad signature, expired) and the apikey gate', async () => {
  const call = (token, key = env.SHELF_SUPABASE_ANON_KEY) => fetch(`${env.SHELF_SUPABASE_URL}/rest/v1/prompts?select=id`, {
    headers: { apikey: key, Authorization: `Bearer ${token}` },
  });
  let r = await call(jwt.sign({ role: 'authenticated', sub: aliceId, exp: 2e9 }, 'another-secret-of-at-least-32-chars!!'));
  assert.equal(r.status, 401);
  assert.equal((await r.json()).code, 'PGRST301');
  const now = Math.floor(Date.now() / 1000);
  r = await call(jwt.sign({ role: 'authenticated', sub: aliceId, exp: now - 60, aud: 'authenticated' }, env.JWT_SECRET));
  assert.equal(r.status, 401);
  const body = await r.json();
  assert.equal(body.message, 'JWT expired');
  assert.match(body.code, /^PGRST30[13]$/);
  assert.match(r.headers.get('www-authenticate'), /invalid_token/);
  r = await fetch(`${env.SHELF_SUPABASE_URL}/rest/v1/prompts`);
  assert.equal(r.status, 401);
  assert.equal((await r.json()).message, 'No API key found in request');
});

test('auth: short-lived tokens, refresh rotation, reuse, logout', async () => {
  await admin('/__stack/config', { jwt_exp: 2, jwt_leeway: 0, refresh_reuse_interval: 10 });
  try {
    const c = client();
    const s0 = (await c.auth.signInWithPassword(A)).data.session;
    assert.equal(s0.expires_in, 2);
    const r1 = await c.auth.refreshSession();
    assert.equal(r1.error, null);
    const s1 = r1.data.session;
    assert.notEqual(s1.refresh_token, s0.refresh_token);
    // Within the reuse interval the used token still answers, with the session's current token.
    // (Raw request: auth-js would first refresh its own near-expiry session.)
    const again = await grant({ refresh_token: s0.refresh_token });
    assert.equal(again.status, 200);
    assert.equal((await again.json()).refresh_token, s1.refresh_token);

    // Wait until the 2 s token has expired for every server: PostgREST compares whole seconds
    // (now > exp + leeway), so it accepts the token during its last second.
    await sleep(Math.max(0, (s1.expires_at + 1) * 1000 - Date.now()) + 20);
    const u = await fetch(`${env.SHELF_SUPABASE_URL}/auth/v1/user`, {
      headers: { apikey: env.SHELF_SUPABASE_ANON_KEY, Authorization: `Bearer ${s1.access_token}` },
    });
    assert.equal(u.status, 403);
    // supabase-js would refresh first; a C client may well send the expired token.
    const restExpired = await fetch(`${env.SHELF_SUPABASE_URL}/rest/v1/prompts?select=id`, {
      headers: { apikey: env.SHELF_SUPABASE_ANON_KEY, Authorization: `Bearer ${s1.access_token}` },
    });
    assert.equal(restExpired.status, 401);
    assert.equal((await restExpired.json()).message, 'JWT expired');
    const r2 = await c.auth.refreshSession();
    assert.equal(r2.error, null);
    assert.equal((await c.from('prompts').select('id')).status, 200);

    // Past the reuse interval, a used token is rejected and its session revoked.
    await admin('/__stack/config', { refresh_reuse_interval: 0 });
    const reuse = await client().auth.refreshSession({ refresh_token: s1.refresh_token });
    assert.equal(reuse.error.status, 400);
    assert.equal(reuse.error.code, 'refresh_token_already_used');
    const gone = await client().auth.refreshSession({ refresh_token: r2.data.session.refresh_token });
    assert.equal(gone.error.code, 'refresh_token_not_found');

    const d = client();
    const sd = (await d.auth.signInWithPassword(A)).data.session;
    assert.equal((await d.auth.signOut()).error, null);
    const afterLogout = await client().auth.refreshSession({ refresh_token: sd.refresh_token });
    assert.equal(afterLogout.error.code, 'refresh_token_not_found');
  } finally {
    await admin('/__stack/config', { jwt_exp: 3600, jwt_leeway: 30, refresh_reuse_interval: 10 });
  }
});

test('realtime: filtered bindings get INSERT/UPDATE from SQL and supabase-js; DELETE only on the unfiltered binding; no leaks', async () => {
  const evA = []; const delA = []; const evB = []; const delB = []; const spy = [];
  const bindings = (ch, uid, ev, del) => {
    for (const table of ['context_blocks', 'prompts', 'dataset_projects', 'prompt_projects']) {
      ch.on('postgres_changes', { event: '*', schema: 'public', table, filter: `user_id=eq.${uid}` }, (p) => ev.push(p));
      ch.on('postgres_changes', { event: 'DELETE', schema: 'public', table }, (p) => del.push(p));
    }
    return ch;
  };
  const systemA = [];
  const chA = bindings(alice.channel('library-a'), aliceId, evA, delA).on('system', {}, (p) => systemA.push(p));
  await subscribe(chA);
  await subscribe(bindings(bob.channel('library-b'), bobId, evB, delB));
  // Bob asks for Alice's rows by filter: RLS must still keep them from him.
  await subscribe(bob.channel('spy').on('postgres_changes', { event: '*', schema: 'public', table: 'context_blocks', filter: `user_id=eq.${aliceId}` }, (p) => spy.push(p)));
  await waitFor(systemA, (p) => p.extension === 'postgres_changes' && p.status === 'ok', 'system ok');

  // From SQL, as another service or the SQL editor would.
  const id = (await sql.query(
    `insert into public.context_blocks (user_id, title, content, tags) values ($1, 'from sql', 'body', '{a,b}') returning id`, [aliceId])).rows[0].id;
  const ins = await waitFor(evA, (p) => p.eventType === 'INSERT' && p.new.id === id, 'INSERT from SQL');
  assert.equal(ins.table, 'context_blocks');
  assert.equal(ins.schema, 'public');
  assert.deepEqual(ins.new.tags, ['a', 'b']);
  assert.equal(ins.new.user_id, aliceId);
  assert.match(ins.commit_timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.deepEqual(ins.errors, null);

  await sql.query(`update public.context_blocks set title = 'renamed' where id = $1`, [id]);
  const up = await waitFor(evA, (p) => p.eventType === 'UPDATE' && p.new.id === id, 'UPDATE from SQL');
  assert.equal(up.new.title, 'renamed');
  assert.deepEqual(up.old, { id }); // default replica identity: old has only the key

  // From supabase-js, as the web app would.
  const web = await alice.from('prompts').insert({ user_id: aliceId, title: 'from web', content: 'c' }).select().single();
  await waitFor(evA, (p) => p.eventType === 'INSERT' && p.table === 'prompts' && p.new.id === web.data.id, 'INSERT via REST');

  await sql.query('delete from public.context_blocks where id = $1', [id]);
  const del = await waitFor(delA, (p) => p.old.id === id, 'DELETE on the unfiltered binding');
  assert.deepEqual(del.old, { id }); // RLS table: only the primary key
  assert.deepEqual(del.new, {});
  // Bob's unfiltered DELETE binding sees the id too: the real server skips RLS for DELETE.
  await waitFor(delB, (p) => p.old.id === id, 'DELETE reaches every unfiltered binding');
  await sleep(150);
  assert.equal(evA.filter((p) => p.eventType === 'DELETE').length, 0, 'a filtered binding never sees a DELETE');
  assert.equal(evB.length, 0, `bob got alice's events: ${JSON.stringify(evB)}`);
  assert.equal(spy.length, 0, `RLS leak: ${JSON.stringify(spy)}`);

  // Bob's own change reaches Bob and not Alice.
  const bobs = await bob.from('prompt_projects').insert({ user_id: bobId, name: 'bob folder' }).select().single();
  await waitFor(evB, (p) => p.eventType === 'INSERT' && p.new.id === bobs.data.id, "bob's INSERT");
  await sleep(100);
  assert.equal(evA.filter((p) => p.new && p.new.id === bobs.data.id).length, 0);

  // A record over 1 MB arrives truncated: only values of at most 64 bytes, and an error.
  const big = 'x'.repeat(1100 * 1024);
  const bigId = (await sql.query(`insert into public.context_blocks (user_id, title, content) values ($1, 'big', $2) returning id`, [aliceId, big])).rows[0].id;
  const trunc = await waitFor(evA, (p) => p.eventType === 'INSERT' && p.new.id === bigId, 'truncated INSERT');
  assert.deepEqual(trunc.errors, ['Error 413: Payload Too Large']);
  assert.equal(trunc.new.content, undefined);
  assert.equal(trunc.new.title, 'big');
});

test('realtime: heartbeat answered through supabase-js', async () => {
  const statuses = [];
  alice.realtime.onHeartbeat((s) => statuses.push(s));
  await alice.realtime.sendHeartbeat();
  await waitFor(statuses, (s) => s === 'ok', 'heartbeat ok');
});

test('realtime wire: vsn 2.0.0 frames, join reply ids, system, heartbeat, access_token expiry, phx_leave', async () => {
  const { ws, frames } = await rawSocket('2.0.0');
  const topic = 'realtime:wire';
  const join = { config: { broadcast: { ack: false, self: false }, presence: { key: '', enabled: false }, private: false,
    postgres_changes: [
      { event: 'INSERT', schema: 'public', table: 'prompts', filter: `user_id=eq.${aliceId}` },
      { event: 'DELETE', schema: 'public', table: 'prompts' },
    ] }, access_token: (await alice.auth.getSession()).data.session.access_token };
  ws.send(JSON.stringify(['1', '1', topic, 'phx_join', join]));
  const rep = await waitFor(frames, (f) => f[3] === 'phx_reply' && f[1] === '1', 'join reply');
  assert.equal(rep[0], '1');
  assert.equal(rep[2], topic);
  assert.equal(rep[4].status, 'ok');
  const pcs = rep[4].response.postgres_changes;
  assert.equal(pcs.length, 2);
  assert.equal(pcs[0].filter, `user_id=eq.${aliceId}`);
  assert.equal(pcs[1].event, 'DELETE');
  assert.ok(Number.isInteger(pcs[0].id) && pcs[0].id !== pcs[1].id);
  const sys = await waitFor(frames, (f) => f[3] === 'system', 'system');
  assert.deepEqual(sys[4], { extension: 'postgres_changes', status: 'ok', message: 'Subscribed to PostgreSQL', channel: 'wire' });

  ws.send(JSON.stringify([null, '2', 'phoenix', 'heartbeat', {}]));
  const hb = await waitFor(frames, (f) => f[1] === '2', 'heartbeat reply');
  assert.deepEqual(hb, [null, '2', 'phoenix', 'phx_reply', { status: 'ok', response: {} }]);

  const id = (await sql.query(`insert into public.prompts (user_id, title, content) values ($1, 'wire', 'w') returning id`, [aliceId])).rows[0].id;
  const ev = await waitFor(frames, (f) => f[3] === 'postgres_changes', 'event');
  assert.equal(ev[0], null);
  assert.equal(ev[1], null);
  assert.deepEqual(ev[4].ids, [pcs[0].id]);
  assert.equal(ev[4].data.type, 'INSERT');
  assert.equal(ev[4].data.record.id, id);
  assert.ok(ev[4].data.columns.some((c) => c.name === 'tags' && c.type === '_text'));

  // A token that expires in 1 s: the server closes the channel when it expires.
  const now = Math.floor(Date.now() / 1000);
  const short = jwt.sign({ role: 'authenticated', sub: aliceId, exp: now + 1, aud: 'authenticated' }, env.JWT_SECRET);
  ws.send(JSON.stringify(['1', '3', topic, 'access_token', { access_token: short }]));
  const expired = await waitFor(frames, (f) => f[3] === 'system' && f[4].status === 'error', 'expiry system message', 4000);
  assert.equal(expired[0], '1');
  assert.equal(expired[4].extension, 'system');
  assert.match(expired[4].message, /^Token has expired \d+ seconds ago$/);
  const close = await waitFor(frames, (f) => f[3] === 'phx_close', 'phx_close');
  assert.deepEqual(close, ['1', '1', topic, 'phx_close', {}]);

  // Joining with an expired token is refused with the server's reason.
  ws.send(JSON.stringify(['4', '4', 'realtime:again', 'phx_join', { config: { postgres_changes: [] }, access_token: short }]));
  const refused = await waitFor(frames, (f) => f[1] === '4', 'refused join');
  assert.equal(refused[4].status, 'error');
  assert.match(refused[4].response.reason, /^InvalidJWTToken: Token has expired/);

  ws.send(JSON.stringify(['5', '5', 'realtime:leave', 'phx_join', { config: { postgres_changes: [] } }]));
  await waitFor(frames, (f) => f[1] === '5' && f[4].status === 'ok', 'join ok');
  ws.send(JSON.stringify(['5', '6', 'realtime:leave', 'phx_leave', {}]));
  await waitFor(frames, (f) => f[1] === '6' && f[4].status === 'ok', 'leave reply');
  await waitFor(frames, (f) => f[3] === 'phx_close' && f[0] === '5', 'leave close');
  ws.close();
});

test('realtime wire: vsn 1.0.0 object frames without join_ref', async () => {
  const { ws, frames } = await rawSocket('1.0.0');
  ws.send(JSON.stringify({ topic: 'realtime:v1', event: 'phx_join', ref: '1', join_ref: '1',
    payload: { config: { postgres_changes: [{ event: '*', schema: 'public', table: 'prompts', filter: `user_id=eq.${aliceId}` }] },
      access_token: (await alice.auth.getSession()).data.session.access_token } }));
  const rep = await waitFor(frames, (f) => f.event === 'phx_reply', 'v1 join reply');
  assert.deepEqual(Object.keys(rep).sort(), ['event', 'payload', 'ref', 'topic']);
  ws.send(JSON.stringify({ topic: 'phoenix', event: 'heartbeat', payload: {}, ref: '2' }));
  assert.deepEqual(await waitFor(frames, (f) => f.ref === '2', 'v1 heartbeat'),
    { topic: 'phoenix', event: 'phx_reply', payload: { status: 'ok', response: {} }, ref: '2' });
  ws.close();
});

test('fault hooks: injected HTTP failures and a websocket cut without close frame', async () => {
  await admin('/__stack/faults', { count: 1, status: 500, path: '/rest/' });
  const r1 = await alice.from('prompts').select('id');
  assert.equal(r1.status, 500);
  const r2 = await alice.from('prompts').select('id');
  assert.equal(r2.status, 200);
  await admin('/__stack/faults', { count: 1, delay_ms: 200, path: '/rest/' });
  const t0 = Date.now();
  await alice.from('prompts').select('id');
  assert.ok(Date.now() - t0 >= 190);

  await closeClients(); // the cut below must not send supabase-js into reconnect loops
  const { closed } = await rawSocket('2.0.0');
  const res = await admin('/__stack/realtime/drop', {});
  assert.ok(res.dropped >= 1);
  assert.equal(await closed, 1006); // abnormal closure: no close frame
});

// Last: it restarts PostgreSQL under everything above.
test('a PostgreSQL restart with a connection checked out: the pools survive, the gateway answers after', async () => {
  const { createDb } = require('./db.js');
  const db = createDb({ host: env.PGHOST, port: Number(env.PGPORT), database: env.PGDATABASE });
  const held = await db.admin.connect();
  await held.query('select 1');
  // Without a listener of its own, the error a cut connection emits ends the gateway.
  assert.ok(held.listenerCount('error') > 0, 'a checked-out client listens for errors');
  sql.on('error', () => {});
  execFileSync(join(HERE, 'stack.sh'), ['pg-restart', env.STACK_DIR], { stdio: ['ignore', 'ignore', 'inherit'] });
  // Cut between two queries: the next one fails; nothing is thrown at the process.
  await assert.rejects(held.query('select 1'));
  held.release(true);
  assert.equal((await db.admin.query('select 2 as x')).rows[0].x, 2);
  await db.end();
  let r;
  for (let i = 0; i < 50; i++) {
    r = await alice.from('prompts').select('id');
    if (r.status === 200) break;
    await sleep(100);
  }
  assert.equal(r.status, 200);
});
