# Convenience targets; the scripts are the source of truth (see README.md).
FUZZ_SECONDS ?= 60

.PHONY: build up down test test-asan test-tsan fuzz bench bench-auth bench-extract bench-qgen bench-jobs bench-eval bench-chat bench-edge bench-proxy-stream bench-upload bench-quality check format clean

build:
	./scripts/build.sh
up:
	./scripts/up.sh
down:
	./scripts/down.sh
test:
	./scripts/test.sh
test-asan:
	./scripts/test.sh --sanitize
test-tsan:
	./scripts/test.sh --tsan
fuzz:
	./scripts/test.sh --fuzz $(FUZZ_SECONDS)
bench: bench-auth bench-extract bench-qgen bench-jobs bench-eval bench-chat bench-edge bench-proxy-stream bench-upload bench-quality
bench-auth:
	./bench/auth_me.sh
bench-extract:
	./bench/extract.sh
bench-qgen:
	./bench/qgen.sh
check:
	./scripts/check-banned.sh
	./scripts/check-format.sh
bench-jobs:
	./bench/jobs.sh
bench-eval:
	./bench/eval.sh
bench-chat:
	./bench/chat.sh
bench-edge:
	./bench/edge.sh
bench-proxy-stream:
	./bench/proxy_stream.sh
bench-upload:
	./bench/upload.sh
bench-quality:
	./bench/quality.sh
format:
	./scripts/check-format.sh --fix
clean:
	rm -rf build build-asan build-tsan build-fuzz build-bench
