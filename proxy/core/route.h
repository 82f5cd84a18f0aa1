/*
 * route.h - the durable route state of each database.
 *
 * state_dir/<database>.route records the side a database is routed to, when
 * it was switched and at which source LSN, so that a switch survives a
 * restart (PRODUCT.md, "Durable decision").  The file is small text:
 *
 *     # pgcutover route state: delete this file to forget the switch
 *     route = target
 *     switched_at = 2024-05-01T12:00:00Z
 *     source_lsn = 0/16B3748
 *     new_side_xid = 7412
 *     switching_to = source
 *
 * It is replaced atomically: a temporary file is written and fsynced, renamed
 * over the old one, and the directory is fsynced.  route_load() and
 * route_store_sync() block; the loop thread uses route_store_async(), which
 * does the fsyncs on a worker thread and reports back on the loop.
 */
#ifndef PGCUTOVER_ROUTE_H
#define PGCUTOVER_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;

/* The two sides of a database: where its connections go. */
enum route_side {
	SIDE_SOURCE = 0,
	SIDE_TARGET = 1,
};

/* What one .route file holds. */
struct route_state {
	enum route_side side; /* where the database's new server connections go */
	char switched_at[40]; /* UTC "YYYY-MM-DDTHH:MM:SSZ" of the switch, "" if unknown */
	char source_lsn[40];  /* source WAL position at the flip, "0/16B3748", "" if none */
	/*
	 * The side switched to: its next transaction ID once the switch was over
	 * (decimal), so that a switch back can tell whether anything was
	 * written there since; "" if unknown (never recorded, or a crash before).
	 */
	char new_side_xid[24];
	/*
	 * A switch from 'side' to 'switching_to' was under way (written before
	 * it fences 'side', cleared when it ends): a start-up that finds it
	 * knows that 'side' may carry a fence left by a switch cut short.
	 */
	bool switching;
	enum route_side switching_to;
};

/*
 * Reads state_dir/<db>.route.  Blocking: for start-up, before the loop runs.
 * A missing file is not an error: true with *found = false and *out set to
 * the default (source, no time, no LSN).  An unreadable or malformed file
 * gives false with errbuf naming the file, and the line for a bad line.
 */
bool route_load(const char *state_dir, const char *db, struct route_state *out, bool *found,
		char *errbuf, size_t errlen) __attribute__((warn_unused_result));

/*
 * Writes state_dir/<db>.route durably, creating state_dir (mode 0700) if it
 * is missing.  Blocking: for the worker thread and for tests.  On false the
 * temporary file is gone, and *replaced (when not NULL) says whether the
 * rename happened: then only the final fsync of the directory failed and the
 * new file may already be in place.
 */
bool route_store_sync(const char *state_dir, const char *db, const struct route_state *st,
		      bool *replaced, char *errbuf, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * route_store_sync(), undone when it fails after the rename: the old file is
 * written back, or the new one removed when there was none, so that a
 * restart agrees with a switch that did not happen.  The message says
 * whether the file was left unchanged, put back, or could not be put back.
 * Blocking; what route_store_async() runs on its worker.
 */
bool route_replace_sync(const char *state_dir, const char *db, const struct route_state *st,
			char *errbuf, size_t errlen) __attribute__((warn_unused_result));

/* Unit tests: make the next n directory fsyncs fail with EIO. */
void route_fail_dir_fsync_for_tests(int n);

/*
 * Called on the loop thread once a route_store_async() request is durable
 * (ok, errmsg NULL) or has failed (errmsg says why; valid during the call).
 */
typedef void (*route_done_cb)(void *arg, bool ok, const char *errmsg);

/*
 * The loop thread's way to store: copies its arguments (the caller may free
 * them at once), writes on a worker thread with route_replace_sync() (a
 * failure leaves the file as it was whenever it can), and calls done(arg,
 * ...) from 'base' when finished.  Requests complete in the order they were made.
 * Every request must use the same base until route_shutdown().  False only
 * when the request could not be queued; done is then never called.
 */
bool route_store_async(struct event_base *base, const char *state_dir, const char *db,
		       const struct route_state *st, route_done_cb done, void *arg)
	__attribute__((warn_unused_result));
/*
 * The same for an arg from malloc() that done frees: route_shutdown() frees
 * it when done will not run (a request finished after the loop stopped).
 */
bool route_store_async_owned(struct event_base *base, const char *state_dir, const char *db,
			     const struct route_state *st, route_done_cb done, void *arg)
	__attribute__((warn_unused_result));

/*
 * Deletes state_dir/<db>.route, the documented way to forget a switch; a
 * missing file is fine.  Blocking.
 */
bool route_forget(const char *state_dir, const char *db, char *errbuf, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Stops the worker and frees the loop event and pipe; call on the loop thread
 * before freeing the event_base.  Requests already queued are still written,
 * but no done callback fires afterwards.  Harmless when nothing was stored;
 * route_store_async() may be used again afterwards.
 */
void route_shutdown(void);

/* Sets st->switched_at to the current UTC time. */
void route_now(struct route_state *st);

/* "source" or "target". */
const char *route_side_name(enum route_side side);

#endif /* PGCUTOVER_ROUTE_H */
