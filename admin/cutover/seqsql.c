/*
 * seqsql.c - the SQL of the sequence sync at scale (see seqsql.h).
 */
#include "admin/cutover/seqsql.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "protocol/pq_build.h"
#include "protocol/sqlquote.h"

const char SEQ_CATALOG_SQL[] =
	"SELECT c.oid, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),"
	" n.nspname || '.' || c.relname, p.seqincrement"
	" FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	" JOIN pg_catalog.pg_sequence p ON p.seqrelid = c.oid"
	" WHERE c.relkind = 'S' AND NOT pg_catalog.pg_is_other_temp_schema(n.oid) ORDER BY c.oid";

static void put(struct pq_buf *b, const char *s)
{
	pq_put_bytes(b, s, strlen(s));
}

static void put_ll(struct pq_buf *b, const char *sep, long long v)
{
	char num[32];
	int n = snprintf(num, sizeof(num), "%s%lld", sep, v);

	pq_put_bytes(b, num, (size_t)n);
}

/* '{o1,o2,...}'::pg_catalog.oid[] */
static void put_oids(struct pq_buf *b, const uint32_t *oids, size_t n)
{
	put(b, "'{");
	for (size_t i = 0; i < n; i++)
		put_ll(b, i ? "," : "", (long long)oids[i]);
	put(b, "}'::pg_catalog.oid[]");
}

void seq_values_sql(struct pq_buf *b, const uint32_t *oids, const long long *known,
		    const bool *known_set, size_t n)
{
	/*
	 * First the sequences pg_sequence_last_value() shows as NULL
	 * (is_called false): their values from the relation, one EXECUTE each,
	 * handed over in the setting pgcutover.sequences ("oid last called,...").
	 */
	put(b, "DO $pgcutover_seq$ DECLARE o pg_catalog.oid; l bigint; c boolean;"
	       " r text[] := '{}'; BEGIN FOR o IN SELECT t.o FROM pg_catalog.unnest(");
	put_oids(b, oids, n);
	put(b, ") t(o) WHERE pg_catalog.pg_sequence_last_value(t.o) IS NULL LOOP"
	       " EXECUTE pg_catalog.format('SELECT last_value, is_called FROM %s',"
	       " o::pg_catalog.regclass) INTO l, c;"
	       " r := r || (o::text || ' ' || l::text || ' ' || c::text); END LOOP;"
	       " PERFORM pg_catalog.set_config('pgcutover.sequences',"
	       " pg_catalog.array_to_string(r, ','), false); END $pgcutover_seq$;");
	/* then the others: those whose last_value is not the one known */
	put(b, " SELECT t.o, v.l, true FROM ROWS FROM (pg_catalog.unnest(");
	put_oids(b, oids, n);
	put(b, "), pg_catalog.unnest('{");
	for (size_t i = 0; i < n; i++) {
		if (known && known_set[i])
			put_ll(b, i ? "," : "", known[i]);
		else
			put(b, i ? ",NULL" : "NULL");
	}
	put(b, "}'::pg_catalog.int8[])) t(o, k),"
	       " LATERAL (SELECT pg_catalog.pg_sequence_last_value(t.o) AS l) v"
	       " WHERE v.l IS NOT NULL AND v.l IS DISTINCT FROM t.k"
	       " UNION ALL SELECT pg_catalog.split_part(x, ' ', 1)::pg_catalog.oid,"
	       " pg_catalog.split_part(x, ' ', 2)::bigint, pg_catalog.split_part(x, ' ', 3)::boolean"
	       " FROM pg_catalog.unnest(pg_catalog.string_to_array(NULLIF("
	       "pg_catalog.current_setting('pgcutover.sequences'), ''), ',')) x");
	pq_put_u8(b, 0);
}

void seq_apply_sql(struct pq_buf *b, const struct seq_apply_item *items, size_t n, int64_t margin)
{
	char num[64];

	put(b, "DO $pgcutover_setval$ DECLARE q text[] := ARRAY[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			put(b, ",");
		sqlquote_put_literal(b, items[i].qname);
	}
	put(b, "]::text[]; ol numeric[] := '{");
	for (size_t i = 0; i < n; i++)
		put_ll(b, i ? "," : "", items[i].last);
	put(b, "}'; oc boolean[] := '{");
	for (size_t i = 0; i < n; i++)
		put(b, i ? (items[i].called ? ",t" : ",f") : (items[i].called ? "t" : "f"));
	put(b, "}'; oi numeric[] := '{");
	for (size_t i = 0; i < n; i++)
		put_ll(b, i ? "," : "", items[i].inc);
	snprintf(num, sizeof(num), "}'; m numeric := %" PRId64 ";", margin);
	put(b, num);
	/*
	 * Per sequence: its own next value (pg_sequence_last_value() when
	 * is_called, else the relation), the other side's next value plus the
	 * margin in the sequence's direction, and a setval() only when that is
	 * further: setval(n - inc, true) makes n the next value; past a bound
	 * the sequence is set exhausted at it, as it is on the other side.
	 */
	put(b,
	    " rel pg_catalog.regclass; l bigint; c boolean; inc numeric; mn numeric; mx numeric;"
	    " nxt numeric; other numeric; n numeric;"
	    " BEGIN FOR i IN 1 .. coalesce(pg_catalog.array_length(q, 1), 0) LOOP"
	    " rel := q[i]::pg_catalog.regclass;"
	    " l := pg_catalog.pg_sequence_last_value(rel); c := true;"
	    " IF l IS NULL THEN EXECUTE pg_catalog.format('SELECT last_value, is_called FROM %s', rel)"
	    " INTO l, c; END IF;"
	    " SELECT p.seqincrement, p.seqmin, p.seqmax INTO inc, mn, mx"
	    " FROM pg_catalog.pg_sequence p WHERE p.seqrelid = rel;"
	    " nxt := CASE WHEN c THEN l + inc ELSE l END;"
	    " other := CASE WHEN oc[i] THEN ol[i] + oi[i] ELSE ol[i] END;"
	    " n := CASE WHEN inc > 0 THEN GREATEST(nxt, other + m) ELSE LEAST(nxt, other - m) END;"
	    " IF n <> nxt THEN PERFORM pg_catalog.setval(rel, (CASE WHEN n > mx THEN mx"
	    " WHEN n < mn THEN mn WHEN n - inc BETWEEN mn AND mx THEN n - inc ELSE n END)::bigint,"
	    " n > mx OR n < mn OR n - inc BETWEEN mn AND mx); END IF;"
	    " END LOOP; END $pgcutover_setval$");
	pq_put_u8(b, 0);
}
