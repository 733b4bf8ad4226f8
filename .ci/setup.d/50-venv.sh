# envdeck and its test tools in a project venv (.venv), editable.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
# Byte-compile envdeck, as pip does when it installs a wheel (an editable install is not): with
# PYTHONDONTWRITEBYTECODE set, every start compiled ~100 modules again (~0.14 s of CPU before
# the dashboard's first frame, while the Textual it is measured against loads bytecode).
.venv/bin/python -m compileall -q backend tui themes >/dev/null
