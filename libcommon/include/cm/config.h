/*
 * config.h - table-driven configuration from the environment.
 *
 * A component declares a static table of entries {env name, type, target, default, flags, range}.
 * cm_config_load() fills every target from the environment or the default, validates types and
 * ranges, and reports the first problem in errbuf. cm_config_log() logs every value once at start,
 * with CM_CFG_SECRET values masked. String targets point into the environment or at the default
 * literal: they live as long as the process and are never freed.
 */
#ifndef CM_CONFIG_H
#define CM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"

typedef enum cm_cfg_type {
	CM_CFG_STR,  /* target: const char ** */
	CM_CFG_INT,  /* target: int64_t *, checked against [min, max] */
	CM_CFG_BOOL, /* target: bool *; accepts 1/0, true/false, yes/no, on/off */
} cm_cfg_type;

#define CM_CFG_SECRET 0x1u   /* masked when logged */
#define CM_CFG_REQUIRED 0x2u /* must be set and non-empty (default ignored) */

typedef struct cm_cfg_entry {
	const char *env;
	cm_cfg_type type;
	void       *target;
	const char *def; /* default as text; NULL = empty string / 0 / false */
	unsigned    flags;
	int64_t     min, max; /* for CM_CFG_INT; min == max == 0 means no range check */
	const char *help;
} cm_cfg_entry;

CM_MUSTCHECK cm_err cm_config_load(const cm_cfg_entry *table, size_t n, char *errbuf,
                                   size_t errlen);
void                cm_config_log(const cm_cfg_entry *table, size_t n);
/* Like cm_config_load with an empty environment: every target gets its default (tests, tools). */
CM_MUSTCHECK cm_err cm_config_defaults(const cm_cfg_entry *table, size_t n, char *errbuf,
                                       size_t errlen);

/* Copies the n entries of table to out (at most cap) and returns how many were copied: the body
 * of a service's config_table (cm/service.h). */
size_t cm_config_copy(cm_cfg_entry *out, size_t cap, const cm_cfg_entry *table, size_t n);

#endif
