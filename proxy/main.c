/*
 * main.c - command line, start-up, signals (reload, log reopening, graceful
 * and immediate shutdown), the service manager's notifications and the
 * event loop.
 */
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/cutover/cutover.h"
#include "admin/metrics.h"
#include "proxy/ddl.h"
#include "proxy/shadow.h"
#include "proxy/cancel.h"
#include "proxy/client.h"
#include "proxy/core/config.h"
#include "proxy/janitor.h"
#include "proxy/core/log.h"
#include "proxy/core/notify.h"
#include "proxy/database.h"
#include "proxy/pool.h"
#include "proxy/ports.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/io/sock.h"
#include "proxy/io/tls.h"
#include "proxy/auth/userlist.h"
#include "proxy/core/version.h"

static void usage(FILE *f)
{
	fprintf(f,
		"pgcutover %s - a PostgreSQL proxy that moves a live workload from one database to another\n"
		"\n"
		"Usage:\n"
		"  pgcutover [-v] [-q] [--check] CONFIG.ini\n"
		"  pgcutover --version | --help\n"
		"\n"
		"Options:\n"
		"  -v, --verbose  more log detail (repeat for protocol traces)\n"
		"  -q, --quiet    log only warnings and errors\n"
		"  --check        validate the configuration, print every error, exit 0 or 1\n"
		"\n"
		"Signals: SIGHUP reloads the configuration (and reopens log_file), SIGUSR2\n"
		"reopens log_file, SIGTERM stops gracefully (bounded by shutdown_timeout),\n"
		"SIGINT stops at once.\n",
		PGCUTOVER_VERSION);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	char err[1200];

	(void)what;
	(void)arg;
	switch (sig) {
	case SIGHUP:
		log_info("SIGHUP: reloading the configuration");
		(void)rt_reload(err, sizeof(err));
		break;
	case SIGTERM:
		log_info("SIGTERM: graceful shutdown");
		rt_begin_shutdown();
		break;
	case SIGUSR2:
		/* logrotate's postrotate: the next line goes to a new file of the same name */
		if (!log_reopen())
			log_error("SIGUSR2: could not reopen log_file \"%s\": %s", rt.cfg->log_file,
				  strerror(errno));
		else
			log_info("SIGUSR2: log file reopened");
		break;
	case SIGINT:
		log_info("SIGINT: immediate shutdown");
		notify_stopping();
		event_base_loopbreak(rt.base);
		break;
	default:
		break;
	}
}

/*
 * The one-line status the service manager shows (systemctl status): the
 * clients, those waiting, and the switches running with their phase.
 */
static void status_text(char *buf, size_t len)
{
	struct list_node *n, *p;
	int waiting = 0, switching = 0;
	size_t used;

	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		list_for_each(p, &db->pools)
			waiting += pool_waiting_clients(list_entry(p, struct pool, node));
	}
	used = (size_t)snprintf(buf, len, "%d clients, %d waiting; ", rt.nclients, waiting);
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		if (used >= len || cutover_running(db) == NULL)
			continue;
		used += (size_t)snprintf(buf + used, len - used, "%s%s (%s)",
					 switching++ ? ", " : "switching ", db->name,
					 cutover_phase_name(db));
	}
	if (switching == 0 && used < len)
		snprintf(buf + used, len - used, "no switch running");
}

/* Every second while a service manager listens: STATUS= when it has changed. */
static void status_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	char status[200];

	(void)fd;
	(void)what;
	(void)arg;
	if (rt.shutting_down)
		return; /* "stopping" stays the last word */
	status_text(status, sizeof(status));
	notify_status(status);
}

static void shutdown_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log_info("shutdown_timeout expired with %d clients left: closing them", rt.nclients);
	event_base_loopbreak(rt.base);
}

static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	client_reap_all();
	server_reap_all();
}

/* Close every connection and free everything, so leak checkers see a clean exit. */
static void free_everything(void)
{
	struct list_node *n, *tmp, *p, *m, *mtmp;
	struct list_node *client_lists[3], *server_lists[4];

	rt.exiting = true;
	list_for_each_safe(n, tmp, &rt.login_clients)
		client_close(list_entry(n, struct client, node), "shutdown");
	list_for_each_safe(n, tmp, &rt.closing_clients)
		client_close(list_entry(n, struct client, node), "shutdown");
	admin_close_all();
	shadow_shutdown();
	ddl_log_free();
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		list_for_each(p, &db->pools) {
			struct pool *pool = list_entry(p, struct pool, node);

			client_lists[0] = &pool->waiting_clients;
			client_lists[1] = &pool->active_clients;
			client_lists[2] = &pool->idle_clients;
			for (int i = 0; i < 3; i++)
				list_for_each_safe(m, mtmp, client_lists[i])
					client_close(list_entry(m, struct client, node), "shutdown");
			server_lists[0] = &pool->idle_servers;
			server_lists[1] = &pool->active_servers;
			server_lists[2] = &pool->new_servers;
			server_lists[3] = &pool->listen_servers;
			for (int i = 0; i < 4; i++)
				list_for_each_safe(m, mtmp, server_lists[i])
					server_close(list_entry(m, struct server, node), "shutdown");
		}
	}
	client_reap_all();
	server_reap_all();
	cancel_free_all();
	db_free_all();
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"verbose", no_argument, NULL, 'v'}, {"quiet", no_argument, NULL, 'q'},
		{"check", no_argument, NULL, 'C'},   {"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},    {NULL, 0, NULL, 0},
	};
	bool check = false;
	int opt, level = LOG_INFO;
	struct event *sigs[4], *status_timer = NULL;
	const int signums[4] = {SIGHUP, SIGTERM, SIGINT, SIGUSR2};
	char err[512], refused[1024], status[200];
	int rc = EXIT_SUCCESS;

	while ((opt = getopt_long(argc, argv, "vqh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'v':
			if (level < LOG_TRACE)
				level++;
			break;
		case 'q':
			level = LOG_WARNING;
			break;
		case 'C':
			check = true;
			break;
		case 'V':
			printf("pgcutover %s\n", PGCUTOVER_VERSION);
			return EXIT_SUCCESS;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	log_level_current = (enum log_level)level;

	rt.cfg = rt_load_config(argv[optind], &rt.users, &rt.tls, false);
	if (check) {
		if (rt.cfg == NULL)
			return EXIT_FAILURE;
		printf("configuration file %s is valid\n", rt.cfg->path);
		userlist_free(rt.users);
		tls_contexts_free(rt.tls);
		config_free(rt.cfg);
		return EXIT_SUCCESS;
	}
	if (rt.cfg == NULL) {
		fprintf(stderr, "pgcutover: invalid configuration, not starting\n");
		return EXIT_FAILURE;
	}
	if (!log_open(rt.cfg->log_file)) {
		fprintf(stderr, "pgcutover: could not open log_file \"%s\": %s\n", rt.cfg->log_file,
			strerror(errno));
		return EXIT_FAILURE;
	}
	log_set_syslog(rt.cfg->syslog, rt.cfg->syslog_ident, rt.cfg->syslog_facility);
	signal(SIGPIPE, SIG_IGN);
	/* a logrotate run during start-up must not kill us: the loop handles it from its start */
	signal(SIGUSR2, SIG_IGN);
	list_init(&rt.databases);
	list_init(&rt.login_clients);
	list_init(&rt.closing_clients);
	list_init(&rt.kind_clients);

	rt.base = event_base_new();
	if (rt.base == NULL) {
		log_fatal("could not create the event loop");
		return EXIT_FAILURE;
	}
	rt.dns = evdns_base_new(rt.base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
						 EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (rt.dns == NULL)
		rt.dns = evdns_base_new(rt.base, 0); /* no resolv.conf: numeric hosts still work */
	if (!sock_module_init(rt.base)) {
		log_fatal("could not set up the output flush: out of memory");
		return EXIT_FAILURE;
	}
	rt.reaper = event_new(rt.base, -1, 0, reaper_cb, NULL);
	rt.shutdown_timer = evtimer_new(rt.base, shutdown_timer_cb, NULL);
	if (!janitor_init()) {
		log_fatal("could not start the timeout checks: out of memory");
		return EXIT_FAILURE;
	}

	if (!db_apply_config(err, sizeof(err), refused, sizeof(refused)) ||
	    !admin_init(err, sizeof(err)) || !ports_start(admin_client_kind(), err, sizeof(err)) ||
	    !metrics_start(err, sizeof(err))) {
		log_fatal("%s", err);
		notify_status(err); /* systemctl status shows why it did not start */
		rc = EXIT_FAILURE;
		goto out;
	}
	for (int i = 0; i < 4; i++) {
		sigs[i] = evsignal_new(rt.base, signums[i], signal_cb, NULL);
		event_add(sigs[i], NULL);
	}
	log_info("pgcutover %s started (pool_mode=%s, auth_type=%s, %zu databases)",
		 PGCUTOVER_VERSION, config_pool_mode_name(rt.cfg->pool_mode),
		 config_auth_type_name(rt.cfg->auth_type), rt.cfg->ndbs);
	/* every listener is open: the service manager may start what depends on us */
	status_text(status, sizeof(status));
	notify_ready(status);
	if (notify_enabled()) {
		const struct timeval second = {1, 0};

		status_timer = event_new(rt.base, -1, EV_PERSIST, status_timer_cb, NULL);
		if (status_timer)
			event_add(status_timer, &second);
	}

	event_base_dispatch(rt.base);

	log_info("stopping");
	notify_stopping();
	if (status_timer)
		event_free(status_timer);
	for (int i = 0; i < 4; i++)
		event_free(sigs[i]);
out:
	ports_stop();
	metrics_stop();
	free_everything();
	admin_shutdown();
	sock_module_free();
	janitor_free();
	event_free(rt.reaper);
	event_free(rt.shutdown_timer);
	if (rt.dns)
		evdns_base_free(rt.dns, 1);
	event_base_free(rt.base);
	userlist_free(rt.users);
	tls_contexts_free(rt.tls);
	config_free(rt.cfg);
	log_close();
	return rc;
}
