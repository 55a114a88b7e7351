'use strict';
// A Supabase Auth (GoTrue) subset at /auth/v1: password and refresh-token grants with rotating
// single-use refresh tokens, the current user, logout, signup (auto-confirmed) and the admin
// user API; the sign-ins without a password (OAuth with PKCE, email link or code) are in
// auth-flows.js. Users and sessions live in the database (auth.*), so a restarted gateway keeps them.
// Access tokens are HS256 JWTs with GoTrue's claims; their lifetime is cfg.jwtExp seconds.
const crypto = require('node:crypto');
const jwt = require('./jwt');
const { HttpError } = require('./rest');
const { createFlows } = require('./auth-flows');

// GoTrue's error bodies depend on the API version the client announces: auth-js sends
// `X-Supabase-Api-Version: 2024-01-01` and gets {code: <error_code>, message}; older clients
// (and a C client that sends no header) get {code: <status>, error_code, msg}. The
// x-sb-error-code header is always set.
function authError(req, status, errorCode, msg, extra) {
  const v = Date.parse(req.headers['x-supabase-api-version'] || '');
  const modern = !Number.isNaN(v) && v >= Date.parse('2024-01-01');
  const body = modern
    ? { code: errorCode, message: msg, ...extra }
    : { code: status, error_code: errorCode, msg, ...extra };
  const headers = { 'x-sb-error-code': errorCode };
  if (modern) headers['X-Supabase-Api-Version'] = '2024-01-01';
  return new HttpError(status, body, headers);
}

const randomToken = () => {
  const abc = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = crypto.randomBytes(16);
  let s = '';
  for (const b of bytes) s += abc[b % abc.length];
  return s;
};

function userJson(u) {
  const iso = (t) => (t ? new Date(t).toISOString() : undefined);
  return {
    id: u.id,
    aud: u.aud,
    role: u.role,
    email: u.email,
    email_confirmed_at: iso(u.email_confirmed_at),
    phone: '',
    confirmed_at: iso(u.email_confirmed_at),
    last_sign_in_at: iso(u.last_sign_in_at),
    app_metadata: u.raw_app_meta_data,
    user_metadata: u.raw_user_meta_data,
    identities: u.identities || [],
    created_at: iso(u.created_at),
    updated_at: iso(u.updated_at),
    is_anonymous: u.is_anonymous,
  };
}

function createAuth({ db, cfg, log }) {
  const issuer = () => `${cfg.publicUrl}/auth/v1`;

  function accessToken(user, sessionId, amrTime, method = 'password') {
    const now = Math.floor(Date.now() / 1000);
    const exp = now + cfg.jwtExp;
    const claims = {
      aud: user.aud,
      exp,
      iat: now,
      iss: issuer(),
      sub: user.id,
      email: user.email,
      phone: '',
      app_metadata: user.raw_app_meta_data,
      user_metadata: user.raw_user_meta_data,
      role: user.role,
      aal: 'aal1',
      amr: [{ method, timestamp: amrTime || now }],
      session_id: sessionId,
      is_anonymous: user.is_anonymous,
    };
    return { token: jwt.sign(claims, cfg.jwtSecret), exp };
  }

  function sessionJson(user, sessionId, refreshToken, method) {
    const { token, exp } = accessToken(user, sessionId, undefined, method);
    // Fault hook (config auth_reported_exp): tell clients a longer life than the token has,
    // so their refresh timer is late, as a laptop's is after a sleep.
    const told = cfg.authReportedExp || cfg.jwtExp;
    return {
      access_token: token,
      token_type: 'bearer',
      expires_in: told,
      expires_at: exp - cfg.jwtExp + told,
      refresh_token: refreshToken,
      user: userJson(user),
    };
  }

  // method: how the user proved who they are (the amr claim): password, oauth, otp, magiclink.
  async function newSession(client, user, method = 'password') {
    const s = (await client.query('insert into auth.sessions (user_id, amr) values ($1, $2) returning id', [user.id, method])).rows[0];
    const rt = randomToken();
    await client.query('insert into auth.refresh_tokens (token, user_id, session_id) values ($1, $2, $3)', [rt, user.id, s.id]);
    await client.query('update auth.users set last_sign_in_at = now() where id = $1', [user.id]);
    return sessionJson({ ...user, last_sign_in_at: new Date(), identities: await identities(client, user.id) }, s.id, rt, method);
  }

  // The user's identities (OAuth providers), as GoTrue lists them in the user object.
  async function identities(client, userId) {
    const iso = (t) => (t ? new Date(t).toISOString() : undefined);
    return (await client.query('select * from auth.identities where user_id = $1 order by created_at', [userId])).rows
      .map((i) => ({ identity_id: i.id, id: i.provider_id, user_id: i.user_id, identity_data: i.identity_data, provider: i.provider,
        email: i.email, last_sign_in_at: iso(i.last_sign_in_at), created_at: iso(i.created_at), updated_at: iso(i.updated_at) }));
  }

  async function tx(fn) {
    const client = await db.admin.connect();
    try {
      await client.query('begin');
      const out = await fn(client);
      await client.query('commit');
      return out;
    } catch (e) {
      await client.query('rollback').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
  }

  async function createUser(req, { email, password, userMetadata }, duplicateCode, duplicateMsg) {
    if (typeof email !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(email)) {
      throw authError(req, 400, 'validation_failed', 'Unable to validate email address: invalid format');
    }
    if (typeof password !== 'string' || password.length < 6) {
      throw authError(req, 422, 'weak_password', 'Password should be at least 6 characters.', { weak_password: { reasons: ['length'] } });
    }
    try {
      return (await db.admin.query(
        `insert into auth.users (email, encrypted_password, email_confirmed_at, raw_user_meta_data)
         values (lower($1), crypt($2, gen_salt('bf', 4)), now(), $3) returning *`,
        [email, password, JSON.stringify(userMetadata || {})])).rows[0];
    } catch (e) {
      if (e.code === '23505') throw authError(req, 422, duplicateCode, duplicateMsg);
      throw e;
    }
  }

  // The bearer token of a request that must carry a user's JWT (GET /user, logout).
  async function requireUser(req) {
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization || '');
    if (!m) throw authError(req, 401, 'no_authorization', 'This endpoint requires a valid Bearer token');
    const d = jwt.decode(m[1], cfg.jwtSecret);
    if (!d.ok) throw authError(req, 403, 'bad_jwt', 'invalid JWT: unable to parse or verify signature, token is malformed');
    if (typeof d.claims.exp !== 'number' || d.claims.exp <= Date.now() / 1000) {
      throw authError(req, 403, 'bad_jwt', 'invalid JWT: unable to parse or verify signature, token has invalid claims: token is expired');
    }
    if (!d.claims.sub) throw authError(req, 403, 'bad_jwt', 'invalid claim: missing sub claim');
    const user = (await db.admin.query('select * from auth.users where id = $1', [d.claims.sub])).rows[0];
    if (!user) throw authError(req, 403, 'user_not_found', 'User from sub claim in JWT does not exist');
    if (d.claims.session_id) {
      const s = (await db.admin.query('select id from auth.sessions where id = $1', [d.claims.session_id])).rows[0];
      if (!s) throw authError(req, 403, 'session_not_found', 'Session from session_id claim in JWT does not exist');
    }
    return { user, claims: d.claims };
  }

  function requireServiceRole(req) {
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization || '');
    const d = m ? jwt.decode(m[1], cfg.jwtSecret) : { ok: false };
    if (!d.ok || d.claims.role !== 'service_role') throw authError(req, 403, 'not_admin', 'User not allowed');
  }

  async function passwordGrant(req, body) {
    const email = body.email;
    const password = body.password;
    if (!email && !body.phone) throw authError(req, 400, 'validation_failed', 'missing email or phone');
    if (typeof password !== 'string' || password === '') throw authError(req, 400, 'validation_failed', 'missing password');
    const user = (await db.admin.query(
      `select * from auth.users where email = lower($1) and encrypted_password = crypt($2, encrypted_password)`,
      [String(email || ''), password])).rows[0];
    if (!user) throw authError(req, 400, 'invalid_credentials', 'Invalid login credentials');
    return tx((client) => newSession(client, user));
  }

  // Refresh tokens are single use. A revoked token presented again within the reuse interval
  // gets the session's current token back (GoTrue allows this for concurrent refreshes);
  // later it is "Already Used" and, as GoTrue does, the whole session is revoked.
  async function refreshGrant(req, body) {
    const rt = body.refresh_token;
    if (typeof rt !== 'string' || rt === '') throw authError(req, 400, 'validation_failed', 'refresh_token required');
    return tx(async (client) => {
      const row = (await client.query(
        `select rt.*, extract(epoch from now() - rt.updated_at) as age, s.amr from auth.refresh_tokens rt
          join auth.sessions s on s.id = rt.session_id where rt.token = $1 for update of rt`, [rt])).rows[0];
      if (!row) throw authError(req, 400, 'refresh_token_not_found', 'Invalid Refresh Token: Refresh Token Not Found');
      const user = (await client.query('select * from auth.users where id = $1', [row.user_id])).rows[0];
      if (row.revoked) {
        if (Number(row.age) < cfg.refreshReuseInterval) {
          const active = (await client.query(
            'select token from auth.refresh_tokens where session_id = $1 and not revoked order by id desc limit 1',
            [row.session_id])).rows[0];
          if (active) return sessionJson(user, row.session_id, active.token, row.amr);
        }
        await client.query('delete from auth.sessions where id = $1', [row.session_id]);
        // The deletion must stick although an error is answered.
        await client.query('commit');
        await client.query('begin');
        throw authError(req, 400, 'refresh_token_already_used', 'Invalid Refresh Token: Already Used');
      }
      await client.query('update auth.refresh_tokens set revoked = true, updated_at = now() where id = $1', [row.id]);
      const next = randomToken();
      await client.query(
        'insert into auth.refresh_tokens (token, user_id, session_id, parent) values ($1, $2, $3, $4)',
        [next, row.user_id, row.session_id, rt]);
      await client.query('update auth.sessions set updated_at = now() where id = $1', [row.session_id]);
      return sessionJson(user, row.session_id, next, row.amr);
    });
  }

  // Handles one /auth/v1/... request. Returns {status, headers, body} (body: object or '').
  async function handle(req, url, rawBody) {
    const path = url.pathname.replace(/^\/auth\/v1/, '') || '/';
    const method = req.method;
    let body = {};
    if (rawBody.length) {
      try {
        body = JSON.parse(rawBody.toString('utf8'));
      } catch (_) {
        throw authError(req, 400, 'bad_json', 'Could not parse request body as JSON');
      }
    }
    const ok = (b, status = 200) => ({ status, headers: { 'X-Supabase-Api-Version': '2024-01-01' }, body: b });

    if (method === 'GET' && path === '/health') {
      return ok({ version: 'shelf-test-stack', name: 'GoTrue', description: 'GoTrue-compatible subset for tests' });
    }
    if (method === 'GET' && path === '/settings') {
      const external = { email: true, phone: false };
      for (const p of cfg.authProviders) external[p] = true;
      return ok({ external, disable_signup: false, mailer_autoconfirm: true, phone_autoconfirm: false });
    }
    if (method === 'POST' && path === '/token') {
      const grant = url.searchParams.get('grant_type');
      if (grant === 'password') return ok(await passwordGrant(req, body));
      if (grant === 'refresh_token') return ok(await refreshGrant(req, body));
      if (grant === 'pkce') return ok(await flows.pkceGrant(req, body));
      throw authError(req, 400, 'validation_failed', `unsupported_grant_type`);
    }
    if (method === 'GET' && path === '/user') {
      const { user } = await requireUser(req);
      return ok(userJson({ ...user, identities: await identities(db.admin, user.id) }));
    }
    if (method === 'POST' && path === '/logout') {
      const { user, claims } = await requireUser(req);
      const scope = url.searchParams.get('scope') || 'global';
      if (scope === 'local') await db.admin.query('delete from auth.sessions where id = $1', [claims.session_id]);
      else if (scope === 'others') await db.admin.query('delete from auth.sessions where user_id = $1 and id <> $2', [user.id, claims.session_id]);
      else await db.admin.query('delete from auth.sessions where user_id = $1', [user.id]);
      return { status: 204, headers: {}, body: '' };
    }
    if (method === 'POST' && path === '/signup') {
      const user = await createUser(req, { email: body.email, password: body.password, userMetadata: body.data },
        'user_already_exists', 'User already registered');
      return ok(await tx((client) => newSession(client, user)));
    }
    if (method === 'POST' && path === '/admin/users') {
      requireServiceRole(req);
      const user = await createUser(req, { email: body.email, password: body.password, userMetadata: body.user_metadata },
        'email_exists', 'A user with this email address has already been registered');
      return ok(userJson(user));
    }
    const del = /^\/admin\/users\/([0-9a-f-]{36})$/i.exec(path);
    if (del && method === 'DELETE') {
      requireServiceRole(req);
      const r = await db.admin.query('delete from auth.users where id = $1 returning *', [del[1]]);
      if (!r.rows[0]) throw authError(req, 404, 'user_not_found', 'User not found');
      return ok(userJson(r.rows[0]));
    }
    const r = await flows.handle(req, url, path, body, rawBody);
    if (r) return r;
    throw authError(req, 404, 'not_found', 'Not Found');
  }

  const flows = createFlows({ db, cfg, tx, newSession, sessionJson, authError, userJson, log });
  return { handle, authError, flows };
}

module.exports = { createAuth };
