"""Minimal PostgreSQL v3 wire-protocol helpers for the raw-socket e2e tests.

Only what the tests need: build frontend messages with struct.pack, read backend
messages off a socket with a deadline, and log in (trust, cleartext, md5 or
SCRAM-SHA-256) so a test can then send whatever bytes it likes.  Nothing here
knows about the proxy; every helper works against PostgreSQL itself.
"""

import base64
import hashlib
import hmac
import os
import socket
import struct
import time

PROTOCOL_3_0 = 196608  # 3 << 16
SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102

# Authentication request codes (the int32 after 'R').
AUTH_OK = 0
AUTH_CLEARTEXT = 3
AUTH_MD5 = 5
AUTH_SASL = 10
AUTH_SASL_CONTINUE = 11
AUTH_SASL_FINAL = 12


class Closed(Exception):
    """The peer closed the connection (EOF or reset)."""


class PgError(Exception):
    """An ErrorResponse; .fields maps the one-letter field codes to strings."""

    def __init__(self, fields):
        self.fields = fields
        super().__init__(
            "%s %s: %s"
            % (fields.get("S", "?"), fields.get("C", "?"), fields.get("M", "?"))
        )

    @property
    def sqlstate(self):
        return self.fields.get("C")

    @property
    def message(self):
        return self.fields.get("M", "")


# ---------------------------------------------------------------- builders


def cstr(s):
    if isinstance(s, str):
        s = s.encode()
    return s + b"\0"


def startup_message(params, version=PROTOCOL_3_0):
    """StartupMessage: int32 len, int32 version, (name\\0value\\0)*, \\0."""
    body = struct.pack("!I", version)
    for k, v in params.items():
        body += cstr(k) + cstr(v)
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def ssl_request():
    return struct.pack("!II", 8, SSL_REQUEST_CODE)


def gssenc_request():
    return struct.pack("!II", 8, GSSENC_REQUEST_CODE)


def cancel_request(pid, key):
    return struct.pack("!IIII", 16, CANCEL_REQUEST_CODE, pid & 0xFFFFFFFF, key & 0xFFFFFFFF)


def message(mtype, body=b""):
    """A regular message: type byte, int32 length (self-inclusive), body."""
    if isinstance(mtype, str):
        mtype = mtype.encode()
    return mtype + struct.pack("!I", len(body) + 4) + body


def query(sql):
    return message("Q", cstr(sql))


def terminate():
    return message("X")


def flush():
    return message("H")


def sync():
    return message("S")


def parse(name, sql, param_oids=()):
    body = cstr(name) + cstr(sql) + struct.pack("!H", len(param_oids))
    for oid in param_oids:
        body += struct.pack("!I", oid)
    return message("P", body)


def values(params):
    """A count and length-prefixed values (None: NULL), as Bind and FunctionCall carry them."""
    body = struct.pack("!H", len(params))
    for p in params:
        if p is None:
            body += struct.pack("!i", -1)
        else:
            p = p.encode() if isinstance(p, str) else p
            body += struct.pack("!i", len(p)) + p
    return body


def bind(portal, stmt, params=(), result_formats=()):
    """Bind with all parameters in text format (results as `result_formats` say)."""
    body = cstr(portal) + cstr(stmt) + struct.pack("!H", 0) + values(params)
    body += struct.pack("!H", len(result_formats))
    body += b"".join(struct.pack("!H", f) for f in result_formats)
    return message("B", body)


def execute(portal="", max_rows=0):
    return message("E", cstr(portal) + struct.pack("!I", max_rows))


def describe(kind, name=""):
    return message("D", kind.encode() + cstr(name))


def password_message(data):
    return message("p", data)


# ---------------------------------------------------------------- parsing


def parse_error_fields(body):
    """ErrorResponse/NoticeResponse body -> {code: value}."""
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


def parse_data_row(body):
    (n,) = struct.unpack_from("!H", body, 0)
    off = 2
    cols = []
    for _ in range(n):
        (ln,) = struct.unpack_from("!i", body, off)
        off += 4
        if ln < 0:
            cols.append(None)
        else:
            cols.append(body[off : off + ln].decode("utf-8", "replace"))
            off += ln
    return cols


class RawConn:
    """A socket speaking the v3 protocol, with deadlines on every read."""

    def __init__(self, host, port, timeout=5.0, rcvbuf=None):
        if rcvbuf:
            # Set before connect so the advertised TCP window stays small.
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.timeout = timeout
        self.params = {}  # ParameterStatus seen during login
        self.backend_key = None  # (pid, key) from BackendKeyData
        self.notices = []

    # -- raw I/O

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self, deadline, nbytes=65536):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from server before the deadline")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(nbytes)
        except socket.timeout:
            raise TimeoutError("no data from server before the deadline") from None
        except (ConnectionResetError, BrokenPipeError) as e:
            raise Closed(str(e)) from None
        if not chunk:
            raise Closed("EOF")
        self.buf += chunk

    def recv_bytes(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            self._fill(deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def recv_msg(self, timeout=None):
        """Next backend message as (type char, body bytes)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < 5:
            self._fill(deadline)
        mtype = chr(self.buf[0])
        (ln,) = struct.unpack_from("!I", self.buf, 1)
        if ln < 4:
            raise AssertionError("server sent a message with length %d" % ln)
        while len(self.buf) < 1 + ln:
            self._fill(deadline, max(65536, 1 + ln - len(self.buf)))
        body = bytes(self.buf[5 : 1 + ln])
        del self.buf[: 1 + ln]
        return mtype, body

    def read_until_error_or_close(self, timeout):
        """Read until an ErrorResponse or EOF.

        Returns ("error", fields) or ("closed", None); raises TimeoutError if
        neither happens before the timeout.  Other messages are skipped.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                mtype, body = self.recv_msg(timeout=max(0.01, deadline - time.monotonic()))
            except Closed:
                return "closed", None
            if mtype == "E":
                return "error", parse_error_fields(body)

    def wait_closed(self, timeout):
        """True if the peer closes within the timeout (data is discarded)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                if not self.sock.recv(65536):
                    return True
            except socket.timeout:
                return False
            except OSError:
                return True

    # -- session helpers

    def startup(self, user, database, version=PROTOCOL_3_0, **params):
        p = {"user": user, "database": database}
        p.update(params)
        self.send(startup_message(p, version))

    def login(self, user, database, password=None, **params):
        """Startup + authentication up to the first ReadyForQuery.

        Returns the list of authentication request codes the server sent (so a
        test can assert which method was used).  Raises PgError on an
        ErrorResponse.
        """
        self.startup(user, database, **params)
        return self.finish_login(user, password)

    def finish_login(self, user, password):
        codes = []
        scram = None
        while True:
            mtype, body = self.recv_msg()
            if mtype == "E":
                raise PgError(parse_error_fields(body))
            if mtype == "R":
                (code,) = struct.unpack_from("!I", body, 0)
                codes.append(code)
                if code == AUTH_OK:
                    continue
                if password is None:
                    raise AssertionError("server asked for auth code %d but no password" % code)
                if code == AUTH_CLEARTEXT:
                    self.send(password_message(cstr(password)))
                elif code == AUTH_MD5:
                    salt = body[4:8]
                    self.send(password_message(cstr(md5_response(user, password, salt))))
                elif code == AUTH_SASL:
                    mechs = [m for m in body[4:].split(b"\0") if m]
                    if b"SCRAM-SHA-256" not in mechs:
                        raise AssertionError("no SCRAM-SHA-256 in %r" % mechs)
                    scram = ScramClient(password)
                    first = scram.client_first()
                    self.send(
                        password_message(
                            cstr("SCRAM-SHA-256") + struct.pack("!i", len(first)) + first
                        )
                    )
                elif code == AUTH_SASL_CONTINUE:
                    self.send(password_message(scram.client_final(body[4:])))
                elif code == AUTH_SASL_FINAL:
                    scram.verify_server_final(body[4:])
                else:
                    raise AssertionError("unsupported auth code %d" % code)
            elif mtype == "S":
                k, v = body.split(b"\0")[:2]
                self.params[k.decode()] = v.decode()
            elif mtype == "K":
                self.backend_key = struct.unpack("!II", body[:8])
            elif mtype == "N":
                self.notices.append(parse_error_fields(body))
            elif mtype == "Z":
                return codes
            else:
                raise AssertionError("unexpected %r during login" % mtype)

    def simple_query(self, sql, timeout=None):
        """Run a simple Query; returns (rows, command tags). Raises PgError."""
        self.send(query(sql))
        return self.collect(timeout)

    def collect(self, timeout=None):
        """Read up to ReadyForQuery; returns (rows, tags); raises the first error."""
        rows, tags, err = [], [], None
        while True:
            try:
                mtype, body = self.recv_msg(timeout)
            except Closed:
                if err:  # a FATAL error is followed by a close, not ReadyForQuery
                    raise err from None
                raise
            if mtype == "D":
                rows.append(parse_data_row(body))
            elif mtype == "C":
                tags.append(body.rstrip(b"\0").decode())
            elif mtype == "E" and err is None:
                err = PgError(parse_error_fields(body))
            elif mtype == "N":
                self.notices.append(parse_error_fields(body))
            elif mtype == "Z":
                if err:
                    raise err
                return rows, tags


# ---------------------------------------------------------------- auth math


def md5_hash_secret(user, password):
    """The md5 secret as stored in pg_authid / userlist.txt: md5 + md5(pw+user)."""
    return "md5" + hashlib.md5((password + user).encode()).hexdigest()


def md5_response(user, password, salt):
    inner = hashlib.md5((password + user).encode()).hexdigest()
    return "md5" + hashlib.md5(inner.encode() + salt).hexdigest()


class ScramClient:
    """Client side of SCRAM-SHA-256 (RFC 5802/7677) without channel binding."""

    def __init__(self, password):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.client_first_bare = "n=,r=" + self.nonce
        self.auth_message = None
        self.salted = None

    def client_first(self):
        return ("n,," + self.client_first_bare).encode()

    def client_final(self, server_first):
        server_first = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        if not attrs["r"].startswith(self.nonce):
            raise AssertionError("server nonce does not extend ours")
        salt = base64.b64decode(attrs["s"])
        iterations = int(attrs["i"])
        self.salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, iterations)
        client_key = hmac.new(self.salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=biws,r=" + attrs["r"]
        self.auth_message = ",".join([self.client_first_bare, server_first, without_proof])
        sig = hmac.new(stored_key, self.auth_message.encode(), "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        return (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()

    def verify_server_final(self, server_final):
        server_final = server_final.decode()
        if server_final.startswith("e="):
            raise AssertionError("SCRAM server error: " + server_final)
        server_key = hmac.new(self.salted, b"Server Key", "sha256").digest()
        want = hmac.new(server_key, self.auth_message.encode(), "sha256").digest()
        got = base64.b64decode(server_final.split("v=", 1)[1].split(",")[0])
        if not hmac.compare_digest(want, got):
            raise AssertionError("SCRAM server signature mismatch")
