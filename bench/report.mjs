#!/usr/bin/env node
// Prints the benchmark results (one JSON object a line, see bench/run.sh) as
// one table. With --write DIR it also rewrites DIR/RESULTS.md (the table,
// the machine, the date, versions, what the figures mean) and
// DIR/latency.png (gnuplot with bench/plot.gp).
// Usage: node bench/report.mjs RESULTS.jsonl [--write DIR]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const file = args[0];
const writeAt = args.indexOf('--write');
const writeDir = writeAt >= 0 ? args[writeAt + 1] : null;
if (!file) {
  console.error('usage: report.mjs RESULTS.jsonl [--write DIR]');
  process.exit(2);
}

// Result rows, and the records of what the run did (bench/meta.mjs: "meta"
// is run, supabase, failed or end).
const rows = [];
const metas = [];
for (const [i, line] of fs.readFileSync(file, 'utf8').split('\n').entries()) {
  if (!line.trim()) continue;
  try {
    const o = JSON.parse(line);
    (o.meta ? metas : rows).push(o);
  } catch (e) {
    console.error(`report: line ${i + 1} is not JSON; skipped`);
  }
}
const metaOf = (kind) => metas.find((m) => m.meta === kind);

const groups = ['startup', 'crud', 'realtime', 'editors', 'render', 'search', 'builder', 'memory', 'stall'];
const order = (g) => (groups.indexOf(g) < 0 ? groups.length : groups.indexOf(g));
// Stable: group, then the order results came in per measure, then size.
const firstSeen = new Map();
rows.forEach((r, i) => {
  const k = `${r.group}\u0000${r.name}`;
  if (!firstSeen.has(k)) firstSeen.set(k, i);
});
rows.sort((a, b) => order(a.group) - order(b.group)
  || firstSeen.get(`${a.group}\u0000${a.name}`) - firstSeen.get(`${b.group}\u0000${b.name}`)
  || (a.size ?? 0) - (b.size ?? 0));

const num = (x) => {
  if (x === undefined || x === null || Number.isNaN(x)) return '';
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toFixed(3);
};
// The issue asks for at least 200 operations (events) per figure of these
// rows; a row with fewer says how many it had.
const MIN_N = 200;
const wantsMin = (r) => ['crud', 'realtime', 'editors'].includes(r.group) || r.name.startsWith('tab incremental render');
// p50 / p95, and p99 on realtime rows (the issue asks for it there only).
const pair = (s, unit, r) => {
  if (!s) return '';
  // A loop-stall row: the largest gap, where it fell and the CPU Neovim used in it.
  if (s.max !== undefined) {
    const st = r.stall || {};
    const where = [st.phase ? `in "${st.phase}"` : '', st.cpu_ms !== undefined ? `cpu ${num(st.cpu_ms)} ms` : '',
      st.cut_short ? 'program stopped by its timeout' : '']
      .filter(Boolean).join(', ');
    return `max ${num(s.max)} ${unit}${where ? ` (${where})` : ''}`;
  }
  const few = wantsMin(r) && s.n !== undefined && s.n < MIN_N ? ` (n=${s.n})` : '';
  if (!s.n || s.p50 === undefined || s.p50 === null) return `no samples${few}`;
  if (s.n === 1 || s.p95 === undefined || s.p95 === null) return `${num(s.p50)} ${unit}${few}`;
  const p99 = r.group === 'realtime' && s.p99 !== undefined && s.p99 !== null ? ` / ${num(s.p99)}` : '';
  return `${num(s.p50)} / ${num(s.p95)}${p99} ${unit}${few}`;
};
const size = (n) => (!n ? '-' : n >= 1000 ? `${n / 1000}k` : String(n));
const bytes = (b) => {
  if (b === undefined || b === null) return '';
  if (b >= 1048576) return `${(b / 1048576).toFixed(1)} MB`;
  if (b >= 1024) return `${(b / 1024).toFixed(1)} kB`;
  return `${Math.round(b)} B`;
};

// ---- targets (issues 5 and 12) and verdicts ----------------------------------------------
// The one place the targets live: which rows each applies to, at which size
// (null: the issue names no size, so every size is judged; a list: each of
// those sizes), and what is checked. Rows at other sizes are shown as
// information, never as misses. `now`: the figure issue 12 gives for the code
// before it, printed beside this run's.
// Where the issue names no percentile, p50 is judged and the p95 is shown
// beside the verdict.
const opOf = (r) => r.name.split(' ')[0];
// The Supabase stack's rows: named so ("(supabase" or "(supabase, link"), and every realtime row
// (realtime is measured there only).
const isSb = (r) => r.name.includes('(supabase') || r.group === 'realtime'
  || (r.group === 'stall' && r.name.includes('supabase'));
const TARGETS = [
  {
    issue: 5, title: 'CRUD to screen, SQLite', text: '<= 10 ms p50 at 10k', at: 10000, label: opOf,
    match: (r) => r.group === 'crud' && r.name.endsWith('-> mirror+tab (sqlite)'),
    checks: [{ stat: 'p50', max: 10 }],
  },
  {
    issue: 5, title: 'CRUD to screen, local Supabase stack',
    text: '<= 25 ms p50 at 10k, >= 5x faster (p50) and >= 10x fewer bytes than supabase-js', at: 10000, label: opOf,
    match: (r) => r.group === 'crud' && r.name.endsWith('-> mirror+tab (supabase)'),
    checks: [{ stat: 'p50', max: 25 }, { ratio: 5 }, { bytes: 10 }],
  },
  {
    issue: 5, title: 'Realtime: what shelfd adds over the supabase-js callback, until the mirror and the tab show it',
    text: '<= 2 ms p95', at: null,
    match: (r) => r.name === 'shelfd+tab minus supabase-js callback, per event',
    checks: [{ stat: 'p95', max: 2 }],
  },
  {
    issue: 5, title: 'Realtime: the same until the mirror only (before the tab redraws)', text: '<= 2 ms p95', at: null,
    match: (r) => r.name === 'shelfd (mirror only) minus supabase-js callback, per event',
    checks: [{ stat: 'p95', max: 2 }],
  },
  {
    issue: 5, title: 'Between editors (SQLite)', text: '<= 30 ms p95', at: null,
    match: (r) => r.group === 'editors',
    checks: [{ stat: 'p95', max: 30 }],
  },
  {
    issue: 5, title: 'Tab full render', text: '<= 30 ms at 10k (judged on p50)', at: 10000,
    match: (r) => r.name === 'tab full render',
    checks: [{ stat: 'p50', max: 30, also: 'p95' }],
  },
  {
    issue: 5, title: 'Tab incremental update', text: '<= 3 ms (judged on p50)', at: null,
    match: (r) => r.name.startsWith('tab incremental render'),
    checks: [{ stat: 'p50', max: 3, also: 'p95' }],
  },
  {
    issue: 5, title: 'Start-up cost before first use', text: '<= 1 ms', at: null,
    label: (r) => (r.name.startsWith('sourcing') ? 'sourcing plugin/shelf.lua' : 'startuptime delta'),
    match: (r) => r.name === 'plugin cost at start-up (startuptime delta)' || r.name === 'sourcing plugin/shelf.lua',
    checks: [{ stat: 'p50', max: 1 }],
  },
  {
    issue: 5, title: 'shelfd spawn to ready', text: '<= 20 ms (judged on p50)', at: null,
    match: (r) => r.name.startsWith('shelfd spawn -> ready'),
    checks: [{ stat: 'p50', max: 20, also: 'p95' }],
  },
  {
    issue: 5, title: 'Idle wake-ups', text: 'none but the realtime heartbeat', at: null,
    label: (r) => `${r.name.includes('supabase') ? 'Supabase' : 'SQLite'} ${size(r.size)}`,
    match: (r) => r.group === 'memory' && r.name.startsWith('shelfd idle wake-ups'),
    checks: [{ idle: true }],
  },
  // ---- issue 12: 100,000 items ----
  {
    issue: 12, title: 'Neovim start to the tab drawn with the library (SQLite)', now: '2.7 s + tab',
    text: '<= 300 ms at 100k (judged on p50)', at: 100000,
    match: (r) => r.name === 'Neovim start -> tab drawn with the library',
    checks: [{ stat: 'p50', max: 300, also: 'p95' }],
  },
  {
    issue: 12, title: 'Tab open (split + draw), also right after a load', now: '0.6-0.8 s in the bench, 3.3 s right after a load',
    text: '<= 50 ms at 100k (judged on p50)', at: 100000,
    label: (r) => (r.name.includes('after a load') ? 'right after a load' : 'tab open'),
    match: (r) => r.name === 'tab open (split + full render)' || r.name === 'tab open right after a load (:Shelf -> drawn)',
    checks: [{ stat: 'p50', max: 50, also: 'p95' }],
  },
  {
    issue: 12, title: 'Filter/search result (any query, content included)', now: '250-350 ms, editor frozen',
    text: '<= 30 ms at 100k (judged on p50), editor never frozen (its stall: the loop-stall target)', at: 100000,
    program: 'local_search.lua', unitMs: true,
    // bench/local_search.lua's figures (not its own loop-gap rows: bench/stall.lua judges those).
    label: (r) => r.name.replace(/^filter -> hits shown in the tab: /, 'shown: ').replace(/^search answer \(shelfd[^)]*\): /, 'answer: '),
    match: (r) => r.unit === 'ms' && (r.group === 'search' || r.program === 'local_search.lua')
      && /^(filter -> hits shown|search answer)/.test(r.name),
    checks: [{ stat: 'p50', max: 30, also: 'p95' }],
  },
  {
    issue: 12, title: "Longest stall of Neovim's loop caused by the plugin, over the whole bench",
    now: '1.3 s during the first load of a 50k library', text: '<= 16 ms', at: null, stall: true,
    label: (r) => `${r.name.replace(/^longest loop stall \((.*)\)$/, '$1')}${r.size ? ` ${size(r.size)}` : ''}`,
    match: (r) => r.group === 'stall',
    checks: [{ maxOf: 16 }],
  },
  {
    issue: 12, title: 'shelfd resident memory', now: '512 MiB', text: '<= 64 MiB at 100k (VmRSS and the peak, VmHWM)', at: 100000,
    label: (r) => r.name.replace(/^shelfd /, ''),
    match: (r) => r.group === 'memory' && r.unit === 'MiB' && r.name.startsWith('shelfd ') && !isSb(r),
    checks: [{ stat: 'p50', max: 64 }],
  },
  {
    issue: 12, title: 'Neovim memory the plugin adds', now: '~63 MiB Lua heap', text: '<= 32 MiB at 100k (Lua heap after a full GC, and RSS)', at: 100000,
    label: (r) => (r.name.includes('RSS') ? 'RSS' : 'Lua heap'),
    match: (r) => r.name === 'Neovim Lua heap the plugin adds (after a full GC)' || r.name === 'Neovim RSS the plugin adds',
    checks: [{ stat: 'p50', max: 32 }],
  },
  {
    issue: 12, title: 'Picker open', now: '186-316 ms', text: '<= 30 ms at 100k (judged on p50)', at: 100000,
    match: (r) => r.name === 'picker open (:Shelf prompts -> ui.select)',
    checks: [{ stat: 'p50', max: 30, also: 'p95' }],
  },
  {
    issue: 12, title: 'Supabase: start to the tab drawn with a 10k library, signed in before', now: '1.4 s',
    text: '<= 150 ms (from what is kept locally), judged on p50', at: 10000,
    match: (r) => r.name === 'Neovim start -> tab drawn (supabase, signed in before)',
    checks: [{ stat: 'p50', max: 150, also: 'p95' }],
  },
  {
    issue: 12, title: 'Supabase: the same until live (signed in, loaded, realtime joined)', now: '1.4 s',
    text: '<= 1 s, judged on p50', at: 10000,
    match: (r) => r.name === 'Neovim start -> live (supabase, signed in before)',
    checks: [{ stat: 'p50', max: 1000, also: 'p95' }],
  },
  {
    issue: 12, title: 'Supabase: refresh of all kinds after a write', now: '48.7 ms, ~1 MB at 10k',
    text: '<= 10 ms p50 and <= 16 KB (bytes: the whole action, write and refresh), at 10k and at 100k', at: [10000, 100000], label: opOf,
    match: (r) => r.group === 'crud' && r.name.endsWith('-> refresh after it done (supabase)'),
    checks: [{ stat: 'p50', max: 10 }, { bytesMax: 16384 }],
  },
  {
    issue: 12, title: 'Over an emulated link (40 ms RTT, 20 Mbit/s): write to screen, beside supabase-js write-and-refetch',
    now: 'not measured', text: '<= 1 RTT + 10 ms = 50 ms p50 at 10k', at: 10000, label: opOf,
    match: (r) => r.group === 'crud' && r.name.endsWith('-> mirror+tab (supabase, link)'),
    checks: [{ stat: 'p50', max: 50 }, { theirs: true }],
  },
];
const targetOf = (r) => TARGETS.find((t) => t.match(r));
const atSizes = (t) => (t.at === null ? null : Array.isArray(t.at) ? t.at : [t.at]);
const judgedAt = (t, r) => t.at === null || atSizes(t).includes(r.size);
const atText = (t) => atSizes(t).map(size).join(' and ');
// Why a program was not run, from the run's records (bench/meta.mjs "skipped").
const skippedWhy = (program) => metas.filter((m) => m.meta === 'skipped' && m.program === program)
  .map((m) => m.why)[0];
const fmtMax = (x) => String(x);

// One check on one row: { ok, figure, why } (ok null: no figure to judge).
function check(c, r) {
  if (c.stat) {
    const v = r.ours?.[c.stat];
    if (v === undefined || v === null) return { ok: null, figure: 'no figure', why: 'no figure' };
    const ok = v <= c.max;
    let figure = `${c.stat} ${num(v)} ${r.unit}`;
    let note = '';
    const w = c.also ? r.ours?.[c.also] : undefined;
    if (w !== undefined && w !== null) {
      figure += ` (${c.also} ${num(w)})`;
      if (w > c.max) note = `${c.also} ${num(w)} > ${fmtMax(c.max)}`;
    }
    return { ok, figure, why: ok ? note : `${c.stat} ${num(v)} > ${fmtMax(c.max)}` };
  }
  if (c.ratio) {
    if (!r.theirs?.p50 || !r.ours?.p50) return { ok: null, figure: 'no supabase-js figure', why: 'no supabase-js figure' };
    const x = r.theirs.p50 / r.ours.p50;
    return { ok: x >= c.ratio, figure: `${x.toFixed(1)}x faster`, why: x >= c.ratio ? '' : `${x.toFixed(1)}x < ${c.ratio}x faster` };
  }
  if (c.bytes) {
    if (!r.bytes_theirs || !r.bytes_ours) return { ok: null, figure: 'no bytes', why: 'no bytes' };
    const x = r.bytes_theirs / r.bytes_ours;
    return { ok: x >= c.bytes, figure: `${x.toFixed(0)}x fewer bytes`, why: x >= c.bytes ? '' : `${x.toFixed(1)}x < ${c.bytes}x fewer bytes` };
  }
  if (c.maxOf) {
    const v = r.ours?.max;
    if (v === undefined || v === null) return { ok: null, figure: 'no figure', why: 'no figure' };
    const st = r.stall || {};
    const cpu = st.cpu_ms !== undefined ? `, cpu ${num(st.cpu_ms)} ms` : '';
    return { ok: v <= c.maxOf, figure: `max ${num(v)} ms${st.phase ? ` in "${st.phase}"` : ''}${cpu}`, why: v <= c.maxOf ? '' : `${num(v)} > ${c.maxOf} ms` };
  }
  if (c.bytesMax) {
    if (r.bytes_ours === undefined || r.bytes_ours === null) return { ok: null, figure: 'no bytes', why: 'no bytes' };
    const ok = r.bytes_ours <= c.bytesMax;
    return { ok, figure: bytes(r.bytes_ours), why: ok ? '' : `${bytes(r.bytes_ours)} > ${bytes(c.bytesMax)}` };
  }
  if (c.theirs) {
    // Information only: the web app's figure on the same link.
    const f = r.theirs?.p50 !== undefined && r.theirs?.p50 !== null ? `supabase-js ${num(r.theirs.p50)} ms (n=${r.theirs.n})` : 'no supabase-js figure';
    return { ok: true, figure: f, why: '' };
  }
  if (c.idle) {
    const i = r.idle;
    if (i && i.bursts !== undefined) {
      // Supabase: wake-ups come in bursts; each must be one with realtime traffic (the heartbeat).
      const other = i.bursts - i.bursts_with_traffic;
      return {
        ok: other === 0,
        figure: `${i.wakeups} wake-ups in ${i.seconds} s: ${i.bursts} burst(s), ${i.bursts_with_traffic} with realtime traffic`,
        why: other === 0 ? '' : `${other} burst(s) without realtime traffic`,
      };
    }
    const v = r.ours?.p50;
    if (v === undefined || v === null) return { ok: null, figure: 'no figure', why: 'no figure' };
    return { ok: v === 0, figure: `${num(v)} /min`, why: v === 0 ? '' : `${num(v)} wake-ups /min, no heartbeat on SQLite` };
  }
  return { ok: null, figure: '?', why: 'unknown check' };
}

// A row's verdict: 'met' / 'MISSED: why' / '(judged at 10k)' / '' (no target).
function verdict(r) {
  const t = targetOf(r);
  if (!t) return '';
  if (!judgedAt(t, r)) return `(judged at ${atText(t)})`;
  const res = t.checks.map((c) => check(c, r));
  if (res.some((x) => x.ok === null)) return `not judged: ${res.filter((x) => x.ok === null).map((x) => x.why).join(', ')}`;
  const bad = res.filter((x) => !x.ok);
  if (bad.length) return `MISSED: ${bad.map((x) => x.why).join(', ')}`;
  const notes = res.map((x) => x.why).filter(Boolean);
  return notes.length ? `met; ${notes.join(', ')}` : 'met';
}

// The targets one by one: the rows judged, their figures, one verdict.
function targetSummary() {
  return TARGETS.map((t) => {
    const judged = rows.filter((r) => t.match(r) && judgedAt(t, r));
    const sizes = new Set(judged.map((r) => r.size));
    const names = new Set(judged.map((r) => r.name));
    const lab = (r) => {
      const a = t.label ? t.label(r) : r.name;
      if (!r.size || (t.label && a.includes(size(r.size)))) return a;
      if (sizes.size > 1 && (names.size > 1 && t.label)) return `${a} ${size(r.size)}`;
      if (sizes.size > 1) return size(r.size);
      return names.size > 1 ? a : size(r.size);
    };
    const sizeless = judged.length > 0 && [...sizes].every((x) => !x);
    const at = t.at !== null ? atText(t) : sizeless ? '(no library size)' : 'every size measured';
    const now = t.now || '';
    if (judged.length === 0) {
      const why = t.program ? skippedWhy(t.program) : undefined;
      return [t.title, t.text, now, at, why ? `not measured: ${why}` : 'not measured in this run', 'not judged'];
    }
    if (t.stall) {
      // Many programs: the largest stall of all, and which programs went over.
      const worst = judged.reduce((a, b) => ((b.ours?.max ?? -1) > (a.ours?.max ?? -1) ? b : a));
      const over = judged.filter((r) => (r.ours?.max ?? 0) > t.checks[0].maxOf);
      const figure = `overall ${lab(worst)}: ${check(t.checks[0], worst).figure}; ${over.length} of ${judged.length} programs over ${t.checks[0].maxOf} ms`
        + (over.length ? ` (${over.map((r) => `${lab(r)} ${num(r.ours.max)}`).join(', ')})` : '');
      const v = over.length ? `MISSED: overall max ${num(worst.ours.max)} ms > ${t.checks[0].maxOf}` : 'met';
      return [t.title, t.text, now, at, figure, v];
    }
    const prefix = (r) => (sizeless && judged.length === 1 ? '' : `${lab(r)}: `);
    const figures = judged.map((r) => `${prefix(r)}${t.checks.map((c) => check(c, r).figure).join(', ')}`).join('; ');
    const vs = judged.map((r) => [lab(r), verdict(r)]);
    const missed = vs.filter(([, v]) => v.startsWith('MISSED'));
    const unjudged = vs.filter(([, v]) => v.startsWith('not judged'));
    let v;
    if (missed.length) v = `MISSED at ${missed.map(([l, x]) => `${l} (${x.replace(/^MISSED: /, '')})`).join('; ')}`;
    else if (unjudged.length) v = `not judged at ${unjudged.map(([l]) => l).join(', ')}`;
    else {
      const notes = vs.filter(([, x]) => x.startsWith('met; ')).map(([l, x]) => `${l}: ${x.slice(5)}`);
      v = notes.length ? `met (${notes.join('; ')})` : 'met';
    }
    return [t.title, t.text, now, at, figures, v];
  });
}

const header = ['group', 'measure', 'size', 'ours p50 / p95 [/ p99]', 'theirs p50 / p95 [/ p99]', 'ratio', 'bytes ours / theirs', 'target', 'verdict'];
const table = rows.map((r) => {
  const ratio = r.theirs && r.ours && r.ours.p50 > 0 ? r.theirs.p50 / r.ours.p50 : null;
  const theirs = r.theirs ? `${pair(r.theirs, r.unit, r)}${r.theirs.label ? ` (${r.theirs.label})` : ''}` : '';
  const b = r.bytes_ours !== undefined || r.bytes_theirs !== undefined
    ? `${bytes(r.bytes_ours) || '-'} / ${bytes(r.bytes_theirs) || '-'}` : '';
  const t = targetOf(r);
  return [r.group, r.name, size(r.size), pair(r.ours, r.unit, r), theirs, ratio === null ? '' : `${ratio.toFixed(1)}x`,
    b, t ? t.text : '', verdict(r)];
});
const summaryHeader = ['target', 'wanted', 'before (issue 12)', 'judged at', 'figures of this run', 'verdict'];
const summary = targetSummary();

function text(head, body) {
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => [...r[i]].length)));
  const fmt = (r) => r.map((c, i) => c + ' '.repeat(w[i] - [...c].length)).join('  ').trimEnd();
  return [fmt(head), w.map((x) => '-'.repeat(x)).join('  '), ...body.map(fmt)].join('\n');
}
function markdown(head, body) {
  const esc = (c) => c.replace(/\|/g, '\\|');
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`,
    ...body.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

console.log(text(header, table));
if (rows.length === 0) console.log('(no results)');
console.log('\nTargets (issues 5 and 12):');
console.log(text(summaryHeader, summary));
if (!writeDir) process.exit(0);

// ---- RESULTS.md and the plot ------------------------------------------------------------
const read = (p) => {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return '';
  }
};
const run = (cmd, a) => {
  try {
    return execFileSync(cmd, a, { encoding: 'utf8' }).split('\n')[0].trim();
  } catch {
    return '?';
  }
};
// The machine and the run, as recorded at the start of the run; a results
// file without that record gets this machine, said as such.
const runMeta = metaOf('run');
const endMeta = metaOf('end');
let machine;
if (runMeta?.machine) {
  const m = runMeta.machine;
  machine = [
    `- CPU: ${m.cpu}, ${m.cores} cores`,
    `- RAM: ${m.ram_gib} GiB`,
    `- Kernel: ${m.kernel}`,
    `- Debian: ${m.debian}`,
    `- Neovim: ${m.nvim}; Node: ${m.node}; SQLite: ${m.sqlite}; PostgreSQL: ${m.postgres}`,
    `- Code measured: commit ${runMeta.commit ?? '?'}`,
  ].join('\n');
} else {
  const cpu = (read('/proc/cpuinfo').match(/^model name\s*:\s*(.+)$/m) || [])[1] || os.cpus()[0]?.model || '?';
  machine = [
    '(The results file has no record of the machine it ran on: this is the machine that wrote this report.)',
    `- CPU: ${cpu.trim()}, ${os.cpus().length} cores`,
    `- RAM: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `- Kernel: ${os.type()} ${os.release()}`,
    `- Debian: ${read('/etc/debian_version').trim() || '?'}`,
    `- Neovim: ${run('nvim', ['--version'])}; Node: ${process.version}; SQLite: ${run('sqlite3', ['--version']).split(' ')[0]}`,
    `- Date of the results file: ${fs.statSync(file).mtime.toISOString().replace(/\.\d+Z$/, 'Z')}`,
  ].join('\n');
}

// What the run did and did not do, from its records and its rows.
const sizesList = (xs) => (xs.length ? xs.map(size).join(', ') : 'none');
// The Supabase stack's rows: named so, and every realtime row (realtime is measured there only).
// (isSb: defined with the targets.)
function coverage() {
  const out = [];
  const load1 = (m) => (m?.load ? m.load[0].toFixed(2) : '?');
  if (runMeta) {
    const t = endMeta?.seconds;
    const mins = t === undefined ? '' : t < 120 ? ` (${t} s)` : ` (${(t / 60).toFixed(0)} min)`;
    out.push(`- Started ${runMeta.at}${endMeta ? `, ended ${endMeta.at}${mins}` : ''}${runMeta.quick ? ' (quick mode)' : ''}.`);
    if (!endMeta) {
      out.push('- **The run did not finish** (no end record: stopped or failed). Sizes and measures it did not reach are listed as missing below; nothing stands in for them.');
    }
  } else {
    out.push('- The results file has no record of the run (it predates them): what was planned is not known; the sizes below are those with figures.');
  }
  const skipped = metas.filter((m) => m.meta === 'skipped');
  for (const [prog, why] of new Map(skipped.map((m) => [m.program, m.why]))) {
    const at = skipped.filter((m) => m.program === prog && m.size).map((m) => m.size);
    out.push(`- **Not measured**: ${prog}${at.length ? ` at ${sizesList(at)}` : ''}: ${why}.`);
  }
  for (const f of metas.filter((m) => m.meta === 'failed')) {
    out.push(`- **Failed**: ${f.program}${f.size ? ` at ${size(f.size)}` : ''}${f.exit !== undefined ? ` (exit ${f.exit})` : ''}; its figures are missing.`);
  }
  // Per part: sizes planned, sizes with figures, measures missing at a size.
  const part = (label, planned, pick, skipped) => {
    const rs = rows.filter((r) => r.size && pick(r));
    const have = [...new Set(rs.map((r) => r.size))].sort((a, b) => a - b);
    const names = [...new Set(rs.map((r) => `${r.group}: ${r.name}`))];
    const want = planned ?? have;
    let line = `- ${label}: sizes ${planned ? 'planned' : 'with figures'} ${sizesList(want)}`;
    // A measure taken at some sizes only by design (the builder at 1k, the
    // emulated link at 10k) is expected between the smallest and the largest
    // size it has; a program that failed is listed above as failed.
    const span = new Map();
    for (const r of rs) {
      const k = `${r.group}: ${r.name}`;
      const [lo, hi] = span.get(k) ?? [r.size, r.size];
      span.set(k, [Math.min(lo, r.size), Math.max(hi, r.size)]);
    }
    const gaps = [];
    for (const n of want) {
      const at = new Set(rs.filter((r) => r.size === n).map((r) => `${r.group}: ${r.name}`));
      const expected = names.filter((x) => span.get(x)[0] <= n && n <= span.get(x)[1]);
      const lacking = expected.filter((x) => !at.has(x));
      if (at.size === 0) gaps.push(`${size(n)}: **missing** (no figures)`);
      else if (lacking.length) gaps.push(`${size(n)}: **missing** ${lacking.join('; ')}`);
    }
    line += gaps.length ? `; ${gaps.join('; ')}.` : '; every measure has figures at every one of them.';
    for (const [n, why] of Object.entries(skipped || {})) line += ` Not run at ${size(Number(n))}: ${why}.`;
    out.push(line);
  };
  part('Local benchmarks (SQLite)', runMeta?.sizes, (r) => !isSb(r));
  const sbMeta = metaOf('supabase');
  if (runMeta && runMeta.supabase === false) {
    out.push('- Supabase stack: left out of this run (BENCH_LOCAL_ONLY).');
  } else if (runMeta && !sbMeta && !rows.some(isSb)) {
    out.push('- Supabase stack: **missing** (the run did not reach it or it did not start).');
  } else {
    part('Supabase stack', sbMeta?.sizes, isSb, sbMeta?.skipped);
  }
  // Operation counts below what the issue asks for, per group and size.
  const few = new Map();
  for (const r of rows) {
    if (!wantsMin(r)) continue;
    for (const [side, s] of [['ours', r.ours], ['theirs (supabase-js)', r.theirs]]) {
      if (!s || s.n === undefined || s.n >= MIN_N) continue;
      const k = `${side} ${r.group}${r.group === 'render' ? ' (incremental)' : ''} n=${s.n}`;
      if (!few.has(k)) few.set(k, { sizes: new Set(), rows: 0 });
      few.get(k).sizes.add(r.size);
      few.get(k).rows++;
    }
  }
  if (few.size) {
    const notes = runMeta?.quick ? 'quick mode runs few operations throughout'
      : [runMeta?.ops_note, sbMeta?.web_ops_note].filter(Boolean).join('; ');
    const list = [...few].map(([k, v]) => `${k} at ${sizesList([...v.sizes].sort((a, b) => a - b))} (${v.rows} row${v.rows > 1 ? 's' : ''})`);
    out.push(`- Fewer operations or events than the issue's ${MIN_N} (shown as "(n=K)" in the table): ${list.join('; ')}${notes ? `. Why: ${notes}` : ''}.`);
  } else {
    out.push(`- Every crud, realtime, editors and incremental-render figure is over at least ${MIN_N} operations or events.`);
  }
  // Idle wake-ups: where they were measured.
  const idle = rows.filter((r) => r.group === 'memory' && r.name.startsWith('shelfd idle wake-ups'));
  const idleLocal = idle.filter((r) => !isSb(r));
  const idleSb = idle.filter(isSb);
  const secs = (rs) => [...new Set(rs.map((r) => r.idle?.seconds).filter((x) => x !== undefined).map(Math.round))];
  const sec = (rs) => (secs(rs).length ? ` (${secs(rs).join('/')} s each)` : '');
  out.push(`- Idle wake-ups measured on SQLite at ${sizesList(idleLocal.map((r) => r.size))}${sec(idleLocal)}; `
    + (idleSb.length ? `on the Supabase stack (realtime joined) at ${sizesList(idleSb.map((r) => r.size))}${sec(idleSb)}.`
      : 'not on the Supabase stack (SQLite only in this run).'));
  // Load while the figures were taken.
  const loads = rows.map((r) => r.load).filter((x) => typeof x === 'number').sort((a, b) => a - b);
  let l = '- 1-minute load average';
  if (runMeta) l += ` at the start ${load1(runMeta)}${endMeta ? `, at the end ${load1(endMeta)}` : ''}`;
  if (loads.length) l += `${runMeta ? ';' : ''} when the rows were written ${loads[0].toFixed(2)} to ${loads[loads.length - 1].toFixed(2)} (median ${loads[Math.floor(loads.length / 2)].toFixed(2)})`;
  else l += runMeta ? '' : ': not recorded';
  out.push(`${l}, on ${runMeta?.machine?.cores ?? os.cpus().length} cores. Other work on the machine raises the figures.`);
  return out.join('\n');
}

// Latency series for the plot: the headline measures only (all of them make
// an unreadable tangle; the table has every figure), ours and theirs.
const PLOTTED = [
  'create -> mirror+tab (sqlite)', 'update -> mirror+tab (sqlite)',
  'write -> other editor mirror+tab (sqlite)', 'update -> mirror+tab (supabase)',
  'SQL commit -> mirror+tab (supabase)', 'tab full render',
  'tab incremental render (1 item changed)', 'first full load (spawn -> mirror ready)',
];
const THEIRS_PLOTTED = ['update -> mirror+tab (supabase)', 'SQL commit -> mirror+tab (supabase)'];
const series = new Map();
const theirSeries = new Map();
for (const r of rows) {
  if (r.unit !== 'ms' || !r.size || !PLOTTED.includes(r.name)) continue;
  const add = (m, label, s) => {
    if (!s || s.p50 === undefined) return;
    if (!m.has(label)) m.set(label, []);
    m.get(label).push([r.size, s.p50]);
  };
  add(series, `${r.name}`, r.ours);
  if (r.theirs && THEIRS_PLOTTED.includes(r.name)) {
    add(theirSeries, `theirs: ${r.theirs.label || '?'} (${r.name})`, r.theirs);
  }
}
const two = ([, pts]) => pts.length >= 2;
const ours = [...series.entries()].filter(two);
const plotted = [...ours, ...[...theirSeries.entries()].filter(two)];
let plotNote = '';
if (plotted.length > 0) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shelf-plot-'));
  const data = path.join(tmp, 'series.dat');
  fs.writeFileSync(data, plotted.map(([label, pts]) => `"${label.replace(/"/g, "'")}" p50\n`
    + pts.sort((a, b) => a[0] - b[0]).map(([x, y]) => `${x} ${y}`).join('\n')).join('\n\n\n') + '\n');
  const png = path.join(writeDir, 'latency.png');
  try {
    execFileSync('gnuplot', ['-e', `datafile='${data}'; outfile='${png}'; nours=${ours.length}; nseries=${plotted.length}`,
      path.join(here, 'plot.gp')], { stdio: ['ignore', 'inherit', 'inherit'] });
    plotNote = '![latency p50 against library size](latency.png)\n\nThe plot has the headline measures (ours solid, theirs dashed); the table has every figure.\n';
  } catch (e) {
    console.error(`report: gnuplot failed: ${e.message}`);
    fs.rmSync(png, { force: true });
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}

// Figures for "where the time goes", each from the rows of this run.
const find = (name, n) => rows.find((r) => r.name === name && r.size === n);
const seriesOf = (f, names) => {
  const ns = [...new Set(rows.filter((r) => names.includes(r.name) && r.size).map((r) => r.size))].sort((a, b) => a - b);
  const parts = ns.map((n) => [n, f(n)]).filter(([, v]) => v !== null && v !== undefined && Number.isFinite(v));
  return parts.length ? parts.map(([n, v]) => `${size(n)}: ${num(v)}`).join('; ') : null;
};
const p50 = (name) => (n) => find(name, n)?.ours?.p50;
const diff = (a, b) => (n) => {
  const x = find(a, n)?.ours?.p50;
  const y = find(b, n)?.ours?.p50;
  return x === undefined || y === undefined || x === null || y === null ? null : x - y;
};
function timeFigures() {
  const items = [
    ['The tab\'s share of an update on SQLite (mirror+tab minus mirror only), ms',
      diff('update -> mirror+tab (sqlite)', 'update -> mirror only (sqlite)'), ['update -> mirror+tab (sqlite)']],
    ['The same on the Supabase stack, ms',
      diff('update -> mirror+tab (supabase)', 'update -> mirror only (supabase)'), ['update -> mirror+tab (supabase)']],
    ['An update until the mirror holds it (no tab): SQLite, ms', p50('update -> mirror only (sqlite)'), ['update -> mirror only (sqlite)']],
    ['The same on the Supabase stack, ms', p50('update -> mirror only (supabase)'), ['update -> mirror only (supabase)']],
    ['The refresh of all kinds after an update, done (Supabase), ms',
      p50('update -> refresh after it done (supabase)'), ['update -> refresh after it done (supabase)']],
    ['Tab incremental update, ms', p50('tab incremental render (1 item changed)'), ['tab incremental render (1 item changed)']],
    ['Tab full render, ms', p50('tab full render'), ['tab full render']],
    ['A write in one editor until the other shows it, ms', p50('write -> other editor mirror+tab (sqlite)'),
      ['write -> other editor mirror+tab (sqlite)']],
    ['shelfd resident memory after the load, MiB', p50('shelfd RSS after load'), ['shelfd RSS after load']],
    ['First full load (SQLite), ms', p50('first full load (spawn -> mirror ready)'), ['first full load (spawn -> mirror ready)']],
    ['Neovim start to the tab drawn with the library (SQLite), ms', p50('Neovim start -> tab drawn with the library'),
      ['Neovim start -> tab drawn with the library']],
    ['Lua heap the plugin adds with the library loaded and no tab (after a full GC), MiB',
      p50('Neovim Lua heap the plugin adds, library loaded, no tab (after a full GC)'),
      ['Neovim Lua heap the plugin adds, library loaded, no tab (after a full GC)']],
    ['The same with the tab drawn, MiB', p50('Neovim Lua heap the plugin adds (after a full GC)'),
      ['Neovim Lua heap the plugin adds (after a full GC)']],
    ['Supabase, signed in before: Neovim start to the tab drawn, ms', p50('Neovim start -> tab drawn (supabase, signed in before)'),
      ['Neovim start -> tab drawn (supabase, signed in before)']],
    ['The same until live, ms', p50('Neovim start -> live (supabase, signed in before)'),
      ['Neovim start -> live (supabase, signed in before)']],
  ];
  const out = items.map(([label, f, names]) => {
    const v = seriesOf(f, names);
    return v ? `- ${label}: ${v}.` : null;
  }).filter(Boolean);
  return out.length ? out.join('\n') : '(No figures in this run to compute them from.)';
}

// The hand-written analysis (profiles, reasons) is kept from the RESULTS.md
// being replaced: report.mjs never writes numbers into it.
const HW_BEGIN = '<!-- hand-written: begin (bench/report.mjs keeps what is between these markers) -->';
const HW_END = '<!-- hand-written: end -->';
function handWritten() {
  const old = read(path.join(writeDir, 'RESULTS.md'));
  const a = old.indexOf(HW_BEGIN);
  const b = old.indexOf(HW_END);
  const body = a >= 0 && b > a ? old.slice(a + HW_BEGIN.length, b).trim()
    : '## Where the time goes: analysis\n\n(None yet. Write it between these markers, with its date; bench/report.mjs keeps it.)';
  return `${HW_BEGIN}\n${body}\n${HW_END}`;
}

const md = `# Benchmark results

The latest full run of \`make bench\` (\`bench/run.sh\`): shelfd built with optimisation, the
local benchmarks on SQLite at each library size, and the Supabase benchmarks on the local
Supabase-compatible stack beside the web app's own client (supabase-js) in the same run.

## Machine

${machine}

## What this run did

${coverage()}

## Targets and verdicts

Each target of issues 5 and 12, judged by \`bench/report.mjs\` from the figures of this run (nothing
in this table is written by hand); "before (issue 12)" is the figure issue 12 gives for the code
before it. A target the issue states "at 10k" is judged on the 10k rows
only; the other sizes are information. Where the issue names no size, every size measured is
judged; where it names no percentile, p50 is judged and p95 is shown beside it. Figures measured
on a machine busy with other work are higher than on a quiet one (see the load average above).

${markdown(summaryHeader, summary)}

## Results

Sizes are library sizes (prompts and context blocks together, in nested folders; titles of
20-80 characters, content of 200 B to 8 KB, mostly short, some tags; generated from a fixed seed).
"ours p50 / p95" are percentiles over the operations of that row (realtime rows add p99: "[/ p99]"); "ratio"
is theirs p50 divided by ours p50 (above 1: we are faster). "(n=K)" marks a crud, realtime, editors
or incremental-render figure over fewer than the ${MIN_N} operations or events the issue asks for.

${rows.some((r) => r.theirs) ? '' : '(This run left the Supabase benchmarks out: no "theirs" figures.)\n\n'}${markdown(header, table)}

${plotNote}
## What the figures mean

- **crud**: from a Lua \`shelf.create\`/\`update\`/\`delete\` call until the Lua mirror holds the
  result and the knowledge tab (open in the same Neovim) has redrawn. On SQLite the bytes are
  what shelfd pushed to Neovim per action (msgpack). On the Supabase stack, "theirs" is
  supabase-js doing the same write and then re-fetching every table, as the web app does after
  each action; bytes are what went over the wire per action. Headless Neovim has no screen:
  "tab redrawn" means the tab's buffer lines (and what its highlights are drawn from) are
  updated; a terminal's own screen update of the visible lines comes after and is not counted.
- **realtime**: a change committed by another client until our mirror and tab show it; theirs
  is the supabase-js subscription callback on the same event (the floor).
- **editors**: a write in one Neovim until a second Neovim (its own shelfd, same SQLite file,
  tab open) has it in its mirror and tab; wall-clock time shared by both processes. Each write
  starts once the writer's shelfd is at rest (the refresh after its previous write done).
- **render**: the tab drawn from an empty buffer ("full render"), the tab's update after one
  item changed ("incremental": every update during the update run, a patch of the lines shown
  or a full render where a patch cannot apply), opening the tab, and
  \`:Shelf prompts\` until \`vim.ui.select\` is called (a stub records it), also with every entry
  formatted as the built-in select does.
- **startup**: what having the plugin on 'runtimepath' adds to \`nvim --startuptime\` before
  first use (difference of medians with and without; sub-millisecond figures are within the
  noise of a whole start), the time spent sourcing \`plugin/shelf.lua\`, shelfd from spawn to
  ready on an empty library, and the first full load of a library (spawn until the whole
  library is in the Lua mirror).
- **memory**: shelfd's resident memory (VmRSS) after loading each library, and its context
  switches per minute while nothing happens (a program that polls shows up here). From
  \`bench/local_start.lua\` (a fresh Neovim each time, \`bench/start_child.lua\`): shelfd's VmRSS and
  its peak (VmHWM) once the tab is drawn, and what the plugin adds to Neovim: the Lua heap
  (\`collectgarbage('count')\`, before setup() and after the tab is drawn and shelfd at rest, with and
  without a full collection first) and Neovim's VmRSS over the same span.
- **start** (issue 12): \`Neovim start -> tab drawn with the library\`: from the moment the bench
  starts a fresh \`nvim\` that runs setup() and \`:Shelf\` until a top-level folder of the library
  is in the tab's first lines; \`tab open right after a load\`: shelfd started and the library
  loaded first, then \`:Shelf\` until the same. On Supabase (signed in before: the session of the
  run just made), until the tab is drawn and until it is live (signed in, nothing loading, realtime
  joined).
- **stall**: the loop-stall measure, \`bench/stall.lua\`, in every bench Neovim: a 2 ms timer
  schedules a callback on Neovim's main loop, and the largest gap between two such callbacks is
  the longest time the loop could not serve keys or redraws (at most the stall plus 2 ms). Each
  row is one program at one size, with the phase the largest gap fell in and the CPU time Neovim
  used during it (a long gap with little CPU is the machine busy with other work). The bench's own
  synchronous work (writing a seed, \`system()\`, full renders forced back to back) is not counted.
- **link** (issue 12): rows named "(supabase, link)" go through \`bench/countproxy.mjs\` emulating
  an internet link: 20 Mbit/s each way and 20 ms each way (40 ms round trip), one round trip
  before a new connection's first bytes. "theirs" there is supabase-js updating a prompt and
  refetching every table over the same link, as the web app does.
- **refresh after a write** (Supabase): from the write until the refresh that follows it is done;
  its bytes are the whole action's (the write, its realtime echo and the refresh), so the
  refresh alone moves no more than that. Like every Supabase measure after the sign-in, it is
  taken once the full check after the realtime join is done and the local copy's search index is
  built ("search index of the local copy built" rows: meanwhile a refresh reads from the server).

## Where the time goes: figures from this run

Computed by \`bench/report.mjs\` from the rows above (p50 at each size; missing sizes are left out).

${timeFigures()}

${handWritten()}
`;
fs.writeFileSync(path.join(writeDir, 'RESULTS.md'), md);
console.error(`report: wrote ${path.join(writeDir, 'RESULTS.md')}${plotNote ? ' and latency.png' : ''}`);
