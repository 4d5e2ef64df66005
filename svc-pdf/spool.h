/*
 * spool.h - upload bodies that arrive in pieces (pdf.UploadPart, then pdf.UploadBody).
 *
 * The edge does not hold an upload's body: it sends each piece as it comes and svc-pdf writes it
 * at its offset into <data dir>/spool/<owner>-<upload id> on the volume every replica shares
 * (the one that holds the content-addressed files), so any replica may take any piece and a
 * piece sent twice (a retry) writes the same bytes again. The body's end reads the file back
 * whole (the extraction needs it in memory anyway) and removes it. A spool nobody ends (an edge
 * that died, a client that left and an abort that did not arrive) is removed once it has not
 * been written for PDF_SPOOL_IDLE_S seconds.
 *
 * Names come from the owner (the envelope's subject: letters, digits, '-', '_', at most 64) and
 * an upload id of 32 lower-case hex digits; anything else is CM_EINVAL, so a name never leaves
 * the directory. Thread-safe (no shared state).
 */
#ifndef PDF_SPOOL_H
#define PDF_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"

#define PDF_SPOOL_ID_HEX 32
#define PDF_SPOOL_IDLE_S 300 /* far above the edge's idle timeout: only the abandoned go */

/* Creates <dir>/spool if missing; CM_EUNAVAIL when it cannot. */
CM_MUSTCHECK cm_err pdf_spool_init(const char *dir);

/* Writes len bytes at offset of the owner's spool `id` (created on first use). CM_EINVAL for a bad
 * owner or id, CM_ETOOBIG when offset + len passes max_size, CM_EUNAVAIL on an I/O failure. */
CM_MUSTCHECK cm_err pdf_spool_write(const char *dir, const char *owner, const char *id,
                                    uint64_t offset, const void *data, size_t len,
                                    int64_t max_size);

/* Reads the spool's first len bytes into buf. CM_EINVAL for a bad owner or id, or a spool that
 * does not hold exactly len bytes (a piece lost: the body is incomplete); CM_ENOTFOUND when there
 * is none; CM_EUNAVAIL on an I/O failure. */
CM_MUSTCHECK cm_err pdf_spool_read(const char *dir, const char *owner, const char *id, void *buf,
                                   size_t len);

/* True when the owner's spool `id` exists (a piece of it came before). */
bool pdf_spool_exists(const char *dir, const char *owner, const char *id);

/* The owner's spools now (upload bodies arriving, on every replica). */
int pdf_spool_count(const char *dir, const char *owner);

/* True when the volume has more than min_free_mb MiB free (statvfs; true when it cannot tell). */
bool pdf_spool_room(const char *dir, int64_t min_free_mb);

/* Removes the spool; a missing one is fine. */
void pdf_spool_remove(const char *dir, const char *owner, const char *id);

/* Removes the spools not written for idle_s seconds; returns how many went. */
int pdf_spool_sweep(const char *dir, int idle_s);

#endif
