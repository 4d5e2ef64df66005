/*
 * config_file.c - KEY=VALUE configuration files layered over the environment (cm/config.h).
 *
 * DESIGN: the file is read whole (capped), copied once, and split in place: each entry's key and
 * value point into that one buffer, so a parsed file is two allocations and its strings live
 * exactly as long as it does. Lookups are a linear scan: a configuration has tens of keys and is
 * read at start and on reload, never on a request's path. The parser is strict where a mistake
 * would otherwise pass unnoticed (a line without '=', a malformed or repeated key) and literal
 * about values (no quoting: a value is the rest of the line), so what the file says is what the
 * process gets.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/config.h"
#include "cm/util.h"
#include "config_int.h"

typedef struct cm_cfg_kv {
	const char *key, *value;
} cm_cfg_kv;

struct cm_cfg_file {
	char      *text;
	cm_cfg_kv *kv;
	size_t     n;
};

static bool
cm_cfgf_key_ok(const char *k)
{
	if (*k == '\0')
		return false;
	for (; *k != '\0'; k++) {
		if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') ||
		      (*k >= '0' && *k <= '9') || *k == '_'))
			return false;
	}
	return true;
}

static char *
cm_cfgf_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

/* Splits f->text into entries; lineno counts from 1 for messages. */
static cm_err
cm_cfgf_split(cm_cfg_file *f, size_t lines, char *errbuf, size_t errlen)
{
	char  *line = f->text, *next, *eq, *key;
	size_t lineno = 0;

	if ((f->kv = calloc(lines, sizeof(*f->kv))) == NULL)
		return CM_ENOMEM;
	for (; line != NULL; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		line = cm_cfgf_trim(line);
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if ((eq = strchr(line, '=')) == NULL) {
			cm_cfg_errorf(errbuf, errlen, "line %zu: not KEY=VALUE", lineno);
			return CM_EINVAL;
		}
		*eq = '\0';
		key = cm_cfgf_trim(line);
		if (!cm_cfgf_key_ok(key)) {
			cm_cfg_errorf(errbuf, errlen, "line %zu: bad key", lineno);
			return CM_EINVAL;
		}
		if (cm_cfg_file_get(f, key) != NULL) {
			cm_cfg_errorf(errbuf, errlen, "line %zu: %s given twice", lineno, key);
			return CM_EINVAL;
		}
		f->kv[f->n].key = key;
		f->kv[f->n].value = cm_cfgf_trim(eq + 1);
		f->n++;
	}
	return CM_OK;
}

cm_err
cm_cfg_file_parse(cm_cfg_file **out, const char *text, char *errbuf, size_t errlen)
{
	cm_cfg_file *f = NULL;
	size_t       lines = 1;
	cm_err       err = CM_ENOMEM;

	*out = NULL;
	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	if (strlen(text) > CM_CFG_FILE_MAX) {
		cm_cfg_errorf(errbuf, errlen, "larger than %u bytes", CM_CFG_FILE_MAX);
		return CM_ETOOBIG;
	}
	for (const char *p = text; *p != '\0'; p++)
		lines += *p == '\n';
	if ((f = calloc(1, sizeof(*f))) == NULL || (f->text = strdup(text)) == NULL)
		goto out;
	if ((err = cm_cfgf_split(f, lines, errbuf, errlen)) != CM_OK)
		goto out;
	*out = f;
	f = NULL;
out:
	cm_cfg_file_free(f);
	return err;
}

cm_err
cm_cfg_file_read(cm_cfg_file **out, const char *path, char *errbuf, size_t errlen)
{
	FILE  *fp;
	char  *buf = NULL;
	size_t n;
	cm_err err;

	*out = NULL;
	if (path == NULL || (fp = fopen(path, "rb")) == NULL) {
		cm_cfg_errorf(errbuf, errlen, "cannot open %s: %s", path ? path : "(null)",
		              strerror(errno));
		return CM_ENOTFOUND;
	}
	if ((buf = malloc(CM_CFG_FILE_MAX + 2)) == NULL) {
		fclose(fp);
		return CM_ENOMEM;
	}
	n = fread(buf, 1, CM_CFG_FILE_MAX + 1, fp);
	err = ferror(fp) ? CM_ENOTFOUND : CM_OK;
	fclose(fp);
	if (err != CM_OK) {
		cm_cfg_errorf(errbuf, errlen, "cannot read %s", path);
	} else if (n > CM_CFG_FILE_MAX || memchr(buf, '\0', n) != NULL) {
		cm_cfg_errorf(errbuf, errlen, "%s: larger than %u bytes or not text", path,
		              CM_CFG_FILE_MAX);
		err = CM_ETOOBIG;
	} else {
		buf[n] = '\0';
		err = cm_cfg_file_parse(out, buf, errbuf, errlen);
	}
	free(buf);
	return err;
}

const char *
cm_cfg_file_get(const cm_cfg_file *f, const char *key)
{
	for (size_t i = 0; f != NULL && i < f->n; i++) {
		if (strcmp(f->kv[i].key, key) == 0)
			return f->kv[i].value;
	}
	return NULL;
}

const char *
cm_cfg_file_key(const cm_cfg_file *f, size_t i)
{
	return f != NULL && i < f->n ? f->kv[i].key : NULL;
}

void
cm_cfg_file_free(cm_cfg_file *f)
{
	if (f == NULL)
		return;
	free(f->kv);
	free(f->text);
	free(f);
}
