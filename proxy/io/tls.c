/*
 * tls.c - SSL_CTXs from the TLS settings, and the names of TLS modes and
 * protocol versions (see tls.h).
 */
#include "proxy/io/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>

struct tls_contexts {
	SSL_CTX *client; /* facing clients: we are the TLS server; NULL when client TLS is off */
	SSL_CTX *server; /* facing backends: we are the TLS client */
};

/* The reason of OpenSSL's last error, for messages; clears the queue. */
static const char *tls_last_error(void)
{
	static char buf[160];
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	if (r == NULL)
		snprintf(buf, sizeof(buf), "%s", e ? "unknown OpenSSL error" : "no error reported");
	else
		snprintf(buf, sizeof(buf), "%s", r);
	ERR_clear_error();
	return buf;
}

/* A key with a passphrase fails to load instead of prompting on a terminal. */
static int tls_no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
	(void)rwflag;
	(void)userdata;
	if (size > 0)
		buf[0] = '\0';
	return 0;
}

/* ---- names ---- */

const char *tls_sslmode_name(enum tls_sslmode m)
{
	switch (m) {
	case SSLMODE_DISABLE:
		return "disable";
	case SSLMODE_ALLOW:
		return "allow";
	case SSLMODE_PREFER:
		return "prefer";
	case SSLMODE_REQUIRE:
		return "require";
	case SSLMODE_VERIFY_CA:
		return "verify-ca";
	case SSLMODE_VERIFY_FULL:
		return "verify-full";
	}
	return "unknown";
}

bool tls_parse_sslmode(const char *s, enum tls_sslmode *out)
{
	for (int m = SSLMODE_DISABLE; m <= SSLMODE_VERIFY_FULL; m++) {
		if (strcasecmp(s, tls_sslmode_name((enum tls_sslmode)m)) == 0) {
			*out = (enum tls_sslmode)m;
			return true;
		}
	}
	return false;
}

/* The protocol words and what each stands for. */
static const struct {
	const char *name;
	unsigned mask;
} tls_protocol_words[] = {
	{"secure", TLS_PROTO_V1_2 | TLS_PROTO_V1_3},
	{"default", TLS_PROTO_V1_2 | TLS_PROTO_V1_3},
	{"all", TLS_PROTO_V1_0 | TLS_PROTO_V1_1 | TLS_PROTO_V1_2 | TLS_PROTO_V1_3},
	{"legacy", TLS_PROTO_V1_0 | TLS_PROTO_V1_1 | TLS_PROTO_V1_2 | TLS_PROTO_V1_3},
	{"tlsv1", TLS_PROTO_V1_0},
	{"tlsv1.0", TLS_PROTO_V1_0},
	{"tlsv1.1", TLS_PROTO_V1_1},
	{"tlsv1.2", TLS_PROTO_V1_2},
	{"tlsv1.3", TLS_PROTO_V1_3},
};

bool tls_parse_protocols(const char *s, unsigned *mask)
{
	unsigned m = 0;

	for (;;) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		size_t i, n = sizeof(tls_protocol_words) / sizeof(tls_protocol_words[0]);

		while (len > 0 && isspace((unsigned char)*s)) {
			s++;
			len--;
		}
		while (len > 0 && isspace((unsigned char)s[len - 1]))
			len--;
		for (i = 0; i < n; i++) {
			if (strlen(tls_protocol_words[i].name) == len &&
			    strncasecmp(s, tls_protocol_words[i].name, len) == 0)
				break;
		}
		if (i == n)
			return false;
		m |= tls_protocol_words[i].mask;
		if (comma == NULL)
			break;
		s = comma + 1;
	}
	*mask = m;
	return m != 0;
}

/* ---- contexts ---- */

/* Restrict ctx to the protocol set 'list' (validated by the config loader). */
static bool tls_set_protocols(SSL_CTX *ctx, const char *list)
{
	static const struct {
		unsigned bit;
		int version;
		unsigned long no_op;
	} v[] = {
		{TLS_PROTO_V1_0, TLS1_VERSION, SSL_OP_NO_TLSv1},
		{TLS_PROTO_V1_1, TLS1_1_VERSION, SSL_OP_NO_TLSv1_1},
		{TLS_PROTO_V1_2, TLS1_2_VERSION, SSL_OP_NO_TLSv1_2},
		{TLS_PROTO_V1_3, TLS1_3_VERSION, SSL_OP_NO_TLSv1_3},
	};
	unsigned mask;
	int lo = -1, hi = -1;

	if (!tls_parse_protocols(list, &mask))
		return false;
	for (int i = 0; i < 4; i++) {
		if (mask & v[i].bit) {
			if (lo < 0)
				lo = i;
			hi = i;
		}
	}
	if (!SSL_CTX_set_min_proto_version(ctx, v[lo].version) ||
	    !SSL_CTX_set_max_proto_version(ctx, v[hi].version))
		return false;
	/* a gap ("tlsv1.0,tlsv1.2"): the versions between are switched off */
	for (int i = lo + 1; i < hi; i++)
		if (!(mask & v[i].bit))
			SSL_CTX_set_options(ctx, v[i].no_op);
	return true;
}

/* What both contexts share: protocols, ciphers, no compression, no renegotiation. */
static SSL_CTX *tls_ctx_new(const SSL_METHOD *method, const char *side, const char *protocols,
			    const char *ciphers, char *errbuf, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(method);

	if (ctx == NULL) {
		snprintf(errbuf, errlen, "could not create the %s TLS context: %s", side,
			 tls_last_error());
		return NULL;
	}
	/*
	 * IGNORE_UNEXPECTED_EOF: a peer that closes without close_notify is an
	 * EOF like any other (the protocol's own framing detects truncation).
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_passphrase);
	if (!tls_set_protocols(ctx, protocols)) {
		snprintf(errbuf, errlen, "could not set %s_tls_protocols \"%s\": %s", side,
			 protocols, tls_last_error());
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		snprintf(errbuf, errlen, "invalid %s_tls_ciphers \"%s\": %s", side, ciphers,
			 tls_last_error());
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Load a certificate chain and its key into ctx; false with a message. */
static bool tls_load_cert(SSL_CTX *ctx, const char *side, const char *cert, const char *key,
			  char *errbuf, size_t errlen)
{
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(errbuf, errlen, "could not load %s_tls_cert_file \"%s\": %s", side, cert,
			 tls_last_error());
		return false;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		unsigned long e = ERR_peek_last_error();

		if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
		    ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
			snprintf(errbuf, errlen,
				 "%s_tls_key_file \"%s\" does not match %s_tls_cert_file \"%s\"",
				 side, key, side, cert);
		else
			snprintf(errbuf, errlen, "could not load %s_tls_key_file \"%s\": %s", side,
				 key, tls_last_error());
		ERR_clear_error();
		return false;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(errbuf, errlen,
			 "%s_tls_key_file \"%s\" does not match %s_tls_cert_file \"%s\": %s", side,
			 key, side, cert, tls_last_error());
		return false;
	}
	return true;
}

static SSL_CTX *tls_build_client_side(const struct tls_settings *cfg, char *errbuf, size_t errlen)
{
	SSL_CTX *ctx = tls_ctx_new(TLS_server_method(), "client", cfg->protocols, cfg->ciphers,
				   errbuf, errlen);

	if (ctx == NULL)
		return NULL;
	/* as PostgreSQL: no session cache, no tickets (nothing to resume across reloads) */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0); /* TLS 1.3 would send two after each handshake */
	SSL_CTX_set_dh_auto(ctx, 1);
	if (!tls_load_cert(ctx, "client", cfg->cert_file, cfg->key_file, errbuf, errlen))
		goto fail;
	if (cfg->ca_file[0]) {
		STACK_OF(X509_NAME) * names;

		if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1) {
			snprintf(errbuf, errlen, "could not load client_tls_ca_file \"%s\": %s",
				 cfg->ca_file, tls_last_error());
			goto fail;
		}
		/* the CA names the server's CertificateRequest lists */
		names = SSL_load_client_CA_file(cfg->ca_file);
		if (names == NULL) {
			snprintf(errbuf, errlen, "could not load client_tls_ca_file \"%s\": %s",
				 cfg->ca_file, tls_last_error());
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
	}
	if (cfg->sslmode >= SSLMODE_VERIFY_CA)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static SSL_CTX *tls_build_server_side(const struct tls_settings *cfg, char *errbuf, size_t errlen)
{
	SSL_CTX *ctx = tls_ctx_new(TLS_client_method(), "server", cfg->protocols, cfg->ciphers,
				   errbuf, errlen);

	if (ctx == NULL)
		return NULL;
	if (cfg->ca_file[0]) {
		if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1) {
			snprintf(errbuf, errlen, "could not load server_tls_ca_file \"%s\": %s",
				 cfg->ca_file, tls_last_error());
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		/* the system store may be missing: only verify-ca/full need it, and they fail then */
		ERR_clear_error();
	}
	if (cfg->cert_file[0] &&
	    !tls_load_cert(ctx, "server", cfg->cert_file, cfg->key_file, errbuf, errlen))
		goto fail;
	/* verification is set per connection (sock_start_tls_connect), by its sslmode */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls_contexts *tls_contexts_build(const struct tls_settings *client,
					const struct tls_settings *server, char *errbuf,
					size_t errlen)
{
	struct tls_contexts *t = calloc(1, sizeof(*t));

	ERR_clear_error();
	if (t == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	if (client->sslmode != SSLMODE_DISABLE) {
		t->client = tls_build_client_side(client, errbuf, errlen);
		if (t->client == NULL) {
			free(t);
			return NULL;
		}
	}
	t->server = tls_build_server_side(server, errbuf, errlen);
	if (t->server == NULL) {
		tls_contexts_free(t);
		return NULL;
	}
	return t;
}

void tls_contexts_free(struct tls_contexts *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->client);
	SSL_CTX_free(t->server);
	free(t);
}

SSL_CTX *tls_client_ctx(const struct tls_contexts *t)
{
	return t ? t->client : NULL;
}

SSL_CTX *tls_server_ctx(const struct tls_contexts *t)
{
	return t ? t->server : NULL;
}

bool tls_peer_common_name(SSL *ssl, char *buf, size_t len)
{
	X509 *peer = SSL_get0_peer_certificate(ssl);
	int n;

	if (peer == NULL || len == 0 || len > 0x7fffffff)
		return false;
	n = X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, buf, (int)len);
	/* as PostgreSQL: a CN with an embedded NUL would compare as something else */
	if (n < 0 || (size_t)n >= len || strlen(buf) != (size_t)n)
		return false;
	return true;
}

bool tls_server_end_point(SSL *ssl, uint8_t out[TLS_END_POINT_MAX], size_t *len)
{
	X509 *cert = SSL_get_certificate(ssl);
	int algo = NID_undef;
	const EVP_MD *md;
	unsigned int n = 0;

	if (cert == NULL || !OBJ_find_sigid_algs(X509_get_signature_nid(cert), &algo, NULL))
		return false;
	switch (algo) {
	case NID_md5:
	case NID_sha1:
		md = EVP_sha256(); /* RFC 5929 section 4.1 */
		break;
	default:
		md = EVP_get_digestbynid(algo);
		break;
	}
	if (md == NULL || EVP_MD_get_size(md) > TLS_END_POINT_MAX ||
	    X509_digest(cert, md, out, &n) != 1) {
		ERR_clear_error();
		return false;
	}
	*len = n;
	return true;
}
