/*
 * finish.c - FINISH db: once the move to the target is final, drop what
 * reverse replication created for the way back (replication_names.h): the
 * subscription on the source (disabled, detached from its slot, dropped),
 * then the slot and the publication on the target.  Only while the
 * database is routed to its target and not switching; each statement
 * tolerates an object already gone, so FINISH can be run again after a
 * partial failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/control.h"
#include "admin/cutover/control_open.h"
#include "admin/cutover/cutover.h"
#include "admin/cutover/engine.h"
#include "admin/cutover/replication_names.h"
#include "protocol/sqlstate.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

/* One FINISH: its two control connections and whom to tell. */
struct finish_job {
	struct finish_job *next;
	struct control_conn *ctl[2]; /* by route_side */
	cutover_done_fn done;        /* NULL once its requester went away */
	void *who;
	char db[64];
	int step; /* 0: the source's subscription; 1: the target's slot and publication */
	struct repl_names n;
};

static struct finish_job *finish_jobs;

static void finish_job_free(struct finish_job *j)
{
	for (struct finish_job **pp = &finish_jobs; *pp; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	}
	for (int side = 0; side < 2; side++)
		if (j->ctl[side])
			control_conn_free(j->ctl[side]);
	free(j);
}

static void finish_cb(void *arg, const struct control_result *r)
{
	struct finish_job *j = arg;
	char sql[900], msg[500];

	if (!r->ok) {
		snprintf(msg, sizeof(msg),
			 "could not drop the reverse replication of \"%s\" on the %s: %s", j->db,
			 j->step == 0 ? "source" : "target", r->error);
		log_warning("%s", msg);
		if (j->done)
			j->done(j->who, r->sqlstate[0] ? r->sqlstate : SQLSTATE_INTERNAL_ERROR, msg);
		finish_job_free(j);
		return;
	}
	if (j->step == 0) {
		/*
		 * The slot: a walsender may hold it a moment longer (a subscription
		 * just disabled), so it is ended first, and waited for.
		 */
		j->step = 1;
		snprintf(sql, sizeof(sql),
			 "SELECT pg_catalog.pg_terminate_backend(active_pid, 5000)"
			 " FROM pg_catalog.pg_replication_slots WHERE slot_name = %s AND active;"
			 " SELECT pg_catalog.pg_drop_replication_slot(slot_name)"
			 " FROM pg_catalog.pg_replication_slots WHERE slot_name = %s;"
			 " DROP PUBLICATION IF EXISTS %s",
			 j->n.rev_lit, j->n.rev_lit, j->n.rev_ident);
		if (control_conn_query(j->ctl[SIDE_TARGET], sql, CONTROL_QUERY_TIMEOUT_MS,
				       finish_cb, j))
			return;
		if (j->done)
			j->done(j->who, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		finish_job_free(j);
		return;
	}
	log_info("database %s: the reverse replication objects are dropped (FINISH)", j->db);
	if (j->done)
		j->done(j->who, NULL, "FINISH");
	finish_job_free(j);
}

bool cutover_finish_reverse(struct database *db, cutover_done_fn done, void *who, char *errbuf,
			    size_t errlen)
{
	struct finish_job *j;
	char sql[1200];

	if (db->cfg == NULL || cutover_running(db) || db->route != SIDE_TARGET) {
		snprintf(errbuf, errlen,
			 db->cfg == NULL ? "database \"%s\" is no longer configured"
			 : cutover_running(db)
				 ? "database \"%s\" is switching"
				 : "database \"%s\" is routed to its source: FINISH drops the way back once the move to the target is final",
			 db->name);
		return false;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL || !replication_names(db->cfg, NULL, &j->n)) {
		free(j);
		snprintf(errbuf, errlen, "out of memory");
		return false;
	}
	snprintf(j->db, sizeof(j->db), "%s", db->name);
	j->done = done;
	j->who = who;
	for (int side = 0; side < 2; side++)
		j->ctl[side] = control_open(rt.cfg, rt.users, db->cfg, (enum route_side)side);
	/*
	 * The subscription: disabled, detached from its slot (so DROP does not
	 * reach for it), dropped; a DO block so that a missing one is fine.
	 */
	snprintf(sql, sizeof(sql),
		 "DO $pgcutover_finish$ BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_subscription s"
		 " JOIN pg_catalog.pg_database d ON d.oid = s.subdbid"
		 " WHERE d.datname = pg_catalog.current_database() AND s.subname = %s) THEN"
		 " ALTER SUBSCRIPTION %s DISABLE; ALTER SUBSCRIPTION %s SET (slot_name = NONE);"
		 " END IF; END $pgcutover_finish$; DROP SUBSCRIPTION IF EXISTS %s",
		 j->n.rev_lit, j->n.rev_ident, j->n.rev_ident, j->n.rev_ident);
	j->next = finish_jobs;
	finish_jobs = j;
	if (j->ctl[0] == NULL || j->ctl[1] == NULL ||
	    !control_conn_query(j->ctl[SIDE_SOURCE], sql, CONTROL_QUERY_TIMEOUT_MS, finish_cb, j)) {
		finish_job_free(j);
		snprintf(errbuf, errlen, "out of memory");
		return false;
	}
	log_info("database %s: FINISH: dropping the reverse replication objects", db->name);
	return true;
}

void cutover_finish_forget(void *who)
{
	for (struct finish_job *j = finish_jobs; j; j = j->next)
		if (j->who == who)
			j->done = NULL;
}

void cutover_finish_free(void)
{
	while (finish_jobs)
		finish_job_free(finish_jobs);
}
