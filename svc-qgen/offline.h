/*
 * offline.h - the offline provider: questions made from the document's own text, with no
 * model, used when LLM_BASE_URL is unset. A real fallback (architecture.md "LLM"), not a mock:
 * a new user without an API key gets sensible questions.
 *
 * Multiple choice: a key sentence with one content term blanked out ("Which term completes: ...
 * ____ ..."): a name, a number, a repeated phrase or a noun of the document, never a function
 * word and never inside a URL, an e-mail address, code or a formula (doc_terms.h). The three
 * distractors are other terms of the same kind (number for number, name for name), of similar
 * frequency and length, and none is used by more than a fifth of the set's questions. Open: a
 * question whose form follows the sentence (define, what happens if, why, compare, role;
 * openq.h), the sentence being the reference answer; the set varies its forms. One question
 * per passage (chunk), passages spread over the document; a passage is asked about again only
 * when the set needs more questions than there are passages. With a topic, sentences that
 * mention the topic's words come first.
 *
 * Deterministic: the same input gives the same questions; `variant` picks a different slice
 * of the candidates (for top-up rounds), so variants 0, 1, 2... do not repeat each other while
 * the document has material left.
 */
#ifndef QGEN_OFFLINE_H
#define QGEN_OFFLINE_H

#include <stddef.h>

#include "types.h"

typedef struct qgen_offline_req {
	int             count; /* how many to make (1..QGEN_MAX_COUNT) */
	unsigned        types; /* QGEN_TYPE_MASK bits: mcq, open or both (then about half each) */
	qgen_difficulty difficulty;
	const char     *topic;   /* NULL or "" for none */
	int             variant; /* 0 first; top-up rounds ask for 1, 2, ... */
} qgen_offline_req;

/*
 * Appends up to req->count questions made from the chunks to out (each with the page of the
 * sentence it came from, difficulty stamped). Fewer (possibly none) when the text has too little
 * material: the caller decides whether that is a failure. CM_EINVAL on bad arguments, CM_ENOMEM.
 */
CM_MUSTCHECK cm_err qgen_offline_generate(const qgen_chunk *chunks, size_t nchunks,
                                          const qgen_offline_req *req, qgen_qlist *out);

/* Called after each round of qgen_offline_fill with the questions chosen so far. */
typedef void (*qgen_offline_progress_fn)(void *arg, size_t chosen);

/*
 * The offline provider's job: fills chosen (it may already hold questions) up to req->count,
 * the set's size, in rounds. Round r asks for req->count again with variant r (req->variant is
 * ignored), so every round reads the same visiting order past the earlier rounds' slices and
 * never asks again about their sentences; what passes the checks a model's questions pass
 * (qgen_check, over the whole range) and is not a duplicate (qgen_select) is added. Stops when
 * chosen is full, after max_rounds, or when a round adds nothing (the text has no more
 * material). The distractors of the questions already in chosen count toward the fifth of the
 * set each may fill. progress may be NULL.
 */
void qgen_offline_fill(const qgen_chunk *chunks, size_t nchunks, const qgen_offline_req *req,
                       int max_rounds, qgen_qlist *chosen, qgen_offline_progress_fn progress,
                       void *arg);

#endif
