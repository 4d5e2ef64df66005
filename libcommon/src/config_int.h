/*
 * config_int.h - what config.c and config_file.c share inside libcommon.
 */
#ifndef CM_CONFIG_INT_H
#define CM_CONFIG_INT_H

#include <stddef.h>

/* Formats a configuration error into errbuf (nothing when errbuf is NULL or errlen is 0). */
void cm_cfg_errorf(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
