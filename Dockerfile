# syntax=docker/dockerfile:1
#
# adwriteback container image: a static, non-root connector.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t adwriteback .
#   docker run --rm \
#     -v /srv/adwriteback/etc:/etc/adwriteback:ro \
#     -v adwriteback-state:/var/lib/adwriteback \
#     -p 127.0.0.1:8080:8080 adwriteback
#
# Mount the configuration, keys, CA file and secret files at /etc/adwriteback
# (read-only): secret files and the connector private key owned by uid 65532,
# mode 0600; nothing writable by group or others (the loader checks). The
# journal lives in /var/lib/adwriteback: keep it on a volume, one per
# instance. In the config, set http.listen to 0.0.0.0:8080
# (127.0.0.1 is unreachable from outside the container) and, if the audit
# log should go to the container's output, audit.path to "-".
# Probes: GET /livez (liveness) and GET /readyz (readiness) on that port.
# Multi-arch: docker buildx build --platform linux/amd64,linux/arm64 .

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Dependencies first, for layer caching.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY connector ./connector
COPY ldapx ./ldapx
COPY relay ./relay
ARG VERSION=dev
# Set by BuildKit from --platform; linux/amd64 without it.
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH:-amd64} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/adwriteback ./connector/cmd/adwriteback
# Directories the connector writes to, owned by the distroless nonroot user.
RUN mkdir -p /out/var/lib/adwriteback /out/var/log/adwriteback /out/etc/adwriteback

# distroless/static: CA certificates, /etc/passwd with nonroot (65532), tzdata; no shell.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="adwriteback" \
      org.opencontainers.image.description="On-prem password writeback connector for Active Directory" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/adwriteback /adwriteback
COPY --from=build --chown=65532:65532 /out/var/lib/adwriteback /var/lib/adwriteback
COPY --from=build --chown=65532:65532 /out/var/log/adwriteback /var/log/adwriteback
COPY --from=build /out/etc/adwriteback /etc/adwriteback
USER 65532:65532
VOLUME ["/var/lib/adwriteback"]
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/adwriteback"]
CMD ["run", "--config", "/etc/adwriteback/config.yaml"]
