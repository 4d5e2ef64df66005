/*
 * config.h - the edge's configuration table (env EDGE_*, plus the shared JWT_* and LOG_LEVEL).
 */
#ifndef EDGE_CONFIG_H
#define EDGE_CONFIG_H

#include <stddef.h>

#include "edge.h"

/* Loads and validates; errbuf says what is wrong. */
CM_MUSTCHECK cm_err edge_config_load(edge_config *c, char *errbuf, size_t errlen);
void                edge_config_log(edge_config *c);

#endif
