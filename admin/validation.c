/*
 * validation.c - CHECK, VERIFY and their SHOW commands on the admin console
 * (see validation.h).
 *
 * CHECK runs admin/cutover/check.h's checks for a switch of the database to
 * the side it is not routed to (or the one named) and answers one row per
 * check: check, status, detail.  VERIFY starts admin/cutover/verify.h's
 * comparison and answers at once with the tag VERIFY; SHOW VERIFY and SHOW
 * VERIFY DIFFS read what it found so far.
 */
#include "admin/validation.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/console.h"
#include "admin/cutover/check.h"
#include "admin/cutover/verify.h"
#include "admin/resultset.h"
#include "protocol/sqlstate.h"
#include "proxy/client.h"
#include "proxy/core/log.h"
#include "proxy/core/route.h"
#include "proxy/database.h"

static const char *const check_cols[] = {"check", "status", "detail"};

static const char *const verify_cols[] = {
	"table",
	"state",
	"rows_checked",
	"rows_total",
	"chunks_matched",
	"chunks_mismatched",
	"chunks_pending",
	"rows_missing",
	"rows_extra",
	"rows_different",
	"started",
	"eta",
	"db",
};

static const char *const diffs_cols[] = {"table", "key", "kind", "found_at"};

/* ---- CHECK ---- */

/* A CHECK being answered. */
struct check_wait {
	struct check_wait *next;
	struct client *c; /* NULL once the session left */
	struct check_run *run;
};

static struct check_wait *waits;

static void wait_unlink(struct check_wait *w)
{
	for (struct check_wait **pp = &waits; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
}

/* The rows of a report, into rs. */
static void check_rows(struct admin_rs *rs, const struct check_report *rep)
{
	for (int i = 0; i < CHECK_COUNT; i++) {
		const char *vals[3] = {check_name((enum check_id)i),
				       check_status_name(rep->rows[i].status), rep->rows[i].detail};

		admin_rs_row(rs, vals);
	}
}

void admin_checks_rows(struct client *c, const char *name)
{
	struct admin_session *a = c->kind_data;
	struct database *db = db_find(name);
	const struct check_report *rep = db ? cutover_last_checks(db) : NULL;
	struct admin_rs rs;

	if (rep == NULL || a == NULL || a->ext.exec || c->state == CL_CLOSING)
		return;
	admin_rs_begin(&rs, ADMIN_NCOLS(check_cols), check_cols);
	check_rows(&rs, rep);
	admin_rs_send(c, &rs);
}

static void checked(void *arg, const struct check_report *rep)
{
	struct check_wait *w = arg;
	struct admin_rs rs;

	wait_unlink(w);
	if (w->c) {
		admin_rs_begin(&rs, ADMIN_NCOLS(check_cols), check_cols);
		check_rows(&rs, rep);
		admin_rs_send(w->c, &rs);
		admin_done(w->c);
	}
	free(w);
}

void admin_check(struct client *c, const struct admin_cmd *cmd)
{
	struct database *db = db_find(cmd->db);
	enum route_side to;
	struct check_wait *w;
	char msg[200];

	if (db == NULL || db->cfg == NULL) {
		admin_send_no_db(c, cmd->db);
		return;
	}
	to = cmd->side_given ? (cmd->to_source ? SIDE_SOURCE : SIDE_TARGET)
			     : (db->route == SIDE_SOURCE ? SIDE_TARGET : SIDE_SOURCE);
	if (to == db->route) {
		snprintf(msg, sizeof(msg), "database \"%s\" is already routed to its %s", db->name,
			 route_side_name(to));
		admin_send_error(c, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE, msg,
				 "CHECK checks a switch to the side the database is not routed to");
		return;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		admin_send_error(c, SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return;
	}
	log_info("admin %s: CHECK %s TO %s", c->addr, db->name, route_side_name(to));
	w->c = c;
	admin_set_busy(c, true);
	w->run = check_start(db, db->cfg_owner, db->cfg, db->route, to, false, checked, w);
	if (w->run == NULL) {
		free(w);
		admin_set_busy(c, false);
		admin_send_error(c, SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return;
	}
	w->next = waits;
	waits = w;
}

/* ---- VERIFY ---- */

void admin_verify(struct client *c, const struct admin_cmd *cmd)
{
	struct database *db = db_find(cmd->db);
	const char *schemas[ADMIN_CMD_TABLES_MAX], *names[ADMIN_CMD_TABLES_MAX];
	char err[400];
	bool ok;

	if (db == NULL || db->cfg == NULL) {
		admin_send_no_db(c, cmd->db);
		return;
	}
	if (cmd->kind == ADMIN_CMD_VERIFY_STOP) {
		log_info("admin %s: VERIFY %s STOP", c->addr, db->name);
		ok = verify_stop(db, err, sizeof(err));
	} else {
		for (int i = 0; i < cmd->ntables; i++) {
			schemas[i] = cmd->tables[i].schema;
			names[i] = cmd->tables[i].name;
		}
		log_info("admin %s: VERIFY %s (%d tables named)", c->addr, db->name, cmd->ntables);
		ok = verify_start(db, schemas, names, cmd->ntables, err, sizeof(err));
	}
	if (ok)
		admin_send_tag(c, "VERIFY");
	else
		admin_send_error(c, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE, err,
				 cmd->kind == ADMIN_CMD_VERIFY_STOP
					 ? "SHOW VERIFY shows what runs"
					 : "SHOW VERIFY shows the VERIFY running; VERIFY db STOP stops it");
}

/* ---- SHOW VERIFY ---- */

static void verify_row(void *arg, const struct verify_table_view *v)
{
	struct admin_rs *rs = arg;
	char n[8][24], eta[24];
	const int64_t nums[8] = {v->rows_checked,      v->rows_total,     v->chunks_matched,
				 v->chunks_mismatched, v->chunks_pending, v->rows_missing,
				 v->rows_extra,        v->rows_different};
	const char *vals[ADMIN_NCOLS(verify_cols)];

	for (int i = 0; i < 8; i++)
		snprintf(n[i], sizeof(n[i]), "%" PRId64, nums[i]);
	snprintf(eta, sizeof(eta), "%" PRId64 " s", v->eta_s);
	vals[0] = v->table;
	vals[1] = v->state;
	for (int i = 0; i < 8; i++)
		vals[2 + i] = n[i];
	vals[10] = v->started;
	vals[11] = v->eta_s >= 0 ? eta : NULL;
	vals[12] = v->db;
	admin_rs_row(rs, vals);
}

void admin_show_verify(struct client *c, const char *name)
{
	struct database *db = NULL;
	struct admin_rs rs;

	if (name[0] && (db = db_find(name)) == NULL) {
		admin_send_no_db(c, name);
		return;
	}
	admin_rs_begin(&rs, ADMIN_NCOLS(verify_cols), verify_cols);
	verify_each_table(db, verify_row, &rs);
	admin_rs_send(c, &rs);
}

static void diff_row(void *arg, const struct verify_diff_view *v)
{
	const char *vals[4] = {v->table, v->key, v->kind, v->found_at};

	admin_rs_row(arg, vals);
}

void admin_show_verify_diffs(struct client *c, const char *name)
{
	struct database *db = db_find(name);
	struct admin_rs rs;

	if (db == NULL) {
		admin_send_no_db(c, name);
		return;
	}
	admin_rs_begin(&rs, ADMIN_NCOLS(diffs_cols), diffs_cols);
	verify_each_diff(db, diff_row, &rs);
	admin_rs_send(c, &rs);
}

/* ---- the console's side ---- */

bool admin_validation_columns(enum admin_cmd_kind kind, int *ncols, const char *const **cols)
{
	switch (kind) {
	case ADMIN_CMD_CHECK:
		*ncols = ADMIN_NCOLS(check_cols);
		*cols = check_cols;
		return true;
	case ADMIN_CMD_SHOW_VERIFY:
		*ncols = ADMIN_NCOLS(verify_cols);
		*cols = verify_cols;
		return true;
	case ADMIN_CMD_SHOW_VERIFY_DIFFS:
		*ncols = ADMIN_NCOLS(diffs_cols);
		*cols = diffs_cols;
		return true;
	default:
		return false;
	}
}

void admin_validation_forget(const struct client *c)
{
	for (struct check_wait *w = waits; w; w = w->next)
		if (w->c == c)
			w->c = NULL;
}

void admin_validation_free(void)
{
	while (waits) {
		struct check_wait *w = waits;

		waits = w->next;
		check_cancel(w->run);
		free(w);
	}
}
