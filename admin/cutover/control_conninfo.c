/*
 * control_conninfo.c - conninfo strings for control connections (see
 * control_conninfo.h): a database's conninfo with the user and password
 * replaced, or with defaults put in front of it, quoted by libpq's rules.
 */
#include "admin/cutover/control_conninfo.h"
#include "admin/cutover/control_int.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

/* Append value quoted as libpq's conninfo parser expects: '...' with \ and ' escaped. */
static void control_str_quoted(struct control_str *s, const char *value)
{
	control_str_cat(s, "'");
	for (const char *p = value; *p; p++) {
		if (*p == '\'' || *p == '\\')
			control_str_cat(s, "\\");
		control_str_add(s, p, 1);
	}
	control_str_cat(s, "'");
}

char *control_conninfo_with_user(const char *base, const char *user, const char *password)
{
	PQconninfoOption *opts = PQconninfoParse(base ? base : "", NULL);
	struct control_str s = {0};
	bool user_done = false, password_done = false;

	if (opts == NULL)
		return NULL;
	for (const PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		const char *v = o->val;

		if (strcmp(o->keyword, "user") == 0 && user != NULL) {
			v = user;
			user_done = true;
		} else if (strcmp(o->keyword, "password") == 0 && password != NULL) {
			v = password;
			password_done = true;
		}
		if (v == NULL)
			continue;
		if (s.len > 0)
			control_str_cat(&s, " ");
		control_str_cat(&s, o->keyword);
		control_str_cat(&s, "=");
		control_str_quoted(&s, v);
	}
	/* both are known keywords, so the loop above has seen them: belt and braces */
	if (user != NULL && !user_done) {
		control_str_cat(&s, s.len ? " user=" : "user=");
		control_str_quoted(&s, user);
	}
	if (password != NULL && !password_done) {
		control_str_cat(&s, s.len ? " password=" : "password=");
		control_str_quoted(&s, password);
	}
	control_str_cat(&s, "");
	PQconninfoFree(opts);
	if (s.failed) {
		free(s.p);
		return NULL;
	}
	return s.p;
}

char *control_conninfo_with_defaults(const char *base, const char *const *defaults)
{
	PQconninfoOption *opts = PQconninfoParse(base ? base : "", NULL);
	struct control_str s = {0};

	if (opts == NULL)
		return NULL;
	for (size_t i = 0; defaults[i] != NULL; i += 2) {
		const char *kw = defaults[i], *v = defaults[i + 1];
		bool set = false;

		if (v == NULL)
			continue;
		for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
			if (o->val != NULL && strcmp(o->keyword, kw) == 0)
				set = true;
		if (set)
			continue;
		control_str_cat(&s, kw);
		control_str_cat(&s, "=");
		control_str_quoted(&s, v);
		control_str_cat(&s, " ");
	}
	PQconninfoFree(opts);
	control_str_cat(&s, base ? base : "");
	if (s.failed) {
		free(s.p);
		return NULL;
	}
	return s.p;
}
