# syntax=docker/dockerfile:1
# One image for every role of the rig: the mock provider (`rig mock`), the Locust master
# and workers (`rig locust ...`), reports (`rig report`) and dashboards (`rig dashboards`).
#
#   docker build -t agentic-load-rig:0.1.0 --build-arg VCS_REF=$(git rev-parse HEAD) .
#
# Every dependency installs from a binary wheel, so the final stage needs no compiler; the
# build stage only builds the rig's own (pure Python) wheel.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY rig ./rig
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/rig \
    && /opt/rig/bin/pip install --only-binary=:all: /wheels/*.whl \
    && /opt/rig/bin/python -m compileall -q /opt/rig

FROM ${PYTHON_IMAGE}
ARG RIG_VERSION=0.1.0
ARG VCS_REF=unknown
LABEL org.opencontainers.image.title="agentic-load-rig" \
      org.opencontainers.image.description="Load-testing rig for agentic LLM traffic: mock provider, Locust master and workers, reports" \
      org.opencontainers.image.version="${RIG_VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 rig \
    && useradd --system --uid 10001 --gid rig --home-dir /home/rig --create-home rig
COPY --from=build /opt/rig /opt/rig
# `rig locust` uses the locustfile inside the package; this copy is for `locust -f`.
COPY locustfiles /app/locustfiles
# The master's run directories (a Kubernetes emptyDir or a Compose volume is mounted here).
RUN mkdir /runs && chown rig:rig /runs
ENV PATH=/opt/rig/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER 10001:10001
EXPOSE 8000 5557 8089
ENTRYPOINT ["rig"]
CMD ["--help"]
