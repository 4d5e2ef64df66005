/*
 * services.h - the quality report's services, in its own process as the offline integration
 * test runs them: svc-pdf (its RPC server on an ipc:// socket of a private directory, so nothing
 * here takes a shared port) and svc-qgen twice, once without a model (the offline provider) and
 * once on the fake LLM, each on a schema of its own that is dropped at the end. A set is made as
 * a user's would be: the Create handler (which asks svc-pdf for the document), a runner, GetSet
 * with the answers. PostgreSQL and Redis are the caller's (DATABASE_URL, REDIS_PORT).
 */
#ifndef QR_SERVICES_H
#define QR_SERVICES_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/arena.h"
#include "proto/qgen.pb-c.h"

#define QR_PROVIDERS 2 /* [0] offline, [1] the fake LLM */

typedef struct qr_services qr_services;

/* A set as svc-qgen returned it; its memory is the arena's (qr_set_fini). */
typedef struct qr_set {
	cm_arena           arena;
	Qgen__QuestionSet *qs;       /* NULL when the job did not succeed */
	char               why[256]; /* then: why */
} qr_set;

/* Starts everything; fake_url is the fake LLM's base URL (".../v1"), NULL or "" for none (the
 * second provider is then left out). 0 on success, -1 with a message on stderr. */
int  qr_services_start(qr_services **out, const char *db_url, int redis_port, const char *fake_url);
void qr_services_stop(qr_services *s);

/* The name of provider i ("offline", "fake LLM"), NULL when it is not running. */
const char *qr_provider_name(const qr_services *s, int i);

/* Uploads PDF bytes as the report's user; fills the document id and its page texts (npages
 * strings the caller frees, each and the array). 0 on success, -1 with a message on stderr. */
int qr_upload(qr_services *s, const char *filename, const void *pdf, size_t len, char doc[40],
              char ***pages, int *npages);

/* Makes a set of count questions (mcq only, or mcq and open) on doc with provider i and reads
 * it back. The set is always filled (qs NULL and why set when the job failed); free with
 * qr_set_fini. */
void qr_make_set(qr_services *s, int i, const char *doc, int count, bool mixed, qr_set *out);
void qr_set_fini(qr_set *set);

#endif
