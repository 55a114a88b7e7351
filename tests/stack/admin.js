#!/usr/bin/env node
'use strict';
// Command-line helper for a running stack. Reads SHELF_SUPABASE_URL, SERVICE_ROLE_KEY and
// STACK_ADMIN_SECRET from the environment, or from the env file given with --env DIR/env.
//
//   node admin.js [--env FILE] create-user EMAIL PASSWORD   prints the new user's id
//   node admin.js [--env FILE] fault '{"count":2,"status":503,"path":"/rest/"}'
//                              (or delay_ms, answer_delay_ms, drop, headers; method)
//   node admin.js [--env FILE] clear-faults
//   node admin.js [--env FILE] drop-realtime                 cut every websocket, no close frame
//   node admin.js [--env FILE] silence-realtime              every websocket goes silent, TCP open
//   node admin.js [--env FILE] release-subscriptions         end the wait of rt_subscribe_delay_ms
//   node admin.js [--env FILE] config '{"jwt_exp":5,"jwt_leeway":0}'
//                              (or rt_subscribe_delay_ms, auth_reported_exp, ...)
//   node admin.js [--env FILE] status
//   node admin.js [--env FILE] requests                      HTTP requests seen: method, path, query, done, status
//   node admin.js [--env FILE] clear-requests
//   node admin.js [--env FILE] mailbox [TO]                  the mails Auth sent (JSON), to TO
//   node admin.js [--env FILE] clear-mailbox
//   node admin.js [--env FILE] provider '{"email":"x@y.z","decision":"allow|deny|manual"}'
//   node admin.js [--env FILE] auth '{"redirect_rule":"legacy","redirect_urls":[...],
//                              "site_url":"...","providers":["google"]}'
const fs = require('node:fs');

function loadEnvFile(file) {
  const out = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^export ([A-Z_0-9]+)='(.*)'$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
}

async function call(env, method, path, body, headers) {
  const r = await fetch(env.SHELF_SUPABASE_URL + path, {
    method,
    headers: { 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function main(argv) {
  let env = process.env;
  if (argv[0] === '--env') {
    env = { ...process.env, ...loadEnvFile(argv[1]) };
    argv = argv.slice(2);
  }
  if (!env.SHELF_SUPABASE_URL) throw new Error('SHELF_SUPABASE_URL not set (source DIR/env or pass --env DIR/env)');
  const adminHeaders = { 'x-stack-admin': env.STACK_ADMIN_SECRET || '' };
  const [cmd, a, b] = argv;
  switch (cmd) {
    case 'create-user': {
      if (!a || !b) throw new Error('usage: create-user EMAIL PASSWORD');
      // The Auth admin API, as against a real project with its service_role key.
      const u = await call(env, 'POST', '/auth/v1/admin/users', { email: a, password: b, email_confirm: true }, {
        apikey: env.SERVICE_ROLE_KEY, Authorization: `Bearer ${env.SERVICE_ROLE_KEY}`,
      });
      process.stdout.write(`${u.id}\n`);
      return;
    }
    case 'fault': return void console.log(JSON.stringify(await call(env, 'POST', '/__stack/faults', JSON.parse(a || '{}'), adminHeaders)));
    case 'clear-faults': return void console.log(JSON.stringify(await call(env, 'DELETE', '/__stack/faults', undefined, adminHeaders)));
    case 'drop-realtime': return void console.log(JSON.stringify(await call(env, 'POST', '/__stack/realtime/drop', {}, adminHeaders)));
    case 'release-subscriptions': return void console.log(JSON.stringify(await call(env, 'POST', '/__stack/realtime/subscribe', {}, adminHeaders)));
    case 'silence-realtime': return void console.log(JSON.stringify(await call(env, 'POST', '/__stack/realtime/silence', {}, adminHeaders)));
    case 'config': return void console.log(JSON.stringify(await call(env, 'POST', '/__stack/config', JSON.parse(a || '{}'), adminHeaders)));
    case 'requests': return void console.log(JSON.stringify(await call(env, 'GET', '/__stack/requests', undefined, adminHeaders)));
    case 'clear-requests': return void console.log(JSON.stringify(await call(env, 'DELETE', '/__stack/requests', undefined, adminHeaders)));
    case 'status': return void console.log(JSON.stringify(await call(env, 'GET', '/__stack/status', undefined, adminHeaders)));
    case 'mailbox': return void console.log(JSON.stringify(await call(env, 'GET', `/__stack/mailbox${a ? `?to=${encodeURIComponent(a)}` : ''}`, undefined, adminHeaders)));
    case 'clear-mailbox': return void console.log(JSON.stringify(await call(env, 'DELETE', '/__stack/mailbox', undefined, adminHeaders)));
    case 'provider': return void console.log(JSON.stringify(await call(env, 'POST', '/__stack/provider', JSON.parse(a || '{}'), adminHeaders)));
    case 'auth': return void console.log(JSON.stringify(await call(env, 'POST', '/__stack/auth', JSON.parse(a || '{}'), adminHeaders)));
    default:
      process.stderr.write(fs.readFileSync(__filename, 'utf8').split('\n').slice(2, 23).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
      process.exit(2);
  }
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`admin: ${e.message}\n`);
  process.exit(1);
});
