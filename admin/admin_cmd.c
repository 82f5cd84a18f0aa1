/*
 * admin_cmd.c - tokenizer and parser for admin console commands.
 */
#include "admin/admin_cmd.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_TOKENS 7

const char *const admin_cmd_help[][2] = {
	{"SHOW HELP", "this list"},
	{"SHOW VERSION", "the version of pgcutover"},
	{"SHOW DATABASES", "one row per database: route, state, source, target, clients, servers"},
	{"SHOW CLIENTS", "one row per client connection"},
	{"SHOW SERVERS", "one row per server connection"},
	{"SHOW POOLS", "one row per (database, user) pool"},
	{"SHOW STATS", "per database: transactions, queries, bytes, average times"},
	{"SHOW LISTS", "PgBouncer's counts: databases, users, pools, clients, servers"},
	{"SHOW CONFIG", "the settings in force"},
	{"SHOW LAG [db]", "replication lag per database: method, positions, bytes, when measured"},
	{"SHOW SEQUENCES db", "each sequence's value on the source and the target"},
	{"SHOW SWITCHES", "every switch since start, with the milliseconds of each phase"},
	{"PAUSE [db]", "hold new transactions; returns once in-flight ones have finished"},
	{"RESUME [db]", "release held transactions"},
	{"SWITCH db [TO target|source] [DRY RUN] [FORCE]",
	 "the cutover: preflight, drain, fence, lag wait, sequence sync, flip, resume"},
	{"ABORT db", "stop a switch that has not flipped yet; traffic resumes on the old side"},
	{"FENCE db source|target", "make that side refuse the application roles' writes"},
	{"UNFENCE db source|target", "lift the fence of that side"},
	{"SHOW REPLICATION [db]",
	 "both directions of each database: publication, slot, subscription, state, lag"},
	{"FINISH db", "drop what reverse replication created, once the move is final"},
	{"CHECK db [TO source|target]",
	 "every check a switch runs first, one row each: check, status, detail"},
	{"VERIFY db [table, ...]", "compare the data of both sides, in the background"},
	{"VERIFY db STOP", "stop the VERIFY of a database"},
	{"SHOW VERIFY [db]", "each table's VERIFY: progress, chunks, differences, ETA"},
	{"SHOW VERIFY DIFFS db", "the differing rows VERIFY found"},
	{"SHOW SHADOW [db]",
	 "shadow reads per statement: samples, matched, differed, target errors, times on both sides"},
	{"SHOW SHADOW DIFFS db", "recent shadow reads whose answers differed, with both answers"},
	{"SHOW DDL [db]", "schema changes seen since start, and whether ddl = block refused them"},
	{"SHOW FLEET", "the fleet's instances: heartbeat, live, and each database's route there"},
	{"RELOAD", "re-read the configuration file and auth_file"},
	{"KILL db", "disconnect every client of a database"},
	{"SHUTDOWN", "stop accepting clients and exit once they have left"},
	{NULL, NULL},
};

struct token {
	char text[ADMIN_CMD_ARG_MAX];
	bool quoted;
};

/* Split into words; a double-quoted word keeps its case and may contain anything but '"'. */
static int tokenize(const char *q, size_t len, struct token *toks, char *errbuf, size_t errlen)
{
	size_t i = 0;
	int n = 0;

	while (i < len) {
		size_t k = 0;
		struct token *t;

		if (isspace((unsigned char)q[i])) {
			i++;
			continue;
		}
		if (q[i] == ';') {
			/* only trailing semicolons (and blanks) may follow */
			for (i++; i < len; i++) {
				if (q[i] != ';' && !isspace((unsigned char)q[i])) {
					snprintf(errbuf, errlen,
						 "only one command per query is allowed");
					return -1;
				}
			}
			break;
		}
		if (n == MAX_TOKENS) {
			snprintf(errbuf, errlen, "too many words in command");
			return -1;
		}
		t = &toks[n++];
		t->quoted = q[i] == '"';
		if (t->quoted) {
			for (i++; i < len && q[i] != '"'; i++) {
				if (k + 1 >= sizeof(t->text) || q[i] == '\0') {
					snprintf(errbuf, errlen, "invalid quoted identifier");
					return -1;
				}
				t->text[k++] = q[i];
			}
			if (i >= len || k == 0) {
				/* as in SQL, "" names nothing */
				snprintf(errbuf, errlen, "%s quoted identifier",
					 i >= len ? "unterminated" : "empty");
				return -1;
			}
			i++;
		} else {
			for (; i < len && !isspace((unsigned char)q[i]) && q[i] != ';'; i++) {
				if (k + 1 >= sizeof(t->text) || q[i] == '\0' || q[i] == '"') {
					snprintf(errbuf, errlen, "invalid word in command");
					return -1;
				}
				t->text[k++] = q[i];
			}
		}
		t->text[k] = '\0';
	}
	return n;
}

static bool is_word(const struct token *t, const char *w)
{
	return !t->quoted && strcasecmp(t->text, w) == 0;
}

/* Unquoted identifiers fold to lower case, as in SQL. */
static void take_ident(const struct token *t, char *out)
{
	size_t i;

	for (i = 0; t->text[i]; i++)
		out[i] = t->quoted ? t->text[i] : (char)tolower((unsigned char)t->text[i]);
	out[i] = '\0';
}

/* ---- VERIFY db [table, ...] | VERIFY db STOP: names with dots and commas ---- */

/* A cursor over the query for VERIFY's own scanner. */
struct scan {
	const char *q;
	size_t len, i;
};

static void scan_blanks(struct scan *s)
{
	while (s->i < s->len && isspace((unsigned char)s->q[s->i]))
		s->i++;
}

/*
 * One name: "quoted" (kept as written) or unquoted (folded to lower case;
 * it ends at a blank, ';', and, when 'dotted', at ',' and '.').  False with a
 * message when it is empty, too long or malformed.
 */
static bool scan_name(struct scan *s, bool dotted, char *out, char *errbuf, size_t errlen)
{
	size_t k = 0;

	if (s->i < s->len && s->q[s->i] == '"') {
		for (s->i++; s->i < s->len && s->q[s->i] != '"'; s->i++) {
			if (k + 1 >= ADMIN_CMD_ARG_MAX || s->q[s->i] == '\0') {
				snprintf(errbuf, errlen, "invalid quoted identifier");
				return false;
			}
			out[k++] = s->q[s->i];
		}
		if (s->i >= s->len || k == 0) {
			snprintf(errbuf, errlen, "%s quoted identifier",
				 s->i >= s->len ? "unterminated" : "empty");
			return false;
		}
		s->i++;
	} else {
		for (; s->i < s->len; s->i++) {
			char ch = s->q[s->i];

			if (isspace((unsigned char)ch) || ch == ';' ||
			    (dotted && (ch == ',' || ch == '.')))
				break;
			if (k + 1 >= ADMIN_CMD_ARG_MAX || ch == '\0' || ch == '"') {
				snprintf(errbuf, errlen, "invalid word in command");
				return false;
			}
			out[k++] = (char)tolower((unsigned char)ch);
		}
		if (k == 0) {
			snprintf(errbuf, errlen,
				 "VERIFY expects a name here: VERIFY db [table, ...]");
			return false;
		}
	}
	out[k] = '\0';
	return true;
}

/* Only blanks and semicolons are left. */
static bool scan_end(struct scan *s)
{
	while (s->i < s->len && (isspace((unsigned char)s->q[s->i]) || s->q[s->i] == ';'))
		s->i++;
	return s->i == s->len;
}

/* [schema.]table into t. */
static bool scan_table(struct scan *s, struct admin_cmd_table *t, char *errbuf, size_t errlen)
{
	char first[ADMIN_CMD_ARG_MAX];

	if (!scan_name(s, true, first, errbuf, errlen))
		return false;
	if (s->i < s->len && s->q[s->i] == '.') {
		s->i++;
		memcpy(t->schema, first, sizeof(first));
		return scan_name(s, true, t->name, errbuf, errlen);
	}
	t->schema[0] = '\0';
	memcpy(t->name, first, sizeof(first));
	return true;
}

/* VERIFY db STOP, VERIFY db, VERIFY db t1, s.t2, "T3" (s->i just after VERIFY). */
static bool parse_verify(struct scan *s, struct admin_cmd *out, char *errbuf, size_t errlen)
{
	static const char usage[] = "VERIFY db [table, ...] or VERIFY db STOP";

	scan_blanks(s);
	if (scan_end(s)) {
		snprintf(errbuf, errlen, "VERIFY needs a database: %s", usage);
		return false;
	}
	if (!scan_name(s, false, out->db, errbuf, errlen))
		return false;
	out->kind = ADMIN_CMD_VERIFY;
	scan_blanks(s);
	if (scan_end(s))
		return true;
	if (s->len - s->i >= 4 && strncasecmp(s->q + s->i, "STOP", 4) == 0) {
		struct scan t = *s;

		t.i += 4;
		if (scan_end(&t)) {
			out->kind = ADMIN_CMD_VERIFY_STOP;
			return true;
		}
	}
	for (;;) {
		if (out->ntables == ADMIN_CMD_TABLES_MAX) {
			snprintf(errbuf, errlen, "VERIFY names at most %d tables",
				 ADMIN_CMD_TABLES_MAX);
			return false;
		}
		if (!scan_table(s, &out->tables[out->ntables++], errbuf, errlen))
			return false;
		scan_blanks(s);
		if (scan_end(s))
			return true;
		if (s->q[s->i] != ',') {
			snprintf(errbuf, errlen, "expected a comma between tables: %s", usage);
			return false;
		}
		s->i++;
		scan_blanks(s);
	}
}

bool admin_cmd_parse(const char *query, size_t len, struct admin_cmd *out, char *errbuf,
		     size_t errlen)
{
	struct token toks[MAX_TOKENS];
	int n;
	static const struct {
		const char *word;
		enum admin_cmd_kind kind;
	} shows[] = {
		{"HELP", ADMIN_CMD_SHOW_HELP},           {"VERSION", ADMIN_CMD_SHOW_VERSION},
		{"DATABASES", ADMIN_CMD_SHOW_DATABASES}, {"CLIENTS", ADMIN_CMD_SHOW_CLIENTS},
		{"SERVERS", ADMIN_CMD_SHOW_SERVERS},     {"POOLS", ADMIN_CMD_SHOW_POOLS},
		{"STATS", ADMIN_CMD_SHOW_STATS},         {"CONFIG", ADMIN_CMD_SHOW_CONFIG},
		{"SWITCHES", ADMIN_CMD_SHOW_SWITCHES},   {"LISTS", ADMIN_CMD_SHOW_LISTS},
	};

	memset(out, 0, sizeof(*out));
	memset(toks, 0, sizeof(toks));
	{
		/* VERIFY has a grammar of its own (dotted names, commas) */
		struct scan s = {query, len, 0};

		scan_blanks(&s);
		if (len - s.i >= 6 && strncasecmp(query + s.i, "VERIFY", 6) == 0 &&
		    (len - s.i == 6 || isspace((unsigned char)query[s.i + 6]) ||
		     query[s.i + 6] == ';')) {
			s.i += 6;
			if (parse_verify(&s, out, errbuf, errlen))
				return true;
			memset(out, 0, sizeof(*out));
			return false;
		}
	}
	n = tokenize(query, len, toks, errbuf, errlen);
	if (n < 0)
		return false;
	if (n == 0) {
		out->kind = ADMIN_CMD_EMPTY;
		return true;
	}
	if (is_word(&toks[0], "SHOW") && n >= 2 && is_word(&toks[1], "LAG") && n <= 3) {
		out->kind = ADMIN_CMD_SHOW_LAG;
		if (n == 3)
			take_ident(&toks[2], out->db);
		return true;
	}
	if (is_word(&toks[0], "SHOW") && n >= 2 && is_word(&toks[1], "SEQUENCES")) {
		if (n != 3) {
			snprintf(errbuf, errlen,
				 "SHOW SEQUENCES needs a database: SHOW SEQUENCES db");
			return false;
		}
		out->kind = ADMIN_CMD_SHOW_SEQUENCES;
		take_ident(&toks[2], out->db);
		return true;
	}
	if ((is_word(&toks[0], "PAUSE") || is_word(&toks[0], "RESUME")) && n <= 2) {
		out->kind = is_word(&toks[0], "PAUSE") ? ADMIN_CMD_PAUSE : ADMIN_CMD_RESUME;
		if (n == 2)
			take_ident(&toks[1], out->db);
		return true;
	}
	if ((is_word(&toks[0], "FENCE") || is_word(&toks[0], "UNFENCE"))) {
		if (n != 3 || !(is_word(&toks[2], "SOURCE") || is_word(&toks[2], "TARGET"))) {
			snprintf(errbuf, errlen,
				 "%s needs a database and a side: %s db source|target",
				 is_word(&toks[0], "FENCE") ? "FENCE" : "UNFENCE",
				 is_word(&toks[0], "FENCE") ? "FENCE" : "UNFENCE");
			return false;
		}
		out->kind = is_word(&toks[0], "FENCE") ? ADMIN_CMD_FENCE : ADMIN_CMD_UNFENCE;
		take_ident(&toks[1], out->db);
		out->to_source = is_word(&toks[2], "SOURCE");
		return true;
	}
	if (is_word(&toks[0], "FINISH")) {
		if (n != 2) {
			snprintf(errbuf, errlen, "FINISH needs a database: FINISH db");
			return false;
		}
		out->kind = ADMIN_CMD_FINISH;
		take_ident(&toks[1], out->db);
		return true;
	}
	if (is_word(&toks[0], "SHOW") && n >= 2 && is_word(&toks[1], "SHADOW")) {
		if (n >= 3 && is_word(&toks[2], "DIFFS")) {
			if (n != 4) {
				snprintf(errbuf, errlen,
					 "SHOW SHADOW DIFFS needs a database: SHOW SHADOW DIFFS db");
				return false;
			}
			out->kind = ADMIN_CMD_SHOW_SHADOW_DIFFS;
			take_ident(&toks[3], out->db);
			return true;
		}
		if (n > 3) {
			snprintf(errbuf, errlen,
				 "SHOW SHADOW takes at most a database: SHOW SHADOW [db]");
			return false;
		}
		out->kind = ADMIN_CMD_SHOW_SHADOW;
		if (n == 3)
			take_ident(&toks[2], out->db);
		return true;
	}
	if (is_word(&toks[0], "SHOW") && n >= 2 && is_word(&toks[1], "DDL") && n <= 3) {
		out->kind = ADMIN_CMD_SHOW_DDL;
		if (n == 3)
			take_ident(&toks[2], out->db);
		return true;
	}
	if (is_word(&toks[0], "SHOW") && n == 2 && is_word(&toks[1], "FLEET")) {
		out->kind = ADMIN_CMD_SHOW_FLEET;
		return true;
	}
	if (is_word(&toks[0], "SHOW") && n >= 2 && is_word(&toks[1], "VERIFY")) {
		if (n >= 3 && is_word(&toks[2], "DIFFS")) {
			if (n != 4) {
				snprintf(errbuf, errlen,
					 "SHOW VERIFY DIFFS needs a database: SHOW VERIFY DIFFS db");
				return false;
			}
			out->kind = ADMIN_CMD_SHOW_VERIFY_DIFFS;
			take_ident(&toks[3], out->db);
			return true;
		}
		if (n > 3) {
			snprintf(errbuf, errlen,
				 "SHOW VERIFY takes at most a database: SHOW VERIFY [db]");
			return false;
		}
		out->kind = ADMIN_CMD_SHOW_VERIFY;
		if (n == 3)
			take_ident(&toks[2], out->db);
		return true;
	}
	if (is_word(&toks[0], "CHECK")) {
		if (n != 2 && !(n == 4 && is_word(&toks[2], "TO") &&
				(is_word(&toks[3], "SOURCE") || is_word(&toks[3], "TARGET")))) {
			snprintf(errbuf, errlen,
				 "CHECK needs a database: CHECK db [TO source|target]");
			return false;
		}
		out->kind = ADMIN_CMD_CHECK;
		take_ident(&toks[1], out->db);
		if (n == 4) {
			out->side_given = true;
			out->to_source = is_word(&toks[3], "SOURCE");
		}
		return true;
	}
	if (is_word(&toks[0], "SHOW") && n >= 2 && is_word(&toks[1], "REPLICATION") && n <= 3) {
		out->kind = ADMIN_CMD_SHOW_REPLICATION;
		if (n == 3)
			take_ident(&toks[2], out->db);
		return true;
	}
	if (is_word(&toks[0], "ABORT") && n == 2) {
		out->kind = ADMIN_CMD_ABORT;
		take_ident(&toks[1], out->db);
		return true;
	}
	if (is_word(&toks[0], "SWITCH")) {
		int i = 2;

		if (n < 2) {
			snprintf(errbuf, errlen,
				 "SWITCH needs a database: SWITCH db [TO target|source] [DRY RUN] [FORCE]");
			return false;
		}
		out->kind = ADMIN_CMD_SWITCH;
		take_ident(&toks[1], out->db);
		if (i < n && is_word(&toks[i], "TO")) {
			if (i + 1 >= n ||
			    !(is_word(&toks[i + 1], "TARGET") || is_word(&toks[i + 1], "SOURCE"))) {
				snprintf(errbuf, errlen, "SWITCH %s TO needs target or source",
					 out->db);
				return false;
			}
			out->to_source = is_word(&toks[i + 1], "SOURCE");
			i += 2;
		}
		if (i < n && is_word(&toks[i], "DRY")) {
			if (i + 1 >= n || !is_word(&toks[i + 1], "RUN")) {
				snprintf(errbuf, errlen, "expected DRY RUN");
				return false;
			}
			out->dry_run = true;
			i += 2;
		}
		if (i < n && is_word(&toks[i], "FORCE")) {
			out->force = true;
			i++;
		}
		if (i != n) {
			snprintf(errbuf, errlen,
				 "unexpected \"%s\" in SWITCH: SWITCH db [TO target|source] [DRY RUN] [FORCE]",
				 toks[i].text);
			return false;
		}
		return true;
	}
	if (is_word(&toks[0], "SHOW")) {
		if (n != 2) {
			snprintf(errbuf, errlen, "SHOW takes exactly one word: SHOW %s",
				 n == 1 ? "what?" : "...");
			return false;
		}
		for (size_t i = 0; i < sizeof(shows) / sizeof(shows[0]); i++) {
			if (is_word(&toks[1], shows[i].word)) {
				out->kind = shows[i].kind;
				return true;
			}
		}
		snprintf(errbuf, errlen, "unknown SHOW command \"%s\"", toks[1].text);
		return false;
	}
	if (is_word(&toks[0], "RELOAD") && n == 1) {
		out->kind = ADMIN_CMD_RELOAD;
		return true;
	}
	if (is_word(&toks[0], "SHUTDOWN") && n == 1) {
		out->kind = ADMIN_CMD_SHUTDOWN;
		return true;
	}
	if (is_word(&toks[0], "KILL") && n == 2) {
		out->kind = ADMIN_CMD_KILL;
		take_ident(&toks[1], out->db);
		return true;
	}
	snprintf(errbuf, errlen, "unknown or malformed command \"%s%s\"", toks[0].text,
		 n > 1 ? " ..." : "");
	return false;
}
