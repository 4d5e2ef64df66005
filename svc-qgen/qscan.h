/*
 * qscan.h - the questions of a streamed answer, one at a time as they arrive.
 *
 * A model streams {"questions":[{...},{...},...]} a few words at a time. The scanner is fed the
 * deltas in order and hands each complete element object of the "questions" array to a callback
 * as soon as its closing brace arrives, so the first question of an answer can be checked and
 * used while the model still writes the rest. It is not a JSON parser: it tracks strings (with
 * escapes) and the nesting depth, and the callback parses the one object it is given
 * (quality.h's qgen_parse_one), so a broken element costs that element only.
 *
 * What it accepts around the object is what cm_llm_extract_json accepts: prose or ```json
 * fences before it, and braces in that prose. The root object starts at a '{' followed (after
 * white space) by '"'; a root object without a "questions" array ends at its closing brace and
 * the search goes on. Only "questions" at the root's own level counts; elements that are not
 * objects are skipped; once the array closes everything after it is ignored. An element larger
 * than QGEN_QSCAN_MAX_OBJ bytes is skipped (counted in `skipped`).
 *
 * Threads: one scanner per call; not shared.
 */
#ifndef QGEN_QSCAN_H
#define QGEN_QSCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/buf.h"

#define QGEN_QSCAN_MAX_OBJ (64u * 1024u) /* bytes of one question object at most */

/* One element object (not terminated; valid during the call). false stops the scan. */
typedef bool (*qgen_qscan_fn)(void *arg, const char *obj, size_t len);

typedef struct qgen_qscan {
	qgen_qscan_fn fn;
	void         *arg;
	int           state;    /* where in the answer (qscan.c) */
	int           depth;    /* nesting inside the root object, or inside an element */
	bool          in_str;   /* inside a JSON string */
	bool          esc;      /* the previous byte was a backslash inside a string */
	bool          key_hit;  /* the root-level string just read is "questions" */
	bool          want_arr; /* ... and a ':' followed it */
	bool          stopped;  /* the callback said stop */
	char          key[16];  /* the root-level string being read (first bytes) */
	size_t        key_len;
	cm_buf        obj;      /* the element being read */
	size_t        fed;      /* bytes fed so far */
	size_t        last_end; /* fed count at the end of the last element emitted */
	int           emitted;  /* element objects handed to fn */
	int           skipped;  /* elements too large */
} qgen_qscan;

void qgen_qscan_init(qgen_qscan *s, qgen_qscan_fn fn, void *arg);
void qgen_qscan_fini(qgen_qscan *s);

/* Feeds the next bytes of the answer. false once the callback asked to stop (later feeds do
 * nothing). */
bool qgen_qscan_feed(qgen_qscan *s, const char *p, size_t n);

/* True once the questions array has closed: nothing more will be emitted. */
bool qgen_qscan_done(const qgen_qscan *s);

#endif
