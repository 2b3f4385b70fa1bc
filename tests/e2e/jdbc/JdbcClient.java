// pgjdbc (the PostgreSQL JDBC driver) through the proxy, with the driver's
// default settings: extended protocol, prepareThreshold=5 (a PreparedStatement
// becomes a named server-side statement S_n from its 5th execution on, with a
// Describe round trip first when it wants binary results), binary transfer for
// some types, named portals with Execute row limits for setFetchSize inside
// transactions.
//
//   java -cp <classes>:/usr/share/java/postgresql.jar JdbcClient <scenario>
//
// The connection comes from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE;
// only timeouts (which change nothing on the wire) are added to the URL.
// E2E_TABLE names a scratch table the test created, E2E_FN a scratch function
// prefix.  Prints one JSON object (the last line of stdout); exits non-zero on
// any unexpected error.
import java.math.BigDecimal;
import java.sql.Array;
import java.sql.BatchUpdateException;
import java.sql.CallableStatement;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.sql.Timestamp;
import java.sql.Types;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;

public final class JdbcClient {
    static final String TABLE = System.getenv("E2E_TABLE");
    static final String FN = System.getenv("E2E_FN");

    static Connection connect() throws SQLException {
        String url = "jdbc:postgresql://" + env("PGHOST", "127.0.0.1") + ":" + env("PGPORT", "5432") + "/"
                + env("PGDATABASE", "fnx");
        Properties p = new Properties();
        p.setProperty("user", env("PGUSER", "fnx"));
        p.setProperty("password", env("PGPASSWORD", ""));
        p.setProperty("connectTimeout", "10");
        p.setProperty("socketTimeout", "40");
        return DriverManager.getConnection(url, p);
    }

    static String env(String k, String def) {
        String v = System.getenv(k);
        return v == null || v.isEmpty() ? def : v;
    }

    static String state(SQLException e) {
        return e.getSQLState() == null ? "null:" + e.getMessage() : e.getSQLState();
    }

    interface Body {
        Object run() throws Exception;
    }

    /** The SQLSTATE the body fails with, or "ok:" + its result. */
    static Object codeOf(Body b) {
        try {
            Object r = b.run();
            return "ok:" + r;
        } catch (SQLException e) {
            return state(e);
        } catch (Exception e) {
            return e.toString();
        }
    }

    // ---------------------------------------------------------------- scenarios

    /** One PreparedStatement executed 40 times in autocommit, then a fresh
     *  PreparedStatement object (same SQL: the driver's statement cache) per
     *  transaction for 30 transactions, both crossing prepareThreshold. */
    static Map<String, Object> prepared(Connection c) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        List<Object> auto = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement("SELECT ?::int * 2, ? || '!', ?::numeric + 1")) {
            for (int i = 0; i < 40; i++) {
                ps.setInt(1, i);
                ps.setString(2, "s" + i);
                ps.setBigDecimal(3, new BigDecimal(i + ".25"));
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    if (rs.getInt(1) != 2 * i || !rs.getString(2).equals("s" + i + "!")
                            || rs.getBigDecimal(3).compareTo(new BigDecimal((i + 1) + ".25")) != 0)
                        throw new IllegalStateException("bad row " + i + ": " + rs.getInt(1) + " " + rs.getString(2)
                                + " " + rs.getBigDecimal(3));
                    auto.add(rs.getInt(1));
                }
            }
        }
        out.put("autocommit", auto);
        c.setAutoCommit(false);
        List<Object> tx = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            try (PreparedStatement ins = c.prepareStatement("INSERT INTO " + TABLE + " (id, v) VALUES (?, ?)");
                 PreparedStatement sel = c.prepareStatement("SELECT count(*), max(id) FROM " + TABLE + " WHERE id <= ?")) {
                ins.setInt(1, i);
                ins.setString(2, "v" + i);
                if (ins.executeUpdate() != 1)
                    throw new IllegalStateException("insert " + i);
                sel.setInt(1, i);
                try (ResultSet rs = sel.executeQuery()) {
                    rs.next();
                    tx.add(rs.getInt(1) * 1000 + rs.getInt(2));
                }
            }
            if (i % 3 == 2)
                c.rollback();
            else
                c.commit();
        }
        c.setAutoCommit(true);
        out.put("tx", tx);
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT count(*) FROM " + TABLE)) {
            rs.next();
            out.put("rows", rs.getInt(1));
        }
        return out;
    }

    /** setAutoCommit(false): commit, rollback, an error mid-transaction (the
     *  rest of the transaction fails with 25P02 until rollback), savepoints. */
    static Map<String, Object> transactions(Connection c) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        c.setAutoCommit(false);
        String ins = "INSERT INTO " + TABLE + " (id, v) VALUES (?, ?)";
        try (PreparedStatement ps = c.prepareStatement(ins)) {
            for (int round = 0; round < 8; round++) { // crosses the prepare threshold
                int base = round * 10;
                ps.setInt(1, base + 1); ps.setString(2, "a"); ps.executeUpdate();
                ps.setInt(1, base + 2); ps.setString(2, "b"); ps.executeUpdate();
                c.commit();
                ps.setInt(1, base + 3); ps.setString(2, "rolled back"); ps.executeUpdate();
                c.rollback();
                ps.setInt(1, base + 4); ps.setString(2, "lost"); ps.executeUpdate();
                ps.setInt(1, base + 1); ps.setString(2, "dup");
                Object dup = codeOf(() -> ps.executeUpdate());
                Object after = codeOf(() -> {
                    try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT 1")) {
                        rs.next();
                        return rs.getInt(1);
                    }
                });
                c.rollback();
                if (round == 0) {
                    out.put("dup", dup);
                    out.put("in_failed_tx", after);
                } else if (!dup.equals(out.get("dup")) || !after.equals(out.get("in_failed_tx"))) {
                    throw new IllegalStateException("round " + round + ": " + dup + " " + after);
                }
            }
            // savepoints: keep the work before one, undo the work after it
            ps.setInt(1, 1001); ps.setString(2, "before sp"); ps.executeUpdate();
            Savepoint sp = c.setSavepoint();
            ps.setInt(1, 1002); ps.setString(2, "after sp"); ps.executeUpdate();
            ps.setInt(1, 1001); ps.setString(2, "dup");
            out.put("dup_after_sp", codeOf(() -> ps.executeUpdate()));
            c.rollback(sp);
            ps.setInt(1, 1003); ps.setString(2, "after rollback to sp"); ps.executeUpdate();
            c.commit();
        }
        c.setAutoCommit(true);
        List<Object> rows = new ArrayList<>();
        try (Statement st = c.createStatement();
             ResultSet rs = st.executeQuery("SELECT id, v FROM " + TABLE + " ORDER BY id")) {
            while (rs.next())
                rows.add(Arrays.asList(rs.getInt(1), rs.getString(2)));
        }
        out.put("rows", rows);
        // an error in autocommit does not poison the next statement
        out.put("autocommit_error", codeOf(() -> {
            try (Statement st = c.createStatement()) {
                return st.execute("SELECT 1/0");
            }
        }));
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT 2")) {
            rs.next();
            out.put("after_autocommit_error", rs.getInt(1));
        }
        return out;
    }

    /** addBatch/executeBatch in a transaction and in autocommit, a failing
     *  batch, getGeneratedKeys for single and batched inserts. */
    static Map<String, Object> batch(Connection c) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        String ins = "INSERT INTO " + TABLE + " (k, v) VALUES (?, ?)";
        c.setAutoCommit(false);
        for (int round = 0; round < 3; round++) {
            try (PreparedStatement ps = c.prepareStatement(ins)) {
                for (int i = 0; i < 1000; i++) {
                    ps.setInt(1, round * 1000 + i);
                    ps.setString(2, "b" + i);
                    ps.addBatch();
                }
                int[] counts = ps.executeBatch();
                int sum = 0;
                for (int n : counts)
                    sum += n;
                out.put("batch_tx_" + round, Arrays.asList(counts.length, sum));
            }
            c.commit();
        }
        c.setAutoCommit(true);
        try (PreparedStatement ps = c.prepareStatement(ins)) {
            for (int i = 0; i < 500; i++) {
                ps.setInt(1, 5000 + i);
                ps.setString(2, "auto");
                ps.addBatch();
            }
            out.put("batch_auto", ps.executeBatch().length);
        }
        // a failing row in the middle: the whole batch (one implicit transaction) is undone
        try (PreparedStatement ps = c.prepareStatement(ins)) {
            for (int i = 0; i < 100; i++) {
                ps.setInt(1, i == 50 ? 5000 : 9000 + i);
                ps.setString(2, "bad batch");
                ps.addBatch();
            }
            try {
                ps.executeBatch();
                out.put("bad_batch", "no error");
            } catch (BatchUpdateException e) {
                SQLException next = e.getNextException();
                out.put("bad_batch", Arrays.asList(e.getSQLState(), next == null ? null : next.getSQLState()));
            }
        }
        // a batch of plain statements
        try (Statement st = c.createStatement()) {
            st.addBatch("INSERT INTO " + TABLE + " (k, v) VALUES (20001, 'stmt batch')");
            st.addBatch("UPDATE " + TABLE + " SET v = 'updated' WHERE k BETWEEN 0 AND 9");
            st.addBatch("DELETE FROM " + TABLE + " WHERE k BETWEEN 10 AND 14");
            out.put("statement_batch", toList(st.executeBatch()));
        }
        // generated keys: single inserts (crossing the threshold), a batch, named columns
        List<Object> keys = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement(ins, Statement.RETURN_GENERATED_KEYS)) {
            for (int i = 0; i < 8; i++) {
                ps.setInt(1, 30000 + i);
                ps.setString(2, "key");
                ps.executeUpdate();
                try (ResultSet rs = ps.getGeneratedKeys()) {
                    rs.next();
                    keys.add(Arrays.asList(rs.getInt("k"), rs.getString("v"), rs.getLong("id") > 0));
                }
            }
        }
        out.put("generated_keys", keys);
        try (PreparedStatement ps = c.prepareStatement(ins, new String[] {"k"})) {
            for (int i = 0; i < 20; i++) {
                ps.setInt(1, 31000 + i);
                ps.setString(2, "batch key");
                ps.addBatch();
            }
            ps.executeBatch();
            List<Object> bk = new ArrayList<>();
            try (ResultSet rs = ps.getGeneratedKeys()) {
                while (rs.next())
                    bk.add(rs.getInt(1));
            }
            out.put("batch_generated_keys", bk);
        }
        try (Statement st = c.createStatement();
             ResultSet rs = st.executeQuery("SELECT count(*), count(DISTINCT id), sum(k) FROM " + TABLE)) {
            rs.next();
            out.put("final", Arrays.asList(rs.getInt(1), rs.getInt(2), rs.getLong(3)));
        }
        return out;
    }

    /** A 100k-row ResultSet read with setFetchSize inside a transaction
     *  (named portal, Execute with a row limit, PortalSuspended), two such
     *  portals open at once, and the same query in autocommit. */
    static Map<String, Object> fetch(Connection c) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        String q = "SELECT g, md5(g::text) FROM generate_series(1, ?) g";
        c.setAutoCommit(false);
        for (int round = 0; round < 7; round++) { // rounds 5+ use the named statement
            try (PreparedStatement ps = c.prepareStatement(q)) {
                ps.setFetchSize(1000);
                ps.setInt(1, 100000);
                long sum = 0;
                int n = 0;
                String last = null;
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        n++;
                        sum += rs.getInt(1);
                        last = rs.getString(2);
                    }
                }
                out.put("fetch_" + round, Arrays.asList(n, sum, last));
            }
            c.commit();
        }
        // two portals suspended at once, read alternately
        try (PreparedStatement a = c.prepareStatement("SELECT g FROM generate_series(1, 5000) g");
             PreparedStatement b = c.prepareStatement("SELECT -g FROM generate_series(1, 5000) g")) {
            a.setFetchSize(100);
            b.setFetchSize(70);
            long sa = 0, sb = 0;
            try (ResultSet ra = a.executeQuery(); ResultSet rb = b.executeQuery()) {
                boolean ma = true, mb = true;
                while (ma || mb) {
                    if (ma && (ma = ra.next()))
                        sa += ra.getInt(1);
                    if (mb && (mb = rb.next()))
                        sb += rb.getInt(1);
                }
            }
            out.put("two_portals", Arrays.asList(sa, sb));
        }
        // a cursor abandoned half-way, then more work in the same transaction
        try (PreparedStatement ps = c.prepareStatement("SELECT g FROM generate_series(1, 10000) g")) {
            ps.setFetchSize(50);
            try (ResultSet rs = ps.executeQuery()) {
                for (int i = 0; i < 120; i++)
                    rs.next();
                out.put("abandoned_at", rs.getInt(1));
            }
        }
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT 77")) {
            rs.next();
            out.put("after_abandoned", rs.getInt(1));
        }
        c.commit();
        c.setAutoCommit(true);
        try (PreparedStatement ps = c.prepareStatement(q)) {
            ps.setFetchSize(1000); // no effect in autocommit: the whole result at once
            ps.setInt(1, 100000);
            int n = 0;
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next())
                    n++;
            }
            out.put("autocommit_rows", n);
        }
        return out;
    }

    /** DatabaseMetaData: tables, columns, primary keys, type info, and the
     *  product version. */
    static Map<String, Object> meta(Connection c) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        DatabaseMetaData md = c.getMetaData();
        out.put("product", md.getDatabaseProductName());
        out.put("major", md.getDatabaseMajorVersion());
        out.put("user", md.getUserName());
        for (int round = 0; round < 6; round++) {
            List<Object> tables = new ArrayList<>();
            try (ResultSet rs = md.getTables(null, "public", TABLE, new String[] {"TABLE"})) {
                while (rs.next())
                    tables.add(Arrays.asList(rs.getString("TABLE_SCHEM"), rs.getString("TABLE_NAME"),
                            rs.getString("TABLE_TYPE")));
            }
            List<Object> cols = new ArrayList<>();
            try (ResultSet rs = md.getColumns(null, "public", TABLE, null)) {
                while (rs.next())
                    cols.add(Arrays.asList(rs.getString("COLUMN_NAME"), rs.getString("TYPE_NAME"),
                            rs.getInt("DATA_TYPE"), rs.getString("IS_NULLABLE"), rs.getInt("ORDINAL_POSITION")));
            }
            List<Object> pk = new ArrayList<>();
            try (ResultSet rs = md.getPrimaryKeys(null, "public", TABLE)) {
                while (rs.next())
                    pk.add(rs.getString("COLUMN_NAME"));
            }
            List<Object> fns = new ArrayList<>();
            try (ResultSet rs = md.getFunctions(null, "public", FN + "%")) {
                while (rs.next())
                    fns.add(rs.getString("FUNCTION_NAME"));
            }
            Collections.sort(fns, (x, y) -> x.toString().compareTo(y.toString()));
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("tables", tables);
            r.put("columns", cols);
            r.put("pk", pk);
            r.put("functions", fns);
            if (round == 0)
                out.put("first", r);
            else if (!r.toString().equals(out.get("first").toString()))
                throw new IllegalStateException("metadata changed in round " + round + ": " + r);
        }
        int types = 0;
        try (ResultSet rs = md.getTypeInfo()) {
            while (rs.next())
                types++;
        }
        out.put("type_info_has_rows", types > 50);
        return out;
    }

    /** CallableStatement: {? = call f(?)}, OUT parameters, a procedure with
     *  an INOUT parameter, a set-returning function through SELECT. */
    static Map<String, Object> call(Connection c) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        List<Object> ret = new ArrayList<>();
        try (CallableStatement cs = c.prepareCall("{? = call " + FN + "_add(?, ?)}")) {
            for (int i = 0; i < 8; i++) {
                cs.registerOutParameter(1, Types.INTEGER);
                cs.setInt(2, i);
                cs.setInt(3, 100);
                cs.execute();
                ret.add(cs.getInt(1));
            }
        }
        out.put("return_value", ret);
        try (CallableStatement cs = c.prepareCall("{call " + FN + "_out(?, ?, ?)}")) {
            cs.setInt(1, 21);
            cs.registerOutParameter(2, Types.INTEGER);
            cs.registerOutParameter(3, Types.VARCHAR);
            cs.execute();
            out.put("out_params", Arrays.asList(cs.getInt(2), cs.getString(3)));
        }
        try (CallableStatement cs = c.prepareCall("CALL " + FN + "_proc(?, ?)")) {
            cs.setInt(1, 5);
            cs.setInt(2, 0);
            cs.registerOutParameter(2, Types.INTEGER);
            cs.execute();
            out.put("procedure_inout", cs.getInt(2));
        }
        try (PreparedStatement ps = c.prepareStatement("SELECT * FROM " + FN + "_srf(?)")) {
            List<Object> rows = new ArrayList<>();
            for (int i = 0; i < 6; i++) {
                ps.setInt(1, 3);
                try (ResultSet rs = ps.executeQuery()) {
                    int n = 0;
                    while (rs.next())
                        n += rs.getInt(1);
                    rows.add(n);
                }
            }
            out.put("srf", rows);
        }
        return out;
    }

    /** Many types as parameters and results, into a table and back, each
     *  query run 7 times so the later runs are named statements with binary
     *  results. */
    static Map<String, Object> types(Connection c) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        String ins = "INSERT INTO " + TABLE + " (id, ts, tstz, d, n, b, ia, ta, u, j, f, bo, i8, t)"
                + " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?, ?, ?)";
        UUID u0 = UUID.fromString("0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d55");
        try (PreparedStatement ps = c.prepareStatement(ins)) {
            for (int i = 1; i <= 7; i++) {
                ps.setInt(1, i);
                ps.setTimestamp(2, Timestamp.valueOf("2024-02-29 12:34:56.789" + i));
                ps.setObject(3, OffsetDateTime.of(2024, 2, 29, 12, 34, 56, i * 1000, ZoneOffset.ofHours(2)));
                ps.setDate(4, java.sql.Date.valueOf("2024-02-2" + i));
                ps.setBigDecimal(5, new BigDecimal("12345678901234567890.12345678" + i));
                ps.setBytes(6, new byte[] {0, 1, 2, 39, 92, (byte) 254, (byte) 255, (byte) i});
                ps.setArray(7, c.createArrayOf("int4", new Integer[] {1, -2, i, null}));
                ps.setArray(8, c.createArrayOf("text", new String[] {"a", "b c", "d\"e", "{x}", null, "NULL"}));
                ps.setObject(9, new UUID(u0.getMostSignificantBits(), u0.getLeastSignificantBits() + i));
                ps.setString(10, "{\"a\": [1, 2, {\"b\": null}], \"i\": " + i + ", \"u\": \"\u00fc\"}");
                ps.setDouble(11, i + 0.5);
                ps.setBoolean(12, i % 2 == 0);
                ps.setLong(13, 9007199254740993L * (i % 2 == 0 ? 1 : -1));
                ps.setString(14, "h\u00e9llo '" + i + "'");
                ps.executeUpdate();
            }
            ps.setInt(1, 8);
            for (int k = 2; k <= 14; k++)
                ps.setNull(k, Types.NULL);
            ps.executeUpdate();
        }
        List<Object> reads = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement("SELECT * FROM " + TABLE + " WHERE id = ?")) {
            for (int round = 0; round < 7; round++) {
                for (int id : new int[] {round + 1, 8}) {
                    ps.setInt(1, id);
                    try (ResultSet rs = ps.executeQuery()) {
                        if (!rs.next())
                            throw new IllegalStateException("no row " + id);
                        reads.add(row(rs));
                    }
                }
            }
        }
        out.put("rows", reads);
        // the same values as select-list parameters
        List<Object> sel = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT ?::uuid, ?::numeric * 2, ?::bytea, ?::int[], ?::timestamptz, ?::jsonb -> 'k'")) {
            for (int i = 0; i < 7; i++) {
                ps.setObject(1, u0);
                ps.setBigDecimal(2, new BigDecimal("0.0000000001"));
                ps.setBytes(3, new byte[] {(byte) i, 0});
                ps.setArray(4, c.createArrayOf("int4", new Integer[] {i, i + 1}));
                ps.setObject(5, OffsetDateTime.of(2000, 1, 1, 0, 0, 0, 0, ZoneOffset.UTC));
                ps.setString(6, "{\"k\": " + i + "}");
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    sel.add(Arrays.asList(rs.getObject(1).toString(), rs.getBigDecimal(2).toPlainString(),
                            hex(rs.getBytes(3)), arr(rs.getArray(4)),
                            rs.getObject(5, OffsetDateTime.class).withOffsetSameInstant(ZoneOffset.UTC).toString(),
                            rs.getString(6)));
                }
            }
        }
        out.put("select", sel);
        return out;
    }

    static Object row(ResultSet rs) throws SQLException {
        List<Object> r = new ArrayList<>();
        r.add(rs.getInt("id"));
        Timestamp ts = rs.getTimestamp("ts");
        r.add(ts == null ? null : ts.toString());
        OffsetDateTime tz = rs.getObject("tstz", OffsetDateTime.class);
        r.add(tz == null ? null : tz.withOffsetSameInstant(ZoneOffset.UTC).toString());
        java.sql.Date d = rs.getDate("d");
        r.add(d == null ? null : d.toString());
        BigDecimal n = rs.getBigDecimal("n");
        r.add(n == null ? null : n.toPlainString());
        r.add(hex(rs.getBytes("b")));
        r.add(arr(rs.getArray("ia")));
        r.add(arr(rs.getArray("ta")));
        Object u = rs.getObject("u");
        r.add(u == null ? null : u.getClass().getSimpleName() + ":" + u);
        r.add(rs.getString("j"));
        r.add(rs.getObject("f"));
        r.add(rs.getObject("bo"));
        r.add(rs.getObject("i8"));
        r.add(rs.getString("t"));
        return r;
    }

    static Object arr(Array a) throws SQLException {
        if (a == null)
            return null;
        Object[] xs = (Object[]) a.getArray();
        return Arrays.asList(xs);
    }

    static String hex(byte[] b) {
        if (b == null)
            return null;
        StringBuilder s = new StringBuilder();
        for (byte x : b)
            s.append(String.format("%02x", x & 0xff));
        return s.toString();
    }

    static List<Object> toList(int[] xs) {
        List<Object> l = new ArrayList<>();
        for (int x : xs)
            l.add(x);
        return l;
    }

    /** THREADS threads, each with its own Connection, each running ROUNDS
     *  iterations of autocommit prepared reads and read-modify-write
     *  transactions (some rolled back); every result is checked. */
    static Map<String, Object> threads() throws Exception {
        int nThreads = Integer.parseInt(env("E2E_THREADS", "8"));
        int rounds = Integer.parseInt(env("E2E_ROUNDS", "150"));
        final String tz = java.util.TimeZone.getDefault().getID();
        ConcurrentLinkedQueue<String> errors = new ConcurrentLinkedQueue<>();
        AtomicInteger statements = new AtomicInteger();
        List<Thread> ts = new ArrayList<>();
        for (int t = 1; t <= nThreads; t++) {
            final int id = t;
            Thread th = new Thread(() -> {
                try (Connection c = connect()) {
                    try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + TABLE + " (id, n, v) VALUES (?, 0, '')")) {
                        ps.setInt(1, id);
                        ps.executeUpdate();
                    }
                    PreparedStatement read = c.prepareStatement(
                            "SELECT ?::int * 1000 + ?::int, ?::text || 'x', current_setting('TimeZone')");
                    PreparedStatement upd = c.prepareStatement(
                            "UPDATE " + TABLE + " SET n = n + 1, v = v || ? WHERE id = ? RETURNING n");
                    PreparedStatement get = c.prepareStatement("SELECT n, length(v) FROM " + TABLE + " WHERE id = ?");
                    int committed = 0;
                    for (int r = 0; r < rounds; r++) {
                        try {
                            read.setInt(1, id);
                            read.setInt(2, r);
                            read.setString(3, "t" + id);
                            try (ResultSet rs = read.executeQuery()) {
                                rs.next();
                                if (rs.getInt(1) != id * 1000 + r || !rs.getString(2).equals("t" + id + "x"))
                                    errors.add("read " + id + "/" + r + ": " + rs.getInt(1) + " " + rs.getString(2));
                                // the driver's TimeZone startup parameter, whichever server connection ran it
                                if (!rs.getString(3).equals(tz))
                                    errors.add("TimeZone " + id + "/" + r + ": " + rs.getString(3) + " != " + tz);
                            }
                            c.setAutoCommit(false);
                            upd.setString(1, ".");
                            upd.setInt(2, id);
                            int n;
                            try (ResultSet rs = upd.executeQuery()) {
                                rs.next();
                                n = rs.getInt(1);
                            }
                            if (n != committed + 1)
                                errors.add("n " + id + "/" + r + ": " + n + " after " + committed + " commits");
                            get.setInt(1, id);
                            try (ResultSet rs = get.executeQuery()) {
                                rs.next();
                                if (rs.getInt(1) != n || rs.getInt(2) != n)
                                    errors.add("get " + id + "/" + r + ": " + rs.getInt(1) + " " + rs.getInt(2));
                            }
                            if (r % 5 == 4) {
                                c.rollback();
                            } else {
                                c.commit();
                                committed++;
                            }
                            c.setAutoCommit(true);
                            statements.addAndGet(3);
                        } catch (SQLException e) {
                            errors.add(id + "/" + r + ": " + state(e) + " " + e.getMessage());
                            try {
                                c.rollback();
                                c.setAutoCommit(true);
                            } catch (SQLException e2) {
                                errors.add(id + "/" + r + " rollback: " + state(e2) + " " + e2.getMessage());
                                return;
                            }
                        }
                    }
                    try (ResultSet rs = c.createStatement().executeQuery("SELECT n FROM " + TABLE + " WHERE id = " + id)) {
                        rs.next();
                        if (rs.getInt(1) != committed)
                            errors.add("final " + id + ": " + rs.getInt(1) + " != " + committed);
                    }
                } catch (Exception e) {
                    errors.add(id + ": " + e);
                }
            });
            ts.add(th);
            th.start();
        }
        for (Thread th : ts)
            th.join();
        Map<String, Object> out = new LinkedHashMap<>();
        List<Object> errs = new ArrayList<>(errors);
        out.put("errors", errs.subList(0, Math.min(20, errs.size())));
        out.put("n_errors", errs.size());
        out.put("statements", statements.get());
        out.put("timezone", tz);
        return out;
    }

    /** A server-prepared statement (past prepareThreshold, binary int
     *  results) whose result shape changes under it (ALTER TABLE on a
     *  `SELECT *`).  PostgreSQL answers its next Bind with 0A000 "cached plan
     *  must not change result type"; in autocommit the driver re-prepares and
     *  runs it again, so the application sees the new shape.  Two connections
     *  c1, c2 run the same SQL; DDL comes over a direct superuser connection
     *  (E2E_SUPER_PORT).  With E2E_RECONNECT=1 the DDL is followed by
     *  terminating the fnx backends running as 'PostgreSQL JDBC Driver' (the
     *  driver's application_name, which the proxy gives its server
     *  connection; c1 is then not used), so c2's next query runs on a fresh
     *  server connection. */
    static Map<String, Object> shape(Connection c2) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        boolean reconnect = "1".equals(System.getenv("E2E_RECONNECT"));
        Properties p = new Properties();
        p.setProperty("user", "postgres");
        p.setProperty("connectTimeout", "10");
        String url = "jdbc:postgresql://" + env("PGHOST", "127.0.0.1") + ":" + System.getenv("E2E_SUPER_PORT") + "/"
                + env("PGDATABASE", "fnx");
        List<Object> r1 = new ArrayList<>(), r2 = new ArrayList<>(), terminated = new ArrayList<>();
        try (Connection su = DriverManager.getConnection(url, p); Connection c1 = connect()) {
            String q = "SELECT * FROM " + TABLE + " WHERE id = ?";
            PreparedStatement p1 = c1.prepareStatement(q), p2 = c2.prepareStatement(q);
            for (int i = 0; i < 6; i++) {
                if (!reconnect)
                    shapeRun(p1);
                shapeRun(p2);
            }
            r2.add(shapeRun(p2));
            for (String ddl : new String[] {"ALTER TABLE " + TABLE + " ADD COLUMN w int DEFAULT 7",
                    "ALTER TABLE " + TABLE + " DROP COLUMN v; ALTER TABLE " + TABLE + " ADD COLUMN v int DEFAULT 5"}) {
                try (Statement st = su.createStatement()) {
                    st.execute(ddl);
                    if (reconnect) {
                        try (ResultSet rs = st.executeQuery("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                + "WHERE usename = 'fnx' AND backend_type = 'client backend' "
                                + "AND application_name = 'PostgreSQL JDBC Driver'")) {
                            rs.next();
                            terminated.add(rs.getInt(1));
                        }
                        Thread.sleep(300);
                    }
                }
                if (!reconnect)
                    r1.add(shapeRun(p1));
                r2.add(shapeRun(p2));
                r2.add(shapeRun(p2));
            }
        }
        out.put("c1", r1);
        out.put("c2", r2);
        out.put("terminated", terminated);
        return out;
    }

    static Object shapeRun(PreparedStatement ps) {
        try {
            ps.setInt(1, 1);
            try (ResultSet rs = ps.executeQuery()) {
                List<Object> row = new ArrayList<>();
                rs.next();
                int n = rs.getMetaData().getColumnCount();
                for (int i = 1; i <= n; i++)
                    row.add(rs.getMetaData().getColumnName(i) + "=" + rs.getString(i));
                return row;
            }
        } catch (SQLException e) {
            return state(e) + " " + e.getMessage();
        }
    }

    // ---------------------------------------------------------------- JSON

    static void json(StringBuilder s, Object o) {
        if (o == null) {
            s.append("null");
        } else if (o instanceof Map) {
            s.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) o).entrySet()) {
                if (!first)
                    s.append(',');
                first = false;
                json(s, e.getKey().toString());
                s.append(':');
                json(s, e.getValue());
            }
            s.append('}');
        } else if (o instanceof List) {
            s.append('[');
            boolean first = true;
            for (Object x : (List<?>) o) {
                if (!first)
                    s.append(',');
                first = false;
                json(s, x);
            }
            s.append(']');
        } else if (o instanceof Boolean || o instanceof Integer || o instanceof Long) {
            s.append(o);
        } else if (o instanceof Double) {
            s.append(o);
        } else {
            String str = o.toString();
            s.append('"');
            for (char ch : str.toCharArray()) {
                if (ch == '"' || ch == '\\')
                    s.append('\\').append(ch);
                else if (ch < 0x20)
                    s.append(String.format("\\u%04x", (int) ch));
                else
                    s.append(ch);
            }
            s.append('"');
        }
    }

    public static void main(String[] args) throws Exception {
        String scenario = args[0];
        Map<String, Object> out;
        if (scenario.equals("threads")) {
            out = threads();
        } else {
            try (Connection c = connect()) {
                switch (scenario) {
                    case "prepared": out = prepared(c); break;
                    case "transactions": out = transactions(c); break;
                    case "batch": out = batch(c); break;
                    case "fetch": out = fetch(c); break;
                    case "meta": out = meta(c); break;
                    case "call": out = call(c); break;
                    case "types": out = types(c); break;
                    case "shape": out = shape(c); break;
                    default: throw new IllegalArgumentException("unknown scenario " + scenario);
                }
            }
        }
        StringBuilder s = new StringBuilder();
        json(s, out);
        System.out.println(s);
    }
}
