"""A tiny raw PostgreSQL v3 protocol client for tests that need to see or send
exact bytes: startup packets, authentication exchanges, malformed messages.

Everything has a timeout; nothing here can hang a test.
"""

import base64
import hashlib
import hmac
import os
import socket
import struct
import time

PROTO_3_0 = 196608            # 3 << 16
PROTO_3_1 = (3 << 16) | 1
PROTO_2_0 = 2 << 16
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102

AUTH_OK = 0
AUTH_CLEARTEXT = 3
AUTH_MD5 = 5
AUTH_SASL = 10
AUTH_SASL_CONTINUE = 11
AUTH_SASL_FINAL = 12


class Closed(Exception):
    """The peer closed the connection."""


class ProtocolError(Exception):
    pass


def startup_packet(params, version=PROTO_3_0, terminate=True):
    """Build a StartupMessage.  params: list of (name, value) or a dict."""
    if isinstance(params, dict):
        params = list(params.items())
    body = struct.pack("!I", version)
    for k, v in params:
        body += k.encode() + b"\0" + v.encode() + b"\0"
    if terminate:
        body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def message(mtype, payload=b""):
    """A regular message: type byte, Int32 length (self-inclusive), payload."""
    if isinstance(mtype, str):
        mtype = mtype.encode()
    return mtype + struct.pack("!I", len(payload) + 4) + payload


def query_msg(sql):
    return message("Q", sql.encode() + b"\0")


def parse_error_fields(payload):
    """ErrorResponse / NoticeResponse fields as {code char: value}."""
    fields = {}
    i = 0
    while i < len(payload) and payload[i] != 0:
        code = chr(payload[i])
        end = payload.index(b"\0", i + 1)
        fields[code] = payload[i + 1:end].decode(errors="replace")
        i = end + 1
    return fields


def auth_code(payload):
    return struct.unpack("!I", payload[:4])[0]


class Msg:
    """One backend message."""

    def __init__(self, mtype, payload):
        self.type = mtype          # one-character str
        self.payload = payload

    @property
    def fields(self):
        assert self.type in "EN", self.type
        return parse_error_fields(self.payload)

    @property
    def sqlstate(self):
        return self.fields.get("C")

    @property
    def text(self):
        f = self.fields
        return " ".join(f.get(k, "") for k in "SMDH").strip()

    def __repr__(self):
        if self.type in "EN":
            return f"Msg({self.type} {self.fields})"
        if self.type == "R":
            return f"Msg(R code={auth_code(self.payload)})"
        return f"Msg({self.type} {self.payload[:60]!r}{'...' if len(self.payload) > 60 else ''})"


class RawConn:
    """A raw socket to the proxy (or a server) speaking bytes we choose."""

    def __init__(self, host="127.0.0.1", port=None, unix_path=None, timeout=10.0,
                 rcvbuf=None, family=None):
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            addr = unix_path
        else:
            if family is None:
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self.sock = socket.socket(family, socket.SOCK_STREAM)
            addr = (host, port)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.sock.connect(addr)
        if not unix_path:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.params = {}        # ParameterStatus received at login
        self.key = None         # (pid, secret) from BackendKeyData
        self.eof = False

    # -- low level -------------------------------------------------------

    @property
    def local_port(self):
        """Our port, as the proxy's log lines name the client (ADDR:PORT)."""
        name = self.sock.getsockname()
        return name[1] if isinstance(name, tuple) else None

    def send(self, data):
        self.sock.sendall(data)

    def try_send(self, data):
        """Send, but a peer that already closed is not an error here."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out waiting for data")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise Closed()
        self.buf += chunk

    def read_bytes(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_msg(self, timeout=None):
        """Next backend message; raises Closed on EOF, socket.timeout on timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < 5:
            self._fill(deadline)
        mtype = chr(self.buf[0])
        length = struct.unpack("!I", self.buf[1:5])[0]
        if length < 4 or length > 1 << 30:
            raise ProtocolError(f"bad message length {length} for type {mtype!r}: {self.buf[:40]!r}")
        while len(self.buf) < 1 + length:
            self._fill(deadline)
        payload = self.buf[5:1 + length]
        self.buf = self.buf[1 + length:]
        return Msg(mtype, payload)

    def read_all_until_close(self, timeout=None):
        """Every message until the peer closes.  Raises socket.timeout if it doesn't."""
        msgs = []
        while True:
            try:
                msgs.append(self.read_msg(timeout))
            except Closed:
                if self.buf:
                    raise ProtocolError(f"trailing bytes at close: {self.buf[:60]!r}")
                return msgs

    def wait_closed(self, timeout=None):
        """True if the peer closes within timeout (discarding anything it sends)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while True:
                self.buf = b""
                self._fill(deadline)
        except Closed:
            return True
        except socket.timeout:
            return False

    def raw_response(self, timeout=None):
        """All bytes until the peer closes (for answers that may not be v3 framed)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while True:
                self._fill(deadline)
        except Closed:
            pass
        out, self.buf = self.buf, b""
        return out

    # -- login -----------------------------------------------------------

    def send_startup(self, params, version=PROTO_3_0):
        self.send(startup_packet(params, version))

    def authenticate(self, user, password, first=None, timeout=None):
        """Answer authentication requests until AuthenticationOk.

        first: an already-read message to start from.  Returns the list of
        messages seen (excluding those consumed by SCRAM).  Raises
        ProtocolError with the ErrorResponse if login fails.
        """
        seen = []
        msg = first or self.read_msg(timeout)
        while True:
            if msg.type == "E":
                raise LoginError(msg, seen)
            if msg.type == "v":
                seen.append(msg)
                msg = self.read_msg(timeout)
                continue
            if msg.type != "R":
                raise ProtocolError(f"expected authentication request, got {msg!r}")
            code = auth_code(msg.payload)
            seen.append(msg)
            if code == AUTH_OK:
                return seen
            if code == AUTH_CLEARTEXT:
                self.send(message("p", password.encode() + b"\0"))
            elif code == AUTH_MD5:
                salt = msg.payload[4:8]
                inner = hashlib.md5((password + user).encode()).hexdigest()
                outer = "md5" + hashlib.md5(inner.encode() + salt).hexdigest()
                self.send(message("p", outer.encode() + b"\0"))
            elif code == AUTH_SASL:
                mechs = msg.payload[4:].split(b"\0")
                if b"SCRAM-SHA-256" not in mechs:
                    raise ProtocolError(f"no SCRAM-SHA-256 in {mechs!r}")
                ok = self._scram(password, timeout)
                if ok is not None:
                    msg = ok
                    continue
            else:
                raise ProtocolError(f"unsupported authentication request {code}")
            msg = self.read_msg(timeout)

    def _scram(self, password, timeout):
        """Run SCRAM-SHA-256 after AuthenticationSASL.  Returns the next message
        after the exchange (AuthenticationOk or an ErrorResponse)."""
        nonce = base64.b64encode(os.urandom(18)).decode()
        client_first_bare = f"n=,r={nonce}"
        data = ("n,," + client_first_bare).encode()
        self.send(message("p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(data)) + data))
        msg = self.read_msg(timeout)
        if msg.type == "E":
            return msg
        if msg.type != "R" or auth_code(msg.payload) != AUTH_SASL_CONTINUE:
            raise ProtocolError(f"expected SASLContinue, got {msg!r}")
        server_first = msg.payload[4:].decode()
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        if not attrs["r"].startswith(nonce):
            raise ProtocolError("server nonce does not extend ours")
        salt = base64.b64decode(attrs["s"])
        iters = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iters)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{client_first_bare},{server_first},{without_proof}".encode()
        client_sig = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, client_sig))
        final = f"{without_proof},p={base64.b64encode(proof).decode()}"
        self.send(message("p", final.encode()))
        msg = self.read_msg(timeout)
        if msg.type == "E":
            return msg
        if msg.type != "R" or auth_code(msg.payload) != AUTH_SASL_FINAL:
            raise ProtocolError(f"expected SASLFinal, got {msg!r}")
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        expect = base64.b64encode(hmac.new(server_key, auth_message, hashlib.sha256).digest()).decode()
        got = msg.payload[4:].decode()
        if got != f"v={expect}":
            raise ProtocolError(f"bad server signature {got!r}")
        return self.read_msg(timeout)

    def finish_login(self, timeout=None):
        """After AuthenticationOk: collect ParameterStatus/BackendKeyData until
        ReadyForQuery.  Returns the messages; raises LoginError on ErrorResponse."""
        msgs = []
        while True:
            msg = self.read_msg(timeout)
            msgs.append(msg)
            if msg.type == "S":
                k, v = msg.payload.split(b"\0")[:2]
                self.params[k.decode()] = v.decode()
            elif msg.type == "K":
                self.key = struct.unpack("!II", msg.payload[:8])
            elif msg.type == "E":
                raise LoginError(msg, msgs)
            elif msg.type == "Z":
                return msgs

    def login(self, user, password, database="app", extra=None, version=PROTO_3_0,
              timeout=None):
        """Startup + authentication + wait for ReadyForQuery."""
        params = [("user", user), ("database", database)]
        if extra:
            params += list(extra.items()) if isinstance(extra, dict) else list(extra)
        self.send_startup(params, version)
        seen = self.authenticate(user, password, timeout=timeout)
        return seen + self.finish_login(timeout)

    # -- queries ---------------------------------------------------------

    def query(self, sql, timeout=None):
        """Simple query; returns all messages up to and including ReadyForQuery."""
        self.send(query_msg(sql))
        return self.read_until_ready(timeout)

    def read_until_ready(self, timeout=None):
        msgs = []
        while True:
            msg = self.read_msg(timeout)
            msgs.append(msg)
            if msg.type == "Z":
                return msgs

    def query_values(self, sql, timeout=None):
        """Rows of a simple query as lists of str (None for NULL); raises on error."""
        rows = []
        for m in self.query(sql, timeout):
            if m.type == "E":
                raise QueryError(m)
            if m.type == "D":
                rows.append(parse_datarow(m.payload))
        return rows

    def scalar(self, sql, timeout=None):
        return self.query_values(sql, timeout)[0][0]


def parse_datarow(payload):
    n = struct.unpack("!H", payload[:2])[0]
    i = 2
    out = []
    for _ in range(n):
        ln = struct.unpack("!i", payload[i:i + 4])[0]
        i += 4
        if ln < 0:
            out.append(None)
        else:
            out.append(payload[i:i + ln].decode())
            i += ln
    return out


class LoginError(Exception):
    def __init__(self, msg, seen):
        super().__init__(repr(msg))
        self.msg = msg
        self.seen = seen


class QueryError(Exception):
    def __init__(self, msg):
        super().__init__(repr(msg))
        self.msg = msg


def cancel_request(host, port, pid, secret, timeout=10):
    """Send a CancelRequest on a new connection and wait for the close."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(struct.pack("!IIII", 16, CANCEL_REQUEST, pid, secret))
        try:
            s.recv(1)
        except OSError:
            pass


def login_attempt(port, params, password="", host="127.0.0.1", version=PROTO_3_0,
                  timeout=10.0, unix_path=None):
    """Try to log in with the given startup params, answering any authentication
    request with `password`.  Returns (messages, closed): every message the
    peer sent (auth requests included) until ReadyForQuery, or until it closed
    the connection (closed=True).  Never raises for a refused login."""
    if isinstance(params, dict):
        params = list(params.items())
    user = dict(params).get("user", "")
    msgs = []
    conn = RawConn(host=host, port=port, timeout=timeout, unix_path=unix_path)
    try:
        conn.try_send(startup_packet(params, version))
        try:
            while True:
                m = conn.read_msg()
                msgs.append(m)
                if m.type == "R":
                    code = auth_code(m.payload)
                    if code == AUTH_OK:
                        continue
                    try:
                        conn.authenticate(user, password, first=m)
                        msgs.append(Msg("R", struct.pack("!I", AUTH_OK)))
                    except LoginError as e:
                        msgs.append(e.msg)
                        if conn.wait_closed(timeout):
                            return msgs, True
                        return msgs, False
                elif m.type == "Z":
                    return msgs, False
                elif m.type == "E":
                    return msgs, conn.wait_closed(timeout)
        except Closed:
            return msgs, True
    finally:
        conn.close()


def errors(msgs):
    return [m for m in msgs if m.type == "E"]
