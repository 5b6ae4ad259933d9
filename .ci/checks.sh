#!/usr/bin/env bash
# Lint, format, types and the docs site (issue 18). Needs `pip install -e ".[dev,docs]"`; .ci/run calls
# this after the tests. Each check runs even when an earlier one failed; the exit status says whether all passed.
set -uo pipefail
cd "$(dirname "$0")/.."
export NO_MKDOCS_2_WARNING=1  # Material's notice about its successor, printed on every build
failed=()
check() {
    echo "--- $*"
    "$@" || failed+=("$*")
}
check ruff check .
check ruff format --check .
check mypy xpnet
check mkdocs build --strict --quiet --site-dir "${TMPDIR:-/tmp}/xpnet-site"
if ((${#failed[@]})); then
    printf 'FAILED: %s\n' "${failed[@]}"
    exit 1
fi
echo "all checks passed"
