/*
 * route_async.c - writing route files from the loop thread (see route.h):
 * route_store_async() queues a request for one worker thread, which writes
 * it with route_replace_sync() (fsyncs and all) while the loop goes on, and
 * reports back on the loop through a pipe.  Requests complete in order; a
 * shutdown still writes what is queued.
 *
 * The worker is started on first use.  It takes requests from a queue in
 * order (so two switches of one database are written in the order they were
 * decided, and never race on the same temporary file), puts each finished
 * request on a done queue, and writes a byte to a pipe.  The pipe's read end
 * has a persistent event on the loop, whose callback runs the done callbacks
 * there.  This needs no libevent locking (no evthread_use_pthreads): libevent
 * is only ever touched by the loop thread; the two queues are guarded by our
 * own mutex.
 */
#include "proxy/core/route.h"

#include "proxy/core/log.h"

#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One route_store_async() call, owned by the queues until done has run. */
struct route_req {
	struct route_req *next; /* in route_async.todo or route_async.done */
	char *state_dir;        /* copies: the caller may free its own at once */
	char *db;
	struct route_state st;
	route_done_cb done; /* run on the loop thread when finished */
	void *arg;
	bool own_arg;  /* route_store_async_owned(): arg is freed if done never runs */
	bool ok;       /* set by the worker: the file is durable */
	char err[512]; /* set by the worker when !ok */
};

/* A FIFO of requests; tail points at the last next pointer (or at head). */
struct route_queue {
	struct route_req *head;
	struct route_req **tail;
};

/*
 * The worker and its link to the loop.  The fields marked "loop" are only
 * touched by the loop thread (the worker sees pipe_wr, which is set before
 * the worker starts and closed after it is joined); the rest are guarded by
 * lock.
 */
static struct route_async {
	pthread_mutex_t lock;    /* guards todo, done and stopping */
	pthread_cond_t wake;     /* signalled when todo grows or stopping is set */
	struct route_queue todo; /* requests for the worker, in order */
	struct route_queue done; /* finished requests for the loop, in order */
	bool stopping;           /* route_shutdown(): finish todo, then exit */
	bool started;            /* loop: the worker, pipe and event exist */
	pthread_t thread;        /* loop: the worker */
	struct event_base *base; /* loop: where ev is registered */
	struct event *ev;        /* loop: persistent read event on pipe_rd */
	int pipe_rd;             /* loop: drained by route_on_notify() */
	int pipe_wr;             /* one byte per finished request, from the worker */
} ra = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
	.pipe_rd = -1,
	.pipe_wr = -1,
};

static void route_queue_push(struct route_queue *q, struct route_req *r)
{
	if (q->head == NULL)
		q->tail = &q->head;
	r->next = NULL;
	*q->tail = r;
	q->tail = &r->next;
}

static struct route_req *route_queue_pop(struct route_queue *q)
{
	struct route_req *r = q->head;

	if (r != NULL) {
		q->head = r->next;
		if (q->head == NULL)
			q->tail = &q->head;
	}
	return r;
}

static void route_req_free(struct route_req *r)
{
	free(r->state_dir);
	free(r->db);
	free(r);
}

/*
 * The worker: writes requests one at a time, in order, with the lock released
 * during the I/O so the loop is never kept waiting.  On stopping it finishes
 * what is queued first: a switch that asked for its route to be stored must
 * not be silently dropped by a shutdown.
 */
static void *route_worker(void *unused)
{
	(void)unused;
	for (;;) {
		struct route_req *r;
		ssize_t n;

		pthread_mutex_lock(&ra.lock);
		while (ra.todo.head == NULL && !ra.stopping)
			pthread_cond_wait(&ra.wake, &ra.lock);
		r = route_queue_pop(&ra.todo);
		pthread_mutex_unlock(&ra.lock);
		if (r == NULL)
			break; /* stopping, and nothing left */

		r->ok = route_replace_sync(r->state_dir, r->db, &r->st, r->err, sizeof(r->err));

		pthread_mutex_lock(&ra.lock);
		route_queue_push(&ra.done, r);
		pthread_mutex_unlock(&ra.lock);
		/*
		 * Wake the loop.  The pipe is non-blocking: if it is full, bytes
		 * are already waiting, and the loop empties the whole done queue
		 * on any wake-up, so a lost byte loses nothing.
		 */
		do
			n = write(ra.pipe_wr, "", 1);
		while (n < 0 && errno == EINTR);
	}
	return NULL;
}

/* Loop thread: the worker finished something; run the done callbacks. */
static void route_on_notify(evutil_socket_t fd, short what, void *unused)
{
	char buf[64];
	ssize_t n;

	(void)what;
	(void)unused;
	do
		n = read(fd, buf, sizeof(buf));
	while (n > 0 || (n < 0 && errno == EINTR));

	/*
	 * One at a time, taking the lock for each: a callback may queue another
	 * request or call route_shutdown(), which frees the done queue (and this
	 * event), after which the next pop finds nothing.
	 */
	for (;;) {
		struct route_req *r;

		pthread_mutex_lock(&ra.lock);
		r = route_queue_pop(&ra.done);
		pthread_mutex_unlock(&ra.lock);
		if (r == NULL)
			break;
		if (r->ok)
			log_debug("route state of database \"%s\" stored: route = %s", r->db,
				  route_side_name(r->st.side));
		r->done(r->arg, r->ok, r->ok ? NULL : r->err);
		route_req_free(r);
	}
}

/* Loop thread: creates the pipe, the event and the worker on first use. */
static bool route_async_start(struct event_base *base)
{
	int fds[2];
	sigset_t all, old;
	int rc;

	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_error("could not create pipe for route state writes: %s", strerror(errno));
		return false;
	}
	ra.ev = event_new(base, fds[0], EV_READ | EV_PERSIST, route_on_notify, NULL);
	if (ra.ev == NULL || event_add(ra.ev, NULL) < 0) {
		log_error("could not register event for route state writes");
		goto fail;
	}
	ra.pipe_rd = fds[0];
	ra.pipe_wr = fds[1];

	/*
	 * The worker blocks every signal, so that SIGTERM, SIGHUP and the like
	 * are always delivered to the loop thread, which handles them.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&ra.thread, NULL, route_worker, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_error("could not start route state writer thread: %s", strerror(rc));
		goto fail;
	}
	ra.base = base;
	ra.started = true;
	return true;

fail:
	if (ra.ev != NULL)
		event_free(ra.ev);
	ra.ev = NULL;
	ra.pipe_rd = ra.pipe_wr = -1;
	close(fds[0]);
	close(fds[1]);
	return false;
}

static bool store_async(struct event_base *base, const char *state_dir, const char *db,
			const struct route_state *st, route_done_cb done, void *arg, bool own_arg)
{
	struct route_req *r;

	if (ra.started && base != ra.base) {
		log_error("could not store route state: requests must all use one event base");
		return false;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		goto oom;
	r->state_dir = strdup(state_dir ? state_dir : "");
	r->db = strdup(db ? db : "");
	if (r->state_dir == NULL || r->db == NULL)
		goto oom;
	r->st = *st;
	r->done = done;
	r->arg = arg;
	r->own_arg = own_arg;

	if (!ra.started && !route_async_start(base)) {
		route_req_free(r);
		return false;
	}
	pthread_mutex_lock(&ra.lock);
	route_queue_push(&ra.todo, r);
	pthread_cond_signal(&ra.wake);
	pthread_mutex_unlock(&ra.lock);
	return true;

oom:
	log_error("could not store route state: out of memory");
	if (r != NULL)
		route_req_free(r);
	return false;
}

bool route_store_async(struct event_base *base, const char *state_dir, const char *db,
		       const struct route_state *st, route_done_cb done, void *arg)
{
	return store_async(base, state_dir, db, st, done, arg, false);
}

bool route_store_async_owned(struct event_base *base, const char *state_dir, const char *db,
			     const struct route_state *st, route_done_cb done, void *arg)
{
	return store_async(base, state_dir, db, st, done, arg, true);
}

void route_shutdown(void)
{
	struct route_req *r;

	if (!ra.started)
		return;
	pthread_mutex_lock(&ra.lock);
	ra.stopping = true;
	pthread_cond_signal(&ra.wake);
	pthread_mutex_unlock(&ra.lock);
	/* The worker writes what is queued, then exits; it can no longer touch the pipe. */
	pthread_join(ra.thread, NULL);

	event_free(ra.ev);
	ra.ev = NULL;
	close(ra.pipe_rd);
	close(ra.pipe_wr);
	ra.pipe_rd = ra.pipe_wr = -1;

	/* Finished but not yet reported: promised never to call back now. */
	pthread_mutex_lock(&ra.lock);
	while ((r = route_queue_pop(&ra.done)) != NULL) {
		if (r->own_arg)
			free(r->arg);
		route_req_free(r);
	}
	ra.stopping = false;
	pthread_mutex_unlock(&ra.lock);
	ra.base = NULL;
	ra.started = false;
}
