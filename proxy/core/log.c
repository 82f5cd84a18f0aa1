/*
 * log.c - timestamped log lines.
 *
 * Each line is formatted into a stack buffer and written with one write(2),
 * so lines from the loop never interleave and nothing is buffered in stdio
 * when the process dies.  With syslog = on, the same line, without the
 * timestamp and the process id that syslog adds itself, also goes to
 * syslog (log_syslog.c).
 *
 * log_file is opened in append mode and reopened by path on SIGHUP and
 * SIGUSR2 (log_reopen), so that logrotate can rename it and signal: the
 * next line goes to a new file, and nothing needs copytruncate.
 */
#include "proxy/core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "proxy/core/log_syslog.h"

enum log_level log_level_current = LOG_INFO;

/* stderr until log_open() names a file. */
static int log_fd = STDERR_FILENO;
/* The path of log_fd, for log_reopen(); NULL while it is stderr. */
static char *log_path;
/* Every line goes to syslog too (log_set_syslog). */
static bool log_to_syslog;

static const char *const level_names[] = {
	[LOG_FATAL] = "FATAL", [LOG_ERROR] = "ERROR", [LOG_WARNING] = "WARNING",
	[LOG_INFO] = "LOG",    [LOG_DEBUG] = "DEBUG", [LOG_TRACE] = "TRACE",
};

bool log_open(const char *path)
{
	char *copy;
	int fd;

	if (path == NULL || path[0] == '\0') {
		log_close();
		return true;
	}
	copy = strdup(path);
	if (copy == NULL)
		return false;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0) {
		int e = errno;

		free(copy);
		errno = e;
		return false;
	}
	log_close();
	log_fd = fd;
	log_path = copy;
	return true;
}

bool log_reopen(void)
{
	char *path;
	bool ok;

	if (log_path == NULL)
		return true;
	/* log_open() frees log_path once the new file is open: keep what it reads */
	path = strdup(log_path);
	if (path == NULL)
		return false;
	ok = log_open(path);
	free(path);
	return ok;
}

const char *log_file_path(void)
{
	return log_path;
}

void log_close(void)
{
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = STDERR_FILENO;
	free(log_path);
	log_path = NULL;
}

void log_set_syslog(bool on, const char *ident, const char *facility)
{
	if (on)
		log_syslog_open(ident, facility);
	else
		log_syslog_close();
	log_to_syslog = on;
}

void log_write(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	size_t n, level_at;
	int k;
	va_list ap;
	int saved_errno = errno;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
	k = snprintf(line + n, sizeof(line) - n, ".%03d [%d] ", (int)(tv.tv_usec / 1000),
		     (int)getpid());
	if (k > 0)
		n += (size_t)k;
	level_at = n; /* syslog gets the line from the level on */
	k = snprintf(line + n, sizeof(line) - n, "%s ", level_names[level]);
	if (k > 0)
		n += (size_t)k;
	va_start(ap, fmt);
	k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (k > 0)
		n += (size_t)k;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	if (log_to_syslog) {
		line[n] = '\0';
		log_syslog_send((int)level, line + level_at);
	}
	line[n++] = '\n';
	/* A failed log write has nowhere to be reported. */
	if (write(log_fd, line, n) < 0) {
	}
	errno = saved_errno;
}
