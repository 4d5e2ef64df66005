/*
 * fakellm_helper.h - test/fakellm/fakellm.py as a child of an integration test: started on the
 * test's own fixed port (each test file has one, so tests never share a fake's counters), asked
 * through its control API (/_control, /_reset, /_stats, /healthz), stopped with SIGTERM.
 *
 * DESIGN. Header-only like worker_helper.h and free of cmocka and of any JSON library: a call
 * returns whether the fake answered 200 and hands its body over, and each test reads the body
 * as it likes (test_llm.c and eval_harness.h parse it with jansson, others look for one key).
 * Starting refuses a port something already answers on: a fake left over from another run
 * would carry its own configuration and counters into this one.
 */
#ifndef TEST_FAKELLM_HELPER_H
#define TEST_FAKELLM_HELPER_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cm/buf.h"
#include "cm/util.h"

#define TEST_FAKE_START_MS 10000 /* how long fakellm.py may take to answer /healthz */

static __attribute__((unused)) size_t
test_fake_collect(char *p, size_t size, size_t n, void *arg)
{
	return cm_buf_append(arg, p, size * n) == CM_OK ? size * n : 0;
}

/* One request (method "GET" or "POST", body "{}" when NULL) to the fake at base (its
 * "http://host:port"); true on a 200. The body is appended to out, which may be NULL. */
static __attribute__((unused)) bool
test_fake_call(const char *base, const char *method, const char *path, const char *body,
               cm_buf *out)
{
	CURL  *c = curl_easy_init();
	cm_buf b;
	char   url[256];
	long   status = 0;
	bool   ok;

	if (c == NULL)
		return false;
	cm_buf_init(&b, 1u << 20);
	snprintf(url, sizeof(url), "%s%s", base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, test_fake_collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out != NULL ? out : &b);
	if (strcmp(method, "POST") == 0)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body != NULL ? body : "{}");
	ok = curl_easy_perform(c) == CURLE_OK &&
	     curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200;
	curl_easy_cleanup(c);
	cm_buf_fini(&b);
	return ok;
}

/* Starts fakellm.py (from CM_TEST_HARNESS, so only under ctest) on 127.0.0.1:port, writing its
 * pid to pidfile unless NULL, and waits until it answers /healthz. Its pid, or -1 with the
 * reason on stderr (nothing is left running then). */
static __attribute__((unused)) pid_t
test_fake_start(int port, const char *pidfile)
{
	char        script[512], base[64], ports[16];
	const char *harness = getenv("CM_TEST_HARNESS");
	int64_t     end = cm_mono_ms() + TEST_FAKE_START_MS;
	pid_t       pid;
	int         status;

	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	if (harness == NULL) {
		fprintf(stderr, "fakellm: CM_TEST_HARNESS not set (run under ctest)\n");
		return -1;
	}
	if (test_fake_call(base, "GET", "/healthz", NULL, NULL)) {
		fprintf(stderr, "fakellm: something already answers on port %d\n", port);
		return -1;
	}
	snprintf(script, sizeof(script), "%s/../fakellm/fakellm.py", harness);
	snprintf(ports, sizeof(ports), "%d", port);
	if ((pid = fork()) == 0) {
		/* The fake dies with the test (a test killed at its timeout must not leave it
		 * holding the port) and keeps none of the test's descriptors (such as the lock
		 * ctest runs under). */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		if (pidfile != NULL)
			execlp("python3", "python3", script, "--port", ports, "--pid-file", pidfile,
			       (char *)NULL);
		else
			execlp("python3", "python3", script, "--port", ports, (char *)NULL);
		_exit(127);
	}
	if (pid < 0) {
		fprintf(stderr, "fakellm: fork failed\n");
		return -1;
	}
	while (cm_mono_ms() < end) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "fakellm: exited at start (status %d)\n", status);
			return -1;
		}
		if (test_fake_call(base, "GET", "/healthz", NULL, NULL))
			return pid;
		usleep(100000);
	}
	fprintf(stderr, "fakellm: no answer on port %d in %d ms\n", port, TEST_FAKE_START_MS);
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	return -1;
}

/* Stops a fake test_fake_start started (pid <= 0: none) and reaps it; its wait status, or -1. */
static __attribute__((unused)) int
test_fake_stop(pid_t pid)
{
	int status = -1;

	if (pid <= 0)
		return -1;
	kill(pid, SIGTERM);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

#endif
