/*
 * pbjson.c - JSON <-> protobuf-c messages, driven by the message descriptors.
 *
 * DESIGN. One recursive walk over the descriptor's fields in each direction. Scalars are stored
 * at field->offset; repeated fields keep their count (size_t) at quantifier_offset and a pointer
 * to an element array at offset; a oneof member stores its case (the field id) at
 * quantifier_offset. Everything built from JSON is allocated in the request's arena, so a
 * half-built message on an error path needs no cleanup.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cm/limits.h"
#include "pbjson.h"

#define MEMBER(msg, off) ((void *)((char *)(msg) + (off)))
#define CMEMBER(msg, off) ((const void *)((const char *)(msg) + (off)))

static size_t
elem_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

static cm_err from_json_msg(const ProtobufCMessageDescriptor *d, const json_t *obj, cm_arena *arena,
                            int depth, ProtobufCMessage **out, char *why, size_t whylen);

/* Stores one JSON value into `slot` according to the field's type. */
static cm_err
scalar_from_json(const ProtobufCFieldDescriptor *f, const json_t *v, cm_arena *arena, int depth,
                 void *slot, char *why, size_t whylen)
{
	json_int_t i;

	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: {
		char *s;
		if (!json_is_string(v))
			goto wrong_type;
		if ((s = cm_arena_strndup(arena, json_string_value(v), json_string_length(v))) ==
		    NULL)
			return CM_ENOMEM;
		if (strlen(s) != json_string_length(v)) {
			snprintf(why, whylen, "field '%s' must not contain NUL characters",
			         f->name);
			return CM_EINVAL;
		}
		*(char **)slot = s;
		return CM_OK;
	}
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_is_boolean(v))
			goto wrong_type;
		*(protobuf_c_boolean *)slot = json_is_true(v);
		return CM_OK;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (!json_is_integer(v))
			goto wrong_type;
		i = json_integer_value(v);
		if (i < INT32_MIN || i > INT32_MAX)
			goto range;
		*(int32_t *)slot = (int32_t)i;
		return CM_OK;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (!json_is_integer(v))
			goto wrong_type;
		i = json_integer_value(v);
		if (i < 0 || i > (json_int_t)UINT32_MAX)
			goto range;
		*(uint32_t *)slot = (uint32_t)i;
		return CM_OK;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (!json_is_integer(v))
			goto wrong_type;
		*(int64_t *)slot = (int64_t)json_integer_value(v);
		return CM_OK;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (!json_is_integer(v))
			goto wrong_type;
		if ((i = json_integer_value(v)) < 0)
			goto range;
		*(uint64_t *)slot = (uint64_t)i;
		return CM_OK;
	case PROTOBUF_C_TYPE_FLOAT:
		if (!json_is_number(v))
			goto wrong_type;
		*(float *)slot = (float)json_number_value(v);
		return CM_OK;
	case PROTOBUF_C_TYPE_DOUBLE:
		if (!json_is_number(v))
			goto wrong_type;
		*(double *)slot = json_number_value(v);
		return CM_OK;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->descriptor;
		if (json_is_string(v)) {
			const char *name = json_string_value(v);
			for (unsigned k = 0; k < ed->n_values; k++) {
				if (strcasecmp(ed->values[k].name, name) == 0) {
					*(int *)slot = ed->values[k].value;
					return CM_OK;
				}
			}
		}
		snprintf(why, whylen, "field '%s' has an unknown value", f->name);
		return CM_EINVAL;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		if (!json_is_object(v))
			goto wrong_type;
		return from_json_msg(f->descriptor, v, arena, depth + 1, (ProtobufCMessage **)slot,
		                     why, whylen);
	case PROTOBUF_C_TYPE_BYTES:
		snprintf(why, whylen, "field '%s' cannot be set from JSON", f->name);
		return CM_EINVAL;
	}
	return CM_EINTERNAL;

wrong_type:
	snprintf(why, whylen, "field '%s' has the wrong type", f->name);
	return CM_EINVAL;
range:
	snprintf(why, whylen, "field '%s' is out of range", f->name);
	return CM_EINVAL;
}

static cm_err
from_json_msg(const ProtobufCMessageDescriptor *d, const json_t *obj, cm_arena *arena, int depth,
              ProtobufCMessage **out, char *why, size_t whylen)
{
	ProtobufCMessage *m;
	cm_err            err;

	if (depth > CM_MAX_JSON_DEPTH) {
		snprintf(why, whylen, "JSON nested too deeply");
		return CM_EINVAL;
	}
	if ((m = cm_arena_alloc(arena, d->sizeof_message)) == NULL)
		return CM_ENOMEM;
	d->message_init(m);
	for (unsigned k = 0; obj != NULL && k < d->n_fields; k++) {
		const ProtobufCFieldDescriptor *f = &d->fields[k];
		const json_t                   *v = json_object_get(obj, f->name);

		if (v == NULL || json_is_null(v))
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = json_array_size(v), es = elem_size(f);
			void  *arr;
			if (!json_is_array(v)) {
				snprintf(why, whylen, "field '%s' must be an array", f->name);
				return CM_EINVAL;
			}
			if (n > 0 && (arr = cm_arena_alloc(arena, n * es)) == NULL)
				return CM_ENOMEM;
			for (size_t j = 0; j < n; j++) {
				err = scalar_from_json(f, json_array_get(v, j), arena, depth,
				                       (char *)arr + j * es, why, whylen);
				if (err != CM_OK)
					return err;
			}
			*(size_t *)MEMBER(m, f->quantifier_offset) = n;
			*(void **)MEMBER(m, f->offset) = n > 0 ? arr : NULL;
			continue;
		}
		if ((err = scalar_from_json(f, v, arena, depth, MEMBER(m, f->offset), why,
		                            whylen)) != CM_OK)
			return err;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
			*(uint32_t *)MEMBER(m, f->quantifier_offset) = f->id;
		else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0 &&
		         f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
			*(protobuf_c_boolean *)MEMBER(m, f->quantifier_offset) = 1;
	}
	*out = m;
	return CM_OK;
}

cm_err
edge_json_to_pb(const ProtobufCMessageDescriptor *d, const json_t *obj, cm_arena *arena,
                ProtobufCMessage **out, char *why, size_t whylen)
{
	why[0] = '\0';
	if (obj != NULL && !json_is_object(obj)) {
		snprintf(why, whylen, "request body must be a JSON object");
		return CM_EINVAL;
	}
	return from_json_msg(d, obj, arena, 0, out, why, whylen);
}

/* ---- protobuf -> JSON ---------------------------------------------------------------------- */

static json_t *
scalar_to_json(const ProtobufCFieldDescriptor *f, const void *slot)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_integer(*(const int32_t *)slot);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_integer(*(const uint32_t *)slot);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return json_integer(*(const int64_t *)slot);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return json_integer((json_int_t) * (const uint64_t *)slot);
	case PROTOBUF_C_TYPE_FLOAT:
		return json_real(*(const float *)slot);
	case PROTOBUF_C_TYPE_DOUBLE:
		return json_real(*(const double *)slot);
	case PROTOBUF_C_TYPE_BOOL:
		return json_boolean(*(const protobuf_c_boolean *)slot);
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)slot;
		return json_string(s != NULL ? s : "");
	}
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev =
		    protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)slot);
		char   lower[64];
		size_t i;
		if (ev == NULL)
			return json_integer(*(const int *)slot);
		for (i = 0; ev->name[i] != '\0' && i + 1 < sizeof(lower); i++)
			lower[i] = (char)((ev->name[i] >= 'A' && ev->name[i] <= 'Z')
			                      ? ev->name[i] - 'A' + 'a'
			                      : ev->name[i]);
		lower[i] = '\0';
		return json_string(lower);
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)slot;
		return sub != NULL ? edge_pb_to_json(sub) : json_null();
	}
	case PROTOBUF_C_TYPE_BYTES:
		return NULL;
	}
	return NULL;
}

json_t *
edge_pb_to_json(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	json_t                           *obj = json_object();

	if (obj == NULL)
		return NULL;
	for (unsigned k = 0; k < d->n_fields; k++) {
		const ProtobufCFieldDescriptor *f = &d->fields[k];
		json_t                         *v;

		if (f->type == PROTOBUF_C_TYPE_BYTES)
			continue;
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)CMEMBER(m, f->quantifier_offset) != f->id)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t      n = *(const size_t *)CMEMBER(m, f->quantifier_offset);
			const char *arr = *(char *const *)CMEMBER(m, f->offset);
			size_t      es = elem_size(f);
			if ((v = json_array()) == NULL)
				goto fail;
			for (size_t j = 0; j < n; j++) {
				json_t *e = scalar_to_json(f, arr + j * es);
				if (e == NULL || json_array_append_new(v, e) != 0) {
					json_decref(v);
					goto fail;
				}
			}
		} else if ((v = scalar_to_json(f, CMEMBER(m, f->offset))) == NULL) {
			goto fail;
		}
		if (json_object_set_new(obj, f->name, v) != 0)
			goto fail;
	}
	return obj;
fail:
	json_decref(obj);
	return NULL;
}
