#!/usr/bin/env bash
# CI job "lowest": the floors in pyproject.toml as tested facts. The oldest declared Python
# (requires-python) with exactly the lowest declared numpy and array-api-compat, then the test suite.
# PyTorch and CuPy are not installed here (their tests skip, saying so): the floors concern numpy and
# array-api-compat, which every backend goes through.
set -euo pipefail
cd "$(dirname "$0")/.."
floor() { sed -n "s/^ *\"$1>=\([0-9.]*\)\".*/\1/p" pyproject.toml | head -1; }
pyver=$(sed -n 's/^requires-python = ">=\([0-9.]*\)"$/\1/p' pyproject.toml)
numpy=$(floor numpy)
compat=$(floor array-api-compat)
[ -n "$pyver" ] && [ -n "$numpy" ] && [ -n "$compat" ] || { echo "lowest: cannot read the floors from pyproject.toml"; exit 1; }

py=""
for candidate in /root/.pyenv/versions/"$pyver".*/bin/python "$(command -v "python$pyver" || true)"; do
  if [ -x "$candidate" ] && "$candidate" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$pyver'.split('.')))" 2>/dev/null; then
    py=$candidate; break
  fi
done
if [ -z "$py" ]; then
  echo "lowest: no Python $pyver on this machine; the oldest Python here is used instead" >&2
  py=$(command -v python3)
fi
echo "lowest: $("$py" -V) numpy==$numpy array-api-compat==$compat"

rm -rf .venv-lowest
"$py" -m venv .venv-lowest
. .venv-lowest/bin/activate
python -m pip install --quiet --upgrade pip
pip install --quiet "numpy==$numpy" "array-api-compat==$compat" -e ".[test]"
python - "$numpy" "$compat" <<'PY'
import sys, numpy, array_api_compat
def norm(v):  # "2.0" == "2.0.0"
    parts = [int(p) for p in v.split(".")]
    while parts and parts[-1] == 0:
        parts.pop()
    return parts
got = (numpy.__version__, array_api_compat.__version__)
assert [norm(v) for v in got] == [norm(v) for v in sys.argv[1:3]], f"installed {got}, floors {sys.argv[1:3]}"
print(f"lowest: running on Python {sys.version.split()[0]}, numpy {numpy.__version__}, array-api-compat {array_api_compat.__version__}")
PY
python -m pytest -q -p no:cacheprovider
