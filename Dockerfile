# syntax=docker/dockerfile:1
#
# medgraph container image: a release build of the `medgraph` binary on a slim
# Debian runtime, running as an unprivileged user.
#
#   docker build -t medgraph .
#   docker run --rm -p 8080:8080 -e JWT_SECRET="$(openssl rand -base64 48)" medgraph
#
# Without DATABASE_URL the server uses the default SQLite file (medgraph.db in
# /app, the working directory); docker-compose.yml runs it against PostgreSQL.
# `serve` applies pending migrations at startup, so there is no separate migrate step.

############################################################################
# Build stage
############################################################################
FROM rust:1.95-bookworm AS builder

WORKDIR /src

# Only what the build needs (see also .dockerignore).
COPY Cargo.toml Cargo.lock ./
# Build-time settings (jemalloc's options, see .cargo/config.toml).
COPY .cargo ./.cargo
COPY migration ./migration
# Cargo loads every workspace member, so the benchmark's manifest and sources come too (not built);
# bench/link-order.txt is the release binary's link order (src/build.rs).
COPY bench ./bench
COPY src ./src
COPY assets ./assets
COPY schema.graphql ./

# BuildKit cache mounts keep the crate registry and the target directory
# between builds, so a source change rebuilds only the workspace crates.
# The target dir is a cache (not part of the image), so the binary is copied
# out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin medgraph \
 && install -D -m 0755 target/release/medgraph /out/medgraph

############################################################################
# Runtime stage
############################################################################
FROM debian:bookworm-slim AS runtime

# TLS is rustls (no OpenSSL); only the CA bundle is needed. Left unpinned on
# purpose: it should carry the distribution's current CA set.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# Unprivileged user with a fixed uid/gid (10001), owner of the working
# directory (where the default SQLite file is created).
RUN groupadd --gid 10001 medgraph \
 && useradd --uid 10001 --gid medgraph --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin medgraph \
 && install -d -o medgraph -g medgraph -m 0750 /app

COPY --from=builder /out/medgraph /usr/local/bin/medgraph

WORKDIR /app
# Numeric uid:gid (= medgraph:medgraph) so orchestrators can verify runAsNonRoot.
USER 10001:10001

ENV MEDGRAPH_ENV=production \
    BIND_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json

EXPOSE 8080

# No HEALTHCHECK: the image has no curl/wget and the binary has no health
# subcommand. docker-compose.yml checks the database and restarts the server.

ENTRYPOINT ["/usr/local/bin/medgraph"]
CMD ["serve"]
