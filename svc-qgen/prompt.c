/*
 * prompt.c - prompt text for one generation call (prompt.h).
 *
 * The rules in the system message are the ones quality.c enforces, so a good model rarely
 * has a question rejected; the parser stays lenient about field names anyway.
 */
#include <string.h>

#include "prompt.h"

static const char system_prompt[] =
    "You write quiz questions for students from a passage of their course document.\n"
    "Answer with one JSON object and nothing else: {\"questions\":[...]}.\n"
    "Multiple choice (TYPE: mcq): {\"type\":\"mcq\",\"question\":str,\"options\":[4 strings],"
    "\"answer_index\":0-3,\"explanation\":str,\"page\":int}. Exactly four distinct options, one "
    "correct; no letter prefixes; no \"all/none of the above\".\n"
    "Open (TYPE: open): {\"type\":\"open\",\"question\":str,\"answer\":str (a model answer),"
    "\"explanation\":str,\"page\":int}.\n"
    "Every question must be answerable from the passage alone, self-contained, and different "
    "from the others. Use the PAGE given unless the passage shows another page. Write COUNT "
    "questions. With a TOPIC, ask about that topic. DIFFICULTY: easy recalls facts, medium "
    "needs understanding, hard needs reasoning across the passage. VARIANT n > 0 means earlier "
    "variants were already asked: choose other facts.";

const char *
qgen_prompt_system(void)
{
	return system_prompt;
}

cm_err
qgen_prompt_user(const qgen_prompt_req *req, cm_buf *out)
{
	cm_err err;

	if ((err =
	         cm_buf_printf(out, "COUNT: %d\nTYPE: %s\nPAGE: %d\nVARIANT: %d\nDIFFICULTY: %s\n",
	                       req->count, qgen_type_name(req->type), req->chunk->page_first,
	                       req->variant, qgen_difficulty_name(req->difficulty))) != CM_OK)
		return err;
	if (req->topic != NULL && req->topic[0] != '\0') {
		/* One line: a newline in the topic must not forge another directive. */
		if ((err = cm_buf_appends(out, "TOPIC: ")) != CM_OK)
			return err;
		for (const char *p = req->topic; *p != '\0'; p++) {
			char c = (*p == '\n' || *p == '\r') ? ' ' : *p;
			if ((err = cm_buf_append(out, &c, 1)) != CM_OK)
				return err;
		}
		if ((err = cm_buf_appends(out, "\n")) != CM_OK)
			return err;
	}
	if ((err = cm_buf_appends(out, "TEXT:\n")) != CM_OK)
		return err;
	return cm_buf_append(out, req->chunk->text, req->chunk->len);
}

int
qgen_prompt_max_tokens(int n, qgen_type t)
{
	/* About 120 tokens per mcq and 200 per open question, plus the wrapper. */
	return 64 + n * (t == QGEN_OPEN ? 200 : 120) * 2;
}
