# syntax=docker/dockerfile:1.7
# Multi-stage image of the dataplatform CLI (pipeline workers, API, jobs, MLflow server).
# Stage 1 builds wheels with the locked versions; stage 2 installs them without build tools and
# runs as a non-root user with a read-only root filesystem (/tmp is a mounted emptyDir).

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
RUN python -m pip wheel --wheel-dir /wheels -c constraints.txt .

FROM python:3.11-slim-bookworm AS runtime
ARG GIT_SHA=unknown
LABEL org.opencontainers.image.title="dataplatform" \
      org.opencontainers.image.source="https://github.com/company/data-platform" \
      org.opencontainers.image.revision="${GIT_SHA}"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    DATAPLATFORM_HOME=/tmp/dataplatform
# git: the ingest stage reads repositories with the git CLI.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git=1:2.39.* \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 dataplatform \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --shell /usr/sbin/nologin dataplatform
COPY --from=build /wheels /wheels
# Every wheel was built from the locked versions in stage 1; no index is consulted here.
RUN python -m pip install --no-index --find-links /wheels /wheels/*.whl && rm -rf /wheels
# Project files the package reads at run time (the wheel holds only code): the dbt project, the
# threshold and rotation-policy files, the migrations.
COPY --chown=10001:10001 dbt /app/dbt
COPY --chown=10001:10001 config /app/config
COPY --chown=10001:10001 sql /app/sql
ENV DATAPLATFORM_DBT_PROJECT_DIR=/app/dbt \
    DATAPLATFORM_THRESHOLDS_PATH=/app/config/thresholds.yaml \
    DATAPLATFORM_ROTATION_POLICY_PATH=/app/config/rotation-policy.yaml \
    DATAPLATFORM_HOME=/tmp/dataplatform
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
ENTRYPOINT ["dataplatform"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
