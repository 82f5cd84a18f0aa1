/*
 * log.h - one line per event, with a timestamp and a level, to stderr or to
 * log_file, and to syslog as well with syslog = on.  Debug lines cost one branch when debug logging is off: the
 * macros test the level before evaluating any argument.
 */
#ifndef PGCUTOVER_LOG_H
#define PGCUTOVER_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_FATAL = 0,
	LOG_ERROR = 1,
	LOG_WARNING = 2,
	LOG_INFO = 3,  /* the default: connections, reloads, switches */
	LOG_DEBUG = 4, /* -v: per-connection detail */
	LOG_TRACE = 5, /* -v -v: protocol messages */
};

/* The level in force; lines above it are not formatted at all. */
extern enum log_level log_level_current;

/*
 * Open log_file ("" or NULL = stderr), in append mode, created with mode
 * 0640.  Returns false with errno set, and the old destination kept.
 */
bool log_open(const char *path);
/*
 * Open log_file again by its path (SIGHUP, SIGUSR2): after logrotate has
 * renamed it, lines go to a new file.  True when there is no file to reopen;
 * false with errno set, and the old file kept, when it cannot be opened.
 */
bool log_reopen(void);
/* The path of the file lines go to; NULL for stderr. */
const char *log_file_path(void);
void log_close(void);
/*
 * syslog = on: also send every line to syslog as 'ident' with the facility
 * named 'facility' (daemon, local0...); off: stop.  Called at start-up and
 * on every reload, which may change all three.
 */
void log_set_syslog(bool on, const char *ident, const char *facility);

void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_at(level, ...)                               \
	do {                                             \
		if ((level) <= log_level_current)        \
			log_write((level), __VA_ARGS__); \
	} while (0)

#define log_fatal(...)   log_at(LOG_FATAL, __VA_ARGS__)
#define log_error(...)   log_at(LOG_ERROR, __VA_ARGS__)
#define log_warning(...) log_at(LOG_WARNING, __VA_ARGS__)
#define log_info(...)    log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   log_at(LOG_DEBUG, __VA_ARGS__)
#define log_trace(...)   log_at(LOG_TRACE, __VA_ARGS__)

#endif /* PGCUTOVER_LOG_H */
