#!/usr/bin/env bash
# Installs the benchmark's tools when missing: wrk (Debian), oha (crates.io), FastAPI and
# uvicorn (PyPI). Sourced by run.sh; safe to run again.
set -euo pipefail

install_tools() {
    if ! command -v wrk >/dev/null; then
        echo "== installing wrk from Debian"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    fi
    if ! command -v oha >/dev/null && [ ! -x "$HOME/.cargo/bin/oha" ]; then
        echo "== installing oha with cargo (a few minutes, once)"
        cargo install oha --locked --quiet
    fi
    if ! python3 -c 'import fastapi, uvicorn' 2>/dev/null; then
        echo "== installing fastapi and uvicorn with pip"
        python3 -m pip install --quiet fastapi 'uvicorn[standard]'
    fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    install_tools
fi
