/*
 * control_open.c - control connections to a database's sides, built one
 * way for every user (see control_open.h).
 */
#include "admin/cutover/control_open.h"

#include <stdio.h>
#include <stdlib.h>

#include "admin/cutover/control.h"
#include "admin/cutover/control_conninfo.h"
#include "proxy/auth/secret.h"
#include "proxy/auth/userlist.h"
#include "proxy/core/config.h"
#include "proxy/core/conninfo.h"
#include "proxy/runtime.h"

/*
 * The sslmode that applies to one side: the conninfo's own, else
 * server_tls_sslmode (what pgcutover's server connections do too).
 */
static enum tls_sslmode side_sslmode(const struct config *cfg, const char *base)
{
	struct backend_addr a;
	enum tls_sslmode mode = cfg->server_tls_sslmode;
	char err[256];

	if (!conninfo_parse(base, &a, err, sizeof(err)))
		return mode;
	if (a.sslmode && !tls_parse_sslmode(a.sslmode, &mode))
		mode = cfg->server_tls_sslmode;
	conninfo_free_addr(&a);
	return mode;
}

/*
 * The TLS settings go in front of the conninfo, so that what it sets itself
 * wins.  The CA file goes only with verify-ca and verify-full: libpq also
 * verifies the chain in require mode once it has one, which pgcutover's
 * server connections do not.
 */
char *control_conninfo_for(const struct config *cfg, const struct userlist *users,
			   const struct db_config *dc, enum route_side side)
{
	const char *base = side == SIDE_SOURCE ? dc->source : dc->target;
	const char *user = dc->d.control_user;
	const char *secret = userlist_secret(users, user);
	const char *defaults[9];
	char *ci, *out;
	size_t n = 0;

	/* libpq needs the password itself: a hash in auth_file cannot log in */
	if (secret && auth_secret_kind(secret) != AUTH_SECRET_PLAIN)
		secret = NULL;
	ci = control_conninfo_with_user(base, user, secret);
	if (ci == NULL)
		return NULL;
	defaults[n++] = "sslmode";
	defaults[n++] = tls_sslmode_name(cfg->server_tls_sslmode);
	if (side_sslmode(cfg, base) >= SSLMODE_VERIFY_CA && cfg->server_tls_ca_file[0]) {
		defaults[n++] = "sslrootcert";
		defaults[n++] = cfg->server_tls_ca_file;
	}
	if (cfg->server_tls_cert_file[0]) {
		defaults[n++] = "sslcert";
		defaults[n++] = cfg->server_tls_cert_file;
		defaults[n++] = "sslkey";
		defaults[n++] = cfg->server_tls_key_file;
	}
	defaults[n] = NULL;
	out = control_conninfo_with_defaults(ci, defaults);
	free(ci);
	return out;
}

struct control_conn *control_open(const struct config *cfg, const struct userlist *users,
				  const struct db_config *dc, enum route_side side)
{
	char *ci = control_conninfo_for(cfg, users, dc, side);
	char label[100];
	struct control_conn *cc;

	if (ci == NULL)
		return NULL;
	snprintf(label, sizeof(label), "%s %s", dc->name, route_side_name(side));
	cc = control_conn_new(rt.base, rt.dns, ci, label);
	free(ci);
	return cc;
}
