#!/usr/bin/env bash
# Create .venv and install into it exactly the versions in uv.lock, with the dev extras, and the
# project itself in editable mode (tests and `make demo` run from the checkout). On a fresh
# Debian/Ubuntu the venv module may lack ensurepip (package python3-venv): as root we install it,
# otherwise we say so.
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=.venv
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required")'
if [ -L "$VENV" ]; then
  # A venv shared with another checkout (a git worktree): installing would point its editable
  # install at this checkout, under the other one's feet.
  echo "make setup: $VENV links to $(readlink -f "$VENV"), another checkout's venv; left as it is" >&2
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    version=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "Installing python3-venv (needed to create .venv)..."
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python${version}-venv" >/dev/null \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      "$PYTHON" -m venv "$VENV"
    else
      echo "Cannot create a virtual environment: install it with 'sudo apt-get install python${version}-venv'" >&2
      exit 1
    fi
  fi
fi
# The uv that wrote uv.lock (another version may want to rewrite the lock); it installs the whole
# set in seconds (pip takes ~40 s for the same versions).
UV_VERSION=0.13.9
if [ "$("$VENV/bin/uv" --version 2>/dev/null)" != "uv $UV_VERSION" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
# --locked: a pyproject.toml changed without `uv lock` stops here, saying so, rather than
# installing something else. --inexact: keep what is not in the lock (pip and uv, which bootstrap
# it); on a fresh clone that is nothing else, so the venv holds exactly the lock.
UV_PROJECT_ENVIRONMENT="$VENV" "$VENV/bin/uv" sync --quiet --locked --extra dev --inexact
