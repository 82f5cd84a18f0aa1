/*
 * config_dump.c - config_dump(): the [pgcutover] settings in force as text,
 * for SHOW CONFIG.  It walks the key table (config_keys.c), so every key of
 * [pgcutover] is shown, in the table's order, written as a configuration
 * file would write it (config_units.c).
 */
#include "proxy/core/config_int.h"

#include <inttypes.h>
#include <stdio.h>

void config_dump(const struct config *cfg,
		 void (*emit)(void *arg, const char *key, const char *value), void *arg)
{
	char buf[64];

	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		const char *field, *value = buf;

		if (k->main_off == NO_OFFSET)
			continue;
		field = (const char *)cfg + k->main_off;
		switch (k->type) {
		case KT_INT:
		case KT_PORT:
			snprintf(buf, sizeof(buf), "%d", *(const int *)field);
			break;
		case KT_INT64:
			snprintf(buf, sizeof(buf), "%" PRId64, *(const int64_t *)field);
			break;
		case KT_DURATION:
			config_format_duration(buf, sizeof(buf), *(const int64_t *)field);
			break;
		case KT_SIZE:
			config_format_size(buf, sizeof(buf), *(const int64_t *)field);
			break;
		case KT_POOL_MODE:
			value = config_pool_mode_name(*(const enum pool_mode *)field);
			break;
		case KT_AUTH_TYPE:
			value = config_auth_type_name(*(const enum auth_type *)field);
			break;
		case KT_LAG_METHOD:
			value = config_lag_method_name(*(const enum lag_method *)field);
			break;
		case KT_SSLMODE:
			value = tls_sslmode_name(*(const enum tls_sslmode *)field);
			break;
		case KT_BOOL:
			value = *(const bool *)field ? "on" : "off";
			break;
		case KT_FRACTION:
			config_format_fraction(buf, sizeof(buf), *(const double *)field);
			break;
		case KT_DDL_MODE:
			value = config_ddl_mode_name(*(const enum ddl_mode *)field);
			break;
		case KT_ABORT_PROCEED:
			value = *(const bool *)field ? "abort" : "proceed";
			break;
		default:
			value = *(char *const *)field;
			if (value == NULL)
				value = "";
			break;
		}
		emit(arg, k->name, value);
	}
}
