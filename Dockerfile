# syntax=docker/dockerfile:1.7
# Jury: multi-stage build with uv. Dependencies are installed in their own layer, before the
# code, so a code change does not reinstall them. One image runs the API (`jury serve`, the
# default command) and the workers (`jury worker`); config/docker-compose.yml runs both.
#
# The image has no `local` extra (llama.cpp and its model wheels): its panels are hosted or
# Ollama models. Build from a clean export, so that the context holds no .venv or caches:
#   git archive --format=tar HEAD | docker build -t jury -

FROM python:3.11-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /uvx /usr/local/bin/
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/jury/.venv
WORKDIR /opt/jury

# Dependency layer: only the lock and project metadata.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --locked --no-dev --no-install-project

# The project itself.
COPY pyproject.toml uv.lock README.md ./
COPY app ./app
COPY eval ./eval
COPY config ./config
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable

FROM python:3.11-slim-bookworm AS runtime
# JURY_CONFIG: config/jury.yaml needs the local extra, which the image lacks; mount your own
# config over this one. JURY_REQUIRE_API_KEYS: the server listens on 0.0.0.0, which Jury refuses
# in local mode (no key): create the first key with `jury keys create` in the container.
# (DL3064 reads "KEYS" in the name as a secret; the value is a boolean.)
# hadolint ignore=DL3064
ENV PATH=/opt/jury/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    JURY_CONFIG=/opt/jury/config/ollama.yaml \
    JURY_REQUIRE_API_KEYS=true \
    XDG_DATA_HOME=/var/lib/jury
RUN groupadd --system --gid 10001 jury \
    && useradd --system --uid 10001 --gid jury --home-dir /var/lib/jury --create-home jury
WORKDIR /opt/jury
COPY --from=build --chown=root:root /opt/jury /opt/jury
# Numeric, so that the runtime can check it is not root without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000
# The API's liveness; a worker has no HTTP port: compose disables the check for it.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
CMD ["jury", "serve", "--host", "0.0.0.0", "--port", "8000"]
