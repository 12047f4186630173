#!/usr/bin/env bash
# The test suite on a busy machine (issue 23): a busy loop holds one core while the README's
# test command runs, RUNS times in a row (default 1), stopping at the first red run.
#   scripts/stress_tests.sh                  # the whole suite once, one core busy
#   RUNS=3 scripts/stress_tests.sh           # three times in a row
#   BUSY=2 scripts/stress_tests.sh -x -q tests/test_jobs.py   # two busy cores, one file
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-1}
BUSY=${BUSY:-1}
PYTHON=${PYTHON:-.venv/bin/python}
busy_pids=()
cleanup() { for pid in "${busy_pids[@]}"; do kill "$pid" 2>/dev/null; done; }
trap cleanup EXIT INT TERM
for _ in $(seq "$BUSY"); do
  python3 -c 'while True: pass' &
  busy_pids+=($!)
done
echo "stress: $BUSY busy loop(s) (pids ${busy_pids[*]}), $RUNS run(s) of: $PYTHON -m pytest -q $*"
for run in $(seq "$RUNS"); do
  start=$(date +%s)
  "$PYTHON" -m pytest -q "$@"
  status=$?
  echo "stress: run $run of $RUNS: $([ $status -eq 0 ] && echo passed || echo "FAILED (exit $status)") in $(( $(date +%s) - start )) s"
  [ $status -eq 0 ] || exit $status
done
echo "stress: all $RUNS run(s) passed with $BUSY core(s) busy"
