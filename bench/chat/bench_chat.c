/*
 * bench_chat.c - the overhead svc-chat adds before an answer starts to stream, for
 * bench/chat.sh (bench/CMakeLists.txt builds it with everything).
 *
 * usage: chat_bench --pdf URL --chat URLS --events URLS --fake URL [--ttft-ms 300]
 *                   [--tokens-per-s 50] [--samples1 40] [--rounds25 8]
 *
 * It drives svc-chat the way the edge will: chat.Send over RPC (the edge's routes come later)
 * and a subscriber on every replica's event publisher (as the edge's WebSocket forwarder), as
 * 25 distinct users, each with a chat about the same generated 12-page document (uploaded
 * through svc-pdf's RPC). For each Send, the time from the call to the first chat.delta of its
 * chat at the subscriber, minus the fake's time to first token, two ways:
 *   - minus the modelled TTFT (--ttft-ms): everything, the fake's own slowness under load
 *     included;
 *   - minus the fake's actual TTFT for that very request (its /_stats first_tokens: from reading
 *     the request line to writing the first delta), paired by the question, which carries a
 *     unique "(#n)": what the system adds.
 * At 1 chat (samples1 sends in sequence) and 25 chats (rounds25 rounds of 25 sends started
 * together). Baseline in the same run: a client streaming straight from the fake (libcurl,
 * the chat convention), measured the same two ways. Prints p50 and p99 per case.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cm/buf.h"
#include "cm/pubsub.h"
#include "cm/rpc.h"
#include "cm/util.h"
#include "../../svc-pdf/testpdf.h"
#include "proto/chat.pb-c.h"
#include "proto/pdf.pb-c.h"

#define USERS 25
#define MAX_SAMPLES 4096

static const char    *pdf_url, *chat_urls, *events_urls, *fake_url;
static int            ttft_ms = 300, tokens_per_s = 50, samples1 = 40, rounds25 = 8;
static cm_rpc_client *pdf_c, *chat_c;
static char           nonce[17];

static const char *const questions[] = {
    "What does the Calvin cycle fix?",
    "How do enzymes change the activation energy of reactions?",
    "Where does glycolysis take place?",
    "What is osmosis?",
    "Which light does chlorophyll absorb?",
};

static const char *const prose[] = {
    "Photosynthesis converts light energy into chemical energy stored in glucose molecules. The "
    "process takes place inside the chloroplasts of plant cells and some algae. Chlorophyll "
    "absorbs mostly blue and red light and reflects green light back to the eye.",
    "The Calvin cycle fixes carbon dioxide into sugars using the energy carried by ATP and NADPH "
    "molecules. Rubisco is the enzyme that captures carbon dioxide during the Calvin cycle in the "
    "stroma. Cellular respiration releases the energy stored in glucose inside the mitochondria.",
    "Glycolysis splits one glucose molecule into two pyruvate molecules in the cytoplasm of the "
    "cell. Mitochondria produce most of the ATP that a eukaryotic cell needs for growth and "
    "repair. Enzymes lower the activation energy of chemical reactions without being consumed.",
    "Temperature and acidity change the shape of enzymes and therefore the speed of reactions. "
    "Diffusion moves molecules from regions of high concentration to regions of low "
    "concentration. Osmosis is the diffusion of water across a membrane that lets water pass.",
};

/* ---- the subscriber ------------------------------------------------------------------------ */

typedef struct user {
	char            subject[48];
	char            chat[40];
	pthread_mutex_t mu;
	uint64_t        first_ns; /* first delta of the current send; 0: none yet */
	uint64_t        sent_ns;
	cm_err          err;
	char            errmsg[CM_MAX_ERRMSG];
} user;

/* One measured send: its question (unique) and times, paired later with the fake's log. */
typedef struct sample {
	char     question[160];
	uint64_t sent_ns, first_ns;
} sample;

static sample samples[MAX_SAMPLES];
static int    nsamples;
static int    seq;

static user users[USERS];

static void
on_event(void *arg, const char *topic, const char *type, const void *payload, size_t len)
{
	uint64_t now = cm_mono_ns();

	(void)arg;
	(void)payload;
	(void)len;
	if (strcmp(type, "chat.delta") != 0 || strlen(topic) < 5)
		return;
	for (int i = 0; i < USERS; i++) {
		if (strcmp(topic + 5, users[i].chat) == 0) {
			pthread_mutex_lock(&users[i].mu);
			if (users[i].first_ns == 0 && users[i].sent_ns != 0)
				users[i].first_ns = now;
			pthread_mutex_unlock(&users[i].mu);
			return;
		}
	}
}

/* ---- RPC ----------------------------------------------------------------------------------- */

static cm_err
rpc(cm_rpc_client *c, const char *method, const char *subject, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *d, ProtobufCMessage **resp, char *msg, size_t msglen)
{
	cm_rpc_call_opts o;
	cm_rpc_result    res;
	cm_err           err;

	memset(&o, 0, sizeof(o));
	o.method = method;
	o.subject = subject;
	o.request_id = "bench-chat";
	o.deadline_ms = cm_now_ms() + 60000;
	err = cm_rpc_call(c, &o, req, d, resp, &res);
	if (msg != NULL)
		snprintf(msg, msglen, "%s", res.message);
	cm_rpc_result_fini(&res);
	return err;
}

static int
setup_users(void)
{
	pdf_testpdf o;
	cm_buf      b;
	char        text[12][1024];
	const char *pages[12];
	char        r[8];

	cm_random_bytes(r, sizeof(r));
	cm_hex(r, sizeof(r), nonce);
	for (int i = 0; i < 12; i++) {
		snprintf(text[i], sizeof(text[i]), "Section %d.\n%s\nRun %s, page %d.", i + 1,
		         prose[i % 4], nonce, i + 1);
		pages[i] = text[i];
	}
	memset(&o, 0, sizeof(o));
	o.npages = 12;
	o.pages = pages;
	o.title = "Biology notes";
	cm_buf_init(&b, 1u << 20);
	if (pdf_testpdf_build(&o, &b) != CM_OK)
		return -1;
	for (int i = 0; i < USERS; i++) {
		Pdf__UploadRequest  up = PDF__UPLOAD_REQUEST__INIT;
		Chat__CreateRequest cr = CHAT__CREATE_REQUEST__INIT;
		ProtobufCMessage   *resp = NULL;
		char                msg[CM_MAX_ERRMSG], doc[40];
		user               *u = &users[i];

		pthread_mutex_init(&u->mu, NULL);
		snprintf(u->subject, sizeof(u->subject), "bench-%s-%d", nonce, i);
		up.filename = (char *)"notes.pdf";
		up.content.data = (uint8_t *)b.data;
		up.content.len = b.len;
		if (rpc(pdf_c, "pdf.Upload", u->subject, &up.base,
		        &pdf__upload_response__descriptor, &resp, msg, sizeof(msg)) != CM_OK) {
			fprintf(stderr, "upload: %s\n", msg);
			return -1;
		}
		snprintf(doc, sizeof(doc), "%s", ((Pdf__UploadResponse *)resp)->document->id);
		protobuf_c_message_free_unpacked(resp, NULL);
		cr.document_id = doc;
		if (rpc(chat_c, "chat.Create", u->subject, &cr.base, &chat__chat__descriptor, &resp,
		        msg, sizeof(msg)) != CM_OK) {
			fprintf(stderr, "chat.Create: %s\n", msg);
			return -1;
		}
		snprintf(u->chat, sizeof(u->chat), "%s", ((Chat__Chat *)resp)->id);
		protobuf_c_message_free_unpacked(resp, NULL);
	}
	cm_buf_fini(&b);
	return 0;
}

/* ---- one send ------------------------------------------------------------------------------ */

typedef struct job {
	int                u;
	char               question[160];
	pthread_barrier_t *start;
} job;

static void *
send_one(void *arg)
{
	job              *j = arg;
	user             *u = &users[j->u];
	Chat__SendRequest rq = CHAT__SEND_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;

	if (j->start != NULL)
		pthread_barrier_wait(j->start);
	rq.chat_id = u->chat;
	rq.content = j->question;
	pthread_mutex_lock(&u->mu);
	u->first_ns = 0;
	u->sent_ns = cm_mono_ns();
	pthread_mutex_unlock(&u->mu);
	u->err = rpc(chat_c, "chat.Send", u->subject, &rq.base, &chat__message__descriptor, &resp,
	             u->errmsg, sizeof(u->errmsg));
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	return NULL;
}

/* Runs n sends at once (users 0..n-1), each a new question; records them as samples. Returns
 * how many sends had no delta seen or failed. */
static int
round_of(int n)
{
	pthread_t         th[USERS];
	job               jobs[USERS];
	pthread_barrier_t start;
	int               bad = 0;

	pthread_barrier_init(&start, NULL, (unsigned)n);
	for (int i = 0; i < n; i++) {
		jobs[i].u = i;
		snprintf(jobs[i].question, sizeof(jobs[i].question), "%s (#%d)", questions[seq % 5],
		         seq);
		seq++;
		jobs[i].start = n > 1 ? &start : NULL;
		pthread_create(&th[i], NULL, send_one, &jobs[i]);
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < n; i++) {
		user *u = &users[i];
		pthread_mutex_lock(&u->mu);
		if (u->err != CM_OK || u->first_ns == 0) {
			if (u->err != CM_OK)
				fprintf(stderr, "send failed: %s: %s\n", cm_strerror(u->err),
				        u->errmsg);
			bad++;
		} else if (nsamples < MAX_SAMPLES) {
			sample *sm = &samples[nsamples++];
			snprintf(sm->question, sizeof(sm->question), "%s", jobs[i].question);
			sm->sent_ns = u->sent_ns;
			sm->first_ns = u->first_ns;
		}
		u->sent_ns = 0;
		pthread_mutex_unlock(&u->mu);
	}
	return bad;
}

/* ---- the baseline: straight from the fake -----------------------------------------------------
 */

typedef struct direct {
	uint64_t           t0, first;
	char               question[160];
	pthread_barrier_t *start;
} direct;

/* True when the bytes hold a "content": "<something>" (an event with text, not the role chunk's
 * empty content). */
static bool
has_text(const char *p, size_t len)
{
	static const char key[] = "\"content\": \"";
	size_t            k = sizeof(key) - 1;

	for (size_t i = 0; i + k < len; i++)
		if (memcmp(p + i, key, k) == 0 && p[i + k] != '"')
			return true;
	return false;
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	direct *d = arg;

	if (d->first == 0 && has_text(p, size * n))
		d->first = cm_mono_ns();
	return size * n;
}

static void *
direct_one(void *arg)
{
	direct            *d = arg;
	CURL              *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	char               url[256], body[512];

	snprintf(body, sizeof(body),
	         "{\"model\":\"fake\",\"stream\":true,\"messages\":[{\"role\":\"user\","
	         "\"content\":\"PASSAGES:\\n[p. 2] The Calvin cycle fixes carbon dioxide into "
	         "sugars.\\nQUESTION: %s\"}]}",
	         d->question);
	snprintf(url, sizeof(url), "%s/v1/chat/completions", fake_url);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
	if (d->start != NULL)
		pthread_barrier_wait(d->start);
	d->first = 0;
	d->t0 = cm_mono_ns();
	if (curl_easy_perform(c) != CURLE_OK)
		d->first = 0;
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return NULL;
}

static void
direct_round(int n)
{
	pthread_t         th[USERS];
	direct            d[USERS];
	pthread_barrier_t start;

	pthread_barrier_init(&start, NULL, (unsigned)n);
	for (int i = 0; i < n; i++) {
		memset(&d[i], 0, sizeof(d[i]));
		snprintf(d[i].question, sizeof(d[i].question),
		         "What does the Calvin cycle fix? (#%d)", seq++);
		d[i].start = n > 1 ? &start : NULL;
		pthread_create(&th[i], NULL, direct_one, &d[i]);
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < n; i++) {
		if (d[i].first != 0 && nsamples < MAX_SAMPLES) {
			sample *sm = &samples[nsamples++];
			snprintf(sm->question, sizeof(sm->question), "%s", d[i].question);
			sm->sent_ns = d[i].t0;
			sm->first_ns = d[i].first;
		}
	}
}

/* ---- report --------------------------------------------------------------------------------- */

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v. */
static double
pct(const double *v, int n, double p)
{
	int k = (int)(p / 100.0 * n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	return cm_buf_append(arg, p, size * n) == CM_OK ? size * n : 0;
}

/* The fake's /_stats first_tokens (NULL on failure; caller decrefs). */
static json_t *
fake_first_tokens(void)
{
	CURL   *c = curl_easy_init();
	cm_buf  b;
	char    url[256];
	json_t *j = NULL, *ft = NULL;

	cm_buf_init(&b, 64u << 20);
	snprintf(url, sizeof(url), "%s/_stats", fake_url);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (curl_easy_perform(c) == CURLE_OK && b.data != NULL &&
	    (j = json_loadb(b.data, b.len, 0, NULL)) != NULL &&
	    (ft = json_object_get(j, "first_tokens")) != NULL)
		json_incref(ft);
	json_decref(j);
	curl_easy_cleanup(c);
	cm_buf_fini(&b);
	return ft;
}

/* Prints one row from the samples taken since the last report, then forgets them. */
static void
report(const char *what, int conc, int bad)
{
	static double model[MAX_SAMPLES], actual[MAX_SAMPLES];
	json_t       *ft = fake_first_tokens();
	int           n = nsamples, na = 0;

	for (int i = 0; i < n; i++) {
		double total = (double)(samples[i].first_ns - samples[i].sent_ns) / 1e6;
		model[i] = total - ttft_ms;
		for (size_t k = 0; ft != NULL && k < json_array_size(ft); k++) {
			json_t     *e = json_array_get(ft, k);
			const char *q = json_string_value(json_object_get(e, "question"));
			if (q != NULL && strcmp(q, samples[i].question) == 0) {
				double fake_ms = (json_real_value(json_object_get(e, "first")) -
				                  json_real_value(json_object_get(e, "arrived"))) *
				                 1e3;
				actual[na++] = total - fake_ms;
				break;
			}
		}
	}
	json_decref(ft);
	nsamples = 0;
	if (n == 0) {
		printf("| %-36s | %2d | 0 | - | - | - | - | %d |\n", what, conc, bad);
		return;
	}
	qsort(model, (size_t)n, sizeof(*model), cmp);
	qsort(actual, (size_t)na, sizeof(*actual), cmp);
	printf("| %-36s | %2d | %4d | %6.1f | %6.1f | ", what, conc, n, pct(model, n, 50),
	       pct(model, n, 99));
	if (na > 0)
		printf("%6.1f | %6.1f (%d paired) | %d |\n", pct(actual, na, 50),
		       pct(actual, na, 99), na, bad);
	else
		printf("- | - | %d |\n", bad);
}

static void
control(const char *body)
{
	CURL              *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	char               url[256];
	FILE              *devnull = fopen("/dev/null", "w");

	snprintf(url, sizeof(url), "%s/_control", fake_url);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
	curl_easy_perform(c);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (devnull != NULL)
		fclose(devnull);
}

static bool
num(const char *s, int *out)
{
	int64_t v;

	if (!cm_parse_i64(s, &v) || v < 0 || v > 1000000)
		return false;
	*out = (int)v;
	return true;
}

int
main(int argc, char **argv)
{
	cm_sub *sub = NULL;
	char    body[128];
	int     bad;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--pdf") == 0)
			pdf_url = argv[i + 1];
		else if (strcmp(argv[i], "--chat") == 0)
			chat_urls = argv[i + 1];
		else if (strcmp(argv[i], "--events") == 0)
			events_urls = argv[i + 1];
		else if (strcmp(argv[i], "--fake") == 0)
			fake_url = argv[i + 1];
		else if (!(strcmp(argv[i], "--ttft-ms") == 0 && num(argv[i + 1], &ttft_ms)) &&
		         !(strcmp(argv[i], "--tokens-per-s") == 0 &&
		           num(argv[i + 1], &tokens_per_s)) &&
		         !(strcmp(argv[i], "--samples1") == 0 && num(argv[i + 1], &samples1)) &&
		         !(strcmp(argv[i], "--rounds25") == 0 && num(argv[i + 1], &rounds25)))
			pdf_url = NULL; /* unknown flag or bad number: usage */
	}
	if (pdf_url == NULL || chat_urls == NULL || events_urls == NULL || fake_url == NULL) {
		fprintf(stderr, "usage: chat_bench --pdf URL --chat URLS --events URLS --fake URL "
		                "[--ttft-ms N] [--tokens-per-s N] [--samples1 N] [--rounds25 N]\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (cm_rpc_client_open(&pdf_c, "pdf", pdf_url, NULL) != CM_OK ||
	    cm_rpc_client_open(&chat_c, "chat", chat_urls, NULL) != CM_OK)
		return 1;
	for (int64_t until = cm_mono_ms() + 5000;
	     cm_mono_ms() < until &&
	     (cm_rpc_client_healthy(pdf_c) < 1 || cm_rpc_client_healthy(chat_c) < 2);)
		usleep(10000);
	snprintf(body, sizeof(body), "{\"ttft_ms\":%d,\"tokens_per_s\":%d,\"time_scale\":1}",
	         ttft_ms, tokens_per_s);
	control(body);
	if (setup_users() != 0)
		return 1;
	if (cm_sub_open(&sub, events_urls, on_event, NULL) != CM_OK ||
	    cm_sub_subscribe(sub, "chat.") != CM_OK)
		return 1;
	/* Warm-up (connections, prepared statements, the subscriber's connections): until every
	 * chat's deltas were seen in one round. */
	for (int i = 0; i < 5; i++) {
		nsamples = 0;
		bad = round_of(USERS);
		if (i >= 1 && bad == 0)
			break;
	}
	if (bad != 0)
		fprintf(stderr, "warm-up: %d of %d chats' deltas not seen\n", bad, USERS);
	nsamples = 0;

	printf("model: TTFT %d ms, %d tokens/s (fake, time_scale 1). Overhead = first delta at the "
	       "client - send - TTFT, in ms: TTFT as modelled, and the fake's actual TTFT for that "
	       "request (request line read -> first delta written)\n\n",
	       ttft_ms, tokens_per_s);
	printf("| path | chats | samples | p50 vs model | p99 vs model | p50 vs actual | p99 vs "
	       "actual | no delta / failed |\n");
	printf("|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < samples1; i++)
		direct_round(1);
	report("client -> fake directly (baseline)", 1, samples1 - nsamples);
	for (int i = 0; i < rounds25; i++)
		direct_round(USERS);
	report("client -> fake directly (baseline)", USERS, rounds25 * USERS - nsamples);
	bad = 0;
	for (int i = 0; i < samples1; i++)
		bad += round_of(1);
	report("chat.Send -> svc-chat -> sub (ours)", 1, bad);
	bad = 0;
	for (int i = 0; i < rounds25; i++)
		bad += round_of(USERS);
	report("chat.Send -> svc-chat -> sub (ours)", USERS, bad);

	cm_sub_close(sub);
	cm_rpc_client_close(chat_c);
	cm_rpc_client_close(pdf_c);
	curl_global_cleanup();
	return 0;
}
