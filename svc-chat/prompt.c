/*
 * prompt.c - the model's messages for one question (see prompt.h).
 *
 * DESIGN: the system text is a constant; every other message is copied into memory owned by
 * the prompt, so the rows and passages it came from may be freed first. History is chosen from
 * the end: the newest complete pairs, up to max_turns, kept in their order.
 */
#include <stdlib.h>
#include <string.h>

#include "prompt.h"

static const char system_text[] =
    "You answer a student's questions about one document. You are given passages from the "
    "document; each passage starts with its page as [p. N].\n"
    "Rules:\n"
    "- Use only the passages. Do not use outside knowledge and do not guess.\n"
    "- After every statement, cite the page it comes from as [p. N] (for example: The cell "
    "membrane controls what enters the cell [p. 4].). Quote the passage's own words where it "
    "helps.\n"
    "- If the passages do not contain the answer, reply exactly: \"" CHAT_NOT_FOUND_TEXT "\"\n"
    "- Answer in the language of the question, briefly, in Markdown.";

/* A malloc'd copy of s clipped to max bytes (0: no clip) at a character boundary. */
static char *
clip_dup(const char *s, size_t max)
{
	size_t n = strlen(s);
	char  *c;

	if (max > 0 && n > max)
		n = chat_utf8_floor(s, max);
	if ((c = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(c, s, n);
	c[n] = '\0';
	return c;
}

static bool
forged_line(const char *line, size_t n)
{
	return (n >= 3 && strncmp(line, "[p.", 3) == 0) ||
	       (n >= 9 && strncmp(line, "PASSAGES:", 9) == 0) ||
	       (n >= 9 && strncmp(line, "QUESTION:", 9) == 0);
}

/* Appends text, giving a leading space to lines that would read as structure. */
static cm_err
append_text(cm_buf *b, const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	cm_err      err = CM_OK;

	while (p < end && err == CM_OK) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t      n = nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		if (forged_line(p, n))
			err = cm_buf_append(b, " ", 1);
		if (err == CM_OK)
			err = cm_buf_append(b, p, n);
		p += n;
	}
	return err;
}

static cm_err
question_text(const chat_passages *ps, const char *question, char **out)
{
	cm_buf b;
	cm_err err = CM_OK;
	size_t len = 0;

	*out = NULL;
	cm_buf_init(&b, ps->budget + 4096 + strlen(question) * 2);
	if (ps->from_start)
		err = cm_buf_appends(&b, "No passage matched the question's words; these are the "
		                         "document's first pages.\n");
	if (err == CM_OK)
		err = cm_buf_appends(&b, "PASSAGES:\n");
	if (err == CM_OK && ps->n == 0)
		err = cm_buf_appends(&b, "(none: the document has no text here)\n");
	for (int i = 0; i < ps->n && err == CM_OK; i++) {
		if ((err = cm_buf_printf(&b, "[p. %d] ", ps->v[i].page)) == CM_OK &&
		    (err = append_text(&b, ps->v[i].text, ps->v[i].len)) == CM_OK)
			err = cm_buf_appends(&b, "\n\n");
	}
	if (err == CM_OK)
		err = cm_buf_appends(&b, "QUESTION: ");
	if (err == CM_OK)
		err = append_text(&b, question, strlen(question));
	if (err == CM_OK)
		err = cm_buf_take(&b, out, &len);
	cm_buf_fini(&b);
	return err;
}

cm_err
chat_prompt_build(chat_prompt *p, const chat_hist *hist, size_t nhist, int max_turns,
                  const chat_passages *ps, const char *question)
{
	size_t keep[2 * 50];
	int    npairs = 0;
	cm_err err = CM_ENOMEM;

	memset(p, 0, sizeof(*p));
	if (max_turns > 50)
		max_turns = 50;
	/* newest pairs first, from the end: a user message directly followed by a complete answer
	 */
	for (size_t i = nhist; i >= 2 && npairs < max_turns; i--) {
		const chat_hist *u = &hist[i - 2], *a = &hist[i - 1];
		if (strcmp(u->role, "user") == 0 && strcmp(a->role, "assistant") == 0 &&
		    a->complete) {
			keep[2 * npairs] = i - 1;
			keep[2 * npairs + 1] = i - 2;
			npairs++;
			i--; /* both used */
		}
	}
	p->msgs[p->n].role = "system";
	p->msgs[p->n++].content = system_text;
	for (int k = 2 * npairs - 1; k >= 0; k--) { /* back in chat order */
		const chat_hist *h = &hist[keep[k]];
		if ((p->owned[p->n] = clip_dup(h->content, CHAT_HISTORY_CLIP)) == NULL)
			goto out;
		p->msgs[p->n].role = h->role;
		p->msgs[p->n].content = p->owned[p->n];
		p->n++;
	}
	if ((err = question_text(ps, question, &p->owned[p->n])) != CM_OK)
		goto out;
	p->msgs[p->n].role = "user";
	p->msgs[p->n].content = p->owned[p->n];
	p->n++;
	err = CM_OK;
out:
	if (err != CM_OK)
		chat_prompt_fini(p);
	return err;
}

void
chat_prompt_fini(chat_prompt *p)
{
	for (size_t i = 0; i < CHAT_PROMPT_MAX_MSGS; i++)
		free(p->owned[i]);
	memset(p, 0, sizeof(*p));
}
