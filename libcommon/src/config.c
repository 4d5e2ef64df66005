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

static void cm_cfg_fail(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cm_cfg_fail(char *errbuf, size_t errlen, const char *fmt, ...)
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

/* The text an entry takes its value from, and whether it came from the environment. */
static const char *
cm_cfg_source(const cm_cfg_entry *e, bool use_env, bool *from_env)
{
	const char *v = use_env ? getenv(e->env) : NULL;

	*from_env = false;
	if (v != NULL && (v[0] != '\0' || e->type == CM_CFG_STR || (e->flags & CM_CFG_REQUIRED))) {
		*from_env = true;
		return v;
	}
	return e->def != NULL ? e->def : "";
}

static cm_err
cm_cfg_load_one(const cm_cfg_entry *e, bool use_env, char *errbuf, size_t errlen)
{
	bool        from_env;
	const char *v = cm_cfg_source(e, use_env, &from_env);
	const char *shown = (e->flags & CM_CFG_SECRET) ? "***" : v;
	const char *origin = from_env ? "" : " (default)";
	int64_t     i;
	bool        b;

	if (e->target == NULL || e->env == NULL) {
		cm_cfg_fail(errbuf, errlen, "%s: config entry without target",
		            e->env ? e->env : "?");
		return CM_EINVAL;
	}
	if (use_env && (e->flags & CM_CFG_REQUIRED) && (!from_env || v[0] == '\0')) {
		cm_cfg_fail(errbuf, errlen, "%s: required but not set", e->env);
		return CM_EINVAL;
	}
	switch (e->type) {
	case CM_CFG_STR:
		*(const char **)e->target = v;
		return CM_OK;
	case CM_CFG_INT:
		if (v[0] == '\0' && !from_env) {
			i = 0;
		} else if (!cm_parse_i64(v, &i)) {
			cm_cfg_fail(errbuf, errlen, "%s: not an integer: '%s'%s", e->env, shown,
			            origin);
			return CM_EINVAL;
		}
		if ((e->min != 0 || e->max != 0) && (i < e->min || i > e->max)) {
			cm_cfg_fail(errbuf, errlen,
			            "%s: %s out of range [%" PRId64 ", %" PRId64 "]%s", e->env,
			            shown, e->min, e->max, origin);
			return CM_EINVAL;
		}
		*(int64_t *)e->target = i;
		return CM_OK;
	case CM_CFG_BOOL:
		if (v[0] == '\0' && !from_env) {
			b = false;
		} else if (!cm_cfg_parse_bool(v, &b)) {
			cm_cfg_fail(errbuf, errlen, "%s: not a boolean: '%s'%s", e->env, shown,
			            origin);
			return CM_EINVAL;
		}
		*(bool *)e->target = b;
		return CM_OK;
	}
	cm_cfg_fail(errbuf, errlen, "%s: unknown config type", e->env);
	return CM_EINVAL;
}

cm_err
cm_config_load(const cm_cfg_entry *table, size_t n, char *errbuf, size_t errlen)
{
	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	for (size_t k = 0; k < n; k++) {
		cm_err err = cm_cfg_load_one(&table[k], true, errbuf, errlen);
		if (err != CM_OK)
			return err;
	}
	return CM_OK;
}

cm_err
cm_config_defaults(const cm_cfg_entry *table, size_t n, char *errbuf, size_t errlen)
{
	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	for (size_t k = 0; k < n; k++) {
		cm_err err = cm_cfg_load_one(&table[k], false, errbuf, errlen);
		if (err != CM_OK)
			return err;
	}
	return CM_OK;
}

void
cm_config_log(const cm_cfg_entry *table, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		const cm_cfg_entry *e = &table[k];
		bool                from_env;
		char                num[32];
		const char         *val = "";

		if (e->target == NULL || e->env == NULL)
			continue;
		(void)cm_cfg_source(e, true, &from_env);
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
		cm_info("CM-CONFIG", "%s=%s%s", e->env, val, from_env ? "" : " (default)");
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
