#!/usr/bin/env bash
# Download the wheels that scripts/gpu_check.sh installs on a GPU machine with no internet,
# for a user to carry there with the repository.
#
#   scripts/fetch_gpu_wheels.sh [DIR]          # default DIR: wheels/
#
# The GPU machine is assumed to have torch, torchvision, timm, transformers, triton, numpy,
# pandas, scipy, matplotlib, scikit-learn, rich, pytest, hypothesis, requests, protobuf,
# pyyaml ... already (a CUDA data-science image). What it lacks is below: the suite's other
# dependencies and everything they need that such an image lacks, at the versions the CPU
# CI installs (constraints.txt + pip's resolution). `pip download --no-deps` fetches exactly
# these, one version each, for CPython $PYTHON_VERSION on manylinux x86_64.
#
# Environment:
#   PYTHON_VERSION  the GPU machine's Python, major.minor (default 3.12: this workplace's
#                   GPU image runs Python 3.12.3; the CPU CI machine runs 3.11)
#   WITH_WANDB      1 (default) or 0: W&B and its needs (~21 MB) are only imported for
#                   logger=wandb, and gpu_check.sh runs with logger=none. 0 keeps the folder
#                   at ~46 MB, e.g. to fit a 64 MiB upload limit
#   PIP             the pip to run (default: python3 -m pip)
set -euo pipefail

DEST=${1:-wheels}
PYTHON_VERSION=${PYTHON_VERSION:-3.12}
PIP=${PIP:-python3 -m pip}
WITH_WANDB=${WITH_WANDB:-1}

# name==version: the suite's dependencies missing from the GPU image, then their own needs
# (read from each wheel's Requires-Dist; keep one version of each)
WHEELS=(
  # configuration
  hydra-core==1.3.8
  omegaconf==2.3.1
  hydra-joblib-launcher==1.2.0
  hydra-submitit-launcher==1.2.0
  submitit==1.5.4
  # the reference 8-bit optimizers (one wheel with its CUDA 11.8 ... 13.x libraries)
  bitsandbytes==0.50.2
  # pandas' time zones; the build backend for `pip install -e .` with no index
  tzdata==2026.6
  setuptools==84.2.1
)
WANDB=(
  # W&B (offline mirror) and what it needs
  wandb==0.31.0
  platformdirs==4.14.8
  pydantic==2.14.4
  pydantic-core==2.50.5
  annotated-types==0.8.0
  typing-inspection==0.4.5
  cwevals==0.0.1b1
  opentelemetry-api==1.45.2
  opentelemetry-sdk==1.45.2
  opentelemetry-proto==1.45.2
  opentelemetry-semantic-conventions==0.66b2
  opentelemetry-exporter-otlp-proto-http==1.45.2
  opentelemetry-exporter-otlp-proto-common==1.45.2
  opentelemetry-exporter-otlp-common==0.66b2
  opentelemetry-exporter-http-transport==0.66b2
  googleapis-common-protos==1.76.0
  httpx2==2.16.2
  httpcore2==2.16.2
  distro==1.9.0
  sniffio==1.3.1
  truststore==0.10.5
)

# pure-Python packages that PyPI serves only as a source archive: built into a
# py3-none-any wheel here, so the GPU machine needs no build step
PURE_SDIST=(
  antlr4-python3-runtime==4.9.3 # hydra-core and omegaconf pin 4.9.*
)

# manylinux tags: pip matches each exactly, so name every glibc from 2.17 to 2.39
PLATFORMS=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
for n in $(seq 17 39); do PLATFORMS+=(--platform "manylinux_2_${n}_x86_64"); done

if [[ $WITH_WANDB == 1 ]]; then
  WHEELS+=("${WANDB[@]}")
else
  echo "leaving out wandb and its needs (WITH_WANDB=0)"
fi

mkdir -p "$DEST"
# shellcheck disable=SC2086  # PIP may be a command with arguments
$PIP wheel --no-deps --wheel-dir "$DEST" "${PURE_SDIST[@]}"
# shellcheck disable=SC2086
$PIP download --no-deps --only-binary=:all: --implementation cp \
  --python-version "$PYTHON_VERSION" "${PLATFORMS[@]}" --dest "$DEST" "${WHEELS[@]}"

echo
echo "wheels for CPython $PYTHON_VERSION in $DEST ($(du -sh "$DEST" | cut -f1)):"
ls -1 "$DEST"
echo "carry $DEST next to the repository and run: WHEELS=$DEST scripts/gpu_check.sh"
