/*
 * seqread.c - reading a side's sequences (see seqread.h).
 */
#include "admin/cutover/seqread.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/seqsql.h"
#include "admin/cutover/seqstate.h"
#include "protocol/pq_build.h"

const char SEQ_LIST_SQL[] =
	"SELECT pg_catalog.quote_ident(schemaname) || '.' || pg_catalog.quote_ident(sequencename),"
	" schemaname || '.' || sequencename, last_value, increment_by"
	" FROM pg_catalog.pg_sequences ORDER BY 1";

void seq_raw_append(struct pq_buf *sql, const char *qname, long long increment)
{
	char part[900];
	int n;

	/* the relation is named by the quoted name pg_sequences gave; the names
	 * returned come from the catalog by tableoid, so nothing is pasted into
	 * a literal */
	n = snprintf(part, sizeof(part),
		     "%sSELECT pg_catalog.quote_ident(n.nspname) || '.' ||"
		     " pg_catalog.quote_ident(c.relname), n.nspname || '.' || c.relname,"
		     " s.last_value, s.is_called, %lld"
		     " FROM %s s JOIN pg_catalog.pg_class c ON c.oid = s.tableoid"
		     " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace",
		     sql->len ? " UNION ALL " : "", increment, qname);
	if (n > 0 && n < (int)sizeof(part))
		pq_put_bytes(sql, part, (size_t)n);
	else
		sql->failed = true;
}

bool seq_parse_int(const char *text, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(text, &end, 10);
	return errno == 0 && end != text && *end == '\0';
}

long long seq_next_value(long long last, bool is_called, long long increment)
{
	long long next;

	if (!is_called)
		return last;
	if (__builtin_add_overflow(last, increment, &next))
		return increment > 0 ? LLONG_MAX : LLONG_MIN;
	return next;
}

bool seq_is_behind(long long behind_next, long long ahead_next, long long increment)
{
	return increment >= 0 ? behind_next < ahead_next : behind_next > ahead_next;
}

static int entry_cmp(const void *key, const void *elem)
{
	uint32_t k = *(const uint32_t *)key, o = ((const struct seq_entry *)elem)->oid;

	return k < o ? -1 : k > o;
}

struct seq_entry *seq_ahead_find(struct seq_ahead *sa, uint32_t oid)
{
	return sa && sa->n ? bsearch(&oid, sa->e, sa->n, sizeof(sa->e[0]), entry_cmp) : NULL;
}

void seq_ahead_free(struct seq_ahead *sa)
{
	if (sa == NULL)
		return;
	for (size_t i = 0; i < sa->n; i++)
		free(sa->e[i].qname);
	free(sa->e);
	free(sa);
}

struct seq_entry *seq_value_row(struct seq_ahead *sa, const PGresult *res, int i, long long *last,
				bool *called)
{
	long long oid;

	if (!seq_parse_int(PQgetvalue(res, i, SEQ_VAL_OID), &oid) || oid < 0 || oid > UINT32_MAX ||
	    !seq_parse_int(PQgetvalue(res, i, SEQ_VAL_LAST), last))
		return NULL;
	*called = strcmp(PQgetvalue(res, i, SEQ_VAL_CALLED), "t") == 0;
	return seq_ahead_find(sa, (uint32_t)oid);
}
