# Runs one scenario with the Ruby pg gem (Debian's ruby-pg, over libpq) and
# prints a JSON summary as its last line.  Connection settings come from the
# libpq environment (PGHOST, PGPORT, ...); everything else is the gem's
# default (text results unless asked, async_exec).  E2E_TABLE names the
# scenario's table.
#
#   ruby pg_client.rb <scenario>
require 'pg'
require 'json'
require 'digest'

OUT = {}

# the gem (1.4) resolves hosts itself and does not read PGHOST: pass the
# libpq environment on explicitly
def connect
  PG.connect(host: ENV.fetch('PGHOST'), port: ENV.fetch('PGPORT'), user: ENV.fetch('PGUSER'),
             password: ENV['PGPASSWORD'], dbname: ENV.fetch('PGDATABASE'))
end

def table
  ENV.fetch('E2E_TABLE')
end

def code(err)
  return '' if err.nil?
  return err.result.error_field(PG::PG_DIAG_SQLSTATE) if err.respond_to?(:result) && err.result
  "ruby:#{err.class}: #{err.message}"
end

# runs the block; returns its value or the SQLSTATE of the error it raised
def attempt
  yield
rescue PG::Error => e
  "error #{code(e)}"
end

def simple
  c = connect
  t = table
  c.exec("INSERT INTO #{t} VALUES (1, 'one'); INSERT INTO #{t} VALUES (2, 'two'); " \
         "UPDATE #{t} SET v = v || '!' WHERE id = 2")
  r = c.exec("DELETE FROM #{t} WHERE id > 100")
  OUT['delete'] = [r.cmd_status, r.cmd_tuples]
  OUT['rows'] = c.exec("SELECT id, v FROM #{t} ORDER BY id").values
  OUT['multi_last'] = c.exec('SELECT 1 AS a; SELECT 2 AS b, NULL AS c').values
  OUT['fields'] = c.exec("SELECT 1 AS a, 'x'::text AS b, NULL::int AS c").fields
  OUT['div0'] = attempt { c.exec('SELECT 1/0') }
  OUT['sync_exec'] = c.sync_exec('SELECT current_user').getvalue(0, 0)
  OUT['async_exec'] = c.async_exec('SELECT 40 + 2').getvalue(0, 0)
  OUT['notice'] = []
  c.set_notice_processor { |m| OUT['notice'] << m.strip }
  c.exec("DO $$ BEGIN RAISE NOTICE 'hello ✓'; END $$")
  c.close
end

def types
  c = connect
  t = table
  ins = "INSERT INTO #{t} VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)"
  (1..6).each do |i|
    c.exec_params(ins, [i, -7 * i, -9007199254740993 * i, '12345678901234567890.123456781',
                        "héllo 'wörld' ✓ #{i} 日本",
                        # bytea as a binary parameter
                        { value: [0, 1, 2, 0x27, 0x5c, 0xfe, 0xff, i].pack('C*'), format: 1 },
                        i.even?, "2024-02-29 10:34:56.123456+00", "1999-12-#{20 + i}",
                        JSON.generate({ 'a' => [1, 2, { 'b' => nil }], 'u' => 'ü', 'i' => i }),
                        JSON.generate({ 'k' => 'v', 'n' => i }), "{1,-2,#{i},NULL}",
                        '{a,"b c","d\"e","{x}",NULL,"NULL"}',
                        '0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d56', 1.5 * i])
  end
  c.exec_params(ins, [7] + [nil] * 14)
  OUT['rows'] = c.exec_params("SELECT * FROM #{t} WHERE id >= $1 ORDER BY id", [0]).values
  # binary results
  r = c.exec_params("SELECT b, i8, u FROM #{t} WHERE id = $1", [2], 1)
  OUT['binary'] = [r.getvalue(0, 0).unpack1('H*'), r.getvalue(0, 1).unpack1('H*'),
                   r.getvalue(0, 2).unpack1('H*'), r.fformat(0)]
  # typed parameters (OIDs), echoed back
  r = c.exec_params('SELECT $1::numeric * 2, $2 || \'✓\', $3::jsonb, $4', [
    '0.000000000100000000000000000001', { value: 'ünï', type: 25 },
    '{"x": [1, 2.5, "y"]}', { value: nil, type: 23 }])
  OUT['echo'] = r.values
  # decoded with the gem's basic type maps
  c.type_map_for_results = PG::BasicTypeMapForResults.new(c)
  r = c.exec_params("SELECT i4, i8, n, t, bo, d, ai, f8 FROM #{t} WHERE id = $1", [3])
  OUT['decoded'] = r.values.first.map { |v| v.is_a?(BigDecimal) ? v.to_s('F') : v.to_s }
  c.close
end

# The same named statements on several connections, each thread its own
# connection: every connection uses the names s_0.. for different SQL.
def prepared_pool
  t = table
  stmts = [
    "INSERT INTO #{t} (id, k, v) VALUES ($1, $2, $3)",
    "SELECT v, k FROM #{t} WHERE id = $1",
    "SELECT count(*), coalesce(sum(k), 0) FROM #{t} WHERE id >= $1 AND id < $2",
    'SELECT $1::int + $2::int, $3::text'
  ]
  errors = Queue.new
  threads = (0...8).map do |w|
    Thread.new do
      c = connect
      order = w.even? ? [0, 1, 2, 3] : [3, 2, 1, 0]
      # s_<k> is a different statement on different connections
      order.each_with_index { |s, k| c.prepare("s_#{k}", stmts[s]) }
      name = ->(s) { "s_#{order.index(s)}" }
      40.times do |r|
        id = w * 1000 + r
        c.exec_prepared(name.(0), [id, r, "w#{w}-r#{r}"])
        v = c.exec_prepared(name.(1), [id]).values
        errors << "select #{id}: #{v}" unless v == [["w#{w}-r#{r}", r.to_s]]
        cnt = c.exec_prepared(name.(2), [w * 1000, w * 1000 + 1000]).values
        errors << "count #{id}: #{cnt}" unless cnt == [[(r + 1).to_s, (r * (r + 1) / 2).to_s]]
        a = c.exec_prepared(name.(3), [w, r, 'x']).values
        errors << "add: #{a}" unless a == [[(w + r).to_s, 'x']]
        c.transaction do
          c.exec_prepared(name.(1), [id])
        end
      end
      c.close
    rescue StandardError => e
      errors << "w#{w}: #{e.class}: #{e.message}"
    end
  end
  threads.each(&:join)
  OUT['errors'] = errors.size.times.map { errors.pop }
  c = connect
  OUT['rows'] = c.exec("SELECT count(*), sum(k) FROM #{t}").values.first.map(&:to_i)
  c.close
end

def transactions
  c = connect
  t = table
  ins = "INSERT INTO #{t} (id, v) VALUES ($1, $2)"
  6.times do |i|
    c.exec('BEGIN')
    c.exec_params(ins, [i, "tx#{i}"])
    c.exec(i.even? ? 'COMMIT' : 'ROLLBACK')
  end
  c.exec('BEGIN')
  c.exec_params(ins, [100, 'before error'])
  OUT['mid_tx_error'] = attempt { c.exec_params('SELECT 1/$1::int', [0]) }
  OUT['in_failed_tx'] = attempt { c.exec_params(ins, [101, 'in failed tx']) }
  OUT['status_in_failed'] = c.transaction_status
  c.exec('ROLLBACK')
  OUT['status_after'] = c.transaction_status
  c.exec_params(ins, [102, 'after rollback'])
  begin
    c.exec_params(ins, [0, 'dup'])
  rescue PG::UniqueViolation => e
    OUT['dup_class'] = e.class.name
    OUT['dup'] = e.result.error_field(PG::PG_DIAG_SQLSTATE)
    OUT['dup_constraint'] = e.result.error_field(PG::PG_DIAG_CONSTRAINT_NAME) == "#{t}_pkey"
  end
  # the gem's transaction block: commits, and rolls back on an exception
  c.transaction { |x| x.exec_params(ins, [200, 'block']) }
  begin
    c.transaction do |x|
      x.exec_params(ins, [201, 'rolled back'])
      x.exec_params(ins, [0, 'dup'])
    end
  rescue PG::UniqueViolation => e
    OUT['block_dup'] = code(e)
  end
  # savepoints
  c.transaction do |x|
    x.exec_params(ins, [300, 'outer'])
    x.exec('SAVEPOINT a')
    OUT['dup_in_savepoint'] = attempt { x.exec_params(ins, [300, 'dup']) }
    x.exec('ROLLBACK TO SAVEPOINT a')
    x.exec_params(ins, [301, 'after savepoint'])
  end
  OUT['rows'] = c.exec("SELECT id, v FROM #{t} ORDER BY id").values
  c.close
end

# 200k rows read one at a time in single-row mode
def large
  c = connect
  n = ENV.fetch('E2E_ROWS').to_i
  2.times do |round|
    c.send_query_params('SELECT g, md5(g::text), g::numeric / 7 FROM generate_series(1, $1::int) g', [n])
    c.set_single_row_mode
    cnt = 0
    sum = 0
    h = Digest::MD5.new
    while (r = c.get_result)
      r.check
      r.each_row do |g, m, q|
        cnt += 1
        sum += g.to_i
        h << "#{m}|#{q};" if (g.to_i % 1000).zero?
      end
      r.clear
    end
    OUT["round#{round}"] = [cnt, sum, h.hexdigest]
  end
  # the whole result at once, too
  r = c.exec_params('SELECT count(*) FROM (SELECT g FROM generate_series(1, $1::int) g) s', [n])
  OUT['count'] = r.getvalue(0, 0).to_i
  r = c.exec_params('SELECT g, repeat($2, 20) FROM generate_series(1, $1::int) g', [n, 'x'])
  OUT['materialized'] = [r.ntuples, r.getvalue(n - 1, 0)]
  c.close
end

def copy
  c = connect
  t = table
  r = c.copy_data("COPY #{t} (id, v, b) FROM STDIN") do
    20_000.times do |i|
      v = (i % 100).zero? ? '\\N' : "row #{i} ✓ tab\\there"
      c.put_copy_data("#{i}\t#{v}\t\\\\x#{format('%02x%02x', i & 255, (i >> 8) & 255)}\n")
    end
  end
  OUT['copy_in'] = r.respond_to?(:cmd_status) ? r.cmd_status : r.class.name
  OUT['copy_in_rows'] = c.exec("SELECT count(*) FROM #{t}").getvalue(0, 0).to_i
  # a COPY that fails on the server (duplicate key)
  OUT['copy_dup'] = attempt do
    c.copy_data("COPY #{t} (id, v) FROM STDIN") { c.put_copy_data("1\tdup\n") }
  end
  # a COPY the client aborts
  OUT['copy_abort'] = attempt do
    c.copy_data("COPY #{t} (id, v) FROM STDIN") do
      c.put_copy_data("90000\tnever\n")
      raise 'client gives up'
    end
  rescue RuntimeError => e
    "raised #{e.message}"
  end
  OUT['after_copy_errors'] = c.exec("SELECT count(*) FROM #{t}").getvalue(0, 0).to_i
  buf = +''
  c.copy_data("COPY (SELECT * FROM #{t} ORDER BY id) TO STDOUT") do
    while (row = c.get_copy_data)
      buf << row
    end
  end
  OUT['copy_out'] = [buf.count("\n"), Digest::MD5.hexdigest(buf), buf.lines.last(2)]
  # COPY with a text decoder, binary COPY out
  bin = +''.b
  c.copy_data("COPY (SELECT id, b FROM #{t} WHERE id < 3 ORDER BY id) TO STDOUT (FORMAT binary)") do
    while (row = c.get_copy_data)
      bin << row
    end
  end
  OUT['copy_out_binary'] = [bin.bytesize, Digest::MD5.hexdigest(bin)]
  OUT['copy_out_error'] = attempt do
    c.copy_data('COPY (SELECT 1/0) TO STDOUT') { c.get_copy_data while c.get_copy_data }
  end
  OUT['after'] = c.exec('SELECT 1').getvalue(0, 0)
  c.close
end

def cancel
  c = connect
  marker = ENV.fetch('E2E_MARKER')
  started = Time.now
  c.send_query("SELECT pg_sleep(20) /* #{marker} */")
  sleep 0.7
  OUT['cancel_sent'] = c.cancel.nil?
  r = c.get_result
  OUT['cancel'] = r.error_field(PG::PG_DIAG_SQLSTATE)
  nil while c.get_result
  OUT['fast'] = Time.now - started < 8
  OUT['after'] = c.exec_params('SELECT $1::int * 2', [21]).getvalue(0, 0)
  # exec in a thread, cancelled from another (the gem's async_exec waits interruptibly)
  th = Thread.new do
    c.exec_params("SELECT pg_sleep($1) /* #{marker} */", [20])
    'no error'
  rescue PG::QueryCanceled => e
    code(e)
  end
  sleep 0.7
  c.cancel
  OUT['thread_cancel'] = th.value
  OUT['after_thread'] = c.exec('SELECT 7').getvalue(0, 0)
  OUT['sleepers'] = c.exec_params('SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 ' \
                                  "AND state = 'active' AND pid <> pg_backend_pid()", ["%#{marker}%"]).getvalue(0, 0)
  c.close
end

def timeout
  c = connect
  c.exec("SET statement_timeout = '300ms'")
  started = Time.now
  OUT['timeout'] = attempt { c.exec_params('SELECT pg_sleep($1)', [5]) }
  OUT['fast'] = Time.now - started < 4
  OUT['show'] = 5.times.map { c.exec('SHOW statement_timeout').getvalue(0, 0) }.uniq
  OUT['again'] = attempt { c.exec('SELECT pg_sleep(1)') }
  c.transaction do |x|
    x.exec("SET LOCAL statement_timeout = '5s'")
    OUT['local_longer'] = attempt { x.exec('SELECT pg_sleep(0.5)').ntuples }
  end
  OUT['show_after_local'] = c.exec('SHOW statement_timeout').getvalue(0, 0)
  c.exec('BEGIN')
  OUT['in_tx'] = attempt { c.exec('SELECT pg_sleep(2)') }
  c.exec('ROLLBACK')
  OUT['after'] = c.exec('SELECT 5').getvalue(0, 0)
  c2 = connect
  OUT['other_conn'] = c2.exec('SHOW statement_timeout').getvalue(0, 0)
  c2.close
  c.close
end

def concurrent
  t = table
  workers = ENV.fetch('E2E_WORKERS').to_i
  errors = Queue.new
  threads = (0...workers).map do |w|
    Thread.new do
      c = connect
      c.exec_params("INSERT INTO #{t} (id, n, v) VALUES ($1, 0, '')", [w])
      want = 0
      30.times do |r|
        c.exec('BEGIN')
        n, v = c.exec_params("UPDATE #{t} SET n = n + 1, v = v || $2 WHERE id = $1 RETURNING n, v",
                             [w, (r % 10).to_s]).values.first
        errors << "w#{w} r#{r}: #{n} #{v}" unless n.to_i == want + 1 && v.size == want + 1
        if r % 4 == 3
          c.exec('ROLLBACK')
        else
          c.exec('COMMIT')
          want += 1
        end
        got = c.exec_params("SELECT n FROM #{t} WHERE id = $1", [w]).getvalue(0, 0).to_i
        errors << "read w#{w} r#{r}: #{got} want #{want}" unless got == want
      end
      c.close
    rescue StandardError => e
      errors << "w#{w}: #{e.class}: #{e.message}"
    end
  end
  threads.each(&:join)
  OUT['errors'] = errors.size.times.map { errors.pop }
  c = connect
  OUT['rows'] = c.exec("SELECT id, n, length(v) FROM #{t} ORDER BY id").values
  c.close
end

# a prepared `SELECT *` (and a cached one re-prepared by the app on error)
# across ALTER TABLE
def shape
  t = table
  c = connect
  other = connect
  c.prepare('q', "SELECT * FROM #{t} WHERE id = $1")
  steps = []
  run = lambda do
    steps << attempt do
      r = c.exec_prepared('q', [1])
      [r.fields, r.values]
    end
  end
  run.()
  run.()
  other.exec("ALTER TABLE #{t} ADD COLUMN w int DEFAULT 7")
  run.()
  run.()
  # what an app does: prepare again under a new name after the error
  c.prepare('q2', "SELECT * FROM #{t} WHERE id = $1")
  steps << attempt { c.exec_prepared('q2', [1]).values }
  # DEALLOCATE and prepare the old name again
  c.exec('DEALLOCATE q')
  c.prepare('q', "SELECT * FROM #{t} WHERE id = $1")
  run.()
  # describe_prepared sees the new shape
  d = c.describe_prepared('q')
  steps << (0...d.nfields).map { |i| d.fname(i) }
  other.exec("ALTER TABLE #{t} DROP COLUMN v")
  run.()
  run.()
  OUT['steps'] = steps
  c.close
  other.close
end

def listen
  l = connect
  ch = ENV.fetch('E2E_CHANNEL')
  l.exec("LISTEN #{ch}")
  s = connect
  5.times { |i| s.exec_params('SELECT pg_notify($1, $2)', [ch, "payload #{i} ✓"]) }
  s.transaction { |x| x.exec_params("SELECT pg_notify($1, 'rolled back')", [ch]); raise PG::Error, 'no' } rescue nil
  s.exec("NOTIFY #{ch}, 'last'")
  got = []
  while got.size < 6
    n = l.wait_for_notify(5) { |chan, _pid, payload| got << "#{chan}:#{payload}" }
    break if n.nil?
  end
  OUT['notifications'] = got
  OUT['after'] = l.exec('SELECT 3').getvalue(0, 0)
  l.exec("UNLISTEN #{ch}")
  s.exec("NOTIFY #{ch}, 'after unlisten'")
  OUT['after_unlisten'] = l.wait_for_notify(0.5)
  l.close
  s.close
end

# libpq pipeline mode: many queries sent before one Sync, an error in the
# middle aborts the rest of that pipeline segment
def pipeline
  c = connect
  t = table
  c.enter_pipeline_mode
  10.times { |i| c.send_query_params("INSERT INTO #{t} (id, v) VALUES ($1, $2)", [i, "p#{i}"]) }
  c.send_query_params("SELECT count(*) FROM #{t}", [])
  c.pipeline_sync
  c.send_query_params("INSERT INTO #{t} (id, v) VALUES ($1, $2)", [100, 'undone by the error'])
  c.send_query_params('SELECT 1/$1::int', [0])
  c.send_query_params("INSERT INTO #{t} (id, v) VALUES ($1, $2)", [101, 'skipped'])
  c.pipeline_sync
  c.send_prepare('pst', "SELECT v FROM #{t} WHERE id = $1")
  3.times { |i| c.send_query_prepared('pst', [i]) }
  c.pipeline_sync
  res = []
  syncs = 0
  while syncs < 3
    r = c.get_result
    next if r.nil?
    st = r.result_status
    if st == PG::PGRES_PIPELINE_SYNC
      syncs += 1
      res << 'sync'
    elsif st == PG::PGRES_FATAL_ERROR
      res << "error #{r.error_field(PG::PG_DIAG_SQLSTATE)}"
    elsif st == PG::PGRES_PIPELINE_ABORTED
      res << 'aborted'
    else
      res << (r.ntuples.positive? ? r.values : r.cmd_status)
    end
  end
  c.exit_pipeline_mode
  OUT['results'] = res
  OUT['rows'] = c.exec("SELECT id, v FROM #{t} ORDER BY id").values
  c.close
end

send(ARGV.fetch(0).to_sym)
puts JSON.generate(OUT)
