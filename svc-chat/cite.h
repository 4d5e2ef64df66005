/*
 * cite.h - page citations in a model's answer.
 *
 * The prompt asks the model to cite each statement as [p. N]. Models vary the form, so a marker
 * is, case-insensitively: an opening '[' or '(', a label ("p", "pp", "page", "pages", with or
 * without '.'), then page numbers separated by ',', ';', '&' or "and" (each optionally with its
 * own label), where a number may be a range "a-b" (hyphen, en or em dash; at most
 * CHAT_CITE_RANGE pages long, else its two ends), and the matching closing bracket. "[p. 3]",
 * "(pp. 4-5)", "[pages 2, 7 and 9]", "[p.3; p.8]" are markers; "[3]", "[see p. 3]" and
 * "(page three)" are not.
 *
 * The text is outside bytes (a model's output): the parser reads exactly len bytes, never
 * needs a NUL, and runs in linear time. Fuzzed by test/fuzz/fuzz_chat_citations.c.
 */
#ifndef CHAT_CITE_H
#define CHAT_CITE_H

#include <stddef.h>

#define CHAT_CITE_RANGE 20 /* pages a range may span */

/* The pages cited in text that exist in a document of npages pages (1..npages), ascending,
 * each once, at most cap of them (the smallest); returns how many were written to out. */
int chat_cite_parse(const char *text, size_t len, int npages, int *out, int cap);

#endif
