'use strict';
// The database's own change stream for Realtime: logical decoding with wal2json, polled through
// pg_logical_slot_get_changes, as the Realtime server's postgres_cdc_rls does (list_changes).
// Only tables in the `supabase_realtime` publication are passed on. The slot is temporary, so
// it disappears with the gateway's connection: changes made while the gateway is down are never
// replayed, exactly like the real service (no queue, no replay after a disconnect).
const pg = require('pg');

const WAL2JSON_OPTS = [
  'format-version', '2', 'include-pk', '1', 'include-timestamp', '1', 'include-type-oids', '1',
  'include-transaction', '0', 'actions', 'insert,update,delete', 'filter-tables', 'auth.*',
];

function createChangeStream({ host, port, database, pollMs, idlePollMs, busy, onChange, log }) {
  const slot = `shelf_stack_${process.pid}`;
  let client = null;
  let stopped = false;
  let timer = null;
  let pub = { all: false, tables: new Set(), at: 0 };
  let wake = null;

  async function connect() {
    const c = new pg.Client({ host, port, database, user: 'postgres', application_name: 'shelf-stack-realtime' });
    c.on('error', (e) => log(`change stream connection error: ${e.message}`));
    await c.connect();
    // A temporary slot belongs to this session and is dropped when it ends (even on SIGKILL).
    await c.query(`select pg_create_logical_replication_slot($1, 'wal2json', true)`, [slot]);
    return c;
  }

  async function publication() {
    if (Date.now() - pub.at < 1000) return pub;
    const r = await client.query(
      `select p.puballtables as all, coalesce(array_agg(t.schemaname || '.' || t.tablename)
         filter (where t.tablename is not null), '{}') as tables
         from pg_publication p left join pg_publication_tables t on t.pubname = p.pubname
        where p.pubname = 'supabase_realtime' group by p.puballtables`);
    const row = r.rows[0] || { all: false, tables: [] };
    pub = { all: row.all, tables: new Set(row.tables), at: Date.now() };
    return pub;
  }

  async function pollOnce() {
    const r = await client.query(
      `select data from pg_logical_slot_get_changes($1, null, 2000, ${WAL2JSON_OPTS.map((o) => `'${o}'`).join(', ')})`,
      [slot]);
    if (!r.rows.length) return 0;
    const p = await publication();
    for (const row of r.rows) {
      let change;
      try {
        change = JSON.parse(row.data);
      } catch (e) {
        log(`bad wal2json row: ${e.message}`);
        continue;
      }
      if (!p.all && !p.tables.has(`${change.schema}.${change.table}`)) continue;
      try {
        await onChange(change, row.data.length);
      } catch (e) {
        log(`dispatching a ${change.action} on ${change.table} failed: ${e.stack || e.message}`);
      }
    }
    return r.rows.length;
  }

  async function loop() {
    while (!stopped) {
      try {
        if (!client) client = await connect();
        const n = await pollOnce();
        if (n) continue; // more may be waiting
      } catch (e) {
        if (stopped) break;
        log(`change stream: ${e.message}; reconnecting`);
        const c = client;
        client = null;
        if (c) c.end().catch(() => {});
      }
      await new Promise((resolve) => {
        wake = resolve;
        const every = typeof pollMs === 'function' ? pollMs() : pollMs;
        timer = setTimeout(resolve, client ? (busy() ? every : idlePollMs) : 500);
      });
    }
  }

  return {
    start() {
      loop();
    },
    // Poll at once (used after a subscription is made, and by tests through the admin hook).
    kick() {
      if (wake) {
        clearTimeout(timer);
        wake();
      }
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      if (wake) wake();
      if (client) await client.end().catch(() => {});
    },
  };
}

module.exports = { createChangeStream };
