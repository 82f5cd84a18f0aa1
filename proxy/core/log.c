/*
 * log.c - timestamped log lines.
 *
 * Each line is formatted into a stack buffer and written with one write(2),
 * so lines from the loop never interleave and nothing is buffered in stdio
 * when the process dies.
 */
#include "proxy/core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum log_level log_level_current = LOG_INFO;

/* stderr until log_open() names a file. */
static int log_fd = STDERR_FILENO;

static const char *const level_names[] = {
	[LOG_FATAL] = "FATAL", [LOG_ERROR] = "ERROR", [LOG_WARNING] = "WARNING",
	[LOG_INFO] = "LOG",    [LOG_DEBUG] = "DEBUG", [LOG_TRACE] = "TRACE",
};

bool log_open(const char *path)
{
	int fd;

	if (path == NULL || path[0] == '\0') {
		log_close();
		return true;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return false;
	log_close();
	log_fd = fd;
	return true;
}

void log_close(void)
{
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = STDERR_FILENO;
}

void log_write(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int k;
	va_list ap;
	int saved_errno = errno;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
	k = snprintf(line + n, sizeof(line) - n, ".%03d [%d] %s ", (int)(tv.tv_usec / 1000),
		     (int)getpid(), level_names[level]);
	if (k > 0)
		n += (size_t)k;
	va_start(ap, fmt);
	k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (k > 0)
		n += (size_t)k;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* A failed log write has nowhere to be reported. */
	if (write(log_fd, line, n) < 0) {
	}
	errno = saved_errno;
}
