/*
 * grade.h - the model calls of grading: one batch of open answers (with bounded retries of the
 * answers a reply left ungraded), and an attempt's overall feedback.
 *
 * Thread-safe (the LLM client is); runs on the runner's call threads, never touches the
 * database. The LLM client has already retried 429s and 5xx when a call returns, so a call
 * that fails is not made again here; what is asked again is an answer the model's reply
 * missed, scored out of range or gave without feedback, and a reply that was not JSON at all -
 * at most EVAL_RETRIES more calls per batch, each for exactly the answers still ungraded.
 * Every grade then passes the guard (guard.h).
 */
#ifndef EVAL_GRADE_H
#define EVAL_GRADE_H

#include <stddef.h>

#include "parse.h"
#include "prompt.h"
#include "server.h"

/* Grades items[0..n) (n <= 10) with the model; out[i] (zeroed by the caller) is item i's
 * grade or, when !ok, why it could not be graded. *calls receives the calls made. */
void eval_grade_batch(eval_service *s, eval_strictness st, const eval_item *const *items, size_t n,
                      eval_parsed *out, int *calls);

/* Writes the overall part with one call (one more when the reply is unusable). CM_OK with *out
 * filled; otherwise why says what went wrong (the caller falls back to the summary). */
CM_MUSTCHECK cm_err eval_grade_overall(eval_service *s, const char *topic, int score, int max,
                                       const eval_overall_item *items, size_t n, eval_overall *out,
                                       char *why, size_t whylen);

#endif
