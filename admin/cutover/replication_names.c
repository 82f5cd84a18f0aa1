/*
 * replication_names.c - the names of a database's replication objects (see
 * replication_names.h).
 */
#include "admin/cutover/replication_names.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "protocol/sqlquote.h"
#include "proxy/core/config.h"

void replication_reverse_name(const char *db, char *out, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a over the full name */
	char base[41];
	size_t k = 0;

	for (const unsigned char *p = (const unsigned char *)db; *p; p++) {
		h = (h ^ *p) * 16777619u;
		if (k < sizeof(base) - 1 && (isalnum(*p) || *p == '_'))
			base[k++] = (char)tolower(*p);
	}
	base[k] = '\0';
	snprintf(out, len, "pgcutover_rev_%s_%08x", base, (unsigned)h);
}

bool replication_names(const struct db_config *dc, const char *fwd_sub, struct repl_names *out)
{
	const char *sub = fwd_sub && fwd_sub[0] ? fwd_sub : dc->subscription;
	char slot_lit[140];

	memset(out, 0, sizeof(*out));
	replication_reverse_name(dc->name, out->rev, sizeof(out->rev));
	if (!sqlquote_ident(out->rev, out->rev_ident, sizeof(out->rev_ident)) ||
	    !sqlquote_literal(out->rev, out->rev_lit, sizeof(out->rev_lit)) ||
	    !sqlquote_literal(dc->replication_slot ? dc->replication_slot : "", slot_lit,
			      sizeof(slot_lit)))
		return false;
	snprintf(out->fwd_slot_lit, sizeof(out->fwd_slot_lit), "%s", slot_lit);
	if (sub) {
		if (strlen(sub) > 63 ||
		    !sqlquote_ident(sub, out->fwd_sub_ident, sizeof(out->fwd_sub_ident)) ||
		    !sqlquote_literal(sub, out->fwd_sub_lit, sizeof(out->fwd_sub_lit)))
			return false;
		snprintf(out->fwd_sub_query, sizeof(out->fwd_sub_query), "%s::text",
			 out->fwd_sub_lit);
	} else {
		snprintf(out->fwd_sub_query, sizeof(out->fwd_sub_query),
			 "(SELECT s.subname::text FROM pg_catalog.pg_subscription s"
			 " JOIN pg_catalog.pg_database d ON d.oid = s.subdbid"
			 " WHERE d.datname = pg_catalog.current_database() AND s.subslotname = %s"
			 " ORDER BY s.oid LIMIT 1)",
			 slot_lit);
	}
	return true;
}
