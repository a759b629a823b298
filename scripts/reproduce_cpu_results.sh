#!/usr/bin/env bash
# Remake every committed CPU result under results/ in one go (about 4 hours on the
# 2-core CI machine; results/tasks and results/nanogpt_cpu hold their own commands), logging each step's output and wall time to results/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p results/logs
PY=.venv/bin/python
# offline machines: the real datasets in ../shared/data (as `make` does)
if [ -z "${OPTBENCH_DATA:-}" ] && [ -f ../shared/data/MANIFEST.txt ]; then
  export OPTBENCH_DATA=$(cd ../shared/data && pwd)
fi
step() {  # step <name> <command...>
  local name=$1; shift
  echo "== $name: $*" | tee "results/logs/$name.log"
  local t0=$SECONDS
  "$@" 2>&1 | grep -v "gemm_4bit_forward" | tee -a "results/logs/$name.log"
  echo "== $name: $((SECONDS - t0)) s" | tee -a "results/logs/$name.log"
}
step bench-step bash scripts/bench_step_cpu.sh            # results/bench_step_cpu.md
step overhead-fmnist_mlp $PY -m suite.bench.overhead --task fmnist_mlp --steps 200 --repeats 3
step overhead-lm_shakespeare $PY -m suite.bench.overhead --task lm_shakespeare --steps 100 --repeats 2
step baselines make bench PROFILE=cpu                       # results/baselines + its report (~1.5 h)
step exp-sgd-vs-adam make exp-sgd-vs-adam                   # from the baselines
step exp-8bit make exp-8bit                                 # from the baselines
step exp-decoupled-wd-baselines make exp-decoupled-wd-baselines
step exp-decoupled-wd make exp-decoupled-wd                 # its own lr x wd grid
step exp-deepobs make exp-deepobs EPOCHS=3                  # results/deepobs (~1.5 h)
step bench-quick make bench
