// Postgres.js (npm `postgres`) through the proxy, with the driver's default
// settings: every parameterized tagged-template query becomes a named
// prepared statement (Parse + Describe + Flush first, then Bind/Execute/Sync),
// queries pipeline on a connection, sql.begin reserves a connection.
//
//   node postgres_js_client.js <scenario>
//
// Connection settings come from the PG* environment variables; E2E_TABLE names
// a scratch table the test created, E2E_CHANNEL a LISTEN channel.  Prints one
// JSON object (the last line of stdout) with what the scenario saw; exits
// non-zero on any unexpected error.
//
// The driver silently re-runs a query whose named statement the server does
// not know (error routine FetchPreparedStatement or RevalidateCachedQuery):
// that would hide a proxy that lost a statement, so the assignment the driver
// makes before such a retry (query.retried = error) is observed through a
// setter on Query.prototype (nothing changes on the wire) and every retry is
// reported in `retries`.
'use strict';
const postgres = require('postgres');
const { Readable } = require('stream');
const { pipeline } = require('stream/promises');

const path = require('path');

const TABLE = process.env.E2E_TABLE;
const CHANNEL = process.env.E2E_CHANNEL;
const retries = [];

// the driver's own Query class (same module instance the driver uses)
const { Query } = require(path.join(path.dirname(require.resolve('postgres')), 'query.js'));
Object.defineProperty(Query.prototype, 'retried', {
  configurable: true,
  get() { return undefined; },
  set(err) {
    retries.push([err.code, err.routine, err.message, this.string]);
    Object.defineProperty(this, 'retried', { value: err, writable: true, configurable: true });
  },
});

// Options that change nothing on the wire: silence notices, bound the
// connect time.
function connect(extra = {}) {
  return postgres({
    onnotice: () => {},
    connect_timeout: 10,
    ...extra,
  });
}

async function codeOf(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    return e.code || String(e);
  }
}

// JSON-friendly form of a row value (Dates, Buffers, nested arrays).
function plain(v) {
  if (v instanceof Date) return { date: v.toISOString() };
  if (Buffer.isBuffer(v)) return { hex: v.toString('hex') };
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'bigint') return { bigint: v.toString() };
  return v;
}

function plainRows(rows) {
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, plain(v)])));
}

const SAMPLE = {
  i: 42,
  t: 'héllo wörld \'quoted\' "dq" \\ back',
  n: '12345678901234567890.123456789',
  ts: new Date('2024-02-29T12:34:56.789Z'),
  j: { a: [1, 2, { b: null }], s: 'x', u: 'ü' },
  b: Buffer.from([0, 1, 2, 39, 92, 254, 255]),
  ai: [1, -2, 3],
  at: ['a', 'b c', 'd"e', '{x}', 'NULL?'],
};

// ---------------------------------------------------------------- scenarios

// Parameters of many types, as select-list values and round-tripped through a
// table, plus typed nulls.
async function types(sql) {
  const out = {};
  const s = SAMPLE;
  out.select = plainRows(await sql`
    select ${s.i}::int as i, ${-9007199254740993n}::int8 as i8, ${s.t}::text as t,
           ${s.n}::numeric as n, ${s.ts} as ts, ${sql.json(s.j)}::json as j,
           ${s.b} as b, ${s.ai}::int[] as ai, ${s.at}::text[] as at,
           ${null}::int as nul, ${null}::text as nul_t, ${true} as bo, ${1.5}::float8 as f,
           ${'0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d55'}::uuid as u`);
  for (let id = 1; id <= 3; id++) {
    const row = {
      id, i: s.i + id, t: s.t + id, n: s.n, ts: new Date(s.ts.getTime() + id * 1000),
      j: sql.json({ ...s.j, id }), b: Buffer.concat([s.b, Buffer.from([id])]),
      ai: s.ai.concat([id]), at: s.at,
    };
    await sql`insert into ${sql(TABLE)} ${sql(row)}`;
  }
  await sql`insert into ${sql(TABLE)} (id) values (${4})`; // all other columns null
  out.table = plainRows(await sql`select * from ${sql(TABLE)} where id <= ${10} order by id`);
  // the same statement again: this time through the driver's cached statement
  out.table_again = plainRows(await sql`select * from ${sql(TABLE)} where id <= ${10} order by id`);
  out.where_in = (await sql`select id from ${sql(TABLE)} where id in ${sql([1, 3, 4])} order by id`)
    .map((r) => r.id);
  out.any = (await sql`select id from ${sql(TABLE)} where id = any(${[2, 4]}::int[]) order by id`)
    .map((r) => r.id);
  out.param_error = await codeOf(sql`select ${'not a number'}::int as v`);
  return out;
}

// One statement run many times (the driver's statement cache), interleaved
// with a second one, plus many distinct statements on one connection (more
// than the proxy keeps per server connection) that are then run again.
async function repeat(sql) {
  const out = { values: [], names: new Set(), distinct_ok: 0, rerun_ok: 0 };
  for (let i = 0; i < 300; i++) {
    const r = await sql`select ${i}::int * 2 as v, ${'s' + i}::text as s`;
    if (r[0].v !== i * 2 || r[0].s !== 's' + i) throw new Error('bad row ' + JSON.stringify(r[0]));
    out.names.add(r.statement.name);
    if (i % 3 === 0) {
      const r2 = await sql`select count(*)::int as n from generate_series(1, ${i}::int)`;
      if (r2[0].n !== i) throw new Error('bad count ' + r2[0].n + ' for ' + i);
    }
    out.values.push(r[0].v);
  }
  const N = Number(process.env.E2E_DISTINCT || 1100);
  for (let k = 0; k < N; k++) {
    const r = await sql.unsafe(`select $1::int + ${k} as v`, [k], { prepare: true });
    if (r[0].v === 2 * k) out.distinct_ok++;
  }
  for (let k = 0; k < 100; k++) {
    const r = await sql.unsafe(`select $1::int + ${k} as v`, [k + 1], { prepare: true });
    if (r[0].v === 2 * k + 1) out.rerun_ok++;
  }
  out.names = out.names.size;
  return out;
}

// Hundreds of queries in flight on one connection at once: new statements
// (Parse/Describe/Flush round trip) and cached ones (Bind/Execute/Sync
// pipelined), with errors in the middle of the pipeline.  The same pipeline
// runs twice (the second time every statement is prepared already, and a
// result cache in front would answer the repeated ones); each query's own
// answer or error code is compared with what it must be.
async function pipelined(sql) {
  const out = { rounds: [] };
  const v = (q) => q.then((r) => r[0].v, (e) => 'E' + e.code);
  for (let round = 0; round < 2; round++) {
    const ps = [];
    const expect = [];
    for (let i = 0; i < 600; i++) {
      const k = i % 6;
      if (k === 0) { ps.push(v(sql`select ${i}::int as v`)); expect.push(i); }
      else if (k === 1) { ps.push(v(sql`select ${'t' + i}::text || ${'!'}::text as v`)); expect.push('t' + i + '!'); }
      else if (k === 2) { ps.push(v(sql`select 100 / ${i % 12 === 2 ? 0 : 1}::int as v`)); expect.push(i % 12 === 2 ? 'E22012' : 100); }
      else if (k === 3) { ps.push(v(sql`select count(*)::int as v from generate_series(1, ${i}::int)`)); expect.push(i); }
      else if (k === 4) { ps.push(v(sql`select ${i}::int8 + 1 as v`)); expect.push(String(i + 1)); }
      else { ps.push(v(sql`select 1 as v`)); expect.push(1); }
    }
    let timer;
    const got = await Promise.race([Promise.all(ps), new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), 8000);
    })]);
    clearTimeout(timer);
    if (got === null) {
      out.rounds.push('no answer to every query within 8 s');
      out.stuck = true;
      return out; // the connection is stuck: nothing more can be learnt on it
    }
    const mismatches = [];
    got.forEach((g, i) => { if (g !== expect[i]) mismatches.push([i, g, expect[i]]); });
    out.rounds.push({ n: got.length, errors: got.filter((g) => typeof g === 'string' && g.startsWith('E')).length,
      mismatches: mismatches.slice(0, 10), n_mismatches: mismatches.length });
  }
  // a parse error (syntax) and an unknown table in the middle of a pipeline
  out.mid = await Promise.all([
    v(sql`select ${1}::int as v`),
    codeOf(sql`selec ${1}::int`),
    v(sql`select ${2}::int as v`),
    codeOf(sql`select * from no_such_table_e2e where x = ${1}`),
    v(sql`select ${3}::int as v`),
  ]);
  out.after = (await sql`select ${7}::int as v`)[0].v;
  return out;
}

// sql.begin: commit, rollback on a thrown error, rollback on a server error,
// a failing savepoint inside a committed transaction, the pipelined array form.
async function transactions(sql) {
  const out = {};
  out.commit = await sql.begin(async (tx) => {
    await tx`insert into ${sql(TABLE)} (id, v) values (${1}, ${'one'})`;
    const [r] = await tx`insert into ${sql(TABLE)} (id, v) values (${2}, ${'two'}) returning id`;
    return r.id;
  });
  out.thrown = await codeOf(sql.begin(async (tx) => {
    await tx`insert into ${sql(TABLE)} (id, v) values (${3}, ${'thrown'})`;
    throw Object.assign(new Error('app error'), { code: 'APP' });
  }));
  out.server_error = await codeOf(sql.begin(async (tx) => {
    await tx`insert into ${sql(TABLE)} (id, v) values (${4}, ${'dup follows'})`;
    await tx`insert into ${sql(TABLE)} (id, v) values (${1}, ${'dup'})`;
  }));
  out.savepoint = await sql.begin(async (tx) => {
    await tx`insert into ${sql(TABLE)} (id, v) values (${5}, ${'outer'})`;
    const inner = await codeOf(tx.savepoint(async (sp) => {
      await sp`insert into ${sql(TABLE)} (id, v) values (${6}, ${'inner'})`;
      await sp`insert into ${sql(TABLE)} (id, v) values (${5}, ${'dup'})`;
    }));
    const [c] = await tx`select count(*)::int as n from ${sql(TABLE)}`;
    return { inner, count_in_tx: c.n };
  });
  out.array_form = (await sql.begin((tx) => [
    tx`insert into ${sql(TABLE)} (id, v) values (${7}, ${'a'})`,
    tx`update ${sql(TABLE)} set v = ${'a2'} where id = ${7}`,
    tx`select v from ${sql(TABLE)} where id = ${7}`,
  ]))[2][0].v;
  // many queries in flight inside one transaction
  out.in_tx_concurrent = await sql.begin(async (tx) => {
    const rs = await Promise.all(Array.from({ length: 50 }, (_, i) =>
      tx`insert into ${sql(TABLE)} (id, v) values (${100 + i}, ${'c' + i}) returning id`));
    return rs.length;
  });
  out.isolation = await sql.begin('isolation level repeatable read read only', async (tx) =>
    (await tx`show transaction_isolation`)[0].transaction_isolation);
  // statements the driver first prepares inside transactions that then roll
  // back (a server error, a thrown error, an already failed transaction) stay
  // prepared: later runs send only Bind/Execute for them
  out.rolled_back_prepares = [];
  for (const [k, body] of [
    [1000, async (tx, q) => { await q(tx); await tx`select 1/0`; }],
    [2000, async (tx, q) => { await q(tx); throw new Error('app'); }],
    [3000, async (tx, q) => { await tx`select 1/0`.catch(() => {}); await q(tx); }],
  ]) {
    const q = (s) => s.unsafe(`select $1::int + ${k} as v`, [1], { prepare: true });
    const code = await codeOf(sql.begin((tx) => body(tx, q)));
    const again = (await sql.unsafe(`select $1::int + ${k} as v`, [2], { prepare: true }))[0].v;
    out.rolled_back_prepares.push([code, again]);
  }
  // cursors (Execute with a row limit) inside a transaction, one closed early
  out.cursor_in_tx = await sql.begin(async (tx) => {
    let n = 0;
    await tx`select g from generate_series(1, ${10000}::int) g`.cursor(100, (rows) => { n += rows.length; });
    await tx`select g from generate_series(1, ${1000}::int) g`.cursor(100, (rows) => {
      n += rows.length;
      return n >= 10300 && sql.CLOSE;
    });
    const [r] = await tx`select ${5}::int as v`;
    return [n, r.v];
  });
  out.rows = (await sql`select id, v from ${sql(TABLE)} where id < ${100} order by id`).map((r) => [r.id, r.v]);
  out.total = (await sql`select count(*)::int as n from ${sql(TABLE)}`)[0].n;
  return out;
}

// sql.unsafe: simple-protocol multi-statement text, an error in the middle of
// one (the whole implicit transaction rolls back), unnamed extended queries,
// and .simple().
async function unsafe(sql) {
  const out = {};
  const res = await sql.unsafe(
    `select 1 as a; insert into ${TABLE} (id, v) values (1, 'x'), (2, 'y');
     select count(*)::int as n from ${TABLE}; select 'z' as c`);
  out.multi = res.map((r) => [r.command, r.count, plainRows(r)]);
  out.multi_error = await codeOf(sql.unsafe(
    `insert into ${TABLE} (id, v) values (3, 'lost'); select 1/0; insert into ${TABLE} (id, v) values (4, 'lost')`));
  out.after_error = (await sql.unsafe(`select count(*)::int as n from ${TABLE}`))[0].n;
  out.unnamed = (await sql.unsafe('select $1::int + $2::int as s, $3::text as t', [40, 2, 'u']))[0];
  out.simple = (await sql`select 5 as five; select 6 as six`.simple()).map((r) => plainRows(r));
  out.set_and_show = (await sql.unsafe("set local work_mem = '7MB'; show work_mem"))[1][0].work_mem;
  return out;
}

// COPY in (a stream of text lines) and COPY out (read back as text).  Two
// driver hangs, seen directly against PostgreSQL too, are kept out: a COPY
// FROM that fails on the server leaves the writable pending, and a query sent
// right after a COPY TO readable ends sometimes never resolves.
async function copy(sql) {
  const out = {};
  const N = 20000;
  const lines = [];
  for (let i = 1; i <= N; i++) lines.push(`${i}\tv${i}\n`);
  const w = await sql`copy ${sql(TABLE)} (id, v) from stdin`.writable();
  await pipeline(Readable.from(lines), w);
  out.count = (await sql`select count(*)::int as n, sum(id)::int8 as s from ${sql(TABLE)}`)[0];
  const r = await sql`copy (select id, v from ${sql(TABLE)} order by id) to stdout`.readable();
  let text = '';
  for await (const chunk of r) text += chunk.toString();
  out.copy_out_ok = text === lines.join('');
  out.copy_out_len = text.length;
  return out;
}

// sql.listen on its own dedicated connection; notifications sent with
// sql.notify and with NOTIFY from another client.
async function listen(sql) {
  const out = { got: [] };
  const other = connect();
  let resolveAll;
  const all = new Promise((r) => { resolveAll = r; });
  const sub = await sql.listen(CHANNEL, (payload) => {
    out.got.push(payload);
    if (out.got.length === 6) resolveAll();
  });
  for (let i = 0; i < 3; i++) await sql.notify(CHANNEL, 'n' + i);
  for (let i = 3; i < 6; i++) await other`select pg_notify(${CHANNEL}, ${'n' + i})`;
  let timer;
  await Promise.race([all, new Promise((_, rej) => {
    timer = setTimeout(() => rej(new Error('notifications missing: ' + JSON.stringify(out.got))), 10000);
  })]);
  clearTimeout(timer);
  await sub.unlisten();
  out.after = (await sql`select ${1}::int as v`)[0].v;
  await other.end({ timeout: 5 });
  out.got.sort();
  return out;
}

// A 100k-row result in one go, then through a cursor (Execute with a row
// limit and Flush, no Sync until the end: one implicit transaction), a cursor
// closed early, and forEach.
async function large(sql) {
  const out = {};
  const N = 100000;
  const rows = await sql`select g as id, md5(g::text) as h, repeat('x', 20) as pad from generate_series(1, ${N}::int) g`;
  out.count = rows.length;
  out.sum = rows.reduce((a, r) => a + r.id, 0);
  out.ordered = rows.every((r, i) => r.id === i + 1);
  out.h_last = rows[N - 1].h;
  let seen = 0, sum = 0, batches = 0;
  await sql`select g as id from generate_series(1, ${N}::int) g`.cursor(1000, async (batch) => {
    batches++;
    for (const r of batch) { seen++; sum += r.id; }
  });
  out.cursor = { seen, sum, batches };
  let early = 0;
  await sql`select g as id from generate_series(1, ${N}::int) g`.cursor(100, (batch) => {
    early += batch.length;
    return early >= 500 && sql.CLOSE;
  });
  out.cursor_closed_early = early;
  let fe = 0;
  await sql`select g from generate_series(1, ${5000}::int) g`.forEach(() => { fe++; });
  out.for_each = fe;
  out.after = (await sql`select ${3}::int as v`)[0].v;
  return out;
}

// query.cancel() on a running pg_sleep: the query fails with 57014 quickly
// and the client goes on.
async function cancel(sql) {
  const out = {};
  await sql`select 1`; // connect first
  const t0 = Date.now();
  const q = sql`select pg_sleep(${20}::int)`;
  setTimeout(() => q.cancel(), 500);
  out.code = await codeOf(q);
  out.ms = Date.now() - t0;
  out.after = (await sql`select ${8}::int as v`)[0].v;
  return out;
}

// Many independent Postgres.js instances (default pool of up to 10
// connections each), all at once, each running a mix of cached statements,
// pipelined batches and transactions; every result is checked.
async function stress() {
  const CLIENTS = Number(process.env.E2E_CLIENTS || 24);
  const ROUNDS = Number(process.env.E2E_ROUNDS || 30);
  const out = { queries: 0, errors: [], bad: [] };
  async function client(c) {
    const sql = connect();
    try {
      await sql`insert into ${sql(TABLE)} (id, n, v) values (${c}, 0, '')`;
      for (let r = 0; r < ROUNDS; r++) {
        try {
          const [a] = await sql`select ${c}::int * 1000 + ${r}::int as v`;
          if (a.v !== c * 1000 + r) out.bad.push(['a', c, r, a.v]);
          const batch = await Promise.all([
            sql`select ${'c' + c}::text || ${r}::text as v`,
            sql`select count(*)::int as v from generate_series(1, ${r + 1}::int)`,
            sql`select n as v from ${sql(TABLE)} where id = ${c}`,
          ]);
          if (batch[0][0].v !== 'c' + c + r) out.bad.push(['b0', c, r, batch[0][0].v]);
          if (batch[1][0].v !== r + 1) out.bad.push(['b1', c, r, batch[1][0].v]);
          if (batch[2][0].v !== r) out.bad.push(['b2', c, r, batch[2][0].v]);
          const n = await sql.begin(async (tx) => {
            const [u] = await tx`update ${sql(TABLE)} set n = n + 1, v = v || ${'.'} where id = ${c} returning n`;
            const [s] = await tx`select n from ${sql(TABLE)} where id = ${c}`;
            if (s.n !== u.n) out.bad.push(['tx', c, r, s.n, u.n]);
            return u.n;
          });
          if (n !== r + 1) out.bad.push(['n', c, r, n]);
          out.queries += 1 + 3 + 4;
        } catch (e) {
          out.errors.push([c, r, e.code || '', String(e.message || e)]);
        }
      }
    } finally {
      await sql.end({ timeout: 5 });
    }
  }
  await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c + 1)));
  out.errors = out.errors.slice(0, 20);
  out.bad = out.bad.slice(0, 20);
  return out;
}

// A named statement whose result shape changes under it (ALTER TABLE on a
// `select *`).  PostgreSQL answers the next Bind of the old statement with
// 0A000 "cached plan must not change result type" and the driver re-prepares
// (one retry); it never returns rows of the new shape under the old
// RowDescription.  Two clients (a, b) run the same query text; DDL comes over
// a direct superuser connection (E2E_SUPER_PORT).  With E2E_RECONNECT=1 the
// DDL is followed by terminating the fnx backends running with b's
// application_name (which the proxy gives its server connection), so the
// next query of b runs on a fresh server connection.
async function shape(sql) {
  const out = { a: [], b: [], terminated: [] };
  const superuser = postgres({ onnotice: () => {}, max: 1, port: Number(process.env.E2E_SUPER_PORT),
    user: 'postgres', pass: '', connect_timeout: 10 });
  const a = connect({ max: 1 });
  const b = sql;
  const run = async (who, s) => {
    try {
      out[who].push(plainRows(await s`select * from ${s(TABLE)} where id = ${1}`));
    } catch (e) {
      out[who].push('E' + e.code + ' ' + e.message);
    }
  };
  const ddl = async (text) => {
    await superuser.unsafe(text);
    if (process.env.E2E_RECONNECT === '1') {
      const [{ n }] = await superuser`select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
        where usename = 'fnx' and backend_type = 'client backend' and application_name = ${appName}`;
      out.terminated.push(n);
      await new Promise((r) => setTimeout(r, 300));
    }
  };
  const [{ app: appName }] = await b`select current_setting('application_name') as app`;
  if (process.env.E2E_RECONNECT !== '1') await run('a', a);
  await run('b', b);
  await ddl(`alter table ${TABLE} add column w int default 7`);
  if (process.env.E2E_RECONNECT !== '1') await run('a', a);
  await run('b', b);
  await run('b', b);
  await ddl(`alter table ${TABLE} drop column v; alter table ${TABLE} add column v int default 5`);
  if (process.env.E2E_RECONNECT !== '1') await run('a', a);
  await run('b', b);
  await run('b', b);
  await a.end({ timeout: 5 });
  await superuser.end({ timeout: 5 });
  out.retry_routines = retries.map((r) => r[1]);
  retries.length = 0; // the driver's retries are expected here: reported above
  return out;
}

const SCENARIOS = { types, repeat, pipelined, transactions, unsafe, copy, listen, large, cancel, stress, shape };

async function main() {
  const name = process.argv[2];
  const fn = SCENARIOS[name];
  if (!fn) throw new Error('unknown scenario ' + name);
  // one connection: everything the scenario sends is pipelined on it
  const sql = connect(name === 'pipelined' || name === 'shape' ? { max: 1 } : {});
  const out = await fn(sql);
  await sql.end({ timeout: out.stuck ? 0.5 : 5 });
  out.retries = retries.slice(0, 20);
  console.log(JSON.stringify(out));
}

setTimeout(() => {
  console.error('postgres.js client timed out');
  process.exit(2);
}, Number(process.env.E2E_TIMEOUT_MS || 50000)).unref();

main().catch((e) => {
  console.error('FAIL', e && e.code, (e && e.stack) || e);
  process.exit(1);
});
