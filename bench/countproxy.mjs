// A byte-counting TCP proxy, so every client's traffic to the gateway is measured the same
// way, at the wire (HTTP headers, TLS-less bodies, websocket frames, all of it).
//
//   node countproxy.mjs [--delay-ms D --rate-mbit R] TARGET_HOST:PORT NAME [NAME...]
//
// With --delay-ms and --rate-mbit it also emulates a link: each NAME is one client's access
// link, each direction a serial line of R Mbit/s (a chunk waits for the line, then takes its
// size in time) followed by D ms of one-way delay (so the round trip is 2 D); a new connection
// waits one round trip before its first bytes move, as a TCP handshake would. Bytes are
// counted as they arrive, before the delay.
//
// Listens on 127.0.0.1 with one port per NAME (chosen by the system) and one control port;
// prints one JSON line {"control":P,"ports":{"NAME":P,...}} on stdout once listening.
// Control port (HTTP): GET /counts -> {"NAME":{"up":bytes client->server,"down":bytes
// server->client,"conns":connections accepted}}; POST /reset zeroes the counters.
// Stops on SIGTERM/SIGINT.
import net from 'node:net';
import http from 'node:http';

const argv = process.argv.slice(2);
const opt = (name) => {
  const i = argv.indexOf(name);
  if (i < 0) return 0;
  const v = Number(argv[i + 1]);
  argv.splice(i, 2);
  return v;
};
const delayMs = opt('--delay-ms');
const rateMbit = opt('--rate-mbit');
const link = delayMs > 0 || rateMbit > 0;
const [target, ...names] = argv;
if (!target || names.length === 0) {
  process.stderr.write('usage: countproxy.mjs HOST:PORT NAME [NAME...]\n');
  process.exit(2);
}
const [thost, tport] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
const counts = {};
const sockets = new Set();

// One direction of one emulated link: chunks leave in order, each when the line is free
// for its size and the delay has passed. deliver() is called in the order chunks came.
function line() {
  const queue = [];
  let free = 0;
  let timer = null;
  const run = () => {
    timer = null;
    const t = performance.now();
    while (queue.length && queue[0].at <= t + 0.2) queue.shift().deliver();
    if (queue.length) timer = setTimeout(run, Math.max(0, queue[0].at - t));
  };
  return (len, deliver) => {
    const t = performance.now();
    free = Math.max(t, free) + (rateMbit > 0 ? (len * 8) / (rateMbit * 1000) : 0);
    queue.push({ at: free + delayMs, deliver });
    if (!timer) timer = setTimeout(run, Math.max(0, queue[0].at - t));
  };
}

function listen(name) {
  counts[name] = { up: 0, down: 0, conns: 0 };
  const upLine = link ? line() : null;
  const downLine = link ? line() : null;
  // Through the link when there is one, else at once.
  const send = (ln, len, deliver) => (ln ? ln(len, deliver) : deliver());
  const server = net.createServer((client) => {
    const c = counts[name];
    c.conns++;
    client.setNoDelay(true);
    const upstream = net.connect(tport, thost);
    upstream.setNoDelay(true);
    sockets.add(client);
    sockets.add(upstream);
    // The handshake's round trip on an emulated link.
    if (link) {
      client.pause();
      setTimeout(() => client.resume(), 2 * delayMs);
    }
    // Count what each side delivers, then forward it; back-pressure through pause/resume.
    client.on('data', (d) => {
      counts[name].up += d.length;
      send(upLine, d.length, () => {
        if (!upstream.destroyed && !upstream.write(d)) client.pause();
      });
    });
    upstream.on('data', (d) => {
      counts[name].down += d.length;
      send(downLine, d.length, () => {
        if (!client.destroyed && !client.write(d)) upstream.pause();
      });
    });
    upstream.on('drain', () => client.resume());
    client.on('drain', () => upstream.resume());
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    // An end follows the data before it through the link.
    client.on('end', () => send(upLine, 0, () => upstream.end()));
    upstream.on('end', () => send(downLine, 0, () => client.end()));
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve([name, server.address().port])));
}

const control = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/reset') {
    for (const n of Object.keys(counts)) counts[n] = { up: 0, down: 0, conns: 0 };
  } else if (!(req.method === 'GET' && req.url === '/counts')) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(counts));
});

const ports = Object.fromEntries(await Promise.all(names.map(listen)));
await new Promise((resolve) => control.listen(0, '127.0.0.1', resolve));
process.stdout.write(JSON.stringify({ control: control.address().port, ports }) + '\n');

const stop = () => {
  for (const s of sockets) s.destroy();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
