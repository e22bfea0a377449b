# The appliance in one container: the server, every model runtime of the `all` extra and the two
# built-in models (smollm2-135m-instruct for chat, all-minilm-l6-v2 for embeddings), run as a
# non-root user with models in /models and data in /data.
#
#   docker build -t appliance .                                      CPU image (the default)
#   docker build --build-arg CUDA_VERSION=12.8.1 -t appliance:cuda .  NVIDIA GPU image
#   docker run -p 8080:8080 -v appliance-models:/models -v appliance-data:/data appliance
#
# Build arguments:
#   CUDA_VERSION      empty: a CPU image on python:3.11-slim, torch's CPU build, no nvidia-* packages
#                     (the build fails if one comes in). A version such as 12.8.1: the builder is
#                     nvidia/cuda:<version>-devel-<UBUNTU>, the runtime nvidia/cuda:<version>-runtime-<UBUNTU>
#                     (Python from Ubuntu), llama.cpp is built with -DGGML_CUDA=on and torch comes from
#                     PyTorch's index for that CUDA (cu128 for 12.8.x).
#   UBUNTU            the Ubuntu of the CUDA images (default ubuntu24.04)
#   EXTRAS            pip extras of the appliance (default all; e.g. chat,chat-model,store,docs for a
#                     small image without torch)
#   TORCH_INDEX_URL   where torch comes from (default: PyTorch's CPU index, or its cuXY index with
#                     CUDA_VERSION; empty: PyPI and PIP_FIND_LINKS only)
#   PIP_FIND_LINKS    extra places pip looks for wheels first (scripts/container-test serves a local
#                     torch CPU wheel this way)
#   LLAMA_CMAKE_ARGS  CMake flags for llama-cpp-python (default: portable x86-64 AVX2 for CPUs; with
#                     CUDA_VERSION, -DGGML_CUDA=on for the usual GPU architectures)
#
# Layers are ordered so that a change to the code rebuilds only the last small ones, a change to
# pyproject.toml reinstalls the dependencies, and llama-cpp-python (minutes to compile) is rebuilt only
# when its version or flags change.

ARG CUDA_VERSION=
ARG UBUNTU=ubuntu24.04

# ---------------------------------------------------------------------------------------------------
# builder: compilers, a virtual environment at /opt/venv with every dependency, the appliance's wheel.
FROM ${CUDA_VERSION:+docker.io/nvidia/cuda:}${CUDA_VERSION:-docker.io/library/python:3.11-slim}${CUDA_VERSION:+-devel-${UBUNTU}} AS builder
ARG CUDA_VERSION
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DEBIAN_FRONTEND=noninteractive

RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake ninja-build \
      $(command -v python3 >/dev/null || echo python3 python3-venv python3-dev) \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip
ENV PATH=/opt/venv/bin:$PATH

# llama-cpp-python, compiled once into /wheels. Keep the version equal to pyproject.toml's pin: the
# dependency step below accepts only this wheel, so a mismatch fails the build instead of compiling
# again with default flags.
ARG LLAMA_CPP_VERSION=0.3.36
ARG LLAMA_CMAKE_ARGS=
RUN if [ -n "$LLAMA_CMAKE_ARGS" ]; then args="$LLAMA_CMAKE_ARGS"; \
    elif [ -n "$CUDA_VERSION" ]; then \
      args="-DGGML_CUDA=on -DGGML_NATIVE=OFF -DCMAKE_EXE_LINKER_FLAGS=-Wl,--allow-shlib-undefined"; \
    else \
      args="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"; \
    fi \
 && echo "llama-cpp-python $LLAMA_CPP_VERSION: CMAKE_ARGS=$args" \
 && CMAKE_ARGS="$args" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      pip wheel --no-deps --wheel-dir /wheels "llama-cpp-python==$LLAMA_CPP_VERSION"

# torch first and pinned, from the CPU (or CUDA) index, so nothing later can pull the CUDA build from
# PyPI; a constraint keeps it. The CPU image refuses any nvidia-* package.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=default
ARG PIP_FIND_LINKS=
ARG EXTRAS=all
RUN case ",$EXTRAS," in *,all,*|*,embed,*|*,image,*) ;; *) echo "no torch for extras $EXTRAS"; \
      touch /opt/constraints.txt; exit 0 ;; esac \
 && index="$TORCH_INDEX_URL" \
 && if [ "$index" = default ]; then \
      if [ -n "$CUDA_VERSION" ]; then \
        index="https://download.pytorch.org/whl/cu$(echo "$CUDA_VERSION" | cut -d. -f1,2 | tr -d .)"; \
      else index="https://download.pytorch.org/whl/cpu"; fi; \
    fi \
 && pip install ${index:+--extra-index-url "$index"} "torch==$TORCH_VERSION" \
 && pip freeze | grep -i '^torch==' > /opt/constraints.txt \
 && echo "installed $(cat /opt/constraints.txt)" \
 && if [ -z "$CUDA_VERSION" ] && ! grep -q '+cpu' /opt/constraints.txt; then \
      echo "torch is not the CPU build (set TORCH_INDEX_URL or PIP_FIND_LINKS)" >&2; exit 1; fi
ENV PIP_CONSTRAINT=/opt/constraints.txt

# The dependencies of the chosen extras, from pyproject.toml alone (an empty package stands in for
# the code, so editing the code does not reinstall them); then what the runtime never needs goes.
COPY pyproject.toml /tmp/deps/
RUN cd /tmp/deps \
 && touch README.md \
 && pip install --find-links /wheels --only-binary llama-cpp-python ".[$EXTRAS]" \
 && pip uninstall -y appliance \
 && rm -rf /tmp/deps \
 && if [ -z "$CUDA_VERSION" ] && pip list 2>/dev/null | grep -i '^nvidia-'; then \
      echo "the CPU image must not hold nvidia-* packages (above)" >&2; exit 1; fi \
 && site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
 && find "$site" -mindepth 2 -type d -name tests -not -path "$site/torch/*" -prune -exec rm -rf {} + \
 && rm -rf "$site/torch/include" \
 && find /opt/venv -name '*.a' -delete

# The appliance itself, as a wheel (tests and everything else .dockerignore names stay out).
COPY . /tmp/src
RUN pip wheel --no-deps --wheel-dir /tmp/app /tmp/src

# ---------------------------------------------------------------------------------------------------
# runtime: the same Python, the virtual environment, no compiler.
FROM ${CUDA_VERSION:+docker.io/nvidia/cuda:}${CUDA_VERSION:-docker.io/library/python:3.11-slim}${CUDA_VERSION:+-runtime-${UBUNTU}} AS runtime
ARG CUDA_VERSION
ARG APP_UID=10001
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    HOME=/home/appliance \
    XDG_CACHE_HOME=/data/.cache \
    HF_HOME=/data/.cache/huggingface \
    APPLIANCE_MODELS_PATH=/models \
    APPLIANCE_DATA_PATH=/data \
    APPLIANCE_ADDRESS=0.0.0.0:8080

# libgomp1: llama.cpp's OpenMP; tini: a PID 1 that forwards signals and reaps the extractors' children.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgomp1 tini \
      $(command -v python3 >/dev/null || echo python3 python3-venv) \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && groupadd --gid "$APP_UID" appliance \
 && useradd --no-log-init --uid "$APP_UID" --gid appliance --create-home --home-dir /home/appliance \
      --shell /usr/sbin/nologin appliance \
 && mkdir -p /models /data \
 && chown appliance:appliance /models /data

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /tmp/app /tmp/app
RUN pip install --no-deps /tmp/app/*.whl \
 && rm -rf /tmp/app \
 && appliance --help >/dev/null

USER appliance
WORKDIR /home/appliance
VOLUME ["/models", "/data"]
EXPOSE 8080
# Alive and answering (readiness, with preloads, is /readyz); follows the port of APPLIANCE_ADDRESS.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request as r; port = os.environ.get('APPLIANCE_ADDRESS', ':8080').rpartition(':')[2]; sys.exit(r.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status != 200)"]
# Listening on every interface inside the container: set APPLIANCE_API_KEYS (the server warns without).
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["appliance", "run"]
