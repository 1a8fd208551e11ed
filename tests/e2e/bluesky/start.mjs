// Starts the reference AT Protocol services (PLC directory, PDS, AppView, from @atproto/dev-env) on loopback
// for the Bluesky end-to-end tests, prints their URLs as one JSON line on stdout, and stops them (dropping
// its PostgreSQL schemas) when stdin closes.
//
// Environment: DB_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test), REDIS_HOST (default
// 127.0.0.1:6379), E2E_SCHEMA (letters and underscores only; the services use <service>_<E2E_SCHEMA>).
//
// A small control server on 127.0.0.1 lets the tests drive what a real network does by itself over time:
//   POST /process                      the AppView indexes everything posted so far (TestNetwork.processAll)
//   POST /expired-access {"did": ...}  an app-password access JWT for the account that expired an hour ago
import http from 'node:http'
import process from 'node:process'

import { TestNetwork } from '@atproto/dev-env'
import * as jose from 'jose'
import pg from 'pg'

const dbUrl = process.env.DB_POSTGRES_URL || 'postgresql://postgres@127.0.0.1:5432/test'
const schema = process.env.E2E_SCHEMA || 'care_console_e2e'
if (!/^[A-Za-z_]+$/.test(schema)) {
  console.error(`E2E_SCHEMA must hold letters and underscores only, not ${JSON.stringify(schema)}`)
  process.exit(2)
}
process.env.REDIS_HOST ||= '127.0.0.1:6379'
// The services log every request through pino; the tests read only the JSON line on stdout.
process.env.LOG_ENABLED = 'false'

// TestNetwork.create names these schemas after the one it is given (dev-env network.js).
const schemas = ['appview', 'bsync', 'ozone'].map((service) => `${service}_${schema}`)

async function dropSchemas() {
  const client = new pg.Client({ connectionString: dbUrl })
  await client.connect()
  try {
    for (const name of schemas) {
      await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`)
    }
  } finally {
    await client.end()
  }
}

async function readJson(request) {
  let body = ''
  for await (const chunk of request) body += chunk
  return body ? JSON.parse(body) : {}
}

async function main() {
  await dropSchemas() // left over by a killed run that was given the same E2E_SCHEMA
  const network = await TestNetwork.create({ dbPostgresUrl: dbUrl, dbPostgresSchema: schema })
  const pds = network.pds

  const control = http.createServer(async (request, response) => {
    try {
      let out = {}
      if (request.method === 'POST' && request.url === '/process') {
        await network.processAll()
      } else if (request.method === 'POST' && request.url === '/expired-access') {
        const { did } = await readJson(request)
        const now = Math.floor(Date.now() / 1000)
        // Signed like the PDS's own access tokens (pds account-manager/helpers/auth.js), but already expired.
        const accessJwt = await new jose.SignJWT({ scope: 'com.atproto.appPass' })
          .setProtectedHeader({ typ: 'at+jwt', alg: 'HS256' })
          .setAudience(pds.ctx.cfg.service.did)
          .setSubject(did)
          .setIssuedAt(now - 7200)
          .setExpirationTime(now - 3600)
          .sign(pds.jwtSecretKey())
        out = { accessJwt }
      } else {
        response.writeHead(404).end()
        return
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out))
    } catch (err) {
      response.writeHead(500, { 'content-type': 'text/plain' }).end(String(err?.stack || err))
    }
  })
  await new Promise((resolve) => control.listen(0, '127.0.0.1', resolve))

  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    control.close()
    try {
      await network.close()
    } finally {
      await dropSchemas()
    }
    process.exit(0)
  }
  process.stdin.on('end', stop)
  process.stdin.on('close', stop)
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.stdin.resume()

  process.stdout.write(
    JSON.stringify({
      pds: pds.url,
      appview: network.bsky.url,
      plc: network.plc.url,
      control: `http://127.0.0.1:${control.address().port}`,
      schemas,
    }) + '\n',
  )
}

main().catch(async (err) => {
  console.error(err?.stack || err)
  try {
    await dropSchemas()
  } catch {
    // nothing more to clean
  }
  process.exit(1)
})
