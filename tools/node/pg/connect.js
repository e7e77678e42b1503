// Usage: node connect.js URL...
// Connects to each URL with exactly that connection string (node-postgres
// parses sslmode, sslrootcert and friends itself) and prints one JSON line
// per URL: {"ok":true,"user":…,"answer":42,"serial":…} or
// {"ok":false,"code":…,"message":…}. Used by CapyDB's Go tests.
const { Client } = require('pg')

async function probe(url) {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 10000 })
  try {
    await c.connect()
    const r = await c.query('select current_user as "user", 41 + 1 as answer')
    const peer = c.connection.stream.getPeerCertificate ? c.connection.stream.getPeerCertificate() : {}
    return { ok: true, user: r.rows[0].user, answer: r.rows[0].answer, serial: peer.serialNumber || '' }
  } catch (e) {
    return { ok: false, code: e.code || '', message: e.message }
  } finally {
    await c.end().catch(() => {})
  }
}

;(async () => {
  for (const url of process.argv.slice(2)) {
    console.log(JSON.stringify(await probe(url)))
  }
})()
