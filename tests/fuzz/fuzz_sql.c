/*
 * fuzz_sql.c - fuzz target for what pgcutover reads in clients' SQL text:
 * the tokenizer (protocol/sqltok.c), fingerprints (protocol/fingerprint.c)
 * and the statement classifier (protocol/sqlclass.c).
 *
 * The input is one query string, given as raw bytes with an exact length
 * (NULs included).  Invariants: tokens lie inside the text, in order, and
 * the scan ends; a fingerprint's text is terminated and within its bound,
 * the same bytes give the same fingerprint, and fingerprinting a normalised
 * text that was not cut gives it back unchanged; every schema change found
 * lies inside the text with a terminated description, the fast check never
 * says "none" when the full scan finds one, and the count equals the
 * reports; the read classification is deterministic, BEGIN_RO's rest lies
 * inside the text and ordered implies a read.
 */
#include "tests/fuzz/fuzz.h"

#include "protocol/fingerprint.h"
#include "protocol/sqlclass.h"
#include "protocol/sqltok.h"

struct seen {
	size_t len;
	unsigned reports;
};

static void on_ddl(void *arg, const struct sqlclass_ddl *d)
{
	struct seen *s = arg;

	FUZZ_CHECK(d->start <= s->len && d->len <= s->len - d->start);
	FUZZ_CHECK(memchr(d->what, '\0', sizeof(d->what)) != NULL && d->what[0] != '\0');
	s->reports++;
}

/* A temporary-object set of one name, to exercise both callbacks. */
static char temp_name[SQLTOK_WORD_MAX + 1];

static bool temp_known(void *arg, const char *name)
{
	(void)arg;
	FUZZ_CHECK(strlen(name) <= SQLTOK_WORD_MAX);
	return strcmp(name, temp_name) == 0;
}

static void temp_created(void *arg, const char *name)
{
	(void)arg;
	FUZZ_CHECK(strlen(name) <= SQLTOK_WORD_MAX);
	snprintf(temp_name, sizeof(temp_name), "%s", name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *sql = fuzz_dup_exact(data, size);
	struct sqltok t;
	size_t off = 0, last = 0, n = 0;
	struct fingerprint a, b;
	struct sqlclass_temps temps = {temp_known, temp_created, NULL};
	struct seen s = {size, 0};
	unsigned found;
	struct sqlclass_read r1, r2;

	/* tokens */
	while (sqltok_next(sql, size, &off, &t) != SQLTOK_END) {
		FUZZ_CHECK(t.start >= last && t.len > 0 && t.start + t.len <= size);
		FUZZ_CHECK(off == t.start + t.len);
		FUZZ_CHECK(memchr(t.word, '\0', sizeof(t.word)) != NULL);
		if (t.kind == SQLTOK_STRING || t.kind == SQLTOK_IDENT)
			FUZZ_CHECK(t.body >= t.start && t.body + t.body_len <= t.start + t.len);
		last = off;
		FUZZ_CHECK(++n <= size);
	}
	FUZZ_CHECK(off <= size);

	/* fingerprints */
	fingerprint_sql(sql, size, &a);
	FUZZ_CHECK(memchr(a.text, '\0', sizeof(a.text)) != NULL);
	fingerprint_sql(sql, size, &b);
	FUZZ_CHECK(a.hash == b.hash && strcmp(a.text, b.text) == 0);
	if (!a.cut && memchr(sql, '\0', size) == NULL) {
		fingerprint_sql((const uint8_t *)a.text, strlen(a.text), &b);
		FUZZ_CHECK(strcmp(a.text, b.text) == 0);
	}

	/* schema changes */
	temp_name[0] = '\0';
	found = sqlclass_find_ddl(sql, size, &temps, on_ddl, &s);
	FUZZ_CHECK(found == s.reports);
	if (found > 0)
		FUZZ_CHECK(sqlclass_ddl_maybe(sql, size));
	temp_name[0] = '\0';
	/* without the session's temporary objects, more is a schema change, never less */
	FUZZ_CHECK(sqlclass_find_ddl(sql, size, NULL, NULL, NULL) >= found);

	/* reads */
	sqlclass_read(sql, size, &r1);
	sqlclass_read(sql, size, &r2);
	FUZZ_CHECK(memcmp(&r1, &r2, sizeof(r1)) == 0);
	FUZZ_CHECK(r1.rest <= size);
	if (r1.ordered)
		FUZZ_CHECK(r1.kind == SQLCLASS_READ || r1.kind == SQLCLASS_BEGIN_RO ||
			   r1.kind == SQLCLASS_TXN);
	free(sql);
	return 0;
}
