# One image with every binary (edge, svc-auth, svc-pdf, and each later svc-* that is built); the
# container's command picks the process, e.g. `docker run learnapp svc-auth`. Configuration is by
# environment (docs/architecture.md). Build: docker build -t learnapp .
FROM debian:12 AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libprotobuf-c-dev protobuf-c-compiler libnng-dev libmicrohttpd-dev libwslay-dev libpq-dev \
      libhiredis-dev libcurl4-openssl-dev libmupdf-dev libmujs-dev libgumbo-dev libopenjp2-7-dev \
      libjbig2dec0-dev libharfbuzz-dev libjpeg-dev zlib1g-dev libfreetype-dev libpng-dev libbrotli-dev \
      libjwt-dev libjansson-dev libsodium-dev libssl-dev libcmocka-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Only the binaries: edge and every service directory that has a main.c.
RUN set -eu; targets=edge; \
    for d in svc-*; do [ -f "$d/main.c" ] && targets="$targets $d"; done; \
    cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release \
    && cmake --build /build -j"$(nproc)" --target $targets \
    && mkdir -p /out && for t in $targets; do cp "/build/$t/$t" /out/; done

FROM debian:12-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libprotobuf-c1 libnng1 libmicrohttpd12 libwslay1 libpq5 libhiredis0.14 libcurl4 libjwt0 libjansson4 libsodium23 \
      libmujs2 libgumbo1 libopenjp2-7 libjbig2dec0 libharfbuzz0b libfreetype6 libpng16-16 \
      libjpeg62-turbo libbrotli1 zlib1g ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home app \
    && mkdir -p /data && chown app /data
COPY --from=build /out/ /usr/local/bin/
# Fail the image build if a binary needs a shared library that the list above misses.
RUN for b in /usr/local/bin/*; do if ldd "$b" | grep 'not found'; then exit 1; fi; done
USER 10001
WORKDIR /data
# edge: HTTP 8080. Services: RPC 7101-7105, event publishers 7203-7205 (svc-chat, svc-qgen,
# svc-eval), admin HTTP (/healthz /readyz /metrics) 9101-9105.
EXPOSE 8080 7101 7102 7103 7104 7105 7203 7204 7205 9101 9102 9103 9104 9105
CMD ["edge"]
