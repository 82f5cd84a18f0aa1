/*
 * runtime.c - the process-wide state and the reaper.
 */
#include "proxy/runtime.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/core/config.h"
#include "proxy/janitor.h"
#include "proxy/core/log.h"
#include "proxy/core/notify.h"
#include "proxy/pool.h"
#include "proxy/ports.h"
#include "proxy/io/tls.h"
#include "proxy/auth/userlist.h"

struct runtime rt;

uint64_t rt_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void rt_schedule_reap(void)
{
	/* event_active runs the reaper after the callbacks of this iteration */
	if (rt.reaper && !event_pending(rt.reaper, EV_TIMEOUT, NULL))
		event_active(rt.reaper, EV_TIMEOUT, 0);
}

/*
 * Load a config plus what it names (the connection strings, auth_file, TLS
 * certificates and keys) and print every error of all of them, each with its
 * line, in line order: the file's own errors do not hide those of what it
 * names (--check shows all).
 */
struct config *rt_load_config(const char *path, struct userlist **users, struct tls_contexts **tls,
			      bool to_log)
{
	struct config_errors errs = {0};
	struct config *cfg = config_load_keep(path, &errs);
	bool oom = false;

	*users = NULL;
	*tls = NULL;
	if (cfg) {
		for (size_t i = 0; i < cfg->ndbs; i++) {
			const struct db_config *db = &cfg->dbs[i];
			const char *sides[2] = {db->source, db->target};
			const int lines[2] = {db->source_line, db->target_line};

			for (int k = 0; k < 2; k++) {
				struct backend_addr a;
				char e[512];

				if (sides[k] == NULL) /* missing: reported by config_load */
					continue;
				if (conninfo_parse(sides[k], &a, e, sizeof(e))) {
					conninfo_free_addr(&a);
					continue;
				}
				if (!config_errors_add(&errs, cfg->path, lines[k],
						       "database \"%s\": %s", db->name, e))
					oom = true;
			}
		}
		if (cfg->auth_file) {
			char *uerr = NULL;

			*users = userlist_load(cfg->auth_file, &uerr);
			if (*users == NULL &&
			    !config_errors_add(&errs, cfg->path, cfg->auth_file_line, "%s",
					       uerr ? uerr : "could not load auth_file"))
				oom = true;
			free(uerr);
		}
		/* certificates and keys are read now: a bad one is a config error */
		if (errs.count == 0 && !oom) {
			char e[512];
			struct tls_settings client = {
				.sslmode = cfg->client_tls_sslmode,
				.cert_file = cfg->client_tls_cert_file,
				.key_file = cfg->client_tls_key_file,
				.ca_file = cfg->client_tls_ca_file,
				.protocols = cfg->client_tls_protocols,
				.ciphers = cfg->client_tls_ciphers,
			};
			struct tls_settings server = {
				.sslmode = cfg->server_tls_sslmode,
				.cert_file = cfg->server_tls_cert_file,
				.key_file = cfg->server_tls_key_file,
				.ca_file = cfg->server_tls_ca_file,
				.protocols = cfg->server_tls_protocols,
				.ciphers = cfg->server_tls_ciphers,
			};

			*tls = tls_contexts_build(&client, &server, e, sizeof(e));
			if (*tls == NULL && !config_errors_add(&errs, cfg->path, 0, "%s", e))
				oom = true;
		}
		config_errors_sort(&errs, 0);
	}
	for (size_t i = 0; i < errs.count; i++) {
		if (to_log)
			log_error("%s", errs.items[i].message);
		else
			fprintf(stderr, "%s\n", errs.items[i].message);
	}
	if (oom) {
		if (to_log)
			log_error("%s: out of memory while checking the configuration", path);
		else
			fprintf(stderr, "%s: out of memory while checking the configuration\n",
				path);
	}
	if (cfg == NULL || errs.count > 0 || oom) {
		if (*users)
			userlist_free(*users);
		*users = NULL;
		tls_contexts_free(*tls);
		*tls = NULL;
		config_free(cfg);
		cfg = NULL;
	}
	config_errors_free(&errs);
	return cfg;
}

/*
 * Send the log where cfg says: log_file, opened again by its path even when
 * it has not changed (after logrotate renamed it, the next line goes to a
 * new file), and syslog.  A file that cannot be opened leaves the lines
 * going where they went.
 */
static void reopen_log(const struct config *cfg)
{
	const char *now = log_file_path();

	if (strcmp(now ? now : "", cfg->log_file) != 0) {
		if (!log_open(cfg->log_file))
			log_error("could not open log_file \"%s\": %s", cfg->log_file,
				  strerror(errno));
	} else if (!log_reopen()) {
		log_error("could not reopen log_file \"%s\": %s", cfg->log_file, strerror(errno));
	}
	log_set_syslog(cfg->syslog, cfg->syslog_ident, cfg->syslog_facility);
}

static enum rt_reload_result reload(char *errbuf, size_t errlen);

enum rt_reload_result rt_reload(char *errbuf, size_t errlen)
{
	enum rt_reload_result result;

	/* the service manager sees the reload from its start to its end, whatever its result */
	notify_reloading();
	/* first, so that what the reload logs goes to the new file */
	reopen_log(rt.cfg);
	result = reload(errbuf, errlen);
	notify_ready(NULL);
	return result;
}

static enum rt_reload_result reload(char *errbuf, size_t errlen)
{
	struct userlist *users = NULL;
	struct tls_contexts *tls = NULL;
	struct config *cfg = rt_load_config(rt.cfg->path, &users, &tls, true), *old = rt.cfg;
	char err[512], refused[1024];

	if (cfg == NULL) {
		log_error("configuration reload failed: keeping the old configuration");
		snprintf(errbuf, errlen,
			 "configuration reload failed: see the log; the old configuration is kept");
		return RT_RELOAD_FAILED;
	}
	rt.cfg = cfg;
	if (!db_apply_config(err, sizeof(err), refused, sizeof(refused))) {
		rt.cfg = old;
		config_free(cfg);
		userlist_free(users);
		tls_contexts_free(tls);
		log_error("configuration reload failed: %s: keeping the old configuration", err);
		snprintf(errbuf, errlen, "configuration reload failed: %s", err);
		return RT_RELOAD_FAILED;
	}
	if (strcmp(old->listen_addr, cfg->listen_addr) != 0 ||
	    old->listen_port != cfg->listen_port || old->admin_port != cfg->admin_port ||
	    strcmp(old->admin_addr, cfg->admin_addr) != 0 ||
	    strcmp(old->unix_socket_dir, cfg->unix_socket_dir) != 0)
		log_warning("listen addresses changed: they take effect at the next restart");
	/* a changed log_file, ident or facility; the same file is not opened a third time */
	if (strcmp(old->log_file, cfg->log_file) != 0 || old->syslog != cfg->syslog ||
	    strcmp(old->syslog_ident, cfg->syslog_ident) != 0 ||
	    strcmp(old->syslog_facility, cfg->syslog_facility) != 0)
		reopen_log(cfg);
	userlist_free(rt.users);
	rt.users = users;
	/* connections keep the context they were made from: new ones get the new certificates */
	tls_contexts_free(rt.tls);
	rt.tls = tls;
	config_free(old);
	janitor_reconfigure();
	if (refused[0]) {
		log_warning("configuration reloaded from %s, except: %s", cfg->path, refused);
		snprintf(errbuf, errlen, "configuration reloaded, except: %s", refused);
		return RT_RELOAD_PARTIAL;
	}
	log_info("configuration reloaded from %s", cfg->path);
	return RT_RELOAD_OK;
}

void rt_begin_shutdown(void)
{
	struct timeval tv;

	if (rt.shutting_down)
		return;
	rt.shutting_down = true;
	notify_stopping();
	ports_stop();
	/* idle servers are not needed any more */
	log_debug("closing listeners");
	log_info("shutting down: waiting up to %lld ms for %d clients to finish",
		 (long long)rt.cfg->shutdown_timeout_ms, rt.nclients);
	if (rt.nclients == 0) {
		event_base_loopbreak(rt.base);
		return;
	}
	tv.tv_sec = rt.cfg->shutdown_timeout_ms / 1000;
	tv.tv_usec = (rt.cfg->shutdown_timeout_ms % 1000) * 1000;
	event_add(rt.shutdown_timer, &tv);
}
