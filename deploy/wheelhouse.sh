#!/usr/bin/env bash
# Prepares deploy/wheelhouse/: every Python package the images install, as
# wheels, so that `docker build` installs with `pip install --no-index
# --find-links /wheels` (no network in the build, no certificate of this
# host in an image). Run it on the host before building:
#   deploy/wheelhouse.sh                 # worker, producer and Flower packages
#   deploy/wheelhouse.sh --torch         # + torch==2.13.0 CPU (builds with TORCH_SOURCE=wheelhouse)
#   deploy/wheelhouse.sh --torch --tools # + moto's server (the local S3 stand-in image)
# Pins: deploy/worker-requirements.txt (constraints). torch comes from
# TORCH_INDEX_URL (default: PyTorch's CPU index); pip's own configuration
# (find-links, a local mirror) is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=deploy/wheelhouse
TORCH_INDEX_URL=${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}
FLOWER_VERSION=2.0.1
MOTO_VERSION=${MOTO_VERSION:-5.2.6}
with_torch=0 with_tools=0
for arg in "$@"; do
    case "$arg" in
        --torch) with_torch=1 ;;
        --tools) with_tools=1 ;;
        *) echo "usage: $0 [--torch] [--tools]" >&2; exit 2 ;;
    esac
done
mkdir -p "$OUT"
deps=$(mktemp "${TMPDIR:-/tmp}/spacer-deps.XXXXXX")
# The project's own dependencies (base + worker extra), read from pyproject.toml
# the same way the Dockerfiles read them.
"$PYTHON" - pyproject.toml > "$deps" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], 'rb'))['project']
import re
reqs = project['dependencies'] + project['optional-dependencies']['worker']
# torch is handled on its own (--torch): resolved here, it would be PyPI's CUDA build.
print('\n'.join(r for r in reqs if re.match(r'[A-Za-z0-9._-]+', r).group().lower() != 'torch'))
PY
# torch pinned everywhere, so nothing can pull another build of it.
constraints=$(mktemp "${TMPDIR:-/tmp}/spacer-constraints.XXXXXX")
trap 'rm -f "$deps" "$constraints"' EXIT
{ cat deploy/worker-requirements.txt; echo 'torch==2.13.0'; } > "$constraints"
pip_download() {
    # (grep: pip's warnings about the host's configured mirrors are noise here)
    "$PYTHON" -m pip download --quiet --disable-pip-version-check \
        --only-binary=:all: -d "$OUT" "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }
    return "${PIPESTATUS[0]}"
}
if [ "$with_torch" = 1 ]; then
    # Pinned: an unpinned torch would be a multi-GB CUDA build.
    # pip's own configuration first (a local copy of the CPU wheel), else
    # PyTorch's CPU index; never PyPI's torch, a CUDA build.
    if ! pip_download --no-deps torch==2.13.0 || ! ls "$OUT"/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then
        rm -f "$OUT"/torch-2.13.0-*.whl
        pip_download --no-deps --index-url "$TORCH_INDEX_URL" torch==2.13.0
    fi
    # torch's own dependencies (filelock, sympy, ...), as its wheel names them.
    "$PYTHON" - "$OUT"/torch-2.13.0+cpu-*.whl > "$deps.torch" <<'PY'
import sys, zipfile
wheel = zipfile.ZipFile(sys.argv[1])
meta = next(n for n in wheel.namelist() if n.endswith('.dist-info/METADATA'))
for line in wheel.read(meta).decode().splitlines():
    if line.startswith('Requires-Dist:') and 'extra ==' not in line:
        print(line.split(':', 1)[1].strip())
PY
    pip_download -c "$constraints" -r "$deps.torch"
    rm -f "$deps.torch"
fi
# The build backend for installing the project from its source tree offline.
# async-timeout: redis needs it on Python < 3.11.3 (Debian's 3.11.2), which
# this host's Python may not be; the wheelhouse holds both sides of markers.
pip_download -c "$constraints" -r "$deps" "setuptools>=77" wheel nvidia-ml-py==13.615.71 \
    'async-timeout>=4.0.3'

# Flower, for the flower image (Dockerfile.cpu, target flower).
pip_download -c "$constraints" "flower==$FLOWER_VERSION"
if [ "$with_tools" = 1 ]; then
    pip_download -c "$constraints" "moto[server]==$MOTO_VERSION"
fi
echo "wheelhouse: $(find "$OUT" -name '*.whl' | wc -l) wheels, $(du -sh "$OUT" | cut -f1) in $OUT"
