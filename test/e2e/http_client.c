/*
 * http_client.c - libcurl easy handle per call; one kept handle per session (browser-like: its
 * connection and cookies live across requests); raw socket requests for framing tests.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cm/buf.h"
#include "cm/util.h"
#include "http_client.h"

const char *
http_base(void)
{
	const char *b = getenv("CM_TEST_EDGE");
	return b != NULL && b[0] != '\0' ? b : "http://127.0.0.1:28080";
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	http_resp *r = arg;
	size_t     add = size * n;
	char      *nb = realloc(r->body, r->len + add + 1);

	if (nb == NULL)
		return 0;
	memcpy(nb + r->len, p, add);
	r->body = nb;
	r->len += add;
	r->body[r->len] = '\0';
	return add;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	http_resp *r = arg;
	size_t     add = size * n, used = strlen(r->headers);

	if (used + add + 1 < sizeof(r->headers)) {
		memcpy(r->headers + used, p, add);
		r->headers[used + add] = '\0';
	}
	return add;
}

/* Sets up one request on c (a fresh or reset handle) and performs it; mime, when not NULL, is
 * the body. */
static int
perform(CURL *c, const char *base, const char *method, const char *path, const char *const *headers,
        const char *body, size_t len, curl_mime *mime, http_resp *out)
{
	struct curl_slist *h = NULL;
	char               url[1024];
	CURLcode           rc;

	memset(out, 0, sizeof(*out));
	snprintf(url, sizeof(url), "%s%s", base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	/* Set either way: a session's handle keeps what its previous request set. */
	curl_easy_setopt(c, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
	for (; headers != NULL && *headers != NULL; headers++)
		h = curl_slist_append(h, *headers);
	h = curl_slist_append(h, "Expect:");
	if (mime != NULL) {
		curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
	} else if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
		curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &out->seconds);
		if (out->body != NULL)
			out->json = json_loadb(out->body, out->len, 0, NULL);
	}
	curl_slist_free_all(h);
	return rc == CURLE_OK ? 0 : -1;
}

int
http_do(const char *method, const char *path, const char *const *headers, const char *body,
        size_t len, http_resp *out)
{
	CURL *c = curl_easy_init();
	int   rc;

	memset(out, 0, sizeof(*out));
	if (c == NULL)
		return -1;
	rc = perform(c, http_base(), method, path, headers, body, len, NULL, out);
	curl_easy_cleanup(c);
	return rc;
}

struct http_session {
	CURL *c;
	long  connects;
};

http_session *
http_session_open(void)
{
	http_session *s = calloc(1, sizeof(*s));

	if (s != NULL && (s->c = curl_easy_init()) == NULL) {
		free(s);
		s = NULL;
	}
	if (s != NULL)
		curl_easy_setopt(s->c, CURLOPT_COOKIEFILE, ""); /* the cookie engine, once */
	return s;
}

/* One request on the session's handle (the connection and the cookies stay). */
static int
session_perform(http_session *s, const char *method, const char *path, const char *const *headers,
                const char *body, size_t len, curl_mime *mime, http_resp *out)
{
	long n = 0;
	int  rc;

	/* No curl_easy_reset: it switches the cookie engine off, and turning it on again per
	 * request (COOKIEFILE) leaks its file list in libcurl 7.88. HTTPGET undoes the previous
	 * request's method and body; perform() sets this one's. */
	curl_easy_setopt(s->c, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(s->c, CURLOPT_MIMEPOST, NULL);
	rc = perform(s->c, http_base(), method, path, headers, body, len, mime, out);
	if (curl_easy_getinfo(s->c, CURLINFO_NUM_CONNECTS, &n) == CURLE_OK)
		s->connects += n;
	return rc;
}

int
http_session_do(http_session *s, const char *method, const char *path, const char *const *headers,
                const char *body, size_t len, http_resp *out)
{
	return session_perform(s, method, path, headers, body, len, NULL, out);
}

int
http_session_upload(http_session *s, const char *path, const char *field, const char *filename,
                    const char *type, const void *data, size_t len, http_resp *out)
{
	curl_mime     *m = curl_mime_init(s->c);
	curl_mimepart *p = m != NULL ? curl_mime_addpart(m) : NULL;
	int            rc = -1;

	memset(out, 0, sizeof(*out));
	if (p != NULL && curl_mime_name(p, field) == CURLE_OK &&
	    curl_mime_filename(p, filename) == CURLE_OK && curl_mime_type(p, type) == CURLE_OK &&
	    curl_mime_data(p, data, len) == CURLE_OK)
		rc = session_perform(s, "POST", path, NULL, NULL, 0, m, out);
	curl_mime_free(m);
	return rc;
}

long
http_session_connects(const http_session *s)
{
	return s->connects;
}

void
http_session_close(http_session *s)
{
	if (s == NULL)
		return;
	curl_easy_cleanup(s->c);
	free(s);
}

int
http_raw(const char *request, size_t len, char *reply, size_t replylen)
{
	struct sockaddr_in sa = {0};
	struct timeval     tv = {5, 0};
	int                fd, code = -1;
	unsigned           port = 28080;
	const char        *colon = strrchr(http_base(), ':');
	ssize_t            n;
	size_t             got = 0;

	if (colon != NULL)
		port = (unsigned)strtoul(colon + 1, NULL, 10);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    write(fd, request, len) == (ssize_t)len) {
		while (got + 1 < replylen && (n = read(fd, reply + got, replylen - got - 1)) > 0) {
			got += (size_t)n;
			reply[got] = '\0';
			if (strstr(reply, "\r\n\r\n") != NULL)
				break;
		}
		reply[got] = '\0';
		if (strncmp(reply, "HTTP/1.1 ", 9) == 0)
			code = (int)strtol(reply + 9, NULL, 10);
	}
	close(fd);
	return code;
}

const char *
http_header(const http_resp *r, const char *name, char *buf, size_t n)
{
	const char *p = r->headers;
	size_t      nl = strlen(name);

	while (p != NULL && *p != '\0') {
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			size_t      len;
			while (*v == ' ')
				v++;
			len = strcspn(v, "\r\n");
			if (len >= n)
				len = n - 1;
			memcpy(buf, v, len);
			buf[len] = '\0';
			return buf;
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return NULL;
}

const char *
http_session_cookie(const http_resp *r, char *buf, size_t n)
{
	char   sc[8192];
	size_t len;

	if (http_header(r, "Set-Cookie", sc, sizeof(sc)) == NULL || strncmp(sc, "session=", 8) != 0)
		return NULL;
	len = strcspn(sc, ";");
	if (len >= n)
		return NULL;
	memcpy(buf, sc, len);
	buf[len] = '\0';
	return buf;
}

void
http_resp_free(http_resp *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

const char *
js(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s != NULL ? s : "";
}

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	return cm_buf_append(arg, p, size * n) == CM_OK ? size * n : 0;
}

json_t *
http_fake(const char *base, const char *method, const char *path, const char *body)
{
	CURL              *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	cm_buf             out;
	char               url[256];
	json_t            *v = NULL;

	cm_buf_init(&out, 1u << 22);
	snprintf(url, sizeof(url), "%s%s", base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	if (body != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	if (curl_easy_perform(c) == CURLE_OK && out.data != NULL)
		v = json_loads(out.data, 0, NULL);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	cm_buf_fini(&out);
	return v;
}

long
http_json(const char *auth, const char *method, const char *path, const char *body, http_resp *r)
{
	const char *h[] = {auth, "Content-Type: application/json", NULL};

	if (http_do(method, path, auth != NULL ? h : h + 1, body, body != NULL ? strlen(body) : 0,
	            r) != 0)
		return -1;
	return r->status;
}

int
http_register(const char *tag, const char *password, char *email, size_t n)
{
	char      body[512], id[37];
	http_resp r;
	long      st;

	cm_uuid_v4(id);
	snprintf(email, n, "%s-%s@example.com", tag, id);
	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
	st = http_json(NULL, "POST", "/api/v1/auth/register", body, &r);
	http_resp_free(&r);
	return st == 201 ? 0 : -1;
}

int
http_new_user(const char *tag, const char *password, char *bearer, size_t n)
{
	char        email[128], body[512];
	http_resp   r;
	const char *tok;
	int         rc = -1;

	if (http_register(tag, password, email, sizeof(email)) != 0)
		return -1;
	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
	if (http_json(NULL, "POST", "/api/v1/auth/login", body, &r) == 200 &&
	    (tok = js(r.json, "access_token")) != NULL && tok[0] != '\0') {
		snprintf(bearer, n, "Authorization: Bearer %s", tok);
		rc = 0;
	}
	http_resp_free(&r);
	return rc;
}

int
stack_spools(const char *owner)
{
	char           dir[1024];
	DIR           *d;
	struct dirent *de;
	size_t         len = strlen(owner);
	int            n = 0;

	snprintf(dir, sizeof(dir), "%s/pdfs/spool", getenv("CM_TEST_STATE"));
	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += strncmp(de->d_name, owner, len) == 0 && de->d_name[len] == '-';
	closedir(d);
	return n;
}

int
http_user_id(const char *auth, char *id, size_t n)
{
	const char *h[] = {auth, NULL};
	http_resp   r;
	int         rc = -1;

	if (http_do("GET", "/api/v1/auth/me", h, NULL, 0, &r) != 0)
		return -1;
	if (r.status == 200 && js(r.json, "id")[0] != '\0') {
		cm_strlcpy(id, js(r.json, "id"), n);
		rc = 0;
	}
	http_resp_free(&r);
	return rc;
}

void
http_multipart(cm_buf *body, const char *boundary, const char *field, const char *filename,
               const cm_buf *pdf)
{
	cm_buf_init(body, 64u << 20);
	if (cm_buf_printf(body,
	                  "--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
	                  "Content-Type: application/pdf\r\n\r\n",
	                  boundary, field, filename) != CM_OK ||
	    cm_buf_append(body, pdf->data, pdf->len) != CM_OK ||
	    cm_buf_printf(body, "\r\n--%s--\r\n", boundary) != CM_OK)
		abort(); /* 64 MiB: the tests' bodies fit */
}

long long
http_metric_at(const char *base, const char *series)
{
	http_resp   r;
	const char *p;
	long long   v = 0;
	size_t      n = strlen(series);
	CURL       *c = curl_easy_init();
	int         rc;

	if (c == NULL)
		return -1;
	rc = perform(c, base, "GET", "/metrics", NULL, NULL, 0, NULL, &r);
	curl_easy_cleanup(c);
	if (rc != 0)
		return -1;
	for (p = r.body; p != NULL && (p = strstr(p, series)) != NULL; p += n) {
		if ((p == r.body || p[-1] == '\n') && p[n] == ' ') {
			v = strtoll(p + n + 1, NULL, 10);
			break;
		}
	}
	http_resp_free(&r);
	return v;
}

long long
http_metric(const char *series)
{
	return http_metric_at(http_base(), series);
}
