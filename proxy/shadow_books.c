/*
 * shadow_books.c - a database's shadow books (see shadow_int.h): its
 * samples by state, the wait for the target to apply the source's
 * position, the statement rows of SHOW SHADOW and the differences of SHOW
 * SHADOW DIFFS, and the timer that ends what waits too long.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/auth/crypto.h"
#include "proxy/client.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/database.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/shadow_int.h"

/* How often the books look for what has waited too long. */
#define SHADOW_TICK_MS 500

/* Every database's books, for exit. */
static struct list_node all_books = {&all_books, &all_books};
/* The position poller (admin/cutover/shadow_pos.c). */
static void (*position_hook)(struct database *db);

static const char *const state_names[SMP_NSTATES] = {
	[SMP_CAPTURE] = "capture", [SMP_WAIT_POS] = "wait_pos", [SMP_READY] = "ready",
	[SMP_TARGET] = "target",   [SMP_RECHECK] = "recheck",   [SMP_SOURCE] = "source",
};

static void shadow_tick(evutil_socket_t fd, short what, void *arg);

struct shadow_db *shadow_db_get(struct database *db)
{
	struct shadow_db *sdb = db->shadow;
	uint8_t seed[8];

	if (sdb)
		return sdb;
	sdb = calloc(1, sizeof(*sdb));
	if (sdb == NULL)
		return NULL;
	sdb->timer = evtimer_new(rt.base, shadow_tick, sdb);
	if (sdb->timer == NULL) {
		free(sdb);
		return NULL;
	}
	sdb->db = db;
	for (int i = 0; i < SMP_NSTATES; i++)
		list_init(&sdb->samples[i]);
	list_init(&sdb->pools);
	if (auth_random_bytes(seed, sizeof(seed)))
		memcpy(&sdb->random, seed, sizeof(seed));
	sdb->random |= 1; /* xorshift must not start at 0 */
	list_append(&all_books, &sdb->node);
	db->shadow = sdb;
	return sdb;
}

/* ---- samples ---- */

static bool transition_ok(enum shadow_state from, enum shadow_state to)
{
	switch (from) {
	case SMP_CAPTURE:
		return to == SMP_WAIT_POS || to == SMP_READY;
	case SMP_WAIT_POS:
		return to == SMP_READY;
	case SMP_READY:
		return to == SMP_TARGET;
	case SMP_TARGET:
		return to == SMP_RECHECK;
	case SMP_RECHECK:
		return to == SMP_SOURCE;
	default:
		return false;
	}
}

void shadow_set_state(struct shadow_sample *smp, enum shadow_state st)
{
	if (!transition_ok(smp->state, st))
		log_error("shadow %s: illegal state change %s -> %s", smp->sdb->db->name,
			  state_names[smp->state], state_names[st]);
	list_remove(&smp->node);
	smp->state = st;
	smp->queued_us = rt_now_us();
	list_append(&smp->sdb->samples[st], &smp->node);
}

struct shadow_sample *shadow_sample_new(struct shadow_db *sdb, struct client *c)
{
	struct shadow_sample *smp = calloc(1, sizeof(*smp));

	if (smp == NULL || (smp->user = strdup(c->user)) == NULL) {
		free(smp);
		return NULL;
	}
	smp->sdb = sdb;
	smp->client = c;
	smp->state = SMP_CAPTURE;
	smp->queued_us = rt_now_us();
	smp->startup = params_snap_ref(c->startup);
	if (c->pool && c->pool->have_client_key) {
		memcpy(smp->client_key, c->pool->client_key, sizeof(smp->client_key));
		smp->have_key = true;
	}
	pqdigest_init(&smp->dig, (uint32_t)rt.cfg->max_packet_size);
	list_append(&sdb->samples[SMP_CAPTURE], &smp->node);
	sdb->held++;
	shadow_arm_timer(sdb);
	return smp;
}

void shadow_sample_free(struct shadow_sample *smp)
{
	if (smp->client)
		smp->client->shadow = NULL;
	list_remove(&smp->node);
	if (!smp->dropping)
		smp->sdb->held--;
	for (unsigned i = 0; i < smp->nreqs; i++) {
		pq_buf_free(&smp->reqs[i].msgs);
		pq_buf_free(&smp->reqs[i].text);
	}
	free(smp->reqs);
	free(smp->user);
	free(smp->settings);
	free(smp->begin);
	free(smp->unnamed);
	free(smp->bound);
	params_snap_put(smp->startup);
	free(smp);
}

void shadow_sample_captured(struct shadow_sample *smp)
{
	struct shadow_db *sdb = smp->sdb;
	const struct db_config *dc = sdb->db->cfg;

	if (smp->client)
		smp->client->shadow = NULL;
	smp->client = NULL;
	smp->end_us = rt_now_us();
	if (dc == NULL || dc->d.lag_method == LAG_NONE) {
		/* the operator vouches that the target is current */
		shadow_set_state(smp, SMP_READY);
		shadow_dispatch(sdb);
		return;
	}
	shadow_set_state(smp, SMP_WAIT_POS);
	if (!sdb->asking && position_hook) {
		sdb->asking = true;
		position_hook(sdb->db);
	}
}

/* ---- positions ---- */

void shadow_set_position_hook(void (*want)(struct database *db))
{
	position_hook = want;
}

bool shadow_position(struct database *db, uint64_t asked_us, bool ok, uint64_t insert,
		     uint64_t applied, const char *error)
{
	struct shadow_db *sdb = db->shadow;
	struct list_node *n, *tmp;
	bool ready = false;

	if (sdb == NULL)
		return false;
	if (!ok)
		log_debug("shadow %s: could not read the replication position: %s", db->name,
			  error ? error : "unknown error");
	list_for_each_safe(n, tmp, &sdb->samples[SMP_WAIT_POS]) {
		struct shadow_sample *smp = list_entry(n, struct shadow_sample, node);

		if (!ok)
			break;
		/* the first position read after the source's answer covers everything it saw */
		if (!smp->pos_known && insert != 0 && smp->end_us <= asked_us) {
			smp->pos = insert;
			smp->pos_known = true;
		}
		if (smp->pos_known && smp->pos <= applied) {
			shadow_set_state(smp, SMP_READY);
			ready = true;
		}
	}
	if (ready)
		shadow_dispatch(sdb);
	sdb->asking = !list_empty(&sdb->samples[SMP_WAIT_POS]);
	return sdb->asking;
}

uint64_t shadow_oldest_wait_ms(const struct database *db)
{
	const struct shadow_db *sdb = db->shadow;
	const struct list_node *first;

	if (sdb == NULL || (first = list_first(&sdb->samples[SMP_WAIT_POS])) == NULL)
		return 0;
	return (rt_now_us() - list_entry(first, struct shadow_sample, node)->end_us) / 1000;
}

/* ---- statements and differences ---- */

struct shadow_stmt *shadow_stmt_find(struct shadow_db *sdb, const struct fingerprint *fp)
{
	for (size_t i = 0; i < sdb->nstmts && i < SHADOW_STATEMENTS_MAX; i++)
		if (sdb->stmts[i].hash == fp->hash)
			return &sdb->stmts[i];
	return NULL;
}

struct shadow_stmt *shadow_stmt_get(struct shadow_db *sdb, const struct fingerprint *fp,
				    const char *query)
{
	struct shadow_stmt *st;

	for (size_t i = 0; i < sdb->nstmts; i++) {
		st = &sdb->stmts[i];
		if (st->hash == fp->hash && i < SHADOW_STATEMENTS_MAX)
			goto found;
	}
	if (sdb->stmts == NULL) {
		sdb->stmts = calloc(SHADOW_STATEMENTS_MAX + 1, sizeof(*sdb->stmts));
		if (sdb->stmts == NULL)
			return NULL;
	}
	if (sdb->nstmts < SHADOW_STATEMENTS_MAX) {
		st = &sdb->stmts[sdb->nstmts++];
		st->hash = fp->hash;
		snprintf(st->fingerprint, sizeof(st->fingerprint), "%s", fp->text);
	} else {
		/* the table is full: the rest share the last row */
		st = &sdb->stmts[SHADOW_STATEMENTS_MAX];
		if (sdb->nstmts == SHADOW_STATEMENTS_MAX) {
			sdb->nstmts++;
			snprintf(st->fingerprint, sizeof(st->fingerprint), "(other statements)");
		}
	}
found:
	if (query) {
		size_t n = strlen(query);

		if (n >= sizeof(st->query)) {
			memcpy(st->query, query, sizeof(st->query) - 4);
			memcpy(st->query + sizeof(st->query) - 4, "...", 4);
		} else {
			memcpy(st->query, query, n + 1);
		}
	}
	return st;
}

/* The bucket of a duration: 8 per doubling of microseconds. */
static unsigned hist_bucket(uint64_t us)
{
	unsigned b, frac;

	if (us == 0)
		return 0;
	b = 63u - (unsigned)__builtin_clzll(us);
	frac = b >= 3 ? (unsigned)(us >> (b - 3)) & 7u : (unsigned)(us << (3 - b)) & 7u;
	return b * 8 + frac + 1 < SHADOW_HIST_BUCKETS ? b * 8 + frac + 1 : SHADOW_HIST_BUCKETS - 1;
}

static void hist_add(struct shadow_hist *h, uint64_t us)
{
	h->bucket[hist_bucket(us)]++;
	h->count++;
}

double shadow_hist_ms(const struct shadow_hist *h, double q)
{
	uint64_t want, seen = 0;

	if (h->count == 0)
		return -1;
	want = (uint64_t)(q * (double)h->count + 0.999999);
	if (want == 0)
		want = 1;
	for (unsigned k = 0; k < SHADOW_HIST_BUCKETS; k++) {
		seen += h->bucket[k];
		if (seen >= want) {
			unsigned b = (k - 1) / 8, frac = (k - 1) % 8;
			double lo, hi;

			if (k == 0)
				return 0;
			lo = (double)((uint64_t)(8 + frac) << b) / 8.0;
			hi = (double)((uint64_t)(9 + frac) << b) / 8.0;
			return (lo + hi) / 2.0 / 1000.0;
		}
	}
	return -1;
}

void shadow_record_diff(struct shadow_db *sdb, const struct shadow_stmt *st,
			const struct shadow_req *r, const char *reason,
			const struct pqdigest_result *target)
{
	struct shadow_diff *d;
	size_t slot;

	if (sdb->diffs == NULL && (sdb->diffs = calloc(SHADOW_DIFFS_MAX, sizeof(*d))) == NULL)
		return;
	if (sdb->ndiffs == SHADOW_DIFFS_MAX) {
		slot = sdb->diff_first;
		sdb->diff_first = (sdb->diff_first + 1) % SHADOW_DIFFS_MAX;
	} else {
		slot = (sdb->diff_first + sdb->ndiffs++) % SHADOW_DIFFS_MAX;
	}
	d = &sdb->diffs[slot];
	memset(d, 0, sizeof(*d));
	clock_gettime(CLOCK_REALTIME, &d->when);
	snprintf(d->fingerprint, sizeof(d->fingerprint), "%.199s", st->fingerprint);
	snprintf(d->query, sizeof(d->query), "%.511s", st->query);
	snprintf(d->reason, sizeof(d->reason), "%s", reason);
	pqdigest_summary(&r->src, d->source, sizeof(d->source));
	pqdigest_summary(target, d->target, sizeof(d->target));
	d->source_ms = (double)r->source_us / 1000.0;
	d->target_ms = (double)r->target_us / 1000.0;
}

void shadow_record_request(struct shadow_db *sdb, struct shadow_req *r, unsigned diff,
			   bool inconclusive, const char *why)
{
	struct fingerprint fp;
	struct shadow_stmt *st;
	const char *text = r->text.len ? (const char *)r->text.data : "";
	bool ran = !inconclusive;

	fingerprint_sql((const uint8_t *)text, strlen(text), &fp);
	st = shadow_stmt_get(sdb, &fp, text);
	if (st == NULL)
		return;
	st->samples++;
	sdb->totals.samples++;
	st->shape_only = r->shape_only;
	hist_add(&st->source_time, r->source_us);
	if (inconclusive) {
		st->inconclusive++;
		sdb->totals.inconclusive++;
		snprintf(st->last_difference, sizeof(st->last_difference), "inconclusive: %s", why);
		return;
	}
	hist_add(&st->target_time, r->target_us);
	if (diff != PQDIGEST_SAME) {
		const struct pqdigest_result *tgt = &r->tgt;

		st->differed++;
		sdb->totals.differed++;
		if ((diff & PQDIGEST_ERROR) && tgt->sqlstate[0]) {
			st->target_errors++;
			sdb->totals.target_errors++;
		}
		if (diff & PQDIGEST_ERROR)
			snprintf(st->last_difference, sizeof(st->last_difference),
				 "error: the source said %s, the target %s%s%.96s",
				 r->src.sqlstate[0] ? r->src.sqlstate : "ok",
				 tgt->sqlstate[0] ? tgt->sqlstate : "ok",
				 tgt->sqlstate[0] ? ": " : "", tgt->sqlstate[0] ? tgt->error : "");
		else
			snprintf(st->last_difference, sizeof(st->last_difference), "%s%s",
				 pqdigest_diff_name(diff), why ? why : "");
		shadow_record_diff(sdb, st, r, pqdigest_diff_name(diff), tgt);
	} else {
		st->matched++;
		sdb->totals.matched++;
	}
	if (ran && r->target_us > SHADOW_SLOWER_FACTOR * r->source_us &&
	    r->target_us - r->source_us >= (uint64_t)SHADOW_SLOWER_MIN_MS * 1000) {
		st->slower++;
		sdb->totals.slower++;
		if (diff == PQDIGEST_SAME) {
			snprintf(st->last_difference, sizeof(st->last_difference),
				 "slower: %.1f ms on the target, %.1f ms on the source",
				 (double)r->target_us / 1000.0, (double)r->source_us / 1000.0);
			shadow_record_diff(sdb, st, r, "slower", &r->tgt);
		}
	}
	(void)ran;
}

void shadow_sample_done(struct shadow_sample *smp, enum shadow_outcome outcome, const char *why)
{
	struct shadow_db *sdb = smp->sdb;

	if (outcome != SHADOW_COMPARED) {
		for (unsigned i = 0; i < smp->nreqs; i++) {
			struct shadow_req *r = &smp->reqs[i];
			struct fingerprint fp;
			struct shadow_stmt *st;

			if (!r->compared)
				continue;
			if (outcome == SHADOW_INCONCLUSIVE) {
				shadow_record_request(sdb, r, PQDIGEST_SAME, true, why);
				continue;
			}
			fingerprint_sql(r->text.data ? r->text.data : (const uint8_t *)"",
					r->text.len, &fp);
			st = shadow_stmt_get(sdb, &fp, NULL);
			if (st) {
				st->samples++;
				st->dropped++;
			}
			sdb->totals.samples++;
			sdb->totals.dropped++;
		}
		log_debug("shadow %s: a sample of %s was %s: %s", sdb->db->name, smp->user,
			  outcome == SHADOW_DROPPED ? "dropped" : "inconclusive", why ? why : "");
	}
	shadow_sample_free(smp);
}

bool shadow_draw(struct shadow_db *sdb, double rate)
{
	uint64_t x = sdb->random;

	if (rate >= 1.0)
		return true;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	sdb->random = x;
	return (double)(x >> 11) * (1.0 / 9007199254740992.0) < rate;
}

/* ---- the timer ---- */

void shadow_arm_timer(struct shadow_db *sdb)
{
	struct timeval tv = {SHADOW_TICK_MS / 1000, (SHADOW_TICK_MS % 1000) * 1000};

	if (!evtimer_pending(sdb->timer, NULL))
		evtimer_add(sdb->timer, &tv);
}

/* End with 'why' every sample of a list that entered it before 'since'. */
static void expire(struct shadow_db *sdb, enum shadow_state st, uint64_t since, const char *why)
{
	struct list_node *n, *tmp;

	list_for_each_safe(n, tmp, &sdb->samples[st]) {
		struct shadow_sample *smp = list_entry(n, struct shadow_sample, node);
		uint64_t t = st == SMP_WAIT_POS ? smp->end_us : smp->queued_us;

		if (t < since)
			shadow_sample_done(smp, SHADOW_INCONCLUSIVE, why);
	}
}

static void shadow_tick(evutil_socket_t fd, short what, void *arg)
{
	struct shadow_db *sdb = arg;
	const struct db_config *dc = sdb->db->cfg;
	uint64_t now = rt_now_us();
	uint64_t lag_us = (uint64_t)(dc ? dc->d.lag_timeout_ms : 30000) * 1000;
	uint64_t run_us = (uint64_t)(SHADOW_STATEMENT_TIMEOUT_MS + 5000) * 1000;
	struct list_node *n, *tmp;
	bool busy = false;

	(void)fd;
	(void)what;
	if (sdb->db->route != SIDE_SOURCE || sdb->db->removed) {
		/* the target is the live side now: what waits can no longer be compared */
		expire(sdb, SMP_WAIT_POS, UINT64_MAX, "the database switched sides");
		expire(sdb, SMP_READY, UINT64_MAX, "the database switched sides");
		expire(sdb, SMP_RECHECK, UINT64_MAX, "the database switched sides");
	}
	if (now > lag_us) {
		expire(sdb, SMP_WAIT_POS, now - lag_us,
		       "the target did not apply the source's position within lag_timeout");
		expire(sdb, SMP_READY, now - lag_us, "no replay connection within lag_timeout");
		expire(sdb, SMP_RECHECK, now - lag_us,
		       "no connection to the source within lag_timeout");
	}
	for (int st = SMP_TARGET; st <= SMP_SOURCE; st += SMP_SOURCE - SMP_TARGET) {
		list_for_each_safe(n, tmp, &sdb->samples[st]) {
			struct shadow_sample *smp = list_entry(n, struct shadow_sample, node);

			if (now - smp->queued_us > run_us)
				shadow_cut_replay(smp);
		}
	}
	shadow_close_idle(sdb, false);
	shadow_dispatch(sdb);
	for (int st = 0; st < SMP_NSTATES; st++)
		busy = busy || !list_empty(&sdb->samples[st]);
	busy = busy || !list_empty(&sdb->pools);
	if (busy)
		shadow_arm_timer(sdb);
}

/* ---- the views ---- */

const struct shadow_db *shadow_books(const struct database *db)
{
	return db->shadow;
}

size_t shadow_stmt_count(const struct shadow_db *sdb)
{
	return sdb->nstmts;
}

const struct shadow_stmt *shadow_stmt_at(const struct shadow_db *sdb, size_t i)
{
	return i < sdb->nstmts ? &sdb->stmts[i] : NULL;
}

size_t shadow_diff_count(const struct shadow_db *sdb)
{
	return sdb->ndiffs;
}

const struct shadow_diff *shadow_diff_at(const struct shadow_db *sdb, size_t i)
{
	return i < sdb->ndiffs ? &sdb->diffs[(sdb->diff_first + i) % SHADOW_DIFFS_MAX] : NULL;
}

void shadow_totals(const struct shadow_db *sdb, struct shadow_totals *out)
{
	*out = sdb->totals;
}

int shadow_held(const struct shadow_db *sdb)
{
	return sdb->held;
}

int shadow_connections(const struct shadow_db *sdb, enum route_side side)
{
	const struct list_node *n;
	int k = 0;

	list_for_each(n, &sdb->pools) {
		const struct shadow_pool *sp = list_entry(n, const struct shadow_pool, node);

		if (sp->side == side)
			k += sp->pool->nservers;
	}
	return k;
}

size_t shadow_server_count(const struct database *db)
{
	const struct shadow_db *sdb = db->shadow;
	const struct list_node *n;
	size_t k = 0;

	if (sdb == NULL)
		return 0;
	list_for_each(n, &sdb->pools)
		k += (size_t)list_entry(n, const struct shadow_pool, node)->pool->nservers;
	return k;
}

size_t shadow_server_pids(const struct database *db, enum route_side side, uint32_t *out, size_t max)
{
	const struct shadow_db *sdb = db->shadow;
	const struct list_node *n, *m;
	size_t k = 0;

	if (sdb == NULL)
		return 0;
	list_for_each(n, &sdb->pools) {
		const struct shadow_pool *sp = list_entry(n, const struct shadow_pool, node);
		const struct list_node *lists[2] = {&sp->pool->idle_servers,
						    &sp->pool->active_servers};

		if (sp->side != side)
			continue;
		for (int i = 0; i < 2; i++)
			list_for_each(m, lists[i]) {
				const struct server *s = list_entry(m, const struct server, node);

				if (k < max && s->be_pid)
					out[k++] = s->be_pid;
			}
	}
	return k;
}

void shadow_shutdown(void)
{
	struct list_node *n, *tmp;

	list_for_each_safe(n, tmp, &all_books) {
		struct shadow_db *sdb = list_entry(n, struct shadow_db, node);

		for (int st = 0; st < SMP_NSTATES; st++)
			while (!list_empty(&sdb->samples[st]))
				shadow_sample_free(list_entry(list_first(&sdb->samples[st]),
							      struct shadow_sample, node));
		while (!list_empty(&sdb->pools))
			shadow_pool_free(
				list_entry(list_first(&sdb->pools), struct shadow_pool, node));
		list_remove(&sdb->node);
		event_free(sdb->timer);
		sdb->db->shadow = NULL;
		free(sdb->stmts);
		free(sdb->diffs);
		free(sdb);
	}
}
