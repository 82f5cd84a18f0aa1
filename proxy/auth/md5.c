/*
 * md5.c - MD5 password authentication as PostgreSQL does it: the stored
 * "md5" hash, the challenge response, and its constant-time check.
 *
 * MD5 goes through OpenSSL's EVP interface, so an OpenSSL in FIPS mode
 * (no MD5) makes every function here fail closed.
 */
#include "proxy/auth/md5.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "proxy/auth/secret.h"

/* out = "md5" + hex(md5(a || b)) and a NUL; false if MD5 is unavailable. */
static bool md5_passwd(const void *a, size_t a_len, const void *b, size_t b_len,
		       char out[AUTH_MD5_PASSWD_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;

	ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, a, a_len) == 1 && EVP_DigestUpdate(ctx, b, b_len) == 1 &&
	     EVP_DigestFinal_ex(ctx, digest, &digest_len) == 1 &&
	     digest_len == AUTH_MD5_HEX_LEN / 2;
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
	out[AUTH_MD5_PASSWD_LEN] = '\0';
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
	char stored[AUTH_MD5_PASSWD_LEN + 1];
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
	ok = md5_passwd(hash + 3, AUTH_MD5_HEX_LEN, salt, 4, out);
	OPENSSL_cleanse(stored, sizeof(stored));
	return ok;
}

bool auth_md5_verify(const char *user, const char *secret, const uint8_t salt[4],
		     const char *response)
{
	char expected[AUTH_MD5_PASSWD_LEN + 1];
	bool ok;

	if (!auth_md5_response(user, secret, salt, expected))
		return false;
	/* The length is public (always 35); only the contents are compared in constant time. */
	ok = strnlen(response, AUTH_MD5_PASSWD_LEN + 1) == AUTH_MD5_PASSWD_LEN &&
	     CRYPTO_memcmp(expected, response, AUTH_MD5_PASSWD_LEN) == 0;
	OPENSSL_cleanse(expected, sizeof(expected));
	return ok;
}
