#!/usr/bin/python3
"""Memory per idle client connection of a PostgreSQL proxy/pooler.

For each target, opens N client connections, takes every one through startup and
authentication (SCRAM-SHA-256, md5, cleartext or trust: whatever the server asks)
to ReadyForQuery, keeps them open and idle, and compares the target process's
VmRSS before connecting with VmRSS after a settling pause:

    bytes per idle client = (RSS after - RSS before) / clients connected

Targets are given as NAME:PORT[:PID]; without a PID the process listening on
127.0.0.1:PORT is looked up in /proc. Targets are measured one after another,
each with all of its clients closed before the next starts.

    /usr/bin/python3 bench/idle_clients.py -n 10000 \
        --target proxy:$PX_PROXY_PORT --target pgbouncer:$PX_PGBOUNCER_PORT

Only the standard library is used; the SCRAM-SHA-256 client follows RFC 5802 /
RFC 7677 as PostgreSQL uses it (no channel binding, empty user name in the
client-first message).
"""

import argparse
import asyncio
import base64
import concurrent.futures
import hashlib
import hmac
import os
import resource
import struct
import sys
import time

PROTOCOL_V3 = 196608


# --- process inspection --------------------------------------------------------

def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def pid_listening_on(port):
    """PID of the process with a LISTEN socket on local TCP port `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    local, state, inode = cols[1], cols[3], cols[9]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add(f"socket:[{inode}]")
        except OSError:
            pass
    if not inodes:
        return None
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                        return int(pid)
                except OSError:
                    pass
        except OSError:
            pass
    return None


# --- protocol ------------------------------------------------------------------

class PgError(Exception):
    pass


def msg(kind, payload):
    return kind + struct.pack("!I", len(payload) + 4) + payload


async def read_msg(reader):
    hdr = await reader.readexactly(5)
    kind, length = hdr[:1], struct.unpack("!I", hdr[1:])[0]
    if length < 4 or length > 1 << 20:
        raise PgError(f"bad message length {length}")
    return kind, await reader.readexactly(length - 4)


def error_text(payload):
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[part[:1]] = part[1:].decode(errors="replace")
    return f"{fields.get(b'S', 'ERROR')} {fields.get(b'C', '')}: {fields.get(b'M', '')}"


class Scram:
    """SCRAM-SHA-256 client state; PBKDF2 results are cached per (salt, iterations)."""

    cache = {}

    def __init__(self, password):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"

    def initial(self):
        data = ("n,," + self.first_bare).encode()
        return b"SCRAM-SHA-256\0" + struct.pack("!i", len(data)) + data

    async def final(self, server_first, executor):
        sf = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in sf.split(","))
        if not attrs["r"].startswith(self.nonce):
            raise PgError("SCRAM: server nonce does not extend ours")
        salt, iters = base64.b64decode(attrs["s"]), int(attrs["i"])
        key = (salt, iters)
        salted = Scram.cache.get(key)
        if salted is None:
            loop = asyncio.get_running_loop()
            salted = await loop.run_in_executor(
                executor, hashlib.pbkdf2_hmac, "sha256", self.password, salt, iters)
            if len(Scram.cache) < 64:
                Scram.cache[key] = salted
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=biws,r=" + attrs["r"]
        auth_msg = ",".join((self.first_bare, sf, without_proof)).encode()
        sig = hmac.digest(stored_key, auth_msg, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        self.server_sig = hmac.digest(server_key, auth_msg, "sha256")
        return (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()

    def verify(self, server_final):
        attrs = dict(kv.split("=", 1) for kv in server_final.decode().split(","))
        if base64.b64decode(attrs.get("v", "")) != self.server_sig:
            raise PgError("SCRAM: bad server signature")


async def connect(host, port, user, password, dbname, executor):
    """Open one connection and drive it to ReadyForQuery. Returns (reader, writer)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        params = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in
                          (("user", user), ("database", dbname),
                           ("application_name", "idle_clients"))) + b"\0"
        body = struct.pack("!I", PROTOCOL_V3) + params
        writer.write(struct.pack("!I", len(body) + 4) + body)
        scram = None
        while True:
            kind, payload = await read_msg(reader)
            if kind == b"R":
                code = struct.unpack("!I", payload[:4])[0]
                if code == 0:
                    pass
                elif code == 3:
                    writer.write(msg(b"p", password.encode() + b"\0"))
                elif code == 5:
                    salt = payload[4:8]
                    inner = hashlib.md5((password + user).encode()).hexdigest().encode()
                    outer = hashlib.md5(inner + salt).hexdigest()
                    writer.write(msg(b"p", b"md5" + outer.encode() + b"\0"))
                elif code == 10:
                    if b"SCRAM-SHA-256\0" not in payload[4:]:
                        raise PgError(f"no usable SASL mechanism in {payload[4:]!r}")
                    scram = Scram(password)
                    writer.write(msg(b"p", scram.initial()))
                elif code == 11:
                    writer.write(msg(b"p", await scram.final(payload[4:], executor)))
                elif code == 12:
                    scram.verify(payload[4:])
                else:
                    raise PgError(f"unsupported authentication request {code}")
            elif kind == b"E":
                raise PgError(error_text(payload))
            elif kind == b"Z":
                return reader, writer
            # S (ParameterStatus), K (BackendKeyData), N (notice): ignore
    except BaseException:
        writer.close()
        raise


async def ping(reader, writer):
    """Run SELECT 1 on a connection; True when it answers correctly."""
    writer.write(msg(b"Q", b"SELECT 1\0"))
    rows = 0
    while True:
        kind, payload = await read_msg(reader)
        if kind == b"D":
            rows += 1
        elif kind == b"E":
            raise PgError(error_text(payload))
        elif kind == b"Z":
            return rows == 1


async def measure(name, port, pid, args, executor):
    res = {"target": name, "port": port, "pid": pid, "clients": args.clients,
           "connected": 0, "errors": 0, "status": "ok"}
    conns = []
    sem = asyncio.Semaphore(args.concurrency)
    first_error = []

    async def one():
        async with sem:
            try:
                conns.append(await asyncio.wait_for(
                    connect(args.host, port, args.user, args.password, args.dbname, executor),
                    args.connect_timeout))
            except Exception as e:  # noqa: BLE001 - report, keep going
                res["errors"] += 1
                if not first_error:
                    first_error.append(f"{type(e).__name__}: {e}")

    rss0 = status_kb(pid, "VmRSS")
    hwm0 = status_kb(pid, "VmHWM")
    t0 = time.monotonic()
    tasks = [asyncio.ensure_future(one()) for _ in range(args.clients)]
    done, pending = await asyncio.wait(tasks, timeout=args.timeout)
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.wait(pending)
        res["status"] = "timeout"
    res["connect_s"] = round(time.monotonic() - t0, 1)
    res["connected"] = len(conns)
    if first_error:
        res["first_error"] = first_error[0]
    await asyncio.sleep(args.settle)
    # Still alive? Ask a handful of the idle connections for a row.
    alive = 0
    for r, w in conns[:: max(1, len(conns) // 10)][:10]:
        try:
            alive += await asyncio.wait_for(ping(r, w), 10)
        except Exception:  # noqa: BLE001
            pass
    await asyncio.sleep(1)
    rss1 = status_kb(pid, "VmRSS")
    res.update(rss_before_kb=rss0, rss_after_kb=rss1, hwm_before_kb=hwm0,
               hwm_after_kb=status_kb(pid, "VmHWM"), pinged_ok=alive)
    res["bytes_per_client"] = (round((rss1 - rss0) * 1024 / len(conns)) if conns else None)
    if res["errors"] and res["status"] == "ok":
        res["status"] = "errors"
    if conns and alive < min(10, len(conns)) and res["status"] == "ok":
        res["status"] = "unresponsive"
    for r, w in conns:
        try:
            w.write(msg(b"X", b""))
            w.close()
        except Exception:  # noqa: BLE001
            pass
    conns.clear()
    await asyncio.sleep(2)
    res["rss_closed_kb"] = status_kb(pid, "VmRSS")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--clients", type=int, default=10000)
    ap.add_argument("--target", action="append", required=True,
                    help="NAME:PORT[:PID], repeatable; measured in the order given")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--user", default="fnx")
    ap.add_argument("--password", default=os.environ.get("PGPASSWORD", "fnx_pass"))
    ap.add_argument("--dbname", default="fnx")
    ap.add_argument("--concurrency", type=int, default=256,
                    help="handshakes in flight at once")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="seconds allowed for connecting all clients of one target")
    ap.add_argument("--connect-timeout", type=float, default=30.0)
    ap.add_argument("--settle", type=float, default=5.0)
    ap.add_argument("--csv", help="append results to this CSV file")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.clients + 200
    if hard != resource.RLIM_INFINITY and hard < need:
        print(f"warning: RLIMIT_NOFILE hard limit {hard} < {need}; "
              f"using {hard - 200} clients", file=sys.stderr)
        args.clients = hard - 200
        need = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))

    targets = []
    for spec in args.target:
        parts = spec.split(":")
        name, port = parts[0], int(parts[1])
        pid = int(parts[2]) if len(parts) > 2 and parts[2] else pid_listening_on(port)
        if not pid:
            sys.exit(f"no process found listening on port {port} for {name}")
        targets.append((name, port, pid))

    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as executor:
        for name, port, pid in targets:
            print(f"{name}: opening {args.clients} idle clients on :{port} (pid {pid})",
                  file=sys.stderr, flush=True)
            results.append(asyncio.run(measure(name, port, pid, args, executor)))

    cols = ["target", "clients", "connected", "errors", "status", "connect_s",
            "rss_before_kb", "rss_after_kb", "rss_closed_kb", "hwm_after_kb",
            "bytes_per_client", "pinged_ok"]
    if args.csv:
        new = not os.path.exists(args.csv)
        with open(args.csv, "a") as f:
            if new:
                f.write(",".join(cols) + "\n")
            for r in results:
                f.write(",".join(str(r.get(c, "")) for c in cols) + "\n")

    print(f"\n### Idle clients ({args.clients} per target)\n")
    print("| target | connected | RSS before | RSS with clients | RSS after close "
          "| bytes per idle client | connect time | status |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        note = r["status"] + (f" ({r['first_error']})" if r.get("first_error") else "")
        note += f"; {r['pinged_ok']}/{min(10, r['connected'])} answered SELECT 1"
        print(f"| {r['target']} | {r['connected']} | {r['rss_before_kb'] / 1024:.1f} MB "
              f"| {r['rss_after_kb'] / 1024:.1f} MB | {r['rss_closed_kb'] / 1024:.1f} MB "
              f"| {r['bytes_per_client'] if r['bytes_per_client'] is not None else '-'} "
              f"| {r['connect_s']} s | {note} |")
    bad = [r for r in results if r["status"] != "ok" or r["connected"] != args.clients]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
