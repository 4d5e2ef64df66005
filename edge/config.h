/*
 * config.h - the edge's configuration table (env EDGE_*, plus the shared JWT_* and LOG_LEVEL).
 */
#ifndef EDGE_CONFIG_H
#define EDGE_CONFIG_H

#include <stddef.h>

#include "cm/config.h"
#include "edge.h"

#define EDGE_CFG_MAX 64 /* entries in the table */

/* Loads and validates from the environment; errbuf says what is wrong. */
CM_MUSTCHECK cm_err edge_config_load(edge_config *c, char *errbuf, size_t errlen);
/* The same with file (NULL: none; EDGE_CONFIG_FILE's contents) over the environment; origins
 * (EDGE_CFG_MAX entries) says where each table entry's value came from. String values may point
 * into file: keep it as long as c is used. */
CM_MUSTCHECK cm_err edge_config_load_file(edge_config *c, const cm_cfg_file *file,
                                          cm_cfg_origin *origins, char *errbuf, size_t errlen);
/* The table bound to c (its entries' targets point into c), copied into out: how many. */
size_t edge_config_table(edge_config *c, cm_cfg_entry *out, size_t cap);
/* Logs every value at start (secrets masked) with where it came from (edge_config_load_file). */
void edge_config_log(edge_config *c, const cm_cfg_origin *origins);

#endif
