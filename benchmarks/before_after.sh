#!/usr/bin/env bash
# Issue 20's "performance within 10 % of before": the same four measurements on two commits,
# back to back on this machine, alternating (before, after, before, after) so that a busy spell
# of a shared machine does not land on one side only.
#
#   benchmarks/before_after.sh 186d00a HEAD > /tmp/before_after.txt    # ROUNDS=1 for one pass
#
# Needs the real stack for the decision and event figures (DATABASE_URL, REDIS_URL as in
# benchmarks/api_load.py; a separate database is created there if missing). Each commit is checked
# out into a temporary worktree and run with this checkout's virtualenv.
set -euo pipefail
before=${1:?usage: before_after.sh BEFORE AFTER}
after=${2:?usage: before_after.sh BEFORE AFTER}
root=$(git rev-parse --show-toplevel)
python="$root/.venv/bin/python"
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/crm_console_bench}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/3}
export OPENBLAS_NUM_THREADS=1
work=$(mktemp -d)
trap 'for c in before after; do git -C "$root" worktree remove --force "$work/$c" 2>/dev/null || true; done; rm -rf "$work"' EXIT
git -C "$root" worktree add -q --detach "$work/before" "$before"
git -C "$root" worktree add -q --detach "$work/after" "$after"
ln -s "$root/.venv" "$work/before/.venv"  # the scripts start gunicorn from the checkout's .venv
ln -s "$root/.venv" "$work/after/.venv"

measure() {  # side, then the command run in that side's checkout
  local side=$1; shift
  echo "### $side ($(git -C "$work/$side" rev-parse --short HEAD)): $*"
  (cd "$work/$side" && PYTHONPATH=. "$@") 2>&1 | grep -v "WARNING\|Warning\|^\s*$" | tail -40 \
    || echo "(failed)"
}

echo "# before/after on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(date -u +%FT%RZ)"
for round in $(seq "${ROUNDS:-2}"); do
  for side in before after; do
    measure $side "$python" benchmarks/simulator_throughput.py --customers 16384 --days 30 --repeats 2
    measure $side "$python" benchmarks/decision_latency.py --requests 100 --samples 200
    measure $side "$python" benchmarks/api_load.py --rates 25 --seconds 15 --service-samples 100
    measure $side env -u DATABASE_URL -u REDIS_URL "$python" benchmarks/batch_scoring.py --customers 100000
  done
done
