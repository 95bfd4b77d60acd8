#!/usr/bin/env bash
# Installs what the live widget check (scripts/check_lab_widgets.py) needs: Chromium from Debian's package (apt, as
# root) and Playwright from PyPI into the project's environment (its Python is $1, default .venv/bin/python).
# Never fails the set-up: without root or apt it says so, and `make test` then reports the widget check as not run.
set -u
PY=${1:-.venv/bin/python}
if "$PY" -c "import playwright" >/dev/null 2>&1; then
  echo "Playwright: present"
else
  echo "Playwright: installing from PyPI"
  "$PY" -m pip install -q "playwright>=1.40" || echo "Playwright: NOT installed (pip failed); the widget check will be skipped."
fi
if command -v chromium >/dev/null 2>&1; then
  echo "Chromium: present ($(command -v chromium))"
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Chromium: installing Debian package chromium"
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 ||
     { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; }; then
    echo "Chromium: installed ($(command -v chromium))"
    exit 0
  fi
fi
cat <<MSG
Chromium: NOT installed (needs root and apt-get). The live JupyterLab widget check of \`make test\` will say so and
be skipped; everything else runs. To enable it: sudo apt-get install chromium   (Debian/Ubuntu), or pass
--chromium /path/to/chrome to scripts/check_lab_widgets.py.
MSG
exit 0
