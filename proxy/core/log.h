/*
 * log.h - one line per event, with a timestamp and a level, to stderr or to
 * log_file.  Debug lines cost one branch when debug logging is off: the
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

/* Open log_file ("" or NULL = stderr).  Returns false with errno set. */
bool log_open(const char *path);
void log_close(void);

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
