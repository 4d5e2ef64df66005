/*
 * prompt.h - the messages sent to the model for one question.
 *
 *   system     what the assistant does: answer only from the passages, cite each statement's
 *              page as [p. N], and say CHAT_NOT_FOUND_TEXT when the passages do not hold the
 *              answer instead of inventing one;
 *   user/assistant  the earlier turns of the chat (a question with its complete answer; a
 *              question whose answer is incomplete is left out), each clipped to
 *              CHAT_HISTORY_CLIP bytes;
 *   user       the passages, each on a line starting "[p. N] ", then "QUESTION: " and the question
 *              (the convention test/fakellm answers to).
 * Document text cannot forge the structure: a passage line that begins like a marker line
 * ("[p.", "PASSAGES:", "QUESTION:") gets a leading space.
 */
#ifndef CHAT_PROMPT_H
#define CHAT_PROMPT_H

#include <stddef.h>

#include "cm/buf.h"
#include "cm/err.h"
#include "cm/llm.h"
#include "passages.h"

#define CHAT_PROMPT_VERSION 1
/* What the model is told to answer when the passages do not hold the answer. */
#define CHAT_NOT_FOUND_TEXT "I could not find the answer in the document."

typedef struct chat_hist {
	const char *role; /* "user" | "assistant" */
	const char *content;
	int         complete; /* assistant: 1 when its answer is complete */
} chat_hist;

#define CHAT_PROMPT_MAX_MSGS                                                                       \
	(2 + 2 * 50) /* system + history (CHAT_HISTORY_TURNS <= 50) + question */

typedef struct chat_prompt {
	cm_llm_msg msgs[CHAT_PROMPT_MAX_MSGS];
	size_t     n;
	char      *owned[CHAT_PROMPT_MAX_MSGS]; /* texts built here, freed by fini */
} chat_prompt;

/* Builds the messages from the earlier messages of the chat (oldest first; at most max_turns
 * question/answer pairs are kept, the latest), the passages and the question. */
CM_MUSTCHECK cm_err chat_prompt_build(chat_prompt *p, const chat_hist *hist, size_t nhist,
                                      int max_turns, const chat_passages *ps, const char *question);
void                chat_prompt_fini(chat_prompt *p);

#endif
