/*
 * routes_eval.h - adapters of the grading routes (routes_eval.c).
 */
#ifndef EDGE_ROUTES_EVAL_H
#define EDGE_ROUTES_EVAL_H

#include "edge.h"

/* v1: POST /api/v1/question-sets/{id}/attempts, GET /api/v1/attempts/{id}. */
void edge_start_attempt_create(edge_req *r);
void edge_reply_attempt_create(edge_req *r, cm_rpc_result *res);
void edge_start_attempt_get(edge_req *r);
void edge_reply_attempt_get(edge_req *r, cm_rpc_result *res);

/* legacy: POST /api/chat/evaluate-quiz and /api/chat/evaluate-answer (one reply adapter). */
void edge_start_legacy_evaluate_quiz(edge_req *r);
void edge_start_legacy_evaluate_answer(edge_req *r);
void edge_reply_legacy_evaluate(edge_req *r, cm_rpc_result *res);

/* GET /api/v1/jobs/{id} for a job svc-qgen does not know: asks svc-eval (eval.Job is
 * wire-compatible with qgen.Job) and replies with edge_reply_job. False when it was not tried
 * (already tried, or svc-eval not configured): the caller answers. */
bool edge_eval_job_lookup(edge_req *r);

#endif
