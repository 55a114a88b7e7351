// Acts as the web app: signs in with the official supabase-js client and
// inserts one prompt, as prompt-builder would. Prints the new row's id.
// Usage: node webapp-write.mjs URL ANON_KEY EMAIL PASSWORD TITLE
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';

const [url, key, email, password, title] = process.argv.slice(2);
// Node 20 has no native WebSocket; realtime-js needs one given.
const supabase = createClient(url, key, {
  auth: { persistSession: false, autoRefreshToken: false },
  realtime: { transport: WebSocket },
});
const { data: auth, error: authError } = await supabase.auth.signInWithPassword({ email, password });
if (authError) throw authError;
const { data, error } = await supabase
  .from('prompts')
  .insert({ user_id: auth.user.id, title, content: 'written by the web app', tags: ['web'] })
  .select()
  .single();
if (error) throw error;
console.log(data.id);
process.exit(0);
