# The appliance in one container. Minimal for now; the container issue hardens it (non-root user,
# multi-stage build, GPU variants). Build: docker build -t appliance .   (EXTRAS=chat,embed… to slim it)
FROM python:3.11-slim

ARG EXTRAS=all
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    APPLIANCE_MODELS_PATH=/models \
    APPLIANCE_DATA_PATH=/data \
    APPLIANCE_ADDRESS=0.0.0.0:8080

# A compiler for llama-cpp-python, which builds from source.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake git \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY appliance ./appliance
COPY inference ./inference
COPY stores ./stores
COPY webui ./webui
COPY scripts ./scripts
RUN case ",$EXTRAS," in *,all,*|*,embed,*|*,image,*) pip install --no-cache-dir "torch==2.13.0" ;; esac \
 && pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}"

RUN mkdir -p /models /data
VOLUME ["/models", "/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz').status != 200)"
# Listening on every interface inside the container: set APPLIANCE_API_KEYS (the server warns without).
CMD ["appliance", "run"]
