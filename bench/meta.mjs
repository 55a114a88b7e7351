#!/usr/bin/env node
// Prints one record of what a benchmark run did, as one JSON line for the
// results file (bench/run.sh, bench/supabase.sh), so bench/report.mjs can say
// what was run, where and when, and what is missing, without guessing.
//   node bench/meta.mjs KIND [KEY=VALUE...]
// KIND: run (the start of a run: also the machine), supabase, failed,
// skipped (a program not run: program, size, why), end. A VALUE
// that parses as JSON is kept as such, else as a string. Every record has
// the time (ISO, UTC) and the load averages.
import fs from 'node:fs';
import os from 'node:os';
import { execFileSync } from 'node:child_process';

const [kind, ...pairs] = process.argv.slice(2);
if (!kind) {
  console.error('usage: meta.mjs KIND [KEY=VALUE...]');
  process.exit(2);
}
const read = (p) => {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return '';
  }
};
const first = (cmd, a) => {
  try {
    return execFileSync(cmd, a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0].trim();
  } catch {
    return '?';
  }
};
const rec = { meta: kind, at: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), load: os.loadavg().map((x) => +x.toFixed(2)) };
for (const p of pairs) {
  const i = p.indexOf('=');
  if (i < 0) continue;
  const v = p.slice(i + 1);
  try {
    rec[p.slice(0, i)] = JSON.parse(v);
  } catch {
    rec[p.slice(0, i)] = v;
  }
}
if (kind === 'run') {
  const cpu = (read('/proc/cpuinfo').match(/^model name\s*:\s*(.+)$/m) || [])[1] || os.cpus()[0]?.model || '?';
  rec.machine = {
    cpu: cpu.trim(),
    cores: os.cpus().length,
    ram_gib: +(os.totalmem() / 2 ** 30).toFixed(1),
    kernel: `${os.type()} ${os.release()}`,
    debian: read('/etc/debian_version').trim() || '?',
    nvim: first('nvim', ['--version']),
    node: process.version,
    sqlite: first('sqlite3', ['--version']).split(' ')[0],
    postgres: first('sh', ['-c', 'ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1']),
  };
}
process.stdout.write(JSON.stringify(rec) + '\n');
