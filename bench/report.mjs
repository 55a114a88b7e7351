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

const rows = [];
for (const [i, line] of fs.readFileSync(file, 'utf8').split('\n').entries()) {
  if (!line.trim()) continue;
  try {
    rows.push(JSON.parse(line));
  } catch (e) {
    console.error(`report: line ${i + 1} is not JSON; skipped`);
  }
}

const groups = ['startup', 'crud', 'realtime', 'editors', 'render', 'memory'];
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

const header = ['group', 'measure', 'size', 'ours p50 / p95 [/ p99]', 'theirs p50 / p95 [/ p99]', 'ratio', 'bytes ours / theirs', 'target'];
const table = rows.map((r) => {
  const ratio = r.theirs && r.ours && r.ours.p50 > 0 ? r.theirs.p50 / r.ours.p50 : null;
  const theirs = r.theirs ? `${pair(r.theirs, r.unit, r)}${r.theirs.label ? ` (${r.theirs.label})` : ''}` : '';
  const b = r.bytes_ours !== undefined || r.bytes_theirs !== undefined
    ? `${bytes(r.bytes_ours) || '-'} / ${bytes(r.bytes_theirs) || '-'}` : '';
  return [r.group, r.name, size(r.size), pair(r.ours, r.unit, r), theirs, ratio === null ? '' : `${ratio.toFixed(1)}x`,
    b, r.target || ''];
});

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
const cpu = (read('/proc/cpuinfo').match(/^model name\s*:\s*(.+)$/m) || [])[1] || os.cpus()[0]?.model || '?';
const machine = [
  `- CPU: ${cpu.trim()}, ${os.cpus().length} cores`,
  `- RAM: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
  `- Kernel: ${os.type()} ${os.release()}`,
  `- Debian: ${read('/etc/debian_version').trim() || '?'}`,
  `- Neovim: ${run('nvim', ['--version'])}; Node: ${process.version}; SQLite: ${run('sqlite3', ['--version']).split(' ')[0]}`,
  `- Date of the run: ${fs.statSync(file).mtime.toISOString().replace(/\.\d+Z$/, 'Z')}; load average when reported: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
].join('\n');

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

const md = `# Benchmark results

The latest full run of \`make bench\` (\`bench/run.sh\`): shelfd built with optimisation, the
local benchmarks on SQLite at each library size, and the Supabase benchmarks on the local
Supabase-compatible stack beside the web app's own client (supabase-js) in the same run.

## Machine

${machine}

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
  switches per minute while nothing happens (a program that polls shows up here).

## Where the time goes

Profiled with LuaJIT's profiler (\`jit.p\`), strace and per-phase timestamps at 10k items.

- **The tab.** A change of a few items is patched into the lines the tab shows: the item's line
  out, in at its sorted place, the folder counts above it redrawn. "mirror+tab" is then the
  "mirror only" time plus about 1.3 ms at 10k; what is left grows with the library through two
  linear scans (finding a node's line, shifting the line arrays), 12.6 ms at 100k. A full
  render (opening the tab, a filter, a fold, a change of folders) still walks every node:
  \`tree.build()\` sorts every folder (about a quarter) and the walk builds the line list (most
  of the rest), about 2.5 µs per item. Highlights are drawn by a decoration provider for the
  lines on screen only; setting 30k highlights per render was most of a cold 10k render before.
- **shelfd.** "mirror only" is the write (SQLite on the thread pool, or PostgREST), the delta
  pushed and the mirror updated: about 2 ms on SQLite and 4 ms on the stack at 10k. The refresh
  of all kinds that follows each action compares every id and stamp with what shelfd holds
  ("refresh after it done": about 50 ms at 10k on the stack); it
  runs after the user already sees the result and moves only the ids and stamps plus what
  changed, which is where the bytes ratio comes from.
- **Between editors.** The second shelfd reads the change log 5 ms after the inotify event (a
  writer publishes its commit in the -shm index through mmap, which raises no event), then
  applies the rows and pushes them. A write made while the writer's previous refresh still
  runs waits behind it on the one SQLite job queue: back to back at 10k that adds 15-20 ms.
- **At 100k** what a user would notice is memory (512 MiB resident, mostly the records with
  their content) and the first load (1.5 s); neither has a target.

Targets (issue 5): CRUD to screen at 10k <= 10 ms p50 on SQLite, <= 25 ms p50 on the local
stack and >= 5x faster than supabase-js with >= 10x fewer bytes; realtime <= 2 ms p95 over the
supabase-js callback; between editors <= 30 ms p95; tab full render <= 30 ms at 10k,
incremental <= 3 ms; start-up before first use <= 1 ms; shelfd ready <= 20 ms; idle wake-ups
none but the realtime heartbeat. Figures measured on a machine busy with other work are higher
than on a quiet one; the machine line above gives the load average.
`;
fs.writeFileSync(path.join(writeDir, 'RESULTS.md'), md);
console.error(`report: wrote ${path.join(writeDir, 'RESULTS.md')}${plotNote ? ' and latency.png' : ''}`);
