/*
 * control_text.c - the words of the control connections: messages made one
 * line, SQLSTATE detection, where a connection goes and why it failed
 * ("could not connect to HOST:PORT: REASON" with the server's SQLSTATE), and
 * the growing string that messages and conninfo strings are built in.
 */
#include "admin/cutover/control_int.h"
#include "protocol/sqlstate.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copy s onto one line: newlines and tabs become spaces, the end is trimmed. */
void control_one_line(char *dst, size_t len, const char *s)
{
	size_t n = 0;

	if (len == 0)
		return;
	for (; s != NULL && *s != '\0' && n + 1 < len; s++) {
		char ch = *s;

		if (ch == '\n' || ch == '\r' || ch == '\t')
			ch = ' ';
		if (ch == ' ' && (n == 0 || dst[n - 1] == ' '))
			continue;
		dst[n++] = ch;
	}
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	dst[n] = '\0';
}

/* The first line of a libpq message ("server closed the connection unexpectedly"). */
void control_first_line(char *dst, size_t len, const char *s)
{
	size_t n = s ? strcspn(s, "\n") : 0;

	if (len == 0)
		return;
	if (n >= len)
		n = len - 1;
	memcpy(dst, s ? s : "", n);
	dst[n] = '\0';
	control_one_line(dst, len, dst);
}

bool control_is_sqlstate(const char *s)
{
	for (int i = 0; i < 5; i++) {
		if (!(isdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])))
			return false;
	}
	return true;
}

/*
 * In a line of libpq's connection error, find the server's "SEVERITY:
 * SQLSTATE: message" (the verbose form, asked for while connecting so that
 * authentication failures keep their SQLSTATE).  Returns the message and
 * stores the SQLSTATE, or returns NULL.
 */
static const char *control_find_server_error(const char *line, size_t linelen, char *sqlstate)
{
	const char *end = line + linelen;

	for (const char *p = line; p + 3 + 5 + 2 <= end; p++) {
		const char *code = p + 3;

		if (memcmp(p, ":  ", 3) != 0 || p == line || !isupper((unsigned char)p[-1]))
			continue;
		if (control_is_sqlstate(code) && code[5] == ':' && code[6] == ' ') {
			memcpy(sqlstate, code, 5);
			sqlstate[5] = '\0';
			return code + 7;
		}
	}
	return NULL;
}

void control_str_add(struct control_str *s, const char *add, size_t n)
{
	if (s->failed)
		return;
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		char *p;

		while (cap < s->len + n + 1)
			cap *= 2;
		p = realloc(s->p, cap);
		if (p == NULL) {
			s->failed = true;
			return;
		}
		s->p = p;
		s->cap = cap;
	}
	memcpy(s->p + s->len, add, n);
	s->len += n;
	s->p[s->len] = '\0';
}

void control_str_cat(struct control_str *s, const char *add)
{
	control_str_add(s, add, strlen(add));
}

/* Where the connection goes, for messages: "127.0.0.1:5433", "[::1]:5433", a socket. */
void control_endpoint(const struct control_conn *cc, char *buf, size_t len)
{
	const char *host = NULL;
	const char *port = NULL;

	if (cc->conn != NULL) {
		host = PQhost(cc->conn);
		port = PQport(cc->conn);
	}
	if ((host == NULL || host[0] == '\0') && cc->nhosts > 0) {
		host = cc->hosts[0].host[0] ? cc->hosts[0].host : cc->hosts[0].addr;
		port = cc->port_mode == 2 ? cc->hosts[0].port : cc->port_all;
	}
	if (host == NULL || host[0] == '\0') {
		/* no plan yet (or lists passed through): the conninfo as written */
		host = control_opt(cc, "host");
		if (host == NULL || host[0] == '\0')
			host = control_opt(cc, "hostaddr");
		port = control_opt(cc, "port");
	}
	if (host == NULL || host[0] == '\0')
		host = "localhost";
	if (port == NULL || port[0] == '\0')
		port = "5432";
	if (host[0] == '/' || host[0] == '@')
		snprintf(buf, len, "socket \"%s/.s.PGSQL.%s\"", host, port);
	else if (strchr(host, ':') != NULL)
		snprintf(buf, len, "[%s]:%s", host, port);
	else
		snprintf(buf, len, "%s:%s", host, port);
}

/*
 * libpq's message for a failed connection attempt, made into one line
 * "could not connect to HOST:PORT: REASON" with the server's SQLSTATE when
 * the server refused us (28P01, 3D000, 53300, 57P03...), else 08006.
 *
 * libpq 15 writes one line per failed attempt, 'connection to server at
 * "h" (a), port p failed: REASON', plus detail lines starting with a tab (and
 * LOCATION lines in verbose mode): the last attempt's reason is the one kept.
 */
void control_connect_error(const struct control_conn *cc, char *sqlstate, char *msg, size_t len)
{
	const char *all = cc->conn ? PQerrorMessage(cc->conn) : "";
	const char *best = NULL;
	size_t best_len = 0;
	char state[6] = SQLSTATE_CONNECTION_FAILURE;
	char reason[CONTROL_MSG_MAX];
	char where[300];

	const char *srv_line = NULL, *failed_line = NULL;
	size_t srv_len = 0, failed_len = 0, first_len = strcspn(all, "\n");

	for (const char *line = all; *line != '\0';) {
		size_t n = strcspn(line, "\n");
		char probe[6];

		if (control_find_server_error(line, n, probe) != NULL) {
			srv_line = line;
			srv_len = n;
		} else if (line[0] != '\t' && line[0] != ' ' && memmem(line, n, "failed: ", 8)) {
			failed_line = line;
			failed_len = n;
		}
		line += n;
		if (*line == '\n')
			line++;
	}
	/* the server's own words beat an attempt's summary, which beats anything */
	if (srv_line != NULL) {
		best = srv_line;
		best_len = srv_len;
	} else if (failed_line != NULL) {
		best = failed_line;
		best_len = failed_len;
	} else if (all[0] != '\0') {
		best = all;
		best_len = first_len;
	}
	reason[0] = '\0';
	if (best != NULL) {
		const char *r = best;
		const char *end = best + best_len;
		const char *f = memmem(best, best_len, "failed: ", 8);
		const char *srv = control_find_server_error(best, best_len, state);

		if (srv != NULL)
			r = srv;
		else if (f != NULL)
			r = f + 8;
		snprintf(reason, sizeof(reason), "%.*s", (int)(end - r), r);
		control_one_line(reason, sizeof(reason), reason);
	}
	if (reason[0] == '\0')
		snprintf(reason, sizeof(reason), "connection failed");
	control_endpoint(cc, where, sizeof(where));
	memcpy(sqlstate, state, 6);
	snprintf(msg, len, "could not connect to %s: %s", where, reason);
}
