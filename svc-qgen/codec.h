/*
 * codec.h - plain questions (types.h) to and from the packed qgen.QuestionList kept in
 * PostgreSQL (sets, batches) and Redis (the cache).
 */
#ifndef QGEN_CODEC_H
#define QGEN_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

/* Packs l into a malloc'd buffer. assign_ids gives every question a new UUID (a finished set);
 * batches need none. */
CM_MUSTCHECK cm_err qgen_pack_questions(const qgen_qlist *l, bool assign_ids, uint8_t **out,
                                        size_t *len);
/* Appends the questions of a packed list to out. CM_EPROTO when the bytes are not one. */
CM_MUSTCHECK cm_err qgen_unpack_questions(const uint8_t *buf, size_t len, qgen_qlist *out);

#endif
