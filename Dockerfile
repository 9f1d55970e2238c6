# shelfscan as self-hosters run it: `shelfscan serve` against a PostgreSQL named by
# DATABASE_URL, /healthz and /metrics on :8080, state and covers in the /data volume,
# the library mounted read-only (shelfscan never writes into a library).
#
#   docker build -t shelfscan .
#   docker run --rm -e DATABASE_URL=postgresql://... -v /srv/books:/library:ro \
#       -v shelfscan-data:/data --stop-timeout 30 shelfscan
#
# The builder stage turns the project and every dependency into wheels (with a compiler at
# hand for any dependency that has no wheel for the platform); the installer stage installs
# only those wheels, offline, into a virtual environment; the final stage copies that
# environment and carries neither a compiler nor the wheels. tests/test_deploy.py runs the
# same two pip commands in a clean virtual environment.
#
# Plain multi-stage `COPY --from`, no BuildKit-only syntax (no `# syntax=` line, no
# `RUN --mount`): it builds with the classic builder of any Docker >= 20.10, e.g. Debian 12's
# docker.io, as well as with buildx. tests/test_deploy.py checks that it stays so.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PIP_ROOT_USER_ACTION=ignore

# Debian's security updates replace package versions, so apt packages are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Only what the wheel is made of: pyproject.toml names README.md as the long description
# and packs sql/ into the wheel as shelfscan/_sql (the migrations).
COPY pyproject.toml README.md ./
COPY sql ./sql
COPY src ./src

RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# ---------------------------------------------------------------------------------------
# Same base image as the runtime (so the venv's interpreter path is valid there); no compiler.
FROM ${PYTHON_IMAGE} AS installer

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

COPY --from=builder /wheels /wheels
# Install from the builder's wheels only (no index). (The versions are the ones the builder
# resolved; there is nothing to pin here.)
# hadolint ignore=DL3013
RUN python -m venv /opt/shelfscan \
    && /opt/shelfscan/bin/pip install --no-cache-dir --no-index --find-links /wheels shelfscan

# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="shelfscan" \
      org.opencontainers.image.description="Scans folders of ebooks, comics and audiobooks into a PostgreSQL catalogue" \
      org.opencontainers.image.licenses="MIT"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# libarchive13: the C library behind libarchive-c (RAR comics). tini: a real PID 1 that
# forwards SIGTERM to shelfscan and reaps orphaned parse workers.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libarchive13 tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 shelfscan \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin shelfscan \
    && mkdir -p /data /library \
    && chown 10001:10001 /data

# Only the installed environment comes over; the wheels stay in the installer stage. The
# checks fail the build if the entry point, the packed migrations or libarchive cannot load.
COPY --from=installer /opt/shelfscan /opt/shelfscan
ENV PATH=/opt/shelfscan/bin:$PATH
RUN shelfscan --help > /dev/null \
    && python -c "import libarchive; from shelfscan.db.migrate import load_migrations; assert len(load_migrations()) >= 3"

# 12-factor: every setting comes from the environment (see the README's configuration table).
# SHELFSCAN_SHUTDOWN_GRACE stays under `docker stop`'s default 10 s timeout; compose raises
# both (stop_grace_period: 30s, grace 20 s).
ENV SHELFSCAN_LOG_FORMAT=json \
    SHELFSCAN_LOG_LEVEL=info \
    SHELFSCAN_DATA_DIR=/data \
    SHELFSCAN_SHUTDOWN_GRACE=8 \
    SHELFSCAN_HTTP=:8080

VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8080

# No curl in the image: the standard library asks /healthz; a 503 or a refused connection
# raises, and the non-zero exit marks the container unhealthy. `serve` listens where
# SHELFSCAN_HTTP says and the check reads the same variable when it runs, so
# `-e SHELFSCAN_HTTP=:9000` moves both (EXPOSE is documentation only).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SHELFSCAN_HTTP', ':8080').rpartition(':')[2], timeout=4)"]

# The first SIGTERM stops claiming jobs and lets running ones finish within
# SHELFSCAN_SHUTDOWN_GRACE; what is left is handed back to the queue for another replica.
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--", "shelfscan"]
CMD ["serve"]
