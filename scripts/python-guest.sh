#!/usr/bin/env bash
# A guest in another language: installs componentize-py (PyPI, in a venv under
# target/python-guest) and runs tests/components/python_guest.rs, which builds tests/python/app.py
# into a component from wit/ as it is and runs it. Extra arguments go to `cargo test`.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
COMPONENTIZE_PY_VERSION=0.25.1
venv=$PWD/target/python-guest/venv
if ! "$venv/bin/componentize-py" --version 2>/dev/null | grep -qx "componentize-py $COMPONENTIZE_PY_VERSION"; then
    echo "python-guest: installing componentize-py $COMPONENTIZE_PY_VERSION"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
fi
STAGELOCK_COMPONENTIZE_PY=$venv/bin/componentize-py \
    cargo test --locked "${suite[@]}" --test components "$@" -- --nocapture python_guest::
