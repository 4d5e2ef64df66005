/*
 * config.c - table-driven configuration from the environment.
 *
 * DESIGN: one pass over the caller's table. Each entry takes its text from the environment when
 * the variable is set, else from the default; the text is then parsed by type and checked
 * against the range. Rules:
 *   - CM_CFG_STR: a set-but-empty variable is a value (""), e.g. REDIS_HOST= disables Redis.
 *   - CM_CFG_INT / CM_CFG_BOOL: a set-but-empty variable means "use the default".
 *   - CM_CFG_REQUIRED: the variable must be set and non-empty; the default is ignored.
 *   - defaults are parsed and range-checked like environment values (a bad default is a bug the
 *     first start reports).
 * The first problem stops the load and is described in errbuf; secret values are never echoed.
 * cm_config_log() writes one log line per entry (id CM-CONFIG) with secrets shown as "***".
 * cm_config_load_layered() puts a parsed file (config_file.c) in front of the environment: the
 * same rules apply to a file's value as to a variable's.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm/config.h"
#include "cm/log.h"
#include "cm/util.h"
#include "config_int.h"

void
cm_cfg_errorf(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errbuf == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

static bool
cm_cfg_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
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

/* The text an entry takes its value from (the file, the environment or the default) and where
 * it came from. */
static const char *
cm_cfg_source(const cm_cfg_entry *e, bool use_env, const cm_cfg_file *file, cm_cfg_origin *origin)
{
	const char *v = cm_cfg_file_get(file, e->env);

	*origin = CM_CFG_FROM_FILE;
	if (v == NULL) {
		v = use_env ? getenv(e->env) : NULL;
		*origin = CM_CFG_FROM_ENV;
	}
	if (v != NULL && (v[0] != '\0' || e->type == CM_CFG_STR || (e->flags & CM_CFG_REQUIRED)))
		return v;
	*origin = CM_CFG_FROM_DEFAULT;
	return e->def != NULL ? e->def : "";
}

static cm_err
cm_cfg_load_one(const cm_cfg_entry *e, bool use_env, const cm_cfg_file *file, cm_cfg_origin *origin,
                char *errbuf, size_t errlen)
{
	const char *v = cm_cfg_source(e, use_env, file, origin);
	bool        set = *origin != CM_CFG_FROM_DEFAULT; /* by the file or the environment */
	const char *shown = (e->flags & CM_CFG_SECRET) ? "***" : v;
	const char *where = *origin == CM_CFG_FROM_FILE      ? " (file)"
	                    : *origin == CM_CFG_FROM_DEFAULT ? " (default)"
	                                                     : "";
	int64_t     i;
	bool        b;

	if (e->target == NULL || e->env == NULL) {
		cm_cfg_errorf(errbuf, errlen, "%s: config entry without target",
		              e->env ? e->env : "?");
		return CM_EINVAL;
	}
	if (use_env && (e->flags & CM_CFG_REQUIRED) && (!set || v[0] == '\0')) {
		cm_cfg_errorf(errbuf, errlen, "%s: required but not set", e->env);
		return CM_EINVAL;
	}
	switch (e->type) {
	case CM_CFG_STR:
		*(const char **)e->target = v;
		return CM_OK;
	case CM_CFG_INT:
		if (v[0] == '\0' && !set) {
			i = 0;
		} else if (!cm_parse_i64(v, &i)) {
			cm_cfg_errorf(errbuf, errlen, "%s: not an integer: '%s'%s", e->env, shown,
			              where);
			return CM_EINVAL;
		}
		if ((e->min != 0 || e->max != 0) && (i < e->min || i > e->max)) {
			cm_cfg_errorf(errbuf, errlen,
			              "%s: %s out of range [%" PRId64 ", %" PRId64 "]%s", e->env,
			              shown, e->min, e->max, where);
			return CM_EINVAL;
		}
		*(int64_t *)e->target = i;
		return CM_OK;
	case CM_CFG_BOOL:
		if (v[0] == '\0' && !set) {
			b = false;
		} else if (!cm_cfg_parse_bool(v, &b)) {
			cm_cfg_errorf(errbuf, errlen, "%s: not a boolean: '%s'%s", e->env, shown,
			              where);
			return CM_EINVAL;
		}
		*(bool *)e->target = b;
		return CM_OK;
	}
	cm_cfg_errorf(errbuf, errlen, "%s: unknown config type", e->env);
	return CM_EINVAL;
}

static cm_err
cm_cfg_load_all(const cm_cfg_entry *table, size_t n, bool use_env, const cm_cfg_file *file,
                cm_cfg_origin *origins, char *errbuf, size_t errlen)
{
	cm_cfg_origin o;

	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	for (size_t k = 0; k < n; k++) {
		cm_err err = cm_cfg_load_one(&table[k], use_env, file, &o, errbuf, errlen);
		if (err != CM_OK)
			return err;
		if (origins != NULL)
			origins[k] = o;
	}
	return CM_OK;
}

cm_err
cm_config_load(const cm_cfg_entry *table, size_t n, char *errbuf, size_t errlen)
{
	return cm_cfg_load_all(table, n, true, NULL, NULL, errbuf, errlen);
}

cm_err
cm_config_defaults(const cm_cfg_entry *table, size_t n, char *errbuf, size_t errlen)
{
	return cm_cfg_load_all(table, n, false, NULL, NULL, errbuf, errlen);
}

cm_err
cm_config_load_layered(const cm_cfg_entry *table, size_t n, const cm_cfg_file *file,
                       cm_cfg_origin *origins, char *errbuf, size_t errlen)
{
	const char *key;

	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	for (size_t i = 0; (key = cm_cfg_file_key(file, i)) != NULL; i++) {
		size_t k = 0;
		while (k < n && (table[k].env == NULL || strcmp(table[k].env, key) != 0))
			k++;
		if (k == n) {
			cm_cfg_errorf(errbuf, errlen, "%s: not a configuration key", key);
			return CM_EINVAL;
		}
	}
	return cm_cfg_load_all(table, n, true, file, origins, errbuf, errlen);
}

const char *
cm_cfg_origin_name(cm_cfg_origin o)
{
	switch (o) {
	case CM_CFG_FROM_ENV:
		return "env";
	case CM_CFG_FROM_FILE:
		return "file";
	case CM_CFG_FROM_DEFAULT:
		break;
	}
	return "default";
}

static void
cm_cfg_log_one(const cm_cfg_entry *e, cm_cfg_origin origin)
{
	char        num[32];
	const char *val = "";

	switch (e->type) {
	case CM_CFG_STR:
		val = *(const char *const *)e->target;
		if (val == NULL)
			val = "";
		if ((e->flags & CM_CFG_SECRET) && val[0] != '\0')
			val = "***";
		break;
	case CM_CFG_INT:
		(void)snprintf(num, sizeof(num), "%" PRId64, *(const int64_t *)e->target);
		val = (e->flags & CM_CFG_SECRET) ? "***" : num;
		break;
	case CM_CFG_BOOL:
		val = *(const bool *)e->target ? "true" : "false";
		if (e->flags & CM_CFG_SECRET)
			val = "***";
		break;
	}
	cm_info("CM-CONFIG", "%s=%s%s", e->env, val,
	        origin == CM_CFG_FROM_ENV    ? ""
	        : origin == CM_CFG_FROM_FILE ? " (file)"
	                                     : " (default)");
}

void
cm_config_log(const cm_cfg_entry *table, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		cm_cfg_origin o;

		if (table[k].target == NULL || table[k].env == NULL)
			continue;
		(void)cm_cfg_source(&table[k], true, NULL, &o);
		cm_cfg_log_one(&table[k], o);
	}
}

void
cm_config_log_origins(const cm_cfg_entry *table, size_t n, const cm_cfg_origin *origins)
{
	for (size_t k = 0; k < n; k++) {
		if (table[k].target != NULL && table[k].env != NULL)
			cm_cfg_log_one(&table[k], origins[k]);
	}
}

size_t
cm_config_copy(cm_cfg_entry *out, size_t cap, const cm_cfg_entry *table, size_t n)
{
	if (n > cap)
		n = cap;
	memcpy(out, table, n * sizeof(*table));
	return n;
}
