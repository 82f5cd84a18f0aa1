/*
 * fuzz_admin_cmd.c - fuzz target for the admin console's command parser
 * (admin/admin_cmd.c).
 *
 * The input is one query.  It is parsed the way admin/commands.c hands it over
 * (a NUL-terminated string and its strlen) and also as raw bytes with an
 * explicit length (NULs included), with the callers' error buffer and with
 * tiny ones.  Invariants: a success names a known command and a database
 * argument that is a terminated identifier of at most ADMIN_CMD_ARG_MAX - 1
 * bytes, only SWITCH sets DRY RUN and FORCE, only SWITCH, FENCE and UNFENCE
 * name a side, FENCE, UNFENCE, FINISH and SHOW SHADOW DIFFS always name a
 * database, only CHECK says a side was given, only VERIFY names tables (each
 * a terminated, non-empty name, at most ADMIN_CMD_TABLES_MAX of them), CHECK,
 * VERIFY, VERIFY STOP and SHOW VERIFY DIFFS always name a database, a failure
 * always explains itself;
 * parsing is deterministic, ignores the case of unquoted words, and a
 * trailing semicolon or surrounding blanks change nothing.
 */
#include "tests/fuzz/fuzz.h"

#include <ctype.h>

#include "admin/admin_cmd.h"

/* Parses q[0..len) and checks what any result must satisfy. */
static bool parse_checked(const char *q, size_t len, struct admin_cmd *out, size_t errlen)
{
	char *err = malloc(errlen ? errlen : 1);
	bool ok;

	FUZZ_CHECK(err != NULL);
	memset(err, 'x', errlen ? errlen : 1);
	ok = admin_cmd_parse(q, len, out, errlen ? err : NULL, errlen);
	if (ok) {
		FUZZ_CHECK(out->kind >= ADMIN_CMD_EMPTY && out->kind <= ADMIN_CMD_LAST);
		FUZZ_CHECK(memchr(out->db, '\0', sizeof(out->db)) != NULL);
		if (out->kind != ADMIN_CMD_SWITCH)
			FUZZ_CHECK(!out->dry_run && !out->force);
		if (out->kind != ADMIN_CMD_SWITCH && out->kind != ADMIN_CMD_FENCE &&
		    out->kind != ADMIN_CMD_UNFENCE && out->kind != ADMIN_CMD_CHECK)
			FUZZ_CHECK(!out->to_source);
		if (out->kind != ADMIN_CMD_CHECK)
			FUZZ_CHECK(!out->side_given);
		if (out->kind == ADMIN_CMD_CHECK && !out->side_given)
			FUZZ_CHECK(!out->to_source);
		FUZZ_CHECK(out->ntables >= 0 && out->ntables <= ADMIN_CMD_TABLES_MAX);
		if (out->kind != ADMIN_CMD_VERIFY)
			FUZZ_CHECK(out->ntables == 0);
		for (int i = 0; i < out->ntables; i++) {
			FUZZ_CHECK(memchr(out->tables[i].schema, '\0', ADMIN_CMD_ARG_MAX) != NULL);
			FUZZ_CHECK(memchr(out->tables[i].name, '\0', ADMIN_CMD_ARG_MAX) != NULL);
			FUZZ_CHECK(out->tables[i].name[0] != '\0');
		}
		switch (out->kind) {
		case ADMIN_CMD_FENCE:
		case ADMIN_CMD_UNFENCE:
		case ADMIN_CMD_FINISH:
		case ADMIN_CMD_SWITCH:
		case ADMIN_CMD_SHOW_SEQUENCES:
		case ADMIN_CMD_SHOW_SHADOW_DIFFS:
		case ADMIN_CMD_ABORT:
		case ADMIN_CMD_KILL:
		case ADMIN_CMD_CHECK:
		case ADMIN_CMD_VERIFY:
		case ADMIN_CMD_VERIFY_STOP:
		case ADMIN_CMD_SHOW_VERIFY_DIFFS:
			FUZZ_CHECK(out->db[0] != '\0'); /* needs a database */
			break;
		default:
			break;
		}
		switch (out->kind) {
		case ADMIN_CMD_FENCE:
		case ADMIN_CMD_UNFENCE:
		case ADMIN_CMD_FINISH:
		case ADMIN_CMD_SHOW_REPLICATION:
		case ADMIN_CMD_SHOW_SHADOW:
		case ADMIN_CMD_SHOW_SHADOW_DIFFS:
		case ADMIN_CMD_SHOW_DDL:
		case ADMIN_CMD_SHOW_LAG:
		case ADMIN_CMD_SHOW_SEQUENCES:
		case ADMIN_CMD_PAUSE:
		case ADMIN_CMD_RESUME:
		case ADMIN_CMD_SWITCH:
		case ADMIN_CMD_ABORT:
		case ADMIN_CMD_KILL:
		case ADMIN_CMD_CHECK:
		case ADMIN_CMD_VERIFY:
		case ADMIN_CMD_VERIFY_STOP:
		case ADMIN_CMD_SHOW_VERIFY:
		case ADMIN_CMD_SHOW_VERIFY_DIFFS:
			break;
		default:
			FUZZ_CHECK(out->db[0] == '\0'); /* takes no database */
			break;
		}
	} else if (errlen > 1) {
		FUZZ_CHECK(memchr(err, '\0', errlen) != NULL && err[0] != '\0');
	}
	free(err);
	return ok;
}

static bool same_cmd(const struct admin_cmd *a, const struct admin_cmd *b)
{
	if (a->kind != b->kind || strcmp(a->db, b->db) != 0 || a->to_source != b->to_source ||
	    a->dry_run != b->dry_run || a->force != b->force || a->side_given != b->side_given ||
	    a->ntables != b->ntables)
		return false;
	for (int i = 0; i < a->ntables; i++)
		if (strcmp(a->tables[i].schema, b->tables[i].schema) != 0 ||
		    strcmp(a->tables[i].name, b->tables[i].name) != 0)
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct admin_cmd a, b;
	char *q = fuzz_strndup(data, size);
	size_t qlen = strlen(q);
	bool ok;

	/* as admin_run() calls it: the query text without its NUL */
	ok = parse_checked(q, qlen, &a, 256);
	FUZZ_CHECK(parse_checked(q, qlen, &b, 256) == ok && (!ok || same_cmd(&a, &b)));
	/* tiny error buffers truncate, never overflow */
	FUZZ_CHECK(parse_checked(q, qlen, &b, 1) == ok);
	FUZZ_CHECK(parse_checked(q, qlen, &b, 0) == ok);
	/* raw bytes with an explicit length, in an exact-size block */
	{
		uint8_t *raw = fuzz_dup_exact(data, size);

		(void)parse_checked((const char *)raw, size, &b, 256);
		free(raw);
	}

	if (ok && qlen < 1000) {
		char *v = malloc(qlen + 4);
		bool quoted = memchr(q, '"', qlen) != NULL;
		bool has_semicolon = memchr(q, ';', qlen) != NULL;

		FUZZ_CHECK(v != NULL);
		/* unquoted words are case-insensitive */
		if (!quoted) {
			for (size_t i = 0; i <= qlen; i++)
				v[i] = (char)toupper((unsigned char)q[i]);
			FUZZ_CHECK(parse_checked(v, qlen, &b, 256) && same_cmd(&a, &b));
		}
		/* blanks around and one trailing semicolon change nothing */
		if (!has_semicolon || a.kind == ADMIN_CMD_EMPTY) {
			v[0] = ' ';
			memcpy(v + 1, q, qlen);
			memcpy(v + 1 + qlen, " ;", 3);
			FUZZ_CHECK(parse_checked(v, qlen + 3, &b, 256) && same_cmd(&a, &b));
		}
		free(v);
	}
	free(q);
	return 0;
}
