/*
 * sqlquote.c - string literals and identifiers for control queries.
 */
#include "protocol/sqlquote.h"

#include <ctype.h>
#include <string.h>

/* Appends c to out[*n], keeping room for the final NUL; false when full. */
static bool put(char *out, size_t outlen, size_t *n, char c)
{
	if (*n + 1 >= outlen)
		return false;
	out[(*n)++] = c;
	return true;
}

/* quote + s (each quote and, when 'backslashes', each backslash doubled) + quote */
static bool quote(const char *s, size_t len, char q, bool backslashes, bool lower, char *out,
		  size_t outlen, size_t *n)
{
	if (!put(out, outlen, n, q))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = lower ? (char)tolower((unsigned char)s[i]) : s[i];

		if ((c == q || (backslashes && c == '\\')) && !put(out, outlen, n, c))
			return false;
		if (!put(out, outlen, n, c))
			return false;
	}
	return put(out, outlen, n, q);
}

static bool finish(bool ok, char *out, size_t outlen, size_t n)
{
	if (outlen == 0)
		return false;
	out[ok ? n : 0] = '\0';
	return ok;
}

bool sqlquote_literal(const char *s, char *out, size_t outlen)
{
	bool backslash = strchr(s, '\\') != NULL;
	size_t n = 0;
	bool ok = true;

	/* E'...' reads backslashes as escapes whatever standard_conforming_strings is */
	if (backslash)
		ok = put(out, outlen, &n, ' ') && put(out, outlen, &n, 'E');
	ok = ok && quote(s, strlen(s), '\'', backslash, false, out, outlen, &n);
	return finish(ok, out, outlen, n);
}

bool sqlquote_ident(const char *s, char *out, size_t outlen)
{
	size_t n = 0;
	bool ok = quote(s, strlen(s), '"', false, false, out, outlen, &n);

	return finish(ok, out, outlen, n);
}

bool sqlquote_qualified(const char *name, char *out, size_t outlen)
{
	const char *dot = strchr(name, '.');
	size_t n = 0;
	bool ok;

	if (dot == NULL) {
		ok = name[0] != '\0' && quote(name, strlen(name), '"', false, true, out, outlen, &n);
	} else {
		ok = dot > name && dot[1] != '\0' && strchr(dot + 1, '.') == NULL &&
		     quote(name, (size_t)(dot - name), '"', false, true, out, outlen, &n) &&
		     put(out, outlen, &n, '.') &&
		     quote(dot + 1, strlen(dot + 1), '"', false, true, out, outlen, &n);
	}
	return finish(ok, out, outlen, n);
}
