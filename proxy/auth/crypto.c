/*
 * crypto.c - random bytes, strict base64, SHA-256, HMAC-SHA-256 and the
 * SCRAM-SHA-256 key schedule (RFC 5802, RFC 7677), on OpenSSL 3: the
 * primitives the rest of proxy/auth/ is built on.
 *
 * Intermediate keys are wiped with OPENSSL_cleanse once they are no longer
 * needed.
 */
#include "proxy/auth/crypto.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

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

bool auth_sha256(const void *data, size_t len, uint8_t out[AUTH_SCRAM_KEY_LEN])
{
	unsigned int out_len = 0;

	return EVP_Digest(data, len, out, &out_len, EVP_sha256(), NULL) == 1 &&
	       out_len == AUTH_SCRAM_KEY_LEN;
}

bool auth_hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len,
		      uint8_t out[AUTH_SCRAM_KEY_LEN])
{
	unsigned int out_len = 0;

	if (key_len > INT_MAX)
		return false;
	return HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &out_len) != NULL &&
	       out_len == AUTH_SCRAM_KEY_LEN;
}

bool auth_scram_derive_keys(const char *password, const uint8_t *salt, size_t salt_len,
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
	     auth_hmac_sha256(salted, sizeof(salted), "Client Key", 10, ck) &&
	     auth_hmac_sha256(salted, sizeof(salted), "Server Key", 10, sk);
	if (ok && stored_key)
		ok = auth_sha256(ck, sizeof(ck), stored_key);
	if (ok && client_key)
		memcpy(client_key, ck, sizeof(ck));
	if (ok && server_key)
		memcpy(server_key, sk, sizeof(sk));
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(ck, sizeof(ck));
	OPENSSL_cleanse(sk, sizeof(sk));
	return ok;
}
