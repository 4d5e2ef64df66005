/*
 * test_arena.c - cm_arena: zeroed, aligned allocations; reset keeps one chunk and zeroes again.
 */
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cm/arena.h"

static void
test_alloc_zeroed_and_aligned(void **state)
{
	cm_arena a;
	char    *p, *q;

	(void)state;
	cm_arena_init(&a);
	p = cm_arena_alloc(&a, 3);
	q = cm_arena_alloc(&a, 10000); /* beyond a chunk: a chunk of its own */
	assert_non_null(p);
	assert_non_null(q);
	assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
	assert_int_equal((uintptr_t)q % alignof(max_align_t), 0);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(q[i], 0);
	cm_arena_fini(&a);
	assert_null(a.head);
}

/* After a reset the next request sees zeroed memory again, from the chunk kept. */
static void
test_reset_reuses_and_zeroes(void **state)
{
	cm_arena a;
	char    *p, *q;

	(void)state;
	cm_arena_init(&a);
	p = cm_arena_alloc(&a, 100);
	assert_non_null(p);
	memset(p, 0xab, 100);
	assert_non_null(cm_arena_alloc(&a, 100000));
	cm_arena_reset(&a);
	q = cm_arena_alloc(&a, 100);
	assert_ptr_equal(q, p);
	for (int i = 0; i < 100; i++)
		assert_int_equal(q[i], 0);
	cm_arena_reset(&a);
	cm_arena_reset(&a); /* twice, and on an arena that never allocated */
	cm_arena_fini(&a);
	cm_arena_init(&a);
	cm_arena_reset(&a);
	assert_null(a.head);
	cm_arena_fini(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alloc_zeroed_and_aligned),
	    cmocka_unit_test(test_reset_reuses_and_zeroes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
