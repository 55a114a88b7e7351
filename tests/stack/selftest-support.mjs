// What the stack's two self-tests (selftest.mjs, selftest-auth.mjs) share: a stack of their own
// in a temp folder, or the running one STACK_ENV names (left running); a Postgres client as
// the `postgres` role; supabase-js clients closed at the end; the gateway's admin API.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { createClient } = require('@supabase/supabase-js');
const WebSocket = require('ws');
const pg = require('pg');

const HERE = dirname(fileURLToPath(import.meta.url));

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// auth-js's default in-process lock leaves a 10 s timer behind that would hold the test
// process open; one test client per user needs no lock.
export const noLock = async (_name, _timeout, fn) => fn();

function readEnv(file) {
  const out = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^export ([A-Z_0-9]+)='(.*)'$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
}

// One self-test's stack. `env` and `sql` are set by start().
export class Stack {
  env = {};
  sql = null;
  #dir = null;
  #clients = [];

  async start() {
    if (process.env.STACK_ENV) {
      this.env = readEnv(process.env.STACK_ENV);
    } else {
      this.#dir = mkdtempSync(join(tmpdir(), 'shelf-stack-'));
      execFileSync(join(HERE, 'stack.sh'), ['start', this.#dir], { stdio: ['ignore', 'ignore', 'inherit'] });
      this.env = readEnv(join(this.#dir, 'env'));
    }
    this.sql = new pg.Client({ connectionString: this.env.DATABASE_URL });
    await this.sql.connect();
  }

  async stop() {
    await this.closeClients();
    if (this.sql) await this.sql.end().catch(() => {});
    if (this.#dir) {
      execFileSync(join(HERE, 'stack.sh'), ['stop', this.#dir], { stdio: ['ignore', 'ignore', 'inherit'] });
      rmSync(this.#dir, { recursive: true, force: true });
    }
  }

  // A supabase-js client with `key` and these auth options, closed by stop().
  client(key, auth = {}) {
    const c = createClient(this.env.SHELF_SUPABASE_URL, key, {
      auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false, lock: noLock, ...auth },
      realtime: { transport: WebSocket }, // Node 20 has no global WebSocket
    });
    this.#clients.push(c);
    return c;
  }

  async closeClients() {
    for (const c of this.#clients.splice(0)) {
      await Promise.race([c.removeAllChannels().catch(() => {}), sleep(1000)]);
      c.realtime.disconnect();
    }
  }

  // The gateway's admin API (tests/stack/admin.js): JSON in, JSON out, 200 asserted.
  async admin(path, body, method = 'POST') {
    const r = await fetch(this.env.SHELF_SUPABASE_URL + path, {
      method,
      headers: { 'x-stack-admin': this.env.STACK_ADMIN_SECRET, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    assert.equal(r.status, 200, `admin ${path}: ${await r.clone().text()}`);
    return r.json();
  }
}
