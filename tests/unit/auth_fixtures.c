/*
 * auth_fixtures.c - the helpers auth_fixtures.h declares for the
 * proxy/auth/ unit tests.
 */
#include "auth_fixtures.h"

#include <stdlib.h>
#include <string.h>

char *ut_dup_exact(const char *p, size_t n)
{
	char *d = malloc(n ? n : 1);

	if (d && n)
		memcpy(d, p, n);
	return d;
}

char *ut_srv_first_n(struct auth_scram_server *s, const char *msg, size_t n, const char **err)
{
	char *d = ut_dup_exact(msg, n);
	char *r = auth_scram_server_first(s, d, n, err);

	free(d);
	return r;
}

char *ut_srv_first(struct auth_scram_server *s, const char *msg, const char **err)
{
	return ut_srv_first_n(s, msg, strlen(msg), err);
}

char *ut_srv_final_n(struct auth_scram_server *s, const char *msg, size_t n, bool *wrong,
		     const char **err)
{
	char *d = ut_dup_exact(msg, n);
	char *r = auth_scram_server_final(s, d, n, wrong, err);

	free(d);
	return r;
}

char *ut_srv_final(struct auth_scram_server *s, const char *msg, bool *wrong, const char **err)
{
	return ut_srv_final_n(s, msg, strlen(msg), wrong, err);
}

char *ut_cli_final(struct auth_scram_client *c, const char *msg, const char **err)
{
	size_t n = strlen(msg);
	char *d = ut_dup_exact(msg, n);
	char *r = auth_scram_client_final(c, d, n, err);

	free(d);
	return r;
}

bool ut_cli_verify(struct auth_scram_client *c, const char *msg, const char **err)
{
	size_t n = strlen(msg);
	char *d = ut_dup_exact(msg, n);
	bool ok = auth_scram_client_verify(c, d, n, err);

	free(d);
	return ok;
}

size_t ut_b64(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;

	if (!auth_b64_decode(s, strlen(s), out, cap, &n))
		return 0;
	return n;
}

enum exchange_result ut_run_exchange(struct auth_scram_server *s, struct auth_scram_client *c,
				     bool *wrong, const char **err)
{
	char *m1, *m2, *m3, *m4;
	bool ok;

	*wrong = false;
	*err = NULL;
	if (!(m1 = auth_scram_client_first(c)))
		return EXCHANGE_CLIENT_FIRST;
	m2 = ut_srv_first(s, m1, err);
	free(m1);
	if (!m2)
		return EXCHANGE_SERVER_FIRST;
	m3 = ut_cli_final(c, m2, err);
	free(m2);
	if (!m3)
		return EXCHANGE_CLIENT_FINAL;
	m4 = ut_srv_final(s, m3, wrong, err);
	free(m3);
	if (!m4)
		return EXCHANGE_SERVER_FINAL;
	ok = ut_cli_verify(c, m4, err);
	free(m4);
	return ok ? EXCHANGE_OK : EXCHANGE_CLIENT_VERIFY;
}

bool ut_rfc_secret(struct auth_scram_secret *secret)
{
	uint8_t salt[16];
	size_t n = ut_b64(RFC_SALT, salt, sizeof(salt));

	return n == 16 && auth_scram_secret_from_password("pencil", salt, n, 4096, secret);
}
