/*
 * fuzz_startup_auth.c - fuzz target for logging in: SCRAM-SHA-256 on both
 * sides (proxy/auth/scram_server.c, scram_client.c, scram_msg.c), MD5
 * (md5.c), secrets (secret.c) and base64 (crypto.c), the auth_file reader
 * (proxy/auth/userlist.c), and the whole startup + authentication exchange
 * as proxy/client.c drives it from the wire.
 *
 * The first byte of the input chooses the mode (its value modulo 6), the
 * second holds flags for it; the rest is one or more pieces separated by
 * '\n' (SCRAM messages never contain one), so seeds stay readable:
 *
 *   0 SCRAM server: client-first '\n' client-final, against the RFC 7677
 *     secret (flag 1: the mock secret of an unknown user; flag 2: a random
 *     server nonce instead of the RFC's, so a seed can carry the RFC's
 *     exchange and reach the success path).
 *   1 SCRAM client: server-first '\n' server-final, the client holding the
 *     password "pencil" (flag 1: the ClientKey and secret instead, as when
 *     the proxy logs in with a key recovered from its client).
 *   2 SCRAM round trip: our client against our server with the password,
 *     salt and iteration count from the input; one message may be damaged
 *     in transit.  Undamaged, the exchange must succeed both ways and the
 *     recovered ClientKey must log in again.
 *   3 secrets: user '\n' secret '\n' salt '\n' response through
 *     auth_secret_kind, the MD5 functions, auth_scram_parse_secret and
 *     base64, with round-trip invariants.
 *   4 auth_file: the rest is a userlist.txt, loaded with userlist_load.
 *   5 the wire: the rest is what a client sends (startup-phase packets,
 *     then PasswordMessage / SASLInitialResponse / SASLResponse), handled
 *     as proxy/client.c does, against a fixed auth_file (flag 1: md5,
 *     else scram-sha-256; flag 2: the RFC server nonce).
 *
 * SCRAM's PBKDF2 costs about 0.5 ms per thousand iterations, so the client
 * side runs the password path only for small iteration counts (larger
 * ones go through the key path, which needs no derivation), and the round
 * trip uses at most 16 iterations.
 */
#include "tests/fuzz/fuzz.h"

#include "protocol/pq.h"
#include "proxy/auth/crypto.h"
#include "proxy/auth/md5.h"
#include "proxy/auth/scram_client.h"
#include "proxy/auth/scram_server.h"
#include "proxy/auth/secret.h"
#include "proxy/auth/userlist.h"

/* RFC 7677 section 3: user "user", password "pencil". */
#define RFC_PASSWORD     "pencil"
#define RFC_CLIENT_NONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SALT         "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_ITERATIONS   4096

/* Largest iteration count the client side derives keys for here (see the top). */
#define FUZZ_MAX_PBKDF2 64

/* Longest message of the login phase the wire mode accepts, as the proxy's limit. */
#define FUZZ_AUTH_MSG_MAX 8192

/* Set up once by init(). */
static struct auth_scram_secret rfc_secret;        /* "pencil" with the RFC salt */
static uint8_t rfc_client_key[AUTH_SCRAM_KEY_LEN]; /* its ClientKey */
static struct userlist *users;                     /* the wire mode's auth_file */

static void init(void)
{
	static bool done;
	uint8_t salt[AUTH_SCRAM_MAX_SALT_LEN];
	size_t salt_len;
	char *secret_str, text[1024], path[64], *err = NULL;
	char md5[36];
	struct auth_scram_server s;
	struct auth_scram_client c;
	char *first, *final;
	const char *e;
	bool wrong;

	if (done)
		return;
	done = true;
	FUZZ_CHECK(auth_b64_decode(RFC_SALT, strlen(RFC_SALT), salt, sizeof(salt), &salt_len));
	FUZZ_CHECK(auth_scram_secret_from_password(RFC_PASSWORD, salt, salt_len, RFC_ITERATIONS,
						   &rfc_secret));

	/* the ClientKey: what a successful exchange recovers */
	auth_scram_server_init(&s, &rfc_secret);
	FUZZ_CHECK(auth_scram_client_init_password(&c, RFC_PASSWORD));
	first = auth_scram_client_first(&c);
	FUZZ_CHECK(first != NULL);
	final = auth_scram_server_first(&s, first, strlen(first), &e);
	FUZZ_CHECK(final != NULL);
	free(first);
	first = auth_scram_client_final(&c, final, strlen(final), &e);
	FUZZ_CHECK(first != NULL);
	free(final);
	final = auth_scram_server_final(&s, first, strlen(first), &wrong, &e);
	FUZZ_CHECK(final != NULL);
	memcpy(rfc_client_key, auth_scram_server_client_key(&s), AUTH_SCRAM_KEY_LEN);
	free(first);
	free(final);
	auth_scram_server_free(&s);
	auth_scram_client_free(&c);

	/* the wire mode's users: plaintext, md5, SCRAM */
	secret_str = auth_scram_secret_to_string(&rfc_secret);
	FUZZ_CHECK(secret_str != NULL);
	auth_md5_stored("md5user", "secret", md5);
	snprintf(text, sizeof(text),
		 "; the wire mode's auth_file\n\"app\" \"app\"\n\"md5user\" \"%s\"\n"
		 "\"user\" \"%s\"\n\"q\"\"uote\" \"x\"\n",
		 md5, secret_str);
	free(secret_str);
	FUZZ_CHECK(fuzz_memfile(text, strlen(text), path));
	users = userlist_load(path, &err);
	FUZZ_CHECK(users != NULL && err == NULL && userlist_count(users) == 4);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	init();
	return 0;
}

/* A '\n'-separated piece as an exact-size block (NULL, 0 when absent). */
static uint8_t *piece(const uint8_t **p, const uint8_t *end, size_t *len)
{
	const uint8_t *s;

	if (!fuzz_next_piece(p, end, '\n', &s, len)) {
		*len = 0;
		return NULL;
	}
	return fuzz_dup_exact(s, *len);
}

/* A reply of our own must be printable ASCII with no ',' surprises: a C string. */
static void check_reply(const char *r)
{
	FUZZ_CHECK(r != NULL);
	for (const char *p = r; *p; p++)
		FUZZ_CHECK(*p >= 0x20 && *p < 0x7f);
}

/* ------------------------------------------------------------------ */
/* 0: the server side                                                 */
/* ------------------------------------------------------------------ */

/*
 * Runs client-first and client-final through a server exchange and checks
 * what it promises: one reply per step, a ClientKey only after a verified
 * proof, and that key really belongs to the secret.
 */
static void scram_server(const struct auth_scram_secret *secret, bool fixed_nonce,
			 const uint8_t *m1, size_t l1, const uint8_t *m2, size_t l2)
{
	struct auth_scram_server s;
	const char *err = NULL;
	char *r1, *r2;
	bool wrong = true;

	auth_scram_server_init(&s, secret);
	if (fixed_nonce)
		FUZZ_CHECK(auth_scram_server_set_nonce_for_tests(&s, RFC_SERVER_NONCE));
	/* out of order: the final before the first */
	FUZZ_CHECK(auth_scram_server_final(&s, "x", 1, &wrong, &err) == NULL);
	FUZZ_CHECK(err != NULL && !wrong && s.state == AUTH_SCRAM_SERVER_FAILED);
	auth_scram_server_free(&s);

	auth_scram_server_init(&s, secret);
	if (fixed_nonce)
		FUZZ_CHECK(auth_scram_server_set_nonce_for_tests(&s, RFC_SERVER_NONCE));
	r1 = auth_scram_server_first(&s, (const char *)m1, l1, &err);
	if (r1 == NULL) {
		FUZZ_CHECK(err != NULL && s.state == AUTH_SCRAM_SERVER_FAILED);
		FUZZ_CHECK(auth_scram_server_client_key(&s) == NULL);
		auth_scram_server_free(&s);
		return;
	}
	check_reply(r1);
	FUZZ_CHECK(err == NULL && s.state == AUTH_SCRAM_SERVER_FIRST_SENT);
	/* r=<the combined nonce, starting with the client's>,s=...,i=... */
	FUZZ_CHECK(strncmp(r1, "r=", 2) == 0);
	FUZZ_CHECK(s.nonce != NULL && strlen(s.nonce) == s.nonce_len);
	FUZZ_CHECK(strncmp(r1 + 2, s.nonce, s.nonce_len) == 0 && r1[2 + s.nonce_len] == ',');
	free(r1);
	r2 = auth_scram_server_final(&s, (const char *)m2, l2, &wrong, &err);
	if (r2 == NULL) {
		FUZZ_CHECK(err != NULL && s.state == AUTH_SCRAM_SERVER_FAILED);
		FUZZ_CHECK(auth_scram_server_client_key(&s) == NULL);
	} else {
		const uint8_t *key = auth_scram_server_client_key(&s);
		struct auth_scram_client c;

		check_reply(r2);
		FUZZ_CHECK(!wrong && err == NULL && s.state == AUTH_SCRAM_SERVER_DONE);
		FUZZ_CHECK(strncmp(r2, "v=", 2) == 0);
		/* the key must be the secret's: init_keys checks SHA256(key) == StoredKey */
		FUZZ_CHECK(key != NULL);
		FUZZ_CHECK(auth_scram_client_init_keys(&c, key, secret));
		auth_scram_client_free(&c);
		free(r2);
	}
	auth_scram_server_free(&s);
}

static void mode_server(uint8_t flags, const uint8_t *p, const uint8_t *end)
{
	struct auth_scram_secret mock;
	size_t l1, l2;
	uint8_t *m1 = piece(&p, end, &l1), *m2 = piece(&p, end, &l2);

	/* an absent message is an empty one, which the server must refuse */
	if (m1 == NULL)
		m1 = fuzz_dup_exact("", 0);
	if (m2 == NULL)
		m2 = fuzz_dup_exact("", 0);
	if (flags & 1) {
		FUZZ_CHECK(auth_scram_mock_secret("nobody", &mock));
		scram_server(&mock, !(flags & 2), m1, l1, m2, l2);
	} else {
		scram_server(&rfc_secret, !(flags & 2), m1, l1, m2, l2);
	}
	free(m1);
	free(m2);
}

/* ------------------------------------------------------------------ */
/* 1: the client side                                                 */
/* ------------------------------------------------------------------ */

/* The i= value of a server-first message, as a number (saturating); 0 when absent. */
static long peek_iterations(const uint8_t *m, size_t len)
{
	long v = 0;

	for (size_t i = 0; i + 2 <= len; i++) {
		if (m[i] == 'i' && m[i + 1] == '=' && (i == 0 || m[i - 1] == ',')) {
			for (i += 2; i < len && m[i] >= '0' && m[i] <= '9'; i++)
				v = v > 100000000 ? v : v * 10 + (m[i] - '0');
			return v;
		}
	}
	return 0;
}

static void mode_client(uint8_t flags, const uint8_t *p, const uint8_t *end)
{
	struct auth_scram_client c;
	size_t l1, l2;
	uint8_t *m1 = piece(&p, end, &l1), *m2 = piece(&p, end, &l2);
	bool keys = (flags & 1) || peek_iterations(m1, l1) > FUZZ_MAX_PBKDF2;
	const char *err = NULL;
	char *first, *final;

	if (keys)
		FUZZ_CHECK(auth_scram_client_init_keys(&c, rfc_client_key, &rfc_secret));
	else
		FUZZ_CHECK(auth_scram_client_init_password(&c, RFC_PASSWORD));
	FUZZ_CHECK(auth_scram_client_set_nonce_for_tests(&c, RFC_CLIENT_NONCE, "user"));
	/* out of order: the final before the first */
	FUZZ_CHECK(auth_scram_client_final(&c, "r=x", 3, &err) == NULL && err != NULL);
	auth_scram_client_free(&c);

	if (keys)
		FUZZ_CHECK(auth_scram_client_init_keys(&c, rfc_client_key, &rfc_secret));
	else
		FUZZ_CHECK(auth_scram_client_init_password(&c, RFC_PASSWORD));
	FUZZ_CHECK(auth_scram_client_set_nonce_for_tests(&c, RFC_CLIENT_NONCE, "user"));
	first = auth_scram_client_first(&c);
	FUZZ_CHECK(first != NULL && strcmp(first, "n,,n=user,r=" RFC_CLIENT_NONCE) == 0);
	free(first);
	FUZZ_CHECK(auth_scram_client_first(&c) == NULL); /* only once */
	FUZZ_CHECK(c.state == AUTH_SCRAM_CLIENT_FIRST_SENT);

	final = auth_scram_client_final(&c, m1 ? (const char *)m1 : "", l1, &err);
	if (final == NULL) {
		FUZZ_CHECK(err != NULL && c.state == AUTH_SCRAM_CLIENT_FAILED);
	} else {
		check_reply(final);
		FUZZ_CHECK(err == NULL && c.state == AUTH_SCRAM_CLIENT_FINAL_SENT);
		FUZZ_CHECK(strncmp(final, "c=biws,r=" RFC_CLIENT_NONCE,
				   9 + strlen(RFC_CLIENT_NONCE)) == 0);
		free(final);
		if (auth_scram_client_verify(&c, m2 ? (const char *)m2 : "", l2, &err)) {
			FUZZ_CHECK(err == NULL && c.state == AUTH_SCRAM_CLIENT_DONE);
		} else {
			FUZZ_CHECK(err != NULL && c.state == AUTH_SCRAM_CLIENT_FAILED);
		}
		/* never twice */
		FUZZ_CHECK(!auth_scram_client_verify(&c, m2 ? (const char *)m2 : "", l2, &err));
	}
	auth_scram_client_free(&c);
	free(m1);
	free(m2);
}

/* ------------------------------------------------------------------ */
/* 2: round trip                                                      */
/* ------------------------------------------------------------------ */

/*
 * Damages message 'which' (1..4 = client-first, server-first, client-final,
 * server-final) of a round trip: flips bits at 'pos', or cuts it there when
 * 'x' is 0.  Returns a new exact-size block and sets *len.
 */
static uint8_t *damage(const char *msg, int which, int this_one, uint8_t pos, uint8_t x, size_t *len)
{
	size_t n = strlen(msg);
	uint8_t *d;

	if (which != this_one || n == 0) {
		*len = n;
		return fuzz_dup_exact(msg, n);
	}
	if (x == 0) {
		*len = pos % n;
		return fuzz_dup_exact(msg, *len);
	}
	d = fuzz_dup_exact(msg, n);
	d[pos % n] ^= x;
	*len = n;
	return d;
}

static void mode_round_trip(uint8_t flags, const uint8_t *p, const uint8_t *end)
{
	struct auth_scram_secret secret, again;
	struct auth_scram_server s;
	struct auth_scram_client c;
	uint8_t iter, pos, x, *pw_raw, *salt, *m;
	size_t pw_len, salt_len, mlen;
	char *password, *str, *msg[4] = {NULL, NULL, NULL, NULL};
	const char *err = NULL;
	int which = flags % 5, failed_at = 0; /* 1..4: the step that refused, 0 = none */
	bool wrong = false;
	uint8_t key[AUTH_SCRAM_KEY_LEN];

	if (end - p < 3)
		return;
	iter = p[0];
	pos = p[1];
	x = p[2];
	p += 3;
	pw_raw = piece(&p, end, &pw_len);
	salt = piece(&p, end, &salt_len);
	password = fuzz_strndup(pw_raw ? pw_raw : (const uint8_t *)"", pw_len);
	if (salt_len == 0 || salt_len > AUTH_SCRAM_MAX_SALT_LEN) {
		free(salt);
		salt = fuzz_dup_exact("salt", 4);
		salt_len = 4;
	}

	/* the secret, through its text form and back */
	FUZZ_CHECK(
		auth_scram_secret_from_password(password, salt, salt_len, 1 + iter % 16, &secret));
	str = auth_scram_secret_to_string(&secret);
	FUZZ_CHECK(str != NULL);
	FUZZ_CHECK(auth_secret_kind(str) == AUTH_SECRET_SCRAM);
	FUZZ_CHECK(auth_scram_parse_secret(str, &again));
	FUZZ_CHECK(memcmp(&secret, &again, sizeof(secret)) == 0);
	free(str);

	/* client-first, server-first, client-final, server-final; one maybe damaged */
	auth_scram_server_init(&s, &secret);
	FUZZ_CHECK(auth_scram_client_init_password(&c, password));
	msg[0] = auth_scram_client_first(&c);
	FUZZ_CHECK(msg[0] != NULL);
	m = damage(msg[0], which, 1, pos, x, &mlen);
	msg[1] = auth_scram_server_first(&s, (const char *)m, mlen, &err);
	free(m);
	if (msg[1] == NULL) {
		failed_at = 1;
		goto out;
	}
	m = damage(msg[1], which, 2, pos, x, &mlen);
	msg[2] = auth_scram_client_final(&c, (const char *)m, mlen, &err);
	free(m);
	if (msg[2] == NULL) {
		failed_at = 2;
		goto out;
	}
	m = damage(msg[2], which, 3, pos, x, &mlen);
	msg[3] = auth_scram_server_final(&s, (const char *)m, mlen, &wrong, &err);
	free(m);
	if (msg[3] == NULL) {
		failed_at = 3;
		goto out;
	}
	m = damage(msg[3], which, 4, pos, x, &mlen);
	if (!auth_scram_client_verify(&c, (const char *)m, mlen, &err))
		failed_at = 4;
	free(m);
out:
	/*
	 * Integrity: every message is covered by the proof or the signature, so
	 * an undamaged exchange succeeds and a damaged one fails, at the damaged
	 * message or after it, never before.
	 */
	FUZZ_CHECK((which == 0) == (failed_at == 0));
	FUZZ_CHECK(failed_at == 0 || failed_at >= which);
	for (int i = 0; i < 4; i++)
		free(msg[i]);
	if (failed_at == 0) {
		/* the ClientKey the server recovered is the client's */
		FUZZ_CHECK(memcmp(auth_scram_server_client_key(&s), c.client_key,
				  AUTH_SCRAM_KEY_LEN) == 0);
		memcpy(key, c.client_key, sizeof(key));
		auth_scram_server_free(&s);
		auth_scram_client_free(&c);

		/* and logs in again, as the proxy does to a backend with a SCRAM secret */
		auth_scram_server_init(&s, &secret);
		FUZZ_CHECK(auth_scram_client_init_keys(&c, key, &secret));
		msg[0] = auth_scram_client_first(&c);
		FUZZ_CHECK(msg[0] != NULL);
		msg[1] = auth_scram_server_first(&s, msg[0], strlen(msg[0]), &err);
		FUZZ_CHECK(msg[1] != NULL);
		msg[2] = auth_scram_client_final(&c, msg[1], strlen(msg[1]), &err);
		FUZZ_CHECK(msg[2] != NULL);
		msg[3] = auth_scram_server_final(&s, msg[2], strlen(msg[2]), &wrong, &err);
		FUZZ_CHECK(msg[3] != NULL);
		FUZZ_CHECK(auth_scram_client_verify(&c, msg[3], strlen(msg[3]), &err));
		for (int i = 0; i < 4; i++)
			free(msg[i]);
	}
	auth_scram_server_free(&s);
	auth_scram_client_free(&c);
	free(password);
	free(pw_raw);
	free(salt);
}

/* ------------------------------------------------------------------ */
/* 3: secrets, MD5, base64                                            */
/* ------------------------------------------------------------------ */

/* Canonical base64: what decodes must encode back to the same text, and vice versa. */
static void check_b64(const uint8_t *s, size_t len)
{
	uint8_t out[512];
	char enc[AUTH_B64_ENCODED_LEN(512) + 1];
	size_t n;

	if (len > 600)
		return;
	if (auth_b64_decode((const char *)s, len, out, sizeof(out), &n)) {
		FUZZ_CHECK(n <= sizeof(out) && n == len / 4 * 3 - (len && s[len - 1] == '=') -
							       (len > 1 && s[len - 2] == '='));
		FUZZ_CHECK(auth_b64_encode(out, n, enc) == len);
		FUZZ_CHECK(memcmp(enc, s, len) == 0);
	}
	/* a destination too small is refused, never overrun (ASan watches 'small') */
	{
		uint8_t *small = malloc(3);

		FUZZ_CHECK(small != NULL);
		if (auth_b64_decode((const char *)s, len, small, 3, &n))
			FUZZ_CHECK(n <= 3);
		free(small);
	}
	if (len <= sizeof(out)) {
		size_t e = auth_b64_encode(s, len, enc);

		FUZZ_CHECK(e == AUTH_B64_ENCODED_LEN(len) && enc[e] == '\0');
		FUZZ_CHECK(auth_b64_decode(enc, e, out, sizeof(out), &n) && n == len);
		FUZZ_CHECK(len == 0 || memcmp(out, s, len) == 0);
	}
}

static void mode_secrets(const uint8_t *p, const uint8_t *end)
{
	size_t lu, ls, lsalt, lr;
	uint8_t *u = piece(&p, end, &lu), *s = piece(&p, end, &ls);
	uint8_t *salt_raw = piece(&p, end, &lsalt), *r = piece(&p, end, &lr);
	char *user = fuzz_strndup(u ? u : (const uint8_t *)"", lu);
	char *secret = fuzz_strndup(s ? s : (const uint8_t *)"", ls);
	char *resp = fuzz_strndup(r ? r : (const uint8_t *)"", lr);
	uint8_t salt[4] = {0, 0, 0, 0};
	char out[36], stored[36], out2[36];
	struct auth_scram_secret sec, sec2;
	enum auth_secret_kind kind = auth_secret_kind(secret);

	memcpy(salt, salt_raw ? salt_raw : (const uint8_t *)"", lsalt < 4 ? lsalt : 4);

	/* md5: a response we compute must verify; the fuzzer's may or may not */
	if (auth_md5_response(user, secret, salt, out)) {
		FUZZ_CHECK(kind != AUTH_SECRET_SCRAM);
		FUZZ_CHECK(strlen(out) == 35 && strncmp(out, "md5", 3) == 0);
		FUZZ_CHECK(auth_md5_verify(user, secret, salt, out));
		if (auth_md5_verify(user, secret, salt, resp))
			FUZZ_CHECK(strcmp(resp, out) == 0);
	} else {
		FUZZ_CHECK(kind == AUTH_SECRET_SCRAM);
		FUZZ_CHECK(!auth_md5_verify(user, secret, salt, resp));
	}
	/* a plaintext password and its md5 hash answer a challenge alike */
	if (kind == AUTH_SECRET_PLAIN) {
		auth_md5_stored(user, secret, stored);
		FUZZ_CHECK(auth_secret_kind(stored) == AUTH_SECRET_MD5);
		FUZZ_CHECK(auth_md5_response(user, stored, salt, out2));
		FUZZ_CHECK(strcmp(out, out2) == 0);
	}
	/* SCRAM secrets: what parses prints back to a secret that parses the same */
	if (auth_scram_parse_secret(secret, &sec)) {
		char *str = auth_scram_secret_to_string(&sec);

		FUZZ_CHECK(kind == AUTH_SECRET_SCRAM);
		FUZZ_CHECK(sec.iterations > 0 && sec.salt_len > 0 &&
			   sec.salt_len <= AUTH_SCRAM_MAX_SALT_LEN);
		FUZZ_CHECK(str != NULL && auth_scram_parse_secret(str, &sec2));
		FUZZ_CHECK(memcmp(&sec, &sec2, sizeof(sec)) == 0);
		free(str);
	} else {
		FUZZ_CHECK(kind != AUTH_SECRET_SCRAM);
	}
	/* the mock secret is stable for a user and never empty */
	if (lu < 64) {
		FUZZ_CHECK(auth_scram_mock_secret(user, &sec));
		FUZZ_CHECK(auth_scram_mock_secret(user, &sec2));
		FUZZ_CHECK(sec.salt_len == 16 && sec2.salt_len == 16 &&
			   memcmp(sec.salt, sec2.salt, 16) == 0);
	}
	check_b64(s ? s : (const uint8_t *)"", ls);
	check_b64(r ? r : (const uint8_t *)"", lr);
	free(u);
	free(s);
	free(salt_raw);
	free(r);
	free(user);
	free(secret);
	free(resp);
}

/* ------------------------------------------------------------------ */
/* 4: auth_file                                                       */
/* ------------------------------------------------------------------ */

/* The file with CRLF line ends, which must read the same as LF ones. */
static struct userlist *load_crlf(const uint8_t *p, const uint8_t *end)
{
	size_t len = (size_t)(end - p), o = 0;
	char *crlf = malloc(2 * len + 1), path[64], *err = NULL;
	struct userlist *ul = NULL;

	FUZZ_CHECK(crlf != NULL);
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\n')
			crlf[o++] = '\r';
		crlf[o++] = (char)p[i];
	}
	if (fuzz_memfile(crlf, o, path)) {
		ul = userlist_load(path, &err);
		free(err);
	}
	free(crlf);
	return ul;
}

/* Both NULL, or equal strings. */
static bool str_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void mode_userlist(const uint8_t *p, const uint8_t *end)
{
	char path[64], *err = NULL;
	struct userlist *ul, *ul2;
	size_t len = (size_t)(end - p);

	if (!fuzz_memfile(p, len, path))
		return;
	ul = userlist_load(path, &err);
	ul2 = load_crlf(p, end);
	FUZZ_CHECK((ul == NULL) == (ul2 == NULL));
	FUZZ_CHECK(userlist_count(ul) == userlist_count(ul2));
	if (ul == NULL) {
		FUZZ_CHECK(err != NULL && strncmp(err, path, strlen(path)) == 0);
		free(err);
		return;
	}
	FUZZ_CHECK(err == NULL);
	FUZZ_CHECK(userlist_count(ul) <= len / 5 + 1); /* each entry takes at least "a" "" */
	FUZZ_CHECK(userlist_secret(ul, NULL) == NULL);
	FUZZ_CHECK(userlist_secret(ul, "") == NULL); /* empty names are refused */
	/* every user whose line starts with a plain quoted name is found */
	for (const uint8_t *l = p; l < end;) {
		const uint8_t *nl = memchr(l, '\n', (size_t)(end - l));
		const uint8_t *le = nl ? nl : end;

		if (le - l > 2 && l[0] == '"') {
			const uint8_t *q = memchr(l + 1, '"', (size_t)(le - l - 1));

			if (q && q > l + 1 && q + 1 < le && q[1] != '"' &&
			    !memchr(l + 1, '\0', (size_t)(q - l - 1))) {
				char *name = fuzz_strndup(l + 1, (size_t)(q - l - 1));
				const uint8_t *r = q + 1;

				while (r < le && (*r == ' ' || *r == '\t'))
					r++;
				/* a second quoted string follows on this line: an entry */
				if (r < le && *r == '"' && memchr(r + 1, '"', (size_t)(le - r - 1)))
					FUZZ_CHECK(userlist_secret(ul, name) != NULL);
				/* the CRLF file knows the same users with the same secrets */
				FUZZ_CHECK(str_same(userlist_secret(ul, name),
						    userlist_secret(ul2, name)));
				free(name);
			}
		}
		l = le + 1;
	}
	userlist_free(ul);
	userlist_free(ul2);
}

/* ------------------------------------------------------------------ */
/* 5: the wire                                                        */
/* ------------------------------------------------------------------ */

/* A client's bytes, consumed message by message as proxy/client.c does. */
struct wire {
	const uint8_t *p;   /* next unread byte */
	const uint8_t *end; /* end of what the client sent */
};

/*
 * The next startup-phase packet as an exact-size block, or NULL when the
 * bytes run out or the length is refused.
 */
static uint8_t *wire_startup(struct wire *w, size_t *len)
{
	uint32_t l;
	size_t avail = (size_t)(w->end - w->p);

	if (pq_read_startup_len(w->p, avail, &l) != PQ_OK || avail < l)
		return NULL;
	*len = l;
	w->p += l;
	return fuzz_dup_exact(w->p - l, l);
}

/* The body of the next 'p' message as an exact-size block, or NULL. */
static uint8_t *wire_password(struct wire *w, size_t *len)
{
	uint8_t type;
	uint32_t l;
	size_t avail = (size_t)(w->end - w->p);

	if (pq_read_header(w->p, avail, &type, &l, FUZZ_AUTH_MSG_MAX) != PQ_OK || type != 'p' ||
	    avail < (size_t)l + 1)
		return NULL;
	*len = l - 4;
	w->p += (size_t)l + 1;
	return fuzz_dup_exact(w->p - *len, *len);
}

static void mode_wire(uint8_t flags, const uint8_t *p, const uint8_t *end)
{
	struct wire w = {p, end};
	struct pq_startup su;
	struct pq_cursor cur;
	const char *name, *value, *secret, *err = NULL;
	char *user = NULL;
	uint8_t *pkt, *body;
	size_t len, blen;
	bool ssl_done = false, gss_done = false;

	/* startup phase: SSLRequest and GSSENCRequest are refused once each */
	for (;;) {
		enum pq_status st;

		pkt = wire_startup(&w, &len);
		if (pkt == NULL)
			return;
		st = pq_parse_startup(pkt, len, &su);
		if (st != PQ_OK) {
			free(pkt);
			return;
		}
		if (su.code == PQ_SSL_REQUEST_CODE || su.code == PQ_GSSENC_REQUEST_CODE) {
			bool *done = su.code == PQ_SSL_REQUEST_CODE ? &ssl_done : &gss_done;

			free(pkt);
			if (*done)
				return;
			*done = true;
			continue;
		}
		if (su.code == PQ_CANCEL_REQUEST_CODE) {
			free(pkt);
			return;
		}
		break;
	}
	pq_cursor_init(&cur, su.params, su.params_len);
	while (pq_startup_next(&cur, &name, &value)) {
		if (strcmp(name, "user") == 0) {
			free(user);
			user = strdup(value);
			FUZZ_CHECK(user != NULL);
		}
	}
	FUZZ_CHECK(pq_cursor_done(&cur));
	free(pkt);
	if (user == NULL || user[0] == '\0') {
		free(user);
		return;
	}
	secret = userlist_secret(users, user);

	if ((flags & 1) && (secret == NULL || auth_secret_kind(secret) != AUTH_SECRET_SCRAM)) {
		/* md5: one PasswordMessage answering the salt */
		static const uint8_t salt[4] = {0x01, 0x02, 0x03, 0x04};
		const char *resp;

		body = wire_password(&w, &blen);
		if (body != NULL) {
			pq_cursor_init(&cur, body, blen);
			resp = pq_get_str(&cur);
			if (pq_cursor_done(&cur) && secret != NULL &&
			    auth_md5_verify(user, secret, salt, resp)) {
				char want[36];

				FUZZ_CHECK(auth_md5_response(user, secret, salt, want));
				FUZZ_CHECK(strcmp(want, resp) == 0);
			}
			free(body);
		}
	} else {
		/* scram-sha-256: SASLInitialResponse, then SASLResponse */
		struct auth_scram_secret sec;
		struct auth_scram_server s;
		char *reply;
		bool ok = false, wrong;

		if (secret && auth_secret_kind(secret) == AUTH_SECRET_SCRAM) {
			ok = auth_scram_parse_secret(secret, &sec);
			FUZZ_CHECK(ok);
		} else if (secret && auth_secret_kind(secret) == AUTH_SECRET_PLAIN) {
			static const uint8_t salt[16] = "fuzz salt 16 by";

			ok = auth_scram_secret_from_password(secret, salt, sizeof(salt), 16, &sec);
			FUZZ_CHECK(ok);
		}
		if (!ok)
			FUZZ_CHECK(auth_scram_mock_secret(user, &sec));
		auth_scram_server_init(&s, &sec);
		if (flags & 2)
			FUZZ_CHECK(auth_scram_server_set_nonce_for_tests(&s, RFC_SERVER_NONCE));

		body = wire_password(&w, &blen);
		if (body != NULL) {
			const char *mech;
			int32_t dlen;
			const uint8_t *data;

			pq_cursor_init(&cur, body, blen);
			mech = pq_get_str(&cur);
			dlen = pq_get_i32(&cur);
			if (!cur.failed && dlen >= 0 && (size_t)dlen == pq_cursor_left(&cur) &&
			    strcmp(mech, "SCRAM-SHA-256") == 0) {
				data = pq_get_bytes(&cur, (size_t)dlen);
				FUZZ_CHECK(data != NULL && pq_cursor_done(&cur));
				reply = auth_scram_server_first(&s, (const char *)data,
								(size_t)dlen, &err);
				free(body);
				body = NULL;
				if (reply != NULL) {
					free(reply);
					body = wire_password(&w, &blen);
					if (body != NULL) {
						pq_cursor_init(&cur, body, blen);
						data = pq_get_bytes(&cur, blen);
						FUZZ_CHECK(data != NULL);
						reply = auth_scram_server_final(&s,
										(const char *)data,
										blen, &wrong, &err);
						if (reply != NULL) {
							FUZZ_CHECK(
								ok); /* never with the mock secret */
							FUZZ_CHECK(auth_scram_server_client_key(
									   &s) != NULL);
							free(reply);
						}
					}
				}
			}
			free(body);
		}
		auth_scram_server_free(&s);
	}
	free(user);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *end = data + size;

	init();
	if (size < 2)
		return 0;
	switch (data[0] % 6) {
	case 0:
		mode_server(data[1], data + 2, end);
		break;
	case 1:
		mode_client(data[1], data + 2, end);
		break;
	case 2:
		mode_round_trip(data[1], data + 2, end);
		break;
	case 3:
		mode_secrets(data + 2, end);
		break;
	case 4:
		mode_userlist(data + 2, end);
		break;
	default:
		mode_wire(data[1], data + 2, end);
		break;
	}
	return 0;
}
