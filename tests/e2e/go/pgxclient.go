// pgxclient runs one scenario with pgx v4 (github.com/jackc/pgx/v4, Debian's
// golang-github-jackc-pgx-v4-dev) and prints a JSON summary as its last line.
// Connection settings come from the libpq environment (PGHOST, PGPORT, PGUSER,
// PGPASSWORD, PGDATABASE, PGSSLMODE), which pgx reads itself; everything else
// is the driver's default: the extended protocol, a statement cache of named
// statements (lrupsc_<conn>_<n>, prepared with Describe) and binary formats
// for every type it knows.  E2E_TABLE names the scenario's table.
//
//	go run pgxclient.go <scenario>
package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgconn"
	"github.com/jackc/pgtype"
	"github.com/jackc/pgx/v4"
	"github.com/jackc/pgx/v4/pgxpool"
	_ "github.com/jackc/pgx/v4/stdlib"
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

func connect() *pgx.Conn {
	c, err := pgx.Connect(ctx, "")
	must(err)
	return c
}

func pool(max int32) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig("")
	must(err)
	cfg.MaxConns = max
	p, err := pgxpool.ConnectConfig(ctx, cfg)
	must(err)
	return p
}

// code returns the SQLSTATE of a PostgreSQL error, "" for nil, or the Go
// error text for anything else (so a comparison shows what went wrong).
func code(err error) string {
	if err == nil {
		return ""
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return "go:" + err.Error()
}

// rowsOf reads every row as strings (NULL as "<null>") in text form.
func rowsOf(rows pgx.Rows, err error) ([][]string, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var res [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		var r []string
		for _, v := range vals {
			r = append(r, show(v))
		}
		res = append(res, r)
	}
	return res, rows.Err()
}

func show(v interface{}) string {
	switch x := v.(type) {
	case nil:
		return "<null>"
	case []byte:
		return `\x` + hex.EncodeToString(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case pgtype.Numeric:
		return numeric(x)
	case [16]byte:
		return hex.EncodeToString(x[:])
	case pgtype.TextEncoder:
		b, err := x.EncodeText(pgtype.NewConnInfo(), nil)
		if err != nil {
			return "encode error: " + err.Error()
		}
		return string(b)
	default:
		if b, err := json.Marshal(x); err == nil {
			return string(b)
		}
		return fmt.Sprint(x)
	}
}

// numeric renders a pgtype.Numeric in PostgreSQL's decimal notation (pgtype
// itself writes "<digits>e<exp>").
func numeric(n pgtype.Numeric) string {
	if n.Status != pgtype.Present {
		return "<null>"
	}
	if n.NaN {
		return "NaN"
	}
	digits := new(big.Int).Abs(n.Int).String()
	sign := ""
	if n.Int.Sign() < 0 {
		sign = "-"
	}
	if n.Exp >= 0 {
		return sign + digits + strings.Repeat("0", int(n.Exp))
	}
	scale := int(-n.Exp)
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale-len(digits)+1) + digits
	}
	return sign + digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
}

func columns(rows pgx.Rows) []string {
	var cs []string
	for _, f := range rows.FieldDescriptions() {
		cs = append(cs, string(f.Name))
	}
	return cs
}

// ------------------------------------------------------------------ scenarios

func simple() {
	c := connect()
	defer c.Close(ctx)
	t := table()
	// no arguments: pgx sends a simple Query, several statements at once
	_, err := c.Exec(ctx, fmt.Sprintf(
		"INSERT INTO %s VALUES (1, 'one'); INSERT INTO %s VALUES (2, 'two'); "+
			"UPDATE %s SET v = v || '!' WHERE id = 2", t, t, t))
	must(err)
	tag, err := c.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE id > 100", t))
	must(err)
	out["delete_tag"] = tag.String()
	r, err := rowsOf(c.Query(ctx, fmt.Sprintf("SELECT id, v FROM %s ORDER BY id", t)))
	must(err)
	out["rows"] = r
	var s string
	must(c.QueryRow(ctx, "SELECT string_agg(g::text, ',') FROM generate_series(1, 5) g").Scan(&s))
	out["agg"] = s
	r, err = rowsOf(c.Query(ctx, "SELECT 1 AS a, 'x'::text AS b, NULL::int AS c, 2.5::float8 AS d"))
	must(err)
	out["literal"] = r
	// an error in autocommit, then the connection goes on
	_, err = c.Exec(ctx, "SELECT 1/0")
	out["div0"] = code(err)
	must(c.QueryRow(ctx, "SELECT current_user").Scan(&s))
	out["user"] = s
}

const typesCols = "id int primary key, i4 int, i8 bigint, n numeric, t text, b bytea, bo bool, " +
	"tz timestamptz, d date, j json, jb jsonb, ai int[], at text[], u uuid, f8 float8"

func types() {
	c := connect()
	defer c.Close(ctx)
	t := table()
	ins := fmt.Sprintf("INSERT INTO %s VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)", t)
	ts := time.Date(2024, 2, 29, 10, 34, 56, 123456000, time.UTC)
	d := time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)
	var num pgtype.Numeric
	must(num.Set("12345678901234567890.123456781"))
	u := [16]byte{0x0e, 0x9d, 0x8c, 0x1f, 0x3a, 0x6b, 0x4a, 0x43, 0x9f, 0x57, 0x0c, 0x1b, 0x8e, 0x2a, 0x7d, 0x56}
	// run the same INSERT (one cached named statement) more than once
	for i := 1; i <= 6; i++ {
		_, err := c.Exec(ctx, ins, i, int32(-7*i), int64(-9007199254740993)*int64(i), num,
			fmt.Sprintf("héllo 'wörld' ✓ %d 日本", i), []byte{0, 1, 2, 0x27, 0x5c, 0xfe, 0xff, byte(i)},
			i%2 == 0, ts.Add(time.Duration(i)*time.Hour), d.AddDate(0, 0, i),
			map[string]interface{}{"a": []interface{}{1, 2, map[string]interface{}{"b": nil}}, "u": "ü", "i": i},
			map[string]interface{}{"k": "v", "n": i}, []int32{1, -2, int32(i)},
			[]string{"a", "b c", `d"e`, "{x}", "NULL"}, u, 1.5*float64(i))
		must(err)
	}
	_, err := c.Exec(ctx, ins, 7, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil)
	must(err)
	// a text-format parameter holding a NULL array element and a non-ASCII key
	_, err = c.Exec(ctx, fmt.Sprintf("UPDATE %s SET ai = $1::int[], jb = $2 WHERE id = $3", t),
		"{1,NULL,3}", `{"ключ": [true, null]}`, 6)
	must(err)
	rows, err := rowsOf(c.Query(ctx, fmt.Sprintf("SELECT * FROM %s WHERE id >= $1 ORDER BY id", t), 0))
	must(err)
	out["rows"] = rows
	// scans into Go types (binary results)
	var i4 int32
	var i8 int64
	var txt string
	var b []byte
	var bo bool
	var tz, dd time.Time
	var ai []int32
	var at []string
	var uu pgtype.UUID
	var n pgtype.Numeric
	must(c.QueryRow(ctx, fmt.Sprintf("SELECT i4, i8, t, b, bo, tz, d, ai, at, u, n FROM %s WHERE id = $1", t), 2).
		Scan(&i4, &i8, &txt, &b, &bo, &tz, &dd, &ai, &at, &uu, &n))
	ns := numeric(n)
	out["scanned"] = []interface{}{i4, strconv.FormatInt(i8, 10), txt, hex.EncodeToString(b), bo,
		tz.UTC().Format(time.RFC3339Nano), dd.Format("2006-01-02"), ai, at,
		hex.EncodeToString(uu.Bytes[:]), ns}
	var nullI *int32
	var nullT *string
	must(c.QueryRow(ctx, fmt.Sprintf("SELECT i4, t FROM %s WHERE id = $1", t), 7).Scan(&nullI, &nullT))
	out["nulls"] = []bool{nullI == nil, nullT == nil}
	// parameters echoed back with server-side casts
	var big1 pgtype.Numeric
	var s1 string
	var j map[string]interface{}
	must(c.QueryRow(ctx, "SELECT $1::numeric * 2, $2::text || '✓', $3::jsonb",
		"0.000000000100000000000000000001", "ünï", `{"x": [1, 2.5, "y"]}`).Scan(&big1, &s1, &j))
	out["echo"] = []interface{}{numeric(big1), s1, j}
	x := new(big.Int)
	x.SetString("-98765432109876543210", 10)
	var back pgtype.Numeric
	must(c.QueryRow(ctx, "SELECT $1::numeric", &pgtype.Numeric{Int: x, Exp: -3, Status: pgtype.Present}).Scan(&back))
	out["numeric_binary"] = numeric(back)
}

// preparedPool: many goroutines over a pgxpool of 6 connections run the same
// statements (each connection prepares its own lrupsc_* copy); in transaction
// pooling every named statement meets several server connections.
func preparedPool() {
	t := table()
	offset, _ := strconv.Atoi(os.Getenv("E2E_OFFSET"))
	reverse := os.Getenv("E2E_REVERSE") == "1"
	p := pool(6)
	defer p.Close()
	stmts := []string{
		fmt.Sprintf("INSERT INTO %s (id, k, v) VALUES ($1, $2, $3)", t),
		fmt.Sprintf("SELECT v, k FROM %s WHERE id = $1", t),
		fmt.Sprintf("SELECT count(*), coalesce(sum(k), 0) FROM %s WHERE id >= $1 AND id < $2", t),
		"SELECT $1::int + $2::int, $3::text",
	}
	const workers, rounds = 12, 40
	var wg sync.WaitGroup
	errs := make(chan string, workers*rounds)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				id := offset + w*1000 + r
				order := []int{0, 1, 2, 3}
				if reverse {
					order = []int{3, 2, 1, 0}
				}
				for _, s := range order {
					switch s {
					case 0:
						if _, err := p.Exec(ctx, stmts[0], id, r, fmt.Sprintf("w%d-r%d", w, r)); err != nil {
							errs <- "insert: " + err.Error()
						}
					case 1:
						var v string
						var k int
						err := p.QueryRow(ctx, stmts[1], id).Scan(&v, &k)
						if reverse && errors.Is(err, pgx.ErrNoRows) {
							break // reversed: the row is not written yet
						}
						if err != nil || v != fmt.Sprintf("w%d-r%d", w, r) || k != r {
							errs <- fmt.Sprintf("select %d: %v %q %d", id, err, v, k)
						}
					case 2:
						var cnt, sum int64
						lo := offset + w*1000
						err := p.QueryRow(ctx, stmts[2], lo, lo+1000).Scan(&cnt, &sum)
						want := int64(r + 1)
						if reverse {
							want = int64(r)
						}
						if err != nil || cnt != want || sum != want*(want-1)/2 {
							errs <- fmt.Sprintf("count w%d r%d: %v %d %d", w, r, err, cnt, sum)
						}
					case 3:
						var a int
						var b string
						err := p.QueryRow(ctx, stmts[3], w, r, "x").Scan(&a, &b)
						if err != nil || a != w+r || b != "x" {
							errs <- fmt.Sprintf("add: %v %d %q", err, a, b)
						}
					}
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	var es []string
	for e := range errs {
		es = append(es, e)
	}
	out["errors"] = es
	out["pool_conns"] = p.Stat().TotalConns()
	var n int64
	must(p.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE id >= $1 AND id < $2", t), offset, offset+workers*1000).Scan(&n))
	out["rows"] = n
}

func transactions() {
	c := connect()
	defer c.Close(ctx)
	t := table()
	ins := fmt.Sprintf("INSERT INTO %s (id, v) VALUES ($1, $2)", t)
	// commit and rollback
	for i := 0; i < 6; i++ {
		tx, err := c.Begin(ctx)
		must(err)
		_, err = tx.Exec(ctx, ins, i, fmt.Sprintf("tx%d", i))
		must(err)
		var n int
		must(tx.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s", t)).Scan(&n))
		if i%2 == 0 {
			must(tx.Commit(ctx))
		} else {
			must(tx.Rollback(ctx))
		}
	}
	// an error in the middle of a transaction
	tx, err := c.Begin(ctx)
	must(err)
	_, err = tx.Exec(ctx, ins, 100, "before error")
	must(err)
	_, err = tx.Exec(ctx, "SELECT 1/$1::int", 0)
	out["mid_tx_error"] = code(err)
	_, err = tx.Exec(ctx, ins, 101, "in failed tx")
	out["in_failed_tx"] = code(err)
	must(tx.Rollback(ctx))
	// the same connection goes on
	_, err = c.Exec(ctx, ins, 102, "after rollback")
	must(err)
	// unique violation, in autocommit and inside a transaction
	_, err = c.Exec(ctx, ins, 0, "dup")
	out["dup_autocommit"] = code(err)
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		out["dup_constraint"] = pe.ConstraintName != ""
		out["dup_table"] = pe.TableName == t
	}
	tx, err = c.Begin(ctx)
	must(err)
	_, err = tx.Exec(ctx, ins, 2, "dup")
	out["dup_in_tx"] = code(err)
	out["commit_after_error"] = code(tx.Commit(ctx)) // pgx: ErrTxCommitRollback
	// savepoints: pgx's nested transactions
	tx, err = c.Begin(ctx)
	must(err)
	_, err = tx.Exec(ctx, ins, 200, "outer")
	must(err)
	sp, err := tx.Begin(ctx)
	must(err)
	_, err = sp.Exec(ctx, ins, 200, "dup in savepoint")
	out["dup_in_savepoint"] = code(err)
	must(sp.Rollback(ctx))
	_, err = tx.Exec(ctx, ins, 201, "after savepoint")
	must(err)
	must(tx.Commit(ctx))
	// BeginFunc with an error rolls back
	err = c.BeginFunc(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, ins, 300, "rolled back"); err != nil {
			return err
		}
		return errors.New("app error")
	})
	out["begin_func"] = code(err)
	r, err := rowsOf(c.Query(ctx, fmt.Sprintf("SELECT id, v FROM %s ORDER BY id", t)))
	must(err)
	out["rows"] = r
}

func large() {
	p := pool(2)
	defer p.Close()
	n, _ := strconv.Atoi(os.Getenv("E2E_ROWS"))
	for round := 0; round < 2; round++ {
		rows, err := p.Query(ctx, "SELECT g, md5(g::text), g::numeric / 7 FROM generate_series(1, $1::int) g", n)
		must(err)
		h := md5.New()
		var cnt, sum int64
		for rows.Next() {
			var g int64
			var m string
			var q pgtype.Numeric
			must(rows.Scan(&g, &m, &q))
			cnt++
			sum += g
			if g%1000 == 0 {
				fmt.Fprintf(h, "%s|%s;", m, numeric(q))
			}
		}
		must(rows.Err())
		out[fmt.Sprintf("round%d", round)] = []interface{}{cnt, sum, hex.EncodeToString(h.Sum(nil))}
	}
	// abandoning a big result half-way: the pool's connection must stay usable
	rows, err := p.Query(ctx, "SELECT g FROM generate_series(1, $1::int) g", n)
	must(err)
	for i := 0; i < 10 && rows.Next(); i++ {
	}
	rows.Close()
	must(rows.Err())
	var one int
	must(p.QueryRow(ctx, "SELECT $1::int", 1).Scan(&one))
	out["after_abandon"] = one
}

func copyInOut() {
	c := connect()
	defer c.Close(ctx)
	t := table()
	var src [][]interface{}
	for i := 0; i < 20000; i++ {
		var v interface{} = fmt.Sprintf("row %d ✓ tab\there", i)
		if i%100 == 0 {
			v = nil
		}
		src = append(src, []interface{}{i, v, []byte{byte(i), byte(i >> 8)}})
	}
	n, err := c.CopyFrom(ctx, pgx.Identifier{t}, []string{"id", "v", "b"}, pgx.CopyFromRows(src))
	must(err)
	out["copied_in"] = n
	// a COPY that fails (duplicate key) leaves the connection usable
	_, err = c.CopyFrom(ctx, pgx.Identifier{t}, []string{"id", "v", "b"}, pgx.CopyFromRows(src[:10]))
	out["copy_dup"] = code(err)
	// COPY FROM STDIN in text format through pgconn
	tag, err := c.PgConn().CopyFrom(ctx, strings.NewReader("50000\ttext copy\t\\\\x00ff\n50001\t\\N\t\\N\n"),
		fmt.Sprintf("COPY %s (id, v, b) FROM STDIN", t))
	must(err)
	out["text_copy_in"] = tag.String()
	var buf bytes.Buffer
	tag, err = c.PgConn().CopyTo(ctx, &buf, fmt.Sprintf("COPY (SELECT * FROM %s ORDER BY id) TO STDOUT", t))
	must(err)
	out["copy_out_tag"] = tag.String()
	sum := md5.Sum(buf.Bytes())
	out["copy_out_md5"] = hex.EncodeToString(sum[:])
	out["copy_out_lines"] = strings.Count(buf.String(), "\n")
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	out["copy_out_last"] = lines[len(lines)-2:]
	buf.Reset()
	_, err = c.PgConn().CopyTo(ctx, &buf, "COPY (SELECT 1/0) TO STDOUT")
	out["copy_out_error"] = code(err)
	var cnt int
	must(c.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE v IS NULL", t)).Scan(&cnt))
	out["nulls"] = cnt
}

// cancel: an explicit CancelRequest while pg_sleep runs (the connection
// stays), then a context deadline (pgx cancels and closes the connection).
func cancel() {
	c := connect()
	defer c.Close(ctx)
	marker := os.Getenv("E2E_MARKER")
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := c.Exec(ctx, fmt.Sprintf("SELECT pg_sleep(20) /* %s-a */", marker))
		done <- err
	}()
	time.Sleep(700 * time.Millisecond)
	must(c.PgConn().CancelRequest(ctx))
	err := <-done
	out["cancel"] = code(err)
	out["cancel_fast"] = time.Since(start) < 8*time.Second
	var n int
	must(c.QueryRow(ctx, "SELECT $1::int * 2", 21).Scan(&n))
	out["after_cancel"] = n
	// a pool query with a deadline
	p := pool(2)
	defer p.Close()
	tctx, cf := context.WithTimeout(ctx, 600*time.Millisecond)
	defer cf()
	start = time.Now()
	_, err = p.Exec(tctx, fmt.Sprintf("SELECT pg_sleep(20) /* %s-b */", marker))
	out["deadline_error"] = err != nil && errors.Is(err, context.DeadlineExceeded) || code(err) == "57014"
	out["deadline_fast"] = time.Since(start) < 5*time.Second
	must(p.QueryRow(ctx, "SELECT $1::int + 1", 41).Scan(&n))
	out["after_deadline"] = n
	// the server must stop sleeping (pgx sent a CancelRequest before closing)
	deadline := time.Now().Add(8 * time.Second)
	left := -1
	for time.Now().Before(deadline) {
		must(c.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 AND state = 'active' AND pid <> pg_backend_pid()",
			"%"+marker+"-%").Scan(&left))
		if left == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	out["sleepers_left"] = left
}

func timeout() {
	c := connect()
	defer c.Close(ctx)
	_, err := c.Exec(ctx, "SET statement_timeout = '300ms'")
	must(err)
	start := time.Now()
	_, err = c.Exec(ctx, "SELECT pg_sleep($1::float8)", 5.0)
	out["timeout"] = code(err)
	out["timeout_fast"] = time.Since(start) < 4*time.Second
	var s string
	// several transactions later (other server connections), still in force
	for i := 0; i < 5; i++ {
		must(c.QueryRow(ctx, "SHOW statement_timeout").Scan(&s))
	}
	out["show"] = s
	_, err = c.Exec(ctx, "SELECT pg_sleep(1)")
	out["timeout_again"] = code(err)
	// SET LOCAL inside a transaction, then the session value again
	tx, err := c.Begin(ctx)
	must(err)
	_, err = tx.Exec(ctx, "SET LOCAL statement_timeout = '5s'")
	must(err)
	_, err = tx.Exec(ctx, "SELECT pg_sleep(0.5)")
	out["local_longer"] = code(err)
	must(tx.Commit(ctx))
	must(c.QueryRow(ctx, "SHOW statement_timeout").Scan(&s))
	out["show_after_local"] = s
	// a transaction with a timeout error, then ROLLBACK and work
	tx, err = c.Begin(ctx)
	must(err)
	_, err = tx.Exec(ctx, "SELECT pg_sleep(2)")
	out["timeout_in_tx"] = code(err)
	must(tx.Rollback(ctx))
	var n int
	must(c.QueryRow(ctx, "SELECT $1::int", 5).Scan(&n))
	out["after"] = n
	// another connection does not see this one's setting
	c2 := connect()
	defer c2.Close(ctx)
	must(c2.QueryRow(ctx, "SHOW statement_timeout").Scan(&s))
	out["other_conn"] = s
}

func concurrent() {
	t := table()
	workers, _ := strconv.Atoi(os.Getenv("E2E_WORKERS"))
	p := pool(int32(workers))
	defer p.Close()
	const rounds = 30
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	fail := func(s string) { mu.Lock(); errs = append(errs, s); mu.Unlock() }
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			_, err := p.Exec(ctx, fmt.Sprintf("INSERT INTO %s (id, n, v) VALUES ($1, 0, '')", t), w)
			if err != nil {
				fail(err.Error())
				return
			}
			want := 0
			for r := 0; r < rounds; r++ {
				tx, err := p.Begin(ctx)
				if err != nil {
					fail(err.Error())
					return
				}
				var n int
				var v string
				if err := tx.QueryRow(ctx, fmt.Sprintf("UPDATE %s SET n = n + 1, v = v || $2 WHERE id = $1 RETURNING n, v", t),
					w, fmt.Sprint(r%10)).Scan(&n, &v); err != nil {
					fail(err.Error())
					tx.Rollback(ctx)
					return
				}
				if n != want+1 || len(v) != want+1 {
					fail(fmt.Sprintf("w%d r%d: n=%d v=%q want %d", w, r, n, v, want+1))
				}
				if r%4 == 3 {
					must(tx.Rollback(ctx))
				} else {
					if err := tx.Commit(ctx); err != nil {
						fail(err.Error())
					}
					want++
				}
				var got int
				if err := p.QueryRow(ctx, fmt.Sprintf("SELECT n FROM %s WHERE id = $1", t), w).Scan(&got); err != nil || got != want {
					fail(fmt.Sprintf("read w%d r%d: %v %d want %d", w, r, err, got, want))
				}
				var echo string
				if err := p.QueryRow(ctx, "SELECT $1::text || pg_backend_pid()::text", fmt.Sprintf("w%d:", w)).Scan(&echo); err != nil ||
					!strings.HasPrefix(echo, fmt.Sprintf("w%d:", w)) {
					fail(fmt.Sprintf("echo w%d: %v %q", w, err, echo))
				}
			}
		}(w)
	}
	wg.Wait()
	if errs == nil {
		errs = []string{}
	}
	sort.Strings(errs)
	out["errors"] = errs
	rows, err := rowsOf(p.Query(ctx, fmt.Sprintf("SELECT id, n, length(v) FROM %s ORDER BY id", t)))
	must(err)
	out["rows"] = rows
}

// shape: a cached `SELECT *` (a named statement with its description) and
// the table gains a column in between; every attempt's outcome is recorded.
func shape() {
	t := table()
	c := connect()
	defer c.Close(ctx)
	other := connect()
	defer other.Close(ctx)
	q := fmt.Sprintf("SELECT * FROM %s WHERE id = $1", t)
	var steps []interface{}
	run := func(conn *pgx.Conn) {
		rows, err := conn.Query(ctx, q, 1)
		if err != nil {
			steps = append(steps, "error "+code(err))
			return
		}
		cols := columns(rows)
		r, err := rowsOf(rows, nil)
		if err != nil {
			steps = append(steps, "error "+code(err))
			return
		}
		steps = append(steps, []interface{}{cols, r})
	}
	run(c)
	run(c)
	run(other)
	_, err := other.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN w int DEFAULT 7", t))
	must(err)
	for i := 0; i < 3; i++ {
		run(c)
	}
	run(other)
	run(other)
	_, err = other.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP COLUMN v", t))
	must(err)
	_, err = other.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN v text DEFAULT 'new'", t))
	must(err)
	for i := 0; i < 3; i++ {
		run(c)
	}
	// database/sql on top of pgx (stdlib): a prepared *sql.Stmt across the change
	db, err := sql.Open("pgx", "")
	must(err)
	defer db.Close()
	st, err := db.Prepare(fmt.Sprintf("SELECT * FROM %s WHERE id = $1", t))
	must(err)
	var stdSteps []interface{}
	runStd := func() {
		rows, err := st.Query(1)
		if err != nil {
			stdSteps = append(stdSteps, "error "+code(err))
			return
		}
		cols, _ := rows.Columns()
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			stdSteps = append(stdSteps, "error "+code(err))
		} else {
			stdSteps = append(stdSteps, []interface{}{cols, n})
		}
		rows.Close()
	}
	runStd()
	_, err = other.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN x int DEFAULT 9", t))
	must(err)
	runStd()
	runStd()
	out["steps"] = steps
	out["stdlib"] = stdSteps
}

func listen() {
	l := connect()
	defer l.Close(ctx)
	ch := os.Getenv("E2E_CHANNEL")
	_, err := l.Exec(ctx, "LISTEN "+ch)
	must(err)
	p := pool(3)
	defer p.Close()
	for i := 0; i < 5; i++ {
		_, err := p.Exec(ctx, "SELECT pg_notify($1, $2)", ch, fmt.Sprintf("payload %d ✓", i))
		must(err)
	}
	// a notification sent inside a rolled-back transaction is never delivered
	tx, err := p.Begin(ctx)
	must(err)
	_, err = tx.Exec(ctx, "SELECT pg_notify($1, 'rolled back')", ch)
	must(err)
	must(tx.Rollback(ctx))
	_, err = p.Exec(ctx, "NOTIFY "+ch+", 'last'")
	must(err)
	var got []string
	for len(got) < 6 {
		wctx, cf := context.WithTimeout(ctx, 5*time.Second)
		n, err := l.WaitForNotification(wctx)
		cf()
		if err != nil {
			got = append(got, "error: "+err.Error())
			break
		}
		got = append(got, n.Channel+":"+n.Payload)
	}
	out["notifications"] = got
	// the listening connection still answers queries
	var v int
	must(l.QueryRow(ctx, "SELECT $1::int", 3).Scan(&v))
	out["after"] = v
}

// stdlib: database/sql over pgx (sql.Open("pgx")): its own pool, prepared
// statements, transactions, errors.
func stdlibScenario() {
	t := table()
	db, err := sql.Open("pgx", "")
	must(err)
	defer db.Close()
	db.SetMaxOpenConns(5)
	ins, err := db.Prepare(fmt.Sprintf("INSERT INTO %s (id, v) VALUES ($1, $2)", t))
	must(err)
	sel, err := db.Prepare(fmt.Sprintf("SELECT v FROM %s WHERE id = $1", t))
	must(err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	for w := 0; w < 10; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < 30; r++ {
				id := w*100 + r
				if _, err := ins.Exec(id, fmt.Sprintf("v%d", id)); err != nil {
					mu.Lock()
					errs = append(errs, err.Error())
					mu.Unlock()
					continue
				}
				var v string
				if err := sel.QueryRow(id).Scan(&v); err != nil || v != fmt.Sprintf("v%d", id) {
					mu.Lock()
					errs = append(errs, fmt.Sprintf("%d: %v %q", id, err, v))
					mu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()
	if errs == nil {
		errs = []string{}
	}
	out["errors"] = errs
	tx, err := db.Begin()
	must(err)
	_, err = tx.Stmt(ins).Exec(0, "dup")
	out["dup"] = code(err)
	_, err = tx.Exec("SELECT 1")
	out["in_failed_tx"] = code(err)
	must(tx.Rollback())
	tx, err = db.Begin()
	must(err)
	_, err = tx.Exec(fmt.Sprintf("DELETE FROM %s WHERE id < $1", t), 100)
	must(err)
	must(tx.Commit())
	var n int
	must(db.QueryRow(fmt.Sprintf("SELECT count(*) FROM %s", t)).Scan(&n))
	out["rows"] = n
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: pgxclient <scenario>")
		os.Exit(2)
	}
	scenarios := map[string]func(){
		"simple": simple, "types": types, "prepared_pool": preparedPool,
		"transactions": transactions, "large": large, "copy": copyInOut, "cancel": cancel,
		"timeout": timeout, "concurrent": concurrent, "shape": shape, "listen": listen,
		"stdlib": stdlibScenario,
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
