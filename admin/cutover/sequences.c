/*
 * sequences.c - the sequence sync inside the pause: logical replication
 * does not carry sequences, so before the flip every sequence sequence_sync
 * names is set on the side switched to at or beyond its next value on the
 * side switched from (plus sequence_margin), never backwards.  Every one of
 * them was already set so before the pause (sequences_ahead.c); here the
 * old side tells which moved since (one query, seqsql.h), and only those are
 * set again (one DO block): the pause grows with what moved during the
 * switch, not with the number of sequences.
 */
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/engine.h"
#include "admin/cutover/seqsql.h"
#include "admin/cutover/seqstate.h"
#include "proxy/core/log.h"
#include "protocol/sqlstate.h"
#include "proxy/core/config.h"
#include "proxy/core/route.h"
#include "proxy/database.h"

/* Whether sequence_sync names this sequence. */
bool cutover_seq_selected(const struct db_config *dc, const char *name)
{
	const char *list = dc->d.sequence_sync;
	size_t n = strlen(name);

	if (strcmp(list, "all") == 0)
		return true;
	if (strcmp(list, "none") == 0)
		return false;
	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		while (len > 0 && *p == ' ') {
			p++;
			len--;
		}
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len == n && strncmp(p, name, n) == 0)
			return true;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return false;
}

static void seq_done(struct cutover *co, size_t moved)
{
	co->rec.ms_sequences = cutover_ms_since(co->t_phase);
	log_debug("switch %s: %zu of %zu sequences moved since they were set ahead (%lld ms)",
		  co->db->name, moved, co->seq_ahead ? co->seq_ahead->n : 0,
		  (long long)co->rec.ms_sequences);
	cutover_phase_done(co);
}

static void seq_set_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	if (!cutover_answer(co, r, CO_SYNC_SEQUENCES, "set sequences", co->to))
		return;
	seq_done(co, co->seq_moved);
}

/*
 * The sequences that answered: those whose values differ from the ones read
 * before the pause (every one that is_called false now answers, unchanged
 * or not) are set on the new side, in one DO block.
 */
static void seq_delta_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;
	struct seq_apply_item *items;
	size_t n = 0;
	int rows;

	if (!cutover_answer(co, r, CO_SYNC_SEQUENCES, "read sequences", co->from))
		return;
	rows = r->res ? PQntuples(r->res) : 0;
	items = calloc(rows ? (size_t)rows : 1, sizeof(*items));
	if (items == NULL) {
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	for (int i = 0; i < rows; i++) {
		long long last;
		bool called;
		struct seq_entry *e = cutover_seq_value(co, r->res, i, &last, &called);

		if (e == NULL) {
			free(items);
			return; /* the switch failed */
		}
		if (e->last == last && e->called == called)
			continue; /* set ahead with these values already */
		e->last = last;
		e->called = called;
		items[n++] = (struct seq_apply_item){e->qname, last, called, e->inc};
	}
	co->seq_moved = n;
	if (n == 0) {
		free(items);
		seq_done(co, 0);
		return;
	}
	if (!cutover_seq_apply(co, items, n, seq_set_cb)) {
		free(items);
		return; /* the switch failed */
	}
	free(items);
}

void cutover_sequences_enter(struct cutover *co)
{
	struct seq_ahead *sa = co->seq_ahead;

	co->seq_moved = 0;
	if (strcmp(cutover_cfg(co)->d.sequence_sync, "none") == 0 || sa == NULL || sa->n == 0) {
		seq_done(co, 0);
		return;
	}
	if (!cutover_seq_values(co, true, seq_delta_cb))
		return; /* the switch failed */
}
