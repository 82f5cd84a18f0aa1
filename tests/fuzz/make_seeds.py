#!/usr/bin/env python3
"""make_seeds.py - writes the seed corpora under tests/fuzz/<target>/seeds/.

    python3 tests/fuzz/make_seeds.py

The seeds are small hand-made inputs, valid and invalid, in the input format
each target documents at the top of its .c file.  They are committed; this
script is how they were made, so a change to a target's input format comes
with a re-run here.  It overwrites only the files it names and never touches
regressions/ (those are inputs that once found a bug: keep every one).
"""
import base64
import hashlib
import hmac
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def write(target, name, data):
    d = os.path.join(HERE, target, "seeds")
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- protocol messages ----

def cstr(s):
    return (s.encode() if isinstance(s, str) else s) + b"\0"


def msg(t, body=b""):
    return t.encode() + struct.pack("!I", 4 + len(body)) + body


def untyped(body):
    return struct.pack("!I", 4 + len(body)) + body


def startup(pairs, major=3, minor=0):
    body = struct.pack("!I", (major << 16) | minor)
    for k, v in pairs:
        body += cstr(k) + cstr(v)
    return untyped(body + b"\0")


SSL_REQUEST = untyped(struct.pack("!I", (1234 << 16) | 5679))
GSSENC_REQUEST = untyped(struct.pack("!I", (1234 << 16) | 5680))


def cancel(pid, key):
    return untyped(struct.pack("!III", (1234 << 16) | 5678, pid, key))


def sasl_initial(mech, data):
    if data is None:
        return msg("p", cstr(mech) + struct.pack("!i", -1))
    return msg("p", cstr(mech) + struct.pack("!i", len(data)) + data)


def error_fields(fields):
    return b"".join(t.encode() + cstr(v) for t, v in fields) + b"\0"


def row_description(names, plain=True):
    body = struct.pack("!H", len(names))
    for n in names:
        if plain:
            body += cstr(n) + struct.pack("!IHIHiH", 0, 0, 25, 0xFFFF, -1, 0)
        else:
            body += cstr(n) + struct.pack("!IHIHiH", 16384, 1, 23, 4, -1, 1)
    return msg("T", body)


def data_row(values):
    body = struct.pack("!H", len(values))
    for v in values:
        if v is None:
            body += struct.pack("!i", -1)
        else:
            body += struct.pack("!i", len(v)) + v
    return msg("D", body)


def auth(code, data=b""):
    return msg("R", struct.pack("!I", code) + data)


# RFC 7677 section 3
RFC_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_FIRST = (b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
RFC_CLIENT_FINAL = (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def scram_secret(password, salt, iterations):
    salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    stored = hashlib.sha256(client_key).digest()
    b64 = lambda b: base64.b64encode(b).decode()
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (iterations, b64(salt), b64(stored), b64(server_key))


def fuzz_pq():
    t = "fuzz_pq"
    # mode 0: a client's stream; byte 1 seeds the chunk sizes
    login = startup([("user", "app"), ("database", "appdb"), ("application_name", "psql"),
                     ("options", "-c search_path=app"), ("DateStyle", "ISO, MDY")])
    write(t, "fe_ssl_startup_password", b"\x00\x07" + SSL_REQUEST + login +
          msg("p", cstr("md5fe63fea7be31b0200b496d08bc6b517d")) + msg("Q", cstr("SELECT 1;")) +
          msg("X"))
    write(t, "fe_gssenc_ssl_startup", b"\x00\x01" + GSSENC_REQUEST + SSL_REQUEST +
          startup([("user", "u")]))
    write(t, "fe_cancel", b"\x00\x03" + cancel(12345, 0xDEADBEEF))
    write(t, "fe_cancel_bad_length", b"\x00\x03" + untyped(struct.pack("!IIII", (1234 << 16) | 5678, 1, 2, 3)))
    write(t, "fe_protocol_3_2_and_pq_option", b"\x00\x09" +
          startup([("user", "u"), ("_pq_.compression", "on")], 3, 2))
    write(t, "fe_protocol_2", b"\x00\x02" + startup([("user", "u")], 2, 0))
    write(t, "fe_startup_unterminated", b"\x00\x05" + untyped(struct.pack("!I", 3 << 16) + b"user\0u"))
    write(t, "fe_startup_trailing", b"\x00\x05" + untyped(struct.pack("!I", 3 << 16) + b"user\0u\0\0x"))
    write(t, "fe_startup_empty", b"\x00\x05" + untyped(struct.pack("!I", 3 << 16) + b"\0"))
    write(t, "fe_startup_too_long", b"\x00\x05" + struct.pack("!I", 10001) + b"\0\3\0\0")
    write(t, "fe_scram", b"\x00\x11" + startup([("user", "user")]) +
          sasl_initial("SCRAM-SHA-256", RFC_CLIENT_FIRST) + msg("p", RFC_CLIENT_FINAL))
    write(t, "fe_sasl_no_initial_response", b"\x00\x11" + startup([("user", "user")]) +
          sasl_initial("SCRAM-SHA-256", None))
    write(t, "fe_extended", b"\x00\x20" + startup([("user", "app")]) +
          msg("P", cstr("s1") + cstr("SELECT $1::int, $2") + struct.pack("!HII", 2, 23, 25)) +
          msg("B", cstr("p1") + cstr("s1") + struct.pack("!HHH", 2, 0, 1) + struct.pack("!H", 2) +
              struct.pack("!i", 1) + b"7" + struct.pack("!i", -1) + struct.pack("!HH", 1, 0)) +
          msg("D", b"P" + cstr("p1")) + msg("E", cstr("p1") + struct.pack("!i", 0)) +
          msg("C", b"S" + cstr("s1")) + msg("H") + msg("S"))
    write(t, "fe_copy_function", b"\x00\x0f" + startup([("user", "app")]) +
          msg("d", b"1\tone\n") + msg("c") + msg("f", cstr("aborted")) +
          msg("F", struct.pack("!IHH", 1598, 1, 0) + struct.pack("!Hi", 1, 3) + b"abc" +
              struct.pack("!H", 0)))
    write(t, "fe_bad_length", b"\x00\x01" + startup([("user", "app")]) + b"Q\0\0\0\x03")
    write(t, "fe_small_limit", b"\x04\x01" + startup([("user", "app")]) +
          msg("Q", cstr("SELECT '" + "x" * 80 + "'")))
    # mode 1: a server's stream
    write(t, "be_login_md5", b"\x01\x05" + auth(5, b"\x01\x02\x03\x04") + auth(0) +
          msg("S", cstr("server_version") + cstr("15.4")) +
          msg("S", cstr("client_encoding") + cstr("UTF8")) +
          msg("K", struct.pack("!II", 4242, 0x01020304)) + msg("Z", b"I"))
    write(t, "be_login_scram", b"\x01\x0b" + auth(10, cstr("SCRAM-SHA-256-PLUS") + cstr("SCRAM-SHA-256") + b"\0") +
          auth(11, RFC_SERVER_FIRST) + auth(12, RFC_SERVER_FINAL) + auth(0) + msg("Z", b"I"))
    write(t, "be_login_cleartext_negotiate", b"\x01\x02" + msg("v", struct.pack("!Ii", 0, 1) + cstr("_pq_.x")) +
          auth(3) + auth(0) + msg("Z", b"I"))
    write(t, "be_query_result", b"\x01\x08" + row_description(["?column?", "name"]) +
          data_row([b"1", None]) + data_row([b"", b"two"]) + msg("C", cstr("SELECT 2")) + msg("Z", b"T"))
    write(t, "be_query_result_binary", b"\x01\x08" + row_description(["id"], False) +
          data_row([b"\0\0\0\1"]) + msg("C", cstr("SELECT 1")) + msg("Z", b"I"))
    write(t, "be_error_notice", b"\x01\x04" +
          msg("E", error_fields([("S", "ERREUR"), ("V", "ERROR"), ("C", "42P01"),
                                 ("M", 'relation "x" does not exist'), ("D", "detail"), ("H", "hint"),
                                 ("P", "15"), ("F", "parse_relation.c"), ("L", "1392"), ("R", "parserOpenTable")])) +
          msg("N", error_fields([("S", "NOTICE"), ("C", "00000"), ("M", "hello")])) + msg("Z", b"E"))
    write(t, "be_error_bad", b"\x01\x04" + msg("E", b"SFATAL\0Mno terminator"))
    write(t, "be_error_v_before_s", b"\x01\x04" + msg("E", error_fields([("V", "FATAL"), ("S", "FATAL"), ("C", "57P01"), ("M", "bye")])))
    write(t, "be_copy_notify", b"\x01\x06" + msg("G", struct.pack("!BHHH", 0, 2, 0, 0)) +
          msg("H", struct.pack("!BH", 1, 0)) + msg("W", struct.pack("!BHH", 0, 1, 1)) +
          msg("d", b"row\n") + msg("c") + msg("A", struct.pack("!I", 99) + cstr("chan") + cstr("payload")) +
          msg("t", struct.pack("!HII", 2, 23, 25)) + msg("n") + msg("1") + msg("2") + msg("3") +
          msg("s") + msg("I") + msg("V", struct.pack("!i", 2) + b"ok"))
    write(t, "be_small_limit", b"\x05\x01" + msg("S", cstr("x" * 70) + cstr("y")))
    write(t, "be_tiny_limit", b"\x09\x01" + msg("Z", b"I"))
    # mode 2: cursor scripts: [nops] [ops] [body]
    write(t, "cursor_script", b"\x02" + bytes([9, 0, 1, 2, 3, 4, 5, 3, 6, 7]) + b"\x01\x00\x02\x00\x00\x00\x03\xff\xff\xff\xfeabc\0xyz")
    write(t, "cursor_underflow", b"\x02" + bytes([4, 2, 2, 4, 0]) + b"\x01\x02\x03")
    # mode 3: builders: [flags] NUL-separated fields
    write(t, "build_fields", b"\x03\x05" + b"\0".join([b"ERROR", b"42601", b"syntax error", b"detail", b"hint", b"x", b"y"]))
    write(t, "build_empty_fields", b"\x03\xff" + b"\0\0\0\0\0\0")


def fuzz_startup_auth():
    t = "fuzz_startup_auth"
    # 0: server side
    write(t, "server_rfc7677", b"\x00\x00" + RFC_CLIENT_FIRST + b"\n" + RFC_CLIENT_FINAL)
    write(t, "server_rfc7677_wrong_proof", b"\x00\x00" + RFC_CLIENT_FIRST + b"\n" +
          RFC_CLIENT_FINAL[:-44] + b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    write(t, "server_extensions", b"\x00\x00" + b"y,,n=,r=rOprNGfwEbeRWgbNEkqO,x=ext\n" +
          b"c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,z=1,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    write(t, "server_channel_binding", b"\x00\x00p=tls-server-end-point,,n=,r=abc\n")
    write(t, "server_authzid_mext", b"\x00\x00n,a=admin,n=,r=abc\nm=ext")
    write(t, "server_mock_random_nonce", b"\x00\x03" + RFC_CLIENT_FIRST + b"\n" + RFC_CLIENT_FINAL)
    # 1: client side
    write(t, "client_rfc7677_keys", b"\x01\x01" + RFC_SERVER_FIRST + b"\n" + RFC_SERVER_FINAL)
    write(t, "client_rfc7677_password_path", b"\x01\x00" + RFC_SERVER_FIRST + b"\n" + RFC_SERVER_FINAL)
    write(t, "client_small_iterations", b"\x01\x00" +
          b"r=rOprNGfwEbeRWgbNEkqOserver,s=c2FsdA==,i=2\nv=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    write(t, "client_server_error", b"\x01\x01" + RFC_SERVER_FIRST + b"\ne=invalid-proof")
    write(t, "client_bad_server_first", b"\x01\x00r=wrongnonce,s=!!!,i=0\n")
    write(t, "client_huge_iterations", b"\x01\x00r=rOprNGfwEbeRWgbNEkqOx,s=c2FsdA==,i=99999999999\n")
    # 2: round trips: [flags: which message to damage] [iter] [pos] [xor] password \n salt
    write(t, "round_trip_clean", b"\x02\x00\x03\x00\x00pencil\nsaltsaltsaltsalt")
    write(t, "round_trip_damage_client_first", b"\x02\x01\x00\x05\x01p\xc3\xa4ss\nNaCl")
    write(t, "round_trip_damage_server_first", b"\x02\x02\x01\x30\x04secret\n")
    write(t, "round_trip_truncate_client_final", b"\x02\x03\x00\x20\x00pw\nsalt")
    write(t, "round_trip_damage_server_final", b"\x02\x04\x0f\x07\x80\n\x00\x01\x02")
    # 3: secrets: user \n secret \n salt \n response
    write(t, "secret_md5", b"\x03\x00app\nmd5fe63fea7be31b0200b496d08bc6b517d\n\x01\x02\x03\x04\nmd5" + b"0" * 32)
    write(t, "secret_plain", b"\x03\x00app\napp\nsalt\nmd5")
    write(t, "secret_scram", b"\x03\x00u1\n" + scram_secret(b"pencil", bytes(range(16)), 4096).encode() + b"\n\0\0\0\0\n")
    write(t, "secret_scram_pg", b"\x03\x00u1\nSCRAM-SHA-256$4096:BClBpXv0l4iyccm4vnYmig==$rBFQK5sjjFNspxLnNP624DSgAJ4K1d"
          b"/6hEoduzqH9gY=:jVg5+wv7C7hd22VweN0WhmKMgI0BMpk2VwOLFOHw+Uc=\nabcd\nW22ZaJ0SNY7soEsUEjb6gQ==")
    write(t, "secret_scram_bad", b"\x03\x00u\nSCRAM-SHA-256$04096:c2FsdA==$AAAA:AAAA\nxx\nQUJD")
    # 4: auth_file
    with open(os.path.join(ROOT, "conf", "userlist.txt"), "rb") as f:
        write(t, "userlist_conf", b"\x04\x00" + f.read())
    write(t, "userlist_mixed", b"\x04\x00; PgBouncer userlist\n\"alice\" \"first\"\n\"alice\" \"second wins\"\n"
          b"  \"bob\"\t\"md50123456789abcdef0123456789abcdef\" trailing text is ignored\r\n"
          b"\"carol\" \"" + scram_secret(b"pencil", b"saltsaltsalt", 4096).encode() + b"\"\n"
          b"\"we\"\"ird\" \"pa\"\"ss\"\n\"empty\" \"\"\n# comment\n\"semi;colon\" \"#hash\"\n")
    write(t, "userlist_unterminated", b"\x04\x00\"alice\" \"secret\n")
    write(t, "userlist_unquoted", b"\x04\x00alice secret\n")
    write(t, "userlist_nul", b"\x04\x00\"a\" \"b\0\"\n")
    # 5: the wire: startup then the password messages
    write(t, "wire_scram_rfc", b"\x05\x02" + SSL_REQUEST + startup([("user", "user"), ("database", "db")]) +
          sasl_initial("SCRAM-SHA-256", RFC_CLIENT_FIRST) + msg("p", RFC_CLIENT_FINAL))
    write(t, "wire_scram_plain_user", b"\x05\x00" + startup([("user", "app")]) +
          sasl_initial("SCRAM-SHA-256", b"n,,n=,r=abcdefgh") + msg("p", b"c=biws,r=abcdefgh,p=AAAA"))
    write(t, "wire_scram_unknown_user", b"\x05\x02" + startup([("user", "nobody")]) +
          sasl_initial("SCRAM-SHA-256", RFC_CLIENT_FIRST) + msg("p", RFC_CLIENT_FINAL))
    write(t, "wire_scram_wrong_mech", b"\x05\x00" + startup([("user", "user")]) +
          sasl_initial("SCRAM-SHA-256-PLUS", b"p=tls-server-end-point,,n=,r=x"))
    md5_app = "md5" + hashlib.md5(hashlib.md5(b"appapp").hexdigest().encode() + b"\x01\x02\x03\x04").hexdigest()
    write(t, "wire_md5_app", b"\x05\x01" + GSSENC_REQUEST + startup([("user", "app")]) + msg("p", cstr(md5_app)))
    md5_user = "md5" + hashlib.md5(hashlib.md5(b"secretmd5user").hexdigest().encode() + b"\x01\x02\x03\x04").hexdigest()
    write(t, "wire_md5_md5user", b"\x05\x01" + startup([("user", "md5user")]) + msg("p", cstr(md5_user)))
    write(t, "wire_md5_wrong", b"\x05\x01" + startup([("user", "q\"uote")]) + msg("p", cstr("md5" + "f" * 32)))
    write(t, "wire_cancel", b"\x05\x00" + cancel(1, 2))
    write(t, "wire_no_user", b"\x05\x00" + startup([("database", "db")]))


def fuzz_config():
    t = "fuzz_config"
    shutil.copy(os.path.join(ROOT, "conf", "pgcutover.ini"), os.path.join(HERE, t, "seeds", "conf_pgcutover.ini"))
    min_db = '[database "db"]\nsource = host=s\ntarget = host=t\nlag_method = none\n'
    write(t, "minimal", "[pgcutover]\n" + min_db)
    write(t, "product_example",
          "[pgcutover]\nlisten_addr = 127.0.0.1          ; comma list; * = all interfaces\n"
          "listen_port = 6432\nunix_socket_dir =\nadmin_addr = 127.0.0.1\nadmin_port = 6433\n"
          "admin_users = admin, ops\nauth_type = md5\nauth_file = userlist.txt\npool_mode = session\n"
          "max_client_conn = 10000\ndefault_pool_size = 20\nstate_dir = ./state\n"
          "metrics_addr = 127.0.0.1\nmetrics_port = 9127\nlog_file = log/pgcutover.log\n"
          "client_login_timeout = 60s\nserver_connect_timeout = 1500ms\nshutdown_timeout = 1min\n"
          "server_idle_timeout = 0\nmax_packet_size = 1GB\nconn_buffer_size = 512kB\n"
          "control_user = pgcutover\ndrain_timeout = 10s\nlag_timeout = 1h\nmax_switch_lag = 64MB\n"
          "lag_method = lsn\nsequence_sync = all\nsequence_margin = 0\nmarker_table = pgcutover_marker\n\n"
          '[database "appdb"]\nsource = host=127.0.0.1 port=5432 dbname=app\n'
          "target = host=127.0.0.1 port=5433 dbname=app\nreplication_slot = app_to_target\n\n"
          '[database "other"]\nsource = host=a dbname=o\ntarget = host=b dbname=o\nlag_method = marker\n'
          "marker_table = ops.marker\ndrain_timeout = 250ms\nmax_switch_lag = 1GB\npool_size = 5\n"
          "pool_mode = transaction\nsequence_sync = public.a_seq, app.b_seq\nsequence_margin = 1000\n"
          "control_user = ops\nuser = svc\npassword = pw;with;semicolons\n")
    write(t, "fleet",
          "[pgcutover]\nauth_file = userlist.txt\nfleet = host=fleet.example dbname=fleet user=pgc\n"
          "instance_name = zone-a:6432\nfleet_lease = 2500ms\n"
          '[database "appdb"]\nsource = host=s\ntarget = host=t\nlag_method = none\n')
    write(t, "fleet_bad",
          "[pgcutover]\nfleet_lease = 100ms\ninstance_name =\nfleet =\nfleet_lease = forever\n"
          '[database "appdb"]\nsource = host=s\ntarget = host=t\nfleet = x\n')
    write(t, "reversible",
          "[pgcutover]\nauth_file = userlist.txt\nfence = off\nreverse_replication = yes\n"
          '[database "appdb"]\nsource = host=s dbname=app\ntarget = host=t dbname=app\n'
          "replication_slot = app_slot\nsubscription = app_sub\nfence = TRUE\n"
          "reverse_connection = host=t dbname=app user=rev password='x y'\n"
          '[database "b"]\nsource = host=s\ntarget = host=t\nreverse_replication = maybe\n'
          "fence =\nsubscription =\n")
    write(t, "bad_values",
          "[pgcutover]\ndrain_timeout = 10x\nmax_switch_lag = 64 mb\npool_mode = statement\n"
          "listen_port = 70000\nadmin_port = 0\nmetrics_port = -1\nauth_type = password\nlag_method = wal\n"
          "max_client_conn = 0\ndefault_pool_size = 1.5\nlag_timeout = 0\nmax_packet_size = 2GB\n"
          "conn_buffer_size = 100\nclient_login_timeout = 3000000s\nsequence_sync = public.a, b\n"
          'marker_table = "quoted"\ncontrol_user =\nlisten_addr = 127.0.0.1,,::1\nsequence_margin = -5\n'
          '[database "db"]\nsource = host=s\ntarget = host=t\nreplication_slot = Bad-Slot\npool_size = 0\n')
    write(t, "structure_errors",
          'orphan = 1\n[pgcutover]\nlisten_port = 6500\nlisten_port = 6501\nthis line has no equals sign\n'
          '[databases]\nfoo = bar\n[database "a"]\nsource = host=s\nlag_method = none\n[database "a"]\n'
          'target = host=t\n[database ""]\n[database noquote]\n[database "x/y"]\n[pgcutover\n[pgcutover]\n'
          '[database "b"] trailing\n= value\n[database "lsn"]\nsource = host=s\ntarget = host=t\n'
          'source = again\nlisten_port = 1\ndefault_pool_size = 3\n')
    long_name = "n" * 70
    long_value = "host=" + "h" * 300
    write(t, "syntax_details",
          "\xef\xbb\xbf[pgcutover]\r\n  listen_port = 7001\r\n\tadmin_port=7002   ; tab-indented\n"
          "metrics_port : 0\n   # an indented comment\nAdmin_Users = alice , bob,carol\n"
          '[ database  "%s" ]\nsource = %s ; a comment after a long value\ntarget = host=t\n'
          "lag_method = none\nuser =\npassword =\n"
          '[database "we""ird ]"]\nsource = s\ntarget = t\nlag_method = none\n' % ("d" * 60, long_value))
    write(t, "too_long_names", "[pgcutover]\n%s = 1\n[database \"%s\"]\nsource=s\ntarget=t\n" % ("k" * 250, long_name))
    write(t, "ports_clash", "[pgcutover]\nlisten_port = 7000\nadmin_port = 7000\nmetrics_port = 7000\n" + min_db)
    write(t, "empty", "")
    write(t, "no_database", "[pgcutover]\n")
    write(t, "nul_byte", "[pgcutover]\nlisten_port = 1\0\n" + min_db)
    write(t, "validation",
          "[pgcutover]\nignore_tables = public.audit, Logs.*, tmp\nverify_jobs = 4\nswitch_verify = on\n"
          "verify_budget = 150ms\nswitch_verify_incomplete = proceed\n"
          '[database "appdb"]\nsource = host=s dbname=app\ntarget = host=t dbname=app\nlag_method = none\n'
          "ignore_tables =\nswitch_verify = off\nverify_budget = 2min\n"
          '[database "b"]\nsource = host=s\ntarget = host=t\nlag_method = none\nverify_jobs = 0\n'
          "ignore_tables = a..b, *.x, public.,\nswitch_verify_incomplete = maybe\nverify_budget = 0\n")
    write(t, "syslog", "[pgcutover]\nsyslog = on\nsyslog_ident = pgcutover-eu\nsyslog_facility = Local4\n"
          + min_db)
    write(t, "syslog_bad", "[pgcutover]\nsyslog = 2\nsyslog_ident =\nsyslog_facility = kern\n"
          "[database \"db\"]\nsource = host=s\ntarget = host=t\nsyslog = off\n")

    write(t, "shadow_ddl", "[pgcutover]\nshadow = 0.01\nshadow_queue = 50\nddl = block\n" + min_db +
          "shadow = 1\nddl = pass\n[database \"b\"]\nsource = host=s\ntarget = host=t\nshadow = .5\n"
          "shadow_queue = 0\nddl = maybe\nshadow = 1.0000001\n")

def fuzz_admin_cmd():
    t = "fuzz_admin_cmd"
    cmds = {
        "show_help": "SHOW HELP", "show_version": "show version;", "show_databases": "SHOW DATABASES",
        "show_clients": "  show Clients  ", "show_servers": "SHOW SERVERS", "show_pools": "SHOW POOLS",
        "show_stats": "SHOW STATS;;", "show_config": "SHOW CONFIG", "show_switches": "SHOW SWITCHES",
        "show_lag": "SHOW LAG", "show_lag_db": "SHOW LAG appdb", "show_sequences": 'SHOW SEQUENCES "AppDb"',
        "pause": "PAUSE", "pause_db": "pause appdb", "resume_db": "RESUME appdb", "abort": "ABORT appdb",
        "switch": "SWITCH appdb", "switch_dry_run": "SWITCH appdb DRY RUN",
        "switch_to_source": "SWITCH \"App\"\"Db\" TO source DRY RUN;", "reload": "RELOAD",
        "shutdown": "SHUTDOWN", "kill": "KILL appdb", "empty": "", "only_semicolon": " ; ",
        "two_commands": "SHOW HELP; SHOW VERSION", "unterminated_quote": 'KILL "appdb',
        "too_many_words": "SWITCH a TO target DRY RUN now please", "unknown": "SELECT 1",
        "long_word": "KILL " + "x" * 70, "long_quoted": 'KILL "' + "y" * 70 + '"',
        "switch_to_nowhere": "SWITCH appdb TO", "dry_no_run": "SWITCH appdb DRY",
        "fence": "FENCE appdb source", "unfence": 'unfence "App""Db" target;',
        "fence_no_side": "FENCE appdb", "fence_bad_side": "FENCE appdb sideways",
        "finish": "FINISH appdb", "finish_extra": "FINISH appdb now",
        "show_replication": "SHOW REPLICATION", "show_replication_db": "show replication appdb",
        "switch_force": "SWITCH appdb TO source FORCE",
        "check": "CHECK appdb", "check_to_source": 'check "App" TO source;',
        "check_bad_side": "CHECK appdb TO nowhere", "check_extra": "CHECK appdb TO target now",
        "verify": "VERIFY appdb", "verify_tables": 'VERIFY appdb public.orders, "My T", s."X.Y"',
        "verify_stop": "verify appdb STOP;", "verify_trailing_comma": "VERIFY appdb a,",
        "verify_no_db": "VERIFY", "verify_dotted_db": 'VERIFY "a.b" t',
        "verify_unterminated": 'VERIFY appdb "t', "verify_many": "VERIFY appdb " + ", ".join(f"t{i}" for i in range(40)),
        "show_verify": "SHOW VERIFY", "show_verify_db": "show verify appdb",
        "show_verify_diffs": "SHOW VERIFY DIFFS appdb", "show_verify_diffs_no_db": "SHOW VERIFY DIFFS",
        "switch_dry_run_force": "SWITCH appdb TO source DRY RUN FORCE",
        "switch_force_twice": "SWITCH appdb FORCE FORCE",
        "show_lists": "SHOW LISTS;", "show_lists_extra": "SHOW LISTS appdb",
        "show_shadow": "SHOW SHADOW", "show_shadow_db": "show shadow appdb;",
        "show_shadow_diffs": 'SHOW SHADOW DIFFS "AppDb"', "show_shadow_diffs_no_db": "SHOW SHADOW DIFFS",
        "show_shadow_quoted_diffs": 'SHOW SHADOW "DIFFS"', "show_shadow_extra": "SHOW SHADOW a b",
        "show_ddl": "SHOW DDL", "show_ddl_db": "show ddl appdb", "show_ddl_extra": "SHOW DDL a b",
        "show_fleet": "show fleet", "show_fleet_extra": "SHOW FLEET appdb",
    }
    for name, text in cmds.items():
        write(t, name, text)


def fuzz_conninfo():
    t = "fuzz_conninfo"
    cases = {
        "basic": "host=127.0.0.1 port=5432 dbname=app",
        "unix_socket": "host=/var/run/postgresql dbname=app user=app password='p w\\'d'",
        "hostaddr": "host=db.example hostaddr=10.0.0.1 port=6543",
        "sslmode_prefer": "host=h sslmode=prefer",
        "sslmode_require": "host=h sslmode=require",
        "multi_host": "host=a,b port=1,2",
        "bad_port": "host=h port=65536",
        "port_junk": "host=h port=12x",
        "uri": "postgresql://user:secret@localhost:5433/db?sslmode=disable",
        "uri_bad": "postgres://[::1",
        "unknown_key": "host=h nosuchkey=1",
        "empty": "",
        "quotes": "dbname='it''s' host = h",
    }
    for name, text in cases.items():
        write(t, name, text)


def fuzz_sql():
    t = "fuzz_sql"
    cases = {
        "select": "SELECT abalance FROM pgbench_accounts WHERE aid = 42;",
        "select_params": "select * from t where a = $2 and b = 'x' and c in (1, 2.5e3, 0x1F)",
        "strings": "SELECT E'a\\'b', U&'d\\0061', B'101', X'1F', N'n', $q$ $$ ; $q$, 'it''s'",
        "comments": "/* a /* nested */ comment */ select 1 -- the end\n; -- more",
        "multi": "select 1; alter table t add b int; ;; drop index i",
        "ddl_kinds": "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC "
                     "SELECT CASE WHEN true THEN 1 END; END; COMMENT ON TABLE t IS 'x'; "
                     "GRANT SELECT ON t TO bob; SECURITY LABEL ON TABLE t IS 'x'; "
                     "IMPORT FOREIGN SCHEMA s FROM SERVER f INTO p; REASSIGN OWNED BY a TO b",
        "select_into": "with x as (select 1) select * into t2 from x",
        "explain": "EXPLAIN (ANALYZE, BUFFERS) CREATE TABLE x AS SELECT 1",
        "do_dollar": "DO $$BEGIN IF true THEN CREATE INDEX i ON t(a); END IF; "
                     "EXECUTE format('ALTER TABLE %I ADD c int', 't'); END$$",
        "do_quoted": "do 'begin execute ''alter table '' || quote_ident(''t''); end'",
        "do_e_quoted": "DO E'BEGIN EXECUTE \\'DROP TABLE t\\'; END' LANGUAGE plpgsql",
        "do_nested": "DO $a$ BEGIN EXECUTE $b$ DO $c$ BEGIN EXECUTE 'CREATE TABLE z()'; END $c$ $b$; END $a$",
        "temp": "create temp table tmp1 (a int); drop table tmp1, pg_temp.x; select 1 into temp tmp2",
        "begin_ro": "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT 1 ORDER BY 1",
        "txn": "savepoint a; set local work_mem = '1MB'; rollback to a; commit",
        "writes": "select nextval('s'); select * from t for update; with d as (delete from t) select 1",
        "shape": "select now(), random(), ctid, oid::regclass from pg_class",
        "cut_string": "select 'never closed",
        "cut_dollar": "do $x$ begin create table",
        "operators": "select a@-b, c<->d, e=-1, f->>'g', h::int8[], i[1:2]",
        "nul": "select 1\0 drop table t",
    }
    for name, text in cases.items():
        write(t, name, text.encode().replace(b"\\0", b"\0"))


def fuzz_digest():
    t = "fuzz_digest"
    fields = lambda n: struct.pack("!H", len(n)) + b"".join(
        cstr(x) + struct.pack("!IHIHiH", 16400, i + 1, oid, 4, -1, 0) for i, (x, oid) in enumerate(n))
    answer = (msg("1") + msg("2") + msg("T", fields([("a", 23), ("b", 25)])) +
              data_row([b"1", b"x"]) + data_row([b"2", None]) + msg("C", cstr("SELECT 2")) + msg("Z", b"I"))
    error = (msg("E", error_fields([("S", "ERROR"), ("C", "42883"), ("M", "function f() does not exist")])) +
             msg("Z", b"I"))
    write(t, "answer", b"\x03" + answer)
    write(t, "two_requests", b"\x07" + answer + error)
    write(t, "params", b"\x01" + msg("t", struct.pack("!HII", 2, 23, 16500)) + msg("n") + msg("C", cstr("BEGIN")) +
          msg("s") + msg("I") + msg("N", error_fields([("S", "NOTICE"), ("M", "x")])) + msg("Z", b"T"))
    write(t, "bad_length", b"\x02" + answer[:10] + b"D\x00\x00\x00\x02")
    write(t, "short_row_description", b"\x05" + msg("T", struct.pack("!H", 3) + cstr("a")) + msg("Z", b"E"))
    write(t, "big_row", b"\x09" + data_row([b"v" * 3000]) + msg("Z", b"I"))


def fuzz_listen_sql():
    t = "fuzz_listen_sql"
    cases = {
        "listen": "LISTEN jobs",
        "unlisten_quoted": 'UNLISTEN "Mixed Case"; UNLISTEN plain',
        "unlisten_all": "unlisten *; DISCARD ALL",
        "notify": "NOTIFY jobs, 'payload; with semicolon'",
        "pg_notify": "SELECT 1, pg_notify('c', $$x;y$$) FROM t; -- LISTEN not\nLISTEN real",
        "dollar_quotes": "DO $body$ BEGIN UNLISTEN x; END $body$; LISTEN y",
        "comments": "/* UNLISTEN /* nested */ a */ LISTEN b; -- UNLISTEN c",
        "parens": "SELECT (1; UNLISTEN z",
        "long_name": "UNLISTEN " + "n" * 80,
        "utf8_cut": "UNLISTEN \"" + "\u00e9" * 40 + "\"",
        "unterminated": "UNLISTEN \"abc",
    }
    for name, text in cases.items():
        write(t, name, text)
    # notification bodies: pid, channel, payload
    write(t, "notification", b"\x00\x00\x30\x39chan\x00payload\x00")
    write(t, "notification_cut", b"\x00\x00\x30\x39chan")


if __name__ == "__main__":
    fuzz_pq()
    fuzz_startup_auth()
    fuzz_config()
    fuzz_admin_cmd()
    fuzz_conninfo()
    fuzz_sql()
    fuzz_digest()
    fuzz_listen_sql()
