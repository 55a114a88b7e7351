// Turns the raw samples of one library size (bench/supabase_bench.lua and
// bench/supabase_webapp.mjs) into result lines appended to $SHELF_BENCH_OUT, and prints a
// short summary. Usage: node supabase_emit.mjs SIZE OURS.json THEIRS.json|- [LABEL]
// LABEL (e.g. "link") goes into every row's name: "(supabase, LABEL)".
import fs from 'node:fs';
import os from 'node:os';

const [size, oursFile, theirsFile, label] = process.argv.slice(2);
const ours = JSON.parse(fs.readFileSync(oursFile, 'utf8'));
// The web app's side is not run everywhere (100k: hundreds of MB per action).
const theirs = theirsFile && theirsFile !== '-' && fs.existsSync(theirsFile) ? JSON.parse(fs.readFileSync(theirsFile, 'utf8')) : {};
const sb = label ? `supabase, ${label}` : 'supabase';
const outFile = process.env.SHELF_BENCH_OUT;

function stats(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const q = (p) => (s.length ? s[Math.max(0, Math.ceil(s.length * p) - 1)] : null);
  const r = (v) => (v === null ? null : Math.round(v * 100) / 100);
  return { n: s.length, p50: r(q(0.5)), p95: r(q(0.95)), p99: r(q(0.99)) };
}

const lines = [];
function emit(o) {
  o.load = +os.loadavg()[0].toFixed(2); // the 1-minute load average now
  lines.push(o);
  if (outFile) fs.appendFileSync(outFile, JSON.stringify(o) + '\n');
}

for (const op of ['update', 'create', 'delete']) {
  const a = ours.crud[op];
  const b = theirs[op];
  if (!a) continue;
  // Where the time goes: the mirror alone (before the tab's redraw) vs mirror and tab.
  emit({
    group: 'crud', name: `${op} -> mirror only (${sb})`, size: Number(size), unit: 'ms',
    ours: stats(a.mirror_ms),
    ...(b ? { theirs: { label: 'supabase-js write+refetch', ...stats(b.ms) } } : {}),
  });
  emit({
    group: 'crud', name: `${op} -> mirror+tab (${sb})`, size: Number(size), unit: 'ms',
    ours: stats(a.ms),
    ...(b ? { theirs: { label: 'supabase-js write+refetch', ...stats(b.ms) } } : {}),
    bytes_ours: Math.round(a.bytes),
    ...(b ? { bytes_theirs: Math.round(b.bytes) } : {}),
  });
  // Until the refresh that follows the action (ids and updated_at of every table) finished.
  if (a.settled_ms) {
    emit({
      group: 'crud', name: `${op} -> refresh after it done (${sb})`, size: Number(size), unit: 'ms',
      ours: stats(a.settled_ms),
      // The whole action's bytes (write, its echo, the refresh): the refresh's are no more.
      bytes_ours: Math.round(a.bytes),
      ...(b ? { theirs: { label: 'supabase-js write+refetch', ...stats(b.ms) } } : {}),
    });
  }
}

const rt = ours.rt || [];
const missing = rt.filter((e) => e.t_lua == null || e.t_js == null).length;
for (const [src, label] of [['sql', 'SQL commit'], ['webapp', 'supabase-js write sent']]) {
  const ev = rt.filter((e) => e.src === src);
  if (!ev.length) continue;
  emit({
    group: 'realtime', name: `${label} -> mirror+tab (${sb})`, size: Number(size), unit: 'ms',
    ours: stats(ev.map((e) => (e.t_lua == null ? NaN : e.t_lua - e.t_ref))),
    theirs: { label: 'supabase-js callback', ...stats(ev.map((e) => (e.t_js == null ? NaN : e.t_js - e.t_ref))) },
  });
}
for (const [src, label] of [['sql', 'SQL commit'], ['webapp', 'supabase-js write sent']]) {
  const ev = rt.filter((e) => e.src === src);
  if (!ev.length) continue;
  emit({
    group: 'realtime', name: `${label} -> mirror only (${sb})`, size: Number(size), unit: 'ms',
    ours: stats(ev.map((e) => (e.t_mirror == null ? NaN : e.t_mirror - e.t_ref))),
    theirs: { label: 'supabase-js callback', ...stats(ev.map((e) => (e.t_js == null ? NaN : e.t_js - e.t_ref))) },
  });
}
if (rt.length) {
  emit({
    group: 'realtime', name: 'shelfd (mirror only) minus supabase-js callback, per event', size: Number(size), unit: 'ms',
    ours: stats(rt.map((e) => (e.t_mirror == null || e.t_js == null ? NaN : e.t_mirror - e.t_js))),
  });
  emit({
    group: 'realtime', name: 'shelfd+tab minus supabase-js callback, per event', size: Number(size), unit: 'ms',
    ours: stats(rt.map((e) => (e.t_lua == null || e.t_js == null ? NaN : e.t_lua - e.t_js))),
  });
}
if (ours.idle && ours.idle.seconds > 0) {
  const i = ours.idle;
  emit({
    group: 'memory', name: `shelfd idle wake-ups, realtime joined (${sb})`, size: Number(size), unit: '/min',
    ours: { n: 1, p50: Math.round((i.wakeups / (i.seconds / 60)) * 10) / 10 },
    idle: i,
  });
}
emit({
  group: 'startup', name: `sign-in + first full load + realtime join (${sb})`, size: Number(size), unit: 'ms',
  ours: { n: 1, p50: Math.round(ours.load_ms * 10) / 10, p95: Math.round(ours.load_ms * 10) / 10 },
});

if (ours.index_ms != null) {
  emit({
    group: 'startup', name: `search index of the local copy built, after the first load (${sb})`, size: Number(size),
    unit: 'ms', ours: { n: 1, p50: Math.round(ours.index_ms * 10) / 10, p95: Math.round(ours.index_ms * 10) / 10 },
  });
}

if (ours.restart) {
  // A start with the session saved before, from the local copy (the figure with a target) and,
  // beside it, from the server (supabase.cache = false).
  const r = ours.restart;
  const pick = (xs, k) => stats(xs.map((x) => x[k]));
  emit({
    group: 'startup', name: 'start, signed in before -> tab drawn (supabase)', size: Number(size), unit: 'ms',
    ours: pick(r.cache, 'tab_ms'), theirs: { label: 'no local copy', ...pick(r.server, 'tab_ms') },
  });
  emit({
    group: 'startup', name: 'start, signed in before -> live (supabase)', size: Number(size), unit: 'ms',
    ours: pick(r.cache, 'live_ms'), theirs: { label: 'no local copy', ...pick(r.server, 'live_ms') },
  });
}

const f = (s) => (s && s.p50 != null ? (s.p95 != null ? `${s.p50}/${s.p95}` : `${s.p50}`) : '-');
for (const l of lines) {
  const ratio = l.theirs && l.ours.p50 ? ` x${(l.theirs.p50 / l.ours.p50).toFixed(1)}` : '';
  const by = l.bytes_ours != null ? `  bytes ${l.bytes_ours}${l.bytes_theirs != null ? ` vs ${l.bytes_theirs} (x${(l.bytes_theirs / Math.max(1, l.bytes_ours)).toFixed(1)})` : ''}` : '';
  process.stdout.write(`  ${String(size).padStart(6)} ${l.name.padEnd(52)} ours p50/p95 ${f(l.ours).padEnd(14)} theirs ${f(l.theirs).padEnd(14)}${ratio}${by}\n`);
}
if (missing) process.stdout.write(`  ${size}: ${missing} of ${rt.length} realtime events were not seen by one side within 10 s\n`);
if (ours.tab_checked === false) process.stdout.write(`  ${size}: warning: the tab buffer did not show the updated titles\n`);
