/*
 * auth_crypto.c - userlist secrets, MD5 challenge/response and both ends of
 * SCRAM-SHA-256 (RFC 5802, RFC 7677), on OpenSSL 3.
 *
 * The SCRAM messages are parsed with a small cursor over (pointer, end) so
 * that nothing relies on a terminator: SASL data comes from untrusted peers
 * with an explicit length.  Message formats follow PostgreSQL's own
 * implementation (auth-scram.c on the server, fe-auth-scram.c in libpq):
 * where the RFC is loose and PostgreSQL strict, we are strict too.
 *
 * Secrets are compared with CRYPTO_memcmp and wiped with OPENSSL_cleanse once
 * they are no longer needed.
 */
#include "proxy/auth/auth_crypto.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define SCRAM_SECRET_PREFIX "SCRAM-SHA-256$"

/* MD5 secrets and responses: "md5" + 32 hex digits. */
#define MD5_HEX_LEN    32
#define MD5_PASSWD_LEN (3 + MD5_HEX_LEN)

/* Error strings handed to callers; static so they can be sent as they are. */
static const char err_malformed[] = "malformed SCRAM message";
static const char err_cbind_unsupported[] = "SCRAM channel binding is not supported";
static const char err_authzid[] = "SCRAM authorization identity is not supported";
static const char err_mext[] = "SCRAM mandatory extensions are not supported";
static const char err_cbind_mismatch[] = "SCRAM channel binding check failed";
static const char err_cbind_type[] =
	"unsupported SCRAM channel-binding type (expected tls-server-end-point)";
static const char err_cbind_unselected[] =
	"malformed SCRAM message (channel binding data sent without selecting SCRAM-SHA-256-PLUS)";
static const char err_cbind_missing[] =
	"malformed SCRAM message (SCRAM-SHA-256-PLUS selected but no channel binding data sent)";
static const char err_cbind_downgrade[] =
	"SCRAM channel binding negotiation error: the client supports channel binding but thinks the server does not, and this server does";
static const char err_nonce_mismatch[] = "malformed SCRAM message (nonce mismatch)";
static const char err_wrong_password[] = "password authentication failed";
static const char err_order[] = "SCRAM exchange out of order";
static const char err_oom[] = "out of memory";
static const char err_random[] = "could not generate SCRAM nonce";
static const char err_crypto[] = "could not compute SCRAM keys";
static const char err_server_first[] = "malformed SCRAM message from server (server-first-message)";
static const char err_server_nonce[] = "invalid SCRAM response from server (nonce mismatch)";
static const char err_server_salt[] = "malformed SCRAM message from server (invalid salt)";
static const char err_server_iter[] =
	"malformed SCRAM message from server (invalid iteration count)";
static const char err_secret_mismatch[] =
	"the SCRAM secret in auth_file does not match the server's (different salt or iterations)";
static const char err_server_final[] = "malformed SCRAM message from server (server-final-message)";
static const char err_server_sig[] = "incorrect server signature in SCRAM exchange";

/* Sets *err when the caller asked for it (err may be NULL). */
static void set_err(const char **err, const char *msg)
{
	if (err)
		*err = msg;
}

bool auth_random_bytes(void *buf, size_t len)
{
	unsigned char *p = buf;

	/* RAND_bytes takes an int length: feed it in chunks. */
	while (len > 0) {
		int chunk = len > INT_MAX ? INT_MAX : (int)len;

		if (RAND_bytes(p, chunk) != 1)
			return false;
		p += chunk;
		len -= (size_t)chunk;
	}
	return true;
}

/* ---------------------------------------------------------------- base64 */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of one base64 character, or -1 when it is not in the alphabet. */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

size_t auth_b64_encode(const uint8_t *src, size_t len, char *dst)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)src[i] << 16;
		size_t n = len - i;

		if (n > 1)
			v |= (uint32_t)src[i + 1] << 8;
		if (n > 2)
			v |= src[i + 2];
		dst[o++] = b64_alphabet[(v >> 18) & 63];
		dst[o++] = b64_alphabet[(v >> 12) & 63];
		dst[o++] = n > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
		dst[o++] = n > 2 ? b64_alphabet[v & 63] : '=';
	}
	dst[o] = '\0';
	return o;
}

bool auth_b64_decode(const char *src, size_t len, uint8_t *dst, size_t dst_cap, size_t *out_len)
{
	size_t pad = 0, need, o = 0;

	if (len % 4 != 0)
		return false;
	if (len == 0) {
		*out_len = 0;
		return true;
	}
	if (src[len - 1] == '=')
		pad = src[len - 2] == '=' ? 2 : 1;
	need = len / 4 * 3 - pad;
	if (need > dst_cap)
		return false;

	for (size_t i = 0; i < len; i += 4) {
		/* Only the last group may hold padding, and only at its end. */
		size_t valid = (i + 4 == len) ? 4 - pad : 4;
		int v[4] = {0, 0, 0, 0};

		for (size_t k = 0; k < valid; k++) {
			v[k] = b64_value((unsigned char)src[i + k]);
			if (v[k] < 0)
				return false;
		}
		dst[o++] = (uint8_t)((v[0] << 2) | (v[1] >> 4));
		if (valid == 2) {
			/* Unused low bits must be zero: one encoding per byte string. */
			if (v[1] & 0x0f)
				return false;
			break;
		}
		dst[o++] = (uint8_t)(((v[1] & 0x0f) << 4) | (v[2] >> 2));
		if (valid == 3) {
			if (v[2] & 0x03)
				return false;
			break;
		}
		dst[o++] = (uint8_t)(((v[2] & 0x03) << 6) | v[3]);
	}
	*out_len = o;
	return true;
}

/* ------------------------------------------------------------ primitives */

/* out = SHA-256(data). */
static bool sha256(const void *data, size_t len, uint8_t out[AUTH_SCRAM_KEY_LEN])
{
	unsigned int out_len = 0;

	return EVP_Digest(data, len, out, &out_len, EVP_sha256(), NULL) == 1 &&
	       out_len == AUTH_SCRAM_KEY_LEN;
}

/* out = HMAC-SHA-256(key, data). */
static bool hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len,
			uint8_t out[AUTH_SCRAM_KEY_LEN])
{
	unsigned int out_len = 0;

	if (key_len > INT_MAX)
		return false;
	return HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &out_len) != NULL &&
	       out_len == AUTH_SCRAM_KEY_LEN;
}

/*
 * The SCRAM key schedule from a password: ClientKey, StoredKey, ServerKey
 * (any of the outputs may be NULL when not wanted).
 */
static bool scram_derive_keys(const char *password, const uint8_t *salt, size_t salt_len,
			      int iterations, uint8_t client_key[AUTH_SCRAM_KEY_LEN],
			      uint8_t stored_key[AUTH_SCRAM_KEY_LEN],
			      uint8_t server_key[AUTH_SCRAM_KEY_LEN])
{
	uint8_t salted[AUTH_SCRAM_KEY_LEN], ck[AUTH_SCRAM_KEY_LEN], sk[AUTH_SCRAM_KEY_LEN];
	size_t pw_len = strlen(password);
	bool ok;

	if (pw_len > INT_MAX || salt_len == 0 || salt_len > AUTH_SCRAM_MAX_SALT_LEN ||
	    iterations <= 0 || iterations > AUTH_SCRAM_MAX_ITERATIONS)
		return false;
	ok = PKCS5_PBKDF2_HMAC(password, (int)pw_len, salt, (int)salt_len, iterations, EVP_sha256(),
			       AUTH_SCRAM_KEY_LEN, salted) == 1 &&
	     hmac_sha256(salted, sizeof(salted), "Client Key", 10, ck) &&
	     hmac_sha256(salted, sizeof(salted), "Server Key", 10, sk);
	if (ok && stored_key)
		ok = sha256(ck, sizeof(ck), stored_key);
	if (ok && client_key)
		memcpy(client_key, ck, sizeof(ck));
	if (ok && server_key)
		memcpy(server_key, sk, sizeof(sk));
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(ck, sizeof(ck));
	OPENSSL_cleanse(sk, sizeof(sk));
	return ok;
}

/* --------------------------------------------------------------- secrets */

/*
 * Parses a decimal iteration count: digits only, 1..INT_MAX.  Signs, spaces
 * and empty strings are refused (strtol would take them).
 */
static bool parse_positive_int(const char *s, size_t len, int *out)
{
	long long v = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
		if (v > INT_MAX)
			return false;
	}
	if (v <= 0)
		return false;
	*out = (int)v;
	return true;
}

bool auth_scram_parse_secret(const char *secret, struct auth_scram_secret *out)
{
	struct auth_scram_secret tmp;
	const char *iter, *salt, *stored, *server, *colon1, *dollar, *colon2;
	size_t n;
	bool ok = false;

	if (strncmp(secret, SCRAM_SECRET_PREFIX, strlen(SCRAM_SECRET_PREFIX)) != 0)
		return false;
	iter = secret + strlen(SCRAM_SECRET_PREFIX);
	if (!(colon1 = strchr(iter, ':')))
		return false;
	salt = colon1 + 1;
	if (!(dollar = strchr(salt, '$')))
		return false;
	stored = dollar + 1;
	if (!(colon2 = strchr(stored, ':')))
		return false;
	server = colon2 + 1;

	memset(&tmp, 0, sizeof(tmp));
	if (!parse_positive_int(iter, (size_t)(colon1 - iter), &tmp.iterations))
		goto out;
	if (!auth_b64_decode(salt, (size_t)(dollar - salt), tmp.salt, sizeof(tmp.salt),
			     &tmp.salt_len) ||
	    tmp.salt_len == 0)
		goto out;
	if (!auth_b64_decode(stored, (size_t)(colon2 - stored), tmp.stored_key,
			     sizeof(tmp.stored_key), &n) ||
	    n != AUTH_SCRAM_KEY_LEN)
		goto out;
	/* The ServerKey runs to the end: a stray ':' or '$' fails the decode. */
	if (!auth_b64_decode(server, strlen(server), tmp.server_key, sizeof(tmp.server_key), &n) ||
	    n != AUTH_SCRAM_KEY_LEN)
		goto out;
	*out = tmp;
	ok = true;
out:
	OPENSSL_cleanse(&tmp, sizeof(tmp));
	return ok;
}

char *auth_scram_secret_to_string(const struct auth_scram_secret *secret)
{
	char salt[AUTH_B64_ENCODED_LEN(AUTH_SCRAM_MAX_SALT_LEN) + 1];
	char stored[AUTH_B64_ENCODED_LEN(AUTH_SCRAM_KEY_LEN) + 1];
	char server[AUTH_B64_ENCODED_LEN(AUTH_SCRAM_KEY_LEN) + 1];
	size_t cap;
	char *out;

	if (secret->salt_len == 0 || secret->salt_len > AUTH_SCRAM_MAX_SALT_LEN ||
	    secret->iterations <= 0)
		return NULL;
	auth_b64_encode(secret->salt, secret->salt_len, salt);
	auth_b64_encode(secret->stored_key, AUTH_SCRAM_KEY_LEN, stored);
	auth_b64_encode(secret->server_key, AUTH_SCRAM_KEY_LEN, server);
	cap = strlen(SCRAM_SECRET_PREFIX) + 11 + 1 + strlen(salt) + 1 + strlen(stored) + 1 +
	      strlen(server) + 1;
	if (!(out = malloc(cap)))
		return NULL;
	snprintf(out, cap, SCRAM_SECRET_PREFIX "%d:%s$%s:%s", secret->iterations, salt, stored,
		 server);
	return out;
}

bool auth_scram_secret_from_password(const char *password, const uint8_t *salt, size_t salt_len,
				     int iterations, struct auth_scram_secret *out)
{
	struct auth_scram_secret tmp;
	bool ok;

	memset(&tmp, 0, sizeof(tmp));
	ok = scram_derive_keys(password, salt, salt_len, iterations, NULL, tmp.stored_key,
			       tmp.server_key);
	if (ok) {
		tmp.iterations = iterations;
		memcpy(tmp.salt, salt, salt_len);
		tmp.salt_len = salt_len;
		*out = tmp;
	}
	OPENSSL_cleanse(&tmp, sizeof(tmp));
	return ok;
}

/* Per-process key behind the mock salts; created on first use. */
static uint8_t mock_key[AUTH_SCRAM_KEY_LEN];
static bool mock_key_ready;

bool auth_scram_mock_secret(const char *user, struct auth_scram_secret *out)
{
	uint8_t mac[AUTH_SCRAM_KEY_LEN];
	struct auth_scram_secret tmp;
	bool ok;

	if (!mock_key_ready) {
		if (!auth_random_bytes(mock_key, sizeof(mock_key)))
			return false;
		mock_key_ready = true;
	}
	memset(&tmp, 0, sizeof(tmp));
	/* Same salt length and iterations as PostgreSQL's own secrets. */
	ok = hmac_sha256(mock_key, sizeof(mock_key), user, strlen(user), mac) &&
	     auth_random_bytes(tmp.stored_key, sizeof(tmp.stored_key)) &&
	     auth_random_bytes(tmp.server_key, sizeof(tmp.server_key));
	if (ok) {
		tmp.iterations = AUTH_SCRAM_DEFAULT_ITERATIONS;
		tmp.salt_len = 16;
		memcpy(tmp.salt, mac, tmp.salt_len);
		*out = tmp;
	}
	OPENSSL_cleanse(&tmp, sizeof(tmp));
	return ok;
}

enum auth_secret_kind auth_secret_kind(const char *secret)
{
	struct auth_scram_secret parsed;

	if (strncmp(secret, "md5", 3) == 0 && strlen(secret) == MD5_PASSWD_LEN &&
	    strspn(secret + 3, "0123456789abcdef") == MD5_HEX_LEN)
		return AUTH_SECRET_MD5;
	if (auth_scram_parse_secret(secret, &parsed)) {
		OPENSSL_cleanse(&parsed, sizeof(parsed));
		return AUTH_SECRET_SCRAM;
	}
	return AUTH_SECRET_PLAIN;
}

/* ------------------------------------------------------------------- md5 */

/* out = "md5" + hex(md5(a || b)) and a NUL; false if MD5 is unavailable. */
static bool md5_passwd(const void *a, size_t a_len, const void *b, size_t b_len,
		       char out[MD5_PASSWD_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;

	ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, a, a_len) == 1 && EVP_DigestUpdate(ctx, b, b_len) == 1 &&
	     EVP_DigestFinal_ex(ctx, digest, &digest_len) == 1 && digest_len == MD5_HEX_LEN / 2;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		out[0] = '\0';
		return false;
	}
	memcpy(out, "md5", 3);
	for (unsigned int i = 0; i < digest_len; i++) {
		out[3 + 2 * i] = hex[digest[i] >> 4];
		out[3 + 2 * i + 1] = hex[digest[i] & 15];
	}
	out[MD5_PASSWD_LEN] = '\0';
	OPENSSL_cleanse(digest, sizeof(digest));
	return true;
}

void auth_md5_stored(const char *user, const char *password, char out[36])
{
	/* On failure out is "", which no response can equal. */
	if (!md5_passwd(password, strlen(password), user, strlen(user), out))
		out[0] = '\0';
}

bool auth_md5_response(const char *user, const char *secret, const uint8_t salt[4], char out[36])
{
	char stored[MD5_PASSWD_LEN + 1];
	const char *hash;
	bool ok;

	switch (auth_secret_kind(secret)) {
	case AUTH_SECRET_MD5:
		hash = secret;
		break;
	case AUTH_SECRET_PLAIN:
		if (!md5_passwd(secret, strlen(secret), user, strlen(user), stored))
			return false;
		hash = stored;
		break;
	case AUTH_SECRET_SCRAM:
	default:
		return false;
	}
	ok = md5_passwd(hash + 3, MD5_HEX_LEN, salt, 4, out);
	OPENSSL_cleanse(stored, sizeof(stored));
	return ok;
}

bool auth_md5_verify(const char *user, const char *secret, const uint8_t salt[4],
		     const char *response)
{
	char expected[MD5_PASSWD_LEN + 1];
	bool ok;

	if (!auth_md5_response(user, secret, salt, expected))
		return false;
	/* The length is public (always 35); only the contents are compared in constant time. */
	ok = strnlen(response, MD5_PASSWD_LEN + 1) == MD5_PASSWD_LEN &&
	     CRYPTO_memcmp(expected, response, MD5_PASSWD_LEN) == 0;
	OPENSSL_cleanse(expected, sizeof(expected));
	return ok;
}

/* --------------------------------------------------------- SCRAM parsing */

/* A read position inside a SCRAM message that is not NUL-terminated. */
struct scram_cursor {
	const char *p;   /* next unread byte */
	const char *end; /* one past the last byte */
};

/*
 * Reads "<attr>=<value>" at the cursor; the value runs to the next ',' or the
 * end, and the cursor stops on that ',' (or the end).
 */
static bool scram_read_attr(struct scram_cursor *cur, char attr, const char **val, size_t *val_len)
{
	const char *v, *comma;

	if (cur->end - cur->p < 2 || cur->p[0] != attr || cur->p[1] != '=')
		return false;
	v = cur->p + 2;
	comma = memchr(v, ',', (size_t)(cur->end - v));
	if (!comma)
		comma = cur->end;
	*val = v;
	*val_len = (size_t)(comma - v);
	cur->p = comma;
	return true;
}

/* Consumes the ',' between attributes; one must follow it. */
static bool scram_comma(struct scram_cursor *cur)
{
	if (cur->p >= cur->end || *cur->p != ',')
		return false;
	cur->p++;
	return cur->p < cur->end;
}

/* True when the cursor is on "<attr>=". */
static bool scram_at_attr(const struct scram_cursor *cur, char attr)
{
	return cur->end - cur->p >= 2 && cur->p[0] == attr && cur->p[1] == '=';
}

/* An optional extension attribute: ALPHA "=" 1*value-char (RFC 5802). */
static bool scram_skip_extension(struct scram_cursor *cur)
{
	const char *v;
	size_t v_len;
	char a;

	if (cur->p >= cur->end)
		return false;
	a = *cur->p;
	if (!((a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z')))
		return false;
	return scram_read_attr(cur, a, &v, &v_len) && v_len > 0;
}

/* A nonce is 1*printable: %x21-7E except ','. */
static bool scram_valid_nonce(const char *n, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (n[i] < 0x21 || n[i] > 0x7e || n[i] == ',')
			return false;
	return true;
}

/*
 * AuthMessage = client-first-message-bare "," server-first-message ","
 * client-final-message-without-proof; malloc'd, *len set.
 */
static char *scram_auth_message(const char *bare, size_t bare_len, const char *first,
				size_t first_len, const char *final, size_t final_len, size_t *len)
{
	size_t total = bare_len + 1 + first_len + 1 + final_len;
	char *m = malloc(total);

	if (!m)
		return NULL;
	memcpy(m, bare, bare_len);
	m[bare_len] = ',';
	memcpy(m + bare_len + 1, first, first_len);
	m[bare_len + 1 + first_len] = ',';
	memcpy(m + bare_len + 1 + first_len + 1, final, final_len);
	*len = total;
	return m;
}

/* malloc'd copy of s[0..len) with a NUL. */
static char *dup_bytes(const char *s, size_t len)
{
	char *d = malloc(len + 1);

	if (d) {
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}

/* ---------------------------------------------------------- SCRAM server */

void auth_scram_server_init(struct auth_scram_server *s, const struct auth_scram_secret *secret)
{
	memset(s, 0, sizeof(*s));
	s->state = AUTH_SCRAM_SERVER_INIT;
	s->secret = *secret;
}

bool auth_scram_server_set_nonce_for_tests(struct auth_scram_server *s, const char *server_nonce)
{
	size_t len = strlen(server_nonce);

	if (s->state != AUTH_SCRAM_SERVER_INIT || len >= sizeof(s->server_nonce) ||
	    !scram_valid_nonce(server_nonce, len))
		return false;
	memcpy(s->server_nonce, server_nonce, len + 1);
	return true;
}

bool auth_scram_server_set_channel_binding(struct auth_scram_server *s, const uint8_t *data,
					   size_t len, bool selected)
{
	if (s->state != AUTH_SCRAM_SERVER_INIT || len == 0 || len > sizeof(s->cbind_data))
		return false;
	memcpy(s->cbind_data, data, len);
	s->cbind_len = len;
	s->cbind_offered = true;
	s->cbind_selected = selected;
	return true;
}

char *auth_scram_server_first(struct auth_scram_server *s, const char *msg, size_t len,
			      const char **err)
{
	static const char tsep[] = "p=tls-server-end-point,";
	struct scram_cursor cur = {msg, msg + len};
	const char *val, *bare, *cnonce;
	size_t val_len, cnonce_len, snonce_len, cap;
	char salt_b64[AUTH_B64_ENCODED_LEN(AUTH_SCRAM_MAX_SALT_LEN) + 1];
	char *reply;

	set_err(err, NULL);
	if (s->state != AUTH_SCRAM_SERVER_INIT) {
		set_err(err, err_order);
		goto fail;
	}
	s->state = AUTH_SCRAM_SERVER_FAILED; /* until we succeed */
	if (len == 0 || memchr(msg, '\0', len)) {
		set_err(err, err_malformed);
		goto fail;
	}

	/* gs2-header: gs2-cbind-flag "," [authzid] "," */
	if (scram_at_attr(&cur, 'p')) {
		if (!s->cbind_selected) {
			set_err(err,
				s->cbind_offered ? err_cbind_unselected : err_cbind_unsupported);
			goto fail;
		}
		if (len < sizeof(tsep) - 1 || memcmp(msg, tsep, sizeof(tsep) - 1) != 0) {
			set_err(err, err_cbind_type);
			goto fail;
		}
		cur.p = msg + sizeof(tsep) - 1;
	} else {
		if (len < 2 || (msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',') {
			set_err(err, err_malformed);
			goto fail;
		}
		if (s->cbind_selected) {
			set_err(err, err_cbind_missing);
			goto fail;
		}
		if (msg[0] == 'y' && s->cbind_offered) {
			set_err(err, err_cbind_downgrade);
			goto fail;
		}
		cur.p = msg + 2;
	}
	if (scram_at_attr(&cur, 'a')) {
		set_err(err, err_authzid);
		goto fail;
	}
	if (cur.p >= cur.end || *cur.p != ',') {
		set_err(err, err_malformed);
		goto fail;
	}
	cur.p++;
	/* at most sizeof(tsep) + 1 bytes: an authzid was refused above */
	memcpy(s->gs2_header, msg, (size_t)(cur.p - msg));
	s->gs2_header[cur.p - msg] = '\0';

	/* client-first-message-bare: [m=...,] n=user,r=nonce[,ext...] */
	bare = cur.p;
	if (scram_at_attr(&cur, 'm')) {
		set_err(err, err_mext);
		goto fail;
	}
	/* The user name is ignored, as PostgreSQL does: the startup packet's user counts. */
	if (!scram_read_attr(&cur, 'n', &val, &val_len) || !scram_comma(&cur) ||
	    !scram_read_attr(&cur, 'r', &cnonce, &cnonce_len) ||
	    !scram_valid_nonce(cnonce, cnonce_len)) {
		set_err(err, err_malformed);
		goto fail;
	}
	while (cur.p < cur.end) {
		if (!scram_comma(&cur) || !scram_skip_extension(&cur)) {
			set_err(err, err_malformed);
			goto fail;
		}
	}

	s->client_first_bare_len = (size_t)(cur.end - bare);
	if (!(s->client_first_bare = dup_bytes(bare, s->client_first_bare_len))) {
		set_err(err, err_oom);
		goto fail;
	}

	/* Our half of the nonce, unless a test fixed it. */
	if (s->server_nonce[0] == '\0') {
		uint8_t raw[AUTH_SCRAM_NONCE_RAW_LEN];

		if (!auth_random_bytes(raw, sizeof(raw))) {
			set_err(err, err_random);
			goto fail;
		}
		auth_b64_encode(raw, sizeof(raw), s->server_nonce);
	}
	snonce_len = strlen(s->server_nonce);
	s->nonce_len = cnonce_len + snonce_len;
	if (!(s->nonce = malloc(s->nonce_len + 1))) {
		set_err(err, err_oom);
		goto fail;
	}
	memcpy(s->nonce, cnonce, cnonce_len);
	memcpy(s->nonce + cnonce_len, s->server_nonce, snonce_len + 1);

	/* server-first-message: r=nonce,s=salt,i=iterations */
	auth_b64_encode(s->secret.salt, s->secret.salt_len, salt_b64);
	cap = 2 + s->nonce_len + 3 + strlen(salt_b64) + 3 + 11 + 1;
	if (!(s->server_first = malloc(cap))) {
		set_err(err, err_oom);
		goto fail;
	}
	snprintf(s->server_first, cap, "r=%s,s=%s,i=%d", s->nonce, salt_b64, s->secret.iterations);
	s->server_first_len = strlen(s->server_first);
	if (!(reply = dup_bytes(s->server_first, s->server_first_len))) {
		set_err(err, err_oom);
		goto fail;
	}
	s->state = AUTH_SCRAM_SERVER_FIRST_SENT;
	return reply;

fail:
	s->state = AUTH_SCRAM_SERVER_FAILED;
	return NULL;
}

char *auth_scram_server_final(struct auth_scram_server *s, const char *msg, size_t len,
			      bool *wrong_password, const char **err)
{
	struct scram_cursor cur = {msg, msg + len};
	const char *cbind, *nonce, *proof_b64 = NULL;
	size_t cbind_len, nonce_len, proof_b64_len = 0, without_proof_len = 0, n, am_len = 0;
	uint8_t cbind_data[sizeof(s->gs2_header) + AUTH_SCRAM_CBIND_MAX];
	uint8_t proof[AUTH_SCRAM_KEY_LEN], client_sig[AUTH_SCRAM_KEY_LEN];
	size_t hlen;
	uint8_t client_key[AUTH_SCRAM_KEY_LEN], check[AUTH_SCRAM_KEY_LEN];
	uint8_t server_sig[AUTH_SCRAM_KEY_LEN];
	char sig_b64[AUTH_B64_ENCODED_LEN(AUTH_SCRAM_KEY_LEN) + 1];
	char *auth_message = NULL, *reply = NULL;
	bool ok;

	*wrong_password = false;
	set_err(err, NULL);
	if (s->state != AUTH_SCRAM_SERVER_FIRST_SENT) {
		set_err(err, err_order);
		goto fail;
	}
	s->state = AUTH_SCRAM_SERVER_FAILED;
	if (len == 0 || memchr(msg, '\0', len)) {
		set_err(err, err_malformed);
		goto fail;
	}

	/*
	 * c=<b64 gs2 header + channel binding data>: the first message's header,
	 * followed with SCRAM-SHA-256-PLUS by the hash of our certificate.
	 */
	if (!scram_read_attr(&cur, 'c', &cbind, &cbind_len) ||
	    !auth_b64_decode(cbind, cbind_len, cbind_data, sizeof(cbind_data), &n)) {
		set_err(err, s->cbind_selected ? err_cbind_mismatch : err_malformed);
		goto fail;
	}
	hlen = strlen(s->gs2_header);
	if (n != hlen + (s->cbind_selected ? s->cbind_len : 0) ||
	    memcmp(cbind_data, s->gs2_header, hlen) != 0 ||
	    (s->cbind_selected &&
	     CRYPTO_memcmp(cbind_data + hlen, s->cbind_data, s->cbind_len) != 0)) {
		set_err(err, err_cbind_mismatch);
		goto fail;
	}

	/* r=<nonce>: must echo the combined nonce. */
	if (!scram_comma(&cur) || !scram_read_attr(&cur, 'r', &nonce, &nonce_len)) {
		set_err(err, err_malformed);
		goto fail;
	}
	if (nonce_len != s->nonce_len || memcmp(nonce, s->nonce, nonce_len) != 0) {
		set_err(err, err_nonce_mismatch);
		goto fail;
	}

	/* Optional extensions, then p=<proof>, which must be last. */
	for (;;) {
		const char *comma = cur.p;

		if (!scram_comma(&cur)) {
			set_err(err, err_malformed);
			goto fail;
		}
		if (scram_at_attr(&cur, 'p')) {
			without_proof_len = (size_t)(comma - msg);
			if (!scram_read_attr(&cur, 'p', &proof_b64, &proof_b64_len) ||
			    cur.p != cur.end) {
				set_err(err, err_malformed);
				goto fail;
			}
			break;
		}
		if (!scram_skip_extension(&cur)) {
			set_err(err, err_malformed);
			goto fail;
		}
	}
	if (!auth_b64_decode(proof_b64, proof_b64_len, proof, sizeof(proof), &n) ||
	    n != AUTH_SCRAM_KEY_LEN) {
		set_err(err, err_malformed);
		goto fail;
	}

	if (!(auth_message = scram_auth_message(s->client_first_bare, s->client_first_bare_len,
						s->server_first, s->server_first_len, msg,
						without_proof_len, &am_len))) {
		set_err(err, err_oom);
		goto fail;
	}

	/*
	 * ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the proof is
	 * right when SHA256(ClientKey) is the StoredKey.
	 */
	if (!hmac_sha256(s->secret.stored_key, AUTH_SCRAM_KEY_LEN, auth_message, am_len,
			 client_sig)) {
		set_err(err, err_crypto);
		goto fail;
	}
	for (size_t i = 0; i < AUTH_SCRAM_KEY_LEN; i++)
		client_key[i] = proof[i] ^ client_sig[i];
	if (!sha256(client_key, sizeof(client_key), check) ||
	    !hmac_sha256(s->secret.server_key, AUTH_SCRAM_KEY_LEN, auth_message, am_len,
			 server_sig)) {
		set_err(err, err_crypto);
		goto fail;
	}
	ok = CRYPTO_memcmp(check, s->secret.stored_key, AUTH_SCRAM_KEY_LEN) == 0;
	if (!ok) {
		*wrong_password = true;
		set_err(err, err_wrong_password);
		goto fail;
	}

	auth_b64_encode(server_sig, sizeof(server_sig), sig_b64);
	if (!(reply = malloc(2 + strlen(sig_b64) + 1))) {
		set_err(err, err_oom);
		goto fail;
	}
	memcpy(reply, "v=", 2);
	memcpy(reply + 2, sig_b64, strlen(sig_b64) + 1);
	memcpy(s->client_key, client_key, sizeof(client_key));
	s->have_client_key = true;
	s->state = AUTH_SCRAM_SERVER_DONE;

fail:
	if (!reply)
		s->state = AUTH_SCRAM_SERVER_FAILED;
	free(auth_message);
	OPENSSL_cleanse(proof, sizeof(proof));
	OPENSSL_cleanse(client_sig, sizeof(client_sig));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(check, sizeof(check));
	OPENSSL_cleanse(server_sig, sizeof(server_sig));
	return reply;
}

const uint8_t *auth_scram_server_client_key(const struct auth_scram_server *s)
{
	return s->have_client_key ? s->client_key : NULL;
}

void auth_scram_server_free(struct auth_scram_server *s)
{
	free(s->client_first_bare);
	free(s->server_first);
	free(s->nonce);
	OPENSSL_cleanse(s, sizeof(*s));
	s->state = AUTH_SCRAM_SERVER_FAILED;
}

/* ---------------------------------------------------------- SCRAM client */

/* Common part of both inits: zero the struct and pick our nonce. */
static bool scram_client_init(struct auth_scram_client *c)
{
	uint8_t raw[AUTH_SCRAM_NONCE_RAW_LEN];

	memset(c, 0, sizeof(*c));
	c->state = AUTH_SCRAM_CLIENT_FAILED;
	if (!auth_random_bytes(raw, sizeof(raw)))
		return false;
	auth_b64_encode(raw, sizeof(raw), c->nonce);
	c->state = AUTH_SCRAM_CLIENT_INIT;
	return true;
}

bool auth_scram_client_init_password(struct auth_scram_client *c, const char *password)
{
	if (!scram_client_init(c))
		return false;
	if (!(c->password = strdup(password))) {
		c->state = AUTH_SCRAM_CLIENT_FAILED;
		return false;
	}
	return true;
}

bool auth_scram_client_init_keys(struct auth_scram_client *c,
				 const uint8_t client_key[AUTH_SCRAM_KEY_LEN],
				 const struct auth_scram_secret *secret)
{
	uint8_t stored[AUTH_SCRAM_KEY_LEN];
	bool match;

	if (!scram_client_init(c))
		return false;
	/* A key that does not belong to this secret could never log in: say so now. */
	match = sha256(client_key, AUTH_SCRAM_KEY_LEN, stored) &&
		CRYPTO_memcmp(stored, secret->stored_key, AUTH_SCRAM_KEY_LEN) == 0;
	OPENSSL_cleanse(stored, sizeof(stored));
	if (!match) {
		c->state = AUTH_SCRAM_CLIENT_FAILED;
		return false;
	}
	c->have_secret = true;
	c->secret = *secret;
	memcpy(c->client_key, client_key, AUTH_SCRAM_KEY_LEN);
	memcpy(c->server_key, secret->server_key, AUTH_SCRAM_KEY_LEN);
	return true;
}

bool auth_scram_client_set_nonce_for_tests(struct auth_scram_client *c, const char *nonce,
					   const char *user)
{
	size_t len = strlen(nonce), user_len = strlen(user);

	if (c->state != AUTH_SCRAM_CLIENT_INIT || len >= sizeof(c->nonce) ||
	    !scram_valid_nonce(nonce, len) || user_len >= sizeof(c->user) || strpbrk(user, ",="))
		return false;
	memcpy(c->nonce, nonce, len + 1);
	memcpy(c->user, user, user_len + 1);
	return true;
}

char *auth_scram_client_first(struct auth_scram_client *c)
{
	size_t cap;
	char *msg;

	if (c->state != AUTH_SCRAM_CLIENT_INIT)
		return NULL;
	/* "n,," : no channel binding, no authzid; n= is the user, empty as libpq sends it. */
	cap = 3 + 2 + strlen(c->user) + 3 + strlen(c->nonce) + 1;
	if (!(msg = malloc(cap)))
		goto fail;
	snprintf(msg, cap, "n,,n=%s,r=%s", c->user, c->nonce);
	c->client_first_bare_len = strlen(msg) - 3;
	if (!(c->client_first_bare = dup_bytes(msg + 3, c->client_first_bare_len))) {
		free(msg);
		goto fail;
	}
	c->state = AUTH_SCRAM_CLIENT_FIRST_SENT;
	return msg;
fail:
	c->state = AUTH_SCRAM_CLIENT_FAILED;
	return NULL;
}

char *auth_scram_client_final(struct auth_scram_client *c, const char *server_first, size_t len,
			      const char **err)
{
	struct scram_cursor cur = {server_first, server_first + len};
	const char *nonce, *salt_b64, *iter_str;
	size_t nonce_len, salt_b64_len, iter_len, salt_len, our_len, am_len = 0, wp_len, cap;
	uint8_t salt[AUTH_SCRAM_MAX_SALT_LEN], stored[AUTH_SCRAM_KEY_LEN];
	uint8_t client_sig[AUTH_SCRAM_KEY_LEN], proof[AUTH_SCRAM_KEY_LEN];
	char proof_b64[AUTH_B64_ENCODED_LEN(AUTH_SCRAM_KEY_LEN) + 1];
	char *without_proof = NULL, *auth_message = NULL, *reply = NULL;
	int iterations;

	set_err(err, NULL);
	if (c->state != AUTH_SCRAM_CLIENT_FIRST_SENT) {
		set_err(err, err_order);
		goto fail;
	}
	c->state = AUTH_SCRAM_CLIENT_FAILED;
	if (len == 0 || memchr(server_first, '\0', len)) {
		set_err(err, err_server_first);
		goto fail;
	}

	/* r=<our nonce><server's part>,s=<salt>,i=<iterations>, nothing after (as libpq). */
	if (scram_at_attr(&cur, 'm')) {
		set_err(err, err_mext);
		goto fail;
	}
	if (!scram_read_attr(&cur, 'r', &nonce, &nonce_len)) {
		set_err(err, err_server_first);
		goto fail;
	}
	our_len = strlen(c->nonce);
	if (!scram_valid_nonce(nonce, nonce_len) || nonce_len <= our_len ||
	    memcmp(nonce, c->nonce, our_len) != 0) {
		set_err(err, err_server_nonce);
		goto fail;
	}
	if (!scram_comma(&cur) || !scram_read_attr(&cur, 's', &salt_b64, &salt_b64_len)) {
		set_err(err, err_server_first);
		goto fail;
	}
	if (!auth_b64_decode(salt_b64, salt_b64_len, salt, sizeof(salt), &salt_len) ||
	    salt_len == 0) {
		set_err(err, err_server_salt);
		goto fail;
	}
	if (!scram_comma(&cur) || !scram_read_attr(&cur, 'i', &iter_str, &iter_len) ||
	    cur.p != cur.end) {
		set_err(err, err_server_first);
		goto fail;
	}
	if (!parse_positive_int(iter_str, iter_len, &iterations) ||
	    iterations > AUTH_SCRAM_MAX_ITERATIONS) {
		set_err(err, err_server_iter);
		goto fail;
	}

	if (c->have_secret) {
		/* Recovered keys are only valid for the exact salt and iterations they came from. */
		if (salt_len != c->secret.salt_len || memcmp(salt, c->secret.salt, salt_len) != 0 ||
		    iterations != c->secret.iterations) {
			set_err(err, err_secret_mismatch);
			goto fail;
		}
	} else if (!scram_derive_keys(c->password, salt, salt_len, iterations, c->client_key, NULL,
				      c->server_key)) {
		set_err(err, err_crypto);
		goto fail;
	}

	/* client-final-message-without-proof: "biws" is base64("n,,"). */
	wp_len = strlen("c=biws,r=") + nonce_len;
	if (!(without_proof = malloc(wp_len + 1))) {
		set_err(err, err_oom);
		goto fail;
	}
	memcpy(without_proof, "c=biws,r=", 9);
	memcpy(without_proof + 9, nonce, nonce_len);
	without_proof[wp_len] = '\0';

	if (!(auth_message = scram_auth_message(c->client_first_bare, c->client_first_bare_len,
						server_first, len, without_proof, wp_len, &am_len))) {
		set_err(err, err_oom);
		goto fail;
	}
	/* ClientProof = ClientKey XOR HMAC(SHA256(ClientKey), AuthMessage). */
	if (!sha256(c->client_key, AUTH_SCRAM_KEY_LEN, stored) ||
	    !hmac_sha256(stored, sizeof(stored), auth_message, am_len, client_sig) ||
	    !hmac_sha256(c->server_key, AUTH_SCRAM_KEY_LEN, auth_message, am_len,
			 c->server_signature)) {
		set_err(err, err_crypto);
		goto fail;
	}
	for (size_t i = 0; i < AUTH_SCRAM_KEY_LEN; i++)
		proof[i] = c->client_key[i] ^ client_sig[i];
	auth_b64_encode(proof, sizeof(proof), proof_b64);

	cap = wp_len + 3 + strlen(proof_b64) + 1;
	if (!(reply = malloc(cap))) {
		set_err(err, err_oom);
		goto fail;
	}
	snprintf(reply, cap, "%s,p=%s", without_proof, proof_b64);
	c->state = AUTH_SCRAM_CLIENT_FINAL_SENT;

fail:
	if (!reply)
		c->state = AUTH_SCRAM_CLIENT_FAILED;
	free(without_proof);
	free(auth_message);
	OPENSSL_cleanse(stored, sizeof(stored));
	OPENSSL_cleanse(client_sig, sizeof(client_sig));
	OPENSSL_cleanse(proof, sizeof(proof));
	OPENSSL_cleanse(proof_b64, sizeof(proof_b64));
	return reply;
}

/* server-error values of RFC 5802 section 7, so *err can name them statically. */
static const char *const scram_server_errors[][2] = {
	{"invalid-encoding", "SCRAM error from server: invalid-encoding"},
	{"extensions-not-supported", "SCRAM error from server: extensions-not-supported"},
	{"invalid-proof", "SCRAM error from server: invalid-proof"},
	{"channel-bindings-dont-match", "SCRAM error from server: channel-bindings-dont-match"},
	{"server-does-support-channel-binding",
	 "SCRAM error from server: server-does-support-channel-binding"},
	{"channel-binding-not-supported", "SCRAM error from server: channel-binding-not-supported"},
	{"unsupported-channel-binding-type",
	 "SCRAM error from server: unsupported-channel-binding-type"},
	{"unknown-user", "SCRAM error from server: unknown-user"},
	{"invalid-username-encoding", "SCRAM error from server: invalid-username-encoding"},
	{"no-resources", "SCRAM error from server: no-resources"},
	{"other-error", "SCRAM error from server: other-error"},
};

bool auth_scram_client_verify(struct auth_scram_client *c, const char *server_final, size_t len,
			      const char **err)
{
	struct scram_cursor cur = {server_final, server_final + len};
	uint8_t sig[AUTH_SCRAM_KEY_LEN];
	const char *val;
	size_t val_len, n;

	set_err(err, NULL);
	if (c->state != AUTH_SCRAM_CLIENT_FINAL_SENT) {
		set_err(err, err_order);
		c->state = AUTH_SCRAM_CLIENT_FAILED;
		return false;
	}
	c->state = AUTH_SCRAM_CLIENT_FAILED;
	if (scram_read_attr(&cur, 'e', &val, &val_len)) {
		set_err(err, "SCRAM error from server");
		for (size_t i = 0; i < sizeof(scram_server_errors) / sizeof(scram_server_errors[0]);
		     i++) {
			if (strlen(scram_server_errors[i][0]) == val_len &&
			    memcmp(scram_server_errors[i][0], val, val_len) == 0)
				set_err(err, scram_server_errors[i][1]);
		}
		return false;
	}
	if (!scram_read_attr(&cur, 'v', &val, &val_len) || cur.p != cur.end ||
	    !auth_b64_decode(val, val_len, sig, sizeof(sig), &n) || n != AUTH_SCRAM_KEY_LEN) {
		set_err(err, err_server_final);
		return false;
	}
	if (CRYPTO_memcmp(sig, c->server_signature, AUTH_SCRAM_KEY_LEN) != 0) {
		set_err(err, err_server_sig);
		return false;
	}
	c->state = AUTH_SCRAM_CLIENT_DONE;
	return true;
}

void auth_scram_client_free(struct auth_scram_client *c)
{
	if (c->password) {
		OPENSSL_cleanse(c->password, strlen(c->password));
		free(c->password);
	}
	free(c->client_first_bare);
	OPENSSL_cleanse(c, sizeof(*c));
	c->state = AUTH_SCRAM_CLIENT_FAILED;
}
