/*
 * runtime.h - the process-wide state of the proxy: the event loop, the
 * configuration in force, the user list and the databases.
 *
 * There is one loop thread and one struct runtime; every module reads the
 * configuration through rt.cfg, which a reload replaces whole.
 */
#ifndef PGCUTOVER_RUNTIME_H
#define PGCUTOVER_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/core/list.h"

struct event_base;
struct evdns_base;
struct event;
struct config;
struct userlist;
struct tls_contexts;

struct runtime {
	struct event_base *base;    /* the one event loop */
	struct evdns_base *dns;     /* asynchronous resolver: no DNS lookup blocks the loop */
	struct config *cfg;         /* configuration in force, replaced whole on reload */
	struct userlist *users;     /* auth_file contents, reloaded with the config */
	struct tls_contexts *tls;   /* SSL_CTXs built from cfg (certificates re-read on reload) */
	struct list_node databases; /* struct database, one per [database] section */
	struct list_node login_clients;   /* clients still in startup or authentication */
	struct list_node kind_clients;    /* logged-in clients of a client_kind (admin console) */
	struct list_node closing_clients; /* clients flushing a final error before close */
	struct event *shutdown_timer;     /* shutdown_timeout after SIGTERM */
	struct event *reaper; /* fires after the current callbacks: frees closed connections */
	int nclients;         /* every client connection, checked against max_client_conn */
	bool shutting_down;   /* SIGTERM seen: no new clients, exit when the last leaves */
	bool exiting;         /* tearing everything down: pools open no new servers */
};

extern struct runtime rt;

/* Monotonic clock in microseconds, for timings and statistics. */
uint64_t rt_now_us(void);

/*
 * Load a configuration and what it names (auth_file, conninfo strings, TLS
 * certificates and keys into *tls).  Errors go to the log (to_log) or to
 * stderr (--check); NULL when any.
 */
struct config *rt_load_config(const char *path, struct userlist **users, struct tls_contexts **tls,
			      bool to_log);
/* What a reload did. */
enum rt_reload_result {
	RT_RELOAD_OK,      /* the new configuration is in force */
	RT_RELOAD_PARTIAL, /* in force, except for switching databases (errbuf says which keys) */
	RT_RELOAD_FAILED,  /* nothing changed: the old configuration is kept (errbuf says why) */
};

/* Reload the configuration (SIGHUP, RELOAD); errbuf explains anything but RT_RELOAD_OK. */
enum rt_reload_result rt_reload(char *errbuf, size_t errlen);
/* Stop accepting and exit once clients are gone (SIGTERM, SHUTDOWN). */
void rt_begin_shutdown(void);

/* Schedule the reaper to run at the end of this loop iteration (client_reap_all, server_reap_all). */
void rt_schedule_reap(void);

#endif /* PGCUTOVER_RUNTIME_H */
