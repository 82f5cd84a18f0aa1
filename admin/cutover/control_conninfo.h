/*
 * control_conninfo.h - conninfo strings for the control connections: a
 * database's conninfo with the user (and password) of the connection made
 * for it, and with the server_tls_* settings as defaults it may override.
 * Both parse with libpq and quote by its rules, so what they return is what
 * control_conn_new() and libpq read back.
 */
#ifndef PGCUTOVER_CONTROL_CONNINFO_H
#define PGCUTOVER_CONTROL_CONNINFO_H

/*
 * base (a libpq conninfo string or URI) with user, and password when not
 * NULL, replaced, as a key='value' string quoted by libpq's rules.  A NULL
 * user keeps base's.  Returns a malloc'd string, or NULL when base does not
 * parse or memory runs out.
 */
char *control_conninfo_with_user(const char *base, const char *user, const char *password)
	__attribute__((warn_unused_result));

/*
 * base (a key=value conninfo) with each keyword of 'defaults' (a NULL-ended
 * list of keyword, value pairs; a NULL value is skipped) that base does not
 * set itself put in front of it, quoted by libpq's rules: how the control
 * connections get the server_tls_* settings while a database's own sslmode
 * or sslrootcert still wins.  Returns a malloc'd string, or NULL when base
 * does not parse or memory runs out.
 */
char *control_conninfo_with_defaults(const char *base, const char *const *defaults)
	__attribute__((warn_unused_result));

#endif /* PGCUTOVER_CONTROL_CONNINFO_H */
