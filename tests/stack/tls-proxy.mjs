// A TLS front for a plain local server, so tests can speak HTTPS and WSS to it
// with a certificate made at test time. Bytes pass through unchanged.
// Usage: node tls-proxy.mjs CERT.pem KEY.pem TARGET_PORT  (prints "PORT <n>")
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const [cert, key, target] = process.argv.slice(2);
const server = tls.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (client) => {
  const up = net.connect(Number(target), '127.0.0.1');
  client.pipe(up).pipe(client);
  const end = () => { client.destroy(); up.destroy(); };
  client.on('error', end);
  up.on('error', end);
  client.on('close', end);
  up.on('close', end);
});
// A client that refuses the certificate shows up here; that is expected.
server.on('tlsClientError', () => {});
server.listen(0, '127.0.0.1', () => process.stdout.write(`PORT ${server.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
