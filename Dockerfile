# Driftline services image (used by docker-compose.yml). Dependencies are installed in a layer of
# their own, from pyproject.toml alone: a source change rebuilds only the last layers. Runs as a
# non-root user.
FROM python:3.11-slim
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
# the dependency layer: install what pyproject.toml lists (and the extras named in EXTRAS, e.g.
# "mlflow"), without the project itself
ARG EXTRAS=""
RUN python -c "import os, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
extras = [e for e in os.environ.get('EXTRAS', '').split(',') if e]; \
print('\n'.join(p['dependencies'] + [d for e in extras for d in p['optional-dependencies'][e]]))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt
COPY driftline/ driftline/
COPY detectors/ detectors/
COPY stream_processors/ stream_processors/
COPY producers/ producers/
COPY retrain_worker/ retrain_worker/
# the optional native decoder's sources: this image has no Rust toolchain, so pip skips building it and
# the processor decodes every batch in Python (README: Throughput)
COPY native/ native/
RUN pip install --no-deps . \
 && useradd --create-home --uid 10001 driftline \
 && mkdir -p /app/.driftline && chown driftline /app/.driftline
USER driftline
ENTRYPOINT ["driftline"]
CMD ["--help"]
