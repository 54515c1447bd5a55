# Sourced by scripts/test, scripts/run and scripts/supervise: make sure the checkout's .venv
# exists and holds this project with its test and lint extras, reinstalling only when setup.cfg or
# setup.py changed. Sets $checkout (the repository root, absolute) and $venv (its .venv).
#
# The working directory is left as the caller had it, so every relative path the user gives
# (scripts/run --data-dir reldata, the default ./grasp-data, --trace out.jsonl, test paths)
# means what it means where the user stands; only the venv lives in the checkout.
#
# pip's output goes to $venv/install.log and is shown only when the install fails: a first run
# prints nothing but real errors.
checkout=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$checkout/.venv
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
stamp=$venv/.installed-$(cat "$checkout/setup.cfg" "$checkout/setup.py" | sha256sum | cut -c1-16)
if [ ! -e "$stamp" ]; then
    log=$venv/install.log
    "$venv/bin/python" -m pip install --upgrade pip >"$log" 2>&1 || true
    if ! "$venv/bin/python" -m pip install -e "$checkout[test,lint]" >>"$log" 2>&1; then
        echo "${0##*/}: installing the project into $venv failed; pip said:" >&2
        tail -n 40 "$log" >&2
        echo "${0##*/}: (full log: $log)" >&2
        exit 1
    fi
    rm -f "$venv"/.installed-* && touch "$stamp"
fi
