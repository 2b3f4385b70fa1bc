#!/usr/bin/perl
# Runs one scenario with DBI + DBD::Pg (Debian's libdbd-pg-perl, over libpq)
# and prints a JSON summary as its last line.  Connection settings come from
# the libpq environment (PGHOST, PGPORT, ...: DSN "dbi:Pg:"); everything else
# is the driver's default: pg_server_prepare=1 (every prepare()d statement
# with placeholders becomes a named server-side statement dbdpg_p<pid>_<n>,
# prepared at its first execute), AutoCommit on, RaiseError as set here.
# E2E_TABLE names the scenario's table.
#
#   perl dbdpg_client.pl <scenario>
use strict;
use warnings;
use utf8;
use DBI;
use DBD::Pg qw(:pg_types :async);
use JSON::PP;
use Digest::MD5 qw(md5_hex);
use Time::HiRes qw(time sleep);

binmode STDOUT, ':encoding(UTF-8)';
my %OUT;

sub connect_db {
    my $dbh = DBI->connect('dbi:Pg:', undef, undef,
        { RaiseError => 1, PrintError => 0, AutoCommit => 1, pg_enable_utf8 => 1 })
        or die $DBI::errstr;
    return $dbh;
}

sub table { $ENV{E2E_TABLE} or die "E2E_TABLE is not set" }

# runs the code; returns its value or "error <SQLSTATE>"
sub attempt {
    my ($dbh, $code) = @_;
    my $v = eval { $code->() };
    return "error " . $dbh->state if $@;
    return $v;
}

sub simple {
    my $dbh = connect_db();
    my $t = table();
    $dbh->do("INSERT INTO $t VALUES (1, 'one'); INSERT INTO $t VALUES (2, 'two'); "
           . "UPDATE $t SET v = v || '!' WHERE id = 2");
    $OUT{delete} = $dbh->do("DELETE FROM $t WHERE id > 100") + 0;
    $OUT{rows} = $dbh->selectall_arrayref("SELECT id, v FROM $t ORDER BY id");
    $OUT{row} = [$dbh->selectrow_array("SELECT 1 AS a, 'x'::text, NULL::int, 2.5::float8")];
    $OUT{div0} = attempt($dbh, sub { $dbh->do('SELECT 1/0') });
    $OUT{user} = $dbh->selectrow_array('SELECT current_user');
    my @notices;
    local $SIG{__WARN__} = sub { my $m = $_[0] =~ s/\s+$//r; utf8::decode($m); push @notices, $m };
    $dbh->{PrintWarn} = 1;
    $dbh->do(q{DO $$ BEGIN RAISE NOTICE 'hello ✓'; END $$});
    $OUT{notices} = \@notices;
    $OUT{ping} = $dbh->ping;
    $dbh->disconnect;
}

sub types {
    my $dbh = connect_db();
    my $t = table();
    my $ins = $dbh->prepare("INSERT INTO $t VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    $ins->bind_param(6, undef, { pg_type => PG_BYTEA });
    for my $i (1 .. 6) {
        $ins->execute($i, -7 * $i, "-9007199254740993", "12345678901234567890.123456781",
            "héllo 'wörld' ✓ $i 日本", pack('C*', 0, 1, 2, 0x27, 0x5c, 0xfe, 0xff, $i),
            $i % 2 == 0 ? 1 : 0, "2024-02-29 10:34:56.123456+00", "1999-12-" . (20 + $i),
            qq({"a": [1, 2, {"b": null}], "u": "ü", "i": $i}), qq({"k": "v", "n": $i}),
            [1, -2, $i, undef], ['a', 'b c', 'd"e', '{x}', undef, 'NULL'],
            '0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d56', 1.5 * $i);
    }
    $ins->execute(7, (undef) x 14);
    $OUT{rows} = $dbh->selectall_arrayref("SELECT * FROM $t WHERE id >= ? ORDER BY id", undef, 0);
    for my $r (@{ $OUT{rows} }) {
        $r->[5] = unpack('H*', $r->[5]) if defined $r->[5];
    }
    $OUT{echo} = [$dbh->selectrow_array(
        "SELECT ?::numeric * 2, ?::text || '✓', ?::jsonb, ?::int, ?::bytea",
        undef, '0.000000000100000000000000000001', 'ünï', '{"x": [1, 2.5, "y"]}', undef,
        '\\x00ff')];
    $OUT{echo}[4] = unpack('H*', $OUT{echo}[4]);
    # $1-style placeholders and a statement run many times
    my $sth = $dbh->prepare("SELECT t, b FROM $t WHERE id = \$1");
    my @got;
    for my $i (1 .. 6) {
        $sth->execute($i);
        my ($txt, $b) = $sth->fetchrow_array;
        push @got, [$txt, unpack('H*', $b)];
        $sth->finish;
    }
    $OUT{by_id} = \@got;
    $dbh->disconnect;
}

# Forked workers, each its own connection, run the same prepared statements
# many times, in autocommit and in transactions.
sub prepared_pool {
    my $t = table();
    my $workers = 8;
    my @pids;
    for my $w (0 .. $workers - 1) {
        my $pid = fork();
        die "fork: $!" unless defined $pid;
        if ($pid == 0) {
            my @errors;
            eval {
                my $dbh = connect_db();
                my $ins = $dbh->prepare("INSERT INTO $t (id, k, v) VALUES (?, ?, ?)");
                my $sel = $dbh->prepare("SELECT v, k FROM $t WHERE id = ?");
                my $cnt = $dbh->prepare(
                    "SELECT count(*), coalesce(sum(k), 0) FROM $t WHERE id >= ? AND id < ?");
                for my $r (0 .. 39) {
                    my $id = $w * 1000 + $r;
                    $dbh->begin_work if $r % 2;
                    $ins->execute($id, $r, "w$w-r$r");
                    $sel->execute($id);
                    my ($v, $k) = $sel->fetchrow_array;
                    $sel->finish;
                    push @errors, "select $id: $v $k" unless $v eq "w$w-r$r" && $k == $r;
                    $cnt->execute($w * 1000, $w * 1000 + 1000);
                    my ($c, $s) = $cnt->fetchrow_array;
                    $cnt->finish;
                    push @errors, "count $id: $c $s"
                        unless $c == $r + 1 && $s == $r * ($r + 1) / 2;
                    $dbh->commit if $r % 2;
                }
                $dbh->disconnect;
            };
            push @errors, "w$w: $@" if $@;
            print STDERR "$_\n" for @errors;
            POSIX::_exit(@errors ? 1 : 0);
        }
        push @pids, $pid;
    }
    my $failed = 0;
    for my $pid (@pids) {
        waitpid($pid, 0);
        $failed++ if $? != 0;
    }
    $OUT{failed_workers} = $failed;
    my $dbh = connect_db();
    $OUT{rows} = [map { $_ + 0 } $dbh->selectrow_array("SELECT count(*), sum(k) FROM $t")];
    $dbh->disconnect;
}

sub transactions {
    my $dbh = connect_db();
    my $t = table();
    my $ins = $dbh->prepare("INSERT INTO $t (id, v) VALUES (?, ?)");
    for my $i (0 .. 5) {
        $dbh->begin_work;
        $ins->execute($i, "tx$i");
        $i % 2 ? $dbh->rollback : $dbh->commit;
    }
    $dbh->begin_work;
    $ins->execute(100, 'before error');
    $OUT{mid_tx_error} = attempt($dbh, sub { $dbh->selectrow_array('SELECT 1/?::int', undef, 0) });
    $OUT{in_failed_tx} = attempt($dbh, sub { $ins->execute(101, 'in failed tx') });
    $dbh->rollback;
    $ins->execute(102, 'after rollback');
    $OUT{dup} = attempt($dbh, sub { $ins->execute(0, 'dup') });
    $OUT{dup_errstr} = ($dbh->errstr =~ /duplicate key value violates unique constraint/) ? 1 : 0;
    # AutoCommit off, as many applications run
    $dbh->{AutoCommit} = 0;
    $ins->execute(200, 'autocommit off');
    $OUT{dup_autocommit_off} = attempt($dbh, sub { $ins->execute(200, 'dup') });
    $dbh->rollback;
    $ins->execute(201, 'kept');
    $dbh->commit;
    $ins->execute(202, 'rolled back');
    $dbh->rollback;
    # savepoints
    $ins->execute(300, 'outer');
    $dbh->pg_savepoint('a');
    $OUT{dup_in_savepoint} = attempt($dbh, sub { $ins->execute(300, 'dup') });
    $dbh->pg_rollback_to('a');
    $ins->execute(301, 'after savepoint');
    $dbh->commit;
    $dbh->{AutoCommit} = 1;
    $OUT{rows} = $dbh->selectall_arrayref("SELECT id, v FROM $t ORDER BY id");
    $dbh->disconnect;
}

sub large {
    my $dbh = connect_db();
    my $n = $ENV{E2E_ROWS};
    my $sql = 'SELECT g, md5(g::text), g::numeric / 7 FROM generate_series(1, ?::int) g';
    # the whole result (libpq reads it all), then a cursor fetched in batches
    my $sth = $dbh->prepare($sql);
    $sth->execute($n);
    my ($cnt, $sum, $md5) = (0, 0, Digest::MD5->new);
    while (my $r = $sth->fetchrow_arrayref) {
        $cnt++;
        $sum += $r->[0];
        $md5->add("$r->[1]|$r->[2];") if $r->[0] % 1000 == 0;
    }
    $OUT{whole} = [$cnt, $sum, $md5->hexdigest];
    $dbh->begin_work;
    $dbh->do("DECLARE big NO SCROLL CURSOR FOR $sql", undef, $n);
    my $fetch = $dbh->prepare('FETCH 5000 FROM big');
    ($cnt, $sum, $md5) = (0, 0, Digest::MD5->new);
    while (1) {
        $fetch->execute;
        my $rows = $fetch->fetchall_arrayref;
        last unless @$rows;
        for my $r (@$rows) {
            $cnt++;
            $sum += $r->[0];
            $md5->add("$r->[1]|$r->[2];") if $r->[0] % 1000 == 0;
        }
    }
    $dbh->do('CLOSE big');
    $dbh->commit;
    $OUT{cursor} = [$cnt, $sum, $md5->hexdigest];
    $dbh->disconnect;
}

sub copy {
    my $dbh = connect_db();
    my $t = table();
    $dbh->do("COPY $t (id, v, b) FROM STDIN");
    for my $i (0 .. 19999) {
        my $v = $i % 100 == 0 ? '\\N' : "row $i ✓ tab\\there";
        $dbh->pg_putcopydata(sprintf("%d\t%s\t\\\\x%02x%02x\n", $i, $v, $i & 255, ($i >> 8) & 255));
    }
    $OUT{copy_in} = $dbh->pg_putcopyend + 0;
    $OUT{copy_dup} = attempt($dbh, sub {
        $dbh->do("COPY $t (id, v) FROM STDIN");
        $dbh->pg_putcopydata("1\tdup\n");
        $dbh->pg_putcopyend;
    });
    $OUT{after_dup} = $dbh->selectrow_array("SELECT count(*) FROM $t") + 0;
    $dbh->do("COPY (SELECT * FROM $t ORDER BY id) TO STDOUT");
    my ($buf, $line, $lines) = ('', '', 0);
    while ($dbh->pg_getcopydata($line) >= 0) {
        $buf .= $line;
        $lines++;
    }
    utf8::encode($buf) if utf8::is_utf8($buf);
    $OUT{copy_out} = [$lines, md5_hex($buf)];
    $OUT{copy_out_error} = attempt($dbh, sub {
        $dbh->do('COPY (SELECT 1/0) TO STDOUT');
        1 while $dbh->pg_getcopydata($line) >= 0;
    });
    $OUT{after} = $dbh->selectrow_array('SELECT 1') + 0;
    $dbh->disconnect;
}

sub cancel {
    my $dbh = connect_db();
    my $marker = $ENV{E2E_MARKER};
    my $t0 = time;
    $dbh->do("SELECT pg_sleep(20) /* $marker */", { pg_async => PG_ASYNC });
    sleep 0.7;
    $OUT{cancel} = attempt($dbh, sub { $dbh->pg_cancel ? 'cancelled' : 'not cancelled' });
    $OUT{state} = $dbh->state;
    $OUT{fast} = (time - $t0 < 8) ? 1 : 0;
    $OUT{after} = $dbh->selectrow_array('SELECT ?::int * 2', undef, 21) + 0;
    # a statement_timeout-free async query collected with pg_result
    $dbh->do('SELECT pg_sleep(0.2)', { pg_async => PG_ASYNC });
    1 until $dbh->pg_ready;
    $OUT{async_result} = $dbh->pg_result + 0;
    $OUT{sleepers} = $dbh->selectrow_array(
        # still running (a pooled backend idle after it keeps the text)
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE ? AND state = 'active' "
          . 'AND pid <> pg_backend_pid()',
        undef, "%$marker%") + 0;
    $dbh->disconnect;
}

sub timeout {
    my $dbh = connect_db();
    $dbh->do("SET statement_timeout = '300ms'");
    my $t0 = time;
    $OUT{timeout} = attempt($dbh, sub { $dbh->do('SELECT pg_sleep(?::float8)', undef, 5) });
    $OUT{fast} = (time - $t0 < 4) ? 1 : 0;
    my %show;
    $show{ $dbh->selectrow_array('SHOW statement_timeout') } = 1 for 1 .. 5;
    $OUT{show} = [sort keys %show];
    $OUT{again} = attempt($dbh, sub { $dbh->do('SELECT pg_sleep(1)') });
    $dbh->begin_work;
    $dbh->do("SET LOCAL statement_timeout = '5s'");
    $OUT{local_longer} = attempt($dbh, sub { $dbh->do('SELECT pg_sleep(0.5)') });
    $dbh->commit;
    $OUT{show_after_local} = $dbh->selectrow_array('SHOW statement_timeout');
    $dbh->begin_work;
    $OUT{in_tx} = attempt($dbh, sub { $dbh->do('SELECT pg_sleep(2)') });
    $dbh->rollback;
    $OUT{after} = $dbh->selectrow_array('SELECT 5') + 0;
    my $other = connect_db();
    $OUT{other_conn} = $other->selectrow_array('SHOW statement_timeout');
    $other->disconnect;
    $dbh->disconnect;
}

sub concurrent {
    my $t = table();
    my $workers = $ENV{E2E_WORKERS};
    my @pids;
    for my $w (0 .. $workers - 1) {
        my $pid = fork();
        die "fork: $!" unless defined $pid;
        if ($pid == 0) {
            my @errors;
            eval {
                my $dbh = connect_db();
                $dbh->do("INSERT INTO $t (id, n, v) VALUES (?, 0, '')", undef, $w);
                my $upd = $dbh->prepare(
                    "UPDATE $t SET n = n + 1, v = v || ? WHERE id = ? RETURNING n, v");
                my $sel = $dbh->prepare("SELECT n FROM $t WHERE id = ?");
                my $want = 0;
                for my $r (0 .. 29) {
                    $dbh->begin_work;
                    $upd->execute($r % 10, $w);
                    my ($n, $v) = $upd->fetchrow_array;
                    $upd->finish;
                    push @errors, "w$w r$r: $n $v"
                        unless $n == $want + 1 && length($v) == $want + 1;
                    if ($r % 4 == 3) { $dbh->rollback } else { $dbh->commit; $want++ }
                    $sel->execute($w);
                    my ($got) = $sel->fetchrow_array;
                    $sel->finish;
                    push @errors, "read w$w r$r: $got want $want" unless $got == $want;
                }
                $dbh->disconnect;
            };
            push @errors, "w$w: $@" if $@;
            print STDERR "$_\n" for @errors;
            POSIX::_exit(@errors ? 1 : 0);
        }
        push @pids, $pid;
    }
    my $failed = 0;
    for my $pid (@pids) {
        waitpid($pid, 0);
        $failed++ if $? != 0;
    }
    $OUT{failed_workers} = $failed;
    my $dbh = connect_db();
    $OUT{rows} = $dbh->selectall_arrayref("SELECT id, n, length(v) FROM $t ORDER BY id");
    $dbh->disconnect;
}

# a server-prepared `SELECT *` across ALTER TABLE
sub shape {
    my $t = table();
    my $dbh = connect_db();
    my $other = connect_db();
    my $sth = $dbh->prepare("SELECT * FROM $t WHERE id = ?");
    my @steps;
    my $run = sub {
        push @steps, attempt($dbh, sub {
            $sth->execute(1);
            return [$sth->{NAME}, $sth->fetchall_arrayref];
        });
    };
    $run->();
    $run->();
    $other->do("ALTER TABLE $t ADD COLUMN w int DEFAULT 7");
    $run->();
    $run->();
    # a fresh statement handle (a new server-side statement)
    $sth = $dbh->prepare("SELECT * FROM $t WHERE id = ?");
    $run->();
    $run->();
    $other->do("ALTER TABLE $t DROP COLUMN v");
    $run->();
    # prepare_cached hands back the same handle
    my $c1 = $dbh->prepare_cached("SELECT * FROM $t WHERE id = ?");
    $c1->execute(1);
    push @steps, $c1->fetchall_arrayref;
    $OUT{steps} = \@steps;
    $dbh->disconnect;
    $other->disconnect;
}

sub listen {
    my $dbh = connect_db();
    my $ch = $ENV{E2E_CHANNEL};
    $dbh->do("LISTEN $ch");
    my $s = connect_db();
    $s->do('SELECT pg_notify(?, ?)', undef, $ch, "payload $_ ✓") for 0 .. 4;
    $s->begin_work;
    $s->do("SELECT pg_notify(?, 'rolled back')", undef, $ch);
    $s->rollback;
    $s->do("NOTIFY $ch, 'last'");
    my @got;
    my $deadline = time + 5;
    while (@got < 6 && time < $deadline) {
        $dbh->do('SELECT 1');    # notifications arrive with any reply
        while (my $n = $dbh->pg_notifies) {
            push @got, "$n->[0]:$n->[2]";
        }
        sleep 0.1 if @got < 6;
    }
    $OUT{notifications} = \@got;
    $OUT{after} = $dbh->selectrow_array('SELECT 3') + 0;
    $dbh->disconnect;
    $s->disconnect;
}

my %scenarios = (
    simple => \&simple, types => \&types, prepared_pool => \&prepared_pool,
    transactions => \&transactions, large => \&large, copy => \&copy, cancel => \&cancel,
    timeout => \&timeout, concurrent => \&concurrent, shape => \&shape, listen => \&listen,
);
my $f = $scenarios{ $ARGV[0] // '' } or die "usage: dbdpg_client.pl <scenario>\n";
use POSIX ();
$f->();
print JSON::PP->new->canonical->encode(\%OUT), "\n";
