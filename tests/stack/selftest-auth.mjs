// The stack's Auth sign-ins without a password, and the new API keys, driven by the official
// @supabase/supabase-js (flowType 'pkce') as a web or native app drives them. The "browser" is
// a plain HTTP client that follows redirects and the provider page's links. If supabase-js and
// the stack disagree, the stack is wrong.
//
// Starts its own stack (or uses STACK_ENV's) like selftest.mjs. Run: node --test
// --test-force-exit selftest-auth.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { createHash, randomBytes } from 'node:crypto';
import { Stack, sleep } from './selftest-support.mjs';

const require = createRequire(import.meta.url);
const WebSocket = require('ws');
const jwt = require('./jwt.js');

const BROWSER_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36';
// Where the app listens for the redirect; nothing needs to listen: the browser stops there.
const APP = 'http://127.0.0.1:53682/callback';
const stack = new Stack();
let env = {};
let sql;

function client(key = env.SHELF_SUPABASE_PUBLISHABLE_KEY) {
  return stack.client(key, { flowType: 'pkce' });
}

const admin = (path, body, method) => stack.admin(path, body, method);

const unhtml = (s) => s.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&');

// A browser without JavaScript: follows redirects, and on the provider's page the link a person
// would click (id="continue" or id="deny"), until it is sent off the project's host. Returns
// that URL: where the app (or the Site URL) takes over.
async function browse(start, { click = 'continue', stopAtSite = true } = {}) {
  const gw = new URL(env.SHELF_SUPABASE_URL).host;
  let url = start;
  for (let hops = 0; hops < 12; hops++) {
    const u = new URL(url);
    if (u.host !== gw || (stopAtSite && u.pathname.startsWith('/site/'))) return url;
    const r = await fetch(url, { redirect: 'manual', headers: { 'User-Agent': BROWSER_UA } });
    if (r.status >= 300 && r.status < 400) {
      url = new URL(r.headers.get('location'), url).toString();
      continue;
    }
    const text = await r.text();
    const m = new RegExp(`id="${click}" href="([^"]+)"`).exec(text);
    if (r.status !== 200 || !m) return { status: r.status, body: text, url };
    url = unhtml(m[1]);
  }
  throw new Error(`too many hops from ${start}`);
}

const mails = async (to) => (await admin(`/__stack/mailbox?to=${encodeURIComponent(to)}`, undefined, 'GET')).messages;

before(async () => {
  await stack.start();
  ({ env, sql } = stack);
  await sql.query(`delete from auth.users where email like '%@oauth.test'`);
});

after(() => stack.stop());

test('keys: publishable and secret keys have the real shape and are not JWTs', () => {
  assert.match(env.SHELF_SUPABASE_PUBLISHABLE_KEY, /^sb_publishable_[A-Za-z0-9]{22}_[A-Za-z0-9]{8}$/);
  assert.match(env.SHELF_SUPABASE_SECRET_KEY, /^sb_secret_[A-Za-z0-9]{22}_[A-Za-z0-9]{8}$/);
  assert.equal(jwt.decode(env.SHELF_SUPABASE_PUBLISHABLE_KEY, env.JWT_SECRET).ok, false);
});

test('oauth: signInWithOAuth (pkce) -> provider page -> redirect_to?code -> exchangeCodeForSession; publishable key CRUD and realtime', async () => {
  await admin('/__stack/provider', { email: 'gina@oauth.test', name: 'Gina Google', decision: 'allow' });
  const c = client();
  const { data, error } = await c.auth.signInWithOAuth({ provider: 'google', options: { redirectTo: `${APP}?state=s1`, skipBrowserRedirect: true } });
  assert.equal(error, null);
  const auth = new URL(data.url);
  assert.equal(auth.pathname, '/auth/v1/authorize');
  assert.equal(auth.searchParams.get('code_challenge_method'), 's256');
  const landed = new URL(await browse(data.url));
  assert.equal(`${landed.origin}${landed.pathname}`, APP, 'sent back to the loopback redirect_to');
  assert.equal(landed.searchParams.get('state'), 's1', "the client's own parameters survive");
  const code = landed.searchParams.get('code');
  assert.match(code, /^[0-9a-f-]{36}$/);
  const ex = await c.auth.exchangeCodeForSession(code, { flowId: landed.searchParams.get('sb_flow_id') || undefined });
  assert.equal(ex.error, null);
  const user = ex.data.session.user;
  assert.equal(user.email, 'gina@oauth.test');
  assert.equal(user.app_metadata.provider, 'google');
  assert.deepEqual(user.app_metadata.providers, ['google']);
  assert.equal(user.user_metadata.full_name, 'Gina Google');
  assert.deepEqual(user.identities.map((i) => [i.provider, i.email]), [['google', 'gina@oauth.test']]);
  const me = await c.auth.getUser();
  assert.equal(me.data.user.identities[0].identity_data.email, 'gina@oauth.test');
  const claims = jwt.decode(ex.data.session.access_token, env.JWT_SECRET).claims;
  assert.equal(claims.amr[0].method, 'oauth');
  assert.equal(claims.role, 'authenticated');
  // A Google user has no password.
  const pw = await client().auth.signInWithPassword({ email: 'gina@oauth.test', password: 'anything' });
  assert.equal(pw.error.code, 'invalid_credentials');

  // The code is single use.
  const again = await fetch(`${env.SHELF_SUPABASE_URL}/auth/v1/token?grant_type=pkce`, {
    method: 'POST', headers: { apikey: env.SHELF_SUPABASE_PUBLISHABLE_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify({ auth_code: code, code_verifier: 'x'.repeat(50) }),
  });
  assert.equal(again.status, 404);
  assert.deepEqual(await again.json(), { code: 404, error_code: 'flow_state_not_found', msg: 'invalid flow state, no valid flow state found' });

  // The same user's library through the publishable key: CRUD under RLS, and realtime.
  const events = [];
  const ch = c.channel('lib').on('postgres_changes', { event: '*', schema: 'public', table: 'prompts', filter: `user_id=eq.${user.id}` },
    (p) => events.push(p));
  await new Promise((resolve, reject) => ch.subscribe((s, e) => (s === 'SUBSCRIBED' ? resolve() : s !== 'CLOSED' && reject(new Error(`${s} ${e}`)))));
  const ins = await c.from('prompts').insert({ user_id: user.id, title: 'g1', content: 'c' }).select().single();
  assert.equal(ins.error, null);
  for (let i = 0; i < 400 && !events.some((e) => e.new && e.new.id === ins.data.id); i++) await sleep(10);
  assert.ok(events.some((e) => e.eventType === 'INSERT' && e.new.id === ins.data.id), 'realtime INSERT with the publishable key');
  const anon = await client().from('prompts').select('id');
  assert.deepEqual(anon.data, [], 'the publishable key alone is the anon role');
  const secret = await client(env.SHELF_SUPABASE_SECRET_KEY).from('prompts').select('id').eq('id', ins.data.id);
  assert.equal(secret.data.length, 1, 'the secret key bypasses RLS (from a server)');
});

test('oauth: deny, unknown and disabled provider, redirect allow-list and Site URL, bad state', async () => {
  const c = client();
  await admin('/__stack/provider', { decision: 'deny' });
  const { data } = await c.auth.signInWithOAuth({ provider: 'google', options: { redirectTo: APP, skipBrowserRedirect: true } });
  // decision deny: the page's refresh says deny; a person clicks Cancel.
  const denied = new URL(await browse(data.url, { click: 'deny' }));
  assert.equal(denied.searchParams.get('error'), 'access_denied');
  assert.equal(denied.searchParams.get('error_description'), 'The user has denied your application access.');
  assert.equal(new URLSearchParams(denied.hash.slice(1)).get('error'), 'access_denied');
  assert.equal(denied.searchParams.get('code'), null);
  await admin('/__stack/provider', { decision: 'allow' });

  const get = (q) => fetch(`${env.SHELF_SUPABASE_URL}/auth/v1/authorize?${q}`, { redirect: 'manual' });
  let r = await get('provider=nope');
  assert.equal(r.status, 400);
  assert.equal((await r.json()).msg, 'Unsupported provider: Provider nope could not be found');
  r = await get('provider=gitlab');
  assert.equal((await r.json()).msg, 'Unsupported provider: provider is not enabled');
  r = await get('provider=google&code_challenge=abc');
  assert.equal((await r.json()).msg, 'PKCE flow requires code_challenge_method and code_challenge');

  // A loopback IP redirect needs no allow-list entry on current servers; localhost does.
  const state = async (redirectTo) => {
    const res = await get(`provider=google&redirect_to=${encodeURIComponent(redirectTo)}`);
    const st = new URL(res.headers.get('location')).searchParams.get('state');
    return jwt.decode(st, env.JWT_SECRET).claims.referrer;
  };
  assert.equal(await state('http://127.0.0.1:1234/cb'), 'http://127.0.0.1:1234/cb');
  assert.equal(await state('http://evil.example/cb'), env.STACK_SITE_URL);
  await admin('/__stack/auth', { redirect_rule: 'legacy', redirect_urls: ['http://localhost:4000/**'] });
  try {
    assert.equal(await state('http://127.0.0.1:1234/cb'), env.STACK_SITE_URL, 'older servers: Site URL instead');
    assert.equal(await state('http://localhost:4000/a/b?x=1'), 'http://localhost:4000/a/b?x=1');
    // The whole way: the browser ends on the Site URL with a code the app can still exchange.
    const { data: d2 } = await c.auth.signInWithOAuth({ provider: 'google', options: { redirectTo: APP, skipBrowserRedirect: true } });
    const site = new URL(await browse(d2.url));
    assert.equal(`${site.origin}${site.pathname}`, env.STACK_SITE_URL);
    const ex = await c.auth.exchangeCodeForSession(site.searchParams.get('code'));
    assert.equal(ex.error, null);
  } finally {
    await admin('/__stack/auth', { redirect_rule: 'current', redirect_urls: [] });
  }

  r = await fetch(`${env.SHELF_SUPABASE_URL}/auth/v1/callback?code=x&state=forged`, { redirect: 'manual' });
  assert.equal(r.status, 303);
  const bad = new URL(r.headers.get('location'));
  assert.equal(bad.searchParams.get('error_code'), 'bad_oauth_state');
});

test('oauth: wrong verifier, expired flow state', async () => {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const start = `${env.SHELF_SUPABASE_URL}/auth/v1/authorize?provider=github&redirect_to=${encodeURIComponent(APP)}` +
    `&code_challenge=${challenge}&code_challenge_method=s256`;
  const exchange = (code, v) => fetch(`${env.SHELF_SUPABASE_URL}/auth/v1/token?grant_type=pkce`, {
    method: 'POST', headers: { apikey: env.SHELF_SUPABASE_PUBLISHABLE_KEY, 'Content-Type': 'application/json', 'X-Supabase-Api-Version': '2024-01-01' },
    body: JSON.stringify({ auth_code: code, code_verifier: v }),
  });
  const code = new URL(await browse(start)).searchParams.get('code');
  let r = await exchange(code, `${verifier}x`);
  assert.equal(r.status, 400);
  assert.deepEqual(await r.json(), { code: 'bad_code_verifier', message: 'code challenge does not match previously saved code verifier' });
  r = await exchange(code, '');
  assert.equal((await r.json()).message, 'invalid request: both auth code and code verifier should be non-empty');
  await admin('/__stack/config', { flow_state_expiry: 0 });
  try {
    r = await exchange(code, verifier);
    assert.equal(r.status, 422);
    assert.equal((await r.json()).code, 'flow_state_expired');
  } finally {
    await admin('/__stack/config', { flow_state_expiry: 300 });
  }
  r = await exchange(code, verifier); // a wrong verifier did not use the code up
  assert.equal(r.status, 200);
  // Same email as the Google user: GitHub is linked to that user, whose first provider stays.
  const linked = (await r.json()).user.app_metadata;
  assert.equal(linked.provider, 'google');
  assert.deepEqual(linked.providers.sort(), ['github', 'google']);
});

test('email: signInWithOtp -> mailbox -> verifyOtp; the link -> ?code -> exchangeCodeForSession; wrong, reused, expired', async () => {
  await sql.query(`delete from auth.users where email = 'ella@oauth.test'`);
  const c = client();
  let r = await c.auth.signInWithOtp({ email: 'ella@oauth.test', options: { shouldCreateUser: false, emailRedirectTo: APP } });
  assert.equal(r.error.code, 'otp_disabled');
  assert.equal(r.error.status, 422);
  const svc = client(env.SHELF_SUPABASE_SECRET_KEY);
  assert.equal((await svc.auth.admin.createUser({ email: 'ella@oauth.test', password: 'ella-password', email_confirm: true })).error, null);

  await admin('/__stack/mailbox', undefined, 'DELETE');
  r = await c.auth.signInWithOtp({ email: 'ella@oauth.test', options: { shouldCreateUser: false, emailRedirectTo: APP } });
  assert.equal(r.error, null);
  let [mail] = await mails('ella@oauth.test');
  assert.match(mail.code, /^\d{6}$/);
  assert.ok(mail.text.includes(mail.code) && mail.html.includes('Log In'));
  const link = new URL(mail.link);
  assert.equal(link.pathname, '/auth/v1/verify');
  assert.equal(link.searchParams.get('type'), 'magiclink');
  assert.match(link.searchParams.get('token'), /^pkce_[0-9a-f]{56}$/);

  const wrong = await c.auth.verifyOtp({ email: 'ella@oauth.test', token: mail.code === '000000' ? '111111' : '000000', type: 'email' });
  assert.equal(wrong.error.code, 'otp_expired');
  assert.equal(wrong.error.status, 403);
  assert.equal(wrong.error.message, 'Token has expired or is invalid');
  const ok = await c.auth.verifyOtp({ email: 'ella@oauth.test', token: mail.code, type: 'email' });
  assert.equal(ok.error, null);
  assert.equal(ok.data.session.user.email, 'ella@oauth.test');
  assert.equal(jwt.decode(ok.data.session.access_token, env.JWT_SECRET).claims.amr[0].method, 'otp');
  const reused = await c.auth.verifyOtp({ email: 'ella@oauth.test', token: mail.code, type: 'email' });
  assert.equal(reused.error.code, 'otp_expired');
  // The link of a used code is dead too, and says so on the redirect.
  const dead = new URL(await browse(mail.link));
  assert.equal(dead.searchParams.get('error_code'), 'otp_expired');
  assert.equal(dead.searchParams.get('error_description'), 'Email link is invalid or has expired');

  // The link: GET /verify -> 303 redirect_to?code -> the PKCE exchange by the same client.
  const d = client();
  await admin('/__stack/mailbox', undefined, 'DELETE');
  assert.equal((await d.auth.signInWithOtp({ email: 'ella@oauth.test', options: { shouldCreateUser: false, emailRedirectTo: `${APP}?state=s2` } })).error, null);
  [mail] = await mails('ella@oauth.test');
  const landed = new URL(await browse(mail.link));
  assert.equal(landed.searchParams.get('state'), 's2');
  const ex = await d.auth.exchangeCodeForSession(landed.searchParams.get('code'), { flowId: landed.searchParams.get('sb_flow_id') || undefined });
  assert.equal(ex.error, null);
  assert.equal(ex.data.session.user.email, 'ella@oauth.test');
  assert.equal(jwt.decode(ex.data.session.access_token, env.JWT_SECRET).claims.amr[0].method, 'magiclink');

  // Expired: a code past otp_exp is refused.
  await admin('/__stack/config', { otp_exp: 0 });
  try {
    await c.auth.signInWithOtp({ email: 'ella@oauth.test', options: { shouldCreateUser: false } });
    [, mail] = await mails('ella@oauth.test');
    const late = await c.auth.verifyOtp({ email: 'ella@oauth.test', token: mail.code, type: 'email' });
    assert.equal(late.error.code, 'otp_expired');
  } finally {
    await admin('/__stack/config', { otp_exp: 3600 });
  }
  // Supabase's one-mail-a-minute limit, when switched on.
  await admin('/__stack/config', { email_min_interval: 60 });
  try {
    const limited = await c.auth.signInWithOtp({ email: 'ella@oauth.test', options: { shouldCreateUser: false } });
    assert.equal(limited.error.status, 429);
    assert.equal(limited.error.code, 'over_email_send_rate_limit');
  } finally {
    await admin('/__stack/config', { email_min_interval: 0 });
  }
});

test('keys: a secret key from a browser is refused (REST, Auth, Realtime); bad keys', async () => {
  const h = { apikey: env.SHELF_SUPABASE_SECRET_KEY, 'User-Agent': BROWSER_UA };
  let r = await fetch(`${env.SHELF_SUPABASE_URL}/rest/v1/prompts?select=id`, { headers: h });
  assert.equal(r.status, 401);
  assert.equal((await r.json()).message, 'Forbidden use of secret API key in browser');
  r = await fetch(`${env.SHELF_SUPABASE_URL}/auth/v1/settings`, { headers: h });
  assert.equal(r.status, 401);
  r = await fetch(`${env.SHELF_SUPABASE_URL}/auth/v1/settings`, { headers: { apikey: env.SHELF_SUPABASE_SECRET_KEY } });
  assert.equal(r.status, 200);
  const ws = new WebSocket(`${env.SHELF_SUPABASE_URL.replace('http', 'ws')}/realtime/v1/websocket?apikey=${env.SHELF_SUPABASE_SECRET_KEY}&vsn=2.0.0`,
    { headers: { 'User-Agent': BROWSER_UA } });
  const status = await new Promise((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
    ws.on('open', () => resolve('open'));
    ws.on('error', () => {});
  });
  ws.terminate();
  assert.equal(status, 401);
  // A new-style key in Authorization must be the apikey's own.
  r = await fetch(`${env.SHELF_SUPABASE_URL}/rest/v1/prompts?select=id`, {
    headers: { apikey: env.SHELF_SUPABASE_PUBLISHABLE_KEY, Authorization: `Bearer ${env.SHELF_SUPABASE_SECRET_KEY}` },
  });
  assert.equal(r.status, 401);
  r = await fetch(`${env.SHELF_SUPABASE_URL}/rest/v1/prompts?select=id`, { headers: { apikey: 'sb_publishable_nope' } });
  assert.equal(r.status, 401);
  assert.equal((await r.json()).message, 'Invalid API key');
});
