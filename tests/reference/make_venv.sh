#!/usr/bin/env bash
# Creates the Python environment that runs the numerical reference (Hugging Face
# transformers in float32) for the golden generators in this folder. It is NOT
# needed to build or test q3vl: goldens are committed. Every package is pinned in
# requirements.lock (torch's Linux wheels pull ~2.3 GB of CUDA libraries; ~3 GB total).
#
#   tests/reference/make_venv.sh            # -> tests/reference/.venv
#   VENV=/some/dir tests/reference/make_venv.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${VENV:-$HERE/.venv}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import torch, transformers, av" 2>/dev/null \
   && [ "$("$VENV/bin/python" -m pip freeze | sort)" = "$(sort "$HERE/requirements.lock")" ]; then
  echo "reference venv up to date: $VENV"; exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet --no-deps -r "$HERE/requirements.lock"
"$VENV/bin/python" -c "import torch, torchvision, transformers; print('reference venv:', torch.__version__, torchvision.__version__, transformers.__version__)"
