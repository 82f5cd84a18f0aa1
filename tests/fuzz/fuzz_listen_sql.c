/*
 * fuzz_listen_sql.c - fuzz target for the statement splitter and classifier
 * of proxy/listen_sql.c, which reads every query text a client sends in
 * transaction pooling (LISTEN, UNLISTEN, NOTIFY), and for its parser of
 * NotificationResponse bodies.
 *
 * The input, in an exact-size block (no NUL after it), is a query text;
 * the same bytes are also parsed as a notification body.  Invariants: the
 * splitter always moves forward and stays in bounds, so walking a text
 * ends; every statement it finds is classified; an UNLISTEN's name is a
 * terminated string of at most LISTEN_NAME_MAX bytes; the scan reports no
 * kind but the known ones; a parsed notification's channel and payload lie
 * inside the body and end with its NULs.
 */
#include "tests/fuzz/fuzz.h"

#include "proxy/listen_sql.h"

static int seen;

static void count(void *arg, enum listen_stmt kind, const char *name)
{
	(void)arg;
	FUZZ_CHECK(kind == LS_LISTEN || kind == LS_UNLISTEN || kind == LS_UNLISTEN_ALL ||
		   kind == LS_NOTIFY);
	FUZZ_CHECK(name != NULL && strlen(name) <= LISTEN_NAME_MAX);
	FUZZ_CHECK(kind == LS_UNLISTEN || name[0] == '\0');
	seen++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *sql = fuzz_dup_exact(data, size);
	size_t off = 0;
	int statements = 0, known = 0;

	FUZZ_CHECK(sql != NULL || size == 0);
	while (off < size) {
		size_t next = listen_sql_next(sql, size, off);
		char name[LISTEN_NAME_MAX + 1];
		enum listen_stmt kind;

		FUZZ_CHECK(next > off && next <= size);
		memset(name, 'x', sizeof(name));
		kind = listen_sql_classify(sql + off, next - off, name, sizeof(name));
		if (kind == LS_UNLISTEN)
			FUZZ_CHECK(memchr(name, '\0', sizeof(name)) != NULL);
		statements++;
		known += kind != LS_OTHER;
		off = next;
	}
	seen = 0;
	listen_sql_scan(sql, size, count, NULL);
	/* the scan reports what the walk classified, statement by statement */
	FUZZ_CHECK(seen == known);
	(void)statements;
	{
		uint32_t pid;
		const char *channel, *payload;

		if (listen_sql_parse_notification(sql, size, &pid, &channel, &payload)) {
			FUZZ_CHECK((const uint8_t *)channel >= sql &&
				   (const uint8_t *)channel < sql + size);
			FUZZ_CHECK((const uint8_t *)payload >= sql &&
				   (const uint8_t *)payload < sql + size);
			FUZZ_CHECK(memchr(channel, '\0',
					  (size_t)(sql + size - (const uint8_t *)channel)));
			FUZZ_CHECK(memchr(payload, '\0',
					  (size_t)(sql + size - (const uint8_t *)payload)));
		}
	}
	free(sql);
	return 0;
}
