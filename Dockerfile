# syntax=docker/dockerfile:1
# One recipe, two images: `--target pipeline_service` (also runs the migrations) and
# `--target model_service`. They share every layer but the last, so the dependencies are
# installed once. Built and run by `make compose-check` (docs/docker.md).
FROM python:3.11-slim-bookworm AS base

# UVICORN_TIMEOUT_WORKER_HEALTHCHECK: uvicorn pings each worker and replaces one that does
# not answer within that many seconds (its default: 5). A worker still importing its app on a
# busy machine can take longer: 30 s keeps it from being killed at start, and still replaces
# a hung one. (uvicorn reads every option from a UVICORN_* variable.)
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=33554432 \
    MALLOC_TRIM_THRESHOLD_=134217728 \
    UVICORN_TIMEOUT_WORKER_HEALTHCHECK=30

WORKDIR /app

# Dependencies before the source: this layer is rebuilt when the lock file changes, not when
# the code does. Only the runtime dependencies (no `embedded` PostgreSQL, no dev tools), at
# the versions of requirements/runtime.lock (`make lock` writes it from pyproject.toml).
# Then the bytecode of everything on sys.path (standard library, packages), compiled here:
# the service user cannot write it, so without it every process (each worker, each
# healthcheck probe) would compile what it imports, again and again.
COPY requirements/runtime.lock ./requirements/
RUN pip install --no-cache-dir -r requirements/runtime.lock \
    && python -c "import os, sys; print('\n'.join(p for p in sys.path if os.path.isdir(p)))" \
        | xargs python -m compileall -q -j 0

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app

# The source stays owned by root: the service user can read it, not change it.
COPY alembic.ini seed.sql ./
COPY migrations ./migrations
COPY model_service ./model_service
COPY pipeline_service ./pipeline_service
COPY service_kit ./service_kit
RUN python -m compileall -q /app

USER 10001:10001

FROM base AS model_service
EXPOSE 8001
# sh only to read MODEL_WORKERS; exec hands PID 1 (and SIGTERM) to uvicorn.
CMD ["sh", "-c", "exec uvicorn --factory model_service.app:create_app --host 0.0.0.0 --port 8001 --no-access-log --workers \"${MODEL_WORKERS:-1}\""]


FROM base AS pipeline_service
EXPOSE 8000
# --http: uvicorn's protocol with a time limit for request headers (HEADER_TIMEOUT_S).
CMD ["sh", "-c", "exec uvicorn --factory pipeline_service.app:create_app --http pipeline_service.http_protocol:HeaderTimeoutProtocol --host 0.0.0.0 --port 8000 --no-access-log --workers \"${PIPELINE_WORKERS:-1}\""]
