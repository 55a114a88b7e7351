'use strict';
// Sign-in without a password, as Supabase Auth (GoTrue) does it, for the local test stack:
//   GET  /auth/v1/authorize      provider check, redirect_to checked against the allow-list (else
//                                the Site URL), a PKCE flow state stored, then a 302 to the
//                                provider: here the stand-in provider page of the gateway
//   GET  /auth/v1/callback       the provider's answer: the user found, linked or created, then
//                                a 302 to redirect_to?code=<auth code> (or ?error=...)
//   POST /auth/v1/token?grant_type=pkce   {auth_code, code_verifier}: S256 checked, single use,
//                                the flow state's life is cfg.flowStateExpiry (300 s)
//   POST /auth/v1/otp            an email link and a 6-digit code, put in the stack's mailbox
//   POST /auth/v1/verify         {type, email, token} or {type, token_hash}: a session
//   GET  /auth/v1/verify         the link in the mail: a 303 to redirect_to?code=... (PKCE) or
//                                #access_token=... (implicit), or with error=... on failure
// and the stand-ins around them (served by the gateway, see gateway.js):
//   /__provider/<name>/authorize  the provider's consent page (continue / deny links, and a
//                                meta refresh doing the test's chosen answer, so a real browser
//                                needs no clicks)
//   /site/                       the project's Site URL: a page showing where the browser landed
// Wording, status codes and error codes follow supabase/auth (internal/api/external.go,
// token.go, otp.go, magic_link.go, verify.go, utilities/request.go).
const crypto = require('node:crypto');
const fs = require('node:fs');
const jwt = require('./jwt');

const KNOWN_PROVIDERS = ['apple', 'azure', 'bitbucket', 'discord', 'facebook', 'figma', 'fly', 'github', 'gitlab',
  'google', 'kakao', 'keycloak', 'linkedin', 'linkedin_oidc', 'notion', 'spotify', 'slack', 'slack_oidc', 'twitch',
  'twitter', 'workos', 'zoom'];
const LOCALHOSTS = ['localhost', '127.0.0.1', '::1', '0.0.0.0', '::'];
// What a real provider says when the user refuses (GitHub's wording; Google sends no description).
const DENIED = 'The user has denied your application access.';

const sha256url = (s) => crypto.createHash('sha256').update(s).digest('base64url');
const tokenHash = (email, code) => crypto.createHash('sha224').update(email + code).digest('hex');
const html = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// gobwas/glob with '.' and '/' as separators, as GoTrue compiles the redirect allow-list.
function globRegex(glob) {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') { re += '.*'; i++; } else if (c === '*') re += '[^./]*';
    else if (c === '?') re += '[^./]';
    else re += c.replace(/[\\^$+.()|{}[\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function parseUrl(s) {
  try {
    return new URL(s);
  } catch (_) {
    return null;
  }
}
const hostOf = (u) => u.hostname.replace(/^\[(.*)\]$/, '$1');

function isLoopbackIp(h) {
  if (/^127\.\d+\.\d+\.\d+$/.test(h)) return true;
  return h === '::1' || /^(0+:){7}0*1$/.test(h) || h === '0:0:0:0:0:0:0:1';
}
const isIpLiteral = (h) => /^\d+\.\d+\.\d+\.\d+$/.test(h) || h.includes(':');

function createFlows({ db, cfg, tx, newSession, sessionJson, authError, userJson, log }) {
  const providerCodes = new Map(); // provider code -> {provider, email, name, exp}
  const mailbox = [];
  let mailSeq = 0;
  // What the stand-in provider does next: who signs in, and allow / deny / manual (no refresh).
  const provider = { email: 'google-user@example.com', name: 'Google User', decision: 'allow' };

  // Every secret of a sign-in the stack hands out or receives (auth codes, verifiers, email
  // tokens and codes), one a line in cfg.issuedFile: what the secrets check hunts for in the
  // editor's logs. (The client's state is not one: it is in the URL the user is shown.)
  function issued(...values) {
    if (!cfg.issuedFile) return;
    const lines = values.filter((v) => typeof v === 'string' && v !== '').map((v) => `${v}\n`).join('');
    if (lines) fs.appendFileSync(cfg.issuedFile, lines, { mode: 0o600 });
  }

  const publicUrl = () => cfg.publicUrl;
  const siteUrl = () => cfg.siteUrl || `${cfg.publicUrl.replace('127.0.0.1', 'localhost')}/site/`;
  const callbackUrl = () => `${publicUrl()}/auth/v1/callback`;

  // utilities.IsRedirectURLValid. cfg.redirectRule 'current': a loopback IP literal is always
  // allowed (supabase/auth since v2.171.0, 2025-04, and a loopback Site URL host matches on any
  // port since 2026-06); 'legacy': only the Site URL's host and the allow-list (older servers).
  function redirectValid(s) {
    if (!s) return false;
    const site = parseUrl(siteUrl());
    const ref = parseUrl(s);
    if (!site) return false;
    if (!ref && /^https?:\/\//i.test(s)) return false;
    if (ref) {
      const h = hostOf(ref);
      if (cfg.redirectRule === 'legacy') {
        if (hostOf(site) === h) return true;
      } else {
        if (hostOf(site) === h && site.protocol === ref.protocol && (site.port === ref.port || LOCALHOSTS.includes(h))) return true;
        if (/^\d+$/.test(h)) return false;
        if (isIpLiteral(h)) return isLoopbackIp(h);
      }
    }
    const bare = s.split('#')[0];
    return cfg.redirectUrls.some((g) => globRegex(g).test(bare));
  }

  // utilities.GetReferrer: redirect_to (header, then query), then Referer, then the Site URL.
  function referrer(req, url) {
    const asked = req.headers.redirect_to || url.searchParams.get('redirect_to');
    if (redirectValid(asked)) return asked;
    if (redirectValid(req.headers.referer)) return req.headers.referer;
    return siteUrl();
  }

  function validatePkce(req, method, challenge) {
    if (!challenge !== !method) {
      throw authError(req, 400, 'validation_failed', 'PKCE flow requires code_challenge_method and code_challenge');
    }
    if (challenge && (challenge.length < 43 || challenge.length > 128)) {
      throw authError(req, 400, 'validation_failed', 'code challenge has to be between 43 and 128 characters');
    }
    if (method && !['s256', 'plain'].includes(String(method).toLowerCase())) {
      throw authError(req, 400, 'validation_failed', `unsupported code_challenge method "${method}"`);
    }
  }

  async function newFlowState(client, { userId, providerType, authMethod, challenge, method }) {
    return (await client.query(
      `insert into auth.flow_state (user_id, auth_code, code_challenge_method, code_challenge, provider_type, authentication_method)
       values ($1, $2, $3, $4, $5, $6) returning *`,
      [userId || null, crypto.randomUUID(), String(method).toLowerCase(), challenge, providerType, authMethod])).rows[0];
  }

  const redirect = (status, location) => ({ status, headers: { Location: location, 'Cache-Control': 'no-store' }, body: '' });

  // Adds params to a URL's query (keeping what the client put there), and optionally the same
  // to its fragment, as GoTrue's prepPKCERedirectURL / prepErrorRedirectURL do.
  function withParams(base, params, { query = true, fragment = false } = {}) {
    const u = parseUrl(base) || parseUrl(siteUrl());
    if (query) for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') u.searchParams.set(k, v);
    if (fragment) {
      const h = new URLSearchParams();
      for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') h.set(k, v);
      u.hash = h.toString();
    }
    return u.toString();
  }

  // ---- OAuth: /authorize, the provider stand-in, /callback ---------------------------------
  async function authorize(req, url) {
    const name = String(url.searchParams.get('provider') || '').toLowerCase();
    if (!KNOWN_PROVIDERS.includes(name)) {
      throw authError(req, 400, 'validation_failed', `Unsupported provider: Provider ${name} could not be found`);
    }
    if (!cfg.authProviders.includes(name)) {
      throw authError(req, 400, 'validation_failed', 'Unsupported provider: provider is not enabled');
    }
    const challenge = url.searchParams.get('code_challenge') || '';
    const method = url.searchParams.get('code_challenge_method') || '';
    const back = referrer(req, url);
    validatePkce(req, method, challenge);
    let flowId = '';
    if (challenge) {
      const flow = await newFlowState(db.admin, { providerType: name, authMethod: 'oauth', challenge, method });
      flowId = flow.id;
      issued(flow.auth_code);
    }
    const now = Math.floor(Date.now() / 1000);
    const state = jwt.sign({ exp: now + 300, site_url: siteUrl(), id: '00000000-0000-0000-0000-000000000000',
      provider: name, referrer: back, flow_state_id: flowId }, cfg.jwtSecret);
    // Like GoTrue, every other query parameter goes on to the provider (login_hint, ...).
    const to = new URL(`${publicUrl()}/__provider/${name}/authorize`);
    to.searchParams.set('client_id', 'shelf-local');
    to.searchParams.set('redirect_uri', callbackUrl());
    to.searchParams.set('response_type', 'code');
    to.searchParams.set('scope', 'email profile');
    for (const [k, v] of url.searchParams) {
      if (!['provider', 'scopes', 'code_challenge', 'code_challenge_method'].includes(k)) to.searchParams.set(k, v);
    }
    to.searchParams.set('state', state);
    return redirect(302, to.toString());
  }

  // The provider's consent page. A real browser follows the meta refresh; an HTTP client follows
  // the link with id="continue" (or id="deny").
  function providerPage(name, url) {
    const q = url.searchParams;
    const page = (status, body) => ({ status, headers: { 'Content-Type': 'text/html; charset=utf-8' }, body });
    if (q.get('client_id') !== 'shelf-local' || q.get('redirect_uri') !== callbackUrl()) {
      return page(400, '<!doctype html><title>Error 400</title><p>invalid_request: redirect_uri_mismatch</p>');
    }
    const email = q.get('login_hint') || provider.email;
    const link = (decision) => {
      const u = new URL(`${publicUrl()}/__provider/${name}/consent`);
      u.searchParams.set('decision', decision);
      u.searchParams.set('email', email);
      u.searchParams.set('state', q.get('state') || '');
      return u.toString();
    };
    const refresh = provider.decision === 'manual' ? ''
      : `<meta http-equiv="refresh" content="0;url=${html(link(provider.decision === 'deny' ? 'deny' : 'allow'))}">`;
    return page(200, `<!doctype html><html><head><meta charset="utf-8"><title>Sign in - ${html(name)} (test stand-in)</title>${refresh}</head>
<body><h1>${html(name)} (test stand-in)</h1><p>Continue to shelf-local as ${html(email)}?</p>
<p><a id="continue" href="${html(link('allow'))}">Continue</a> <a id="deny" href="${html(link('deny'))}">Cancel</a></p></body></html>`);
  }

  function providerConsent(name, url) {
    const q = url.searchParams;
    const back = new URL(callbackUrl());
    back.searchParams.set('state', q.get('state') || '');
    if (q.get('decision') !== 'allow') {
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', DENIED);
      return redirect(302, back.toString());
    }
    const code = crypto.randomBytes(18).toString('base64url');
    issued(code);
    const email = String(q.get('email') || provider.email).toLowerCase();
    providerCodes.set(code, { provider: name, email, name: provider.name, exp: Date.now() + 600000 });
    back.searchParams.set('code', code);
    return redirect(302, back.toString());
  }

  // An error during the callback goes back to the client in the query and the fragment.
  function oauthErrorRedirect(back, e) {
    const b = e.body || {};
    const statusMap = { 400: 'invalid_request', 401: 'unauthorized_client', 403: 'access_denied', 500: 'server_error', 503: 'temporarily_unavailable' };
    const params = e.oauth
      ? { error: e.oauth.error, error_description: e.oauth.description }
      : { error: statusMap[e.status] || 'server_error', error_description: b.message || b.msg || 'error', error_code: b.error_code || b.code };
    return redirect(302, withParams(back, params, { query: true, fragment: true }));
  }

  async function userForIdentity(client, name, email, fullName) {
    const sub = String(BigInt(`0x${crypto.createHash('sha256').update(`${name}:${email}`).digest('hex').slice(0, 15)}`));
    const identityData = { avatar_url: '', email, email_verified: true, full_name: fullName, iss: `https://${name}.example`,
      name: fullName, phone_verified: false, picture: '', provider_id: sub, sub };
    const found = (await client.query(
      `select u.* from auth.identities i join auth.users u on u.id = i.user_id where i.provider = $1 and i.provider_id = $2`,
      [name, sub])).rows[0];
    let user = found;
    if (!user) {
      // Automatic linking: a user with the same (verified) email gets the new identity.
      user = (await client.query('select * from auth.users where email = $1', [email])).rows[0];
      if (!user) {
        user = (await client.query(
          `insert into auth.users (email, encrypted_password, email_confirmed_at, raw_app_meta_data, raw_user_meta_data)
           values ($1, null, now(), $2, $3) returning *`,
          [email, JSON.stringify({ provider: name, providers: [name] }), JSON.stringify(identityData)])).rows[0];
      }
      await client.query(
        `insert into auth.identities (provider_id, provider, user_id, identity_data, email, last_sign_in_at)
         values ($1, $2, $3, $4, $5, now())`, [sub, name, user.id, JSON.stringify(identityData), email]);
    }
    // app_metadata.providers lists every identity; provider stays the first one.
    user = (await client.query(
      `update auth.users set raw_app_meta_data = raw_app_meta_data || jsonb_build_object('providers',
         (select jsonb_agg(distinct p) from (select provider p from auth.identities where user_id = $1
           union select jsonb_array_elements_text(coalesce(raw_app_meta_data->'providers', '[]')) from auth.users where id = $1) x)),
         raw_user_meta_data = raw_user_meta_data || $2::jsonb, updated_at = now()
       where id = $1 returning *`, [user.id, JSON.stringify(identityData)])).rows[0];
    return user;
  }

  async function callback(req, url) {
    const q = url.searchParams;
    const stateToken = q.get('state');
    const d = stateToken ? jwt.decode(stateToken, cfg.jwtSecret) : { ok: false };
    const now = Math.floor(Date.now() / 1000);
    if (!stateToken || !d.ok || !d.claims.provider || (d.claims.exp && d.claims.exp < now)) {
      // loadExternalState fails: back to the Site URL with the error.
      const [code, msg] = !stateToken ? ['bad_oauth_callback', 'OAuth state parameter missing']
        : ['bad_oauth_state', 'OAuth callback with invalid state'];
      return redirect(303, withParams(siteUrl(), { error: 'invalid_request', error_code: code, error_description: msg }));
    }
    const back = d.claims.referrer || siteUrl();
    try {
      if (q.get('error')) {
        const e = new Error('provider error');
        e.oauth = { error: q.get('error'), description: q.get('error_description') || '' };
        throw e;
      }
      const pcode = q.get('code');
      if (!pcode) throw authError(req, 400, 'bad_oauth_callback', 'OAuth callback with missing authorization code missing');
      const who = providerCodes.get(pcode);
      providerCodes.delete(pcode);
      if (!who || who.exp < Date.now() || who.provider !== d.claims.provider) {
        throw authError(req, 500, 'unexpected_failure', 'Unable to exchange external code');
      }
      const flowId = d.claims.flow_state_id;
      const out = await tx(async (client) => {
        let flow = null;
        if (flowId) {
          flow = (await client.query('select * from auth.flow_state where id = $1 for update', [flowId])).rows[0];
          if (!flow) throw authError(req, 422, 'flow_state_not_found', 'Flow state not found');
        }
        const user = await userForIdentity(client, who.provider, who.email, who.name);
        await client.query('update auth.users set last_sign_in_at = now() where id = $1', [user.id]);
        if (flow) {
          await client.query('update auth.flow_state set user_id = $2, auth_code_issued_at = now(), updated_at = now() where id = $1',
            [flow.id, user.id]);
          return { code: flow.auth_code };
        }
        return { session: await newSession(client, user, 'oauth') };
      });
      if (out.code) return redirect(302, withParams(back, { code: out.code }));
      const s = out.session;
      const frag = new URLSearchParams({ access_token: s.access_token, expires_at: String(s.expires_at), expires_in: String(s.expires_in),
        provider_token: crypto.randomBytes(16).toString('hex'), refresh_token: s.refresh_token, token_type: 'bearer' });
      const u = new URL(back);
      u.hash = frag.toString();
      return redirect(302, u.toString());
    } catch (e) {
      if (e.oauth || e.body) return oauthErrorRedirect(back, e);
      throw e;
    }
  }

  // ---- the code exchange -----------------------------------------------------------------
  async function pkceGrant(req, body) {
    const code = typeof body.auth_code === 'string' ? body.auth_code : '';
    const verifier = typeof body.code_verifier === 'string' ? body.code_verifier : '';
    issued(code, verifier);
    if (!code || !verifier) {
      throw authError(req, 400, 'validation_failed', 'invalid request: both auth code and code verifier should be non-empty');
    }
    return tx(async (client) => {
      const flow = (await client.query(
        `select f.*, extract(epoch from now() - coalesce(case when f.authentication_method = 'magiclink'
           then f.auth_code_issued_at end, f.created_at)) as age
         from auth.flow_state f where auth_code = $1 for update`, [code])).rows[0];
      if (!flow || !flow.user_id) throw authError(req, 404, 'flow_state_not_found', 'invalid flow state, no valid flow state found');
      if (Number(flow.age) > cfg.flowStateExpiry) {
        throw authError(req, 422, 'flow_state_expired', 'invalid flow state, flow state has expired');
      }
      const want = flow.code_challenge_method === 'plain' ? verifier : sha256url(verifier);
      const a = Buffer.from(want);
      const b = Buffer.from(flow.code_challenge);
      if (a.length !== b.length || !crypto.timingSafeEqual(a, b)) {
        throw authError(req, 400, 'bad_code_verifier', 'code challenge does not match previously saved code verifier');
      }
      const user = (await client.query('select * from auth.users where id = $1', [flow.user_id])).rows[0];
      const session = await newSession(client, user, flow.authentication_method);
      await client.query('delete from auth.flow_state where id = $1', [flow.id]);
      if (flow.authentication_method === 'oauth') session.provider_token = crypto.randomBytes(16).toString('hex');
      return session;
    });
  }

  // ---- email link and code -----------------------------------------------------------------
  function validEmail(req, email) {
    if (typeof email !== 'string' || !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) {
      throw authError(req, 400, 'validation_failed', 'Unable to validate email address: invalid format');
    }
    return email.trim().toLowerCase();
  }

  async function otp(req, url, body) {
    if (body.email && body.phone) throw authError(req, 400, 'validation_failed', 'Only an email address or phone number should be provided');
    validatePkce(req, body.code_challenge_method, body.code_challenge);
    if (body.phone) throw authError(req, 400, 'phone_provider_disabled', 'Unsupported phone provider');
    if (!body.email) throw authError(req, 400, 'validation_failed', 'One of email or phone must be set');
    const email = validEmail(req, body.email);
    const createUser = body.create_user === undefined ? true : !!body.create_user;
    const back = referrer(req, url);
    const pkce = !!body.code_challenge;
    const mail = await tx(async (client) => {
      let user = (await client.query('select *, extract(epoch from now() - recovery_sent_at) as since from auth.users where email = $1 for update',
        [email])).rows[0];
      if (!user) {
        if (!createUser) throw authError(req, 422, 'otp_disabled', 'Signups not allowed for otp');
        // mailer_autoconfirm: the new user is confirmed at once, then sent the link.
        user = (await client.query(
          `insert into auth.users (email, email_confirmed_at, raw_user_meta_data) values ($1, now(), $2) returning *, null::float as since`,
          [email, JSON.stringify(body.data || {})])).rows[0];
      }
      if (cfg.emailMinInterval > 0 && user.since !== null && Number(user.since) < cfg.emailMinInterval) {
        const left = Math.ceil(cfg.emailMinInterval - Number(user.since));
        throw authError(req, 429, 'over_email_send_rate_limit', `For security purposes, you can only request this after ${left} seconds.`);
      }
      const code = String(crypto.randomInt(0, 1000000)).padStart(6, '0');
      const token = (pkce ? 'pkce_' : '') + tokenHash(email, code);
      if (pkce) {
        const flow = await newFlowState(client, { userId: user.id, providerType: 'magiclink', authMethod: 'magiclink',
          challenge: body.code_challenge, method: body.code_challenge_method });
        issued(flow.auth_code);
      }
      issued(token, token.replace(/^pkce_/, ''), code);
      await client.query('update auth.users set recovery_token = $2, recovery_sent_at = now() where id = $1', [user.id, token]);
      const link = `${publicUrl()}/auth/v1/verify?token=${encodeURIComponent(token)}&type=magiclink&redirect_to=${encodeURIComponent(back)}`;
      return { to: email, code, link };
    });
    // The project's "Magic Link" template with the code line the setup guide adds ({{ .Token }}).
    const text = `Magic Link\n\nFollow this link to login:\n${mail.link}\n\nOr enter this code: ${mail.code}\n`;
    const body2 = `<h2>Magic Link</h2>\n<p>Follow this link to login:</p>\n<p><a href="${html(mail.link)}">Log In</a></p>\n` +
      `<p>Or enter this code: ${mail.code}</p>\n`;
    mailbox.push({ id: ++mailSeq, to: mail.to, from: 'noreply@mail.app.supabase.io', subject: 'Your Magic Link',
      text, html: body2, link: mail.link, code: mail.code, sent_at: new Date().toISOString() });
    if (mailbox.length > 500) mailbox.shift();
    return { status: 200, headers: { 'X-Supabase-Api-Version': '2024-01-01' }, body: {} };
  }

  const expired = (u) => !u.recovery_sent_at || Date.now() - new Date(u.recovery_sent_at).getTime() > cfg.otpExp * 1000;

  // verifyTokenHash: the user whose pending link this is, or otp_expired.
  async function userByTokenHash(req, client, hash, type) {
    if (!['email', 'magiclink', 'recovery', 'signup', 'invite'].includes(type)) {
      throw authError(req, 400, 'validation_failed', 'Invalid email verification type');
    }
    const bare = hash.replace(/^pkce_/, '');
    const user = (await client.query(
      `select * from auth.users where recovery_token = $1 or recovery_token = 'pkce_' || $1 for update`, [bare])).rows[0];
    if (!user || expired(user)) throw authError(req, 403, 'otp_expired', 'Email link is invalid or has expired');
    return user;
  }

  async function signInVerified(client, user) {
    return (await client.query(
      `update auth.users set recovery_token = null, email_confirmed_at = coalesce(email_confirmed_at, now()),
         last_sign_in_at = now(), updated_at = now() where id = $1 returning *`, [user.id])).rows[0];
  }

  async function verifyPost(req, body) {
    const type = body.type;
    if (!type) throw authError(req, 400, 'validation_failed', 'Verify requires a verification type');
    const token = body.token || '';
    const hash = body.token_hash || '';
    if ((!token && !hash) || (token && hash)) throw authError(req, 400, 'validation_failed', 'Verify requires either a token or a token hash');
    return tx(async (client) => {
      let user;
      if (token) {
        if (body.phone && !body.email) throw authError(req, 400, 'phone_provider_disabled', 'Unsupported phone provider');
        if (!body.email) throw authError(req, 400, 'validation_failed', 'Only an email address or phone number should be provided on verify');
        let email;
        try {
          email = validEmail(req, body.email);
        } catch (_) {
          throw authError(req, 422, 'validation_failed', 'Invalid email format');
        }
        if (!['email', 'magiclink', 'recovery', 'signup', 'invite'].includes(type)) {
          throw authError(req, 400, 'validation_failed', 'Unsupported verification type');
        }
        user = (await client.query('select * from auth.users where email = $1 for update', [email])).rows[0];
        const h = tokenHash(email, String(token).replace(/-/g, ''));
        const ok = user && !expired(user) && (user.recovery_token === h || user.recovery_token === `pkce_${h}`);
        if (!ok) throw authError(req, 403, 'otp_expired', 'Token has expired or is invalid');
      } else {
        if (body.email || body.phone || body.redirect_to) throw authError(req, 400, 'validation_failed', 'Only the token_hash and type should be provided');
        user = await userByTokenHash(req, client, hash, type);
      }
      return newSession(client, await signInVerified(client, user), 'otp');
    });
  }

  async function verifyGet(req, url) {
    const token = url.searchParams.get('token') || '';
    const type = url.searchParams.get('type') || '';
    const back = referrer(req, url);
    if (!type) throw authError(req, 400, 'validation_failed', 'Verify requires a verification type');
    if (!token) throw authError(req, 400, 'validation_failed', 'Verify requires a token or a token hash');
    const pkce = token.startsWith('pkce_');
    try {
      const out = await tx(async (client) => {
        const user = await signInVerified(client, await userByTokenHash(req, client, token, type));
        if (!pkce) return { session: await newSession(client, user, 'otp') };
        const method = type === 'email' ? 'magiclink' : type;
        const flow = (await client.query(
          `select * from auth.flow_state where user_id = $1 and authentication_method = $2 order by created_at desc limit 1 for update`,
          [user.id, method])).rows[0];
        if (!flow) throw authError(req, 400, 'flow_state_not_found', 'No associated flow state found. No valid flow state found for user.');
        await client.query('update auth.flow_state set auth_code_issued_at = now(), updated_at = now() where id = $1', [flow.id]);
        return { code: flow.auth_code };
      });
      if (out.code) return redirect(303, withParams(back, { code: out.code }));
      const s = out.session;
      const u = new URL(back);
      u.hash = new URLSearchParams({ access_token: s.access_token, expires_at: String(s.expires_at), expires_in: String(s.expires_in),
        refresh_token: s.refresh_token, token_type: 'bearer', type }).toString();
      return redirect(303, u.toString());
    } catch (e) {
      if (!e.body) throw e;
      const b = e.body;
      const map = { 400: 'invalid_request', 401: 'unauthorized_client', 403: 'access_denied', 500: 'server_error' };
      const params = { error: map[e.status], error_code: b.error_code || b.code, error_description: b.message || b.msg };
      // PKCE: in the query as well as the fragment (prepErrorRedirectURL).
      return redirect(303, withParams(back, params, { query: pkce, fragment: true }));
    }
  }

  // Routes of /auth/v1 handled here; null when the path is not one of them.
  async function handle(req, url, path, body) {
    const m = req.method;
    if (m === 'GET' && path === '/authorize') return authorize(req, url);
    if (m === 'GET' && path === '/callback') return callback(req, url);
    if (m === 'POST' && path === '/otp') return otp(req, url, body);
    if (m === 'POST' && path === '/verify') return { status: 200, headers: { 'X-Supabase-Api-Version': '2024-01-01' }, body: await verifyPost(req, body) };
    if (m === 'GET' && path === '/verify') return verifyGet(req, url);
    return null;
  }

  // The gateway's pages outside /auth/v1: the provider stand-in and the Site URL.
  function handlePage(req, url) {
    const pm = /^\/__provider\/([a-z_]+)\/(authorize|consent)$/.exec(url.pathname);
    if (pm && req.method === 'GET') return pm[2] === 'authorize' ? providerPage(pm[1], url) : providerConsent(pm[1], url);
    if (url.pathname.startsWith('/site/') && req.method === 'GET') {
      // Shows where the browser ended, for a person (or a test) to copy.
      return { status: 200, headers: { 'Content-Type': 'text/html; charset=utf-8' },
        body: `<!doctype html><html><head><meta charset="utf-8"><title>shelf-local web app (test stand-in)</title></head>
<body><h1>shelf-local web app (test stand-in)</h1><p>You are at: <code id="url">${html(url.toString())}</code></p>
<script>document.getElementById('url').textContent = location.href;</script></body></html>` };
    }
    return null;
  }

  // Test hooks (gateway /__stack/...): the mailbox and the provider's next answer.
  function readMailbox(to) {
    return mailbox.filter((x) => !to || x.to === String(to).toLowerCase());
  }
  function clearMailbox() {
    mailbox.length = 0;
  }
  function setProvider(b) {
    for (const k of ['email', 'name', 'decision']) if (b[k] !== undefined) provider[k] = String(b[k]);
    return { ...provider };
  }

  return { handle, handlePage, pkceGrant, readMailbox, clearMailbox, setProvider, redirectValid, siteUrl, _log: log, _sessionJson: sessionJson, _userJson: userJson };
}

module.exports = { createFlows, globRegex, KNOWN_PROVIDERS };
