/*
 * listen_mark.c - the markers of a pool's listener (see listen.h): the
 * queries that send them, the list of those on their way, and what their
 * arrival tells.  The list is in the order the markers were sent; each entry
 * names the backend that sends it, so the first entry of a backend says
 * whose are the notifications that backend committed before it.  An entry
 * may also be open (no marker yet): a listening client's transaction runs
 * on that backend, after its fence.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/pq_build.h"
#include "protocol/sqlquote.h"
#include "proxy/client.h"
#include "proxy/core/log.h"
#include "proxy/listen.h"
#include "proxy/listen_client.h"
#include "proxy/listen_int.h"
#include "proxy/pool.h"
#include "proxy/server.h"

static struct listen_mark *open_entry(const struct listener *l, uint32_t pid,
				      const struct client *c);

const char *listen_mark_channel(const struct listener *l)
{
	return l->conn[l->cur].mchan;
}

char *listen_mark_sql(struct listener *l, const struct server *s, struct client *c, bool own,
		      bool listen, uint64_t *seq)
{
	struct listen_conn *lc = &l->conn[l->cur];
	struct listen_mark *m;
	struct pq_buf b;
	char num[24];
	char *sql;

	if (!listen_ready(l))
		return NULL;
	/* the client's transaction opened an entry at its start (listen_open): it ends here */
	m = c ? open_entry(l, s->be_pid, c) : NULL;
	if (m == NULL) {
		m = calloc(1, sizeof(*m));
		if (m == NULL)
			return NULL;
		m->pid = s->be_pid;
		m->client = c;
		m->own = own;
		list_append(&l->marks, &m->node);
	}
	m->seq = ++l->seq;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)m->seq);
	pq_buf_init(&b);
	if (listen) {
		pq_put_bytes(&b, "LISTEN ", 7);
		sqlquote_put_ident(&b, lc->mchan);
		pq_put_bytes(&b, "; ", 2);
	}
	pq_put_bytes(&b, "SELECT pg_catalog.pg_notify(", 28);
	sqlquote_put_literal(&b, lc->mchan);
	pq_put_bytes(&b, ", ", 2);
	sqlquote_put_literal(&b, num);
	pq_put_bytes(&b, ")", 1);
	pq_put_u8(&b, 0);
	sql = b.failed ? NULL : strdup((const char *)b.data);
	pq_buf_free(&b);
	if (sql == NULL) {
		list_remove(&m->node);
		free(m);
		return NULL;
	}
	evtimer_del(l->idle_timer);
	*seq = m->seq;
	log_debug("listener %s/%s: marker %llu from backend %u%s%s", listen_label(l), l->pool->user,
		  (unsigned long long)m->seq, (unsigned)m->pid, c ? " for client " : " (a fence)",
		  c ? c->addr : "");
	return sql;
}

/* The open entry of client c's transaction on backend 'pid', if any. */
static struct listen_mark *open_entry(const struct listener *l, uint32_t pid, const struct client *c)
{
	struct list_node *p;

	list_for_each(p, &l->marks) {
		struct listen_mark *m = list_entry(p, struct listen_mark, node);

		if (m->seq == 0 && m->pid == pid && m->client == c)
			return m;
	}
	return NULL;
}

bool listen_open(struct listener *l, const struct server *s, struct client *c)
{
	struct listen_mark *m;

	if (!listen_ready(l) || open_entry(l, s->be_pid, c))
		return false;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return false;
	m->pid = s->be_pid;
	m->client = c;
	m->own = true;
	list_append(&l->marks, &m->node);
	return true;
}

void listen_server_done(struct listener *l, const struct server *s)
{
	struct list_node *p, *tmp;

	list_for_each_safe(p, tmp, &l->marks) {
		struct listen_mark *m = list_entry(p, struct listen_mark, node);

		if (m->seq == 0 && m->pid == s->be_pid) {
			list_remove(p);
			free(m);
		}
	}
	listen_idle_check(l);
}

void listen_mark_cancel(struct listener *l, uint64_t seq)
{
	struct list_node *p;

	list_for_each(p, &l->marks) {
		struct listen_mark *m = list_entry(p, struct listen_mark, node);

		if (m->seq == seq) {
			list_remove(p);
			free(m);
			break;
		}
	}
	listen_idle_check(l);
}

void listen_forget_client(struct listener *l, struct client *c)
{
	struct list_node *p;

	list_for_each(p, &l->marks) {
		struct listen_mark *m = list_entry(p, struct listen_mark, node);

		if (m->client == c)
			m->client = NULL;
	}
	listen_idle_check(l);
}

/*
 * A marker arrived: what that backend sent before it has all arrived.  Older
 * markers of the same backend that never arrived (their query failed after
 * all) go with it.
 */
void listen_mark_arrived(struct listener *l, uint32_t pid, const char *payload)
{
	struct list_node *p, *tmp;
	struct client *who = NULL;
	unsigned long long seq;
	char *end;

	seq = strtoull(payload, &end, 10);
	if (*end != '\0')
		return;
	list_for_each_safe(p, tmp, &l->marks) {
		struct listen_mark *m = list_entry(p, struct listen_mark, node);

		/* an entry still open (its transaction runs) stays */
		if (m->pid != pid || m->seq > seq || m->seq == 0)
			continue;
		if (m->seq == seq)
			who = m->client;
		list_remove(p);
		free(m);
	}
	if (who)
		listen_client_marked(who);
	listen_idle_check(l);
}

/* The client whose transaction sent what backend 'pid' commits now, if known. */
struct client *listen_mark_sender(const struct listener *l, uint32_t pid)
{
	const struct list_node *p;

	list_for_each(p, &l->marks) {
		const struct listen_mark *m = list_entry(p, const struct listen_mark, node);

		if (m->pid == pid)
			return m->own ? m->client : NULL;
	}
	return NULL;
}
