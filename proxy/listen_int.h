/*
 * listen_int.h - between the files of the listener (listen.c: connections,
 * channels, fan-out, moves; listen_mark.c: markers).  Nothing else includes
 * it: everyone else sees listen.h.
 */
#ifndef PGCUTOVER_LISTEN_INT_H
#define PGCUTOVER_LISTEN_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/core/htab.h"
#include "proxy/core/list.h"
#include "proxy/listen.h"

struct event;

/* One server connection of a listener. */
struct listen_conn {
	struct server *s; /* NULL while the slot is empty */
	char mchan[48];   /* its marker channel, "pgcutover.<backend pid>", once logged in */
	bool ready;       /* its first batch (marker channel and every channel) is done */
	bool busy;        /* a batch is in flight */
	char error[256];  /* the batch in flight failed: why */
};

struct listener {
	struct pool *pool;
	struct htab chans;          /* struct listen_chan, by name */
	struct list_node chan_list; /* the same, for walks */
	struct listen_conn conn[LISTEN_CONNS];
	int cur;                   /* the slot in use */
	bool moving;               /* the other slot is its replacement */
	bool promote;              /* ... which takes over once ready (the flip happened) */
	bool holding;              /* ... and its database is held until then */
	uint64_t seq;              /* the last marker number handed out */
	struct list_node marks;    /* struct listen_mark, in the order sent */
	struct list_node covering; /* clients waiting in LST_COVER (listen_sub.cover_node) */
	struct event *idle_timer;  /* closes an unused connection (server_idle_timeout) */
	char failure[320];         /* why the last connection failed, for its clients */
};

/* "database" of a listener, for logs (with its pool's user). */
const char *listen_label(const struct listener *l);
/* Nothing wanted, nothing running: arm the timer that closes its connections. */
void listen_idle_check(struct listener *l);
/* A marker arrived on the connection in use, from backend 'pid'. */
void listen_mark_arrived(struct listener *l, uint32_t pid, const char *payload);
/* The client whose transaction sent what backend 'pid' commits now, if known. */
struct client *listen_mark_sender(const struct listener *l, uint32_t pid);

#endif /* PGCUTOVER_LISTEN_INT_H */
