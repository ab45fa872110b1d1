# The one application image: api, worker, scheduler and migrate differ only in their command.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SONANTICA_DATA_DIR=/data \
    SONANTICA_LIBRARY_DIR=/music \
    NUMBA_CACHE_DIR=/tmp/numba

WORKDIR /app
# CPU build of PyTorch first and exactly pinned: a looser requirement would pull gigabytes of CUDA packages.
# For NVIDIA GPUs build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "${TORCH_INDEX}" torch==2.13.0
COPY pyproject.toml README.md ./
COPY sidecar ./sidecar
COPY adapters ./adapters
COPY sql ./sql
RUN pip install . \
    && pip install --no-deps demucs==4.1.0 \
    && useradd --system --uid 10001 --home-dir /data sonantica \
    && mkdir -p /data /music \
    && chown sonantica /data

USER 10001
VOLUME ["/data"]
EXPOSE 8787
ENTRYPOINT ["sonantica"]
CMD ["serve"]
