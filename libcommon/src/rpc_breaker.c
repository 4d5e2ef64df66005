/*
 * rpc_breaker.c - the circuit breaker of one upstream: closed / open / half-open.
 *
 * DESIGN. Closed: every call passes; outcomes go into a sliding window of RPC_BREAKER_BUCKETS
 * buckets (a bucket is window/BUCKETS ms long and reset when its slot comes round again). It
 * opens when the window holds at least min_calls and failures reach error_pct of them, or after
 * `consecutive` failures in a row (an upstream with little traffic never fills the window).
 * Open: every call is refused until open_until; the first admit after that turns it half-open.
 * Half-open: up to `probes` calls pass at once; one success closes it with a fresh window, one
 * failure opens it again. Outcomes of calls admitted before it opened are ignored while it is not
 * closed: only probes decide. The closed fast path reads the state without the lock; recording
 * takes it (a few integer updates).
 */
#include <string.h>

#include "rpc_int.h"

void
rpc_breaker_init(rpc_breaker *b, const rpc_breaker_cfg *cfg)
{
	memset(b, 0, sizeof(*b));
	b->cfg = *cfg;
	if (b->cfg.window_ms < RPC_BREAKER_BUCKETS)
		b->cfg.window_ms = RPC_BREAKER_BUCKETS;
	if (b->cfg.probes < 1)
		b->cfg.probes = 1;
	pthread_mutex_init(&b->mtx, NULL);
	atomic_init(&b->state, CM_BREAKER_CLOSED);
}

void
rpc_breaker_fini(rpc_breaker *b)
{
	pthread_mutex_destroy(&b->mtx);
}

int
rpc_breaker_admit(rpc_breaker *b, int64_t now_ms, int64_t *retry_after_ms)
{
	int verdict = RPC_ADMIT;

	if (atomic_load(&b->state) == CM_BREAKER_CLOSED)
		return RPC_ADMIT;
	pthread_mutex_lock(&b->mtx);
	switch (atomic_load(&b->state)) {
	case CM_BREAKER_OPEN:
		if (now_ms < b->open_until_ms) {
			*retry_after_ms = b->open_until_ms - now_ms;
			verdict = RPC_REJECT;
			break;
		}
		atomic_store(&b->state, CM_BREAKER_HALF_OPEN);
		b->probes_out = 0;
		/* fall through */
	case CM_BREAKER_HALF_OPEN:
		if (b->probes_out >= b->cfg.probes) {
			/* Probes are out: retry once they could have answered. */
			*retry_after_ms = b->cfg.open_ms;
			verdict = RPC_REJECT;
		} else {
			b->probes_out++;
			verdict = RPC_ADMIT_PROBE;
		}
		break;
	default:
		break; /* closed again meanwhile */
	}
	pthread_mutex_unlock(&b->mtx);
	return verdict;
}

static void
window_reset(rpc_breaker *b)
{
	memset(b->win, 0, sizeof(b->win));
	b->consecutive = 0;
}

static void
trip(rpc_breaker *b, int64_t now_ms)
{
	atomic_store(&b->state, CM_BREAKER_OPEN);
	b->open_until_ms = now_ms + b->cfg.open_ms;
	b->probes_out = 0;
	window_reset(b);
}

/* Adds the outcome to the current bucket; true when the window now says open. */
static bool
window_add(rpc_breaker *b, bool failed, int64_t now_ms)
{
	int64_t len = b->cfg.window_ms / RPC_BREAKER_BUCKETS;
	int64_t epoch = now_ms / len;
	int     slot = (int)(epoch % RPC_BREAKER_BUCKETS), calls = 0, fails = 0;

	if (b->win[slot].epoch != epoch) {
		b->win[slot].epoch = epoch;
		b->win[slot].calls = b->win[slot].fails = 0;
	}
	b->win[slot].calls++;
	b->win[slot].fails += failed;
	b->consecutive = failed ? b->consecutive + 1 : 0;
	if (!failed)
		return false;
	if (b->cfg.consecutive > 0 && b->consecutive >= b->cfg.consecutive)
		return true;
	for (int i = 0; i < RPC_BREAKER_BUCKETS; i++) {
		if (b->win[i].epoch > epoch - RPC_BREAKER_BUCKETS) {
			calls += b->win[i].calls;
			fails += b->win[i].fails;
		}
	}
	return calls >= b->cfg.min_calls &&
	       (int64_t)fails * 100 >= (int64_t)b->cfg.error_pct * calls;
}

int
rpc_breaker_record(rpc_breaker *b, bool probe, bool failed, int64_t now_ms)
{
	int state;

	pthread_mutex_lock(&b->mtx);
	state = atomic_load(&b->state);
	if (state == CM_BREAKER_CLOSED) {
		if (window_add(b, failed, now_ms))
			trip(b, now_ms);
	} else if (state == CM_BREAKER_HALF_OPEN && probe) {
		if (failed) {
			trip(b, now_ms);
		} else {
			atomic_store(&b->state, CM_BREAKER_CLOSED);
			window_reset(b);
		}
	}
	state = atomic_load(&b->state);
	pthread_mutex_unlock(&b->mtx);
	return state;
}

void
rpc_breaker_unprobe(rpc_breaker *b)
{
	pthread_mutex_lock(&b->mtx);
	if (atomic_load(&b->state) == CM_BREAKER_HALF_OPEN && b->probes_out > 0)
		b->probes_out--;
	pthread_mutex_unlock(&b->mtx);
}
