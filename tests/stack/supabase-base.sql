-- What a Supabase project has around the application's tables, for the local test stack only.
-- Loaded into a fresh cluster BEFORE sql/schema.sql. A real project already has all of this
-- (in richer form); never run this file against one.
--
--   roles      anon, authenticated, service_role (NOLOGIN) and authenticator (LOGIN NOINHERIT),
--              the role PostgREST connects as and switches from with `set local role`
--   auth       auth.users / auth.sessions / auth.refresh_tokens / auth.identities /
--              auth.flow_state, the subset the gateway's Auth endpoints need, and auth.uid() /
--              auth.role() / auth.jwt() / auth.email()
--   realtime   realtime.cast() and realtime.check_filter(), mirrors of the functions the Realtime
--              server installs in every project, used by the gateway to shape and filter events
--   publication supabase_realtime, empty, as on a new project
--   grants     Supabase's default privileges on schema public

create extension if not exists pgcrypto;

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
end
$$;
grant anon, authenticated, service_role to authenticator;

-- ---------------------------------------------------------------------------------------------
-- auth: users and sessions. Passwords are bcrypt hashes made with pgcrypto's crypt().
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

create table if not exists auth.users (
  id                 uuid primary key default gen_random_uuid(),
  aud                text not null default 'authenticated',
  role               text not null default 'authenticated',
  email              text unique,
  encrypted_password text,
  email_confirmed_at timestamptz,
  last_sign_in_at    timestamptz,
  raw_app_meta_data  jsonb not null default '{"provider":"email","providers":["email"]}',
  raw_user_meta_data jsonb not null default '{}',
  is_anonymous       boolean not null default false,
  -- The pending email link / code: sha224(email || code) in hex, "pkce_"-prefixed when the
  -- link ends in a PKCE exchange; cleared once used (GoTrue keeps it the same way).
  recovery_token     text,
  recovery_sent_at   timestamptz,
  created_at         timestamptz not null default now(),
  updated_at         timestamptz not null default now()
);

-- One row per way a user signs in besides the password (google, github, email link, ...).
create table if not exists auth.identities (
  id              uuid primary key default gen_random_uuid(),
  provider_id     text not null,
  provider        text not null,
  user_id         uuid not null references auth.users (id) on delete cascade,
  identity_data   jsonb not null default '{}',
  email           text,
  last_sign_in_at timestamptz,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  unique (provider_id, provider)
);

-- A PKCE sign-in under way (GoTrue's auth.flow_state): made by /authorize or /otp with the
-- client's code challenge; the user is filled in when the provider (or the email link) says
-- who signed in; the auth code is exchanged, once, at /token?grant_type=pkce.
create table if not exists auth.flow_state (
  id                     uuid primary key default gen_random_uuid(),
  user_id                uuid references auth.users (id) on delete cascade,
  auth_code              text not null unique,
  code_challenge_method  text not null,
  code_challenge         text not null,
  provider_type          text not null,
  authentication_method  text not null,
  auth_code_issued_at    timestamptz,
  created_at             timestamptz not null default now(),
  updated_at             timestamptz not null default now()
);

create table if not exists auth.sessions (
  id         uuid primary key default gen_random_uuid(),
  user_id    uuid not null references auth.users (id) on delete cascade,
  aal        text not null default 'aal1',
  amr        text not null default 'password', -- how the session began (the amr claim)
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- One row per issued refresh token. Rotation marks the used token revoked and records its
-- child (parent = the token it replaced), as GoTrue does.
create table if not exists auth.refresh_tokens (
  id         bigserial primary key,
  token      text not null unique,
  user_id    uuid not null references auth.users (id) on delete cascade,
  session_id uuid not null references auth.sessions (id) on delete cascade,
  parent     text,
  revoked    boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- The claims of the current request, as PostgREST and Realtime set them
-- (request.jwt.claims; the older request.jwt.claim.sub is the fallback Supabase keeps).
create or replace function auth.jwt() returns jsonb language sql stable as $$
  select coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb
$$;
create or replace function auth.uid() returns uuid language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
  )::uuid
$$;
create or replace function auth.role() returns text language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'
  )::text
$$;
create or replace function auth.email() returns text language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email'
  )::text
$$;
grant execute on function auth.jwt(), auth.uid(), auth.role(), auth.email()
  to anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
-- realtime: helpers with the semantics of the Realtime server's own realtime.cast() and
-- realtime.check_equality_op(), so event values and filters behave as on Supabase
-- (a uuid filter matches case-insensitively, `in` casts to an array of the column type, ...).
create schema if not exists realtime;

-- A wal2json value (as text) of a given type, turned into the JSON the client receives.
create or replace function realtime.cast(val text, type_ regtype) returns jsonb
language plpgsql immutable as $$
declare
  res jsonb;
begin
  if val is null then
    return 'null'::jsonb;
  end if;
  execute format('select to_jsonb(%L::' || type_::text || ')', val) into res;
  return res;
end
$$;

-- One `column=op.value` filter against a column value. Raises for an uncastable value, which
-- the gateway reports the way the server does (a system message at subscribe time).
create or replace function realtime.check_filter(op text, type_ regtype, val_1 text, val_2 text, negate boolean)
returns boolean language plpgsql stable as $$
declare
  res boolean;
  sym text;
begin
  if op = 'is' then
    if val_2 not in ('null', 'true', 'false', 'unknown') then
      raise exception 'invalid value for is filter: must be null, true, false, or unknown';
    end if;
    execute format('select %L::%s %s %s', val_1, type_::text,
                   case when negate then 'IS NOT' else 'IS' end, upper(val_2)) into res;
    return res;
  end if;
  sym := case op when 'eq' then '=' when 'neq' then '!=' when 'lt' then '<' when 'lte' then '<='
                 when 'gt' then '>' when 'gte' then '>=' when 'in' then '= any'
                 when 'like' then 'LIKE' when 'ilike' then 'ILIKE' else null end;
  if sym is null then
    raise exception 'unsupported equality operator: %', op;
  end if;
  execute format('select %L::%s %s (%L::%s)', val_1, type_::text, sym, val_2,
                 case when op = 'in' then type_::text || '[]' else type_::text end) into res;
  return case when negate then not res else res end;
end
$$;

-- A new Supabase project has this publication, with no tables in it.
do $$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Supabase's default privileges: the API roles may use schema public, and tables created there
-- by postgres are granted to them (row-level security is what restricts rows).
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
