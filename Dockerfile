# Driftline services image (used by docker-compose.yml). Dependencies are installed in a layer of
# their own, from pyproject.toml alone: a source change rebuilds only the last layers. The native parts
# (native/: the decoder, the label join, the detector kernels; Rust via PyO3) are compiled in a build
# stage of their own, so the image itself carries no Rust toolchain. Runs as a non-root user.
FROM python:3.11-slim AS base
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

# the project as a wheel, its native parts compiled (setuptools-rust builds them when cargo is on the
# PATH; Debian's cargo is enough for PyO3's minimum Rust)
FROM base AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cargo \
 && rm -rf /var/lib/apt/lists/*
COPY driftline/ driftline/
COPY detectors/ detectors/
COPY stream_processors/ stream_processors/
COPY producers/ producers/
COPY retrain_worker/ retrain_worker/
COPY native/ native/
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && python -m zipfile -l /wheels/*.whl | grep -q "driftline/_native.*\.so" \
 && python -m zipfile -l /wheels/*.whl | grep -q "detectors/_kernels.*\.so"

FROM base
COPY --from=build /wheels/ /wheels/
RUN pip install --no-deps /wheels/*.whl && rm -rf /wheels \
 && python -c "from driftline import native; from detectors import kernels; assert native.built() and kernels.built()" \
 && useradd --create-home --uid 10001 driftline \
 && mkdir -p /app/.driftline && chown driftline /app/.driftline
USER driftline
ENTRYPOINT ["driftline"]
CMD ["--help"]
