#!/usr/bin/env bash
# Run pytest while every core is busy, as on a loaded CI machine: timing assumptions in the tests
# (a sleep standing for an event, a tight wall-clock bound) show up as failures here.
#
#   scripts/under_load.sh [-n RUNS] [PYTEST ARGS...]
#
# Starts one busy loop per core (nproc; LOAD_PROCESSES overrides), runs
# `$PYTHON -m pytest PYTEST ARGS` RUNS times (default 1; PYTHON defaults to .venv/bin/python), stops
# the loops, and exits with the status of the first failing run (0 when every run passed). Example:
#
#   scripts/under_load.sh -n 3 test/integration --ignore=test/integration/test_container.py -p no:cacheprovider -q
set -u

runs=1
if [ "${1:-}" = "-n" ]; then
    runs="$2"
    shift 2
fi
python="${PYTHON:-.venv/bin/python}"
loops="${LOAD_PROCESSES:-$(nproc)}"

busy=()
stop_load() {
    for pid in "${busy[@]}"; do
        kill "$pid" 2>/dev/null
    done
    wait "${busy[@]}" 2>/dev/null
}
trap stop_load EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for _ in $(seq "$loops"); do
    sh -c 'while :; do :; done' &
    busy+=("$!")
done
echo "under_load: $loops busy loops (pids ${busy[*]}); $runs run(s) of: $python -m pytest $*" >&2

status=0
for run in $(seq "$runs"); do
    began=$(date +%s)
    "$python" -m pytest "$@"
    rc=$?
    echo "under_load: run $run of $runs: pytest exited $rc after $(( $(date +%s) - began )) s" >&2
    if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then
        status=$rc
    fi
done
exit "$status"
