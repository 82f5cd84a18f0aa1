/*
 * userlist.c - loading the auth_file and looking users up in it.
 *
 * The entries are kept in an array sorted by user name and searched with
 * bsearch(): the file is read once per load, looked up at every login, and
 * never modified in between.
 */
#include "proxy/auth/userlist.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/auth/crypto.h"
#include "proxy/auth/secret.h"

/* One line of the file. */
struct userlist_entry {
	char *user;   /* unquoted: "" already turned into " */
	char *secret; /* exactly as written; wiped before it is freed */
	int line;     /* where it was read: sorts duplicates so that the last one wins */
	/*
	 * For a plaintext password: the SCRAM secret derived from it at the
	 * first SCRAM login (one salt per user for the life of this userlist,
	 * as a stored verifier has), so that a client cannot make pgcutover run
	 * 4096 PBKDF2 rounds on the loop at every login attempt.
	 */
	struct auth_scram_secret *scram;
};

struct userlist {
	struct userlist_entry *items; /* sorted by user, one entry per user */
	size_t count;                 /* entries in items */
};

/* Sets *errmsg to a malloc'd message (left NULL when even that fails). */
static void set_error(char **errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(char **errmsg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(errmsg, fmt, ap) < 0)
		*errmsg = NULL;
	va_end(ap);
}

/* Overwrites a secret before its memory goes back to the allocator. */
static void free_secret(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

static void free_entries(struct userlist_entry *items, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(items[i].user);
		free_secret(items[i].secret);
		if (items[i].scram) {
			memset(items[i].scram, 0, sizeof(*items[i].scram));
			free(items[i].scram);
		}
	}
	free(items);
}

void userlist_free(struct userlist *ul)
{
	if (ul == NULL)
		return;
	free_entries(ul->items, ul->count);
	free(ul);
}

/*
 * Reads the quoted string at *p (which points at its opening quote) into a
 * new string, "" standing for one quote, and advances *p past the closing
 * quote.  Returns NULL with *why set when it is not terminated, or with *why
 * NULL when out of memory.
 */
static char *read_quoted(const char **p, const char **why)
{
	const char *s = *p + 1;
	char *out = malloc(strlen(s) + 1), *o = out;

	*why = NULL;
	if (out == NULL)
		return NULL;
	for (;; s++) {
		if (*s == '\0') {
			explicit_bzero(out, (size_t)(o - out));
			free(out);
			*why = "unterminated quoted string";
			return NULL;
		}
		if (*s == '"') {
			if (s[1] != '"')
				break;
			s++;
		}
		*o++ = *s;
	}
	*o = '\0';
	*p = s + 1;
	return out;
}

/*
 * Parses one line (without its newline) into *e.  Returns true for an
 * entry, false for a comment or blank line; on error returns false with
 * *why set (or *oom when out of memory).
 */
static bool parse_line(const char *line, struct userlist_entry *e, const char **why, bool *oom)
{
	const char *p = line;

	*why = NULL;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0' || *p == ';' || *p == '#')
		return false;
	if (*p != '"') {
		*why = "expected a quoted user name, as in \"user\" \"secret\"";
		return false;
	}
	e->user = read_quoted(&p, why);
	if (e->user == NULL) {
		*oom = *why == NULL;
		return false;
	}
	if (e->user[0] == '\0') {
		*why = "empty user name";
		goto fail;
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '"') {
		*why = "expected a quoted secret after the user name";
		goto fail;
	}
	e->secret = read_quoted(&p, why);
	if (e->secret == NULL) {
		*oom = *why == NULL;
		goto fail;
	}
	return true; /* anything after the secret is ignored, as PgBouncer does */

fail:
	free(e->user);
	e->user = NULL;
	return false;
}

/* By user, then by line, so that the last of several lines for a user sorts last. */
static int entry_cmp(const void *a, const void *b)
{
	const struct userlist_entry *x = a, *y = b;
	int c = strcmp(x->user, y->user);

	if (c != 0)
		return c;
	return (x->line > y->line) - (x->line < y->line);
}

/* Sorts and keeps one entry per user, the last one read. */
static void sort_unique(struct userlist *ul)
{
	size_t out = 0;

	if (ul->count == 0)
		return;
	qsort(ul->items, ul->count, sizeof(ul->items[0]), entry_cmp);
	for (size_t i = 0; i < ul->count; i++) {
		if (i + 1 < ul->count && strcmp(ul->items[i].user, ul->items[i + 1].user) == 0) {
			free(ul->items[i].user);
			free_secret(ul->items[i].secret);
			continue;
		}
		ul->items[out++] = ul->items[i];
	}
	ul->count = out;
}

struct userlist *userlist_load(const char *path, char **errmsg)
{
	struct userlist *ul = calloc(1, sizeof(*ul));
	size_t cap = 0, bufcap = 0;
	bool failed = false;
	char *buf = NULL;
	int lineno = 0;
	FILE *fp;

	*errmsg = NULL;
	if (ul == NULL) {
		set_error(errmsg, "%s: out of memory", path);
		return NULL;
	}
	fp = fopen(path, "r");
	if (fp == NULL) {
		set_error(errmsg, "%s: could not open auth_file: %s", path, strerror(errno));
		free(ul);
		return NULL;
	}
	for (;;) {
		struct userlist_entry e = {NULL, NULL, 0, NULL};
		const char *why;
		bool oom = false;
		ssize_t n;

		errno = 0;
		n = getline(&buf, &bufcap, fp);
		if (n < 0) {
			if (ferror(fp)) {
				set_error(errmsg, "%s: could not read auth_file: %s", path,
					  strerror(errno ? errno : EIO));
				failed = true;
			}
			break;
		}
		lineno++;
		if (memchr(buf, '\0', (size_t)n) != NULL) {
			set_error(errmsg, "%s:%d: line contains a NUL byte", path, lineno);
			failed = true;
			break;
		}
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			buf[--n] = '\0';
		if (!parse_line(buf, &e, &why, &oom)) {
			if (oom) {
				set_error(errmsg, "%s: out of memory", path);
				failed = true;
				break;
			}
			if (why) {
				set_error(errmsg, "%s:%d: %s", path, lineno, why);
				failed = true;
				break;
			}
			continue;
		}
		e.line = lineno;
		if (ul->count == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct userlist_entry *items = realloc(ul->items, ncap * sizeof(*items));

			if (items == NULL) {
				free(e.user);
				free_secret(e.secret);
				set_error(errmsg, "%s: out of memory", path);
				failed = true;
				break;
			}
			ul->items = items;
			cap = ncap;
		}
		ul->items[ul->count++] = e;
	}
	fclose(fp);
	if (buf) {
		explicit_bzero(buf, bufcap); /* it held secrets */
		free(buf);
	}
	if (failed) {
		userlist_free(ul);
		return NULL;
	}
	sort_unique(ul);
	return ul;
}

/* bsearch() key comparison: a user name against an entry. */
static int key_cmp(const void *key, const void *elem)
{
	const struct userlist_entry *e = elem;

	return strcmp(key, e->user);
}

const char *userlist_secret(const struct userlist *ul, const char *user)
{
	const struct userlist_entry *e;

	if (ul == NULL || ul->count == 0 || user == NULL)
		return NULL;
	e = bsearch(user, ul->items, ul->count, sizeof(ul->items[0]), key_cmp);
	return e ? e->secret : NULL;
}

bool userlist_scram_secret(struct userlist *ul, const char *user, struct auth_scram_secret *out)
{
	struct userlist_entry *e;

	if (ul == NULL || ul->count == 0 || user == NULL)
		return false;
	e = bsearch(user, ul->items, ul->count, sizeof(ul->items[0]), key_cmp);
	if (e == NULL)
		return false;
	switch (auth_secret_kind(e->secret)) {
	case AUTH_SECRET_SCRAM:
		return auth_scram_parse_secret(e->secret, out);
	case AUTH_SECRET_PLAIN:
		if (e->scram == NULL) {
			uint8_t salt[16];
			struct auth_scram_secret *sec = malloc(sizeof(*sec));

			if (sec == NULL || !auth_random_bytes(salt, sizeof(salt)) ||
			    !auth_scram_secret_from_password(e->secret, salt, sizeof(salt),
							     AUTH_SCRAM_DEFAULT_ITERATIONS, sec)) {
				free(sec);
				return false;
			}
			e->scram = sec;
		}
		*out = *e->scram;
		return true;
	case AUTH_SECRET_MD5:
		break;
	}
	return false;
}

size_t userlist_count(const struct userlist *ul)
{
	return ul ? ul->count : 0;
}

const char *userlist_user(const struct userlist *ul, size_t i)
{
	return ul && i < ul->count ? ul->items[i].user : NULL;
}
