# papers: one image for both services of docker-compose.yml
#   api      `papers serve --host 0.0.0.0` (uvicorn), health check on /healthz
#   indexer  Debian cron running `papers nightly` (docker/crontab)
# Debian bookworm has no supercronic package, so the indexer uses Debian's cron.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    PAPERS_DATA_DIR=/data

# cron: the indexer's scheduler. Nothing else: health checks use python itself.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cron \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Installed editable from /app: indexer/migrate.py finds migrations/ next to the packages.
COPY pyproject.toml README.md ./
COPY indexer ./indexer
COPY service ./service
COPY migrations ./migrations
# CPU build of torch first, so pip does not pull a multi-GB CUDA build.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch \
 && pip install --no-cache-dir -e .

COPY docker/crontab /etc/cron.d/papers
COPY docker/cron-entrypoint.sh /usr/local/bin/papers-cron
RUN chmod 0644 /etc/cron.d/papers \
 && chmod 0755 /usr/local/bin/papers-cron \
 && useradd --create-home --uid 1000 papers \
 && mkdir -p /data \
 && chown papers:papers /data

VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

USER papers
CMD ["papers", "serve", "--host", "0.0.0.0", "--port", "8000"]
