// prepared.js — node-postgres named prepared statements under concurrency.
// Run by internal/drivertest (and by hand for measurements):
//
//   node prepared.js '{"host":..., "port":..., "user":..., "password":...,
//                      "database":..., "ca_file":..., "clients":20, "queries":200}'
//
// Every client runs `queries` named statements with its own values and
// checks each answer: even ones are `select $1::int + 1` named
// capydb_add_one in every client, odd ones `select $1::int + <client>` named
// capydb_add_<client> (as internal/drivertest.Query). Prints one JSON line:
// {"queries": n, "errors": n, "wrong": n, "first_error": "..."}.
'use strict';
const fs = require('fs');
const { Client } = require('pg');

async function main() {
  const cfg = JSON.parse(process.argv[2]);
  const out = { queries: 0, errors: 0, wrong: 0, first_error: '' };
  const fail = (kind, msg) => {
    out[kind]++;
    if (!out.first_error) out.first_error = msg;
  };
  const one = async (id) => {
    const client = new Client({
      host: cfg.host, port: cfg.port, user: cfg.user, password: cfg.password, database: cfg.database,
      ssl: { ca: fs.readFileSync(cfg.ca_file, 'utf8') },
    });
    client.on('error', (e) => fail('errors', 'client: ' + e.message));
    await client.connect();
    try {
      for (let i = 0; i < cfg.queries; i++) {
        const v = id * 100000 + i;
        out.queries++;
        try {
          // A name shared by every client (as an app's code has it), or the client's own.
          const add = i % 2 === 0 ? 1 : id;
          const name = i % 2 === 0 ? 'capydb_add_one' : `capydb_add_${id}`;
          const r = await client.query({ name, text: `select $1::int + ${add} as n`, values: [v] });
          if (r.rows.length !== 1 || r.rows[0].n !== v + add) {
            fail('wrong', `got ${JSON.stringify(r.rows)} for ${v}`);
          }
        } catch (e) {
          fail('errors', e.message);
        }
      }
    } finally {
      await client.end().catch(() => {});
    }
  };
  const clients = [];
  for (let id = 1; id <= cfg.clients; id++) clients.push(one(id).catch((e) => fail('errors', 'connect: ' + e.message)));
  await Promise.all(clients);
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(2);
});
