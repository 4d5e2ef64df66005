/*
 * eval_driver.c - the grading benchmark's driver (bench/eval.sh runs it against the test
 * harness's stack): a class of S students submits a Q-question quiz (M multiple choice, O open)
 * to svc-eval at once over RPC, as the legacy evaluate-quiz route does (inline questions,
 * graded against each student's copy of the document); beside it, against the same fake LLM in
 * the same run, a baseline that grades as the old system did: one call per answer (multiple
 * choice included) in sequence, then one for the overall feedback, with at most B students
 * graded at once. Then a second class answers the same quiz with similar answers, for the
 * grade cache's hit rate.
 *
 * The quiz is made from the document's own sentences: a multiple-choice question blanks a key
 * word; an open question asks about a sentence, which is its reference answer. A student's
 * open answer is one of a few variants of the reference (whole, first part, last part, a bare
 * mention of the term) written their own way (case, punctuation, spacing, sometimes "I think"
 * before it), or now and then an answer of their own (words drawn from the document) - so
 * classes repeat each other the way real ones do, without copying.
 *
 * Everything is printed as "key: value" lines and one table; timings are measured, the fake's
 * modelled call durations come from its /_stats.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cm/buf.h"
#include "cm/rpc.h"
#include "cm/util.h"
#include "proto/eval.pb-c.h"
#include "proto/pdf.pb-c.h"

#define MAX_Q 64
#define MAX_STUDENTS 200
#define MAX_SENT 4000

typedef struct opts {
	const char *pdf, *pdf_url, *eval_url, *fake, *admin;
	int         students, mcq, open, c, old_inflight;
	double      ttft_ms, tps, scale;
} opts;

static opts o = {NULL,
                 "tcp://127.0.0.1:27102",
                 "tcp://127.0.0.1:27105,tcp://127.0.0.1:27115",
                 "http://127.0.0.1:28500",
                 "http://127.0.0.1:29105,http://127.0.0.1:29115",
                 25,
                 16,
                 4,
                 10,
                 5,
                 1000,
                 50,
                 0.1};

static cm_rpc_client *pdf_c, *eval_c;
static char           run_id[9];

/* ---- HTTP ---------------------------------------------------------------------------------- */

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	return cm_buf_append(arg, p, size * n) == CM_OK ? size * n : 0;
}

/* One request; returns the HTTP status (0 on a transport failure); body in out. */
static long
http(CURL *c, const char *method, const char *url, const char *body, cm_buf *out)
{
	long status = 0;

	cm_buf_reset(out);
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 600000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	if (strcmp(method, "POST") == 0) {
		struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body != NULL ? body : "{}");
		if (curl_easy_perform(c) == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		curl_slist_free_all(h);
		return status;
	}
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

static json_t *
fake_json(const char *method, const char *path, const char *body)
{
	CURL   *c = curl_easy_init();
	cm_buf  b;
	char    url[256];
	json_t *j = NULL;

	cm_buf_init(&b, 64u << 20);
	snprintf(url, sizeof(url), "%s%s", o.fake, path);
	if (http(c, method, url, body, &b) == 200)
		j = json_loadb(b.data, b.len, 0, NULL);
	curl_easy_cleanup(c);
	cm_buf_fini(&b);
	if (j == NULL) {
		fprintf(stderr, "eval bench: the fake refused %s %s\n", method, path);
		exit(1);
	}
	return j;
}

/* The sum over svc-eval's admin ports of one counter. */
static double
metric_sum(const char *name)
{
	CURL  *c = curl_easy_init();
	cm_buf b;
	double sum = 0;

	cm_buf_init(&b, 16u << 20);
	for (const char *u = o.admin; *u != '\0';) {
		size_t      n = strcspn(u, ",");
		char        url[256], key[128];
		const char *p;
		snprintf(url, sizeof(url), "%.*s/metrics", (int)n, u);
		snprintf(key, sizeof(key), "\n%s ", name);
		if (http(c, "GET", url, NULL, &b) == 200 && (p = strstr(b.data, key)) != NULL)
			sum += strtod(p + strlen(key), NULL);
		u += n;
		u += *u == ',';
	}
	curl_easy_cleanup(c);
	cm_buf_fini(&b);
	return sum;
}

/* ---- the quiz ------------------------------------------------------------------------------ */

typedef struct question {
	char  text[700];
	char  reference[600]; /* open: the sentence; mcq: the letter */
	char  term[64];
	char *opts[4];
	char  optbuf[4][80];
	bool  mcq;
	char  variants[4][600]; /* open answers: whole, first part, last part, a mention */
} question;

static question quiz[MAX_Q];
static int      nq;
static char    *sent[MAX_SENT];
static int      nsent;
static char    *terms[MAX_SENT];
static int      nterms;

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int
word_count(const char *s)
{
	int  n = 0;
	bool in = false;

	for (; *s != '\0'; s++) {
		bool w = !isspace((unsigned char)*s);
		n += w && !in;
		in = w;
	}
	return n;
}

/* Sentences of 10-35 words that are mostly letters. */
static void
collect_sentences(const char *text)
{
	const char *p = text;

	while (*p != '\0' && nsent < MAX_SENT) {
		const char *e = strstr(p, ". ");
		size_t      len = e != NULL ? (size_t)(e - p) + 1 : strlen(p);
		int         letters = 0, words;
		char       *s;

		if (len < 500 && (s = strndup(p, len)) != NULL) {
			for (char *q = s; *q != '\0'; q++) {
				if (*q == '\n' || *q == '\t' || *q == '"' || *q == '\\')
					*q = ' ';
				letters += isalpha((unsigned char)*q) != 0;
			}
			words = word_count(s);
			if (words >= 10 && words <= 35 && letters * 10 > (int)len * 7)
				sent[nsent++] = s;
			else
				free(s);
		}
		p += len;
		while (*p == ' ' || *p == '.')
			p++;
	}
}

/* The longest all-letter word (>= 6 letters) of s, lower case; false when none. */
static bool
key_term(const char *s, char *out, size_t outlen)
{
	size_t best = 0;

	out[0] = '\0';
	for (const char *p = s; *p != '\0';) {
		size_t n = 0;
		while (isalpha((unsigned char)p[n]))
			n++;
		if (n >= 6 && n > best && n < outlen) {
			best = n;
			for (size_t i = 0; i < n; i++)
				out[i] = (char)tolower((unsigned char)p[i]);
			out[n] = '\0';
		}
		p += n > 0 ? n : 1;
	}
	return best > 0;
}

/* The first or last `pct` percent of the words of s. */
static void
part(const char *s, int pct, bool last, char *out, size_t outlen)
{
	int         total = word_count(s), keep = total * pct / 100, seen = 0;
	const char *p = s, *start = s, *end = s + strlen(s);
	bool        in = false;

	for (; *p != '\0'; p++) {
		bool w = !isspace((unsigned char)*p);
		if (w && !in) {
			if (!last && seen == keep) {
				end = p;
				break;
			}
			if (last && seen == total - keep)
				start = p;
			seen++;
		}
		in = w;
	}
	snprintf(out, outlen, "%.*s", (int)(end - start), start);
}

static void
build_quiz(void)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	int      used[MAX_Q];

	for (int i = 0; i < nsent; i++) {
		char t[64];
		if (key_term(sent[i], t, sizeof(t)) && nterms < MAX_SENT)
			terms[nterms++] = strdup(t);
	}
	nq = 0;
	for (int k = 0; nq < o.mcq + o.open && k < 10000; k++) {
		int       i = (int)(rnd(&seed) % (uint64_t)nsent);
		question *q = &quiz[nq];
		bool      dup = false;

		for (int u = 0; u < nq; u++)
			dup = dup || used[u] == i;
		if (dup || !key_term(sent[i], q->term, sizeof(q->term)))
			continue;
		used[nq] = i;
		q->mcq = nq < o.mcq;
		char term[64]; /* a copy: snprintf must not read from the struct it writes */
		snprintf(term, sizeof(term), "%s", q->term);
		if (q->mcq) {
			int  right = nq % 4;
			char stem[500];
			/* Blank the term (case-insensitively, first occurrence). */
			snprintf(stem, sizeof(stem), "%s", sent[i]);
			for (char *p = stem; *p != '\0'; p++)
				if (strncasecmp(p, q->term, strlen(q->term)) == 0) {
					memset(p, '_', strlen(q->term));
					break;
				}
			snprintf(q->text, sizeof(q->text),
			         "Which word completes this sentence: \"%s\"", stem);
			for (int k2 = 0, filled = 0; filled < 4; k2++) {
				const char *t = filled == right
				                    ? q->term
				                    : terms[rnd(&seed) % (uint64_t)nterms];
				bool        same = false;
				for (int f = 0; f < filled; f++)
					same = same || strcmp(q->optbuf[f] + 3, t) == 0;
				if (filled != right && strcmp(t, q->term) == 0)
					same = true;
				if (same && k2 < 1000)
					continue;
				snprintf(q->optbuf[filled], sizeof(q->optbuf[filled]), "%c) %s",
				         'A' + filled, t);
				q->opts[filled] = q->optbuf[filled];
				filled++;
			}
			snprintf(q->reference, sizeof(q->reference), "%c", 'A' + right);
		} else {
			snprintf(q->text, sizeof(q->text),
			         "Explain what the document says about \"%s\" in the sentence that "
			         "mentions it.",
			         term);
			snprintf(q->reference, sizeof(q->reference), "%s", sent[i]);
			snprintf(q->variants[0], sizeof(q->variants[0]), "%s", sent[i]);
			part(sent[i], 60, false, q->variants[1], sizeof(q->variants[1]));
			part(sent[i], 60, true, q->variants[2], sizeof(q->variants[2]));
			snprintf(q->variants[3], sizeof(q->variants[3]), "It is about %s.", term);
		}
		nq++;
	}
}

/* A student's way of writing an answer: case, punctuation, spacing, "I think". */
static void
restyle(const char *in, uint64_t *s, char *out, size_t outlen)
{
	int    style = (int)(rnd(s) % 6);
	bool   think = rnd(s) % 5 == 0;
	size_t n = 0;

	if (think)
		n = (size_t)snprintf(out, outlen, "I think ");
	for (const char *p = in; *p != '\0' && n + 3 < outlen; p++) {
		char c = *p;
		if (style == 1)
			c = (char)tolower((unsigned char)c);
		else if (style == 2)
			c = (char)toupper((unsigned char)c);
		else if (style == 3 && ispunct((unsigned char)c))
			continue;
		out[n++] = c;
		if (style == 4 && c == ' ')
			out[n++] = ' ';
	}
	if (style == 5 && n + 2 < outlen)
		out[n++] = '!';
	out[n] = '\0';
}

/* Student `st` of class `cls`: answer to question k. */
static void
answer_of(int cls, int st, int k, char *out, size_t outlen)
{
	uint64_t s =
	    0x51ed2701u + (uint64_t)cls * 1000003u + (uint64_t)st * 7919u + (uint64_t)k * 104729u;
	const question *q = &quiz[k];

	for (int i = 0; i < 4; i++)
		rnd(&s);
	if (q->mcq) {
		int  right = q->reference[0] - 'A';
		int  pick = rnd(&s) % 10 < 7 ? right : (int)(rnd(&s) % 4);
		char letter = (char)('A' + pick);
		snprintf(out, outlen, rnd(&s) % 2 ? "%c" : " %c ",
		         rnd(&s) % 2 ? letter : tolower(letter));
		return;
	}
	int r = cls == 2 ? 0 : (int)(rnd(&s) % 100); /* class 3: nobody answers alike */
	if (r < 10) {                                /* an answer of their own */
		size_t n = 0;
		for (int w = 0; w < 9 && nterms > 0; w++)
			n += (size_t)snprintf(out + n, outlen - n, "%s%s", w > 0 ? " " : "",
			                      terms[rnd(&s) % (uint64_t)nterms]);
		return;
	}
	int v = r < 50 ? 0 : r < 75 ? 1 : r < 90 ? 2 : 3;
	restyle(q->variants[v], &s, out, outlen);
}

/* ---- ours: svc-eval ------------------------------------------------------------------------- */

typedef struct student {
	int     cls, idx;
	char    user[64];
	char    doc[40];
	char    status[16];
	int     score;
	int64_t ms;
	bool    ok;
} student;

static student class_of[3][MAX_STUDENTS]; /* realistic, similar, all unique */

static void
call_opts(cm_rpc_call_opts *co, const char *method, const char *user, int64_t ms)
{
	memset(co, 0, sizeof(*co));
	co->method = method;
	co->subject = user;
	co->deadline_ms = cm_now_ms() + ms;
}

static void
upload(student *st, const uint8_t *pdf, size_t len)
{
	Pdf__UploadRequest   rq = PDF__UPLOAD_REQUEST__INIT;
	Pdf__UploadResponse *rs = NULL;
	cm_rpc_call_opts     co;
	cm_rpc_result        res;

	rq.filename = (char *)"bench.pdf";
	rq.content.data = (uint8_t *)pdf;
	rq.content.len = len;
	call_opts(&co, "pdf.Upload", st->user, 120000);
	if (cm_rpc_call(pdf_c, &co, &rq.base, &pdf__upload_response__descriptor,
	                (ProtobufCMessage **)&rs, &res) != CM_OK) {
		fprintf(stderr, "eval bench: upload as %s: %s\n", st->user, res.message);
		exit(1);
	}
	snprintf(st->doc, sizeof(st->doc), "%s", rs->document->id);
	protobuf_c_message_free_unpacked(&rs->base, NULL);
	cm_rpc_result_fini(&res);
}

static void *
student_main(void *arg)
{
	student            *st = arg;
	Eval__SubmitRequest rq = EVAL__SUBMIT_REQUEST__INIT;
	Eval__InlineItem    items[MAX_Q], *ip[MAX_Q];
	char                ans[MAX_Q][700], qid[MAX_Q][16];
	cm_rpc_call_opts    co;
	cm_rpc_result       res;
	Eval__Attempt      *at = NULL;
	char                id[40];
	int64_t             t0 = cm_mono_ms();

	for (int k = 0; k < nq; k++) {
		eval__inline_item__init(&items[k]);
		snprintf(qid[k], sizeof(qid[k]), "%d", k + 1);
		answer_of(st->cls, st->idx, k, ans[k], sizeof(ans[k]));
		items[k].question_id = qid[k];
		items[k].question = quiz[k].text;
		items[k].user_answer = ans[k];
		items[k].correct_answer = quiz[k].reference;
		items[k].question_type = (char *)(quiz[k].mcq ? "mcq" : "open");
		items[k].n_options = quiz[k].mcq ? 4 : 0;
		items[k].options = quiz[k].mcq ? quiz[k].opts : NULL;
		ip[k] = &items[k];
	}
	rq.items = ip;
	rq.n_items = (size_t)nq;
	rq.document_id = st->doc;
	rq.strictness = (char *)"medium";
	rq.overall = true;
	call_opts(&co, "eval.Submit", st->user, 30000);
	if (cm_rpc_call(eval_c, &co, &rq.base, &eval__attempt__descriptor, (ProtobufCMessage **)&at,
	                &res) != CM_OK) {
		snprintf(st->status, sizeof(st->status), "submit %d", res.status);
		fprintf(stderr, "eval bench: submit as %s: %s\n", st->user, res.message);
		cm_rpc_result_fini(&res);
		return NULL;
	}
	cm_rpc_result_fini(&res);
	snprintf(id, sizeof(id), "%s", at->id);
	for (;;) {
		Eval__AttemptRef ref = EVAL__ATTEMPT_REF__INIT;
		if (strcmp(at->status, "queued") != 0 && strcmp(at->status, "running") != 0)
			break;
		protobuf_c_message_free_unpacked(&at->base, NULL);
		at = NULL;
		usleep(20000);
		ref.id = id;
		call_opts(&co, "eval.GetAttempt", st->user, 10000);
		if (cm_rpc_call(eval_c, &co, &ref.base, &eval__attempt__descriptor,
		                (ProtobufCMessage **)&at, &res) != CM_OK) {
			cm_rpc_result_fini(&res);
			snprintf(st->status, sizeof(st->status), "poll failed");
			return NULL;
		}
		cm_rpc_result_fini(&res);
		if (cm_mono_ms() - t0 > 900000) {
			snprintf(st->status, sizeof(st->status), "timeout");
			break;
		}
	}
	st->ms = cm_mono_ms() - t0;
	if (at != NULL) {
		snprintf(st->status, sizeof(st->status), "%s", at->status);
		st->score = at->score;
		st->ok = strcmp(at->status, "succeeded") == 0;
		protobuf_c_message_free_unpacked(&at->base, NULL);
	}
	return NULL;
}

/* One class at once; returns the wall time in ms. */
static int64_t
run_class(int cls)
{
	pthread_t t[MAX_STUDENTS];
	int64_t   t0 = cm_mono_ms();

	for (int i = 0; i < o.students; i++)
		pthread_create(&t[i], NULL, student_main, &class_of[cls][i]);
	for (int i = 0; i < o.students; i++)
		pthread_join(t[i], NULL);
	return cm_mono_ms() - t0;
}

/* ---- the baseline: one call per answer, in sequence, then the overall one ------------------ */

typedef struct baseline {
	pthread_mutex_t mu;
	int             next;
	int             failed;
} baseline;

static void
grade_prompt(const question *q, int k, const char *answer, cm_buf *out)
{
	json_t *items = json_array(), *data = json_object(), *it = json_object();
	char   *d;
	char    ref[700];

	if (q->mcq)
		snprintf(ref, sizeof(ref), "%s", q->opts[q->reference[0] - 'A']);
	else
		snprintf(ref, sizeof(ref), "%s", q->reference);
	json_object_set_new(it, "id", json_string("1"));
	json_object_set_new(it, "question", json_string(q->text));
	json_object_set_new(it, "reference", json_string(ref));
	json_object_set_new(it, "source", json_string(""));
	json_object_set_new(it, "answer", json_string(answer));
	json_array_append_new(items, it);
	json_object_set_new(data, "items", items);
	d = json_dumps(data, JSON_COMPACT);
	cm_buf_reset(out);
	(void)!cm_buf_printf(
	    out, "TASK: grade\nSTRICTNESS: medium\nITEMS: 1\nQuestion %d.\nDATA:\n%s\n", k + 1, d);
	free(d);
	json_decref(data);
}

/* A chat completion through the fake, waiting out 429s like a polite client. */
static bool
chat(CURL *c, const char *user, cm_buf *resp)
{
	json_t *body = json_pack("{s:s,s:{s:s},s:f,s:[{s:s,s:s},{s:s,s:s}]}", "model", "fake",
	                         "response_format", "type", "json_object", "temperature", 0.0,
	                         "messages", "role", "system", "content", "You grade answers.",
	                         "role", "user", "content", user);
	char   *b = json_dumps(body, JSON_COMPACT);
	char    url[256];
	long    st = 0;

	snprintf(url, sizeof(url), "%s/v1/chat/completions", o.fake);
	for (int tries = 0; tries < 1000; tries++) {
		if ((st = http(c, "POST", url, b, resp)) != 429)
			break;
		usleep(50000);
	}
	free(b);
	json_decref(body);
	return st == 200;
}

static void *
old_worker(void *arg)
{
	baseline *bl = arg;
	CURL     *c = curl_easy_init();
	cm_buf    user, resp;

	cm_buf_init(&user, 1u << 20);
	cm_buf_init(&resp, 16u << 20);
	for (;;) {
		int st;
		pthread_mutex_lock(&bl->mu);
		st = bl->next++;
		pthread_mutex_unlock(&bl->mu);
		if (st >= o.students)
			break;
		for (int k = 0; k < nq; k++) {
			char ans[700];
			answer_of(0, st, k, ans, sizeof(ans));
			grade_prompt(&quiz[k], k, ans, &user);
			if (!chat(c, user.data, &resp))
				__atomic_add_fetch(&bl->failed, 1, __ATOMIC_SEQ_CST);
		}
		cm_buf_reset(&user);
		(void)!cm_buf_printf(&user,
		                     "TASK: overall\nITEMS: %d\nSCORE: 0\nMAX: %d\nDATA:\n"
		                     "{\"topic\":\"\",\"items\":[]}\n",
		                     nq, 10 * nq);
		if (!chat(c, user.data, &resp))
			__atomic_add_fetch(&bl->failed, 1, __ATOMIC_SEQ_CST);
	}
	cm_buf_fini(&user);
	cm_buf_fini(&resp);
	curl_easy_cleanup(c);
	return NULL;
}

static int64_t
run_baseline(int *failed)
{
	baseline  bl = {PTHREAD_MUTEX_INITIALIZER, 0, 0};
	pthread_t t[64];
	int       n = o.old_inflight < 64 ? o.old_inflight : 64;
	int64_t   t0 = cm_mono_ms();

	for (int i = 0; i < n; i++)
		pthread_create(&t[i], NULL, old_worker, &bl);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	*failed = bl.failed;
	return cm_mono_ms() - t0;
}

/* ---- the bound's call times ------------------------------------------------------------------ */

/* Median of 3 of one call's wall time at the fake (nothing else running). */
static double
time_call(const char *user)
{
	CURL  *c = curl_easy_init();
	cm_buf resp;
	double t[3];

	cm_buf_init(&resp, 16u << 20);
	for (int i = 0; i < 3; i++) {
		int64_t t0 = cm_mono_ms();
		if (!chat(c, user, &resp)) {
			fprintf(stderr, "eval bench: a timing call failed\n");
			exit(1);
		}
		t[i] = (double)(cm_mono_ms() - t0) / 1000.0;
	}
	cm_buf_fini(&resp);
	curl_easy_cleanup(c);
	return t[0] < t[1] ? (t[1] < t[2]   ? t[1]
	                      : t[0] < t[2] ? t[2]
	                                    : t[0])
	                   : (t[0] < t[2]   ? t[0]
	                      : t[1] < t[2] ? t[2]
	                                    : t[1]);
}

/* L_grade: one call grading a student's open answers together (as svc-eval asks, up to 8);
 * L_overall: one overall-feedback call. */
static void
time_calls(double *l_grade, double *l_overall)
{
	json_t *items = json_array(), *data = json_object();
	cm_buf  user;
	char   *d;
	int     n = 0;

	cm_buf_init(&user, 1u << 20);
	for (int k = 0; k < nq && n < 8; k++) {
		if (quiz[k].mcq)
			continue;
		char id[16];
		snprintf(id, sizeof(id), "%d", k + 1);
		json_array_append_new(items,
		                      json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", id, "question",
		                                quiz[k].text, "reference", quiz[k].reference,
		                                "source", "", "answer", quiz[k].variants[1]));
		n++;
	}
	json_object_set_new(data, "items", items);
	d = json_dumps(data, JSON_COMPACT);
	(void)!cm_buf_printf(&user, "TASK: grade\nSTRICTNESS: medium\nITEMS: %d\nDATA:\n%s\n", n,
	                     d);
	*l_grade = time_call(user.data);
	cm_buf_reset(&user);
	(void)!cm_buf_printf(&user,
	                     "TASK: overall\nITEMS: %d\nSCORE: 100\nMAX: %d\nDATA:\n"
	                     "{\"topic\":\"\",\"items\":[]}\n",
	                     nq, 10 * nq);
	*l_overall = time_call(user.data);
	free(d);
	json_decref(data);
	cm_buf_fini(&user);
}

/* ---- figures -------------------------------------------------------------------------------- */

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

typedef struct calls {
	int    n;
	double median, sum, longest, shortest;
} calls;

static calls
fake_calls(void)
{
	json_t *j = fake_json("GET", "/_stats", NULL);
	json_t *cs = json_object_get(j, "call_seconds");
	calls   c = {(int)json_integer_value(json_object_get(j, "calls")), 0, 0, 0, 0};
	size_t  n = json_array_size(cs);
	double *v = calloc(n + 1, sizeof(double));

	for (size_t i = 0; i < n; i++) {
		v[i] = json_number_value(json_array_get(cs, i));
		c.sum += v[i];
		if (v[i] > c.longest)
			c.longest = v[i];
	}
	qsort(v, n, sizeof(double), cmp_d);
	c.shortest = n > 0 ? v[0] : 0;
	c.median = n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	free(v);
	json_decref(j);
	return c;
}

static void
reset_fake_stats(void)
{
	json_decref(fake_json("POST", "/_reset", "{}"));
}

static void
usage(void)
{
	fprintf(stderr, "usage: eval_bench --pdf FILE [--pdf-url U] [--eval-url U,U] [--admin U,U] "
	                "[--fake URL] [--students N] [--mcq N] [--open N] [--concurrency C] "
	                "[--old-inflight B] [--ttft-ms MS] [--tokens-per-s R] [--scale F]\n");
	exit(2);
}

static void
parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int64_t     n = 0;
		if (v == NULL)
			usage();
		i++;
		if (strcmp(a, "--pdf") == 0)
			o.pdf = v;
		else if (strcmp(a, "--pdf-url") == 0)
			o.pdf_url = v;
		else if (strcmp(a, "--eval-url") == 0)
			o.eval_url = v;
		else if (strcmp(a, "--admin") == 0)
			o.admin = v;
		else if (strcmp(a, "--fake") == 0)
			o.fake = v;
		else if (strcmp(a, "--ttft-ms") == 0)
			o.ttft_ms = strtod(v, NULL);
		else if (strcmp(a, "--tokens-per-s") == 0)
			o.tps = strtod(v, NULL);
		else if (strcmp(a, "--scale") == 0)
			o.scale = strtod(v, NULL);
		else if (cm_parse_i64(v, &n) && n > 0 && n <= MAX_STUDENTS) {
			if (strcmp(a, "--students") == 0)
				o.students = (int)n;
			else if (strcmp(a, "--mcq") == 0)
				o.mcq = (int)n;
			else if (strcmp(a, "--open") == 0)
				o.open = (int)n;
			else if (strcmp(a, "--concurrency") == 0)
				o.c = (int)n;
			else if (strcmp(a, "--old-inflight") == 0)
				o.old_inflight = (int)n;
			else
				usage();
		} else {
			usage();
		}
	}
	if (o.pdf == NULL || o.mcq + o.open > MAX_Q)
		usage();
}

int
main(int argc, char **argv)
{
	uint8_t *pdf;
	size_t   len;
	FILE    *f;
	char     r[4], ctl[256];
	int      base_failed = 0;

	parse_args(argc, argv);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if ((f = fopen(o.pdf, "rb")) == NULL || fseek(f, 0, SEEK_END) != 0 ||
	    (len = (size_t)ftell(f)) == 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    (pdf = malloc(len)) == NULL || fread(pdf, 1, len, f) != len) {
		fprintf(stderr, "eval bench: cannot read %s\n", o.pdf);
		return 1;
	}
	fclose(f);
	cm_random_bytes(r, sizeof(r));
	cm_hex(r, sizeof(r), run_id);
	if (cm_rpc_client_open(&pdf_c, "pdf", o.pdf_url, NULL) != CM_OK ||
	    cm_rpc_client_open(&eval_c, "eval", o.eval_url, NULL) != CM_OK)
		return 1;
	for (int64_t until = cm_mono_ms() + 10000;
	     cm_mono_ms() < until &&
	     (cm_rpc_client_healthy(pdf_c) < 1 || cm_rpc_client_healthy(eval_c) < 2);)
		usleep(20000);

	/* Every student uploads the document (svc-pdf extracts it once); the quiz comes from it. */
	for (int cls = 0; cls < 3; cls++)
		for (int i = 0; i < o.students; i++) {
			student *st = &class_of[cls][i];
			st->cls = cls;
			st->idx = i;
			snprintf(st->user, sizeof(st->user), "bench-%s-c%d-s%d", run_id, cls, i);
			upload(st, pdf, len);
		}
	{
		Pdf__GetRequest  gq = PDF__GET_REQUEST__INIT;
		Pdf__Document   *d = NULL;
		cm_rpc_call_opts co;
		cm_rpc_result    res;
		gq.id = class_of[0][0].doc;
		call_opts(&co, "pdf.Get", class_of[0][0].user, 10000);
		if (cm_rpc_call(pdf_c, &co, &gq.base, &pdf__document__descriptor,
		                (ProtobufCMessage **)&d, &res) != CM_OK)
			return 1;
		cm_rpc_result_fini(&res);
		for (int p = 1; p <= d->pages; p++) {
			Pdf__GetPageRequest pq = PDF__GET_PAGE_REQUEST__INIT;
			Pdf__Page          *pg = NULL;
			pq.id = class_of[0][0].doc;
			pq.page = p;
			call_opts(&co, "pdf.GetPage", class_of[0][0].user, 10000);
			if (cm_rpc_call(pdf_c, &co, &pq.base, &pdf__page__descriptor,
			                (ProtobufCMessage **)&pg, &res) == CM_OK) {
				collect_sentences(pg->text);
				protobuf_c_message_free_unpacked(&pg->base, NULL);
			}
			cm_rpc_result_fini(&res);
		}
		printf("document: %d pages, %d usable sentences\n", d->pages, nsent);
		protobuf_c_message_free_unpacked(&d->base, NULL);
	}
	build_quiz();
	if (nq < o.mcq + o.open) {
		fprintf(stderr, "eval bench: only %d questions could be made\n", nq);
		return 1;
	}
	printf("quiz: %d questions (%d multiple choice, %d open); %d students per class\n", nq,
	       o.mcq, o.open, o.students);
	printf("latency model: TTFT %.0f ms + completion tokens / %.0f tok/s, time scale %.2f "
	       "(x%.0f for the unscaled provider); provider concurrency C = %d; baseline: %d "
	       "students graded at once\n",
	       o.ttft_ms, o.tps, o.scale, 1.0 / o.scale, o.c, o.old_inflight);

	json_decref(fake_json("POST", "/_reset", "{\"config\":true}"));
	snprintf(ctl, sizeof(ctl),
	         "{\"ttft_ms\":%g,\"tokens_per_s\":%g,\"time_scale\":%g,\"max_concurrency\":%d,"
	         "\"retry_after_s\":0}",
	         o.ttft_ms, o.tps, o.scale, o.c);
	json_decref(fake_json("POST", "/_control", ctl));

	/* The bound's call times, at the same fake, alone. */
	double l_grade, l_overall;
	time_calls(&l_grade, &l_overall);
	reset_fake_stats();

	/* Class 1: ours. */
	double h0 = metric_sum("eval_grade_cache_hits_total"),
	       l0 = metric_sum("eval_grade_cache_lookups_total");
	int64_t ours = run_class(0);
	calls   oc = fake_calls();
	double  h1 = metric_sum("eval_grade_cache_hits_total"),
	       l1 = metric_sum("eval_grade_cache_lookups_total");
	int ok = 0;
	for (int i = 0; i < o.students; i++)
		ok += class_of[0][i].ok;

	/* The baseline, same fake, same answers. */
	reset_fake_stats();
	int64_t base = run_baseline(&base_failed);
	calls   bc = fake_calls();

	/* Class 2: the same quiz, similar answers. */
	reset_fake_stats();
	int64_t second = run_class(1);
	calls   sc = fake_calls();
	double  h2 = metric_sum("eval_grade_cache_hits_total"),
	       l2 = metric_sum("eval_grade_cache_lookups_total");
	int ok2 = 0;
	for (int i = 0; i < o.students; i++)
		ok2 += class_of[1][i].ok;

	/* Class 3: every answer its own, so nothing can be reused: the bound's own case. */
	reset_fake_stats();
	int64_t unique = run_class(2);
	calls   uc = fake_calls();
	int     ok3 = 0;
	for (int i = 0; i < o.students; i++)
		ok3 += class_of[2][i].ok;

	int grade_calls = (o.open + 8 - 1) / 8; /* per student, EVAL_BATCH 8 */
	int needed = o.students * (grade_calls + 1);
	/* The bound: the calls needed (no reuse) spread over C slots, each as long as the
	 * calls measured alone - i.e. the work, S x (g x L_grade + L_overall), over C - and never
	 * less than one student's chain (grades, then the overall call). */
	double chain = grade_calls * l_grade + l_overall;
	double bound = o.students * chain / o.c > chain ? o.students * chain / o.c : chain;
	/* A lower bound for the calls made: the work spread over C slots, or the longest call
	 * (a grade call) followed by the shortest (its attempt's overall call at the least). */
	double own_bound =
	    oc.sum / o.c > oc.longest + oc.shortest ? oc.sum / o.c : oc.longest + oc.shortest;

	printf("\nclass 1 (ours): %d of %d attempts succeeded, %d LLM calls (needed without reuse: "
	       "%d = %d x (ceil(%d/8) + 1)), %.0f of %.0f open answers from the cache or from "
	       "another attempt's call\n",
	       ok, o.students, oc.n, needed, o.students, o.open, h1 - h0, l1 - l0);
	printf("baseline: %d calls (%d failed), one per answer and one per student for feedback\n",
	       bc.n, base_failed);
	printf("calls alone at the fake (median of 3): L_grade (%d answers) %.3f s, L_overall "
	       "%.3f s; median of the calls made: ours %.3f s, baseline %.3f s\n",
	       o.open < 8 ? o.open : 8, l_grade, l_overall, oc.median, bc.median);
	printf("\n| run | wall s | unscaled s | LLM calls | vs baseline | bound s | ours/bound | "
	       "ours / own calls' bound |\n|---|---|---|---|---|---|---|---|\n");
	printf("| class of %d, ours | %.2f | %.1f | %d | %.1fx faster | %.2f | %.2f | %.2f |\n",
	       o.students, ours / 1000.0, ours / 1000.0 / o.scale, oc.n,
	       (double)base / (double)ours, bound, ours / 1000.0 / bound,
	       ours / 1000.0 / own_bound);
	printf("| class of %d, baseline | %.2f | %.1f | %d | 1.0 | | | |\n", o.students,
	       base / 1000.0, base / 1000.0 / o.scale, bc.n);
	printf("| second class, ours | %.2f | %.1f | %d | %.1fx faster | | | |\n", second / 1000.0,
	       second / 1000.0 / o.scale, sc.n, (double)base / (double)second);
	double unique_own =
	    uc.sum / o.c > uc.longest + uc.shortest ? uc.sum / o.c : uc.longest + uc.shortest;
	printf(
	    "| class of %d, no answer alike, ours | %.2f | %.1f | %d | %.1fx faster | %.2f | %.2f "
	    "| %.2f |\n",
	    o.students, unique / 1000.0, unique / 1000.0 / o.scale, uc.n,
	    (double)base / (double)unique, bound, unique / 1000.0 / bound,
	    unique / 1000.0 / unique_own);
	printf(
	    "\nbound: %d calls needed, C=%d: max(%d x (%d x %.3f + %.3f) / %d, %.3f) = %.2f s; "
	    "own calls' bound: max(total call time / C, longest call + shortest call) = %.2f s\n",
	    needed, o.c, o.students, grade_calls, l_grade, l_overall, o.c, chain, bound, own_bound);
	printf("second class: %d of %d succeeded, cache hit rate %.1f%% (%.0f of %.0f open "
	       "answers), %d LLM calls\n",
	       ok2, o.students, (l2 - l1) > 0 ? 100.0 * (h2 - h1) / (l2 - l1) : 0.0, h2 - h1,
	       l2 - l1, sc.n);
	cm_rpc_client_close(eval_c);
	cm_rpc_client_close(pdf_c);
	free(pdf);
	printf("no answer alike: %d of %d succeeded\n", ok3, o.students);
	return ok == o.students && ok2 == o.students && ok3 == o.students && base_failed == 0 ? 0
	                                                                                      : 1;
}
