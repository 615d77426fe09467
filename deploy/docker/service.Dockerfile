# One image recipe for the four services; build with --build-arg SERVICE=order|
# inventory|payment|shipping. Build context: the repository root.
#   docker build -f deploy/docker/service.Dockerfile --build-arg SERVICE=order -t oms-order .

FROM python:3.11-slim AS build
ARG SERVICE
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY constraints.txt ./
COPY libs/contracts libs/contracts
COPY libs/runtime libs/runtime
COPY services/${SERVICE} services/${SERVICE}
RUN pip install -c constraints.txt ./libs/contracts ./libs/runtime ./services/${SERVICE}

FROM python:3.11-slim
ARG SERVICE
ARG PORT=8000
RUN useradd --system --uid 10001 --no-create-home oms
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    OMS_SERVICE=${SERVICE} \
    OMS_HOST=0.0.0.0 \
    OMS_HEALTH_PORT=${PORT}
USER oms
EXPOSE ${PORT}
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"OMS_HEALTH_PORT\"]}/healthz', timeout=2)"
# `migrate` and `relay` are the other commands (see `python -m oms_<service> --help`).
ENTRYPOINT ["sh", "-c", "exec python -m oms_$OMS_SERVICE \"$@\"", "--"]
CMD ["serve"]
