/*
 * config.h - table-driven configuration from the environment.
 *
 * A component declares a static table of entries {env name, type, target, default, flags, range}.
 * cm_config_load() fills every target from the environment or the default, validates types and
 * ranges, and reports the first problem in errbuf. cm_config_log() logs every value once at start,
 * with CM_CFG_SECRET values masked. String targets point into the environment or at the default
 * literal: they live as long as the process and are never freed.
 *
 * A process that reloads its configuration (the edge, on SIGHUP) layers a file over the
 * environment: cm_cfg_file_read() parses KEY=VALUE lines and cm_config_load_layered() takes a key
 * from the file when the file has it, else from the environment, else the default, and says
 * where each value came from. String targets may then point into the file: keep it while they
 * are used.
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

/* Where an entry's value came from. */
typedef enum cm_cfg_origin { CM_CFG_FROM_DEFAULT, CM_CFG_FROM_ENV, CM_CFG_FROM_FILE } cm_cfg_origin;

/* "default", "env" or "file". */
const char *cm_cfg_origin_name(cm_cfg_origin o);

/* A parsed configuration file: KEY=VALUE lines. Blank lines and lines starting with '#' are
 * skipped; spaces around the key and before the value are dropped, the rest of the line (without
 * trailing spaces and CR) is the value, taken literally (no quotes, no escapes). */
typedef struct cm_cfg_file cm_cfg_file;

#define CM_CFG_FILE_MAX (1024u * 1024u) /* bytes */

/* Reads and parses path. CM_EINVAL (with the line in errbuf) for a line without '=', a key that is
 * not [A-Za-z0-9_]+, or a key given twice; CM_ENOTFOUND when the file cannot be read, CM_ETOOBIG
 * when it is larger than CM_CFG_FILE_MAX; CM_ENOMEM. */
CM_MUSTCHECK cm_err cm_cfg_file_read(cm_cfg_file **out, const char *path, char *errbuf,
                                     size_t errlen);
/* Parses text (the file's contents) the same way; the text is copied. */
CM_MUSTCHECK cm_err cm_cfg_file_parse(cm_cfg_file **out, const char *text, char *errbuf,
                                      size_t errlen);
/* The value of key, NULL when the file does not set it. Valid until cm_cfg_file_free. */
const char *cm_cfg_file_get(const cm_cfg_file *f, const char *key);
/* The i-th key the file sets, in file order; NULL past the last. */
const char *cm_cfg_file_key(const cm_cfg_file *f, size_t i);
void        cm_cfg_file_free(cm_cfg_file *f);

/* cm_config_load with file (NULL: none) over the environment. Every key the file sets must be in
 * the table (a typo is an error, not a silently ignored line). origins (NULL, or n entries)
 * receives each entry's origin. */
CM_MUSTCHECK cm_err cm_config_load_layered(const cm_cfg_entry *table, size_t n,
                                           const cm_cfg_file *file, cm_cfg_origin *origins,
                                           char *errbuf, size_t errlen);
/* cm_config_log for values loaded by cm_config_load_layered: origins says where each came from. */
void cm_config_log_origins(const cm_cfg_entry *table, size_t n, const cm_cfg_origin *origins);

/* Copies the n entries of table to out (at most cap) and returns how many were copied: the body
 * of a service's config_table (cm/service.h). */
size_t cm_config_copy(cm_cfg_entry *out, size_t cap, const cm_cfg_entry *table, size_t n);

#endif
