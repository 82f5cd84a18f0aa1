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
 * Everything here blocks; the loop thread writes through route_async.c.
 */
#include "proxy/core/route.h"

#include "proxy/core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
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
	if (st->switching && (st->switching_to == st->side || (st->switching_to != SIDE_SOURCE &&
							       st->switching_to != SIDE_TARGET))) {
		route_error(errbuf, errlen, "invalid switch direction for route state");
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
	if (memchr(st->new_side_xid, '\0', sizeof(st->new_side_xid)) == NULL ||
	    strspn(st->new_side_xid, "0123456789") != strlen(st->new_side_xid)) {
		route_error(errbuf, errlen, "invalid transaction ID for route state");
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
	bool seen_route = false, seen_time = false, seen_lsn = false, seen_xid = false,
	     seen_switching = false;
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
		else if (strcmp(key, "new_side_xid") == 0)
			seen = &seen_xid;
		else if (strcmp(key, "switching_to") == 0)
			seen = &seen_switching;
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
		} else if (seen == &seen_switching) {
			if (strcmp(value, "source") == 0)
				out->switching_to = SIDE_SOURCE;
			else if (strcmp(value, "target") == 0)
				out->switching_to = SIDE_TARGET;
			else {
				route_error(errbuf, errlen,
					    "%s:%d: invalid value for \"switching_to\": \"%.64s\" (expected source or target)",
					    path, lineno, value);
				return false;
			}
			out->switching = true;
		} else if (seen == &seen_xid) {
			size_t n = strlen(value);

			if (n == 0 || n >= sizeof(out->new_side_xid) ||
			    strspn(value, "0123456789") != n) {
				route_error(errbuf, errlen,
					    "%s:%d: invalid value for \"new_side_xid\": \"%.64s\" (expected a transaction ID)",
					    path, lineno, value);
				return false;
			}
			strcpy(out->new_side_xid, value);
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
	if (out->switching && out->switching_to == out->side) {
		route_error(errbuf, errlen,
			    "%s: \"switching_to\" names the side routed to (%s): a switch goes to the other one",
			    path, route_side_name(out->side));
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
		     ROUTE_HEADER "route = %s\nswitched_at = %s\nsource_lsn = %s\n%s%s%s%s%s%s",
		     route_side_name(st->side), st->switched_at, st->source_lsn,
		     st->new_side_xid[0] ? "new_side_xid = " : "", st->new_side_xid,
		     st->new_side_xid[0] ? "\n" : "", st->switching ? "switching_to = " : "",
		     st->switching ? route_side_name(st->switching_to) : "",
		     st->switching ? "\n" : "");
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
