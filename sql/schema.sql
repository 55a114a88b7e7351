-- shelf.nvim: the library tables of the prompt-builder web app, for a Supabase project.
--
-- Run it in the SQL editor of a Supabase project (or `psql -f sql/schema.sql`) to start from an
-- empty project. It is idempotent: running it again, or on a project that already has the web
-- app's tables, changes nothing that exists. Column types and defaults are the web app's own
-- (its migration 001_create_prompt_schema.sql), so shelf.nvim and the web app share the data.
--
-- It relies on what every Supabase project has: the auth schema (auth.users, auth.uid()), the
-- roles anon / authenticated / service_role, and pgcrypto's gen_random_uuid() (built into
-- PostgreSQL 13+). The local test stack loads tests/stack/supabase-base.sql first to provide them.
--
-- Deliberately NOT done: `alter table ... replica identity full`. The web app's tables keep the
-- default replica identity, so a Realtime DELETE event carries only the primary key and a
-- DELETE never matches a `user_id=eq.<uid>` filter. shelf.nvim is built for that (DESIGN.md).

-- Folders of prompts ("projects" of type prompts). Folders nest through parent_id.
create table if not exists public.prompt_projects (
  id          uuid primary key default gen_random_uuid(),
  user_id     uuid not null references auth.users (id) on delete cascade,
  name        text not null,
  icon        text not null default '📁',
  folder_path text,
  parent_id   uuid references public.prompt_projects (id) on delete cascade,
  is_system   boolean default false,
  created_at  timestamptz default now(),
  updated_at  timestamptz default now(),
  unique (user_id, name, parent_id)
);

-- Folders of context blocks ("projects" of type datasets). Same shape as prompt_projects.
create table if not exists public.dataset_projects (
  id          uuid primary key default gen_random_uuid(),
  user_id     uuid not null references auth.users (id) on delete cascade,
  name        text not null,
  icon        text not null default '📁',
  folder_path text,
  parent_id   uuid references public.dataset_projects (id) on delete cascade,
  is_system   boolean default false,
  created_at  timestamptz default now(),
  updated_at  timestamptz default now(),
  unique (user_id, name, parent_id)
);

-- Saved prompts. Deleting their folder deletes them.
create table if not exists public.prompts (
  id          uuid primary key default gen_random_uuid(),
  user_id     uuid not null references auth.users (id) on delete cascade,
  project_id  uuid references public.prompt_projects (id) on delete cascade,
  title       text not null,
  description text,
  content     text not null,
  folder      text,
  tags        text[] default '{}',
  created_at  timestamptz default now(),
  updated_at  timestamptz default now()
);

-- Context blocks. Deleting their folder deletes them.
create table if not exists public.context_blocks (
  id          uuid primary key default gen_random_uuid(),
  user_id     uuid not null references auth.users (id) on delete cascade,
  project_id  uuid references public.dataset_projects (id) on delete cascade,
  title       text not null,
  content     text not null,
  tags        text[] default '{}',
  created_at  timestamptz default now(),
  updated_at  timestamptz default now()
);

-- The web app's indexes: lists are per user, ordered by time; folders are looked up by parent.
create index if not exists idx_prompt_projects_user_id    on public.prompt_projects (user_id);
create index if not exists idx_prompt_projects_parent_id  on public.prompt_projects (parent_id);
create index if not exists idx_dataset_projects_user_id   on public.dataset_projects (user_id);
create index if not exists idx_dataset_projects_parent_id on public.dataset_projects (parent_id);
create index if not exists idx_prompts_user_id            on public.prompts (user_id);
create index if not exists idx_prompts_project_id         on public.prompts (project_id);
create index if not exists idx_prompts_created_at         on public.prompts (created_at desc);
create index if not exists idx_context_blocks_user_id     on public.context_blocks (user_id);
create index if not exists idx_context_blocks_project_id  on public.context_blocks (project_id);
create index if not exists idx_context_blocks_created_at  on public.context_blocks (created_at desc);
-- shelf.nvim's own: its refresh asks for a user's rows changed since a time and counts those
-- before it, which these answer from the index alone, whatever the size of the library.
create index if not exists idx_prompt_projects_user_updated  on public.prompt_projects (user_id, updated_at);
create index if not exists idx_dataset_projects_user_updated on public.dataset_projects (user_id, updated_at);
create index if not exists idx_prompts_user_updated          on public.prompts (user_id, updated_at);
create index if not exists idx_context_blocks_user_updated   on public.context_blocks (user_id, updated_at);

-- Row-level security: a signed-in user sees and changes only their own rows. The anon key
-- (no user) matches nothing. `(select auth.uid())` is Supabase's recommended form (evaluated
-- once per statement instead of once per row).
alter table public.prompt_projects  enable row level security;
alter table public.dataset_projects enable row level security;
alter table public.prompts          enable row level security;
alter table public.context_blocks   enable row level security;

do $$
declare
  t text;
begin
  foreach t in array array['prompt_projects', 'dataset_projects', 'prompts', 'context_blocks'] loop
    if not exists (select 1 from pg_policies
                   where schemaname = 'public' and tablename = t
                     and policyname = 'Users manage their own ' || t) then
      execute format(
        'create policy %I on public.%I for all to authenticated '
        'using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id)',
        'Users manage their own ' || t, t);
    end if;
  end loop;
end
$$;

-- Privileges. A Supabase project grants these by default privileges already; stating them
-- keeps the file correct on a database where the defaults were changed.
grant usage on schema public to authenticated, service_role;
grant select, insert, update, delete on
  public.prompt_projects, public.dataset_projects, public.prompts, public.context_blocks
  to authenticated, service_role;

-- Realtime: Supabase streams changes of the tables in the `supabase_realtime` publication.
-- A Supabase project has that publication (empty); create it if missing, then add each table
-- unless it is already in it (or the publication covers all tables).
do $$
declare
  t text;
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
  if (select puballtables from pg_publication where pubname = 'supabase_realtime') then
    return;
  end if;
  foreach t in array array['prompt_projects', 'dataset_projects', 'prompts', 'context_blocks'] loop
    if not exists (select 1 from pg_publication_tables
                   where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = t) then
      execute format('alter publication supabase_realtime add table public.%I', t);
    end if;
  end loop;
end
$$;
