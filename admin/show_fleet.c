/*
 * show_fleet.c - SHOW FLEET: one row per instance of the fleet and database
 * it serves (an instance that serves none has one row with the database
 * columns NULL), read on this instance's own connection to the fleet
 * database.
 */
#include "admin/show_fleet.h"

#include <libpq-fe.h>
#include <string.h>

#include "admin/console.h"
#include "admin/cutover/fleet.h"
#include "admin/cutover/fleet_sql.h"
#include "admin/job.h"
#include "admin/resultset.h"
#include "protocol/pq_build.h"
#include "protocol/sqlstate.h"

static const char *const fleet_cols[] = {
	"instance", "address", "heartbeat_age_ms", "live", "this", "db", "route", "paused",
};

bool admin_show_fleet_columns(int *ncols, const char *const **cols)
{
	*ncols = ADMIN_NCOLS(fleet_cols);
	*cols = fleet_cols;
	return true;
}

static void fleet_cb(void *arg, const struct control_result *r)
{
	struct admin_job *j = arg;

	if (!r->ok) {
		admin_job_fail(j, "could not read the fleet database: %s", r->error);
	} else if (r->res) {
		for (int i = 0; i < PQntuples(r->res); i++) {
			const char *v[ADMIN_NCOLS(fleet_cols)];

			v[0] = PQgetvalue(r->res, i, 0);
			v[1] = PQgetvalue(r->res, i, 1);
			v[2] = PQgetvalue(r->res, i, 2);
			v[3] = strcmp(PQgetvalue(r->res, i, 3), "t") == 0 ? "yes" : "no";
			v[4] = strcmp(v[0], fleet_me()) == 0 ? "yes" : "no";
			v[5] = PQgetisnull(r->res, i, 4) ? NULL : PQgetvalue(r->res, i, 4);
			v[6] = PQgetisnull(r->res, i, 5) ? NULL : PQgetvalue(r->res, i, 5);
			v[7] = PQgetisnull(r->res, i, 6)                    ? NULL
			       : strcmp(PQgetvalue(r->res, i, 6), "t") == 0 ? "yes"
									    : "no";
			admin_rs_row(admin_job_rs(j), v);
		}
	}
	admin_job_release(j);
}

void admin_show_fleet(struct client *c)
{
	struct admin_job *j;
	struct pq_buf b;

	if (!fleet_on()) {
		admin_send_error(c, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE,
				 "this instance is not in a fleet", "set fleet in [pgcutover]");
		return;
	}
	j = admin_job_new(c, ADMIN_NCOLS(fleet_cols), fleet_cols);
	if (j == NULL)
		return;
	pq_buf_init(&b);
	if (fleet_show_sql(&b, fleet_lease_ms()) && fleet_query((const char *)b.data, fleet_cb, j))
		admin_job_hold(j);
	else
		admin_job_fail(j, "out of memory");
	pq_buf_free(&b);
	admin_job_release(j);
}
