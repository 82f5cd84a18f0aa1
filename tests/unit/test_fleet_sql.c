/*
 * test_fleet_sql.c - the fleet database's SQL (admin/cutover/fleet_sql.c):
 * every name and value quoted, the conditions that make a decision and an
 * abort exclude each other, and conf/fleet-schema.sql saying the same as
 * the schema pgcutover creates itself, and the reading of a databases row
 * (its state; whether an epoch is lost).  What the statements do against a
 * server is proven by tests/integration/test_fleet.py.
 */
#include "unit.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include "admin/cutover/fleet_sql.h"
#include "protocol/pq_build.h"

#ifndef PGCUTOVER_SRCDIR
#define PGCUTOVER_SRCDIR "."
#endif

/* s without its whitespace and without "--" comments: to compare SQL texts. */
static char *squeeze(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;

	if (out == NULL)
		return NULL;
	while (*s) {
		if (s[0] == '-' && s[1] == '-') {
			while (*s && *s != '\n')
				s++;
			continue;
		}
		if (!isspace((unsigned char)*s))
			*o++ = *s;
		s++;
	}
	*o = '\0';
	return out;
}

static void test_schema_file_matches(void)
{
	FILE *fp = fopen(PGCUTOVER_SRCDIR "/conf/fleet-schema.sql", "r");
	char text[8192];
	size_t n;
	char *a, *b;

	UT_ASSERT(fp != NULL);
	n = fread(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	text[n] = '\0';
	a = squeeze(text);
	b = squeeze(fleet_schema_sql());
	UT_ASSERT(a != NULL && b != NULL);
	/* the file ends its statements with ';', the one query string does not end with one */
	if (strlen(a) && a[strlen(a) - 1] == ';')
		a[strlen(a) - 1] = '\0';
	if (strcmp(a, b) != 0) {
		free(a);
		free(b);
		UT_FAIL("conf/fleet-schema.sql and fleet_schema_sql() differ");
	}
	free(a);
	free(b);
}

static const char *built(struct pq_buf *b)
{
	return !b->failed && b->len > 0 && b->data[b->len - 1] == '\0' ? (const char *)b->data
								       : NULL;
}

static void test_names_are_quoted(void)
{
	struct fleet_db_state dbs[] = {{"app", "source", false}, {"o'dd", "target", true}};
	struct pq_buf b;
	const char *q;

	pq_buf_init(&b);
	UT_ASSERT(fleet_poll_sql(&b, "i'0", "127.0.0.1:6432", "2026-12-07 00:00:00+00", dbs, 2,
				 5000));
	q = built(&b);
	UT_ASSERT(q != NULL);
	UT_ASSERT(strstr(q, "E'i''0'"));
	UT_ASSERT(strstr(q, "ARRAY[E'app',E'o''dd']::text[]"));
	UT_ASSERT(strstr(q, "ARRAY[false,true]::boolean[]"));
	UT_ASSERT(strstr(q, "'5000 milliseconds'::pg_catalog.interval"));
	UT_ASSERT(strncmp(q, "LISTEN pgcutover;", 17) == 0);
	pq_buf_free(&b);

	/* no databases: typed empty arrays */
	pq_buf_init(&b);
	UT_ASSERT(fleet_poll_sql(&b, "i0", "a", "now", NULL, 0, 1000));
	UT_ASSERT(strstr(built(&b), "ARRAY[]::text[]") && strstr(built(&b), "ARRAY[]::boolean[]"));
	pq_buf_free(&b);
}

static void test_decision_and_abort_exclude_each_other(void)
{
	struct pq_buf b;
	const char *q;

	/* a switch begins only from a settled row (or a dead holder's) and with the lock */
	pq_buf_init(&b);
	UT_ASSERT(fleet_begin_sql(&b, "app", "i0", "source", "target", 3000));
	q = built(&b);
	UT_ASSERT(q && strstr(q, "pg_try_advisory_lock"));
	UT_ASSERT(strstr(q, "WHERE l.got AND d.db = E'app' AND d.route = E'source'"));
	UT_ASSERT(strstr(q, "d.state IN ('idle', 'decided', 'aborted')"));
	UT_ASSERT(strstr(q, "d.state IN ('pausing', 'aborting') AND d.lease_until < now()"));
	pq_buf_free(&b);

	/* the decision needs the row still pausing and ours */
	pq_buf_init(&b);
	UT_ASSERT(fleet_decide_sql(&b, "app", 7, "i0", "target"));
	q = built(&b);
	UT_ASSERT(q && strstr(q, "WHERE db = E'app' AND epoch = 7 AND state = 'pausing'"
				 " AND coordinator = E'i0'"));
	UT_ASSERT(strstr(q, "pg_notify('pgcutover', E'app')"));
	pq_buf_free(&b);

	/* an abort is taken from a pausing row only by its holder, or once its lease expired */
	pq_buf_init(&b);
	UT_ASSERT(fleet_claim_abort_sql(&b, "app", 7, "i1", 3000));
	q = built(&b);
	UT_ASSERT(q && strstr(q, "SET state = 'aborting', coordinator = E'i1'"));
	UT_ASSERT(strstr(q, "(state = 'pausing' AND (coordinator = E'i1' OR lease_until < now()))"));
	pq_buf_free(&b);

	pq_buf_init(&b);
	UT_ASSERT(fleet_aborted_sql(&b, "app", 7, "i1"));
	q = built(&b);
	UT_ASSERT(q && strstr(q, "AND state = 'aborting' AND coordinator = E'i1' RETURNING 1"));
	pq_buf_free(&b);

	/* an ack carries the servers the fence must spare */
	pq_buf_init(&b);
	{
		uint32_t pids[] = {101, 202};

		UT_ASSERT(fleet_ack_sql(&b, "app", 7, "i2", false, "it's stuck", pids, 2));
	}
	q = built(&b);
	UT_ASSERT(q && strstr(q, "false, E'it''s stuck', ARRAY[101,202]::integer[]"));
	UT_ASSERT(q[strlen(q) - 1] == ')'); /* ends with the notify, no trailing ';' */
	pq_buf_free(&b);
}

/* A one-row answer with the columns of a databases row (as fleet_state_sql gives). */
static PGresult *state_answer(const char *route, const char *epoch, const char *state,
			      const char *switch_to, const char *coordinator, const char *expired)
{
	static const char *const names[] = {"db",        "route",       "epoch",  "state",
					    "switch_to", "coordinator", "expired"};
	const char *values[] = {"app", route, epoch, state, switch_to, coordinator, expired};
	PGresAttDesc attrs[7];
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);

	memset(attrs, 0, sizeof(attrs));
	for (int i = 0; i < 7; i++) {
		attrs[i].name = (char *)names[i];
		attrs[i].format = 0;
		attrs[i].typid = 25; /* text */
		attrs[i].typlen = -1;
		attrs[i].atttypmod = -1;
	}
	if (res == NULL || !PQsetResultAttrs(res, 7, attrs))
		return res;
	for (int i = 0; i < 7; i++)
		if (!PQsetvalue(res, 0, i, (char *)values[i], (int)strlen(values[i])))
			break;
	return res;
}

static void test_row_read(void)
{
	struct fleet_row buf;
	const struct fleet_row *row;
	PGresult *res;
	struct pq_buf b;

	/* the state query reads the poll's columns */
	pq_buf_init(&b);
	UT_ASSERT(fleet_state_sql(&b, "app"));
	UT_ASSERT(strncmp(built(&b), "SELECT db, route, epoch, state, COALESCE(switch_to, ''),",
			  56) == 0);
	pq_buf_free(&b);

	res = state_answer("source", "7", "pausing", "target", "i0", "t");
	UT_ASSERT(res != NULL && PQntuples(res) == 1);
	row = fleet_state_read(&buf, res);
	UT_ASSERT(row == &buf);
	UT_EQ_STR(row->db, "app");
	UT_ASSERT(row->route == SIDE_SOURCE);
	UT_ASSERT(row->epoch == 7);
	UT_ASSERT(row->state == FLEET_PAUSING);
	UT_ASSERT(row->has_switch_to && row->switch_to == SIDE_TARGET);
	UT_EQ_STR(row->coordinator, "i0");
	UT_ASSERT(row->expired);
	UT_EQ_STR(fleet_state_name(row->state), "pausing");

	/* where an epoch stands: older (lost), this one, a later one began */
	UT_ASSERT(fleet_epoch_at(row, 8) == FLEET_EPOCH_LOST);
	UT_ASSERT(fleet_epoch_at(row, 7) == FLEET_EPOCH_CURRENT);
	UT_ASSERT(fleet_epoch_at(row, 6) == FLEET_EPOCH_PASSED);
	UT_ASSERT(fleet_epoch_at(NULL, 1) == FLEET_EPOCH_LOST);
	PQclear(res);

	/* no switch_to; a state this version does not know */
	res = state_answer("target", "3", "someday", "", "", "f");
	row = fleet_state_read(&buf, res);
	UT_ASSERT(row != NULL && row->route == SIDE_TARGET && !row->has_switch_to);
	UT_ASSERT(row->state == FLEET_OTHER && !row->expired);
	PQclear(res);

	/* a route that is neither side is no row */
	res = state_answer("elsewhere", "3", "idle", "", "", "f");
	UT_ASSERT(fleet_state_read(&buf, res) == NULL);
	PQclear(res);

	/* no answer, or no row */
	UT_ASSERT(fleet_state_read(&buf, NULL) == NULL);
	res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	UT_ASSERT(fleet_state_read(&buf, res) == NULL);
	PQclear(res);
}

const struct unit_test unit_tests_fleet_sql[] = {
	{"fleet_schema_file_matches", test_schema_file_matches},
	{"fleet_names_are_quoted", test_names_are_quoted},
	{"fleet_decision_and_abort_exclude_each_other", test_decision_and_abort_exclude_each_other},
	{"fleet_row_read", test_row_read},
	{NULL, NULL},
};
