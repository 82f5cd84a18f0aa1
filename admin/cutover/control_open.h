/*
 * control_open.h - the one way a control connection to a database's side
 * is opened, for the switch and for the console's SHOW LAG and SHOW
 * SEQUENCES alike: logged in as control_user with its plaintext password
 * from auth_file, with the server_tls_* settings pgcutover's own server
 * connections use (a database's own sslmode or sslrootcert in its conninfo
 * wins).
 */
#ifndef PGCUTOVER_CONTROL_OPEN_H
#define PGCUTOVER_CONTROL_OPEN_H

#include "proxy/core/route.h"

struct control_conn;
struct config;
struct db_config;
struct userlist;

/*
 * The libpq conninfo of one side of database section 'dc' under
 * configuration 'cfg' (TLS settings) and user list 'users': a malloc'd
 * string, or NULL when the section's string does not parse or memory runs
 * out.  Exposed for tests and messages; control_open() uses it.
 */
char *control_conninfo_for(const struct config *cfg, const struct userlist *users,
			   const struct db_config *dc, enum route_side side)
	__attribute__((warn_unused_result));

/*
 * A control connection to one side of 'dc' (nothing is opened before its
 * first query; see control.h), labelled "<db> <side>" in messages.  NULL
 * when out of memory or the conninfo does not parse.
 */
struct control_conn *control_open(const struct config *cfg, const struct userlist *users,
				  const struct db_config *dc, enum route_side side);

#endif /* PGCUTOVER_CONTROL_OPEN_H */
