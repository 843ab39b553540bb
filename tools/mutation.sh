#!/usr/bin/env bash
# Mutation testing of the sans-IO core (README "Development"): mutmut changes one thing at a time in
# the modules listed under [tool.mutmut] in pyproject.toml and runs the fast, socket-free tests
# against each change; a mutant that no test notices "survives".
#
#   tools/mutation.sh                          every core module (slow: tens of minutes on 2 cores)
#   tools/mutation.sh matching redaction       only these modules (core/ or protocol/, by file name)
#
# Prints the kill rate per module; `mutmut show <name>` shows a surviving mutant, `mutmut browse`
# all of them. Needs the dev extra: pip install -e '.[test,dev]'.
set -euo pipefail
cd "$(dirname "$0")/.."

patterns=()
for module in "$@"; do
  if [[ -f mockrealtime/core/$module.py ]]; then
    patterns+=("mockrealtime.core.$module.*")
  elif [[ -f mockrealtime/protocol/$module.py ]]; then
    patterns+=("mockrealtime.protocol.$module.*")
  else
    echo "no module core/$module.py or protocol/$module.py" >&2
    exit 2
  fi
done

python -m mutmut run --max-children "${MUTMUT_JOBS:-2}" "${patterns[@]}" || true
python tools/mutation_report.py "$@"
