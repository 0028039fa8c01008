# One image for the study creator, the workers and the dashboard (see docker-compose.yml).
# torch comes from a build ARG so a CPU or CUDA wheel can be chosen without editing this file, e.g.
#   docker compose build --build-arg TORCH_SPEC="torch==2.*" --build-arg PIP_EXTRA_INDEX_URL=<your wheel index>
FROM python:3.11-slim

ARG TORCH_SPEC="torch"
ARG PIP_EXTRA_INDEX_URL=""
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HPO_ARTIFACTS=/artifacts

WORKDIR /app
RUN pip install ${PIP_EXTRA_INDEX_URL:+--extra-index-url "$PIP_EXTRA_INDEX_URL"} "$TORCH_SPEC"
COPY pyproject.toml README.md ./
COPY core ./core
COPY hpo ./hpo
COPY studies ./studies
RUN pip install .

# Not root: the workers need nothing but the database and the artifacts volume.
RUN useradd --create-home hpo && mkdir -p /artifacts && chown hpo /artifacts
USER hpo
# SIGTERM (docker stop) makes `hpo run` mark its running trials FAIL (interrupted) and exit 130.
STOPSIGNAL SIGTERM
ENTRYPOINT ["hpo"]
CMD ["--help"]
