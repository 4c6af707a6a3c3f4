# aggregator as a container: polls, publishes and serves the feeds on port 8080.
#   docker build -t aggregator .
#   docker run -d --name aggregator -p 8080:8080 -v aggregator-data:/data --stop-timeout 20 aggregator
# /data holds feeds.yaml (copy yours in: docker cp feeds.yaml aggregator:/data/), the
# database and public/. `docker kill -s HUP aggregator` (or saving feeds.yaml) reloads it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY aggregator ./aggregator
COPY feeds.yaml /usr/share/aggregator/feeds.yaml
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin aggregator \
    && install -d -o aggregator -g aggregator /data \
    && install -m 0644 -o aggregator -g aggregator /usr/share/aggregator/feeds.yaml /data/feeds.yaml \
    && rm -rf /src

USER aggregator
WORKDIR /data
VOLUME ["/data"]
ENV AGGREGATOR_CONFIG=/data/feeds.yaml \
    AGGREGATOR_LOG_FORMAT=json
EXPOSE 8080
STOPSIGNAL SIGTERM
# 200 while the scheduler runs and the database takes writes (python: the slim image has no curl).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"

ENTRYPOINT ["aggregator"]
CMD ["run", "--serve", "--host", "0.0.0.0", "--port", "8080", "--grace", "10s"]
