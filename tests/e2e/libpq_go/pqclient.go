// pqclient runs one scenario with lib/pq (github.com/lib/pq, Debian's
// golang-github-lib-pq-dev) through database/sql and prints a JSON summary as
// its last line.  Connection settings come from the libpq environment
// (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE), which lib/pq
// reads itself; everything else is the driver's default: a query without
// arguments is a simple Query; with arguments lib/pq sends Parse(unnamed) +
// Describe + Sync, waits for the answer, then Bind/Execute/Sync in a second
// round trip (binary_parameters off: text parameters); db.Prepare makes named
// statements "1", "2", ... per connection.  E2E_TABLE names the table.
//
//	go run pqclient.go <scenario>
package main

import (
	"context"
	"crypto/md5"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/lib/pq"
)

var ctx = context.Background()
var out = map[string]interface{}{}

func must(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "FATAL: %v\n", err)
		os.Exit(1)
	}
}

func check(cond bool, format string, args ...interface{}) {
	if !cond {
		fmt.Fprintf(os.Stderr, "CHECK FAILED: "+format+"\n", args...)
		os.Exit(1)
	}
}

func table() string {
	t := os.Getenv("E2E_TABLE")
	check(t != "", "E2E_TABLE is not set")
	return t
}

func open(max int) *sql.DB {
	db, err := sql.Open("postgres", "")
	must(err)
	db.SetMaxOpenConns(max)
	db.SetMaxIdleConns(max)
	must(db.Ping())
	return db
}

// code returns the SQLSTATE of a PostgreSQL error, "" for nil, or the Go
// error text for anything else.
func code(err error) string {
	if err == nil {
		return ""
	}
	var pe *pq.Error
	if errors.As(err, &pe) {
		return string(pe.Code)
	}
	return "go:" + err.Error()
}

// rowsOf reads every row as strings (NULL as "<null>").
func rowsOf(rows *sql.Rows, err error) ([]string, [][]string, error) {
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, err
	}
	types, _ := rows.ColumnTypes()
	var res [][]string
	for rows.Next() {
		vals := make([]interface{}, len(cols))
		ptrs := make([]interface{}, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		var r []string
		for i, v := range vals {
			r = append(r, show(v, types[i].DatabaseTypeName()))
		}
		res = append(res, r)
	}
	return cols, res, rows.Err()
}

func show(v interface{}, typ string) string {
	switch x := v.(type) {
	case nil:
		return "<null>"
	case []byte:
		if typ == "BYTEA" {
			return `\x` + hex.EncodeToString(x)
		}
		return string(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	default:
		return fmt.Sprint(x)
	}
}

// ------------------------------------------------------------------ scenarios

func simple() {
	db := open(1)
	defer db.Close()
	t := table()
	_, err := db.Exec(fmt.Sprintf(
		"INSERT INTO %s VALUES (1, 'one'); INSERT INTO %s VALUES (2, 'two'); "+
			"UPDATE %s SET v = v || '!' WHERE id = 2", t, t, t))
	must(err)
	res, err := db.Exec(fmt.Sprintf("DELETE FROM %s WHERE id > 100", t))
	must(err)
	n, _ := res.RowsAffected()
	out["delete"] = n
	_, r, err := rowsOf(db.Query(fmt.Sprintf("SELECT id, v FROM %s ORDER BY id", t)))
	must(err)
	out["rows"] = r
	cols, r, err := rowsOf(db.Query("SELECT 1 AS a, 'x'::text AS b, NULL::int AS c, 2.5::float8 AS d"))
	must(err)
	out["literal"] = r
	out["columns"] = cols
	_, err = db.Exec("SELECT 1/0")
	out["div0"] = code(err)
	_, err = db.Exec("SELECT 1/$1::int", 0)
	out["div0_param"] = code(err)
	var s string
	must(db.QueryRow("SELECT current_user").Scan(&s))
	out["user"] = s
	// the same statement with arguments many times (unnamed, two round trips each)
	var sum int64
	for i := 0; i < 50; i++ {
		var v int64
		must(db.QueryRow("SELECT $1::int * 2", i).Scan(&v))
		sum += v
	}
	out["repeat_sum"] = sum
}

func types() {
	db := open(1)
	defer db.Close()
	t := table()
	ins := fmt.Sprintf("INSERT INTO %s VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)", t)
	ts := time.Date(2024, 2, 29, 10, 34, 56, 123456000, time.UTC)
	d := time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)
	for i := 1; i <= 6; i++ {
		_, err := db.Exec(ins, i, int32(-7*i), int64(-9007199254740993)*int64(i),
			"12345678901234567890.123456781",
			fmt.Sprintf("héllo 'wörld' ✓ %d 日本", i), []byte{0, 1, 2, 0x27, 0x5c, 0xfe, 0xff, byte(i)},
			i%2 == 0, ts.Add(time.Duration(i)*time.Hour), d.AddDate(0, 0, i),
			fmt.Sprintf(`{"a": [1, 2, {"b": null}], "u": "ü", "i": %d}`, i),
			fmt.Sprintf(`{"k": "v", "n": %d}`, i), pq.Array([]int64{1, -2, int64(i)}),
			pq.Array([]string{"a", "b c", `d"e`, "{x}", "NULL"}),
			"0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d56", 1.5*float64(i))
		must(err)
	}
	_, err := db.Exec(ins, 7, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil)
	must(err)
	_, err = db.Exec(fmt.Sprintf("UPDATE %s SET ai = $1::int[], jb = $2 WHERE id = $3", t),
		"{1,NULL,3}", `{"ключ": [true, null]}`, 6)
	must(err)
	_, rows, err := rowsOf(db.Query(fmt.Sprintf("SELECT * FROM %s WHERE id >= $1 ORDER BY id", t), 0))
	must(err)
	out["rows"] = rows
	_, rows, err = rowsOf(db.Query(fmt.Sprintf("SELECT * FROM %s ORDER BY id", t)))
	must(err)
	out["rows_simple"] = rows
	var i4 int32
	var i8 int64
	var txt string
	var b []byte
	var bo bool
	var tz, dd time.Time
	var ai []int64
	var at []string
	var u, n string
	must(db.QueryRow(fmt.Sprintf("SELECT i4, i8, t, b, bo, tz, d, ai, at, u, n FROM %s WHERE id = $1", t), 2).
		Scan(&i4, &i8, &txt, &b, &bo, &tz, &dd, pq.Array(&ai), pq.Array(&at), &u, &n))
	out["scanned"] = []interface{}{i4, strconv.FormatInt(i8, 10), txt, hex.EncodeToString(b), bo,
		tz.UTC().Format(time.RFC3339Nano), dd.Format("2006-01-02"), ai, at, u, n}
	var nullI sql.NullInt32
	var nullT sql.NullString
	must(db.QueryRow(fmt.Sprintf("SELECT i4, t FROM %s WHERE id = $1", t), 7).Scan(&nullI, &nullT))
	out["nulls"] = []bool{!nullI.Valid, !nullT.Valid}
	var big1, s1, j string
	var bb []byte
	must(db.QueryRow("SELECT $1::numeric * 2, $2::text || '✓', $3::jsonb, $4::bytea",
		"0.000000000100000000000000000001", "ünï", `{"x": [1, 2.5, "y"]}`, []byte{0, 0xff}).
		Scan(&big1, &s1, &j, &bb))
	out["echo"] = []interface{}{big1, s1, j, hex.EncodeToString(bb)}
}

// preparedPool: 10 goroutines over a database/sql pool of 10 connections run
// the same db.Prepare'd statements (each connection prepares its own named
// copy "1", "2", ...).
func preparedPool() {
	t := table()
	db := open(10)
	defer db.Close()
	ins, err := db.Prepare(fmt.Sprintf("INSERT INTO %s (id, k, v) VALUES ($1, $2, $3)", t))
	must(err)
	sel, err := db.Prepare(fmt.Sprintf("SELECT v, k FROM %s WHERE id = $1", t))
	must(err)
	cnt, err := db.Prepare(fmt.Sprintf("SELECT count(*), coalesce(sum(k), 0) FROM %s WHERE id >= $1 AND id < $2", t))
	must(err)
	const workers, rounds = 10, 40
	var wg sync.WaitGroup
	errs := make(chan string, workers*rounds*4)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				id := w*1000 + r
				if _, err := ins.Exec(id, r, fmt.Sprintf("w%d-r%d", w, r)); err != nil {
					errs <- "insert: " + err.Error()
				}
				var v string
				var k int
				if err := sel.QueryRow(id).Scan(&v, &k); err != nil || v != fmt.Sprintf("w%d-r%d", w, r) || k != r {
					errs <- fmt.Sprintf("select %d: %v %q %d", id, err, v, k)
				}
				var c, s int64
				want := int64(r + 1)
				if err := cnt.QueryRow(w*1000, w*1000+1000).Scan(&c, &s); err != nil || c != want || s != want*(want-1)/2 {
					errs <- fmt.Sprintf("count w%d r%d: %v %d %d", w, r, err, c, s)
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	es := []string{}
	for e := range errs {
		es = append(es, e)
	}
	out["errors"] = es
	out["open_conns"] = db.Stats().OpenConnections
	var n int64
	must(db.QueryRow(fmt.Sprintf("SELECT count(*) FROM %s", t)).Scan(&n))
	out["rows"] = n
}

func transactions() {
	db := open(2)
	defer db.Close()
	t := table()
	ins := fmt.Sprintf("INSERT INTO %s (id, v) VALUES ($1, $2)", t)
	for i := 0; i < 6; i++ {
		tx, err := db.Begin()
		must(err)
		_, err = tx.Exec(ins, i, fmt.Sprintf("tx%d", i))
		must(err)
		var n int
		must(tx.QueryRow(fmt.Sprintf("SELECT count(*) FROM %s", t)).Scan(&n))
		if i%2 == 0 {
			must(tx.Commit())
		} else {
			must(tx.Rollback())
		}
	}
	tx, err := db.Begin()
	must(err)
	_, err = tx.Exec(ins, 100, "before error")
	must(err)
	_, err = tx.Exec("SELECT 1/$1::int", 0)
	out["mid_tx_error"] = code(err)
	_, err = tx.Exec(ins, 101, "in failed tx")
	out["in_failed_tx"] = code(err)
	_, err = tx.Exec("SELECT 1")
	out["in_failed_tx_simple"] = code(err)
	must(tx.Rollback())
	_, err = db.Exec(ins, 102, "after rollback")
	must(err)
	_, err = db.Exec(ins, 0, "dup")
	out["dup_autocommit"] = code(err)
	var pe *pq.Error
	if errors.As(err, &pe) {
		out["dup_constraint"] = pe.Constraint != ""
		out["dup_table"] = pe.Table == t
	}
	_, err = db.Exec(fmt.Sprintf("INSERT INTO %s (id, v) VALUES (0, 'dup simple')", t))
	out["dup_simple"] = code(err)
	tx, err = db.Begin()
	must(err)
	_, err = tx.Exec(ins, 2, "dup")
	out["dup_in_tx"] = code(err)
	out["commit_after_error"] = code(tx.Commit()) // pq: ErrInFailedTransaction
	tx, err = db.Begin()
	must(err)
	_, err = tx.Exec(ins, 200, "outer")
	must(err)
	_, err = tx.Exec("SAVEPOINT s1")
	must(err)
	_, err = tx.Exec(ins, 200, "dup in savepoint")
	out["dup_in_savepoint"] = code(err)
	_, err = tx.Exec("ROLLBACK TO SAVEPOINT s1")
	must(err)
	_, err = tx.Exec(ins, 201, "after savepoint")
	must(err)
	must(tx.Commit())
	_, r, err := rowsOf(db.Query(fmt.Sprintf("SELECT id, v FROM %s ORDER BY id", t)))
	must(err)
	out["rows"] = r
}

func large() {
	db := open(2)
	defer db.Close()
	n, _ := strconv.Atoi(os.Getenv("E2E_ROWS"))
	for round, q := range []string{
		"SELECT g, md5(g::text), g::numeric / 7 FROM generate_series(1, $1::int) g",
		fmt.Sprintf("SELECT g, md5(g::text), g::numeric / 7 FROM generate_series(1, %d) g", n),
	} {
		var rows *sql.Rows
		var err error
		if round == 0 {
			rows, err = db.Query(q, n)
		} else {
			rows, err = db.Query(q)
		}
		must(err)
		h := md5.New()
		var cnt, sum int64
		for rows.Next() {
			var g int64
			var m, qq string
			must(rows.Scan(&g, &m, &qq))
			cnt++
			sum += g
			if g%1000 == 0 {
				fmt.Fprintf(h, "%s|%s;", m, qq)
			}
		}
		must(rows.Err())
		out[fmt.Sprintf("round%d", round)] = []interface{}{cnt, sum, hex.EncodeToString(h.Sum(nil))}
	}
	// abandon a big result half-way: lib/pq reads the rest; the pool goes on
	rows, err := db.Query("SELECT g FROM generate_series(1, $1::int) g", n)
	must(err)
	for i := 0; i < 10 && rows.Next(); i++ {
	}
	must(rows.Close())
	var one int
	must(db.QueryRow("SELECT $1::int", 1).Scan(&one))
	out["after_abandon"] = one
}

// copyIn: pq.CopyIn inside a transaction (the documented way), a failing
// COPY, and COPY TO, which lib/pq refuses itself.
func copyIn() {
	db := open(1)
	defer db.Close()
	t := table()
	load := func(from, to int) error {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		st, err := tx.Prepare(pq.CopyIn(t, "id", "v", "b"))
		if err != nil {
			tx.Rollback()
			return err
		}
		for i := from; i < to; i++ {
			var v interface{} = fmt.Sprintf("row %d ✓ tab\there", i)
			if i%100 == 0 {
				v = nil
			}
			if _, err := st.Exec(i, v, []byte{byte(i), byte(i >> 8)}); err != nil {
				tx.Rollback()
				return err
			}
		}
		if _, err := st.Exec(); err != nil {
			tx.Rollback()
			return err
		}
		if err := st.Close(); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	must(load(0, 20000))
	out["copy_dup"] = code(load(19990, 20010))
	_, err := db.Prepare(pq.CopyIn(t, "id"))
	out["copy_outside_tx"] = code(err)
	var cnt, nulls int
	var sum string
	must(db.QueryRow(fmt.Sprintf("SELECT count(*), count(*) - count(v), md5(string_agg(id || v || encode(b, 'hex'), ',' ORDER BY id)) FROM %s", t)).
		Scan(&cnt, &nulls, &sum))
	out["after"] = []interface{}{cnt, nulls, sum}
}

// cancel: a context cancelled while pg_sleep runs makes lib/pq send a
// CancelRequest (and drop the connection); the pool goes on.
func cancel() {
	db := open(2)
	defer db.Close()
	marker := os.Getenv("E2E_MARKER")
	cctx, cf := context.WithCancel(ctx)
	go func() { time.Sleep(700 * time.Millisecond); cf() }()
	start := time.Now()
	_, err := db.ExecContext(cctx, fmt.Sprintf("SELECT pg_sleep(20) /* %s-a */", marker))
	out["cancel"] = code(err)
	out["cancel_fast"] = time.Since(start) < 8*time.Second
	tctx, cf2 := context.WithTimeout(ctx, 600*time.Millisecond)
	defer cf2()
	start = time.Now()
	_, err = db.QueryContext(tctx, fmt.Sprintf("SELECT pg_sleep($1::float8) /* %s-b */", marker), 20.0)
	out["deadline"] = code(err)
	out["deadline_fast"] = time.Since(start) < 8*time.Second
	var n int
	must(db.QueryRow("SELECT $1::int * 2", 21).Scan(&n))
	out["after"] = n
	deadline := time.Now().Add(8 * time.Second)
	left := -1
	for time.Now().Before(deadline) {
		must(db.QueryRow("SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 AND state = 'active' AND pid <> pg_backend_pid()",
			"%"+marker+"-%").Scan(&left))
		if left == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	out["sleepers_left"] = left
}

func timeout() {
	db := open(3)
	defer db.Close()
	c, err := db.Conn(ctx) // one client connection for the session setting
	must(err)
	defer c.Close()
	_, err = c.ExecContext(ctx, "SET statement_timeout = '300ms'")
	must(err)
	start := time.Now()
	_, err = c.ExecContext(ctx, "SELECT pg_sleep($1::float8)", 5.0)
	out["timeout"] = code(err)
	out["timeout_fast"] = time.Since(start) < 4*time.Second
	var s string
	for i := 0; i < 5; i++ {
		must(c.QueryRowContext(ctx, "SHOW statement_timeout").Scan(&s))
	}
	out["show"] = s
	_, err = c.ExecContext(ctx, "SELECT pg_sleep(1)")
	out["timeout_again"] = code(err)
	tx, err := c.BeginTx(ctx, nil)
	must(err)
	_, err = tx.Exec("SET LOCAL statement_timeout = '5s'")
	must(err)
	_, err = tx.Exec("SELECT pg_sleep($1::float8)", 0.5)
	out["local_longer"] = code(err)
	must(tx.Commit())
	must(c.QueryRowContext(ctx, "SHOW statement_timeout").Scan(&s))
	out["show_after_local"] = s
	tx, err = c.BeginTx(ctx, nil)
	must(err)
	_, err = tx.Exec("SELECT pg_sleep(2)")
	out["timeout_in_tx"] = code(err)
	must(tx.Rollback())
	var n int
	must(c.QueryRowContext(ctx, "SELECT $1::int", 5).Scan(&n))
	out["after"] = n
	c2, err := db.Conn(ctx)
	must(err)
	defer c2.Close()
	must(c2.QueryRowContext(ctx, "SHOW statement_timeout").Scan(&s))
	out["other_conn"] = s
}

func concurrent() {
	t := table()
	workers, _ := strconv.Atoi(os.Getenv("E2E_WORKERS"))
	db := open(workers)
	defer db.Close()
	const rounds = 30
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := []string{}
	fail := func(s string) { mu.Lock(); errs = append(errs, s); mu.Unlock() }
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			if _, err := db.Exec(fmt.Sprintf("INSERT INTO %s (id, n, v) VALUES ($1, 0, '')", t), w); err != nil {
				fail(err.Error())
				return
			}
			want := 0
			for r := 0; r < rounds; r++ {
				tx, err := db.Begin()
				if err != nil {
					fail(err.Error())
					return
				}
				var n int
				var v string
				if err := tx.QueryRow(fmt.Sprintf("UPDATE %s SET n = n + 1, v = v || $2 WHERE id = $1 RETURNING n, v", t),
					w, fmt.Sprint(r%10)).Scan(&n, &v); err != nil {
					fail(err.Error())
					tx.Rollback()
					return
				}
				if n != want+1 || len(v) != want+1 {
					fail(fmt.Sprintf("w%d r%d: n=%d v=%q want %d", w, r, n, v, want+1))
				}
				if r%4 == 3 {
					must(tx.Rollback())
				} else {
					if err := tx.Commit(); err != nil {
						fail(err.Error())
					}
					want++
				}
				var got int
				if err := db.QueryRow(fmt.Sprintf("SELECT n FROM %s WHERE id = $1", t), w).Scan(&got); err != nil || got != want {
					fail(fmt.Sprintf("read w%d r%d: %v %d want %d", w, r, err, got, want))
				}
			}
		}(w)
	}
	wg.Wait()
	sort.Strings(errs)
	out["errors"] = errs
	_, rows, err := rowsOf(db.Query(fmt.Sprintf("SELECT id, n, length(v) FROM %s ORDER BY id", t)))
	must(err)
	out["rows"] = rows
}

// shape: a db.Prepare'd `SELECT *` (a named statement whose column list
// lib/pq keeps) and the unnamed per-call form across ADD/DROP COLUMN.
func shape() {
	t := table()
	db := open(1)
	defer db.Close()
	other := open(1)
	defer other.Close()
	q := fmt.Sprintf("SELECT * FROM %s WHERE id = $1", t)
	st, err := db.Prepare(q)
	must(err)
	var steps []interface{}
	record := func(rows *sql.Rows, err error) {
		cols, r, err := rowsOf(rows, err)
		if err != nil {
			steps = append(steps, "error "+code(err))
			return
		}
		steps = append(steps, []interface{}{cols, r})
	}
	record(st.Query(1))
	record(db.Query(q, 1))
	_, err = other.Exec(fmt.Sprintf("ALTER TABLE %s ADD COLUMN w int DEFAULT 7", t))
	must(err)
	for i := 0; i < 2; i++ {
		record(st.Query(1))
		record(db.Query(q, 1))
	}
	_, err = other.Exec(fmt.Sprintf("ALTER TABLE %s DROP COLUMN v", t))
	must(err)
	_, err = other.Exec(fmt.Sprintf("ALTER TABLE %s ADD COLUMN v text DEFAULT 'new'", t))
	must(err)
	record(st.Query(1))
	record(db.Query(q, 1))
	st2, err := db.Prepare(q)
	must(err)
	record(st2.Query(1))
	out["steps"] = steps
}

func listen() {
	ch := os.Getenv("E2E_CHANNEL")
	events := make(chan string, 10)
	l := pq.NewListener("", 100*time.Millisecond, time.Second, func(ev pq.ListenerEventType, err error) {
		if err != nil {
			events <- err.Error()
		}
	})
	defer l.Close()
	must(l.Listen(ch))
	db := open(3)
	defer db.Close()
	for i := 0; i < 5; i++ {
		_, err := db.Exec("SELECT pg_notify($1, $2)", ch, fmt.Sprintf("payload %d ✓", i))
		must(err)
	}
	tx, err := db.Begin()
	must(err)
	_, err = tx.Exec("SELECT pg_notify($1, 'rolled back')", ch)
	must(err)
	must(tx.Rollback())
	_, err = db.Exec("NOTIFY " + ch + ", 'last'")
	must(err)
	var got []string
	for len(got) < 6 {
		select {
		case n := <-l.Notify:
			if n == nil {
				got = append(got, "reconnected")
			} else {
				got = append(got, n.Channel+":"+n.Extra)
			}
		case <-time.After(5 * time.Second):
			got = append(got, "timeout")
		}
		if got[len(got)-1] == "timeout" {
			break
		}
	}
	out["notifications"] = got
	out["ping"] = code(l.Ping())
	select {
	case e := <-events:
		out["event_error"] = e
	default:
	}
}

// unnamed: many goroutines, each with its own statement text, run one-shot
// queries with arguments: every one is Parse(unnamed)+Describe+Sync, then
// Bind/Execute/Sync in a second round trip.  Each answer must be its own.
func unnamed() {
	workers, _ := strconv.Atoi(os.Getenv("E2E_WORKERS"))
	db := open(workers)
	defer db.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := map[string]int{}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			q := fmt.Sprintf("SELECT $1::int + %d, $2::text || '-w%d'", 1000*w, w)
			for r := 0; r < 100; r++ {
				var n int
				var s string
				err := db.QueryRow(q, r, "x").Scan(&n, &s)
				var e string
				switch {
				case err != nil:
					e = "error " + code(err)
				case n != r+1000*w || s != fmt.Sprintf("x-w%d", w):
					e = "wrong answer (another statement's)"
				default:
					continue
				}
				mu.Lock()
				errs[e]++
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	out["errors"] = errs
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: pqclient <scenario>")
		os.Exit(2)
	}
	scenarios := map[string]func(){
		"simple": simple, "types": types, "prepared_pool": preparedPool,
		"transactions": transactions, "large": large, "copy": copyIn, "cancel": cancel,
		"timeout": timeout, "concurrent": concurrent, "shape": shape, "listen": listen,
		"unnamed": unnamed,
	}
	f, ok := scenarios[os.Args[1]]
	if !ok {
		fmt.Fprintln(os.Stderr, "unknown scenario", os.Args[1])
		os.Exit(2)
	}
	f()
	b, err := json.Marshal(out)
	must(err)
	fmt.Println(string(b))
}
