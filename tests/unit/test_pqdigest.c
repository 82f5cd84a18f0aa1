/*
 * test_pqdigest.c - answers boiled down for comparison (protocol/pqdigest.c):
 * the same stream gives the same digest however it is split; rows in
 * another order change only the ordered hash; errors, columns (names and
 * types), counts and values are told apart; types of the database's own compare as one.
 */
#include "unit.h"

#include "protocol/pq_build.h"
#include "protocol/pqdigest.h"

/* A RowDescription of (name, type OID) columns. */
static void row_desc(struct pq_buf *b, int n, const char *const *names, const uint32_t *oids)
{
	pq_msg_begin(b, 'T');
	pq_put_u16(b, (uint16_t)n);
	for (int i = 0; i < n; i++) {
		pq_put_str(b, names[i]);
		pq_put_u32(b, 16400); /* table OID: differs between servers */
		pq_put_u16(b, (uint16_t)(i + 1));
		pq_put_u32(b, oids[i]);
		pq_put_u16(b, 4);
		pq_put_i32(b, -1);
		pq_put_u16(b, 0);
	}
	pq_msg_end(b);
}

/* An answer: columns a (oid), b (text); rows given as "1,x;2,y"; then CommandComplete, Z. */
static void answer(struct pq_buf *b, uint32_t oid, const char *rows, uint32_t table_oid)
{
	static const char *const names[2] = {"a", "b"};
	uint32_t oids[2] = {oid, 25};
	const char *p = rows;
	int n = 0;
	char tag[32];

	(void)table_oid;
	row_desc(b, 2, names, oids);
	while (*p) {
		char v1[16], v2[16];
		const char *vals[2] = {v1, v2};

		if (sscanf(p, "%15[^,],%15[^;]", v1, v2) != 2)
			break;
		pq_build_data_row(b, 2, vals);
		n++;
		p = strchr(p, ';');
		if (p == NULL)
			break;
		p++;
	}
	snprintf(tag, sizeof(tag), "SELECT %d", n);
	pq_build_command_complete(b, tag);
	pq_build_ready(b, 'I');
}

/* The digest of b's bytes fed in pieces of 'step' bytes (0: at once). */
static bool digest(const struct pq_buf *b, size_t step, struct pqdigest_result *r)
{
	struct pqdigest d;
	size_t off = 0;
	bool ready = false;
	char status = 0;

	pqdigest_init(&d, 1 << 20);
	while (off < b->len && !ready) {
		size_t n = step == 0 || b->len - off < step ? b->len - off : step;
		size_t used = pqdigest_feed(&d, b->data + off, n, &ready, &status);

		if (d.failed)
			return false;
		off += used;
	}
	pqdigest_take(&d, r);
	return ready && status == 'I' && off == b->len;
}

static void test_pqdigest_split(void)
{
	struct pq_buf b;
	struct pqdigest_result whole, piece;

	pq_buf_init(&b);
	answer(&b, 23, "1,x;2,y;3,zzzzzzzzzzzz", 1);
	UT_ASSERT(digest(&b, 0, &whole));
	UT_EQ_INT(whole.rows, 3);
	UT_EQ_INT(whole.ncols, 2);
	UT_EQ_STR(whole.cols, "a 23, b 25");
	UT_EQ_STR(whole.tag, "SELECT 3");
	UT_EQ_STR(whole.sqlstate, "");
	for (size_t step = 1; step < 12; step++) {
		UT_ASSERT(digest(&b, step, &piece));
		UT_EQ_INT(pqdigest_compare(&whole, &piece, true, false), PQDIGEST_SAME);
		UT_ASSERT(piece.seq_hash == whole.seq_hash && piece.cols_hash == whole.cols_hash);
	}
	pq_buf_free(&b);
}

static void test_pqdigest_compare(void)
{
	struct pq_buf b;
	struct pqdigest_result base, other;
	char line[200];

	pq_buf_init(&b);
	answer(&b, 23, "1,x;2,y", 1);
	UT_ASSERT(digest(&b, 0, &base));
	/* the same rows in another order */
	pq_buf_reset(&b);
	answer(&b, 23, "2,y;1,x", 1);
	UT_ASSERT(digest(&b, 0, &other));
	UT_EQ_INT(pqdigest_compare(&base, &other, false, false), PQDIGEST_SAME);
	UT_EQ_INT(pqdigest_compare(&base, &other, true, false), PQDIGEST_ORDER);
	/* another value, another count, another type */
	pq_buf_reset(&b);
	answer(&b, 23, "1,x;2,z", 1);
	UT_ASSERT(digest(&b, 0, &other));
	UT_EQ_INT(pqdigest_compare(&base, &other, true, false), PQDIGEST_DATA);
	UT_EQ_INT(pqdigest_compare(&base, &other, true, true), PQDIGEST_SAME);
	pq_buf_reset(&b);
	answer(&b, 23, "1,x", 1);
	UT_ASSERT(digest(&b, 0, &other));
	UT_EQ_STR(pqdigest_diff_name(pqdigest_compare(&base, &other, false, false)), "rows");
	pq_buf_reset(&b);
	answer(&b, 20, "1,x;2,y", 1);
	UT_ASSERT(digest(&b, 0, &other));
	UT_EQ_INT(pqdigest_compare(&base, &other, false, false), PQDIGEST_COLUMNS);
	/* another column name, the same types and rows */
	{
		static const char *const renamed[2] = {"a", "c"};
		static const uint32_t oids[2] = {23, 25};
		const char *v1[2] = {"1", "x"}, *v2[2] = {"2", "y"};

		pq_buf_reset(&b);
		row_desc(&b, 2, renamed, oids);
		pq_build_data_row(&b, 2, v1);
		pq_build_data_row(&b, 2, v2);
		pq_build_command_complete(&b, "SELECT 2");
		pq_build_ready(&b, 'I');
		UT_ASSERT(digest(&b, 0, &other));
		UT_EQ_STR(other.cols, "a 23, c 25");
		UT_EQ_INT(pqdigest_compare(&base, &other, true, false), PQDIGEST_COLUMNS);
		UT_EQ_STR(pqdigest_diff_name(pqdigest_compare(&base, &other, true, true)),
			  "columns");
	}
	/* types of the database's own: any OID from 16384 on is the same */
	pq_buf_reset(&b);
	answer(&b, 16390, "1,x", 1);
	UT_ASSERT(digest(&b, 0, &base));
	pq_buf_reset(&b);
	answer(&b, 24571, "1,x", 1);
	UT_ASSERT(digest(&b, 0, &other));
	UT_EQ_INT(pqdigest_compare(&base, &other, false, false), PQDIGEST_SAME);
	/* an error */
	pq_buf_reset(&b);
	pq_build_error(&b, "ERROR", "42883", "function f() does not exist", NULL, NULL);
	pq_build_ready(&b, 'I');
	UT_ASSERT(digest(&b, 3, &other));
	UT_EQ_STR(other.sqlstate, "42883");
	UT_EQ_STR(pqdigest_diff_name(pqdigest_compare(&base, &other, false, true)), "error");
	pqdigest_summary(&other, line, sizeof(line));
	UT_EQ_STR(line, "ERROR 42883: function f() does not exist");
	pqdigest_summary(&base, line, sizeof(line));
	UT_ASSERT(strncmp(line, "SELECT 1: 1 rows of (a 16390, b 25), hash ", 42) == 0);
	pq_buf_free(&b);
}

static void test_pqdigest_bad_length(void)
{
	const uint8_t bad[] = {'D', 0, 0, 0, 2};
	const uint8_t big[] = {'D', 0x7f, 0, 0, 0};
	struct pqdigest d;
	bool ready;
	char st = 0;

	pqdigest_init(&d, 1 << 20);
	(void)pqdigest_feed(&d, bad, sizeof(bad), &ready, &st);
	UT_ASSERT(d.failed && !ready);
	pqdigest_init(&d, 1 << 20);
	(void)pqdigest_feed(&d, big, sizeof(big), &ready, &st);
	UT_ASSERT(d.failed);
}

const struct unit_test unit_tests_pqdigest[] = {
	{"pqdigest_split", test_pqdigest_split},
	{"pqdigest_compare", test_pqdigest_compare},
	{"pqdigest_bad_length", test_pqdigest_bad_length},
	{NULL, NULL},
};
