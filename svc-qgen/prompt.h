/*
 * prompt.h - the versioned prompt of one generation call (QGEN_PROMPT_VERSION).
 *
 * The user message carries machine-readable lines that test/fakellm understands and that read
 * naturally to a real model: "COUNT: n", "TYPE: mcq|open", "PAGE: p", "VARIANT: k",
 * "DIFFICULTY: ...", "TOPIC: ...", then "TEXT:" and the chunk. The system message fixes the JSON
 * shape the parser (quality.h) expects.
 */
#ifndef QGEN_PROMPT_H
#define QGEN_PROMPT_H

#include "cm/buf.h"
#include "types.h"

typedef struct qgen_prompt_req {
	int               count;
	qgen_type         type;
	qgen_difficulty   difficulty;
	const char       *topic; /* NULL or "" */
	int               variant;
	const qgen_chunk *chunk;
} qgen_prompt_req;

/* The system message (static text). */
const char *qgen_prompt_system(void);
/* Builds the user message into out (initialised by the caller). */
CM_MUSTCHECK cm_err qgen_prompt_user(const qgen_prompt_req *req, cm_buf *out);
/* Output tokens to allow for n questions of type t (a generous estimate). */
int qgen_prompt_max_tokens(int n, qgen_type t);

#endif
