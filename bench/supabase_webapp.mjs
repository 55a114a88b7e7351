// The web app's way, for bench/supabase.sh: the official supabase-js client makes the same
// writes as bench/supabase_bench.lua (update, create, delete a prompt), and after each one
// re-fetches every table in parallel with select=*, as prompt-builder does after an action.
// Time is from the start of the write until the last table arrived; bytes come from
// bench/countproxy.mjs (the client talks to the gateway through it).
// Environment: BENCH_STACK_ENV, BENCH_JS_URL (proxy port), BENCH_CONTROL, BENCH_OPS, BENCH_RAW,
// BENCH_KINDS (the writes to make, default "update create delete"; delete needs create).
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../tests/stack/package.json'));
const { createClient } = require('@supabase/supabase-js');
const WebSocket = require('ws');

const env = {};
for (const line of fs.readFileSync(process.env.BENCH_STACK_ENV, 'utf8').split('\n')) {
  const m = /^export ([A-Z_0-9]+)='(.*)'$/.exec(line.trim());
  if (m) env[m[1]] = m[2];
}
const ops = Number(process.env.BENCH_OPS || 40);
const control = `http://127.0.0.1:${process.env.BENCH_CONTROL}/counts`;
const bytes = async () => {
  const c = (await (await fetch(control)).json()).webapp;
  return c.up + c.down;
};

const supabase = createClient(process.env.BENCH_JS_URL, env.SHELF_SUPABASE_ANON_KEY, {
  auth: { persistSession: false, autoRefreshToken: false },
  realtime: { transport: WebSocket },
});
const { data: auth, error } = await supabase.auth.signInWithPassword({ email: 'ada@example.com', password: 'ada-password' });
if (error) throw error;
const uid = auth.user.id;
const tables = ['prompts', 'context_blocks', 'prompt_projects', 'dataset_projects'];

async function refetchAll() {
  const rs = await Promise.all(tables.map((t) => supabase.from(t).select('*')));
  for (const r of rs) if (r.error) throw new Error(r.error.message);
  return rs;
}

// The app's state after its first load, as it would hold it.
let state = await refetchAll();
const prompts = state[0].data.map((p) => p).sort((a, b) => (a.id < b.id ? -1 : 1));
const folders = state[2].data.map((p) => p.id).sort();
const filler = 'Benchmark content line with a few words. '.repeat(30);

const raw = {};
async function measure(label, n, write) {
  const ms = [];
  const before = await bytes();
  for (let i = 1; i <= n; i++) {
    const start = performance.now();
    const r = await write(i);
    if (r.error) throw new Error(`${label}: ${r.error.message}`);
    state = await refetchAll();
    ms.push(performance.now() - start);
  }
  raw[label] = { ms, bytes: ((await bytes()) - before) / n };
}

const kinds = (process.env.BENCH_KINDS || 'update create delete').split(/\s+/);
const created = [];
if (kinds.includes('update')) await measure('update', ops, (i) => {
  const p = prompts[prompts.length - 1 - ((i - 1) % prompts.length)]; // from the other end than the Lua side
  return supabase.from('prompts')
    .update({ title: `Web update ${i}: ${p.title}`.slice(0, 80), content: filler + i, updated_at: new Date().toISOString() })
    .eq('id', p.id);
});
if (kinds.includes('create')) await measure('create', ops, (i) => {
  const id = randomUUID();
  created.push(id);
  return supabase.from('prompts').insert({
    id, user_id: uid, title: `Created by the web app, number ${i}`, content: filler + i,
    tags: ['bench', 'new'], project_id: folders[i % Math.max(1, folders.length)],
  }).select().single();
});
if (kinds.includes('create') && kinds.includes('delete')) await measure('delete', ops, (i) => supabase.from('prompts').delete().eq('id', created[i - 1]));

fs.writeFileSync(process.env.BENCH_RAW, JSON.stringify(raw));
process.exit(0);
