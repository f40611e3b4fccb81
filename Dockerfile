# Driftline services image (used by docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY driftline/ driftline/
COPY detectors/ detectors/
COPY stream_processors/ stream_processors/
COPY producers/ producers/
COPY retrain_worker/ retrain_worker/
RUN pip install .
ENTRYPOINT ["driftline"]
CMD ["--help"]
