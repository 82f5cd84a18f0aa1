/*
 * config_units.c - the units of configuration values, both ways: durations
 * ("250ms", "10s", "5min", "1h"), sizes ("512kB", "64MB", "1GB") and the
 * names of the enumerations (pool_mode, auth_type, lag_method).
 *
 * Reading is for the key table (config_keys.c) and for the callers of
 * config_parse_duration()/config_parse_size(); writing is for SHOW CONFIG
 * (config_dump.c) and for error messages that show a range in the units of
 * the file.
 */
#include "proxy/core/config_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------------- */
/* Durations and sizes                                                    */
/* ---------------------------------------------------------------------- */

/*
 * Reads the unsigned decimal integer at *p, advancing it.  False when there
 * is no digit or the value does not fit in an int64_t.
 */
bool config_parse_digits(const char **p, int64_t *out)
{
	const char *s = *p;
	int64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return false;
	for (; isdigit((unsigned char)*s); s++) {
		int d = *s - '0';

		if (v > (INT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return true;
}

/* One unit a number may carry, and what it multiplies by. */
struct unit {
	const char *name; /* as written after the number */
	int64_t factor;   /* milliseconds or bytes per unit */
};

/*
 * The common part of durations and sizes: digits, optional blanks, an
 * optional unit from 'units' (case-sensitive, as in PostgreSQL, because "mB"
 * and "Mb" are not the same thing to everyone), and nothing after.
 */
static bool parse_with_unit(const char *s, const struct unit *units, int64_t plain_factor,
			    int64_t *out)
{
	int64_t v, factor = plain_factor;

	if (s == NULL)
		return false;
	while (isspace((unsigned char)*s))
		s++;
	if (!config_parse_digits(&s, &v))
		return false;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s != '\0') {
		const struct unit *u;
		size_t len = strlen(s);

		while (len > 0 && isspace((unsigned char)s[len - 1]))
			len--;
		for (u = units; u->name; u++) {
			if (strlen(u->name) == len && strncmp(s, u->name, len) == 0)
				break;
		}
		if (u->name == NULL)
			return false;
		factor = u->factor;
	}
	if (v > INT64_MAX / factor)
		return false;
	*out = v * factor;
	return true;
}

static const struct unit duration_units[] = {
	{"ms", 1}, {"s", 1000}, {"min", 60 * 1000}, {"h", 60 * 60 * 1000}, {NULL, 0},
};

static const struct unit size_units[] = {
	{"B", 1}, {"kB", CONFIG_KB}, {"MB", CONFIG_KB * 1024}, {"GB", CONFIG_GB}, {NULL, 0},
};

bool config_parse_duration(const char *s, int64_t *out_ms)
{
	return parse_with_unit(s, duration_units, 1000, out_ms);
}

bool config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"on", "true", "yes", "1"};
	static const char *const no[] = {"off", "false", "no", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

bool config_parse_fraction(const char *s, double *out)
{
	double v = 0, scale = 1;
	bool digits = false;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (*p - '0');
		digits = true;
		if (v > 1)
			return false;
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			scale /= 10;
			v += (*p - '0') * scale;
			digits = true;
		}
	}
	if (!digits || *p != '\0' || v > 1)
		return false;
	*out = v;
	return true;
}

void config_format_fraction(char *buf, size_t len, double v)
{
	snprintf(buf, len, "%g", v);
}

bool config_parse_size(const char *s, int64_t *out_bytes)
{
	return parse_with_unit(s, size_units, 1, out_bytes);
}

/* The largest unit that divides v exactly, so that dumps read as written. */
static void format_with_unit(char *buf, size_t len, int64_t v, const struct unit *units)
{
	const struct unit *best = NULL;

	if (v != 0) {
		for (const struct unit *u = units; u->name; u++) {
			if (v % u->factor == 0)
				best = u;
		}
	}
	if (best == NULL)
		snprintf(buf, len, "%" PRId64, v);
	else
		snprintf(buf, len, "%" PRId64 "%s", v / best->factor, best->name);
}

/* Sizes below one kB are shown as plain bytes, not as "512B". */
void config_format_size(char *buf, size_t len, int64_t v)
{
	format_with_unit(buf, len, v, size_units + 1);
}

void config_format_duration(char *buf, size_t len, int64_t ms)
{
	format_with_unit(buf, len, ms, duration_units);
}

/* ---------------------------------------------------------------------- */
/* Enumerations                                                           */
/* ---------------------------------------------------------------------- */

const char *config_pool_mode_name(enum pool_mode m)
{
	switch (m) {
	case POOL_SESSION:
		return "session";
	case POOL_TRANSACTION:
		return "transaction";
	}
	return "unknown";
}

const char *config_auth_type_name(enum auth_type t)
{
	switch (t) {
	case AUTH_TRUST:
		return "trust";
	case AUTH_MD5:
		return "md5";
	case AUTH_SCRAM:
		return "scram-sha-256";
	}
	return "unknown";
}

const char *config_ddl_mode_name(enum ddl_mode m)
{
	switch (m) {
	case DDL_PASS:
		return "pass";
	case DDL_BLOCK:
		return "block";
	}
	return "unknown";
}

const char *config_lag_method_name(enum lag_method m)
{
	switch (m) {
	case LAG_LSN:
		return "lsn";
	case LAG_MARKER:
		return "marker";
	case LAG_NONE:
		return "none";
	}
	return "unknown";
}
