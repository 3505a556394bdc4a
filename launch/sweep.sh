#!/usr/bin/env bash
# Trains every latent family x {VAE, CVAE} x {standard, learned prior}, then evaluates them all.
#
#   bash launch/sweep.sh                                    # MNIST, the default config
#   bash launch/sweep.sh --config=gpu                       # flags after the script go to every run
#   FAMILIES="gaussian pareto" bash launch/sweep.sh --config.num_epochs=1
#   SWEEP_DIR=runs/sweep-gpu IWAE=64 bash launch/sweep.sh --config=gpu
#   DRY_RUN=1 bash launch/sweep.sh                          # print the commands only
#
# Settings (environment, with defaults): PYTHON=python, SWEEP_DIR=runs/sweep, FAMILIES (every
# registered family, asked of the package at run time, so new families join by themselves;
# also in a dry run), IWAE=1000 and PICTURES=true (for pareto_vae_jax.evaluate).
#
# Each run trains into $SWEEP_DIR/<family>-<cvae|vae>-<standard|learned>. Running the sweep
# again resumes unfinished runs and leaves finished ones as they are (the trainer returns their
# saved metrics). A run that fails is reported and the others go on; the runs that finished are
# evaluated into $SWEEP_DIR/summary.md, and the script then exits with status 1 if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python}"
SWEEP_DIR="${SWEEP_DIR:-runs/sweep}"
IWAE="${IWAE:-1000}"
PICTURES="${PICTURES:-true}"
DRY_RUN="${DRY_RUN:-0}"
if [[ -n "${FAMILIES:-}" ]]; then
  names="$FAMILIES"
else
  names="$("$PY" -c 'import pareto_vae_jax as p; print(*p.latent_names())')"
fi
read -ra families <<< "$names"

run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    echo "$*"
  else
    echo "+ $*" >&2
    "$@"
  fi
}

trained=()  # --workdir flags of the runs to evaluate
failed=()
for family in "${families[@]}"; do
  for kind in cvae vae; do
    conditional=--conditional
    if [[ "$kind" == vae ]]; then conditional=--noconditional; fi
    for prior in standard learned; do
      workdir="$SWEEP_DIR/$family-$kind-$prior"
      if run "$PY" -m pareto_vae_jax.main --latent="$family" "$conditional" --prior="$prior" \
        --workdir="$workdir" "$@"; then
        trained+=(--workdir="$workdir")
      else
        echo "$workdir failed: see its output above" >&2
        failed+=("$workdir")
      fi
    done
  done
done

if ((${#trained[@]})); then
  run "$PY" -m pareto_vae_jax.evaluate "${trained[@]}" --iwae_samples="$IWAE" \
    --pictures="$PICTURES" --summary="$SWEEP_DIR/summary.md"
fi
if ((${#failed[@]})); then
  echo "${#failed[@]} run(s) failed: ${failed[*]}" >&2
  exit 1
fi
