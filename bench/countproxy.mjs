// A byte-counting TCP proxy, so every client's traffic to the gateway is measured the same
// way, at the wire (HTTP headers, TLS-less bodies, websocket frames, all of it).
//
//   node countproxy.mjs TARGET_HOST:PORT NAME [NAME...]
//
// Listens on 127.0.0.1 with one port per NAME (chosen by the system) and one control port;
// prints one JSON line {"control":P,"ports":{"NAME":P,...}} on stdout once listening.
// Control port (HTTP): GET /counts -> {"NAME":{"up":bytes client->server,"down":bytes
// server->client,"conns":connections accepted}}; POST /reset zeroes the counters.
// Stops on SIGTERM/SIGINT.
import net from 'node:net';
import http from 'node:http';

const [target, ...names] = process.argv.slice(2);
if (!target || names.length === 0) {
  process.stderr.write('usage: countproxy.mjs HOST:PORT NAME [NAME...]\n');
  process.exit(2);
}
const [thost, tport] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
const counts = {};
const sockets = new Set();

function listen(name) {
  counts[name] = { up: 0, down: 0, conns: 0 };
  const server = net.createServer((client) => {
    const c = counts[name];
    c.conns++;
    client.setNoDelay(true);
    const upstream = net.connect(tport, thost);
    upstream.setNoDelay(true);
    sockets.add(client);
    sockets.add(upstream);
    // Count what each side delivers, then forward it; back-pressure through pause/resume.
    client.on('data', (d) => {
      counts[name].up += d.length;
      if (!upstream.write(d)) client.pause();
    });
    upstream.on('data', (d) => {
      counts[name].down += d.length;
      if (!client.write(d)) upstream.pause();
    });
    upstream.on('drain', () => client.resume());
    client.on('drain', () => upstream.resume());
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
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
