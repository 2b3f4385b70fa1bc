// pqxxclient runs one scenario with libpqxx 6 (Debian's libpqxx-dev, over
// libpq) and prints a JSON summary as its last line.  Connection settings come
// from the libpq environment (PGHOST, PGPORT, ...); everything else is the
// library's default: pqxx::work sends BEGIN / COMMIT as simple Queries,
// exec() is a simple Query, exec_params() is an unnamed Parse/Bind/Execute/
// Sync (PQexecParams), conn.prepare() registers a named statement that is
// prepared on the server (PQprepare) the first time it runs, stream_to /
// stream_from are COPY FROM STDIN / COPY TO STDOUT, pqxx::pipeline sends
// several queries before reading the answers.  E2E_TABLE names the table.
//
//	g++ -std=c++17 -o pqxxclient pqxxclient.cpp -lpqxx -lpq && ./pqxxclient <scenario>
#include <pqxx/pqxx>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

static std::map<std::string, std::string> out;  // key -> JSON value

static std::string js(const std::string &s)
{
    std::string r = "\"";
    for (unsigned char ch : s) {
        switch (ch) {
        case '"': r += "\\\""; break;
        case '\\': r += "\\\\"; break;
        case '\n': r += "\\n"; break;
        case '\t': r += "\\t"; break;
        default:
            if (ch < 0x20) {
                char buf[8];
                snprintf(buf, sizeof buf, "\\u%04x", ch);
                r += buf;
            } else {
                r += static_cast<char>(ch);
            }
        }
    }
    return r + "\"";
}

static std::string jn(long long v) { return std::to_string(v); }
static std::string jb(bool v) { return v ? "true" : "false"; }

static std::string jlist(const std::vector<std::string> &items)
{
    std::string r = "[";
    for (size_t i = 0; i < items.size(); i++)
        r += (i ? "," : "") + items[i];
    return r + "]";
}

// every row of a result as a list of JSON strings (NULL as null)
static std::string rows_of(const pqxx::result &r)
{
    std::vector<std::string> rows;
    for (const auto &row : r) {
        std::vector<std::string> f;
        for (const auto &field : row)
            f.push_back(field.is_null() ? "null" : js(field.c_str()));
        rows.push_back(jlist(f));
    }
    return jlist(rows);
}

static std::string columns_of(const pqxx::result &r)
{
    std::vector<std::string> c;
    for (pqxx::row::size_type i = 0; i < r.columns(); i++)
        c.push_back(js(r.column_name(i)));
    return jlist(c);
}

// "" when fn succeeds, else "error <SQLSTATE>" or "other: <what>"
static std::string attempt(const std::function<void()> &fn)
{
    try {
        fn();
        return "";
    } catch (const pqxx::sql_error &e) {
        return "error " + e.sqlstate();
    } catch (const std::exception &e) {
        return std::string("other: ") + e.what();
    }
}

static std::string env(const char *k)
{
    const char *v = getenv(k);
    return v ? v : "";
}

static std::string table()
{
    std::string t = env("E2E_TABLE");
    if (t.empty()) {
        std::cerr << "E2E_TABLE is not set\n";
        exit(1);
    }
    return t;
}

static double since(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ------------------------------------------------------------------ scenarios

static void simple()
{
    pqxx::connection c;
    std::string t = table();
    {
        pqxx::work w(c);
        w.exec("INSERT INTO " + t + " VALUES (1, 'one'); INSERT INTO " + t +
               " VALUES (2, 'two'); UPDATE " + t + " SET v = v || '!' WHERE id = 2");
        out["delete"] = jn(w.exec("DELETE FROM " + t + " WHERE id > 100").affected_rows());
        w.commit();
    }
    pqxx::nontransaction n(c);
    out["rows"] = rows_of(n.exec("SELECT id, v FROM " + t + " ORDER BY id"));
    auto r = n.exec("SELECT 1 AS a, 'x'::text AS b, NULL::int AS c, 2.5::float8 AS d");
    out["literal"] = rows_of(r);
    out["columns"] = columns_of(r);
    out["div0"] = js(attempt([&] { n.exec("SELECT 1/0"); }));
    out["div0_params"] = js(attempt([&] { n.exec_params("SELECT 1/$1::int", 0); }));
    out["user"] = rows_of(n.exec_params("SELECT current_user, $1::text || '✓'", "ü"));
    long long sum = 0;
    for (int i = 0; i < 50; i++)
        sum += n.exec_params1("SELECT $1::int * 2", i)[0].as<long long>();
    out["repeat_sum"] = jn(sum);
}

static void types()
{
    pqxx::connection c;
    std::string t = table();
    c.prepare("ins", "INSERT INTO " + t +
                         " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)");
    {
        pqxx::work w(c);
        for (int i = 1; i <= 6; i++) {
            std::string bytes = std::string("\x00\x01\x02'\\\xfe\xff", 7) + char(i);
            pqxx::binarystring b(bytes);
            w.exec_prepared("ins", i, -7 * i, -9007199254740993LL * i,
                            "12345678901234567890.123456781",
                            "héllo 'wörld' ✓ " + std::to_string(i) + " 日本", b, i % 2 == 0,
                            "2024-02-29 1" + std::to_string(i) + ":34:56.123456+00",
                            "1999-12-" + std::to_string(31 - i),
                            "{\"a\": [1, 2, {\"b\": null}], \"u\": \"ü\", \"i\": " +
                                std::to_string(i) + "}",
                            "{\"k\": \"v\", \"n\": " + std::to_string(i) + "}",
                            "{1,-2," + std::to_string(i) + "}",
                            "{a,\"b c\",\"d\\\"e\",\"{x}\",\"NULL\"}",
                            "0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d56", 1.5 * i);
        }
        const char *null = nullptr;
        w.exec_prepared("ins", 7, null, null, null, null, null, null, null, null, null, null,
                        null, null, null, null);
        w.exec_params("UPDATE " + t + " SET ai = $1::int[], jb = $2 WHERE id = $3", "{1,NULL,3}",
                      "{\"ключ\": [true, null]}", 6);
        w.commit();
    }
    pqxx::nontransaction n(c);
    out["rows"] = rows_of(n.exec_params("SELECT * FROM " + t + " WHERE id >= $1 ORDER BY id", 0));
    out["rows_simple"] = rows_of(n.exec("SELECT * FROM " + t + " ORDER BY id"));
    auto r = n.exec_params1("SELECT b FROM " + t + " WHERE id = $1", 2);
    pqxx::binarystring b(r[0]);
    std::string hex;
    for (unsigned char ch : b.str()) {
        char buf[3];
        snprintf(buf, sizeof buf, "%02x", ch);
        hex += buf;
    }
    out["bytea"] = js(hex);
    out["echo"] = rows_of(n.exec_params(
        "SELECT $1::numeric * 2, $2::text || '✓', $3::jsonb, $4::int IS NULL",
        "0.000000000100000000000000000001", "ünï", "{\"x\": [1, 2.5, \"y\"]}",
        static_cast<const char *>(nullptr)));
}

// preparedPool: 10 threads, each its own connection, run the same
// conn.prepare()d statements (each connection has its own "ins"/"sel"/"cnt").
static void prepared_pool()
{
    std::string t = table();
    std::mutex mu;
    std::vector<std::string> errs;
    std::vector<std::thread> th;
    for (int w = 0; w < 10; w++) {
        th.emplace_back([&, w] {
            try {
                pqxx::connection c;
                c.prepare("ins", "INSERT INTO " + t + " (id, k, v) VALUES ($1, $2, $3)");
                c.prepare("sel", "SELECT v, k FROM " + t + " WHERE id = $1");
                c.prepare("cnt", "SELECT count(*), coalesce(sum(k), 0) FROM " + t +
                                     " WHERE id >= $1 AND id < $2");
                for (int r = 0; r < 40; r++) {
                    int id = w * 1000 + r;
                    std::string v = "w" + std::to_string(w) + "-r" + std::to_string(r);
                    pqxx::work x(c);
                    x.exec_prepared("ins", id, r, v);
                    auto row = x.exec_prepared1("sel", id);
                    if (row[0].as<std::string>() != v || row[1].as<int>() != r) {
                        std::lock_guard<std::mutex> g(mu);
                        errs.push_back("select " + std::to_string(id));
                    }
                    x.commit();
                    pqxx::nontransaction n(c);
                    auto cr = n.exec_prepared1("cnt", w * 1000, w * 1000 + 1000);
                    long long want = r + 1;
                    if (cr[0].as<long long>() != want || cr[1].as<long long>() != want * (want - 1) / 2) {
                        std::lock_guard<std::mutex> g(mu);
                        errs.push_back("count w" + std::to_string(w) + " r" + std::to_string(r));
                    }
                }
            } catch (const std::exception &e) {
                std::lock_guard<std::mutex> g(mu);
                errs.push_back(std::string("worker: ") + e.what());
            }
        });
    }
    for (auto &x : th)
        x.join();
    std::vector<std::string> je;
    for (auto &e : errs)
        je.push_back(js(e));
    out["errors"] = jlist(je);
}

static void transactions()
{
    pqxx::connection c;
    std::string t = table();
    c.prepare("ins", "INSERT INTO " + t + " (id, v) VALUES ($1, $2)");
    for (int i = 0; i < 6; i++) {
        pqxx::work w(c);
        w.exec_prepared("ins", i, "tx" + std::to_string(i));
        w.exec("SELECT count(*) FROM " + t);
        if (i % 2 == 0)
            w.commit();
        else
            w.abort();
    }
    {
        pqxx::work w(c);
        w.exec_prepared("ins", 100, "before error");
        out["mid_tx_error"] = js(attempt([&] { w.exec_params("SELECT 1/$1::int", 0); }));
        // libpqxx refuses more work in a failed transaction object; the
        // server would say 25P02 (checked through a raw query below)
        w.abort();
    }
    {
        pqxx::nontransaction n(c);
        n.exec("BEGIN");
        n.exec("SELECT 1");
        out["mid_tx_error_simple"] = js(attempt([&] { n.exec("SELECT 1/0"); }));
        out["in_failed_tx"] = js(attempt([&] { n.exec_prepared("ins", 101, "in failed tx"); }));
        n.exec("ROLLBACK");
    }
    {
        pqxx::work w(c);
        w.exec_prepared("ins", 102, "after rollback");
        w.commit();
    }
    {
        pqxx::nontransaction n(c);
        out["dup_autocommit"] = js(attempt([&] { n.exec_prepared("ins", 0, "dup"); }));
        try {
            n.exec_params("INSERT INTO " + t + " (id, v) VALUES ($1, $2)", 0, "dup");
        } catch (const pqxx::unique_violation &e) {
            out["dup_class"] = js("unique_violation " + e.sqlstate());
        }
    }
    {
        pqxx::work w(c);
        out["dup_in_tx"] = js(attempt([&] { w.exec_prepared("ins", 2, "dup"); }));
    }
    {
        pqxx::work w(c);
        w.exec_prepared("ins", 200, "outer");
        w.exec("SAVEPOINT sp");
        out["dup_in_savepoint"] = js(attempt([&] { w.exec_prepared("ins", 200, "dup"); }));
        w.exec("ROLLBACK TO SAVEPOINT sp");
        w.exec_prepared("ins", 201, "after savepoint");
        w.commit();
    }
    pqxx::nontransaction n(c);
    out["rows"] = rows_of(n.exec("SELECT id, v FROM " + t + " ORDER BY id"));
}

static void large()
{
    pqxx::connection c;
    long long n = atoll(env("E2E_ROWS").c_str());
    pqxx::work w(c);
    for (int round = 0; round < 2; round++) {
        pqxx::result r = round == 0
            ? w.exec_params("SELECT g, md5(g::text), g::numeric / 7 FROM generate_series(1, $1::int) g", n)
            : w.exec("SELECT g, md5(g::text), g::numeric / 7 FROM generate_series(1, " +
                     std::to_string(n) + ") g");
        long long cnt = 0, sum = 0;
        std::string digest;
        for (const auto &row : r) {
            long long g = row[0].as<long long>();
            cnt++;
            sum += g;
            if (g % 20000 == 0)
                digest += std::string(row[1].c_str()) + "|" + row[2].c_str() + ";";
        }
        out["round" + std::to_string(round)] = jlist({jn(cnt), jn(sum), js(digest)});
    }
    w.commit();
}

static void copy_scenario()
{
    pqxx::connection c;
    std::string t = table();
    {
        pqxx::work w(c);
        pqxx::stream_to s(w, t, std::vector<std::string>{"id", "v", "b"});
        for (int i = 0; i < 20000; i++)
            s << std::make_tuple(i, "row " + std::to_string(i) + " ✓ 'q' \\ back",
                                 "\\x" + std::string(i % 2 ? "00ff" : "ff00"));
        s.complete();
        w.commit();
    }
    out["copy_dup"] = js(attempt([&] {
        pqxx::work w(c);
        pqxx::stream_to s(w, t, std::vector<std::string>{"id", "v"});
        for (int i = 0; i < 10; i++)
            s << std::make_tuple(i, std::string("dup"));
        s.complete();
        w.commit();
    }));
    {
        pqxx::work w(c);
        pqxx::stream_from s(w, t, std::vector<std::string>{"id", "v", "b"});
        // raw COPY text lines (libpqxx 6.4's tuple tokenizer trips over this data)
        std::string line, last;
        long long cnt = 0, sum = 0;
        while (s.get_raw_line(line)) {
            cnt++;
            sum += atoll(line.c_str());
            last = line;
        }
        s.complete();
        w.commit();
        out["copy_out_last"] = js(last);
        out["copy_out"] = jlist({jn(cnt), jn(sum)});
    }
    pqxx::nontransaction n(c);
    out["after"] = rows_of(n.exec("SELECT count(*), md5(string_agg(id || v || encode(b, 'hex'), "
                                  "',' ORDER BY id)) FROM " + t));
}

static void cancel()
{
    pqxx::connection c;
    std::string marker = env("E2E_MARKER");
    std::thread canceller([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(700));
        c.cancel_query();
    });
    auto t0 = std::chrono::steady_clock::now();
    pqxx::nontransaction n(c);
    out["cancel"] = js(attempt([&] { n.exec("SELECT pg_sleep(20) /* " + marker + " */"); }));
    out["cancel_fast"] = jb(since(t0) < 8);
    canceller.join();
    out["after"] = jn(n.exec_params1("SELECT $1::int * 2", 21)[0].as<int>());
    long long left = -1;
    for (int i = 0; i < 80; i++) {
        left = n.exec_params1("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                              "AND query LIKE $1 AND pid <> pg_backend_pid()",
                              "%" + marker + "%")[0].as<long long>();
        if (left == 0)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    out["sleepers_left"] = jn(left);
}

static void timeout()
{
    pqxx::connection c;
    {
        pqxx::nontransaction n(c);
        n.exec("SET statement_timeout = '300ms'");
    }
    auto t0 = std::chrono::steady_clock::now();
    {
        pqxx::work w(c);
        out["timeout"] = js(attempt([&] { w.exec_params("SELECT pg_sleep($1::float8)", 5.0); }));
    }
    out["fast"] = jb(since(t0) < 4);
    std::string s;
    for (int i = 0; i < 5; i++) {
        pqxx::work w(c);
        s = w.exec1("SHOW statement_timeout")[0].c_str();
        w.commit();
    }
    out["show"] = js(s);
    {
        pqxx::nontransaction n(c);
        out["again"] = js(attempt([&] { n.exec("SELECT pg_sleep(1)"); }));
    }
    {
        pqxx::work w(c);
        w.exec("SET LOCAL statement_timeout = '5s'");
        out["local_longer"] = js(attempt([&] { w.exec("SELECT pg_sleep(0.5)"); }));
        w.commit();
    }
    {
        pqxx::nontransaction n(c);
        out["show_after_local"] = js(n.exec1("SHOW statement_timeout")[0].c_str());
    }
    pqxx::connection c2;
    pqxx::nontransaction n2(c2);
    out["other_conn"] = js(n2.exec1("SHOW statement_timeout")[0].c_str());
}

static void concurrent()
{
    std::string t = table();
    int workers = atoi(env("E2E_WORKERS").c_str());
    std::mutex mu;
    std::vector<std::string> errs;
    std::vector<std::thread> th;
    for (int w = 0; w < workers; w++) {
        th.emplace_back([&, w] {
            auto fail = [&](const std::string &e) {
                std::lock_guard<std::mutex> g(mu);
                errs.push_back(e);
            };
            try {
                pqxx::connection c;
                c.prepare("upd", "UPDATE " + t + " SET n = n + 1, v = v || $2 WHERE id = $1 RETURNING n, v");
                {
                    pqxx::nontransaction n(c);
                    n.exec_params("INSERT INTO " + t + " (id, n, v) VALUES ($1, 0, '')", w);
                }
                int want = 0;
                for (int r = 0; r < 30; r++) {
                    {
                        pqxx::work x(c);
                        auto row = x.exec_prepared1("upd", w, std::to_string(r % 10));
                        if (row[0].as<int>() != want + 1 || row[1].size() != size_t(want + 1))
                            fail("w" + std::to_string(w) + " r" + std::to_string(r));
                        if (r % 4 == 3) {
                            x.abort();
                        } else {
                            x.commit();
                            want++;
                        }
                    }
                    pqxx::nontransaction n(c);
                    int got = n.exec_params1("SELECT n FROM " + t + " WHERE id = $1", w)[0].as<int>();
                    if (got != want)
                        fail("read w" + std::to_string(w) + " r" + std::to_string(r));
                }
            } catch (const std::exception &e) {
                fail(std::string("worker: ") + e.what());
            }
        });
    }
    for (auto &x : th)
        x.join();
    std::vector<std::string> je;
    for (auto &e : errs)
        je.push_back(js(e));
    out["errors"] = jlist(je);
    pqxx::connection c;
    pqxx::nontransaction n(c);
    out["rows"] = rows_of(n.exec("SELECT id, n, length(v) FROM " + t + " ORDER BY id"));
}

// shape: a conn.prepare()d `SELECT *` and the same text through exec_params
// across ADD COLUMN / DROP COLUMN made by another connection
static void shape()
{
    std::string t = table();
    pqxx::connection c, other;
    c.prepare("star", "SELECT * FROM " + t + " WHERE id = $1");
    std::vector<std::string> steps;
    auto run = [&](bool prepared) {
        try {
            pqxx::nontransaction n(c);
            pqxx::result r = prepared ? n.exec_prepared("star", 1)
                                      : n.exec_params("SELECT * FROM " + t + " WHERE id = $1", 1);
            steps.push_back(jlist({columns_of(r), rows_of(r)}));
        } catch (const pqxx::sql_error &e) {
            steps.push_back(js("error " + e.sqlstate()));
        }
    };
    run(true);
    run(false);
    pqxx::nontransaction o(other);
    o.exec("ALTER TABLE " + t + " ADD COLUMN w int DEFAULT 7");
    for (int i = 0; i < 2; i++) {
        run(true);
        run(false);
    }
    o.exec("ALTER TABLE " + t + " DROP COLUMN v");
    o.exec("ALTER TABLE " + t + " ADD COLUMN v text DEFAULT 'new'");
    run(true);
    c.unprepare("star");
    c.prepare("star", "SELECT * FROM " + t + " WHERE id = $1");
    run(true);
    out["steps"] = jlist(steps);
}

static void pipeline_scenario()
{
    pqxx::connection c;
    std::string t = table();
    pqxx::work w(c);
    pqxx::pipeline p(w);
    std::vector<pqxx::pipeline::query_id> ids;
    for (int i = 0; i < 20; i++)
        ids.push_back(p.insert("INSERT INTO " + t + " VALUES (" + std::to_string(i) + ", 'p" +
                               std::to_string(i) + "') RETURNING id"));
    ids.push_back(p.insert("SELECT count(*) FROM " + t));
    std::vector<std::string> res;
    for (auto id : ids)
        res.push_back(js(p.retrieve(id).at(0).at(0).c_str()));
    p.complete();
    w.commit();
    out["results"] = jlist(res);
    // an error in the middle of a pipeline
    pqxx::work w2(c);
    pqxx::pipeline p2(w2);
    auto a = p2.insert("SELECT 1");
    auto b = p2.insert("SELECT 1/0");
    auto d = p2.insert("SELECT 3");
    std::vector<std::string> r2;
    r2.push_back(js(attempt([&] { p2.retrieve(a); })));
    r2.push_back(js(attempt([&] { p2.retrieve(b); })));
    r2.push_back(js(attempt([&] { p2.retrieve(d); })));
    out["error_pipeline"] = jlist(r2);
    w2.abort();
    pqxx::nontransaction n(c);
    out["after"] = rows_of(n.exec("SELECT count(*), sum(id) FROM " + t));
}

class receiver : public pqxx::notification_receiver
{
public:
    std::vector<std::string> got;
    receiver(pqxx::connection_base &c, const std::string &ch) : pqxx::notification_receiver(c, ch) {}
    void operator()(const std::string &payload, int) override
    {
        got.push_back(channel() + ":" + payload);
    }
};

static void listen()
{
    std::string ch = env("E2E_CHANNEL");
    pqxx::connection l;
    receiver rcv(l, ch);
    l.get_notifs();  // makes libpqxx send LISTEN
    pqxx::connection c;
    for (int i = 0; i < 5; i++) {
        pqxx::work w(c);
        w.exec_params("SELECT pg_notify($1, $2)", ch, "payload " + std::to_string(i) + " ✓");
        w.commit();
    }
    {
        pqxx::work w(c);
        w.exec_params("SELECT pg_notify($1, 'rolled back')", ch);
        w.abort();
    }
    {
        pqxx::nontransaction n(c);
        n.exec("NOTIFY " + ch + ", 'last'");
    }
    auto t0 = std::chrono::steady_clock::now();
    while (rcv.got.size() < 6 && since(t0) < 5)
        l.await_notification(0, 200000);
    std::vector<std::string> got;
    for (auto &g : rcv.got)
        got.push_back(js(g));
    out["notifications"] = jlist(got);
    pqxx::nontransaction n(l);
    out["after"] = jn(n.exec_params1("SELECT $1::int", 3)[0].as<int>());
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::cerr << "usage: pqxxclient <scenario>\n";
        return 2;
    }
    std::map<std::string, void (*)()> scenarios = {
        {"simple", simple},       {"types", types},     {"prepared_pool", prepared_pool},
        {"transactions", transactions}, {"large", large}, {"copy", copy_scenario},
        {"cancel", cancel},       {"timeout", timeout}, {"concurrent", concurrent},
        {"shape", shape},         {"pipeline", pipeline_scenario}, {"listen", listen},
    };
    auto f = scenarios.find(argv[1]);
    if (f == scenarios.end()) {
        std::cerr << "unknown scenario " << argv[1] << "\n";
        return 2;
    }
    try {
        f->second();
    } catch (const std::exception &e) {
        std::cerr << "FATAL: " << e.what() << "\n";
        return 1;
    }
    std::string s = "{";
    bool first = true;
    for (auto &kv : out) {
        s += (first ? "" : ",") + js(kv.first) + ":" + kv.second;
        first = false;
    }
    std::cout << s << "}" << std::endl;
    return 0;
}
