/*
 * preflight.c - the first phase of a switch: can it succeed?  It runs every
 * check of CHECK (check.h) for this switch and refuses on any fail, naming
 * the first failing check in the words the preflight has always used
 * ("replication slot check: it is not active: ...", "the target does not
 * answer: ...") and counting the others; the lag measured and the sequences
 * to sync are kept for a DRY RUN's row, which ends here.  Nothing is held
 * yet.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/check.h"
#include "admin/cutover/engine.h"
#include "protocol/sqlstate.h"
#include "proxy/core/log.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

/* How often a switch waiting for the guard of a database just added looks again. */
#define GUARD_POLL_MS 10

/* The last preflight's checks of each database, for DRY RUN's answer. */
struct kept_report {
	struct kept_report *next;
	char db[64];
	struct check_report rep;
};

static struct kept_report *kept;

static void keep_report(const struct database *db, const struct check_report *rep)
{
	struct kept_report *k;

	for (k = kept; k; k = k->next)
		if (strcmp(k->db, db->name) == 0)
			break;
	if (k == NULL) {
		k = calloc(1, sizeof(*k));
		if (k == NULL)
			return;
		snprintf(k->db, sizeof(k->db), "%s", db->name);
		k->next = kept;
		kept = k;
	}
	k->rep = *rep;
}

const struct check_report *cutover_last_checks(const struct database *db)
{
	for (struct kept_report *k = kept; k; k = k->next)
		if (strcmp(k->db, db->name) == 0)
			return &k->rep;
	return NULL;
}

void cutover_checks_free(void)
{
	while (kept) {
		struct kept_report *k = kept;

		kept = k->next;
		free(k);
	}
}

/* The names of the rows with this status, "a, b", into buf. */
static void names_of(const struct check_report *rep, enum check_status st, int skip, char *buf,
		     size_t len)
{
	buf[0] = '\0';
	for (int i = 0; i < CHECK_COUNT; i++) {
		size_t n = strlen(buf);

		if (i == skip || rep->rows[i].status != st || n + 2 >= len)
			continue;
		snprintf(buf + n, len - n, "%s%s", n ? ", " : "", check_name((enum check_id)i));
	}
}

/* The checks are in (check.h): go on, or refuse with the first failure. */
static void checked(void *arg, const struct check_report *rep)
{
	struct cutover *co = arg;
	const struct check_row *first = NULL;
	int first_id = -1;
	char others[300];

	co->check = NULL;
	if (co->phase != CO_PREFLIGHT)
		return;
	if (co->aborting) {
		cutover_fail(co, SQLSTATE_QUERY_CANCELED, "aborted by ABORT from the admin console");
		return;
	}
	co->reached = rep->rows[CHECK_REACHABLE].status != CHECK_STATUS_FAIL;
	co->preflight_lag = rep->lag;
	co->nsequences = rep->nsequences;
	keep_report(co->db, rep);
	for (int i = 0; i < CHECK_COUNT && first == NULL; i++) {
		if (rep->rows[i].status == CHECK_STATUS_FAIL) {
			first = &rep->rows[i];
			first_id = i;
		}
	}
	if (first == NULL) {
		cutover_phase_done(co);
		return;
	}
	names_of(rep, CHECK_STATUS_FAIL, first_id, others, sizeof(others));
	if (others[0])
		log_warning("switch %s: the checks %s failed as well", co->db->name, others);
	/* the first failure in the words it always had; the others named after it */
	cutover_fail(co,
		     first->sqlstate[0] ? first->sqlstate
					: SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE,
		     "%s%s%s%s%s%s%s%s",
		     first->error[0] ? first->error : check_name((enum check_id)first_id),
		     first->error[0] ? "" : " check: ", first->error[0] ? "" : first->detail,
		     others[0] ? "; failed too: " : "", others, others[0] ? " (CHECK " : "",
		     others[0] ? co->db->name : "", others[0] ? ")" : "");
	/* co is gone now (the failure ended the switch) */
}

/*
 * A database just added is checked for a fence left on the side it is
 * routed to (fence.c, cutover_guard): the switch waits for that, so that
 * the check's lift can never land after this switch's fence.
 */
static void guard_wait_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cutover *co = arg;

	(void)fd;
	(void)what;
	if (co->phase != CO_PREFLIGHT)
		return;
	if (co->aborting)
		cutover_fail(co, SQLSTATE_QUERY_CANCELED, "aborted by ABORT from the admin console");
	else
		cutover_preflight_enter(co);
}

void cutover_preflight_enter(struct cutover *co)
{
	if (cutover_guarding(co->db)) {
		struct timeval tv = {0, GUARD_POLL_MS * 1000};

		if (co->guard_wait == NULL)
			co->guard_wait = evtimer_new(rt.base, guard_wait_cb, co);
		if (co->guard_wait == NULL || evtimer_add(co->guard_wait, &tv) != 0)
			cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	co->check = check_start(co->db, co->config, cutover_cfg(co), co->from, co->to, co->force,
				checked, co);
	if (co->check == NULL)
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
}
