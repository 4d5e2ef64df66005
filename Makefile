# Convenience targets; the scripts are the source of truth (see README.md).
FUZZ_SECONDS ?= 60

.PHONY: build up down test test-asan fuzz bench bench-auth bench-extract bench-qgen bench-chat format clean

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
fuzz:
	./scripts/test.sh --fuzz $(FUZZ_SECONDS)
bench: bench-auth bench-extract bench-qgen bench-chat
bench-auth:
	./bench/auth_me.sh
bench-extract:
	./bench/extract.sh
bench-qgen:
	./bench/qgen.sh
bench-chat:
	./bench/chat.sh
format:
	git ls-files -z '*.c' '*.h' | xargs -0 clang-format -i
clean:
	rm -rf build build-asan build-fuzz build-bench
