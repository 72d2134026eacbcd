// Node's own HTTP server as an upstream (node tests/hostile/node_upstream.js PORT).
// Every answer embeds the request's X-Request-ID, as the scripted upstream's good body does:
//   /data?case=early_hints  res.writeEarlyHints() (a real 103), then the 200 20 ms later
//   /data?case=chunked      the body in two writes: Node frames it with chunked encoding
//   anything else           one res.end(): Node sets Content-Length
'use strict';
const http = require('http');

const port = Number(process.argv[2]);
const body = (id) =>
  `{"id": "${id}", "from": "hostile-upstream", "pad": "${'x'.repeat(160)}"}`;

const server = http.createServer((req, res) => {
  const id = req.headers['x-request-id'] || '';
  const kase = new URL(req.url, 'http://upstream').searchParams.get('case');
  res.setHeader('Content-Type', 'application/json');
  if (kase === 'early_hints') {
    res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
    setTimeout(() => res.end(body(id)), 20);
  } else if (kase === 'chunked') {
    const text = body(id);
    res.write(text.slice(0, 40));
    setTimeout(() => res.end(text.slice(40)), 5);
  } else {
    res.end(body(id));
  }
});
server.keepAliveTimeout = 30000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
