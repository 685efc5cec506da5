#!/usr/bin/env bash
# Set up archsim in ./.venv (if needed) and run the main job on the bundled defaults:
# EfficientViT-B1 quantized by M2Q on the M2-ViT accelerator, next to uniform 8-bit on the
# Trio-ViT-like baseline. `bash quickstart.sh --setup-only` installs without running.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# torch first, pinned: the CPU build of 2.13.0 on this kind of machine; an unpinned torch
# pulls a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
if [ "${1:-}" = "--setup-only" ]; then
    exit 0
fi
mkdir -p results
.venv/bin/archsim run efficientvit_b1 m2vit --out results/efficientvit_b1_m2vit.json --timing
