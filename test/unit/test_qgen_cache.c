/*
 * test_qgen_cache.c - the set cache's keys: every part of a set and the model that wrote it
 * change the key, the document's sha256 stays readable in it, and the offline provider has a
 * model name of its own. (Redis itself is exercised by the e2e cache tests.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../svc-qgen/cache.h"

#define SHA "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static qgen_cache_spec
spec(void)
{
	qgen_cache_spec c = {.sha256 = SHA,
	                     .count = 25,
	                     .types = "mcq",
	                     .difficulty = "medium",
	                     .topic = "cells",
	                     .first_page = 0,
	                     .last_page = 0,
	                     .per_call = 5,
	                     .model = "gpt-4o-mini"};

	return c;
}

static void
test_key_parts(void **state)
{
	qgen_service    s;
	qgen_cache_spec c = spec();
	char            a[QGEN_CACHE_KEY_LEN], b[QGEN_CACHE_KEY_LEN];

	(void)state;
	memset(&s, 0, sizeof(s));
	s.cfg.cache_ttl_s = 3600;
	qgen_cache_key(&s, &c, a);
	assert_int_equal(strncmp(a, "qgen:set:v", 10), 0);
	assert_non_null(strstr(a, ":" SHA ":"));
	qgen_cache_key(&s, &c, b);
	assert_string_equal(a, b); /* a function of the parts only */
	c.model = "fake";
	qgen_cache_key(&s, &c, b);
	assert_string_not_equal(a, b);
	c = spec();
	c.topic = "cell";
	qgen_cache_key(&s, &c, b);
	assert_string_not_equal(a, b);
	c = spec();
	c.per_call = 4;
	qgen_cache_key(&s, &c, b);
	assert_string_not_equal(a, b);
	c = spec();
	c.last_page = 3;
	qgen_cache_key(&s, &c, b);
	assert_string_not_equal(a, b);
}

static void
test_cache_off_and_offline(void **state)
{
	qgen_service    s;
	qgen_cache_spec c = spec();
	char            k[QGEN_CACHE_KEY_LEN];

	(void)state;
	memset(&s, 0, sizeof(s)); /* QGEN_CACHE_TTL_S 0, no LLM client */
	qgen_cache_key(&s, &c, k);
	assert_string_equal(k, "");
	assert_string_equal(qgen_cache_model(&s), "offline");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_key_parts),
	    cmocka_unit_test(test_cache_off_and_offline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
