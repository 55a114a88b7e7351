#!/usr/bin/env node
// A browser without JavaScript, for the sign-in tests: opens URL, follows every redirect (to
// any host: the project, the stand-in provider, the editor's loopback listener, the Site URL)
// and, on the stand-in provider's page, the link a person would click.
//
//   node browse.mjs URL [--click continue|deny] [--max-hops N]
//
// Prints one JSON line: {url, status, body} of the page it ended on (body cut to 2 KiB), or
// {url, error} when a connection failed (e.g. nothing listens on the loopback port). Exits 0
// either way; the test judges.
const args = process.argv.slice(2);
let click = 'continue';
let maxHops = 15;
let url = null;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--click') click = args[++i];
  else if (args[i] === '--max-hops') maxHops = Number(args[++i]);
  else url = args[i];
}
if (!url) {
  process.stderr.write('usage: node browse.mjs URL [--click continue|deny] [--max-hops N]\n');
  process.exit(2);
}
const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36';
const unhtml = (s) => s.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&');
const done = (o) => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
  process.exit(0);
};

for (let hop = 0; hop < maxHops; hop++) {
  let r;
  try {
    r = await fetch(url, { redirect: 'manual', headers: { 'User-Agent': UA, Accept: 'text/html' }, signal: AbortSignal.timeout(20000) });
  } catch (e) {
    done({ url, error: String((e.cause && e.cause.code) || e.message) });
  }
  if (r.status >= 300 && r.status < 400 && r.headers.get('location')) {
    url = new URL(r.headers.get('location'), url).toString();
    continue;
  }
  const body = await r.text();
  const m = new RegExp(`id="${click}" href="([^"]+)"`).exec(body);
  if (r.status === 200 && m) {
    url = unhtml(m[1]);
    continue;
  }
  done({ url, status: r.status, body: body.slice(0, 2048) });
}
done({ url, error: 'too many redirects' });
