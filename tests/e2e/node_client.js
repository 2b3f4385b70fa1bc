// node-postgres through the proxy: simple, multi-statement and parameterized
// (unnamed) queries, transactions, errors, and named prepared statements that
// are parsed once and then reused by name.  Connection settings come from the
// usual PG* environment variables; E2E_TABLE names a scratch table the test
// created.  Prints one JSON object with what it saw; exits non-zero on any
// unexpected error.
'use strict';
const { Client } = require('pg');

async function codeOf(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    return e.code || String(e);
  }
}

async function main() {
  const table = process.env.E2E_TABLE;
  const out = {};
  const c = new Client({ connectionTimeoutMillis: 5000, query_timeout: 15000 });
  await c.connect();

  out.simple = (await c.query("SELECT 1 AS one, 'a' || 'b' AS ab")).rows[0];
  out.multi = (await c.query('SELECT 1 AS n; SELECT 2 AS n')).map((r) => r.rows[0].n);
  out.param = (await c.query('SELECT $1::int + $2::int AS s, $3::text AS t', [40, 2, 'x'])).rows[0];

  await c.query('BEGIN');
  await c.query(`INSERT INTO ${table} (id, v) VALUES ($1, $2)`, [1, 'one']);
  await c.query(`INSERT INTO ${table} (id, v) VALUES ($1, $2)`, [2, 'two']);
  await c.query('COMMIT');
  await c.query('BEGIN');
  await c.query(`INSERT INTO ${table} (id, v) VALUES ($1, $2)`, [3, 'rolled back']);
  await c.query('ROLLBACK');
  out.count = (await c.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n;

  out.error = await codeOf(c.query('SELECT 1/0'));
  out.after_error = (await c.query('SELECT 2 AS two')).rows[0].two;
  out.param_error = await codeOf(c.query('SELECT $1::int AS v', ['not a number']));

  await c.query('BEGIN');
  out.tx_error = await codeOf(c.query(`INSERT INTO ${table} (id, v) VALUES (1, 'dup')`));
  out.in_failed_tx = await codeOf(c.query('SELECT 1'));
  await c.query('ROLLBACK');

  out.named = [];
  for (let i = 0; i < 5; i++) {
    const r = await c.query({ name: 'q1', text: 'SELECT $1::int + 1 AS v', values: [i] });
    out.named.push(r.rows[0].v);
    // Interleave transactions and other statements between the reuses.
    await c.query('BEGIN');
    await c.query({ name: 'q2', text: `SELECT v FROM ${table} WHERE id = $1`, values: [1] });
    await c.query('COMMIT');
  }
  out.named2 = (await c.query({ name: 'q2', text: `SELECT v FROM ${table} WHERE id = $1`, values: [2] })).rows[0].v;

  await c.end();
  console.log(JSON.stringify(out));
}

setTimeout(() => {
  console.error('node client timed out');
  process.exit(2);
}, 40000).unref();

main().catch((e) => {
  console.error('FAIL', (e && e.stack) || e);
  process.exit(1);
});
