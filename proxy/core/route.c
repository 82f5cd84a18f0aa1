/*
 * route.c - reading and durably writing state_dir/<database>.route.
 *
 * The file decides where a database goes after a restart, so it is written
 * the way PostgreSQL writes its control files: the new contents go to a
 * temporary file that is fsynced, then renamed over the old file, then the
 * directory is fsynced so the rename itself survives a crash.  At every
 * instant the path holds either the complete old state or the complete new
 * one, never a torn mixture.
 *
 * The loop thread must never wait for a disk, so route_store_async() hands
 * the write to one worker thread, started on first use.  The worker takes
 * requests from a queue in order (so two switches of one database are
 * written in the order they were decided, and never race on the same
 * temporary file), puts each finished request on a done queue, and writes a
 * byte to a pipe.  The pipe's read end has a persistent event on the loop,
 * whose callback runs the done callbacks there.  This needs no libevent
 * locking (no evthread_use_pthreads): libevent is only ever touched by the
 * loop thread; the two queues are guarded by our own mutex.
 */
#include "proxy/core/route.h"

#include "proxy/core/log.h"

#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Longer than any valid file; a bigger file is refused rather than read. */
#define ROUTE_FILE_MAX 4096

/* PostgreSQL's NAMEDATALEN - 1, as the config module enforces. */
#define ROUTE_DB_MAX 63

/* Written first so that whoever opens the file knows how to undo a switch. */
#define ROUTE_HEADER "# pgcutover route state: delete this file to forget the switch\n"

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */
/* ---------------------------------------------------------------------- */

static void route_error(char *errbuf, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* snprintf into errbuf, tolerating a caller that passed no buffer. */
static void route_error(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errbuf == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

/*
 * strerror() for any thread: the worker formats messages too, and strerror()
 * may use a static buffer.  The Makefile defines _GNU_SOURCE, which selects
 * the strerror_r() that returns the message.
 */
static const char *route_strerror(int err, char *buf, size_t len)
{
	return strerror_r(err, buf, len);
}

const char *route_side_name(enum route_side side)
{
	return side == SIDE_TARGET ? "target" : "source";
}

/*
 * The config module already validates names; this is defence in depth, since
 * the name becomes part of a path: no '/', no leading '.' (no "..", no hidden
 * or temporary files), no control characters.
 */
static bool route_check_db(const char *db, char *errbuf, size_t errlen)
{
	size_t len;

	if (db == NULL || db[0] == '\0') {
		route_error(errbuf, errlen, "invalid database name for route state: name is empty");
		return false;
	}
	len = strlen(db);
	if (len > ROUTE_DB_MAX || db[0] == '.' || strchr(db, '/') != NULL) {
		route_error(errbuf, errlen, "invalid database name for route state: \"%.*s\"",
			    ROUTE_DB_MAX, db);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)db[i] < 0x20 || db[i] == 0x7f) {
			route_error(errbuf, errlen,
				    "invalid database name for route state: it contains a control character");
			return false;
		}
	}
	return true;
}

/* PATH = state_dir/<db>.route plus 'suffix' ("" or ".tmp"), checked for length. */
static bool route_path(char *out, size_t outlen, const char *state_dir, const char *db,
		       const char *suffix, char *errbuf, size_t errlen)
{
	int n;

	if (state_dir == NULL || state_dir[0] == '\0') {
		route_error(errbuf, errlen, "state_dir is empty");
		return false;
	}
	if (!route_check_db(db, errbuf, errlen))
		return false;
	n = snprintf(out, outlen, "%s/%s.route%s", state_dir, db, suffix);
	if (n < 0 || (size_t)n >= outlen) {
		route_error(errbuf, errlen, "route state path for database \"%s\" is too long", db);
		return false;
	}
	return true;
}

/*
 * An LSN as PostgreSQL prints it: up to 8 hex digits, '/', up to 8 hex
 * digits.  Empty means "not recorded" (a switch with lag_method=none).
 */
static bool route_valid_lsn(const char *s)
{
	size_t hi, lo;

	if (s[0] == '\0')
		return true;
	hi = strspn(s, "0123456789ABCDEFabcdef");
	if (hi == 0 || hi > 8 || s[hi] != '/')
		return false;
	lo = strspn(s + hi + 1, "0123456789ABCDEFabcdef");
	return lo > 0 && lo <= 8 && s[hi + 1 + lo] == '\0';
}

/* Two decimal digits at s as a number, -1 if they are not digits. */
static int route_2digits(const char *s)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	return (s[0] - '0') * 10 + (s[1] - '0');
}

/* Exactly what route_now() writes, "YYYY-MM-DDTHH:MM:SSZ", or empty. */
static bool route_valid_time(const char *s)
{
	int mon, day, hour, min, sec;

	if (s[0] == '\0')
		return true;
	if (strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':' || s[19] != 'Z')
		return false;
	if (route_2digits(s) < 0 || route_2digits(s + 2) < 0)
		return false;
	mon = route_2digits(s + 5);
	day = route_2digits(s + 8);
	hour = route_2digits(s + 11);
	min = route_2digits(s + 14);
	sec = route_2digits(s + 17);
	return mon >= 1 && mon <= 12 && day >= 1 && day <= 31 && hour >= 0 && hour <= 23 &&
	       min >= 0 && min <= 59 && sec >= 0 && sec <= 60;
}

/* A state we would be able to read back: refuse to write anything else. */
static bool route_check_state(const struct route_state *st, char *errbuf, size_t errlen)
{
	if (st->side != SIDE_SOURCE && st->side != SIDE_TARGET) {
		route_error(errbuf, errlen, "invalid route side %d", (int)st->side);
		return false;
	}
	if (memchr(st->switched_at, '\0', sizeof(st->switched_at)) == NULL ||
	    !route_valid_time(st->switched_at)) {
		route_error(errbuf, errlen, "invalid switch time for route state");
		return false;
	}
	if (memchr(st->source_lsn, '\0', sizeof(st->source_lsn)) == NULL ||
	    !route_valid_lsn(st->source_lsn)) {
		route_error(errbuf, errlen, "invalid source LSN for route state");
		return false;
	}
	return true;
}

void route_now(struct route_state *st)
{
	time_t now = time(NULL);
	struct tm tm;

	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(st->switched_at, sizeof(st->switched_at), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		st->switched_at[0] = '\0';
}

/* ---------------------------------------------------------------------- */
/* Reading                                                                */
/* ---------------------------------------------------------------------- */

/* Strips spaces, tabs and a CR (a file edited on Windows) from both ends, in place. */
static char *route_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	*end = '\0';
	return s;
}

/*
 * Parses the file's text (NUL-terminated, modified in place) into *out.
 * Strict, because a mistyped file must not silently route a database to the
 * source: every non-blank, non-comment line must be one known key, once.
 */
static bool route_parse(const char *path, char *text, struct route_state *out, char *errbuf,
			size_t errlen)
{
	bool seen_route = false, seen_time = false, seen_lsn = false;
	int lineno = 0;
	char *line = text;

	while (*line != '\0') {
		char *nl = strchr(line, '\n');
		char *next = nl ? nl + 1 : line + strlen(line);
		char *key, *value, *eq;
		bool *seen;

		if (nl)
			*nl = '\0';
		lineno++;
		key = route_trim(line);
		line = next;
		if (key[0] == '\0' || key[0] == '#')
			continue;
		eq = strchr(key, '=');
		if (eq == NULL) {
			route_error(errbuf, errlen, "%s:%d: syntax error: expected \"key = value\"",
				    path, lineno);
			return false;
		}
		*eq = '\0';
		key = route_trim(key);
		value = route_trim(eq + 1);

		if (strcmp(key, "route") == 0)
			seen = &seen_route;
		else if (strcmp(key, "switched_at") == 0)
			seen = &seen_time;
		else if (strcmp(key, "source_lsn") == 0)
			seen = &seen_lsn;
		else {
			route_error(errbuf, errlen, "%s:%d: unknown key \"%.64s\"", path, lineno,
				    key);
			return false;
		}
		if (*seen) {
			route_error(errbuf, errlen, "%s:%d: duplicate key \"%s\"", path, lineno,
				    key);
			return false;
		}
		*seen = true;

		if (seen == &seen_route) {
			if (strcmp(value, "source") == 0)
				out->side = SIDE_SOURCE;
			else if (strcmp(value, "target") == 0)
				out->side = SIDE_TARGET;
			else {
				route_error(errbuf, errlen,
					    "%s:%d: invalid value for \"route\": \"%.64s\" (expected source or target)",
					    path, lineno, value);
				return false;
			}
		} else if (seen == &seen_time) {
			if (!route_valid_time(value)) {
				route_error(errbuf, errlen,
					    "%s:%d: invalid value for \"switched_at\": \"%.64s\" (expected YYYY-MM-DDTHH:MM:SSZ)",
					    path, lineno, value);
				return false;
			}
			strcpy(out->switched_at, value); /* 20 bytes at most, checked above */
		} else {
			if (!route_valid_lsn(value)) {
				route_error(errbuf, errlen,
					    "%s:%d: invalid value for \"source_lsn\": \"%.64s\" (expected an LSN such as 0/16B3748)",
					    path, lineno, value);
				return false;
			}
			strcpy(out->source_lsn, value); /* 17 bytes at most, checked above */
		}
	}
	if (!seen_route) {
		route_error(errbuf, errlen, "%s: missing key \"route\"", path);
		return false;
	}
	return true;
}

bool route_load(const char *state_dir, const char *db, struct route_state *out, bool *found,
		char *errbuf, size_t errlen)
{
	char path[PATH_MAX], ebuf[128];
	char text[ROUTE_FILE_MAX + 1];
	struct route_state st;
	struct stat sb;
	size_t len = 0;
	int fd;

	memset(out, 0, sizeof(*out));
	out->side = SIDE_SOURCE;
	*found = false;
	if (!route_path(path, sizeof(path), state_dir, db, "", errbuf, errlen))
		return false;

	/* O_NONBLOCK: a FIFO planted at the path must not hang start-up. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return true;
		route_error(errbuf, errlen, "could not read route state file \"%s\": %s", path,
			    route_strerror(errno, ebuf, sizeof(ebuf)));
		return false;
	}
	if (fstat(fd, &sb) < 0) {
		route_error(errbuf, errlen, "could not read route state file \"%s\": %s", path,
			    route_strerror(errno, ebuf, sizeof(ebuf)));
		close(fd);
		return false;
	}
	if (!S_ISREG(sb.st_mode)) {
		route_error(errbuf, errlen,
			    "could not read route state file \"%s\": not a regular file", path);
		close(fd);
		return false;
	}
	/* Read one byte more than allowed, to tell "exactly full" from "too big". */
	while (len < sizeof(text)) {
		ssize_t n = read(fd, text + len, sizeof(text) - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			route_error(errbuf, errlen, "could not read route state file \"%s\": %s",
				    path, route_strerror(errno, ebuf, sizeof(ebuf)));
			close(fd);
			return false;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len > ROUTE_FILE_MAX) {
		route_error(errbuf, errlen,
			    "could not read route state file \"%s\": file is larger than %d bytes",
			    path, ROUTE_FILE_MAX);
		return false;
	}
	if (memchr(text, '\0', len) != NULL) {
		route_error(errbuf, errlen,
			    "could not read route state file \"%s\": file contains a zero byte",
			    path);
		return false;
	}
	text[len] = '\0';

	memset(&st, 0, sizeof(st));
	st.side = SIDE_SOURCE;
	if (!route_parse(path, text, &st, errbuf, errlen))
		return false;
	*out = st;
	*found = true;
	return true;
}

/* ---------------------------------------------------------------------- */
/* Writing                                                                */
/* ---------------------------------------------------------------------- */

/* Directory fsyncs still to fail, for the unit tests (route_fail_dir_fsync_for_tests). */
static int route_dir_fsync_faults;

void route_fail_dir_fsync_for_tests(int n)
{
	route_dir_fsync_faults = n;
}

/* fsync()s a directory, making the entries created or renamed in it durable. */
static bool route_fsync_dir(const char *dir, char *errbuf, size_t errlen)
{
	char ebuf[128];
	int fd, err;

	if (route_dir_fsync_faults > 0) {
		route_dir_fsync_faults--;
		route_error(errbuf, errlen, "could not fsync directory \"%s\": %s", dir,
			    route_strerror(EIO, ebuf, sizeof(ebuf)));
		return false;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		route_error(errbuf, errlen, "could not open directory \"%s\": %s", dir,
			    route_strerror(errno, ebuf, sizeof(ebuf)));
		return false;
	}
	if (fsync(fd) < 0) {
		err = errno;
		close(fd);
		route_error(errbuf, errlen, "could not fsync directory \"%s\": %s", dir,
			    route_strerror(err, ebuf, sizeof(ebuf)));
		return false;
	}
	close(fd);
	return true;
}

/*
 * Creates state_dir if it does not exist.  A directory we create is only
 * durable once its parent is fsynced too; otherwise a crash could lose the
 * directory together with the file we are about to put in it.
 */
static bool route_make_dir(const char *state_dir, char *errbuf, size_t errlen)
{
	char parent[PATH_MAX], ebuf[128];

	if (mkdir(state_dir, 0700) < 0) {
		if (errno == EEXIST)
			return true;
		route_error(errbuf, errlen, "could not create directory \"%s\": %s", state_dir,
			    route_strerror(errno, ebuf, sizeof(ebuf)));
		return false;
	}
	if (strlen(state_dir) >= sizeof(parent)) {
		route_error(errbuf, errlen, "directory name \"%s\" is too long", state_dir);
		return false;
	}
	strcpy(parent, state_dir);
	return route_fsync_dir(dirname(parent), errbuf, errlen);
}

/* write() all of buf, retrying short writes and EINTR. */
static bool route_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return false;
		if (n == 0) {
			errno = EIO;
			return false;
		}
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

bool route_store_sync(const char *state_dir, const char *db, const struct route_state *st,
		      bool *replaced, char *errbuf, size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX], ebuf[128];
	char text[256];
	int fd, n, err;

	if (replaced)
		*replaced = false;
	if (!route_path(path, sizeof(path), state_dir, db, "", errbuf, errlen) ||
	    !route_path(tmp, sizeof(tmp), state_dir, db, ".tmp", errbuf, errlen) ||
	    !route_check_state(st, errbuf, errlen))
		return false;
	n = snprintf(text, sizeof(text),
		     ROUTE_HEADER "route = %s\nswitched_at = %s\nsource_lsn = %s\n",
		     route_side_name(st->side), st->switched_at, st->source_lsn);
	if (n < 0 || (size_t)n >= sizeof(text)) {
		route_error(errbuf, errlen, "route state for database \"%s\" is too long", db);
		return false;
	}

	if (!route_make_dir(state_dir, errbuf, errlen))
		return false;

	/*
	 * The order matters, and each step must finish before the next:
	 *   1. write the whole new state to PATH.tmp (O_TRUNC drops the leftovers
	 *      of a write that crashed; O_NOFOLLOW refuses a planted symlink);
	 *   2. fsync PATH.tmp, so its data is on disk before any name points at it;
	 *   3. rename PATH.tmp over PATH, atomically replacing the old state;
	 *   4. fsync the directory, so the rename itself survives a crash.
	 * Only after 4 may the caller let traffic resume on the new side.
	 */
	fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		err = errno;
		route_error(errbuf, errlen, "could not create file \"%s\": %s", tmp,
			    route_strerror(err, ebuf, sizeof(ebuf)));
		goto fail;
	}
	if (!route_write_all(fd, text, (size_t)n)) {
		err = errno;
		close(fd);
		route_error(errbuf, errlen, "could not write file \"%s\": %s", tmp,
			    route_strerror(err, ebuf, sizeof(ebuf)));
		goto fail;
	}
	if (fsync(fd) < 0) {
		err = errno;
		close(fd);
		route_error(errbuf, errlen, "could not fsync file \"%s\": %s", tmp,
			    route_strerror(err, ebuf, sizeof(ebuf)));
		goto fail;
	}
	if (close(fd) < 0) {
		route_error(errbuf, errlen, "could not close file \"%s\": %s", tmp,
			    route_strerror(errno, ebuf, sizeof(ebuf)));
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		route_error(errbuf, errlen, "could not rename file \"%s\" to \"%s\": %s", tmp, path,
			    route_strerror(errno, ebuf, sizeof(ebuf)));
		goto fail;
	}
	/* PATH.tmp no longer exists: nothing to remove if this fails. */
	if (replaced)
		*replaced = true;
	return route_fsync_dir(state_dir, errbuf, errlen);

fail:
	(void)unlink(tmp);
	return false;
}

bool route_forget(const char *state_dir, const char *db, char *errbuf, size_t errlen)
{
	char path[PATH_MAX], ebuf[128];

	if (!route_path(path, sizeof(path), state_dir, db, "", errbuf, errlen))
		return false;
	if (unlink(path) < 0) {
		if (errno == ENOENT)
			return true;
		route_error(errbuf, errlen, "could not remove route state file \"%s\": %s", path,
			    route_strerror(errno, ebuf, sizeof(ebuf)));
		return false;
	}
	/* Forgetting must be as durable as switching, or a crash could undo it. */
	return route_fsync_dir(state_dir, errbuf, errlen);
}

bool route_replace_sync(const char *state_dir, const char *db, const struct route_state *st,
			char *errbuf, size_t errlen)
{
	struct route_state old;
	bool found = false, replaced = false, undone;
	char err[512], undo_err[512];

	/* what to put back: an unreadable old file counts as none (it is reported) */
	if (!route_load(state_dir, db, &old, &found, undo_err, sizeof(undo_err)))
		found = false;
	if (route_store_sync(state_dir, db, st, &replaced, err, sizeof(err)))
		return true;
	if (!replaced) {
		route_error(errbuf, errlen, "%s (the route file was not changed)", err);
		return false;
	}
	/* only the directory fsync failed: the new state may be in place, undo it */
	undone = found ? route_store_sync(state_dir, db, &old, NULL, undo_err, sizeof(undo_err))
		       : route_forget(state_dir, db, undo_err, sizeof(undo_err));
	if (undone)
		route_error(errbuf, errlen, "%s (the route file was put back as it was)", err);
	else
		route_error(errbuf, errlen,
			    "%s; the route file may name the new side and could not be put back: %s;"
			    " check state_dir before restarting pgcutover",
			    err, undo_err);
	return false;
}

/* ---------------------------------------------------------------------- */
/* Writing from the loop: the worker thread                               */
/* ---------------------------------------------------------------------- */

/* One route_store_async() call, owned by the queues until done has run. */
struct route_req {
	struct route_req *next; /* in route_async.todo or route_async.done */
	char *state_dir;        /* copies: the caller may free its own at once */
	char *db;
	struct route_state st;
	route_done_cb done; /* run on the loop thread when finished */
	void *arg;
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

bool route_store_async(struct event_base *base, const char *state_dir, const char *db,
		       const struct route_state *st, route_done_cb done, void *arg)
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
	while ((r = route_queue_pop(&ra.done)) != NULL)
		route_req_free(r);
	ra.stopping = false;
	pthread_mutex_unlock(&ra.lock);
	ra.base = NULL;
	ra.started = false;
}
