/*
 * verify_task.c - one key range's comparison (see verify_int.h for the
 * steps): each step sends its queries on one worker (a connection to each
 * side) and decides, from the answers, the next step or the verdict.
 *
 * The rule that keeps a live workload from producing a false difference: a
 * row, or a whole table without a key, is declared different only from a
 * sandwich: the old
 * side read (A), the new side read once it has applied A's position, the
 * old side read again (B), and nothing of the range changed on the old side
 * between A and B (the sum of its rows' xmin is the same).  The new side's
 * read then saw exactly what the old side held at A and at B.  A row is
 * reported only after two such sandwiches agree.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/verify_int.h"
#include "protocol/pq_build.h"
#include "proxy/core/config.h"
#include "proxy/core/hash.h"

/* Keys one row-by-row comparison follows at most (its range and what it met). */
#define VERIFY_KEYS_MAX (4 * VERIFY_ROWS_MAX)

char **verify_values_dup(char *const *v, int n)
{
	char **out = calloc((size_t)n, sizeof(*out));

	if (out == NULL)
		return NULL;
	for (int i = 0; i < n; i++) {
		out[i] = strdup(v[i] ? v[i] : "");
		if (out[i] == NULL) {
			verify_values_free(out, i);
			return NULL;
		}
	}
	return out;
}

void verify_values_free(char **v, int n)
{
	if (v == NULL)
		return;
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

struct verify_task *verify_task_new(struct verify_table *t, struct verify_chunk *c)
{
	struct verify_task *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return NULL;
	if (c == NULL) {
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			free(k);
			return NULL;
		}
		k->first = true;
	}
	k->t = t;
	k->chunk = c;
	c->open++;
	k->step = VS_PASS;
	k->pair = -1;
	t->tasks++;
	return k;
}

static void rowkey_free(struct verify_rowkey *r, int nkey)
{
	verify_values_free(r->v, nkey);
	free(r->old_hash_a);
	free(r->old_ver_a);
	free(r->old_hash_b);
	free(r->old_ver_b);
	free(r->new_hash);
}

void verify_task_free(struct verify_task *k)
{
	int nkey = k->t->nkey;

	verify_values_free(k->lo.v, nkey);
	verify_values_free(k->hi.v, nkey);
	for (int i = 0; i < k->nkeys; i++)
		rowkey_free(&k->keys[i], nkey);
	free(k->keys);
	free(k->slot);
	free(k);
}

static bool lsn_positions(const struct verify_run *run)
{
	return run->dc->d.lag_method == LAG_LSN;
}

/* Build one query with f and send it; false when it could not go (the table fails). */
static bool send_summary(struct verify_run *run, struct verify_task *k, int w, int side,
			 bool versions, bool position,
			 void (*cb)(struct verify_run *, struct verify_task *, int,
				    const PGresult *, const char *))
{
	struct pq_buf b;
	bool ok;

	pq_buf_init(&b);
	verify_sql_summary(&b, k->t, k, versions, position);
	ok = !b.failed && verify_query(run, w, side, (const char *)b.data, cb);
	pq_buf_free(&b);
	return ok;
}

static bool send_rows(struct verify_run *run, struct verify_task *k, int w, int side, bool versions,
		      bool position,
		      void (*cb)(struct verify_run *, struct verify_task *, int, const PGresult *,
				 const char *))
{
	struct pq_buf b;
	bool ok;

	pq_buf_init(&b);
	verify_sql_rows(&b, k->t, k, versions, position);
	ok = !b.failed && verify_query(run, w, side, (const char *)b.data, cb);
	pq_buf_free(&b);
	return ok;
}

static void copy_text(char *dst, size_t len, const PGresult *res, int row, int col)
{
	const char *v = res && PQntuples(res) > row && !PQgetisnull(res, row, col)
				? PQgetvalue(res, row, col)
				: "";

	snprintf(dst, len, "%s", v);
}

/* A summary read into r (count, hash, versions, position as columns 0..3). */
static void take_summary(struct verify_run *run, struct verify_summary_read *r, const PGresult *res,
			 bool versions)
{
	copy_text(r->count, sizeof(r->count), res, 0, 0);
	copy_text(r->hash, sizeof(r->hash), res, 0, 1);
	if (versions)
		copy_text(r->version, sizeof(r->version), res, 0, 2);
	snprintf(r->pos, sizeof(r->pos), "%" PRIu64,
		 verify_read_position(run, res, versions ? 3 : 2));
}

/* ---- the verdict of a range ---- */

/* Cut an integer range into VERIFY_FANOUT ranges, each a new PASS. */
static void split_integer(struct verify_run *run, struct verify_task *k)
{
	/* 128 bits: a range may span the whole of bigint */
	__int128 lo = k->ilo, hi = k->ihi, part = (hi - lo + 1) / VERIFY_FANOUT;

	if (part < 1)
		part = 1;
	for (__int128 a = lo; a <= hi; a += part) {
		struct verify_task *c = verify_task_new(k->t, k->chunk);

		if (c == NULL) {
			verify_table_failed(run, k->t, "out of memory");
			return;
		}
		c->ilo = (int64_t)a;
		c->ihi = (int64_t)(hi - a < part ? hi : a + part - 1);
		c->wait_for = k->pass_pos;
		verify_task_next(run, c);
	}
}

/* The range differs for sure: narrow it down. */
static void narrow(struct verify_run *run, struct verify_task *k)
{
	int64_t rows = k->old_count > k->new_count ? k->old_count : k->new_count;

	if (k->t->kind == VK_NONE) {
		verify_add_diff(run, k->t, "(whole table)", "different");
		k->chunk->diff = true;
		verify_task_finished(run, k);
		return;
	}
	if (rows <= VERIFY_ROWS_MAX || (k->t->kind == VK_INTEGER && k->ihi == k->ilo)) {
		k->step = VS_ROWS_OLD_A;
		k->round = 0;
		verify_task_next(run, k);
		return;
	}
	if (k->t->kind == VK_INTEGER) {
		split_integer(run, k);
		verify_task_finished(run, k);
		return;
	}
	k->step = VS_SPLIT;
	verify_task_next(run, k);
}

/* ---- PASS ---- */

static void pass_cb(struct verify_run *run, struct verify_task *k, int side, const PGresult *res,
		    const char *error)
{
	struct verify_summary_read *r = side == (int)run->old_side ? &k->a : &k->b;

	if (error) {
		verify_table_failed(run, k->t, error);
		return;
	}
	take_summary(run, r, res, false);
	if (k->a.count[0] == '\0' || k->b.count[0] == '\0')
		return; /* the other side is still out */
	k->old_count = strtoll(k->a.count, NULL, 10);
	k->new_count = strtoll(k->b.count, NULL, 10);
	if (strcmp(k->a.count, k->b.count) == 0 && strcmp(k->a.hash, k->b.hash) == 0) {
		verify_task_finished(run, k);
		return;
	}
	/*
	 * A range with a key is cut down at once, and its pieces are read once
	 * the new side has applied the old side's position at this read: a
	 * difference that was only lag is gone by then.  Only rows are ever
	 * reported, each from a sandwich of its own (ROWS_*); reading the whole
	 * range three more times first would only tell lag from a difference
	 * sooner, at three times the cost.
	 */
	if (k->t->kind != VK_NONE) {
		k->pass_pos = strtoull(k->a.pos, NULL, 10);
		narrow(run, k);
		return;
	}
	/* a whole table: maybe only lag, the sandwich decides */
	memset(&k->a, 0, sizeof(k->a));
	memset(&k->b, 0, sizeof(k->b));
	k->step = VS_OLD_A;
	verify_task_next(run, k);
}

/* ---- the sandwich of a range: OLD_A, (wait), NEW_B, OLD_B ---- */

static void old_a_cb(struct verify_run *run, struct verify_task *k, int side, const PGresult *res,
		     const char *error)
{
	(void)side;
	if (error) {
		verify_table_failed(run, k->t, error);
		return;
	}
	take_summary(run, &k->a, res, true);
	k->wait_for = strtoull(k->a.pos, NULL, 10);
	k->step = VS_NEW_B;
	verify_task_next(run, k);
}

static void old_b_cb(struct verify_run *run, struct verify_task *k, int side, const PGresult *res,
		     const char *error);

static void new_b_cb(struct verify_run *run, struct verify_task *k, int side, const PGresult *res,
		     const char *error)
{
	(void)side;
	if (error) {
		verify_table_failed(run, k->t, error);
		return;
	}
	copy_text(k->new_count_s, sizeof(k->new_count_s), res, 0, 0);
	copy_text(k->new_hash, sizeof(k->new_hash), res, 0, 1);
	k->step = VS_OLD_B;
	if (!send_summary(run, k, k->pair, (int)run->old_side, true, lsn_positions(run), old_b_cb))
		verify_table_failed(run, k->t, "out of memory");
}

static void old_b_cb(struct verify_run *run, struct verify_task *k, int side, const PGresult *res,
		     const char *error)
{
	(void)side;
	if (error) {
		verify_table_failed(run, k->t, error);
		return;
	}
	take_summary(run, &k->b, res, true);
	if (strcmp(k->a.count, k->b.count) == 0 && strcmp(k->a.version, k->b.version) == 0 &&
	    strcmp(k->a.hash, k->b.hash) == 0) {
		k->old_count = strtoll(k->a.count, NULL, 10);
		k->new_count = strtoll(k->new_count_s, NULL, 10);
		if (strcmp(k->a.count, k->new_count_s) == 0 && strcmp(k->a.hash, k->new_hash) == 0)
			verify_task_finished(run, k); /* it was lag */
		else
			narrow(run, k);
		return;
	}
	/* written to meanwhile (only a whole table comes here): again, from B */
	if (++k->round >= VERIFY_ROUNDS) {
		verify_add_pending(run, k);
		verify_task_finished(run, k);
		return;
	}
	k->a = k->b;
	k->wait_for = strtoull(k->b.pos, NULL, 10);
	k->step = VS_NEW_B;
	verify_task_next(run, k);
}

/* ---- SPLIT (keys other than one integer): boundaries from the side with more rows in the range ---- */

static void split_cb(struct verify_run *run, struct verify_task *k, int side, const PGresult *res,
		     const char *error)
{
	struct verify_table *t = k->t;
	int n;
	char **prev = NULL;

	(void)side;
	if (error) {
		verify_table_failed(run, t, error);
		return;
	}
	n = PQntuples(res);
	if (n == 0) {
		/* nothing to cut at: row by row after all */
		k->step = VS_ROWS_OLD_A;
		k->round = 0;
		verify_task_next(run, k);
		return;
	}
	prev = k->lo.v ? verify_values_dup(k->lo.v, t->nkey) : NULL;
	for (int i = 0; i <= n; i++) {
		struct verify_task *c;
		char *vals[VERIFY_KEY_MAX];

		if (i < n)
			for (int j = 0; j < t->nkey; j++)
				vals[j] = PQgetvalue(res, i, j);
		c = verify_task_new(t, k->chunk);
		if (c == NULL) {
			verify_table_failed(run, t, "out of memory");
			break;
		}
		c->lo.v = prev;
		c->hi.v = i < n ? verify_values_dup(vals, t->nkey)
				: (k->hi.v ? verify_values_dup(k->hi.v, t->nkey) : NULL);
		prev = c->hi.v ? verify_values_dup(c->hi.v, t->nkey) : NULL;
		c->wait_for = k->pass_pos;
		verify_task_next(run, c);
	}
	verify_values_free(prev, t->nkey);
	verify_task_finished(run, k);
}

/* ---- row by row ---- */

/* A key's hash: its values, each ended by a NUL. */
static uint64_t key_hash(const struct verify_table *t, char *const *v)
{
	uint64_t h = 0;

	for (int j = 0; j < t->nkey; j++)
		h = h * 31 + hash_bytes(v[j], strlen(v[j]) + 1);
	return h;
}

static bool key_same(const struct verify_table *t, char *const *a, char *const *b)
{
	for (int j = 0; j < t->nkey; j++)
		if (strcmp(a[j], b[j]) != 0)
			return false;
	return true;
}

/* The slot of key v in k's index: where it is, or the empty one where it would go. */
static int *key_slot(struct verify_task *k, char *const *v)
{
	uint32_t mask = (uint32_t)k->nslot - 1, i = (uint32_t)key_hash(k->t, v) & mask;

	while (k->slot[i] && !key_same(k->t, k->keys[k->slot[i] - 1].v, v))
		i = (i + 1) & mask;
	return &k->slot[i];
}

/* Room in the index for one more key (it doubles, the keys indexed again). */
static bool index_reserve(struct verify_task *k)
{
	int n = k->nslot ? k->nslot : 64;
	int *old = k->slot;

	if (k->nslot && 2 * (k->nkeys + 1) <= k->nslot)
		return true;
	while (2 * (k->nkeys + 1) > n)
		n *= 2;
	if ((k->slot = calloc((size_t)n, sizeof(*k->slot))) == NULL) {
		k->slot = old;
		return false;
	}
	k->nslot = n;
	free(old);
	for (int i = 0; i < k->nkeys; i++)
		*key_slot(k, k->keys[i].v) = i + 1;
	return true;
}

static struct verify_rowkey *find_key(struct verify_task *k, char *const *v)
{
	int *s;

	if (k->nslot == 0)
		return NULL;
	s = key_slot(k, v);
	return *s ? &k->keys[*s - 1] : NULL;
}

/* The key of row i of res, found or added; NULL when past the bound or out of memory. */
static struct verify_rowkey *row_key(struct verify_task *k, const PGresult *res, int i)
{
	char *vals[VERIFY_KEY_MAX];
	struct verify_rowkey *r;

	for (int j = 0; j < k->t->nkey; j++)
		vals[j] = PQgetvalue(res, i, j);
	if ((r = find_key(k, vals)) != NULL)
		return r;
	if (k->nkeys >= VERIFY_KEYS_MAX || !index_reserve(k))
		return NULL;
	if (k->nkeys == k->cap_keys) {
		int cap = k->cap_keys ? 2 * k->cap_keys : 64;
		struct verify_rowkey *grown = realloc(k->keys, (size_t)cap * sizeof(*grown));

		if (grown == NULL)
			return NULL;
		k->keys = grown;
		k->cap_keys = cap;
	}
	r = &k->keys[k->nkeys];
	memset(r, 0, sizeof(*r));
	r->v = verify_values_dup(vals, k->t->nkey);
	if (r->v == NULL)
		return NULL;
	*key_slot(k, r->v) = ++k->nkeys;
	return r;
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? strdup(v) : NULL;
}

/*
 * Take one side's rows: old side A or B (with xmin), or the new side.  The
 * position row (the position query's own row, its key NULL) gives wait_for.
 * False when there were too many keys to follow.
 */
static bool take_rows(struct verify_run *run, struct verify_task *k, const PGresult *res, int which)
{
	int nkey = k->t->nkey;
	bool ok = true;

	for (int i = 0; i < PQntuples(res); i++) {
		struct verify_rowkey *r;

		if (PQgetisnull(res, i, 0)) {
			k->wait_for = verify_read_position(run, res, nkey + 2);
			continue;
		}
		if ((r = row_key(k, res, i)) == NULL) {
			ok = false;
			continue;
		}
		if (which == 0) {
			r->in_old_a = true;
			set_str(&r->old_hash_a, PQgetvalue(res, i, nkey));
			set_str(&r->old_ver_a, PQgetvalue(res, i, nkey + 1));
		} else if (which == 1) {
			r->in_old_b = true;
			set_str(&r->old_hash_b, PQgetvalue(res, i, nkey));
			set_str(&r->old_ver_b, PQgetvalue(res, i, nkey + 1));
		} else {
			r->in_new = true;
			set_str(&r->new_hash, PQgetvalue(res, i, nkey));
		}
	}
	if (which != 2 && !lsn_positions(run))
		k->wait_for = verify_read_position(run, res, -1);
	return ok;
}

/* Before a round: what the old side's A read says comes from B, or nothing. */
static void rows_round_reset(struct verify_task *k, bool from_b)
{
	for (int i = 0; i < k->nkeys; i++) {
		struct verify_rowkey *r = &k->keys[i];

		if (from_b) {
			r->in_old_a = r->in_old_b;
			set_str(&r->old_hash_a, r->old_hash_b);
			set_str(&r->old_ver_a, r->old_ver_b);
		} else {
			r->in_old_a = false;
		}
		r->in_old_b = false;
		r->in_new = false;
	}
}

static void rows_old_b_cb(struct verify_run *run, struct verify_task *k, int side,
			  const PGresult *res, const char *error);

static void rows_old_a_cb(struct verify_run *run, struct verify_task *k, int side,
			  const PGresult *res, const char *error)
{
	(void)side;
	if (error) {
		verify_table_failed(run, k->t, error);
		return;
	}
	if (!take_rows(run, k, res, 0)) {
		verify_add_pending(run, k);
		verify_task_finished(run, k);
		return;
	}
	k->step = VS_ROWS_NEW_B;
	verify_task_next(run, k);
}

static void rows_new_b_cb(struct verify_run *run, struct verify_task *k, int side,
			  const PGresult *res, const char *error)
{
	(void)side;
	if (error) {
		verify_table_failed(run, k->t, error);
		return;
	}
	(void)take_rows(run, k, res, 2);
	k->step = VS_ROWS_OLD_B;
	if (!send_rows(run, k, k->pair, (int)run->old_side, true, lsn_positions(run), rows_old_b_cb))
		verify_table_failed(run, k->t, "out of memory");
}

static bool same_str(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* After B: decide each key the sandwich covers; true when none is left open. */
static bool rows_decide(struct verify_run *run, struct verify_task *k, int listed_before)
{
	bool open = false;

	for (int i = 0; i < k->nkeys; i++) {
		struct verify_rowkey *r = &k->keys[i];
		bool stable, diff;
		int kind;

		if (r->decided)
			continue;
		/* A key first met in this round's later reads was outside A's reach */
		stable = (i < listed_before || r->in_old_a) && r->in_old_a == r->in_old_b &&
			 (!r->in_old_a || (same_str(r->old_ver_a, r->old_ver_b) &&
					   same_str(r->old_hash_a, r->old_hash_b)));
		if (!stable) {
			open = true;
			continue;
		}
		diff = r->in_old_a != r->in_new ||
		       (r->in_old_a && r->in_new && !same_str(r->old_hash_a, r->new_hash));
		if (!diff) {
			r->decided = true;
			r->confirmed = 0;
			continue;
		}
		kind = r->in_old_a && !r->in_new ? 0 : !r->in_old_a ? 1 : 2;
		r->confirmed = r->confirmed > 0 && r->kind == kind ? r->confirmed + 1 : 1;
		r->kind = kind;
		if (r->confirmed < 2) {
			open = true;
			continue;
		}
		r->decided = true;
		{
			static const char *const kinds[] = {"missing", "extra", "different"};
			char *key = verify_key_text(k->t, r->v);

			verify_add_diff(run, k->t, key ? key : "?", kinds[kind]);
			free(key);
			k->chunk->diff = true;
		}
	}
	return !open;
}

static void rows_old_b_cb(struct verify_run *run, struct verify_task *k, int side,
			  const PGresult *res, const char *error)
{
	int listed_before = k->round_keys;

	(void)side;
	if (error) {
		verify_table_failed(run, k->t, error);
		return;
	}
	if (!take_rows(run, k, res, 1) || ++k->round > VERIFY_ROUNDS + 1) {
		if (!rows_decide(run, k, listed_before))
			verify_add_pending(run, k);
		verify_task_finished(run, k);
		return;
	}
	if (rows_decide(run, k, listed_before)) {
		verify_task_finished(run, k);
		return;
	}
	/* another sandwich, B standing for the next A */
	rows_round_reset(k, true);
	k->round_keys = k->nkeys;
	k->step = VS_ROWS_NEW_B;
	verify_task_next(run, k);
}

/* ---- a step on a worker ---- */

void verify_task_step(struct verify_run *run, struct verify_task *k, int w)
{
	int old = (int)run->old_side, neu = (int)run->new_side;
	bool ok = true, pos = lsn_positions(run);
	struct pq_buf b;

	k->pair = w;
	switch (k->step) {
	case VS_PASS:
		memset(&k->a, 0, sizeof(k->a));
		memset(&k->b, 0, sizeof(k->b));
		ok = send_summary(run, k, w, old, false, pos, pass_cb) &&
		     send_summary(run, k, w, neu, false, false, pass_cb);
		break;
	case VS_OLD_A:
		ok = send_summary(run, k, w, old, true, pos, old_a_cb);
		break;
	case VS_NEW_B:
		ok = send_summary(run, k, w, neu, false, false, new_b_cb);
		break;
	case VS_SPLIT: {
		int64_t rows = k->old_count > k->new_count ? k->old_count : k->new_count;

		/* cut where the rows are: the new side's keys when it holds more (rows only it has) */
		pq_buf_init(&b);
		verify_sql_split(&b, k->t, k, (rows + VERIFY_FANOUT - 1) / VERIFY_FANOUT);
		ok = !b.failed && verify_query(run, w, k->new_count > k->old_count ? neu : old,
					       (const char *)b.data, split_cb);
		pq_buf_free(&b);
		break;
	}
	case VS_ROWS_OLD_A:
		rows_round_reset(k, false);
		k->round_keys = k->nkeys;
		ok = send_rows(run, k, w, old, true, pos, rows_old_a_cb);
		break;
	case VS_ROWS_NEW_B:
		ok = send_rows(run, k, w, neu, false, false, rows_new_b_cb);
		break;
	default:
		ok = false;
		break;
	}
	if (!ok)
		verify_table_failed(run, k->t, "out of memory");
}
