/*
 * test_sqllex.c - protocol/sqllex.c: the first words of SQL text, split as
 * PostgreSQL's lexer splits them, through comments, quotes and cut-off text.
 */
#include <stdint.h>
#include <string.h>

#include "protocol/sqllex.h"
#include "tests/unit/unit.h"

#define S(x) (const uint8_t *)(x), strlen(x)

static void test_sqllex_token(void)
{
	const char *sql = "  /* a /* nested */ comment */ -- line\n SeLeCt \"My \"\"Name\"\" \" ; x";
	size_t off = 0;
	char w[16];

	UT_EQ_INT(sqllex_token(S(sql), &off, w, sizeof(w)), SQLLEX_WORD);
	UT_EQ_STR(w, "select");
	UT_EQ_INT(sqllex_token(S(sql), &off, w, sizeof(w)), SQLLEX_QUOTED);
	UT_EQ_STR(w, "My \"Name\" ");
	UT_EQ_INT(sqllex_token(S(sql), &off, w, sizeof(w)), SQLLEX_OTHER);
	UT_EQ_STR(w, ";");
	UT_EQ_INT(sqllex_token(S(sql), &off, w, sizeof(w)), SQLLEX_WORD);
	UT_EQ_STR(w, "x");
	UT_EQ_INT(sqllex_token(S(sql), &off, w, sizeof(w)), SQLLEX_END);
	/* a word longer than the buffer, an unterminated comment, a cut quote */
	off = 0;
	UT_EQ_INT(sqllex_token(S("abcdefghijklmnopqrstuvwxyz next"), &off, w, sizeof(w)),
		  SQLLEX_OTHER);
	UT_EQ_INT(sqllex_token(S("abcdefghijklmnopqrstuvwxyz next"), &off, w, sizeof(w)),
		  SQLLEX_WORD);
	UT_EQ_STR(w, "next");
	off = 0;
	UT_EQ_INT(sqllex_token(S("/* never ends"), &off, w, sizeof(w)), SQLLEX_END);
	off = 0;
	UT_EQ_INT(sqllex_token(S("\"cut off"), &off, w, sizeof(w)), SQLLEX_END);
	/* a NUL ends the text, as in a Query message */
	off = 0;
	UT_EQ_INT(sqllex_token((const uint8_t *)"\0select", 7, &off, w, sizeof(w)), SQLLEX_END);
}

const struct unit_test unit_tests_sqllex[] = {
	{"sqllex_token", test_sqllex_token},
	{NULL, NULL},
};
