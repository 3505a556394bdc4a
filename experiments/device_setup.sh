# shellcheck shell=bash
# Sourced by the device wrappers (literature_nll.sh, accelerator_batch.sh) with the folder whose
# pareto_vae_jax should run: installs the wheels of .whl/ into /tmp/site, puts both on PYTHONPATH
# and checks the machine (experiments/device_check.py). If the image's own orbax-checkpoint, flax,
# optax or chex fail the check, .whl/alt's (the CPU venv's versions) are installed and checked.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || { echo "PIP FAILED"; exit 3; }
export PYTHONPATH=/tmp/site:$1 PVJ_KEEP_YNN_FUSION=1 PYTHONUNBUFFERED=1
if ! python3 experiments/device_check.py; then
  echo "device check failed with the image's packages; installing .whl/alt"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/alt/*.whl || { echo "PIP ALT FAILED"; exit 3; }
  python3 experiments/device_check.py || { echo "DEVICE CHECK FAILED"; exit 4; }
fi
