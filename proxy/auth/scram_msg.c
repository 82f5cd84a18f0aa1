/*
 * scram_msg.c - the SCRAM message helpers both sides share: a cursor that
 * reads attributes without a terminator, the nonce and count syntax, and
 * the AuthMessage both sides sign.
 */
#include "proxy/auth/scram_msg.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

const char auth_scram_err_order[] = "SCRAM exchange out of order";
const char auth_scram_err_mext[] = "SCRAM mandatory extensions are not supported";
const char auth_scram_err_oom[] = "out of memory";
const char auth_scram_err_crypto[] = "could not compute SCRAM keys";

bool auth_scram_read_attr(struct auth_scram_cursor *cur, char attr, const char **val,
			  size_t *val_len)
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

bool auth_scram_comma(struct auth_scram_cursor *cur)
{
	if (cur->p >= cur->end || *cur->p != ',')
		return false;
	cur->p++;
	return cur->p < cur->end;
}

bool auth_scram_at_attr(const struct auth_scram_cursor *cur, char attr)
{
	return cur->end - cur->p >= 2 && cur->p[0] == attr && cur->p[1] == '=';
}

bool auth_scram_skip_extension(struct auth_scram_cursor *cur)
{
	const char *v;
	size_t v_len;
	char a;

	if (cur->p >= cur->end)
		return false;
	a = *cur->p;
	if (!((a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z')))
		return false;
	return auth_scram_read_attr(cur, a, &v, &v_len) && v_len > 0;
}

bool auth_scram_valid_nonce(const char *n, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (n[i] < 0x21 || n[i] > 0x7e || n[i] == ',')
			return false;
	return true;
}

bool auth_scram_parse_count(const char *s, size_t len, int *out)
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

char *auth_scram_auth_message(const char *bare, size_t bare_len, const char *first,
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

char *auth_scram_dup_bytes(const char *s, size_t len)
{
	char *d = malloc(len + 1);

	if (d) {
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}
