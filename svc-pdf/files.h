/*
 * files.h - the content-addressed file store: <dir>/<sha256>.pdf, nothing else.
 *
 * Names come only from a sha256 in lower-case hex (checked here), never from user input. A write
 * is atomic: a temporary file in the same directory, fsync, rename, fsync of the directory, so a
 * reader (another replica on the shared volume) sees either no file or the whole file.
 * Thread-safe (no shared state).
 */
#ifndef PDF_FILES_H
#define PDF_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/err.h"

#define PDF_SHA256_HEX 64

/* True when s is exactly 64 lower-case hex digits. */
bool pdf_sha256_valid(const char *s);
/* Hex sha256 of data into out (65 bytes). */
void pdf_sha256_hex(const void *data, size_t len, char out[PDF_SHA256_HEX + 1]);

/* Creates dir (and its parents) if missing; CM_EUNAVAIL when it is not a writable directory. */
CM_MUSTCHECK cm_err pdf_files_init(const char *dir);

/* True when <dir>/<sha>.pdf exists with exactly `size` bytes. */
bool pdf_files_exists(const char *dir, const char *sha, size_t size);

/* Writes data as <dir>/<sha>.pdf atomically. CM_EUNAVAIL on an I/O failure (errno logged). */
CM_MUSTCHECK cm_err pdf_files_write(const char *dir, const char *sha, const void *data, size_t len);

/* Removes <dir>/<sha>.pdf; a missing file is not an error. */
CM_MUSTCHECK cm_err pdf_files_remove(const char *dir, const char *sha);

#endif
