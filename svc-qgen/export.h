/*
 * export.h - a question set rendered as a file other tools import (qgen.Export, which the edge
 * relays as GET /question-sets/{id}/export):
 *   gift  Moodle GIFT text (question bank import),
 *   qti   an IMS QTI 2.1 content package (a zip: imsmanifest.xml, one assessmentItem per question
 *         and an assessmentTest that lists them), for LMSs and item banks,
 *   csv   a CSV file Anki (2.1.55 or later) imports as Basic notes with tags.
 *
 * Pure rendering: no I/O, no globals, reentrant. The input is the protobuf set (its id, topic
 * and questions with their answers), not types.h's qgen_question, because the question ids that
 * the QTI items carry exist only in the stored message. Every question is type "mcq" (2..26
 * options, answer_index one of them) or "open" (reference answer); anything else is CM_EINVAL,
 * because an export with a wrong or a silently missing answer is worse than none.
 *
 * Text from the set may hold anything. Each format escapes what it must (see export.c);
 * invalid UTF-8 becomes U+FFFD and control characters other than tab and newline are dropped in
 * every format, so the output always parses. CRLF and lone CR in the text count as newlines.
 */
#ifndef QGEN_EXPORT_H
#define QGEN_EXPORT_H

#include <stdbool.h>

#include "cm/buf.h"
#include "cm/err.h"
#include "proto/qgen.pb-c.h"

/* Largest export in bytes: the edge relays it whole in one response (its buffer holds 16 MiB). */
#define QGEN_EXPORT_MAX (16u * 1024u * 1024u)

typedef enum qgen_export_format {
	QGEN_EXPORT_GIFT,
	QGEN_EXPORT_QTI,
	QGEN_EXPORT_CSV
} qgen_export_format;

/* "gift", "qti" or "csv" (any case) to the format. False (out untouched) for anything else. */
bool qgen_export_format_parse(const char *s, qgen_export_format *out);

/*
 * Renders a set that includes answers, appending the file to out (binary for qti: use out->len,
 * not strlen). content_type and ext (the file extension for Content-Disposition, without dot)
 * are set to static strings on success.
 * Errors: CM_EINVAL (a question of another type, an mcq without a valid answer_index),
 * CM_ETOOBIG (out->max reached, or the zip would need zip64), CM_ENOMEM. On error out is left
 * as it was (len and content) and content_type/ext are untouched.
 */
CM_MUSTCHECK cm_err qgen_export_render(const Qgen__QuestionSet *set, qgen_export_format f,
                                       cm_buf *out, const char **content_type, const char **ext);

#endif
