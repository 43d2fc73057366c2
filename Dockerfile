# syntax=docker/dockerfile:1
# loadplan in a container: a Rust build stage, then a small non-root Debian runtime.
#
#   docker build -t loadplan .
#   docker run --rm loadplan run plans/mixed.kdl --profile smoke --demo
#
# The bundled plans and profiles are in /app/plans and /app/profiles (WORKDIR /app);
# mount your own over them. Ports: 8089 web UI, 9646 Prometheus metrics, 5557 master.
#
# Stopping: `docker stop` sends SIGTERM (STOPSIGNAL below), which loadplan handles like
# Ctrl-C: users finish their iteration within the profile's `stop_timeout` (5s), then
# the summary, every --json/--csv/--junit/--html file and the verdict (exit 4 when
# nothing failed: interrupted). loadplan handles its signals itself, so it is safe as
# PID 1; for an init anyway (zombie reaping, signal forwarding) run with
# `docker run --init` — docker-compose.yml sets `init: true` for every loadplan service.
# Keep docker's grace period above stop_timeout (`docker stop -t 15`, compose
# `stop_grace_period`).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crates ./crates
COPY profiles ./profiles
# The registry and target caches survive between builds (BuildKit); the binary is
# copied out of the cached target folder.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin loadplan \
    && install -m 0755 target/release/loadplan /usr/local/bin/loadplan

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ca-certificates: TLS targets are verified against the system roots.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 loadplan \
    && useradd --system --uid 10001 --gid loadplan --home-dir /app --shell /usr/sbin/nologin loadplan
COPY --from=builder /usr/local/bin/loadplan /usr/local/bin/loadplan
WORKDIR /app
COPY plans ./plans
COPY profiles ./profiles
RUN mkdir -p /app/reports && chown loadplan:loadplan /app/reports
USER 10001:10001
EXPOSE 8089 9646 5557
STOPSIGNAL SIGTERM
ENTRYPOINT ["loadplan"]
CMD ["--help"]
