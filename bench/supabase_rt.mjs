// Realtime driver for bench/supabase_bench.lua (which starts it and reads its stdout).
// Subscribes with the official supabase-js client (the floor), then commits BENCH_EVENTS
// changes to prompts, in triples insert/update/delete of one row, alternating the writer:
// plain SQL (pg, as the postgres superuser) and supabase-js as the web app writes.
// For each event it prints "want I OP ID TITLE" before the write, then, once the supabase-js
// callback fired, "done I SRC OP T_REF T_JS" (wall-clock ms; T_REF is the SQL commit's
// acknowledgement, or for a supabase-js write the moment it was sent), and waits for "next"
// on stdin (the Lua side saw it in its mirror). Prints "end" when finished.
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../tests/stack/package.json'));
const { createClient } = require('@supabase/supabase-js');
const WebSocket = require('ws');
const pg = require('pg');

const env = {};
for (const line of fs.readFileSync(process.env.BENCH_STACK_ENV, 'utf8').split('\n')) {
  const m = /^export ([A-Z_0-9]+)='(.*)'$/.exec(line.trim());
  if (m) env[m[1]] = m[2];
}
const events = Number(process.env.BENCH_EVENTS || 200);
const wall = () => performance.timeOrigin + performance.now();
const say = (s) => process.stdout.write(s + '\n');

function client(url) {
  return createClient(url, env.SHELF_SUPABASE_ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: WebSocket },
  });
}

// Lines from the Lua side: each "next" releases one waiter.
const nextWaiters = [];
let buffered = '';
process.stdin.on('data', (d) => {
  buffered += d;
  let i;
  while ((i = buffered.indexOf('\n')) >= 0) {
    const line = buffered.slice(0, i);
    buffered = buffered.slice(i + 1);
    if (line === 'next' && nextWaiters.length) nextWaiters.shift()();
  }
});
process.stdin.on('end', () => process.exit(0));
const next = () => new Promise((resolve) => nextWaiters.push(resolve));

const sub = client(process.env.BENCH_JS_URL);
const writer = client(env.SHELF_SUPABASE_URL);
const { data: auth, error: e1 } = await sub.auth.signInWithPassword({ email: 'ada@example.com', password: 'ada-password' });
if (e1) throw e1;
const { error: e2 } = await writer.auth.signInWithPassword({ email: 'ada@example.com', password: 'ada-password' });
if (e2) throw e2;
const uid = auth.user.id;
const db = new pg.Client({ connectionString: env.DATABASE_URL });
await db.connect();

// The web app's subscription: own rows filtered by user, DELETE unfiltered (it carries only the id).
let pending = null; // { id, type, resolve }
const onEvent = (payload) => {
  const t = wall();
  const id = payload.eventType === 'DELETE' ? payload.old.id : payload.new.id;
  if (pending && pending.id === id && pending.type === payload.eventType) {
    const p = pending;
    pending = null;
    p.resolve(t);
  }
};
await new Promise((resolve, reject) => {
  sub.channel('bench')
    .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'prompts', filter: `user_id=eq.${uid}` }, onEvent)
    .on('postgres_changes', { event: 'UPDATE', schema: 'public', table: 'prompts', filter: `user_id=eq.${uid}` }, onEvent)
    .on('postgres_changes', { event: 'DELETE', schema: 'public', table: 'prompts' }, onEvent)
    .subscribe((status, err) => {
      if (status === 'SUBSCRIBED') resolve();
      else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') reject(err || new Error(status));
    });
});
// SUBSCRIBED comes a little before the subscription is live on real servers; settle first.
await new Promise((r) => setTimeout(r, 300));

const ops = ['INSERT', 'UPDATE', 'DELETE'];
let id = null;
for (let i = 1; i <= events; i++) {
  const triple = Math.floor((i - 1) / 3);
  const op = ops[(i - 1) % 3];
  const src = triple % 2 === 0 ? 'sql' : 'webapp';
  if (op === 'INSERT') id = randomUUID();
  const title = `rt-${i}-${op.toLowerCase()}`;
  say(`want ${i} ${op} ${id} ${title}`);
  const seen = new Promise((resolve) => { pending = { id, type: op, resolve }; });
  const timeout = new Promise((resolve) => setTimeout(() => resolve(null), 10000));
  let tRef;
  const content = `realtime event ${i} `.repeat(20);
  if (src === 'sql') {
    if (op === 'INSERT') {
      await db.query('insert into prompts (id, user_id, title, content, tags) values ($1, $2, $3, $4, $5)',
        [id, uid, title, content, ['rt']]);
    } else if (op === 'UPDATE') {
      await db.query('update prompts set title = $2, content = $3, updated_at = now() where id = $1', [id, title, content]);
    } else {
      await db.query('delete from prompts where id = $1', [id]);
    }
    tRef = wall();
  } else {
    tRef = wall();
    let r;
    if (op === 'INSERT') {
      r = await writer.from('prompts').insert({ id, user_id: uid, title, content, tags: ['rt'] });
    } else if (op === 'UPDATE') {
      r = await writer.from('prompts').update({ title, content, updated_at: new Date().toISOString() }).eq('id', id);
    } else {
      r = await writer.from('prompts').delete().eq('id', id);
    }
    if (r.error) throw new Error(r.error.message);
  }
  const tJs = await Promise.race([seen, timeout]);
  pending = null;
  say(`done ${i} ${src} ${op} ${tRef.toFixed(3)} ${tJs === null ? 'nil' : tJs.toFixed(3)}`);
  await next();
}
say('end');
await db.end();
await sub.removeAllChannels();
process.exit(0);
