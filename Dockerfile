# Hookhost: the host binary and the example handlers, on a slim Debian.
#
#   docker build -t hookhost .
#   docker compose up        (see docker-compose.yml)

FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN rustup target add wasm32-wasip2
COPY . .
RUN cargo build --release --locked -p hookhost \
    && cargo xtask plugins \
    && mkdir -p /out/plugins \
    && cp target/release/hookhost /out/ \
    && cp plugins/*.wasm /out/plugins/

FROM debian:bookworm-slim
RUN useradd --system --create-home --home-dir /var/lib/hookhost hookhost \
    && mkdir -p /var/lib/hookhost/data /var/lib/hookhost/plugins /usr/share/hookhost/plugins \
    && chown -R hookhost:hookhost /var/lib/hookhost
COPY --from=build /out/hookhost /usr/local/bin/hookhost
# The example handlers, to copy into the plugins volume if wanted.
COPY --from=build /out/plugins/ /usr/share/hookhost/plugins/
USER hookhost
WORKDIR /var/lib/hookhost
ENV HOOKHOST_LISTEN=0.0.0.0:8080 \
    HOOKHOST_DATA=/var/lib/hookhost/data \
    HOOKHOST_PLUGINS=/var/lib/hookhost/plugins \
    HOOKHOST_LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/var/lib/hookhost/data"]
# Listening on 0.0.0.0 needs an admin token and an ingest token: set
# HOOKHOST_ADMIN_TOKEN with HOOKHOST_ADMIN_TOKEN_ENV=HOOKHOST_ADMIN_TOKEN, and
# HOOKHOST_INGEST_TOKEN with HOOKHOST_INGEST_TOKEN_ENV=HOOKHOST_INGEST_TOKEN
# (docker-compose.yml does).
ENTRYPOINT ["hookhost", "serve"]
