# optbench: `make help` lists the targets.
PY      ?= .venv/bin/python
PROFILE ?= quick
ARGS    ?=
# the console command (`pip install` puts `optbench` on PATH); through PY it needs no reinstall
OPTBENCH ?= $(PY) -m suite.cli

# Offline machines keep real datasets in ../shared/data (see its MANIFEST.txt); use it
# as the data root unless OPTBENCH_DATA is already set. Elsewhere data downloads itself.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/MANIFEST.txt),)
export OPTBENCH_DATA ?= $(SHARED_DATA)
endif

.DEFAULT_GOAL := help
.PHONY: help install test test-slow lint bench bench-step report clean exp-decoupled-wd exp-decoupled-wd-verdict exp-decoupled-wd-lm-grid exp-decoupled-wd-lm-grid-verdict exp-8bit exp-sgd-vs-adam exp-sgd-vs-adam-cnn exp-sgd-vs-adam-cnn-fresh exp-sgd-vs-adam-cnn-verdict exp-decoupled-wd-baselines exp-deepobs

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-17s %s\n", $$1, $$2}'

install: ## create .venv and install the suite with every dependency (CPU torch pins in constraints.txt)
	python3 -m venv .venv
	.venv/bin/pip install --upgrade pip
	.venv/bin/pip install -c constraints.txt -e '.[dev]'

TEST_JOBS ?= 2  # pytest-xdist workers; whole test files go to one worker (module fixtures stay shared)
test: ## run the fast test set (not slow, not gpu), TEST_JOBS (default 2) files at a time
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile --durations=25 $(ARGS)

test-slow: ## run the slow tests too
	$(PY) -m pytest -q -m "not gpu" $(ARGS)

lint: ## ruff lint and format check
	$(PY) -m ruff check suite tests scripts
	$(PY) -m ruff format --check suite tests scripts

bench: ## run a bench profile and write its report to results/<profile> (PROFILE=quick|cpu|full|nightly)
	$(OPTBENCH) bench $(PROFILE) $(ARGS)

.PHONY: gate
gate: ## nightly regression gate: make gate NEW=results/nightly BASE=results/nightly-baseline
	$(PY) -m suite.report.documents.gate --new $(or $(NEW),results/nightly) --base $(or $(BASE),results/nightly-baseline) $(ARGS)

STAMP := $(shell date +%Y-%m-%d_%H-%M-%S)
EXP_OUT ?= results/experiments

# Decoupled weight decay (Loshchilov & Hutter 2019): Adam+L2 vs AdamW over an lr x wd grid,
# 72 runs each (the cost is in each experiment's YAML). ARGS=hydra.launcher.n_jobs=1 runs one at
# a time. The verdict is not drawn while a selected lr or wd sits on an open edge of the grid.
# exp-*-verdict remakes a verdict from records already made: RUNS=<run folders>.
exp-decoupled-wd: ## Adam+L2 vs AdamW, lr x wd grid, timm CNN on Fashion-MNIST, chosen on val -> results/experiments/decoupled_wd
	$(PY) -m suite.run -m experiment=decoupled_wd hydra.sweep.dir=runs/experiments/decoupled_wd/$(STAMP) $(ARGS)
	$(MAKE) exp-decoupled-wd-verdict RUNS=runs/experiments/decoupled_wd/$(STAMP)

exp-decoupled-wd-verdict: ## the CNN grid's verdict from RUNS (default: its committed records) -> results/experiments/decoupled_wd
	$(PY) -m suite.report.documents.experiments decoupled_wd $(or $(RUNS),$(EXP_OUT)/decoupled_wd/records) --out $(EXP_OUT)/decoupled_wd --force

exp-decoupled-wd-lm-grid: ## Adam+L2 vs AdamW, lr x wd grid, char LM on Tiny Shakespeare, chosen on val -> results/experiments/decoupled_wd_lm_grid
	$(PY) -m suite.run -m experiment=decoupled_wd_lm_grid hydra.sweep.dir=runs/experiments/decoupled_wd_lm_grid/$(STAMP) $(ARGS)
	$(MAKE) exp-decoupled-wd-lm-grid-verdict RUNS=runs/experiments/decoupled_wd_lm_grid/$(STAMP)

exp-decoupled-wd-lm-grid-verdict: ## the LM grid's verdict from RUNS (default: its committed records) -> results/experiments/decoupled_wd_lm_grid
	$(PY) -m suite.report.documents.experiments decoupled_wd $(or $(RUNS),$(EXP_OUT)/decoupled_wd_lm_grid/records) --out $(EXP_OUT)/decoupled_wd_lm_grid --force

EPOCHS ?= 3
exp-deepobs: ## DeepOBS fmnist_2c2d: SGD, Momentum 0.99, Adam at their tuned lrs, 3 seeds, EPOCHS epochs, compared with their curves
	$(PY) -m suite.run -m experiment=deepobs_fmnist_2c2d optimizer=sgd optimizer.lr=0.15849 optimizer.momentum=0 steps=$$(($(EPOCHS)*390)) hydra.sweep.dir=runs/experiments/deepobs/$(STAMP)/sgd $(ARGS)
	$(PY) -m suite.run -m experiment=deepobs_fmnist_2c2d optimizer=sgd optimizer.lr=0.0025119 optimizer.momentum=0.99 steps=$$(($(EPOCHS)*390)) hydra.sweep.dir=runs/experiments/deepobs/$(STAMP)/momentum $(ARGS)
	$(PY) -m suite.run -m experiment=deepobs_fmnist_2c2d optimizer=adam optimizer.lr=0.00025119 steps=$$(($(EPOCHS)*390)) hydra.sweep.dir=runs/experiments/deepobs/$(STAMP)/adam $(ARGS)
	$(PY) -m suite.report.documents.published runs/experiments/deepobs/$(STAMP) --reference results/deepobs/deepobs_baselines_fmnist_2c2d.csv --steps-per-epoch 390 --label sgd=optimizer:sgd,hp.momentum:0.0 --label momentum=optimizer:sgd,hp.momentum:0.99 --label adam=optimizer:adam --out runs/experiments/deepobs/$(STAMP)/comparison

# The 8-bit and SGD-vs-Adam verdicts read the CPU tier (make campaign): every optimizer tuned on
# val in 4 independent studies of 4 trials, 10 fresh seeds at its chosen point, paired by seed.
# TIER_WORKLOADS: the workloads to read (default: all five of the complete tier).
TIER_DIR ?= results/cpu
TIER_WORKLOADS ?= cnn_fashion vit_fashion lm_shakespeare lm_brown fmnist_2c2d
exp-8bit: ## 32-bit vs 8-bit AdamW (in-house, bnb) on every model kind of the CPU tier, with equivalence margins (Dettmers et al. 2022) -> results/experiments/state_8bit
	$(PY) -m suite.report.documents.experiments state_8bit $(foreach t,$(TIER_WORKLOADS),$(foreach o,torch_adamw_fused adamw8bit bnb_adamw8bit,$(TIER_DIR)/$(t)/$(o)/reruns)) --out $(EXP_OUT)/state_8bit --force

exp-sgd-vs-adam: ## tuned Nesterov SGD vs tuned AdamW on every model kind of the CPU tier, at the tier's budgets (Wilson et al. 2017) -> results/experiments/sgd_vs_adam
	$(PY) -m suite.report.documents.experiments sgd_vs_adam $(foreach t,$(TIER_WORKLOADS),$(foreach o,sgd_nesterov torch_adamw_fused,$(TIER_DIR)/$(t)/$(o)/reruns)) --out $(EXP_OUT)/sgd_vs_adam --force

BASELINES ?= results/baselines
exp-decoupled-wd-baselines: ## Adam+L2 vs AdamW as tuned on lm_shakespeare by the baselines -> results/experiments/decoupled_wd_lm
	$(PY) -m suite.report.documents.experiments decoupled_wd $(BASELINES)/lm_shakespeare/adam/reruns $(BASELINES)/lm_shakespeare/adamw/reruns --out $(EXP_OUT)/decoupled_wd_lm --force

SVA_RUNS ?= runs/experiments/sgd_vs_adam_cnn/$(STAMP)
# the budget, and an evaluation every SVA_EVAL steps; the budget check runs twice both
SVA_STEPS ?= 1500
SVA_EVAL ?= 150
SVA_SGD_LRS ?= 0.03125,0.0625,0.125,0.25,0.5
SVA_ADAM_LRS ?= 0.0009765625,0.001953125,0.00390625,0.0078125,0.015625,0.03125,0.0625
exp-sgd-vs-adam-cnn: ## SGD (momentum 0.9) vs Adam on the timm CNN at 1,500 steps: lr grids at 2 seeds, the val-chosen lr at 8 fresh seeds (~1.7 core-h) -> results/experiments/sgd_vs_adam_cnn
	$(PY) -m suite.run -m experiment=sgd_vs_adam_cnn optimizer=sgd optimizer.lr=$(SVA_SGD_LRS) steps=$(SVA_STEPS) eval_every=$(SVA_EVAL) hydra.sweep.dir=$(SVA_RUNS)/grid/sgd $(ARGS)
	$(PY) -m suite.run -m experiment=sgd_vs_adam_cnn optimizer=adam optimizer.lr=$(SVA_ADAM_LRS) steps=$(SVA_STEPS) eval_every=$(SVA_EVAL) hydra.sweep.dir=$(SVA_RUNS)/grid/adam $(ARGS)
	$(MAKE) exp-sgd-vs-adam-cnn-fresh SVA_RUNS=$(SVA_RUNS)

exp-sgd-vs-adam-cnn-fresh: ## stages 2-3 of exp-sgd-vs-adam-cnn: each optimizer's val-chosen lr of SVA_RUNS/grid at seeds 1-8, and at twice the steps at seeds 1-3 (the budget check), then the verdict
	set -e; for o in sgd adam; do chosen=$$($(PY) -m suite.report.documents.chosen $(SVA_RUNS)/grid/$$o); \
	  $(PY) -m suite.run -m experiment=sgd_vs_adam_cnn optimizer=$$o $$chosen seed=1,2,3,4,5,6,7,8 steps=$(SVA_STEPS) eval_every=$(SVA_EVAL) hydra.sweep.dir=$(SVA_RUNS)/fresh/$$o $(ARGS); \
	  $(PY) -m suite.run -m experiment=sgd_vs_adam_cnn optimizer=$$o $$chosen seed=1,2,3 steps=$$((2 * $(SVA_STEPS))) eval_every=$$((2 * $(SVA_EVAL))) hydra.sweep.dir=$(SVA_RUNS)/double/$$o $(ARGS); done
	$(MAKE) exp-sgd-vs-adam-cnn-verdict RUNS=$(SVA_RUNS) SVA_OUT=$(SVA_OUT)

SVA_OUT ?= $(EXP_OUT)/sgd_vs_adam_cnn
SVA_RECORDS = $(or $(RUNS),$(SVA_OUT)/records)
exp-sgd-vs-adam-cnn-verdict: ## the timm-CNN SGD-vs-Adam verdict from RUNS (default: its committed records): chosen on RUNS/grid, scored on RUNS/fresh, budget checked on RUNS/double
	$(PY) -m suite.report.documents.experiments sgd_vs_adam $(SVA_RECORDS)/grid --fresh $(SVA_RECORDS)/fresh $(if $(wildcard $(SVA_RECORDS)/double),--double $(SVA_RECORDS)/double) --out $(SVA_OUT) --force

# --- the fair-comparison protocol (README "Fair comparison") -----------------------------
TRIALS ?= 8
.PHONY: tune compare baselines
tune: ## tune one optimizer on one task on val: make tune TASK=toy OPTIMIZER=adamw TRIALS=8 [STEPS=200] [OUT=runs/tune/toy/adamw] [CONFIG_DIR=mine]
	$(OPTBENCH) tune $(if $(CONFIG_DIR),--config-dir $(CONFIG_DIR)) --task $(or $(TASK),$(error TASK= is required, e.g. TASK=toy)) --optimizer $(or $(OPTIMIZER),$(error OPTIMIZER= is required, e.g. OPTIMIZER=adamw)) --trials $(TRIALS) $(if $(STEPS),--steps $(STEPS)) $(if $(OUT),--out $(OUT)) $(ARGS)

compare: ## tune OPTIMIZER with the CPU tier's budget once it is complete (until then the committed baselines'; TIER=cpu or BASELINES=<dir> to choose), its reruns interleaved with a reference AdamW control; verdicts.md + leaderboard into OUT: make compare OPTIMIZER=<name> OUT=<folder> [TIER=cpu] [TASKS="a b"] [CONFIG_DIR=mine]
	$(OPTBENCH) compare $(if $(CONFIG_DIR),--config-dir $(CONFIG_DIR)) --optimizer $(or $(OPTIMIZER),$(error OPTIMIZER= is required)) --out $(or $(OUT),$(error OUT= is required, a folder for the leaderboard)) $(if $(TIER),--tier $(TIER),$(if $(filter command line environment,$(origin BASELINES)),--baselines $(BASELINES))) $(if $(TASKS),--tasks $(TASKS)) $(ARGS)

JOBS ?= 2
.PHONY: campaign campaign-bg campaign-plan tier-report tier-compact tier-cost
campaign: ## the CPU tier (suite/conf/protocol/cpu.yaml) -> results/cpu: resumable, progress and ETA; JOBS=2
	$(PY) -m suite.tune.campaign --protocol cpu --jobs $(JOBS) $(ARGS)

campaign-bg: ## make campaign in the background, its log in results/logs/campaign-<date>.log
	mkdir -p results/logs && nohup $(PY) -m suite.tune.campaign --protocol cpu --jobs $(JOBS) $(ARGS) > results/logs/campaign-$(STAMP).log 2>&1 &

campaign-plan: ## the CPU tier's units, what is done, and the core-hour estimate
	$(PY) -m suite.tune.campaign --protocol cpu --plan $(ARGS)

tier-compact: ## rewrite results/cpu's study.db files with 512-byte SQLite pages (the same rows, ~5x smaller); run while no campaign writes them
	$(PY) -m suite.tune.study_file results/cpu

tier-cost: ## results/cpu/COMMAND.md: the command, the core-hours the tier's records took (per workload and stage), the code, machine and versions
	$(PY) -m suite.tune.cost --protocol cpu

tier-report: ## the CPU tier's report into results/cpu/report (refused until the tier is complete; WORKLOADS=<complete ones> for a part)
	$(PY) -m suite.report.documents.tier results/cpu --protocol cpu $(if $(WORKLOADS),--workloads $(WORKLOADS)) $(ARGS)

baselines: ## tune every baseline optimizer on the 4 CPU workloads -> results/baselines (~1.5 h on 2 cores; resumable)
	$(PY) -m suite.tune.baselines --out $(or $(OUT),results/baselines) --jobs $(JOBS) $(ARGS)

.PHONY: reliability
reliability: ## inject faults and bad input through the real entry point, print the table (exit 1 on any failure)
	$(PY) scripts/reliability.py $(ARGS)

bench-step: ## time one optimizer step for every registry entry (1M/10M/50M params)
	$(PY) -m suite.bench.step $(ARGS)

report: ## tables and plots from run records: make report RUNS=runs OUT=results/report [ARGS=--force]
	$(OPTBENCH) report $(or $(RUNS),runs) --out $(or $(OUT),results/report) $(ARGS)

clean: ## remove caches (never results/ or runs)
	rm -rf .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
