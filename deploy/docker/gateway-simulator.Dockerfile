# The payment gateway simulator (development and tests only; never in production).
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY constraints.txt ./
COPY services/gateway-simulator services/gateway-simulator
RUN pip install -c constraints.txt ./services/gateway-simulator

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home oms
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 OMS_GATEWAY_HOST=0.0.0.0
USER oms
EXPOSE 8090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8090/healthz', timeout=2)"
CMD ["python", "-m", "oms_gateway_simulator"]
