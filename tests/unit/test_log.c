/*
 * test_log.c - log_file as logrotate sees it (proxy/core/log.c): lines are
 * appended, log_reopen() after a rename sends the next line to a new file
 * of the old name and none to the renamed one, a file that cannot be
 * reopened keeps the old one, and the syslog side accepts exactly
 * PgBouncer's facilities.
 */
#include "unit.h"

#include "proxy/core/log.h"
#include "proxy/core/log_syslog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The whole of a small file as a string (static buffer); "" when it cannot be read. */
static const char *slurp(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	buf[0] = '\0';
	if (f == NULL)
		return buf;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The checks; the caller removes the files whatever happens. */
static void check_reopen(const char *dir, const char *path, const char *rotated)
{
	char gone[300];
	struct stat st;

	UT_ASSERT(log_reopen()); /* stderr: nothing to reopen */
	UT_ASSERT(log_file_path() == NULL);
	UT_ASSERT(log_open(path));
	UT_EQ_STR(log_file_path(), path);
	log_write(LOG_INFO, "first line");
	UT_ASSERT(stat(path, &st) == 0);
	UT_EQ_INT(st.st_mode & 0777, 0640);
	UT_ASSERT(strstr(slurp(path), " LOG first line\n") != NULL);

	/* logrotate renames, then signals: the next line starts a new file */
	UT_ASSERT(rename(path, rotated) == 0);
	log_write(LOG_INFO, "still to the old file");
	UT_ASSERT(log_reopen());
	log_write(LOG_WARNING, "after the rotation");
	UT_ASSERT(strstr(slurp(rotated), "still to the old file") != NULL);
	UT_ASSERT(strstr(slurp(rotated), "after the rotation") == NULL);
	UT_ASSERT(strstr(slurp(path), " WARNING after the rotation\n") != NULL);
	UT_ASSERT(strstr(slurp(path), "first line") == NULL);

	/* a path that cannot be opened: false, and lines keep going to the file open */
	snprintf(gone, sizeof(gone), "%s/no/such/dir/x.log", dir);
	UT_ASSERT(!log_open(gone));
	UT_EQ_STR(log_file_path(), path);
	log_write(LOG_INFO, "kept");
	UT_ASSERT(strstr(slurp(path), "kept") != NULL);
}

static void test_log_reopen(void)
{
	char dir[] = "/tmp/pgcutover-unit-log-XXXXXX", path[300], rotated[300];
	enum log_level saved = log_level_current;
	mode_t mask = umask(022); /* the mode checked is the one log_open() asks for */

	UT_ASSERT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/pgcutover.log", dir);
	snprintf(rotated, sizeof(rotated), "%s/pgcutover.log.1", dir);
	log_level_current = LOG_INFO;
	check_reopen(dir, path, rotated);
	log_close(); /* back to stderr for the other tests */
	log_level_current = saved;
	umask(mask);
	unlink(path);
	unlink(rotated);
	rmdir(dir);
}

static void test_log_syslog_facilities(void)
{
	static const char *const known[] = {"auth",   "authpriv", "daemon", "user",
					    "local0", "local5",   "local7", "DAEMON"};
	static const char *const unknown[] = {"kern", "mail", "local8", "", "daemon "};
	const char *canonical = NULL;

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		UT_ASSERT(log_syslog_facility_known(known[i], NULL));
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		UT_ASSERT(!log_syslog_facility_known(unknown[i], NULL));
	UT_ASSERT(log_syslog_facility_known("Local3", &canonical));
	UT_EQ_STR(canonical, "local3");
}

const struct unit_test unit_tests_log[] = {
	{"log_reopen", test_log_reopen},
	{"log_syslog_facilities", test_log_syslog_facilities},
	{NULL, NULL},
};
