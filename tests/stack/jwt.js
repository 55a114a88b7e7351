'use strict';
// HS256 JSON Web Tokens with node:crypto, as Supabase signs them with the project's JWT secret.
// Used by all three servers: Auth issues tokens, PostgREST and Realtime verify them.
const crypto = require('node:crypto');

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function sign(payload, secret) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(payload));
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

// Checks the signature only; each server applies its own expiry rule (PostgREST allows 30 s of
// clock skew, Realtime none), so expiry is left to the caller.
// Returns {ok:true, claims} or {ok:false, reason:'malformed'|'signature'}.
function decode(token, secret) {
  if (typeof token !== 'string') return { ok: false, reason: 'malformed' };
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'malformed', parts: parts.length };
  let header;
  let claims;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch (_) {
    return { ok: false, reason: 'malformed' };
  }
  if (!header || header.alg !== 'HS256' || !claims || typeof claims !== 'object') {
    return { ok: false, reason: 'malformed' };
  }
  const want = crypto.createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest();
  const got = Buffer.from(parts[2], 'base64url');
  if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) {
    return { ok: false, reason: 'signature' };
  }
  return { ok: true, claims };
}

// The project's anon and service_role API keys. Deterministic for a given secret (fixed iat/exp,
// like a real project's keys that are valid for ten years), so the gateway and stack.sh, and a
// gateway restarted later, all agree on them.
function apiKey(role, secret) {
  return sign({ iss: 'supabase-demo', ref: 'shelf-local', role, iat: 1700000000, exp: 2000000000 }, secret);
}

module.exports = { sign, decode, apiKey };

if (require.main === module) {
  // `node jwt.js keys SECRET` prints the project's keys, for stack.sh: anon, service_role,
  // publishable, secret (one a line).
  const [cmd, secret] = process.argv.slice(2);
  if (cmd === 'keys' && secret) {
    const k = require('./keys').projectKeys(secret);
    process.stdout.write(`${k.anon}\n${k.serviceRole}\n${k.publishable}\n${k.secret}\n`);
  } else {
    process.stderr.write('usage: node jwt.js keys SECRET\n');
    process.exit(2);
  }
}
