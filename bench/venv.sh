# Sourced by the PyTorch comparisons: bench/.venv with torch from PyPI, created on first use.
if [ ! -x bench/.venv/bin/python ]; then
    python3 -m venv bench/.venv
    bench/.venv/bin/pip install -q torch
fi
