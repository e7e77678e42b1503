// Usage: node connect-postgresjs.js CA_FILE|- URL...
// postgres.js on each URL, with ssl: { ca: <CA_FILE> } as docs/tls.md tells
// postgres.js users to verify ("-": no ssl option, the URL alone). Prints
// one JSON line per URL like connect.js. Used by CapyDB's Go tests.
const fs = require('fs')
const postgres = require('postgres')

async function probe(url, caFile) {
  const opts = { max: 1, prepare: false, connect_timeout: 10, onnotice: () => {} }
  if (caFile !== '-') opts.ssl = { ca: fs.readFileSync(caFile) }
  const sql = postgres(url, opts)
  try {
    const [r] = await sql`select current_user as "user", 41 + 1 as answer`
    return { ok: true, user: r.user, answer: r.answer }
  } catch (e) {
    return { ok: false, code: e.code || '', message: e.message }
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {})
  }
}

;(async () => {
  const [caFile, ...urls] = process.argv.slice(2)
  for (const url of urls) {
    console.log(JSON.stringify(await probe(url, caFile)))
  }
})()
