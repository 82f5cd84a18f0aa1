/*
 * conninfo.h - a database side's address, read from its libpq-style
 * key=value connection string (host, hostaddr, port, dbname, user,
 * password, sslmode): what pgcutover's own server connections need.
 * The control connections pass the string to libpq as it is.
 */
#ifndef PGCUTOVER_CONNINFO_H
#define PGCUTOVER_CONNINFO_H

#include <stdbool.h>
#include <stddef.h>

/* Where one side of a database is, parsed from its libpq-style conninfo. */
struct backend_addr {
	char *host; /* host name, IP address, or unix socket directory (starts with '/') */
	int port;
	char *dbname;   /* database name on that server */
	char *user;     /* optional: log in as this user instead of the client's */
	char *password; /* optional: with this password */
	char *sslmode; /* optional: overrides server_tls_sslmode for this side (checked by the parser) */
};

/*
 * Parse a conninfo string; false with a message in errbuf.  Several hosts,
 * a bad port or an unknown sslmode are errors; a missing host is the unix
 * socket directory /var/run/postgresql and a missing port 5432, as in libpq.
 */
bool conninfo_parse(const char *conninfo, struct backend_addr *out, char *errbuf, size_t errlen)
	__attribute__((warn_unused_result));
void conninfo_free_addr(struct backend_addr *a);
/* A deep copy (a server keeps the address it connected to); false when out of memory. */
bool conninfo_copy_addr(struct backend_addr *dst, const struct backend_addr *src)
	__attribute__((warn_unused_result));
/* Whether two addresses reach the same backend as the same login. */
bool conninfo_addr_equal(const struct backend_addr *a, const struct backend_addr *b);

#endif /* PGCUTOVER_CONNINFO_H */
