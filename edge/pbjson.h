/*
 * pbjson.h - JSON <-> protobuf through protobuf-c descriptors (the edge's default translator).
 *
 * JSON field names are the proto field names (snake_case). From JSON: a field of the wrong JSON
 * type, an integer out of range, an unknown enum name, or nesting deeper than CM_MAX_JSON_DEPTH is
 * an error whose text names the field; unknown JSON members are ignored (clients may send more).
 * Everything the message points to is allocated in the caller's arena: never free it otherwise.
 * To JSON: every field is written (proto3 defaults included) except unset oneof members and bytes;
 * enums are written as their lower-case names.
 */
#ifndef EDGE_PBJSON_H
#define EDGE_PBJSON_H

#include <stddef.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "cm/arena.h"
#include "cm/err.h"

/* obj may be NULL (empty message). On error, `why` gets a message for the client. */
CM_MUSTCHECK cm_err edge_json_to_pb(const ProtobufCMessageDescriptor *d, const json_t *obj,
                                    cm_arena *arena, ProtobufCMessage **out, char *why,
                                    size_t whylen);

/* A new JSON object (caller decrefs), NULL on allocation failure. */
json_t *edge_pb_to_json(const ProtobufCMessage *m);

#endif
