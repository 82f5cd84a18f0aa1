/*
 * conninfo.c - where one side of a database is, read from its libpq-style
 * connection string (see conninfo.h).
 *
 * libpq's own parser reads the string, so that a conninfo means to the
 * proxy's server connections exactly what it means to psql and to the
 * control connections; it does no I/O and no name lookup.
 */
#include "proxy/core/conninfo.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/io/tls.h"

void conninfo_free_addr(struct backend_addr *a)
{
	free(a->host);
	free(a->dbname);
	free(a->user);
	free(a->password);
	free(a->sslmode);
	memset(a, 0, sizeof(*a));
}

/* strdup of an optional string: NULL stays NULL; false when out of memory. */
static bool dup_opt(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
	return src == NULL || *dst != NULL;
}

bool conninfo_copy_addr(struct backend_addr *dst, const struct backend_addr *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->port = src->port;
	if (dup_opt(&dst->host, src->host) && dup_opt(&dst->dbname, src->dbname) &&
	    dup_opt(&dst->user, src->user) && dup_opt(&dst->password, src->password) &&
	    dup_opt(&dst->sslmode, src->sslmode))
		return true;
	conninfo_free_addr(dst);
	return false;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Whether two addresses reach the same backend as the same login. */
bool conninfo_addr_equal(const struct backend_addr *a, const struct backend_addr *b)
{
	return a->port == b->port && str_eq(a->host, b->host) && str_eq(a->dbname, b->dbname) &&
	       str_eq(a->user, b->user) && str_eq(a->password, b->password) &&
	       str_eq(a->sslmode, b->sslmode);
}

static char *dup_nonempty(const char *s)
{
	return s && s[0] ? strdup(s) : NULL;
}

bool conninfo_parse(const char *conninfo, struct backend_addr *out, char *errbuf, size_t errlen)
{
	PQconninfoOption *opts, *o;
	char *err = NULL;
	const char *host = NULL, *hostaddr = NULL, *port = NULL;
	bool ok = true;

	memset(out, 0, sizeof(*out));
	/* PQconninfoParse only parses: it does no I/O and no lookup */
	opts = PQconninfoParse(conninfo, &err);
	if (opts == NULL) {
		snprintf(errbuf, errlen, "invalid connection string \"%s\": %s", conninfo,
			 err ? err : "out of memory");
		PQfreemem(err);
		return false;
	}
	for (o = opts; o->keyword; o++) {
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			out->dbname = strdup(o->val);
		else if (strcmp(o->keyword, "user") == 0)
			out->user = strdup(o->val);
		else if (strcmp(o->keyword, "password") == 0)
			out->password = strdup(o->val);
		else if (strcmp(o->keyword, "sslmode") == 0)
			out->sslmode = strdup(o->val);
	}
	/* hostaddr wins for the connection, as in libpq */
	out->host = dup_nonempty(hostaddr ? hostaddr : host);
	if (out->host == NULL)
		out->host = strdup("/var/run/postgresql");
	if (strchr(out->host, ',')) {
		snprintf(errbuf, errlen,
			 "connection string \"%s\": several hosts are not supported", conninfo);
		ok = false;
	}
	out->port = 5432;
	if (port) {
		char *end;
		long p = strtol(port, &end, 10);

		if (*end != '\0' || p < 1 || p > 65535) {
			snprintf(errbuf, errlen, "connection string \"%s\": invalid port \"%s\"",
				 conninfo, port);
			ok = false;
		}
		out->port = (int)p;
	}
	if (out->sslmode) {
		enum tls_sslmode m;

		if (!tls_parse_sslmode(out->sslmode, &m)) {
			snprintf(errbuf, errlen,
				 "connection string \"%s\": invalid sslmode \"%s\" (expected disable, allow, prefer, require, verify-ca or verify-full)",
				 conninfo, out->sslmode);
			ok = false;
		}
	}
	PQconninfoFree(opts);
	if (!ok)
		conninfo_free_addr(out);
	return ok;
}
