/*
 * offline.h - the answer without a model (no LLM_BASE_URL): the passages that best match the
 * question, quoted with their pages, and a sentence saying that this is what it is.
 *
 * Each passage's best sentence is the one sharing the most words (4+ bytes, case-insensitive)
 * with the question. The CHAT_OFFLINE_QUOTES passages with the best such sentences (passages
 * sharing no word are left out, unless no passage shares one: then the search's first ones)
 * are quoted from that sentence on, up to CHAT_OFFLINE_QUOTE bytes, whitespace collapsed, each
 * followed by "[p. N]". When no passage matched the question (none found, or only the
 * document's first pages), it says so.
 */
#ifndef CHAT_OFFLINE_H
#define CHAT_OFFLINE_H

#include "cm/buf.h"
#include "cm/err.h"
#include "passages.h"

#define CHAT_OFFLINE_QUOTES 3
#define CHAT_OFFLINE_QUOTE 320

/* The first sentence of every offline answer, and of the one that found nothing. */
#define CHAT_OFFLINE_INTRO                                                                         \
	"No language model is configured, so this answer only quotes the passages of the "         \
	"document "                                                                                \
	"that best match your question:"
#define CHAT_OFFLINE_NONE                                                                          \
	"No language model is configured, and no passage of the document matches the words of "    \
	"your "                                                                                    \
	"question. Try other words, or the terms the document itself uses."

CM_MUSTCHECK cm_err chat_offline_answer(const chat_passages *ps, const char *question, cm_buf *out);

#endif
