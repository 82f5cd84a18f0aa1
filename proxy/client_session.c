/*
 * client_session.c - what a client's server-side session holds, and moving
 * it to another server.
 *
 * After a transaction whose statements may have changed session state
 * (session.h classifies them), a capture query reads what the session now
 * holds; in transaction pooling what must not reach the next client is
 * dropped, and the client's own settings are restored on whichever server
 * runs its next transaction.  Before a switch a check asks whether a
 * session's state can move; after the flip a movable session leaves its old
 * server and has its state restored on a new one, a blocked one is closed
 * with a FATAL that says why.
 */
#include "proxy/client_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/sqlstate.h"
#include "proxy/cancel.h"
#include "proxy/client.h"
#include "proxy/client_forward.h"
#include "proxy/client_login.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/core/route.h"
#include "proxy/listen_client.h"
#include "proxy/pool.h"
#include "proxy/prepared.h"
#include "proxy/server.h"
#include "proxy/server_forward.h"
#include "proxy/server_internal.h"
#include "proxy/session.h"

/* ---- a server for the session ---- */

/*
 * What a newly linked server must run before the client's next message, or
 * NULL.  Session pooling: the state of a session that moved.  Transaction
 * pooling: the client's own settings, replacing another client's.
 */
static char *client_restore_sql(struct client *c, const struct server *s, bool *oom)
{
	const struct session *ss = &c->sess;

	*oom = false;
	if (c->db->pool_mode == POOL_SESSION)
		return ss->restore ? session_restore_sql(ss, false, oom) : NULL;
	if (s->sess_owner == ss->id && s->sess_gen == ss->gen)
		return NULL;
	if (s->sess_owner == 0 && session_st(ss)->settings.count == 0)
		return NULL;
	return session_restore_sql(ss, s->sess_owner != 0, oom);
}

/* A server is linked and holds the session's state: the client's requests go on. */
static void client_resume_linked(struct client *c)
{
	if (!client_sync_params(c, server_reported(c->server))) {
		client_close(c, "could not send");
		return;
	}
	if (sock_in_len(&c->sock) > 0)
		client_forward(c);
}

/* The new server now holds the session's state: carry on with the client's request. */
static void client_restore_done(struct server *s, void *arg, const char *rows, const char *error)
{
	struct client *c = arg;

	(void)rows;
	if (c->server != s || c->state != CL_ACTIVE)
		return;
	/* the fence that came with it is committed (or not) */
	if (c->lsub)
		listen_client_fence_done(c, s, error == NULL);
	if (error) {
		client_disconnect(c, SQLSTATE_CONNECTION_FAILURE,
				  "could not restore the session on the new server of database \"%s\": %s",
				  c->db->name, error);
		return;
	}
	c->sess.restore = false;
	s->sess_owner = session_st(&c->sess)->settings.count > 0 ? c->sess.id : 0;
	s->sess_gen = c->sess.gen;
	client_resume_linked(c);
}

void client_server_ready(struct client *c)
{
	struct server *s = c->server;
	bool oom;
	char *sql;

	if (c->state == CL_WAIT_LOGIN) {
		/* session pooling: the client's process ID is its server's */
		if (c->db->pool_mode == POOL_SESSION)
			cancel_set_pid(c, s->be_pid);
		if (!client_send_welcome(c, server_reported(s)))
			return;
		client_set_state(c, CL_ACTIVE);
		if (c->db->pool_mode == POOL_TRANSACTION) {
			/* the server was only needed for its parameters */
			client_drop_server(c);
			client_set_state(c, CL_IDLE);
			sock_trim_soon(&c->sock);
		}
		/* anything the client sent meanwhile */
		if (sock_in_len(&c->sock) > 0) {
			if (c->state == CL_ACTIVE)
				client_forward(c);
			else if (c->state == CL_IDLE)
				client_request_server(c);
		}
		return;
	}
	/* linked: off the waiting list, its requests held while a restore runs */
	client_set_state(c, CL_ACTIVE);
	sql = client_restore_sql(c, s, &oom);
	if (sql == NULL && oom) {
		client_disconnect(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	if (c->lsub) {
		/* a listening client's transaction starts with a fence (listen.h: markers) */
		char *fence = listen_client_fence(c, s);

		if (fence && sql) {
			size_t n = strlen(sql), m = strlen(fence);
			char *both = malloc(n + m + 1);

			/* the restore's statements each end with "; " */
			if (both)
				snprintf(both, n + m + 1, "%s%s", sql, fence);
			free(sql);
			free(fence);
			sql = both;
			if (sql == NULL) {
				client_disconnect(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
				return;
			}
		} else if (fence) {
			sql = fence;
		}
	}
	if (sql) {
		/* settings (and LISTENs, SQL statements) first, then the request */
		bool ok = server_internal_query(s, sql, client_restore_done, c);

		free(sql);
		if (!ok) {
			if (c->lsub)
				listen_client_fence_done(c, s, false);
			client_disconnect(c, SQLSTATE_CONNECTION_FAILURE,
					  "could not restore the session on the new server of database \"%s\"",
					  c->db->name);
		}
		return;
	}
	c->sess.restore = false;
	client_resume_linked(c);
}

/* ---- what the session holds ---- */

/* Transaction pooling: what the client's transaction left was dropped; the server goes back. */
static void client_cleanup_done(struct server *s, void *arg, const char *rows, const char *error)
{
	struct client *c = arg;

	(void)rows;
	if (c->state == CL_FREE || c->state == CL_CLOSING || c->server != s)
		return;
	if (error) {
		log_warning("client %s: could not drop the LISTENs and statements its transaction left: %s",
			    c->addr, error);
		s->ps_broken = true; /* they would reach the next client: nobody gets this server */
	}
	server_txn_done(s);
}

/* The answer to the capture query that ran at a boundary (client_capture). */
static void client_capture_done(struct server *s, void *arg, const char *rows, const char *error)
{
	struct client *c = arg;
	bool txn;

	if (c->state == CL_FREE || c->state == CL_CLOSING || c->server != s)
		return;
	txn = c->db->pool_mode == POOL_TRANSACTION;
	if (error) {
		log_warning("client %s: could not read its session state: %s", c->addr, error);
		free(c->sess.untracked);
		c->sess.untracked = strdup("its session state could not be read");
		c->sess.dirty = false;
		/* transaction pooling: what it set would reach the next client: nobody gets this server */
		if (txn)
			s->ps_broken = true;
	} else if (!session_apply_capture(&c->sess, rows, !txn)) {
		client_disconnect(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	/* the server holds exactly what was just read */
	s->sess_owner = session_st(&c->sess)->settings.count > 0 ? c->sess.id : 0;
	s->sess_gen = c->sess.gen;
	/* its LISTENs are handed over to the listener first (listen_client.h) */
	if (txn && listen_flow_captured(c, s, rows, error))
		return;
	if (txn) {
		bool oom;
		char *sql = error ? NULL : session_cleanup_sql(rows, &oom);

		if (sql) {
			/* LISTENs or SQL statements the transaction left go before anyone else comes */
			bool ok = server_internal_query(s, sql, client_cleanup_done, c);

			free(sql);
			if (ok)
				return;
			s->ps_broken = true;
		} else if (!error && oom) {
			s->ps_broken = true;
		}
		server_txn_done(s);
		return;
	}
	if (sock_in_len(&c->sock) > 0)
		client_forward(c);
}

bool client_capture(struct client *c)
{
	struct server *s = c->server;
	bool txn = c->db->pool_mode == POOL_TRANSACTION;

	if (s == NULL)
		return false;
	return server_internal_query(s, txn ? SESSION_CAPTURE_SETTINGS : SESSION_CAPTURE_FULL,
				     client_capture_done, c);
}

void client_param_changed(struct client *c)
{
	c->sess.dirty = true;
}

/* ---- moving a session to another server ---- */

/* Why a session cannot move, or NULL. */
static const char *client_blocked_reason(const struct client *c)
{
	return c->sess.untracked ? c->sess.untracked : c->sess.blocked;
}

const char *client_movable(const struct client *c)
{
	const char *why = client_blocked_reason(c);

	if (c->db && c->db->pool_mode == POOL_TRANSACTION)
		return c->sess.untracked ? c->sess.untracked : "yes";
	return why ? why : "yes";
}

static void client_check_done(struct server *s, void *arg, const char *rows, const char *error)
{
	struct client *c = arg;
	void (*done)(struct client *, void *) = c->move_done;
	void *done_arg = c->move_arg;

	(void)s;
	if (c->state == CL_FREE || c->state == CL_CLOSING)
		return;
	if (error) {
		size_t n = strlen(error) + 32;
		char *why = malloc(n);

		if (why)
			snprintf(why, n, "the session check failed: %s", error);
		free(c->sess.untracked);
		c->sess.untracked = why;
		c->move = MOVE_BLOCKED;
	} else if (!session_apply_capture(&c->sess, rows, true)) {
		free(c->sess.untracked);
		c->sess.untracked = NULL;
		c->move = MOVE_BLOCKED;
	} else {
		c->move = client_blocked_reason(c) ? MOVE_BLOCKED : MOVE_OK;
	}
	c->move_done = NULL;
	c->move_arg = NULL;
	if (done)
		done(c, done_arg);
}

bool client_check_movable(struct client *c, void (*done)(struct client *c, void *arg), void *arg)
{
	c->move_done = done;
	c->move_arg = arg;
	if (c->server == NULL) {
		/* no server: nothing on a server to lose */
		c->move = MOVE_OK;
		return true;
	}
	c->move = MOVE_CHECKING;
	if (c->server->internal_cb) {
		/* pgcutover's own query runs there (a capture after SET...): the check follows it */
		c->check_deferred = true;
		return true;
	}
	if (!server_internal_query(c->server, SESSION_CAPTURE_FULL, client_check_done, c)) {
		c->move = MOVE_BLOCKED;
		if (c->sess.untracked == NULL)
			c->sess.untracked = strdup("its server was busy");
		c->move_done = NULL;
		return false;
	}
	return true;
}

void client_check_deferred(struct client *c)
{
	void (*done)(struct client *, void *) = c->move_done;
	void *arg = c->move_arg;

	c->check_deferred = false;
	if (c->move != MOVE_CHECKING)
		return;
	if (done == NULL) {
		c->move = MOVE_UNKNOWN; /* the checks were called off meanwhile */
		return;
	}
	if (c->server &&
	    server_internal_query(c->server, SESSION_CAPTURE_FULL, client_check_done, c))
		return;
	c->move = MOVE_BLOCKED;
	if (c->sess.untracked == NULL)
		c->sess.untracked = strdup("its server was busy");
	c->move_done = NULL;
	c->move_arg = NULL;
	done(c, arg);
}

bool client_apply_move(struct client *c)
{
	if (c->state == CL_FREE || c->state == CL_CLOSING)
		return false;
	if (c->move != MOVE_OK) {
		const char *why = client_blocked_reason(c);

		client_disconnect(c, SQLSTATE_ADMIN_SHUTDOWN,
				  "database \"%s\" moved to its %s and this session held state that cannot be moved (%s): reconnect",
				  c->db->name, route_side_name(c->db->route),
				  why ? why : "not checked");
		return false;
	}
	c->move = MOVE_UNKNOWN;
	log_debug("client %s: moving to the %s (%zu bytes pending)", c->addr,
		  route_side_name(c->db->route), sock_in_len(&c->sock));
	if (c->server) {
		struct server *s = c->server;

		/* the old server goes; the next transaction gets one on the new side */
		client_set_state(c, CL_IDLE);
		c->server = NULL;
		s->client = NULL;
		server_release(s);
		/* what it held is re-established there: settings now, statements when used */
		c->sess.restore = true;
		ps_map_new_server(&c->sess.stmts);
		/* a listener waits for notifications, not for itself: it needs its server now */
		if (session_st(&c->sess)->listens.count > 0 && c->state == CL_IDLE)
			client_wait_for_server(c);
	}
	return true;
}

/* After the check of a lazy move: move now, then serve what it sent. */
static void client_relocate_done(struct client *c, void *arg)
{
	(void)arg;
	if (client_apply_move(c) && c->state == CL_IDLE) {
		c->held = false;
		client_request_server(c);
	}
}

/* The session's server is on the side its database no longer routes to. */
void client_relocate(struct client *c)
{
	if (c->move == MOVE_CHECKING)
		return;
	if (!client_check_movable(c, client_relocate_done, NULL))
		client_relocate_done(c, NULL);
}
