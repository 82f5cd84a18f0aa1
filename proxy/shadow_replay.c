/*
 * shadow_replay.c - replays (see shadow.h): the connections they run on,
 * what they send, what they read back, and the verdict.
 *
 * A replay connection is a server connection of pgcutover's own
 * (server.h), logged in like any other as the sample's user with its
 * startup parameters, but kept in an owned pool (pool.h) that serves no
 * client and counts in no limit: at most SHADOW_TARGET_CONNS to a
 * database's target and SHADOW_SOURCE_CONNS to its source, a new one
 * replacing an idle one of another user when needed.
 *
 * A replay sends, in one write:
 *
 *   Query  "<the client's BEGIN, or BEGIN READ ONLY>; RESET ALL; RESET ROLE;
 *           SELECT set_config(<the session's settings>); SET LOCAL
 *           statement_timeout = ..."
 *   each request as copied (shadow_capture.c)
 *   Query  "ROLLBACK"
 *
 * and digests each ReadyForQuery's worth of answers, timing each request
 * from the end of the one before.  Nothing it runs can write: the
 * transaction is read-only from its first statement and rolled back, so a
 * function that writes fails there (25006), which marks its statement as
 * one that is never sampled again.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/pq.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/database.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/shadow_int.h"

static void owner_service(struct pool *pool);
static void owner_input(struct server *s);
static void owner_login_failed(struct pool *pool, const char *sqlstate, const char *message);

static const struct pool_owner shadow_owner = {owner_service, owner_input, owner_login_failed};

/* ---- pools ---- */

static struct shadow_pool *pool_for(struct shadow_db *sdb, const char *user, enum route_side side)
{
	struct list_node *n;
	struct shadow_pool *sp;

	list_for_each(n, &sdb->pools) {
		sp = list_entry(n, struct shadow_pool, node);
		if (sp->side == side && strcmp(sp->pool->user, user) == 0)
			return sp;
	}
	sp = calloc(1, sizeof(*sp));
	if (sp == NULL)
		return NULL;
	sp->pool = pool_new_owned(sdb->db, user, &shadow_owner, sp);
	if (sp->pool == NULL) {
		free(sp);
		return NULL;
	}
	sp->sdb = sdb;
	sp->side = side;
	list_append(&sdb->pools, &sp->node);
	return sp;
}

/* Close every server of a list of the pool. */
static void close_list(struct list_node *head, const char *why)
{
	while (!list_empty(head))
		server_close(list_entry(list_first(head), struct server, node), why);
}

void shadow_pool_free(struct shadow_pool *sp)
{
	close_list(&sp->pool->idle_servers, "shadow reads: shutdown");
	close_list(&sp->pool->active_servers, "shadow reads: shutdown");
	close_list(&sp->pool->new_servers, "shadow reads: shutdown");
	list_remove(&sp->node);
	pool_free(sp->pool);
	free(sp);
}

void shadow_close_idle(struct shadow_db *sdb, bool force)
{
	struct list_node *n, *tmp, *m, *mtmp;
	uint64_t now = rt_now_us();

	list_for_each_safe(n, tmp, &sdb->pools) {
		struct shadow_pool *sp = list_entry(n, struct shadow_pool, node);

		list_for_each_safe(m, mtmp, &sp->pool->idle_servers) {
			struct server *s = list_entry(m, struct server, node);

			if (force || now - s->idle_since_us > (uint64_t)SHADOW_IDLE_MS * 1000)
				server_terminate(s, "shadow reads: idle");
		}
		/* a pool with nothing left goes (its closed servers no longer need it) */
		if (sp->pool->nservers == 0 && list_empty(&sp->pool->new_servers) &&
		    !event_pending(sp->pool->retry_timer, EV_TIMEOUT, NULL) &&
		    now - sp->failed_us > (uint64_t)SHADOW_RETRY_MS * 1000) {
			list_remove(&sp->node);
			pool_free(sp->pool);
			free(sp);
		}
	}
}

/* Replay connections open (in any state) to a side. */
static int side_servers(const struct shadow_db *sdb, enum route_side side)
{
	return shadow_connections(sdb, side);
}

/* An idle connection of another user or startup on 'side' to close for room, or NULL. */
static struct server *room_victim(struct shadow_db *sdb, enum route_side side)
{
	struct list_node *n;

	list_for_each(n, &sdb->pools) {
		struct shadow_pool *sp = list_entry(n, struct shadow_pool, node);

		if (sp->side == side && !list_empty(&sp->pool->idle_servers))
			return list_entry(list_last(&sp->pool->idle_servers), struct server, node);
	}
	return NULL;
}

/*
 * A connection for this sample on 'side' that is idle now, or NULL: then
 * one is being opened for it, or it waits for room.  *fail gets a reason
 * when the side cannot be reached now (a recent failure).
 */
static struct server *take_server(struct shadow_db *sdb, struct shadow_sample *smp,
				  enum route_side side, const char **fail)
{
	struct shadow_pool *sp = pool_for(sdb, smp->user, side);
	struct list_node *n;
	int max = side == SIDE_TARGET ? SHADOW_TARGET_CONNS : SHADOW_SOURCE_CONNS;
	struct server *victim;

	*fail = NULL;
	if (sp == NULL)
		return NULL;
	list_for_each(n, &sp->pool->idle_servers) {
		struct server *s = list_entry(n, struct server, node);

		if (s->startup == smp->startup)
			return s;
	}
	if (sp->last_error[0] && rt_now_us() - sp->failed_us < (uint64_t)SHADOW_RETRY_MS * 1000) {
		*fail = sp->last_error;
		return NULL;
	}
	/* one being opened for the same startup parameters, not claimed in this pass */
	list_for_each(n, &sp->pool->new_servers) {
		struct server *s = list_entry(n, struct server, node);

		if (s->startup == smp->startup && s->claim_gen != sdb->pass) {
			s->claim_gen = sdb->pass;
			return NULL;
		}
	}
	if (side_servers(sdb, side) >= max) {
		victim = room_victim(sdb, side);
		if (victim == NULL)
			return NULL;
		server_terminate(victim, "shadow reads: room for another user");
	}
	if (smp->have_key && !sp->pool->have_client_key) {
		memcpy(sp->pool->client_key, smp->client_key, sizeof(smp->client_key));
		sp->pool->have_client_key = true;
	}
	{
		struct server *s = server_launch_side(sp->pool, smp->startup, side);

		if (s)
			s->claim_gen = sdb->pass;
	}
	return NULL;
}

/* ---- running a replay ---- */

/* The first query of a replay: the transaction, the session's settings, a time bound. */
static void put_preamble(struct pq_buf *b, const struct shadow_sample *smp)
{
	char bound[64];

	pq_msg_begin(b, 'Q');
	if (smp->begin) {
		size_t n = strlen(smp->begin);

		pq_put_bytes(b, smp->begin, n);
		pq_put_bytes(b, "; ", 2);
	} else {
		pq_put_bytes(b, "BEGIN READ ONLY; ", 17);
	}
	pq_put_bytes(b, "RESET ALL; RESET ROLE; ", 23);
	pq_put_bytes(b, smp->settings, strlen(smp->settings));
	snprintf(bound, sizeof(bound), "SET LOCAL statement_timeout = %d",
		 SHADOW_STATEMENT_TIMEOUT_MS);
	pq_put_str(b, bound);
	pq_msg_end(b);
}

static void start_replay(struct shadow_sample *smp, struct server *s, enum shadow_state st)
{
	struct pq_buf b;
	bool ok;

	pq_buf_init(&b);
	put_preamble(&b, smp);
	smp->steps = 2;
	for (unsigned i = 0; i < smp->nreqs; i++) {
		if (smp->reqs[i].msgs.len == 0)
			continue;
		pq_put_bytes(&b, smp->reqs[i].msgs.data, smp->reqs[i].msgs.len);
		smp->steps++;
	}
	pq_build_query(&b, "ROLLBACK");
	shadow_set_state(smp, st);
	server_set_state(s, SV_ACTIVE);
	s->client = NULL;
	smp->server = s;
	smp->step = 0;
	smp->step_us = rt_now_us();
	pqdigest_init(&smp->dig, (uint32_t)rt.cfg->max_packet_size);
	ok = !b.failed && sock_write(&s->sock, b.data, b.len);
	pq_buf_free(&b);
	if (!ok)
		server_close(s, "shadow reads: could not send a replay");
}

void shadow_dispatch(struct shadow_db *sdb)
{
	static const struct {
		enum shadow_state from, to;
		enum route_side side;
	} queues[2] = {{SMP_READY, SMP_TARGET, SIDE_TARGET}, {SMP_RECHECK, SMP_SOURCE, SIDE_SOURCE}};

	if (sdb->dispatching) {
		sdb->again = true;
		return;
	}
	sdb->dispatching = true;
	do {
		sdb->again = false;
		sdb->pass++;
		for (int q = 0; q < 2; q++) {
			struct list_node *n, *tmp;

			list_for_each_safe(n, tmp, &sdb->samples[queues[q].from]) {
				struct shadow_sample *smp =
					list_entry(n, struct shadow_sample, node);
				const char *fail;
				struct server *s;
				char why[260];

				if (sdb->db->route != SIDE_SOURCE)
					break; /* the timer ends them */
				s = take_server(sdb, smp, queues[q].side, &fail);
				if (s) {
					start_replay(smp, s, queues[q].to);
				} else if (fail) {
					snprintf(why, sizeof(why), "could not log in to the %s: %s",
						 route_side_name(queues[q].side), fail);
					shadow_sample_done(smp, SHADOW_INCONCLUSIVE, why);
				}
				/* the list may have changed under a nested call: start over */
				if (sdb->again)
					break;
			}
		}
	} while (sdb->again);
	sdb->dispatching = false;
}

void shadow_cut_replay(struct shadow_sample *smp)
{
	if (smp->server)
		server_close(smp->server, "shadow reads: a replay ran too long");
}

/* ---- the verdict ---- */

/* Only the rows differ: the source is read again to tell a race from a difference. */
static bool data_only(unsigned diff)
{
	return diff != PQDIGEST_SAME && !(diff & (PQDIGEST_ERROR | PQDIGEST_COLUMNS));
}

/* The target's answers are in: compare, then recheck or record. */
static void judge_target(struct shadow_sample *smp, const char *failure)
{
	struct shadow_db *sdb = smp->sdb;
	bool recheck = false;

	if (failure) {
		shadow_sample_done(smp, SHADOW_INCONCLUSIVE, failure);
		return;
	}
	for (unsigned i = 0; i < smp->nreqs; i++) {
		struct shadow_req *r = &smp->reqs[i];

		if (!r->compared)
			continue;
		r->diff = pqdigest_compare(&r->src, &r->tgt, r->ordered, r->shape_only);
		if (r->src.sqlstate[0] == '\0' && strcmp(r->tgt.sqlstate, "25006") == 0) {
			/* it wrote on the source: never again */
			struct fingerprint fp;
			struct shadow_stmt *st;

			fingerprint_sql(r->text.data, r->text.len ? r->text.len - 1 : 0, &fp);
			st = shadow_stmt_get(sdb, &fp, NULL);
			if (st)
				st->writes = true;
			shadow_sample_done(smp, SHADOW_INCONCLUSIVE,
					   "it writes (the read-only replay refused it): not sampled again");
			return;
		}
		recheck = recheck || data_only(r->diff);
	}
	if (recheck) {
		shadow_set_state(smp, SMP_RECHECK);
		shadow_dispatch(sdb);
		return;
	}
	for (unsigned i = 0; i < smp->nreqs; i++)
		if (smp->reqs[i].compared)
			shadow_record_request(sdb, &smp->reqs[i], smp->reqs[i].diff, false, NULL);
	shadow_sample_done(smp, SHADOW_COMPARED, NULL);
}

/*
 * The source's second answers are in.  A request whose rows differed
 * matched if the target agrees with the source's second answer (the
 * target was ahead of the first read); it differed if the source answered
 * the same both times, the target's read lying between them; otherwise
 * the data moved and nothing can be said.
 */
static void judge_source(struct shadow_sample *smp, const char *failure)
{
	struct shadow_db *sdb = smp->sdb;

	for (unsigned i = 0; i < smp->nreqs; i++) {
		struct shadow_req *r = &smp->reqs[i];

		if (!r->compared)
			continue;
		if (!data_only(r->diff)) {
			shadow_record_request(sdb, r, r->diff, false, NULL);
		} else if (failure) {
			shadow_record_request(sdb, r, r->diff, true, failure);
		} else if (pqdigest_compare(&r->src2, &r->tgt, r->ordered, r->shape_only) ==
			   PQDIGEST_SAME) {
			shadow_record_request(sdb, r, PQDIGEST_SAME, false, NULL);
		} else if (pqdigest_compare(&r->src, &r->src2, r->ordered, r->shape_only) ==
			   PQDIGEST_SAME) {
			shadow_record_request(
				sdb, r, r->diff, false,
				" (the source answered the same before and after the target's read)");
		} else {
			shadow_record_request(sdb, r, r->diff, true,
					      "the source's answer changed while the target was read");
		}
	}
	shadow_sample_done(smp, SHADOW_COMPARED, NULL);
}

/* A replay ended (all its answers, or its connection): judge it. */
static void replay_over(struct shadow_sample *smp, const char *failure)
{
	if (smp->state == SMP_TARGET)
		judge_target(smp, failure);
	else
		judge_source(smp, failure);
}

/* One ReadyForQuery of a replay; false when the replay is over. */
static bool replay_step(struct shadow_sample *smp, char status, char *failure, size_t flen)
{
	struct pqdigest_result res;
	uint64_t now = rt_now_us();
	unsigned k = 0;

	pqdigest_take(&smp->dig, &res);
	if (smp->step == 0) {
		if (res.sqlstate[0] && failure[0] == '\0')
			snprintf(failure, flen, "the session could not be set up on the %s: %s %s",
				 smp->state == SMP_TARGET ? "target" : "source", res.sqlstate,
				 res.error);
	} else if (smp->step + 1 < smp->steps) {
		/* the step-th request that sends something */
		for (unsigned i = 0; i < smp->nreqs; i++) {
			struct shadow_req *r = &smp->reqs[i];

			if (r->msgs.len == 0 || ++k != smp->step)
				continue;
			if (smp->state == SMP_TARGET) {
				r->tgt = res;
				r->target_us = now - smp->step_us;
			} else {
				r->src2 = res;
			}
			break;
		}
	}
	smp->step++;
	smp->step_us = now;
	(void)status;
	return smp->step < smp->steps;
}

/* Bytes from a replay connection. */
static void owner_input(struct server *s)
{
	struct shadow_pool *sp = s->pool->owner_arg;
	struct shadow_db *sdb = sp->sdb;
	struct shadow_sample *smp = NULL;
	struct evbuffer *in = sock_in(&s->sock);
	char failure[300] = "";
	struct list_node *n;

	for (int st = SMP_TARGET; st <= SMP_SOURCE && smp == NULL; st++) {
		list_for_each(n, &sdb->samples[st]) {
			struct shadow_sample *x = list_entry(n, struct shadow_sample, node);

			if (x->server == s) {
				smp = x;
				break;
			}
		}
	}
	if (smp == NULL) {
		server_close(s, "shadow reads: answers nobody waits for");
		return;
	}
	while (evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		bool ready = false;
		char status = 0;
		size_t used;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		used = pqdigest_feed(&smp->dig, v.iov_base, v.iov_len, &ready, &status);
		evbuffer_drain(in, used);
		if (smp->dig.failed) {
			server_close(s, "shadow reads: a malformed answer");
			return;
		}
		if (ready && !replay_step(smp, status, failure, sizeof(failure))) {
			/* the ROLLBACK is answered: the connection is free again */
			smp->server = NULL;
			if (status == 'I' && evbuffer_get_length(in) == 0)
				server_set_state(s, SV_IDLE);
			else
				server_close(s, "shadow reads: not idle after a replay");
			replay_over(smp, failure[0] ? failure : NULL);
			shadow_dispatch(sdb);
			return;
		}
	}
	/* a failure in the preamble is remembered until the end */
	if (failure[0] && smp->step > 0)
		log_debug("shadow %s: %s", sdb->db->name, failure);
}

/* Something changed in a replay pool (a login, a close): what ran on a lost connection ends. */
static void owner_service(struct pool *pool)
{
	struct shadow_pool *sp = pool->owner_arg;
	struct shadow_db *sdb = sp->sdb;
	struct list_node *n, *tmp;

	for (int st = SMP_TARGET; st <= SMP_SOURCE; st++) {
		list_for_each_safe(n, tmp, &sdb->samples[st]) {
			struct shadow_sample *smp = list_entry(n, struct shadow_sample, node);
			char why[300];

			if (smp->server == NULL || smp->server->state != SV_FREE)
				continue;
			smp->server = NULL;
			snprintf(why, sizeof(why),
				 "the replay connection to the %s was lost%s%.200s",
				 st == SMP_TARGET ? "target" : "source",
				 pool->last_error[0] ? ": " : "", pool->last_error);
			replay_over(smp, why);
		}
	}
	if (pool->last_error[0]) {
		snprintf(sp->last_error, sizeof(sp->last_error), "%.199s", pool->last_error);
		sp->failed_us = rt_now_us();
		pool->last_error[0] = '\0';
	}
	shadow_dispatch(sdb);
}

static void owner_login_failed(struct pool *pool, const char *sqlstate, const char *message)
{
	struct shadow_pool *sp = pool->owner_arg;

	snprintf(sp->last_error, sizeof(sp->last_error), "%s (%s)", message, sqlstate);
	sp->failed_us = rt_now_us();
	log_warning("shadow %s: could not log in to the %s as %s: %s", sp->sdb->db->name,
		    route_side_name(sp->side), pool->user, message);
}
