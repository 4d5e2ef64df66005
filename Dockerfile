# One image with every binary; the container command picks the process (svc-auth, svc-pdf, edge).
# Build: docker build -t learnapp .   Run: docker run learnapp svc-auth
FROM debian:12 AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libprotobuf-c-dev protobuf-c-compiler libnng-dev libpq-dev \
      libhiredis-dev libcurl4-openssl-dev libmupdf-dev libmujs-dev libgumbo-dev libopenjp2-7-dev \
      libjbig2dec0-dev libharfbuzz-dev libjwt-dev libjansson-dev libsodium-dev libssl-dev libcmocka-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DWERROR=ON \
 && cmake --build /build -j"$(nproc)" --target svc-auth edge $( [ -f svc-pdf/main.c ] && echo svc-pdf ) \
 && mkdir -p /out && cp /build/svc-auth/svc-auth /build/edge/edge /out/ \
 && { [ ! -x /build/svc-pdf/svc-pdf ] || cp /build/svc-pdf/svc-pdf /out/; }

FROM debian:12-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libprotobuf-c1 libnng1 libpq5 libhiredis0.14 libcurl4 libjwt0 libjansson4 libsodium23 \
      libmujs2 libgumbo1 libopenjp2-7 libjbig2dec0 libharfbuzz0b libfreetype6 libpng16-16 \
      libjpeg62-turbo libbrotli1 zlib1g ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /data app && mkdir -p /data && chown app /data
COPY --from=build /out/ /usr/local/bin/
USER app
WORKDIR /data
# Admin ports (healthz/readyz/metrics) 9101-9105, RPC 7101-7105, edge 8080.
EXPOSE 8080 7101 7102 9101 9102
CMD ["edge"]
