# Sourced by scripts/*: make or reuse .venv and install exactly requirements.lock into it, then
# the project itself (editable, no dependencies, no build isolation: the build backend is in the
# lock too). Needs only Python >= 3.11 and pip. Re-installs when the lock or pyproject.toml changes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON_BIN="${PYTHON:-python3}"
if ! "$PYTHON_BIN" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "lienthong needs Python >= 3.11 (found: $("$PYTHON_BIN" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON_BIN" -m venv .venv
fi
VENV_PY="$ROOT/.venv/bin/python"
stamp=".venv/.installed-$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  [ -t 2 ] && echo "setting up .venv from requirements.lock (once; a minute or two)..." >&2
  log=$(mktemp)
  pip_install() {  # pip's chatter only when it fails
    "$VENV_PY" -m pip install --quiet --disable-pip-version-check "$@" >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; exit 1; }
  }
  pip_install --require-hashes --no-deps -r requirements.lock
  pip_install --no-deps --no-build-isolation -e .
  rm -f "$log"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
