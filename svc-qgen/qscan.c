/*
 * qscan.c - the questions of a streamed answer as they arrive (qscan.h).
 *
 * DESIGN. A byte-at-a-time state machine, so a delta may end anywhere: inside a string, after
 * a backslash, between the two bytes of "{\"". Its states follow the answer: prose before the
 * object, a '{' that may open it, the root object (reading its root-level keys), the questions
 * array between elements, inside an element (kept, or skipped when too large), and done. Only
 * an element's bytes are kept, in a capped buffer; everything else is counted and dropped, so
 * memory stays at one question whatever the answer's length.
 */
#include <string.h>

#include "qscan.h"

enum {
	QS_PROSE = 0, /* before the root object */
	QS_OPEN,      /* a '{' that opens the root when a '"' follows */
	QS_ROOT,      /* inside the root object, outside the questions array */
	QS_ARRAY,     /* inside the questions array, between elements */
	QS_ELEM,      /* inside an element object, keeping its bytes */
	QS_SKIP,      /* inside an element not kept (not an object, or too large) */
	QS_DONE,      /* the array closed */
};

void
qgen_qscan_init(qgen_qscan *s, qgen_qscan_fn fn, void *arg)
{
	memset(s, 0, sizeof(*s));
	s->fn = fn;
	s->arg = arg;
	cm_buf_init(&s->obj, QGEN_QSCAN_MAX_OBJ);
}

void
qgen_qscan_fini(qgen_qscan *s)
{
	cm_buf_fini(&s->obj);
}

bool
qgen_qscan_done(const qgen_qscan *s)
{
	return s->state == QS_DONE;
}

static bool
space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Inside a string: true while it goes on after c. */
static bool
string_byte(qgen_qscan *s, char c)
{
	if (s->esc)
		s->esc = false;
	else if (c == '\\')
		s->esc = true;
	else if (c == '"')
		s->in_str = false;
	return s->in_str;
}

static void
root_byte(qgen_qscan *s, char c)
{
	if (s->in_str) {
		bool on = string_byte(s, c);
		if (s->depth != 1)
			return;
		if (on) {
			if (s->key_len < sizeof(s->key))
				s->key[s->key_len] = c;
			s->key_len++;
		} else {
			s->key_hit = s->key_len == 9 && memcmp(s->key, "questions", 9) == 0;
		}
		return;
	}
	if (space(c))
		return;
	if (c == ':' && s->depth == 1) {
		s->want_arr = s->key_hit;
		s->key_hit = false;
		return;
	}
	if (c == '[' && s->depth == 1 && s->want_arr) {
		s->state = QS_ARRAY;
		s->depth = 0;
		return;
	}
	s->want_arr = s->key_hit = false;
	if (c == '"') {
		s->in_str = true;
		s->key_len = 0;
	} else if (c == '{' || c == '[') {
		s->depth++;
	} else if (c == '}' || c == ']') {
		if (--s->depth <= 0) { /* a root object without questions: look for another */
			s->state = QS_PROSE;
			s->depth = 0;
		}
	}
}

static void
array_byte(qgen_qscan *s, char c)
{
	if (s->in_str) { /* a string element: skipped */
		(void)string_byte(s, c);
		return;
	}
	if (c == '{') {
		cm_buf_reset(&s->obj);
		s->state = cm_buf_append(&s->obj, &c, 1) == CM_OK ? QS_ELEM : QS_SKIP;
		s->depth = 1;
	} else if (c == '[') {
		s->state = QS_SKIP;
		s->depth = 1;
	} else if (c == '"') {
		s->in_str = true;
	} else if (c == ']' || c == '}') {
		s->state = QS_DONE;
	}
}

/* Inside an element: true when c closed it. */
static bool
elem_byte(qgen_qscan *s, char c)
{
	if (s->state == QS_ELEM && cm_buf_append(&s->obj, &c, 1) != CM_OK) {
		s->skipped++;
		s->state = QS_SKIP;
	}
	if (s->in_str) {
		(void)string_byte(s, c);
		return false;
	}
	if (c == '"')
		s->in_str = true;
	else if (c == '{' || c == '[')
		s->depth++;
	else if (c == '}' || c == ']')
		return --s->depth == 0;
	return false;
}

bool
qgen_qscan_feed(qgen_qscan *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n && !s->stopped; i++) {
		char c = p[i];

		s->fed++;
		switch (s->state) {
		case QS_PROSE:
			if (c == '{')
				s->state = QS_OPEN;
			break;
		case QS_OPEN:
			if (c == '"') {
				s->state = QS_ROOT;
				s->depth = 1;
				s->in_str = true;
				s->esc = false;
				s->key_len = 0;
				s->key_hit = s->want_arr = false;
			} else if (c != '{' && !space(c)) {
				s->state = QS_PROSE;
			}
			break;
		case QS_ROOT:
			root_byte(s, c);
			break;
		case QS_ARRAY:
			array_byte(s, c);
			break;
		case QS_ELEM:
		case QS_SKIP:
			if (elem_byte(s, c)) {
				bool keep = s->state == QS_ELEM && c == '}'; /* not {...] */

				s->state = QS_ARRAY;
				if (keep) {
					s->emitted++;
					s->last_end = s->fed;
					if (!s->fn(s->arg, s->obj.data, s->obj.len))
						s->stopped = true;
				}
			}
			break;
		default:
			return !s->stopped;
		}
	}
	return !s->stopped;
}
