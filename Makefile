# Convenience wrappers around the scripts; the scripts are the source of truth.
.PHONY: up down test test-asan fuzz bench bench-auth clean format

up:
	./scripts/up.sh
down:
	./scripts/down.sh
test:
	./scripts/test.sh
test-asan:
	./scripts/test.sh --sanitize
fuzz:
	./scripts/test.sh --fuzz 60
bench: bench-auth
bench-auth:
	./bench/auth_me.sh
format:
	clang-format -i $$(git ls-files '*.c' '*.h')
clean:
	rm -rf build build-asan build-fuzz build-release
