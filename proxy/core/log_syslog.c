/*
 * log_syslog.c - the log's lines sent to syslog(3) as well (syslog = on).
 * See log_syslog.h for why this is not part of log.c.
 *
 * openlog() keeps the pointer it is given, so the ident is copied into a
 * static buffer that lives as long as the process.  LOG_PID adds the
 * process id as pgcutover's own lines carry it; LOG_NDELAY connects at once,
 * so that a sandbox that hides /dev/log shows up at start-up, not at the
 * first error.  syslog(3) is not asynchronous: a syslog daemon that stops
 * reading slows the loop down, as it does PgBouncer's.
 */
#include "proxy/core/log_syslog.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

/* The facilities syslog_facility accepts: PgBouncer's list. */
static const struct {
	const char *name;
	int code;
} facilities[] = {
	{"auth", LOG_AUTH},     {"authpriv", LOG_AUTHPRIV}, {"daemon", LOG_DAEMON},
	{"user", LOG_USER},     {"local0", LOG_LOCAL0},     {"local1", LOG_LOCAL1},
	{"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},     {"local4", LOG_LOCAL4},
	{"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6},     {"local7", LOG_LOCAL7},
};

/* syslog priorities of pgcutover's levels, indexed by enum log_level (log.h). */
static const int priorities[] = {
	LOG_CRIT,    /* LOG_FATAL */
	LOG_ERR,     /* LOG_ERROR */
	LOG_WARNING, /* LOG_WARNING */
	LOG_INFO,    /* LOG_INFO ("LOG") */
	LOG_DEBUG,   /* LOG_DEBUG */
	LOG_DEBUG,   /* LOG_TRACE */
};

/* openlog() keeps this pointer: it must outlive every call. */
static char ident_buf[64];
static bool is_open;

bool log_syslog_facility_known(const char *name, const char **canonical)
{
	for (size_t i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++) {
		if (strcasecmp(facilities[i].name, name) == 0) {
			if (canonical)
				*canonical = facilities[i].name;
			return true;
		}
	}
	return false;
}

void log_syslog_open(const char *ident, const char *facility)
{
	int code = LOG_DAEMON;

	for (size_t i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
		if (strcasecmp(facilities[i].name, facility) == 0)
			code = facilities[i].code;
	if (is_open)
		closelog();
	snprintf(ident_buf, sizeof(ident_buf), "%s", ident);
	openlog(ident_buf, LOG_PID | LOG_NDELAY, code);
	is_open = true;
}

void log_syslog_close(void)
{
	if (is_open)
		closelog();
	is_open = false;
}

void log_syslog_send(int level, const char *message)
{
	int n = (int)(sizeof(priorities) / sizeof(priorities[0]));

	if (!is_open)
		return;
	if (level < 0 || level >= n)
		level = n - 1;
	syslog(priorities[level], "%s", message);
}
