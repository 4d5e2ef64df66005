/*
 * llm_json.c - finding the JSON object in what a model wrote.
 *
 * DESIGN. Models wrap JSON in fences and prose, and prose may contain braces of its own. Rather
 * than parse fences, scan. A candidate is a '{' followed (after white space) by '"' or '}', as
 * every JSON object starts; prose braces ("{as requested}", "use { to open") are not candidates.
 * From each candidate, left to right, find the matching '}' by counting depth outside JSON strings
 * ('"' toggles, '\' skips the next byte inside a string). A balanced span is handed to jansson;
 * the first one that is a valid object is the answer, which makes the outermost object win over
 * the objects nested in it. A balanced span that fails to parse is skipped as a whole, so an
 * invalid outer object never yields one of its inner objects; a candidate that never balances is
 * a truncated answer and ends the search (CM_EPROTO), for the same reason. Candidates are capped,
 * so hostile text costs O(64 n).
 */
#include <string.h>

#include <jansson.h>

#include "cm/llm.h"

#define CM_LLM_JSON_MAX_STARTS 64

/* The index just past the '}' matching text[from] == '{', or 0 when it never balances. */
static size_t
match_brace(const char *text, size_t len, size_t from)
{
	size_t depth = 0;
	bool   in_str = false;

	for (size_t i = from; i < len; i++) {
		char c = text[i];

		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '{') {
			depth++;
		} else if (c == '}') {
			if (--depth == 0)
				return i + 1;
		}
	}
	return 0;
}

/* '{' at text[i] followed by white space and then '"' or '}'. */
static bool
candidate(const char *text, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		char c = text[i];
		if (c == '"' || c == '}')
			return true;
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return false;
	}
	return false;
}

static bool
valid_object(const char *p, size_t n)
{
	json_error_t jerr;
	json_t      *j = json_loadb(p, n, 0, &jerr);
	bool         ok = j != NULL && json_is_object(j);

	json_decref(j);
	return ok;
}

cm_err
cm_llm_extract_json(const char *text, size_t len, const char **start, size_t *olen)
{
	cm_err err = CM_EPROTO;
	size_t i = 0;
	int    starts = 0;

	*start = NULL;
	*olen = 0;
	if (text == NULL)
		goto out;
	while (i < len && starts < CM_LLM_JSON_MAX_STARTS) {
		const char *open = memchr(text + i, '{', len - i);
		size_t      from, end;

		if (open == NULL)
			break;
		from = (size_t)(open - text);
		if (!candidate(text, len, from)) {
			i = from + 1;
			continue;
		}
		starts++;
		if ((end = match_brace(text, len, from)) == 0)
			goto out; /* truncated: nothing inside it may stand for the whole */
		if (valid_object(text + from, end - from)) {
			*start = text + from;
			*olen = end - from;
			err = CM_OK;
			goto out;
		}
		i = end; /* balanced but not JSON: skip all of it */
	}
out:
	return err;
}
