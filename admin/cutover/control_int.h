/*
 * control_int.h - internal to admin/cutover/control*.c: the control_conn
 * itself and what its files call of each other.  Nothing else includes it;
 * the API is control.h (connections and queries) and control_conninfo.h.
 *
 *   control.c          the state machine: the queue, timers, failures, queries
 *   control_connect.c  planning the host list, evdns, PQconnectPoll
 *   control_text.c     one-line messages, SQLSTATEs, connect errors, strings
 *   control_conninfo.c conninfo strings with a user or defaults put in
 */
#ifndef PGCUTOVER_CONTROL_INT_H
#define PGCUTOVER_CONTROL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "admin/cutover/control.h"

/* Longest error message handed to a callback; longer ones are cut. */
#define CONTROL_MSG_MAX 1024

enum control_state {
	CONTROL_DOWN,       /* no connection */
	CONTROL_RESOLVING,  /* resolving host names with evdns before connecting */
	CONTROL_CONNECTING, /* PQconnectPoll() under way */
	CONTROL_IDLE,       /* connected, no query running */
	CONTROL_BUSY,       /* connected, the head query is running */
};

/* One queued query. */
struct control_query {
	struct control_query *next; /* next in FIFO order */
	char *sql;                  /* our copy: the caller's string may not outlive the call */
	int64_t timeout_ms;         /* <= 0: no deadline */
	control_cb cb;
	void *arg;
};

/*
 * One entry of libpq's host list while it is being resolved.  libpq pairs the
 * comma lists host, hostaddr and port by position; a name resolving to
 * several addresses becomes as many entries, so libpq still tries them all.
 */
struct control_host {
	char *host;     /* as given: a name, a numeric address, a socket directory or "" */
	char *addr;     /* hostaddr given for this entry, "" when none */
	char *port;     /* this entry's port when ports are given per host, else NULL */
	bool needs_dns; /* a name with no hostaddr: evdns must resolve it */
	char **found;   /* addresses evdns found for it (numeric strings) */
	int nfound;
};

/*
 * One evdns lookup.  Separate from the control_conn because evdns calls back
 * even after evdns_getaddrinfo_cancel() (with EVUTIL_EAI_CANCEL), possibly
 * after the control_conn is gone: cc is then NULL and the callback only frees.
 */
struct control_dns {
	struct control_conn *cc;               /* owner, NULL once abandoned */
	struct evdns_getaddrinfo_request *req; /* for cancelling; NULL if answered at once */
	int index;                             /* which control_host it resolves */
};

struct control_conn {
	struct event_base *base;
	struct evdns_base *dns;     /* NULL: numeric hosts and sockets only */
	char *label;                /* "app source", for logs */
	PQconninfoOption *opts;     /* the parsed conninfo; NULL when it did not parse */
	char *opts_error;           /* why it did not parse, reported by every query */
	int64_t connect_timeout_ms; /* conninfo's connect_timeout, which libpq only
				     * enforces in blocking calls; 0 = none */

	enum control_state state;
	PGconn *conn;        /* NULL while DOWN or RESOLVING */
	struct event *io_ev; /* on PQsocket(conn), recreated when the socket may change */
	short io_what;       /* EV_READ/EV_WRITE io_ev waits for */
	struct event *timer; /* the head query's deadline, or the connect timeout if sooner */
	struct event *kick;  /* runs control_service() from the loop */

	struct control_query *head;   /* running (once started) or next to run */
	struct control_query **tailp; /* where the next query is linked */
	bool head_started;            /* head's deadline is counting */
	int64_t head_deadline_us;     /* monotonic; 0 = none */
	int64_t connect_deadline_us;  /* monotonic; 0 = none */

	struct control_host *hosts; /* host list being resolved or connected to */
	int nhosts;
	int port_mode;                   /* 0: no port, 1: one port for all, 2: one per host */
	char *port_all;                  /* the single port when port_mode == 1 */
	bool passthrough;                /* lists libpq will reject anyway: pass them unchanged */
	int resolve_next;                /* next control_host to look at for resolving */
	struct control_dns *dns_pending; /* the lookup in flight */
	char dns_error[256];             /* the last failed lookup, reported if no host is left */

	bool flushing;     /* the query is not all sent yet */
	PGresult *last;    /* last result of the running query */
	char err_state[6]; /* first error of the running query: its SQLSTATE */
	char *err_msg;     /* and its primary message; NULL when none */

	control_notify_cb notify_cb; /* NOTIFY messages go here (control_conn_on_notify) */
	void *notify_arg;

	int in_callback;   /* a query callback is running */
	bool free_pending; /* control_conn_free() was called from a callback */
};

/* Growing string, with a sticky failure flag so callers check once. */
struct control_str {
	char *p;
	size_t len;
	size_t cap;
	bool failed; /* an allocation failed: p is unusable */
};

/* -- control.c --------------------------------------------------------------- */

/* Monotonic microseconds, for deadlines immune to clock changes. */
int64_t control_now_us(void);
/*
 * Wait for what on the connection's socket; renew recreates the event (libpq
 * may have moved to another socket while connecting).  False when it cannot.
 */
bool control_watch(struct control_conn *cc, short what, bool renew)
	__attribute__((warn_unused_result));
/* Close whatever is open or under way and go DOWN; the queue stays. */
void control_close(struct control_conn *cc);
/* Arm the timer for the sooner of the head's deadline and the connect timeout. */
void control_arm_timer(struct control_conn *cc);
/* The head query is over: call its callback.  cc may be gone afterwards. */
void control_finish(struct control_conn *cc, bool ok, const char *sqlstate, const char *error,
		    PGresult *res);
/* Fail the head query with a formatted message, after closing the connection if close. */
void control_fail(struct control_conn *cc, bool close, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The connection failed while connecting: report libpq's reason and go DOWN. */
void control_fail_connect(struct control_conn *cc);
/* The connection broke while connected: 08006 with libpq's reason (or why), go DOWN. */
void control_fail_broken(struct control_conn *cc, const char *why);
/* Move the head query along: start its deadline, open a connection, or send it. */
void control_service(struct control_conn *cc);

/* -- control_connect.c ------------------------------------------------------- */

/* The value of a conninfo keyword, NULL when not set (or the conninfo did not parse). */
const char *control_opt(const struct control_conn *cc, const char *keyword);
/* Free the host list (cc->hosts and its ports). */
void control_free_hosts(struct control_conn *cc);
/* The head query needs a connection: plan it, resolve names, connect. */
void control_connect_begin(struct control_conn *cc);
/* Resolve the next name that needs it, or connect when none is left. */
void control_resolve_next(struct control_conn *cc);
/* One step of PQconnectPoll(), when the socket is ready as it asked. */
void control_connect_poll(struct control_conn *cc);

/* -- control_text.c ---------------------------------------------------------- */

/* Copy s onto one line: newlines and tabs become spaces, the end is trimmed. */
void control_one_line(char *dst, size_t len, const char *s);
/* The first line of a libpq message, made one line. */
void control_first_line(char *dst, size_t len, const char *s);
/* s starts with five digits or upper case letters, as a SQLSTATE does. */
bool control_is_sqlstate(const char *s);
/* Where the connection goes, for messages: "127.0.0.1:5433", "[::1]:5433", a socket. */
void control_endpoint(const struct control_conn *cc, char *buf, size_t len);
/* libpq's failed-connection message as "could not connect to HOST:PORT: REASON" and its SQLSTATE. */
void control_connect_error(const struct control_conn *cc, char *sqlstate, char *msg, size_t len);
/* Append n bytes (or a string) to s; on failure s->failed is set and s is left alone. */
void control_str_add(struct control_str *s, const char *add, size_t n);
void control_str_cat(struct control_str *s, const char *add);

#endif /* PGCUTOVER_CONTROL_INT_H */
