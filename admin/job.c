/*
 * job.c - the admin console's background jobs (see job.h).
 */
#include "admin/job.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "admin/console.h"
#include "admin/cutover/control.h"
#include "admin/cutover/control_open.h"
#include "admin/resultset.h"
#include "protocol/sqlstate.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

/* Control connections one job may open (SHOW LAG: one per database). */
#define JOB_CTL_MAX 128

struct admin_job {
	struct client *requester;              /* NULL once the admin client left */
	int pending;                           /* what the job still waits for */
	struct admin_rs *rs;                   /* rows so far; NULL once sent */
	struct control_conn *ctl[JOB_CTL_MAX]; /* the job's own control connections */
	int nctl;                              /* used entries of ctl */
	char error[400];                       /* the first failure ("" when none) */
	void *data;                            /* the command's own (admin_job_set_data) */
	void (*free_data)(void *data);
	void (*complete)(struct admin_job *j); /* builds the rows once nothing is pending */
	struct admin_job *next;                /* on the list of running jobs */
};

/* Every job not finished yet. */
static struct admin_job *jobs;

static void job_free(struct admin_job *j)
{
	for (int i = 0; i < j->nctl; i++)
		control_conn_free(j->ctl[i]);
	if (j->rs) {
		admin_rs_free(j->rs);
		free(j->rs);
	}
	if (j->free_data)
		j->free_data(j->data);
	free(j);
}

static void job_unlink(struct admin_job *j)
{
	for (struct admin_job **pp = &jobs; *pp; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	}
}

/* Deferred free: a job ends inside a control callback. */
static void job_free_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	job_free(arg);
}

/* Nothing is pending any more: answer and let the session go on. */
static void job_finish(struct admin_job *j)
{
	struct client *c;

	if (j->complete && !j->error[0])
		j->complete(j);
	c = j->requester;
	job_unlink(j);
	if (c) {
		if (j->error[0]) {
			admin_reply_error(c, SQLSTATE_CONNECTION_FAILURE, j->error,
					  "check that control_user can log in to both sides");
		} else {
			admin_rs_send(c, j->rs); /* frees the rows' buffer */
			free(j->rs);
			j->rs = NULL;
			admin_done(c);
		}
	}
	for (int i = 0; i < j->nctl; i++)
		control_conn_reset(j->ctl[i]);
	event_base_once(rt.base, -1, EV_TIMEOUT, job_free_cb, j, NULL);
}

struct admin_job *admin_job_new(struct client *c, int ncols, const char *const *cols)
{
	struct admin_job *j = calloc(1, sizeof(*j));

	if (j == NULL || (j->rs = calloc(1, sizeof(*j->rs))) == NULL) {
		free(j);
		return NULL;
	}
	j->requester = c;
	j->pending = 1;
	admin_rs_begin(j->rs, ncols, cols);
	j->next = jobs;
	jobs = j;
	admin_set_busy(c, true);
	return j;
}

struct control_conn *admin_job_ctl(struct admin_job *j, const struct database *db,
				   enum route_side side)
{
	struct control_conn *cc;

	if (j->nctl == JOB_CTL_MAX || db->cfg == NULL)
		return NULL;
	cc = control_open(rt.cfg, rt.users, db->cfg, side);
	if (cc)
		j->ctl[j->nctl++] = cc;
	return cc;
}

struct admin_rs *admin_job_rs(struct admin_job *j)
{
	return j->rs;
}

void admin_job_hold(struct admin_job *j)
{
	j->pending++;
}

void admin_job_release(struct admin_job *j)
{
	if (--j->pending == 0)
		job_finish(j);
}

void admin_job_fail(struct admin_job *j, const char *fmt, ...)
{
	va_list ap;

	if (j->error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(j->error, sizeof(j->error), fmt, ap);
	va_end(ap);
}

bool admin_job_failed(const struct admin_job *j)
{
	return j->error[0] != '\0';
}

void admin_job_set_data(struct admin_job *j, void *data, void (*free_fn)(void *data),
			void (*complete)(struct admin_job *j))
{
	j->data = data;
	j->free_data = free_fn;
	j->complete = complete;
}

void *admin_job_data(struct admin_job *j)
{
	return j->data;
}

void admin_jobs_forget(const struct client *c)
{
	for (struct admin_job *j = jobs; j; j = j->next)
		if (j->requester == c)
			j->requester = NULL;
}

void admin_jobs_shutdown(void)
{
	while (jobs) {
		struct admin_job *j = jobs;

		jobs = j->next;
		job_free(j);
	}
}
