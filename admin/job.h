/*
 * job.h - the admin console's background jobs (job.c): a command whose
 * answer needs control queries to the databases (SHOW LAG, SHOW SEQUENCES,
 * SHOW REPLICATION) collects its rows while they run and answers once the
 * last one is back.  Internal to admin/.
 *
 * A job holds a count of what it still waits for (admin_job_hold() /
 * admin_job_release()); when it falls to zero, its completion hook runs (to
 * build rows from what was gathered), then the rows, or the first error the
 * job recorded, go to whoever asked, if still there, and admin_done() lets
 * the session go on.  The job's control connections are freed once the
 * callback that finished it has returned.
 */
#ifndef PGCUTOVER_ADMIN_JOB_H
#define PGCUTOVER_ADMIN_JOB_H

#include <stdbool.h>

#include "proxy/core/route.h"

struct admin_job;
struct admin_rs;
struct client;
struct control_conn;
struct database;

/*
 * A job for c with an empty result set of these columns, holding one count
 * (released by the caller once everything is started); the session is
 * marked busy.  NULL when out of memory (nothing was sent).
 */
struct admin_job *admin_job_new(struct client *c, int ncols, const char *const *cols);
/* A control connection of the job to one side of db; NULL when none can be had. */
struct control_conn *admin_job_ctl(struct admin_job *j, const struct database *db,
				   enum route_side side);
/* The rows being collected. */
struct admin_rs *admin_job_rs(struct admin_job *j);
/* One more thing to wait for / one less (the last finishes the job). */
void admin_job_hold(struct admin_job *j);
void admin_job_release(struct admin_job *j);
/* Record a failure: the job answers with it (the first one wins) instead of rows. */
void admin_job_fail(struct admin_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whether a failure was recorded. */
bool admin_job_failed(const struct admin_job *j);
/*
 * What the job keeps for its command (freed with free_fn when the job
 * goes), and the hook that turns it into rows when the last count goes.
 */
void admin_job_set_data(struct admin_job *j, void *data, void (*free_fn)(void *data),
			void (*complete)(struct admin_job *j));
void *admin_job_data(struct admin_job *j);

/* The session c goes away: its running jobs finish without a reply. */
void admin_jobs_forget(const struct client *c);
/* Free every job (exit). */
void admin_jobs_shutdown(void);

#endif /* PGCUTOVER_ADMIN_JOB_H */
