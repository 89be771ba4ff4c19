#!/usr/bin/env bash
# Installs everything aime needs on a fresh Debian/Ubuntu machine: the EGL/Mesa libraries MuJoCo
# renders with (apt, when root), a virtual environment in .venv, PyTorch (the CPU build on machines
# without an NVIDIA GPU), and aime with its dev extras. Re-running is cheap: each step is skipped
# when already done for the current pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

have_egl() { ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1' && ls /usr/lib/*/dri/swrast_dri.so >/dev/null 2>&1; }
if ! have_egl; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing EGL/Mesa (MuJoCo's headless renderer)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri libglu1-mesa >/dev/null
  else
    echo "setup: EGL/Mesa libraries missing; install libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri as root" >&2
    exit 1
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.aime-installed-$(cat pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  "$VENV/bin/pip" install -q --upgrade pip wheel setuptools
  if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null && nvidia-smi >/dev/null 2>&1; then
      "$VENV/bin/pip" install -q "torch==$TORCH_VERSION"
    else
      # The CPU build: a local wheel where the machine has one, else PyTorch's CPU index (never CUDA).
      "$VENV/bin/pip" install -q "torch==$TORCH_VERSION" 2>/dev/null \
        || "$VENV/bin/pip" install -q "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu
    fi
  fi
  "$VENV/bin/pip" install -q -e ".[dev]"
  rm -f "$VENV"/.aime-installed-*
  touch "$stamp"
fi
echo "setup: ready ($VENV)"
