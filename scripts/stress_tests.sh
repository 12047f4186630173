#!/usr/bin/env bash
# The test suite on a busy machine (issue 23): the README's test command while one core is held
# by a busy loop, as when other work shares the machine.
#
#   scripts/stress_tests.sh                      # the whole suite once
#   RUNS=5 scripts/stress_tests.sh               # five times, stopping at the first failure
#   scripts/stress_tests.sh tests/test_bank.py -x   # extra arguments go to pytest
#   BUSY=2 scripts/stress_tests.sh               # hold two cores instead of one
#
# Prints each run's result and duration; exits with the first failing run's status (0 if all pass).
set -u

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-1}
BUSY=${BUSY:-1}
case "$RUNS" in ''|*[!0-9]*|0) echo "RUNS must be a positive whole number, got '$RUNS'" >&2; exit 2 ;; esac
case "$BUSY" in ''|*[!0-9]*) echo "BUSY must be a whole number, got '$BUSY'" >&2; exit 2 ;; esac

busy_pids=()
stop_busy() {
    for pid in "${busy_pids[@]}"; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    busy_pids=()
}
trap stop_busy EXIT
trap 'stop_busy; exit 130' INT
trap 'stop_busy; exit 143' TERM

for _ in $(seq 1 "$BUSY"); do
    python3 -c 'while True: pass' &   # one core kept at 100% for the whole run
    busy_pids+=("$!")
done
echo "stress: ${#busy_pids[@]} busy process(es) (pid ${busy_pids[*]:-none}) on $(nproc) cores; $RUNS run(s) of: $PYTHON -m pytest -q $*"

status=0
for run in $(seq 1 "$RUNS"); do
    start=$(date +%s)
    "$PYTHON" -m pytest -q "$@"
    status=$?
    seconds=$(( $(date +%s) - start ))
    if [ "$status" -eq 0 ]; then
        echo "stress: run $run/$RUNS passed in ${seconds} s"
    else
        echo "stress: run $run/$RUNS FAILED (pytest exit status $status) after ${seconds} s"
        break
    fi
done
exit "$status"
