'use strict';
// The project's API keys, as a Supabase project has them and as its API gateway treats them:
//   legacy   anon / service_role JWTs signed with the project's JWT secret
//   new      sb_publishable_... (the anon role) and sb_secret_... (the service role): opaque
//            strings, not JWTs; the gateway swaps them for a JWT of their role before the
//            request reaches PostgREST, Auth or Realtime.
// A secret key is refused when the request comes from a browser (judged by its User-Agent),
// since a secret key in a web page bypasses row-level security for anyone who reads the page.
// Keys are derived from the JWT secret, so stack.sh, the gateway and a restarted gateway agree.
const crypto = require('node:crypto');
const jwt = require('./jwt');

const B62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function base62(buf, n) {
  let s = '';
  for (let i = 0; s.length < n; i++) s += B62[buf[i % buf.length] % 62];
  return s;
}

// sb_<kind>_<22 random-looking chars>_<8-char checksum>, the shape of a real key.
function newKey(kind, secret) {
  const body = base62(crypto.createHmac('sha256', secret).update(`shelf-local ${kind}`).digest(), 22);
  const sum = base62(crypto.createHash('sha256').update(`sb_${kind}_${body}`).digest(), 8);
  return `sb_${kind}_${body}_${sum}`;
}

function projectKeys(secret) {
  return {
    anon: jwt.apiKey('anon', secret),
    serviceRole: jwt.apiKey('service_role', secret),
    publishable: newKey('publishable', secret),
    secret: newKey('secret', secret),
  };
}

// Browsers all announce themselves as Mozilla/5.0 (...) plus an engine; HTTP libraries and
// command-line tools (curl, node, libcurl, python-requests) do not.
function looksLikeBrowser(ua) {
  return /^Mozilla\/\d/.test(ua || '') && /(AppleWebKit|Gecko|Trident|Chrome|Safari|Firefox|Edg)\//.test(ua || '');
}

function createKeys(cfg) {
  const k = projectKeys(cfg.jwtSecret);
  // Which project key a value is: 'anon' | 'service_role' | 'publishable' | 'secret' | null.
  function kind(value) {
    if (value === k.anon) return 'anon';
    if (value === k.serviceRole) return 'service_role';
    if (value === k.publishable) return 'publishable';
    if (value === k.secret) return 'secret';
    return null;
  }
  const isNewStyle = (value) => typeof value === 'string' && value.startsWith('sb_');
  // The JWT to use in place of a key (the key itself for a legacy one); null if not a project key.
  // Downstream a new-style key becomes the JWT of its role (here the legacy key of that role).
  function asJwt(value) {
    const kd = kind(value);
    if (kd === 'publishable') return k.anon;
    if (kd === 'secret') return k.serviceRole;
    if (kd) return value;
    return null;
  }
  return { keys: k, kind, isNewStyle, asJwt, looksLikeBrowser };
}

module.exports = { createKeys, projectKeys, looksLikeBrowser };
