<?php
// Runs one scenario with PHP's PDO pgsql driver and the pgsql extension's
// pg_* functions (Debian's php-pgsql, over libpq) and prints a JSON summary as
// its last line.  Connection settings come from the libpq environment
// (PGHOST, PGPORT, ...); everything else is the default: PDO with emulated
// prepares off, so every prepare() with placeholders is a named server-side
// statement pdo_stmt_<8 hex digits> counted per connection (two connections
// use the same name for different statements), ERRMODE_EXCEPTION.
// E2E_TABLE names the scenario's table.
//
//   php pgsql_client.php <scenario>

$OUT = [];

function pdo_connect(): PDO
{
    $dsn = sprintf('pgsql:host=%s;port=%s;dbname=%s', getenv('PGHOST'), getenv('PGPORT'),
                   getenv('PGDATABASE'));
    return new PDO($dsn, getenv('PGUSER'), getenv('PGPASSWORD') ?: null,
                   [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
}

function pg_conn()
{
    $c = pg_connect('', PGSQL_CONNECT_FORCE_NEW);  // the libpq environment
    if (!$c) {
        fwrite(STDERR, "pg_connect failed\n");
        exit(1);
    }
    return $c;
}

function table(): string
{
    $t = getenv('E2E_TABLE');
    if (!$t) {
        fwrite(STDERR, "E2E_TABLE is not set\n");
        exit(1);
    }
    return $t;
}

// runs $f; returns its value or "error <SQLSTATE>"
function attempt(callable $f)
{
    try {
        return $f();
    } catch (PDOException $e) {
        return 'error ' . $e->getCode();
    }
}

// SQLSTATE of the last failed pg_* query on $c (after pg_send_query)
function pg_state($res): string
{
    return $res === false ? 'false' : (string)pg_result_error_field($res, PGSQL_DIAG_SQLSTATE);
}

function scenario_simple()
{
    global $OUT;
    $db = pdo_connect();
    $t = table();
    $db->exec("INSERT INTO $t VALUES (1, 'one'); INSERT INTO $t VALUES (2, 'two'); "
              . "UPDATE $t SET v = v || '!' WHERE id = 2");
    $OUT['delete'] = $db->exec("DELETE FROM $t WHERE id > 100");
    $OUT['rows'] = $db->query("SELECT id, v FROM $t ORDER BY id")->fetchAll(PDO::FETCH_NUM);
    $OUT['row'] = $db->query("SELECT 1 AS a, 'x'::text AS b, NULL::int AS c, 2.5::float8 AS d")
        ->fetch(PDO::FETCH_ASSOC);
    $OUT['div0'] = attempt(fn() => $db->query('SELECT 1/0'));
    $OUT['user'] = $db->query('SELECT current_user')->fetchColumn();
    // the pg_* functions
    $c = pg_conn();
    $r = pg_query($c, "SELECT id, v FROM $t ORDER BY id; SELECT 42 AS last");
    $OUT['pg_query_multi'] = pg_fetch_all($r, PGSQL_NUM);
    $OUT['pg_version_server'] = (int)(pg_version($c)['server'] ?? 0) >= 15;
    $OUT['pg_parameter_status'] = pg_parameter_status($c, 'client_encoding');
    $r = @pg_query($c, 'SELECT 1/0');
    $OUT['pg_query_error'] = $r === false && str_contains(pg_last_error($c), 'division by zero');
    $OUT['pg_after_error'] = pg_fetch_result(pg_query($c, 'SELECT 7'), 0, 0);
}

const TYPES_SQL = 'INSERT INTO %s VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)';

function scenario_types()
{
    global $OUT;
    $db = pdo_connect();
    $t = table();
    $ins = $db->prepare(sprintf(TYPES_SQL, $t));
    for ($i = 1; $i <= 6; $i++) {
        $b = pack('C*', 0, 1, 2, 0x27, 0x5c, 0xfe, 0xff, $i);
        $vals = [$i, -7 * $i, '-9007199254740993', '12345678901234567890.123456781',
                 "héllo 'wörld' ✓ $i 日本", null, $i % 2 == 0, '2024-02-29 10:34:56.123456+00',
                 '1999-12-' . (20 + $i),
                 json_encode(['a' => [1, 2, ['b' => null]], 'u' => 'ü', 'i' => $i], JSON_UNESCAPED_UNICODE),
                 json_encode(['k' => 'v', 'n' => $i]), "{1,-2,$i,NULL}",
                 '{a,"b c","d\"e","{x}",NULL,"NULL"}', '0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d56',
                 1.5 * $i];
        foreach ($vals as $k => $v) {
            if ($k == 5) {
                $ins->bindValue(6, $b, PDO::PARAM_LOB);
            } elseif (is_bool($v)) {
                $ins->bindValue($k + 1, $v, PDO::PARAM_BOOL);
            } elseif (is_int($v)) {
                $ins->bindValue($k + 1, $v, PDO::PARAM_INT);
            } else {
                $ins->bindValue($k + 1, $v === null ? null : (string)$v,
                                $v === null ? PDO::PARAM_NULL : PDO::PARAM_STR);
            }
        }
        $ins->execute();
    }
    $ins->execute(array_merge([7], array_fill(0, 14, null)));
    $sel = $db->prepare("SELECT * FROM $t WHERE id >= ? ORDER BY id");
    $sel->execute([0]);
    $rows = $sel->fetchAll(PDO::FETCH_NUM);
    foreach ($rows as &$r) {
        if (is_resource($r[5])) {
            $r[5] = bin2hex(stream_get_contents($r[5]));
        }
    }
    unset($r);
    $OUT['rows'] = $rows;
    $echo = $db->prepare("SELECT ?::numeric * 2, ?::text || '✓', ?::jsonb, ?::int");
    $echo->execute(['0.000000000100000000000000000001', 'ünï', '{"x": [1, 2.5, "y"]}', null]);
    $OUT['echo'] = $echo->fetch(PDO::FETCH_NUM);
    // named placeholders, executed many times
    $by = $db->prepare("SELECT t, i8 FROM $t WHERE id = :id AND i4 = :i4");
    $got = [];
    for ($i = 1; $i <= 6; $i++) {
        $by->execute([':id' => $i, ':i4' => -7 * $i]);
        $got[] = $by->fetch(PDO::FETCH_NUM);
    }
    $OUT['named'] = $got;
    // pg_query_params and pg_prepare/pg_execute on the same table
    $c = pg_conn();
    $r = pg_query_params($c, "SELECT i4, t, b, ai, jb FROM $t WHERE id = $1", [3]);
    $row = pg_fetch_row($r);
    $row[2] = bin2hex(pg_unescape_bytea($row[2]));
    $OUT['pg_query_params'] = $row;
    pg_prepare($c, 'by_id', "SELECT id, n FROM $t WHERE id = $1 OR $2::bool");
    $ex = [];
    foreach ([1, 4, 7] as $id) {
        $ex[] = pg_fetch_all(pg_execute($c, 'by_id', [$id, 'false']), PGSQL_NUM);
    }
    $OUT['pg_execute'] = $ex;
    $r = pg_query_params($c, 'SELECT $1::bytea, $2::text, $3::int',
                         [pg_escape_bytea($c, "\x00\xff'"), null, '5']);
    $row = pg_fetch_row($r);
    $row[0] = bin2hex(pg_unescape_bytea($row[0]));
    $OUT['pg_params_echo'] = $row;
}

// forked workers, each its own PDO connection: pdo_stmt_00000001.. mean
// different statements on different connections
function scenario_prepared_pool()
{
    global $OUT;
    $t = table();
    $stmts = [
        "INSERT INTO $t (id, k, v) VALUES (?, ?, ?)",
        "SELECT v, k FROM $t WHERE id = ?",
        "SELECT count(*), coalesce(sum(k), 0) FROM $t WHERE id >= ? AND id < ?",
        'SELECT ?::int + ?::int, ?::text',
    ];
    $pids = [];
    for ($w = 0; $w < 8; $w++) {
        $pid = pcntl_fork();
        if ($pid == 0) {
            $errors = [];
            try {
                $db = pdo_connect();
                $order = $w % 2 ? [3, 2, 1, 0] : [0, 1, 2, 3];
                $p = [];
                foreach ($order as $s) {
                    $p[$s] = $db->prepare($stmts[$s]);
                }
                for ($r = 0; $r < 40; $r++) {
                    $id = $w * 1000 + $r;
                    if ($r % 2) {
                        $db->beginTransaction();
                    }
                    $p[0]->execute([$id, $r, "w$w-r$r"]);
                    $p[1]->execute([$id]);
                    $v = $p[1]->fetch(PDO::FETCH_NUM);
                    if ($v != ["w$w-r$r", $r]) {
                        $errors[] = "select $id: " . json_encode($v);
                    }
                    $p[2]->execute([$w * 1000, $w * 1000 + 1000]);
                    $c = $p[2]->fetch(PDO::FETCH_NUM);
                    if ($c != [$r + 1, $r * ($r + 1) / 2]) {
                        $errors[] = "count $id: " . json_encode($c);
                    }
                    $p[3]->execute([$w, $r, 'x']);
                    $a = $p[3]->fetch(PDO::FETCH_NUM);
                    if ($a != [$w + $r, 'x']) {
                        $errors[] = "add $id: " . json_encode($a);
                    }
                    if ($r % 2) {
                        $db->commit();
                    }
                }
            } catch (Throwable $e) {
                $errors[] = "w$w: " . $e->getMessage();
            }
            foreach ($errors as $e) {
                fwrite(STDERR, "$e\n");
            }
            exit($errors ? 1 : 0);
        }
        $pids[] = $pid;
    }
    $failed = 0;
    foreach ($pids as $pid) {
        pcntl_waitpid($pid, $status);
        if (!pcntl_wifexited($status) || pcntl_wexitstatus($status) != 0) {
            $failed++;
        }
    }
    $OUT['failed_workers'] = $failed;
    $OUT['rows'] = pdo_connect()->query("SELECT count(*), sum(k) FROM $t")->fetch(PDO::FETCH_NUM);
}

function scenario_transactions()
{
    global $OUT;
    $db = pdo_connect();
    $t = table();
    $ins = $db->prepare("INSERT INTO $t (id, v) VALUES (?, ?)");
    for ($i = 0; $i < 6; $i++) {
        $db->beginTransaction();
        $ins->execute([$i, "tx$i"]);
        $i % 2 ? $db->rollBack() : $db->commit();
    }
    $db->beginTransaction();
    $ins->execute([100, 'before error']);
    $OUT['mid_tx_error'] = attempt(fn() => $db->prepare('SELECT 1/?::int')->execute([0]));
    $OUT['in_failed_tx'] = attempt(fn() => $ins->execute([101, 'in failed tx']));
    $OUT['in_tx'] = $db->inTransaction();
    $db->rollBack();
    $ins->execute([102, 'after rollback']);
    try {
        $ins->execute([0, 'dup']);
    } catch (PDOException $e) {
        $OUT['dup'] = $e->getCode();
        $OUT['dup_errorinfo'] = $e->errorInfo[0];
        $OUT['dup_message'] = str_contains($e->getMessage(), 'duplicate key value');
    }
    $db->beginTransaction();
    $ins->execute([300, 'outer']);
    $db->exec('SAVEPOINT a');
    $OUT['dup_in_savepoint'] = attempt(fn() => $ins->execute([300, 'dup']));
    $db->exec('ROLLBACK TO SAVEPOINT a');
    $ins->execute([301, 'after savepoint']);
    $db->commit();
    // errors in ERRMODE_SILENT: errorInfo carries the SQLSTATE
    $db->setAttribute(PDO::ATTR_ERRMODE, PDO::ERRMODE_SILENT);
    $ok = $ins->execute([0, 'silent dup']);
    $OUT['silent'] = [$ok, $ins->errorInfo()[0]];
    $db->setAttribute(PDO::ATTR_ERRMODE, PDO::ERRMODE_EXCEPTION);
    // pg_* transactions
    $c = pg_conn();
    pg_query($c, 'BEGIN');
    pg_query_params($c, "INSERT INTO $t (id, v) VALUES ($1, $2)", [400, 'pg tx']);
    pg_send_query_params($c, "INSERT INTO $t (id, v) VALUES ($1, $2)", [0, 'dup']);
    $r = pg_get_result($c);
    $OUT['pg_dup'] = pg_state($r);
    while (pg_get_result($c)) {
    }
    $OUT['pg_status'] = pg_transaction_status($c) == PGSQL_TRANSACTION_INERROR;
    pg_query($c, 'ROLLBACK');
    $OUT['pg_status_after'] = pg_transaction_status($c) == PGSQL_TRANSACTION_IDLE;
    $OUT['rows'] = $db->query("SELECT id, v FROM $t ORDER BY id")->fetchAll(PDO::FETCH_NUM);
}

function scenario_large()
{
    global $OUT;
    $n = (int)getenv('E2E_ROWS');
    $sql = 'SELECT g, md5(g::text), g::numeric / 7 FROM generate_series(1, ?::int) g';
    $db = pdo_connect();
    $st = $db->prepare($sql);
    $st->execute([$n]);
    [$cnt, $sum, $h] = [0, 0, hash_init('md5')];
    while ($r = $st->fetch(PDO::FETCH_NUM)) {
        $cnt++;
        $sum += $r[0];
        if ($r[0] % 1000 == 0) {
            hash_update($h, "$r[1]|$r[2];");
        }
    }
    $OUT['pdo'] = [$cnt, $sum, hash_final($h)];
    $c = pg_conn();
    $r = pg_query_params($c, str_replace('?', '$1', $sql), [$n]);
    [$cnt, $sum, $h] = [0, 0, hash_init('md5')];
    while ($row = pg_fetch_row($r)) {
        $cnt++;
        $sum += $row[0];
        if ($row[0] % 1000 == 0) {
            hash_update($h, "$row[1]|$row[2];");
        }
    }
    $OUT['pg'] = [$cnt, $sum, hash_final($h)];
}

function scenario_copy()
{
    global $OUT;
    $t = table();
    $c = pg_conn();
    $lines = [];
    for ($i = 0; $i < 20000; $i++) {
        $v = $i % 100 == 0 ? '\N' : "row $i ✓ tab\\there";
        $lines[] = sprintf("%d\t%s\t\\\\x%02x%02x\n", $i, $v, $i & 255, ($i >> 8) & 255);
    }
    $OUT['pg_copy_from'] = pg_copy_from($c, "$t (id, v, b)", $lines);
    $OUT['pg_copy_from_dup'] = @pg_copy_from($c, "$t (id, v, b)", ["1\tdup\t\\N\n"]);
    $out = pg_copy_to($c, $t);
    $OUT['pg_copy_to'] = [count($out), md5(implode('', $out)), $out[19999]];
    // PDO's COPY helpers
    $db = pdo_connect();
    $OUT['pdo_copy_from'] = $db->pgsqlCopyFromArray($t, ["90000\tpdo\t\\N", "90001\t\\N\t\\x01"],
                                                   "\t", '\\\\N', 'id, v, b');
    $OUT['pdo_copy_dup'] = attempt(fn() => $db->pgsqlCopyFromArray($t, ["1\tdup"], "\t", '\\\\N', 'id, v'));
    $rows = $db->pgsqlCopyToArray($t, "\t", '\\\\N', 'id, v');
    $OUT['pdo_copy_to'] = [count($rows), md5(implode('', $rows))];
    $OUT['after'] = (int)$db->query("SELECT count(*) FROM $t")->fetchColumn();
    $OUT['pg_after'] = pg_fetch_result(pg_query($c, "SELECT count(*) FROM $t"), 0, 0);
}

function scenario_cancel()
{
    global $OUT;
    $c = pg_conn();
    $marker = getenv('E2E_MARKER');
    $t0 = microtime(true);
    pg_send_query($c, "SELECT pg_sleep(20) /* $marker */");
    usleep(700000);
    // pg_cancel_query sends the CancelRequest and reads the query's results itself
    $OUT['cancel_sent'] = pg_cancel_query($c);
    $OUT['cancel'] = pg_last_error($c);
    $OUT['fast'] = microtime(true) - $t0 < 8;
    $OUT['after'] = pg_fetch_result(pg_query_params($c, 'SELECT $1::int * 2', [21]), 0, 0);
    $OUT['sleepers'] = pg_fetch_result(pg_query_params($c,
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE \$1 AND state = 'active' AND pid <> pg_backend_pid()",
        ["%$marker%"]), 0, 0);
}

function scenario_timeout()
{
    global $OUT;
    $db = pdo_connect();
    $db->exec("SET statement_timeout = '300ms'");
    $t0 = microtime(true);
    $OUT['timeout'] = attempt(fn() => $db->prepare('SELECT pg_sleep(?::float8)')->execute([5]));
    $OUT['fast'] = microtime(true) - $t0 < 4;
    $show = [];
    for ($i = 0; $i < 5; $i++) {
        $show[$db->query('SHOW statement_timeout')->fetchColumn()] = 1;
    }
    $OUT['show'] = array_keys($show);
    $OUT['again'] = attempt(fn() => $db->query('SELECT pg_sleep(1)'));
    $db->beginTransaction();
    $db->exec("SET LOCAL statement_timeout = '5s'");
    $OUT['local_longer'] = attempt(fn() => $db->query('SELECT pg_sleep(0.5)')->rowCount());
    $db->commit();
    $OUT['show_after_local'] = $db->query('SHOW statement_timeout')->fetchColumn();
    $db->beginTransaction();
    $OUT['in_tx'] = attempt(fn() => $db->query('SELECT pg_sleep(2)'));
    $db->rollBack();
    $OUT['after'] = $db->query('SELECT 5')->fetchColumn();
    $OUT['other_conn'] = pdo_connect()->query('SHOW statement_timeout')->fetchColumn();
}

function scenario_concurrent()
{
    global $OUT;
    $t = table();
    $workers = (int)getenv('E2E_WORKERS');
    $pids = [];
    for ($w = 0; $w < $workers; $w++) {
        $pid = pcntl_fork();
        if ($pid == 0) {
            $errors = [];
            try {
                $db = pdo_connect();
                $db->prepare("INSERT INTO $t (id, n, v) VALUES (?, 0, '')")->execute([$w]);
                $upd = $db->prepare("UPDATE $t SET n = n + 1, v = v || ? WHERE id = ? RETURNING n, v");
                $sel = $db->prepare("SELECT n FROM $t WHERE id = ?");
                $want = 0;
                for ($r = 0; $r < 30; $r++) {
                    $db->beginTransaction();
                    $upd->execute([(string)($r % 10), $w]);
                    [$n, $v] = $upd->fetch(PDO::FETCH_NUM);
                    if ($n != $want + 1 || strlen($v) != $want + 1) {
                        $errors[] = "w$w r$r: $n $v";
                    }
                    if ($r % 4 == 3) {
                        $db->rollBack();
                    } else {
                        $db->commit();
                        $want++;
                    }
                    $sel->execute([$w]);
                    $got = $sel->fetchColumn();
                    if ($got != $want) {
                        $errors[] = "read w$w r$r: $got want $want";
                    }
                }
            } catch (Throwable $e) {
                $errors[] = "w$w: " . $e->getMessage();
            }
            foreach ($errors as $e) {
                fwrite(STDERR, "$e\n");
            }
            exit($errors ? 1 : 0);
        }
        $pids[] = $pid;
    }
    $failed = 0;
    foreach ($pids as $pid) {
        pcntl_waitpid($pid, $status);
        if (!pcntl_wifexited($status) || pcntl_wexitstatus($status) != 0) {
            $failed++;
        }
    }
    $OUT['failed_workers'] = $failed;
    $OUT['rows'] = pdo_connect()->query("SELECT id, n, length(v) FROM $t ORDER BY id")
        ->fetchAll(PDO::FETCH_NUM);
}

// a PDO prepared `SELECT *` (pdo_stmt_*) and a pg_prepare'd one across ALTER TABLE
function scenario_shape()
{
    global $OUT;
    $t = table();
    $db = pdo_connect();
    $other = pdo_connect();
    $c = pg_conn();
    $st = $db->prepare("SELECT * FROM $t WHERE id = ?");
    pg_prepare($c, 'q', "SELECT * FROM $t WHERE id = $1");
    $steps = [];
    $run = function () use (&$st, &$steps, $c) {
        $steps[] = attempt(function () use ($st) {
            $st->execute([1]);
            return $st->fetchAll(PDO::FETCH_ASSOC);
        });
        pg_send_execute($c, 'q', [1]);
        $r = pg_get_result($c);
        $steps[] = pg_result_status($r) == PGSQL_TUPLES_OK ? pg_fetch_all($r) : 'pg error ' . pg_state($r);
        while (pg_get_result($c)) {
        }
    };
    $run();
    $run();
    $other->exec("ALTER TABLE $t ADD COLUMN w int DEFAULT 7");
    $run();
    $run();
    $st = $db->prepare("SELECT * FROM $t WHERE id = ?");  // a new pdo_stmt_*
    $run();
    $other->exec("ALTER TABLE $t DROP COLUMN v");
    $run();
    $OUT['steps'] = $steps;
}

function scenario_listen()
{
    global $OUT;
    $db = pdo_connect();
    $ch = getenv('E2E_CHANNEL');
    $db->exec("LISTEN $ch");
    $s = pg_conn();
    for ($i = 0; $i < 5; $i++) {
        pg_query_params($s, 'SELECT pg_notify($1, $2)', [$ch, "payload $i ✓"]);
    }
    pg_query($s, 'BEGIN');
    pg_query_params($s, "SELECT pg_notify($1, 'rolled back')", [$ch]);
    pg_query($s, 'ROLLBACK');
    pg_query($s, "NOTIFY $ch, 'last'");
    $got = [];
    $deadline = microtime(true) + 5;
    while (count($got) < 6 && microtime(true) < $deadline) {
        $n = $db->pgsqlGetNotify(PDO::FETCH_ASSOC, 500);
        if ($n) {
            $got[] = $n['message'] . ':' . $n['payload'];
        }
    }
    $OUT['notifications'] = $got;
    $OUT['after'] = $db->query('SELECT 3')->fetchColumn();
    // pg_get_notify on a pg_* connection
    $l = pg_conn();
    pg_query($l, "LISTEN $ch");
    pg_query($s, "NOTIFY $ch, 'to pg'");
    $got = false;
    for ($i = 0; $i < 50 && !$got; $i++) {
        pg_query($l, 'SELECT 1');
        $got = pg_get_notify($l, PGSQL_ASSOC);
        if (!$got) {
            usleep(100000);
        }
    }
    $OUT['pg_get_notify'] = $got ? $got['message'] . ':' . $got['payload'] : null;
}

$name = 'scenario_' . ($argv[1] ?? '');
if (!function_exists($name)) {
    fwrite(STDERR, "usage: php pgsql_client.php <scenario>\n");
    exit(2);
}
$name();
echo json_encode($OUT, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES), "\n";
