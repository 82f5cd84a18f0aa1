/*
 * sqlquote.c - string literals and identifiers for the SQL pgcutover writes
 * itself: control queries and the statements that restore a session.
 */
#include "protocol/sqlquote.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "protocol/pq_build.h"

/*
 * Where quoted text goes: the fixed array out[outlen], of which n bytes are
 * written, or, when 'buf' is set, the end of a growable pq_buf.  Both
 * kinds of caller share one quoting loop, so the rules cannot drift apart.
 */
struct sink {
	char *out;
	size_t outlen;
	size_t n;
	struct pq_buf *buf;
};

/*
 * Appends c, keeping room in out for the final NUL; false when full (or, for
 * a pq_buf, when it failed: its sticky flag tells the caller).
 */
static bool put(struct sink *k, char c)
{
	if (k->buf) {
		pq_put_u8(k->buf, (uint8_t)c);
		return !k->buf->failed;
	}
	if (k->n + 1 >= k->outlen)
		return false;
	k->out[k->n++] = c;
	return true;
}

/* quote + s (each quote and, when 'backslashes', each backslash doubled) + quote */
static bool quote(struct sink *k, const char *s, size_t len, char q, bool backslashes, bool lower)
{
	if (!put(k, q))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = lower ? (char)tolower((unsigned char)s[i]) : s[i];

		if ((c == q || (backslashes && c == '\\')) && !put(k, c))
			return false;
		if (!put(k, c))
			return false;
	}
	return put(k, q);
}

static bool finish(bool ok, struct sink *k)
{
	if (k->outlen == 0)
		return false;
	k->out[ok ? k->n : 0] = '\0';
	return ok;
}

bool sqlquote_literal(const char *s, char *out, size_t outlen)
{
	struct sink k = {out, outlen, 0, NULL};
	bool backslash = strchr(s, '\\') != NULL;
	bool ok = true;

	/* E'...' reads backslashes as escapes whatever standard_conforming_strings is */
	if (backslash)
		ok = put(&k, ' ') && put(&k, 'E');
	ok = ok && quote(&k, s, strlen(s), '\'', backslash, false);
	return finish(ok, &k);
}

bool sqlquote_ident(const char *s, char *out, size_t outlen)
{
	struct sink k = {out, outlen, 0, NULL};
	bool ok = quote(&k, s, strlen(s), '"', false, false);

	return finish(ok, &k);
}

bool sqlquote_qualified(const char *name, char *out, size_t outlen)
{
	struct sink k = {out, outlen, 0, NULL};
	const char *dot = strchr(name, '.');
	bool ok;

	if (dot == NULL) {
		ok = name[0] != '\0' && quote(&k, name, strlen(name), '"', false, true);
	} else {
		ok = dot > name && dot[1] != '\0' && strchr(dot + 1, '.') == NULL &&
		     quote(&k, name, (size_t)(dot - name), '"', false, true) && put(&k, '.') &&
		     quote(&k, dot + 1, strlen(dot + 1), '"', false, true);
	}
	return finish(ok, &k);
}

void sqlquote_put_literal(struct pq_buf *b, const char *s)
{
	struct sink k = {NULL, 0, 0, b};

	(void)(put(&k, 'E') && quote(&k, s, strlen(s), '\'', true, false));
}

void sqlquote_put_ident(struct pq_buf *b, const char *s)
{
	struct sink k = {NULL, 0, 0, b};

	(void)quote(&k, s, strlen(s), '"', false, false);
}
