# Sourced by scripts/test, scripts/run and scripts/supervise: make sure .venv exists and holds
# this project with its test and lint extras, reinstalling only when setup.cfg or setup.py changed.
# Leaves the working directory at the repository root.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
stamp=.venv/.installed-$(cat setup.cfg setup.py | sha256sum | cut -c1-16)
if [ ! -e "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip 2>/dev/null || true
    .venv/bin/python -m pip install --quiet -e '.[test,lint]'
    rm -f .venv/.installed-* && touch "$stamp"
fi
