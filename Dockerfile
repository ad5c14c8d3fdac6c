# syntax=docker/dockerfile:1
# The tandem-proxy image: ghcr.io/tandem/tandem-proxy:<version>, the image
# modules/proxy-fleet and tandem_proxy_manifests default to. The release
# workflow builds it for linux/amd64 and linux/arm64 (buildx), passing
# VERSION, REVISION and SOURCE for the OCI labels:
#   docker buildx build --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) .
# acceptance-tests/tests/release.rs checks this file (pinned bases, the
# toolchain of rust-toolchain.toml, a numeric non-root user, no shell, the
# labels).

# The build stage's Rust is the one rust-toolchain.toml pins, on bookworm:
# the glibc the binary links against is then the final stage's (Debian 12).
FROM docker.io/library/rust:1.95.0-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p tandem-proxy \
 && install -D -m 0755 target/release/tandem-proxy /out/tandem-proxy \
 && install -d -m 0755 /out/var/lib/tandem-proxy

# distroless/cc: glibc, libgcc and CA roots, and no shell or package manager
# for an attacker to use. Its nonroot user is UID/GID 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/tandem/tandem
LABEL org.opencontainers.image.title="tandem-proxy" \
      org.opencontainers.image.description="S3 read-through caching proxy with failover between replica buckets" \
      org.opencontainers.image.licenses="MPL-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
COPY --from=build /out/tandem-proxy /usr/local/bin/tandem-proxy
# The --state-dir default (the last good fleet document), owned by the
# runtime user so it can be written with a read-only root filesystem and a
# volume mounted there.
COPY --from=build --chown=65532:65532 /out/var/lib/tandem-proxy /var/lib/tandem-proxy
# Numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tandem-proxy"]
CMD ["--help"]
