/*
 * log_syslog.h - the syslog side of the log (syslog = on in the
 * configuration).  log.c hands it every line it writes; this file talks to
 * syslog(3).
 *
 * It is kept apart from log.c because <syslog.h> names its priorities
 * LOG_INFO, LOG_DEBUG and LOG_WARNING, as log.h names pgcutover's levels:
 * the two headers cannot meet in one file.  So levels cross this interface
 * as plain numbers (enum log_level's values) and facilities as their names.
 */
#ifndef PGCUTOVER_LOG_SYSLOG_H
#define PGCUTOVER_LOG_SYSLOG_H

#include <stdbool.h>

/*
 * True when 'name' is a facility syslog_facility accepts (auth, authpriv,
 * daemon, user, local0 to local7, case-insensitively, as PgBouncer's);
 * *canonical then points at its lower-case spelling (static storage).
 * canonical may be NULL.
 */
bool log_syslog_facility_known(const char *name, const char **canonical);

/*
 * Start sending to syslog as 'ident' (copied) with the facility 'facility'
 * (a name log_syslog_facility_known() accepts; daemon when it does not),
 * or change the ident and facility of a connection already open.
 */
void log_syslog_open(const char *ident, const char *facility);
/* Stop sending to syslog. */
void log_syslog_close(void);
/* One message at enum log_level 'level' (as an int), without a timestamp: syslog adds its own. */
void log_syslog_send(int level, const char *message);

#endif /* PGCUTOVER_LOG_SYSLOG_H */
