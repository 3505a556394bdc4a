#!/usr/bin/env bash
# Reproduces the source studies' tables and the Pareto claims (docs/RESULTS.md).
#
#   bash launch/reproduce.sh                 # everything, at the sources' epochs
#   SHORT=1 bash launch/reproduce.sh         # the CPU-shortened epochs docs/RESULTS.md reports
#   DRY_RUN=1 bash launch/reproduce.sh       # print the commands only
#   ONLY=beta FAMILIES=gaussian bash ...     # one group, the Gaussian latent only
#   ONLY=claims bash launch/reproduce.sh     # one group: report, heavy_tail, synthetic,
#                                            # mnist_exp, beta, denoise, stacked, collapse,
#                                            # claims, scale (Pareto with a learned scale),
#                                            # families (the later families and priors),
#                                            # report_conv (the report's conv net, 30 epochs),
#                                            # quickstart (the guide's model beside two others),
#                                            # holes (prior holes), sequence (the sequence VAE),
#                                            # literature (binarized MNIST, IS k = 5000, 8 models
#                                            # x 3 seeds, LIT_EPOCHS epochs each), literature_long
#                                            # (the Gaussian VAE trained on, evaluated along the way),
#                                            # t3vae (t3VAE's simulation, 1-D and 2-D, 8 models
#                                            # x 3 seeds; ParetoVAE's heavy-tailed reconstruction)
#
# Each run trains into runs/repro/<group>/<name> (a second invocation resumes or skips
# finished runs); evaluations and the summary tables go to runs/repro/<group>/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python}"
ROOT="${ROOT:-runs/repro}"
SHORT="${SHORT:-0}"
DRY_RUN="${DRY_RUN:-0}"
ONLY="${ONLY:-}"
IWAE="${IWAE:-1000}"
if [[ "$DRY_RUN" != 1 ]]; then mkdir -p "$ROOT"; fi

run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    echo "$*"
  else
    echo "+ $*" >&2
    "$@"
  fi
}

wanted() { [[ -z "$ONLY" || "$ONLY" == "$1" ]]; }

# epochs <full> <short>: the --config.num_epochs flag for this mode.
epochs() { if [[ "$SHORT" == 1 ]]; then echo "--config.num_epochs=$2"; else echo "--config.num_epochs=$1"; fi; }

train() {  # train <group> <name> <flags...>; a failed run is recorded and the rest go on
  local group=$1 name=$2
  shift 2
  run "$PY" -m pareto_vae_jax.main --workdir="$ROOT/$group/$name" "$@" \
    || echo "$group/$name failed: see its output above" | tee -a "$ROOT/failures.txt" >&2
}

finished_dirs() {  # --workdir flags for the runs of <group> that finished training
  local d
  for d in "$ROOT/$1"/*/; do
    if [[ -f "$d/test_metrics.json" ]]; then echo "--workdir=${d%/}"; fi
  done
}

summarize() {  # summarize <group> <iwae k> <pictures: true|false>
  local group=$1 k=$2 pictures=$3
  if [[ "$DRY_RUN" == 1 ]]; then
    echo "$PY -m pareto_vae_jax.evaluate --workdir=$ROOT/$group/<each finished run> --iwae_samples=$k --pictures=$pictures --summary=$ROOT/$group/summary.md"
    return
  fi
  local dirs
  mapfile -t dirs < <(finished_dirs "$group")
  run "$PY" -m pareto_vae_jax.evaluate "${dirs[@]}" --iwae_samples="$k" --pictures="$pictures" \
    --summary="$ROOT/$group/summary.md"
}

# FAMILIES="gaussian" narrows the heavy-tail groups to some of the study's families.
read -r -a STUDY_FAMILIES <<< "${FAMILIES:-gaussian lognormal inverse_gaussian pareto}"

if wanted report; then  # the MNIST CVAE report: table 4 (MLP substitute on CPU; see the config)
  cfg=configs/mnist_cvae_report_mlp.py
  for latent in gaussian pareto; do
    train report "$latent-vae" --config="$cfg" --latent="$latent" --noconditional
    train report "$latent-cvae" --config="$cfg" --latent="$latent" --conditional
  done
  train report pareto-cvae-learned --config="$cfg" --latent=pareto --conditional --prior=learned
  summarize report "$IWAE" true
fi

if wanted report_conv; then  # the report's own conv net (tables 1-2), 30 epochs, both decoders
  cfg=configs/mnist_cvae_report.py
  # Seed 0's runs keep their unsuffixed names; seeds 1 and 2 add -seed<N>. REPORT_SEEDS="0"
  # narrows the group to one seed.
  for seed in ${REPORT_SEEDS:-0 1 2}; do
    sfx=""; if [[ "$seed" != 0 ]]; then sfx="-seed$seed"; fi
    # The comparisons the text draws first: conditioning, then the guide's Pareto CVAE.
    train report_conv "gaussian-cvae-transpose$sfx" --config="$cfg" --latent=gaussian \
      --conditional --config.upsampling=transpose --seed="$seed"
    train report_conv "pareto-cvae-transpose$sfx" --config="$cfg" --latent=pareto --conditional \
      --config.upsampling=transpose --seed="$seed"
    train report_conv "gaussian-vae-transpose$sfx" --config="$cfg" --latent=gaussian \
      --noconditional --config.upsampling=transpose --seed="$seed"
    # Section 6.1's claim: without the KL warm-up the KL collapses.
    train report_conv "gaussian-vae-transpose-nowarmup$sfx" --config="$cfg" --latent=gaussian \
      --noconditional --config.upsampling=transpose --config.warmup_epochs=0 --seed="$seed"
    for conditioning in vae cvae; do  # the sub-pixel decoder in place of table 2's
      flag=--noconditional; if [[ "$conditioning" == cvae ]]; then flag=--conditional; fi
      train report_conv "gaussian-$conditioning-subpixel$sfx" --config="$cfg" --latent=gaussian \
        "$flag" --config.upsampling=subpixel --seed="$seed"
    done
  done
  summarize report_conv "$IWAE" true
  run "$PY" experiments/seed_table.py --root="$ROOT/report_conv" --out="$ROOT/report_conv/seeds.md" \
    --pairs=gaussian-cvae-transpose:pareto-cvae-transpose,gaussian-vae-transpose:gaussian-cvae-transpose,gaussian-vae-transpose:gaussian-vae-transpose-nowarmup,gaussian-vae-transpose:gaussian-vae-subpixel,gaussian-cvae-transpose:gaussian-cvae-subpixel
fi

if wanted heavy_tail; then  # the heavy-tail study on MNIST: table 4, row MNIST, 3 seeds
  for seed in 0 1 2; do
    for latent in "${STUDY_FAMILIES[@]}"; do
      name="$latent"; if [[ "$seed" != 0 ]]; then name="$latent-seed$seed"; fi
      train heavy_tail "$name" --config=configs/heavy_tail_study.py --latent="$latent" \
        --seed="$seed" "$(epochs 100 20)"
    done
  done
  train heavy_tail pareto-learned-cvae --config=configs/heavy_tail_study.py --latent=pareto \
    --conditional --prior=learned "$(epochs 100 20)"
  summarize heavy_tail 64 true
fi

if wanted synthetic; then  # table 4, row synthetic
  for latent in "${STUDY_FAMILIES[@]}"; do
    train synthetic "$latent" --config=configs/heavy_tail_synthetic.py --latent="$latent"
  done
  train synthetic pareto-learned-cvae --config=configs/heavy_tail_synthetic.py --latent=pareto \
    --conditional --prior=learned
  summarize synthetic 64 true
fi

if wanted mnist_exp; then  # table 4, row MNIST-exp
  for latent in "${STUDY_FAMILIES[@]}"; do
    train mnist_exp "$latent" --config=configs/heavy_tail_study.py --latent="$latent" \
      --dataset=mnist_exp "$(epochs 100 10)"
  done
  summarize mnist_exp 64 false
fi

# Tables 2, 5 and 6 run seeds 0-2 (STUDY_SEEDS="0" for seed 0 only); seed 0 keeps the plain
# run names, seeds 1 and 2 add -seed<N> (experiments/heavy_tail_tables.py reads both).
if wanted beta; then  # table 2: the beta sweep
  for seed in ${STUDY_SEEDS:-0 1 2}; do
    sfx=""; if [[ "$seed" != 0 ]]; then sfx="-seed$seed"; fi
    for beta in 0.0 0.01 0.02 0.03 0.1 0.2 0.3; do
      for latent in "${STUDY_FAMILIES[@]}"; do
        train beta "$latent-beta$beta$sfx" --config=configs/heavy_tail_study.py \
          --latent="$latent" --config.beta="$beta" --seed="$seed" "$(epochs 100 5)"
      done
    done
  done
  summarize beta 16 false
fi

if wanted denoise; then  # table 5: additive pixel noise
  for seed in ${STUDY_SEEDS:-0 1 2}; do
    sfx=""; if [[ "$seed" != 0 ]]; then sfx="-seed$seed"; fi
    for noise in normal lognormal uniform inverse_gaussian; do
      for latent in "${STUDY_FAMILIES[@]}"; do
        train denoise "$latent-$noise$sfx" --config=configs/heavy_tail_study.py \
          --latent="$latent" --config.noise="$noise" --seed="$seed" "$(epochs 100 5)"
      done
    done
  done
  summarize denoise 16 false
fi

if wanted stacked; then  # table 6: stacked noise channels
  for seed in ${STUDY_SEEDS:-0 1 2}; do
    sfx=""; if [[ "$seed" != 0 ]]; then sfx="-seed$seed"; fi
    for noise in normal lognormal uniform inverse_gaussian; do
      for latent in "${STUDY_FAMILIES[@]}"; do
        train stacked "$latent-$noise$sfx" --config=configs/heavy_tail_study.py \
          --latent="$latent" --config.noise="$noise" --config.noise_channels=3 --seed="$seed" \
          "$(epochs 100 5)"
      done
    done
  done
  summarize stacked 16 false
fi

if wanted heavy_tail || wanted beta || wanted denoise || wanted stacked; then
  # The study's tables 2, 4, 5, 6 (our error beside its values) and its figures 12, 26, 27.
  run "$PY" experiments/heavy_tail_tables.py --root="$ROOT" --out="$ROOT/heavy_tail_tables.md"
  run "$PY" experiments/heavy_tail_figures.py --beta_root="$ROOT/beta" \
    --generation_roots "$ROOT/heavy_tail" "$ROOT/denoise" --out_dir="$ROOT/heavy_tail_figures"
fi

if wanted collapse; then  # posterior collapse at equal beta: a wide latent, unconditional MNIST
  for latent in "${STUDY_FAMILIES[@]}"; do
    train collapse "$latent" --latent="$latent" --noconditional --config.latent_dim=50
  done
  summarize collapse 64 false
fi

if wanted claims; then  # the Pareto guide's claims: tail recovery and disentanglement
  for latent in "${STUDY_FAMILIES[@]}"; do
    train claims "$latent" --config=configs/pareto_claims.py --latent="$latent"
  done
  train claims pareto-learned --config=configs/pareto_claims.py --latent=pareto --prior=learned
  if [[ "$DRY_RUN" == 1 ]]; then
    echo "$PY -m pareto_vae_jax.claims --workdir=$ROOT/claims/<each finished run> --out=$ROOT/claims/claims.md"
  else
    mapfile -t dirs < <(finished_dirs claims)
    run "$PY" -m pareto_vae_jax.claims "${dirs[@]}" --out="$ROOT/claims/claims.md"
  fi
fi

if wanted scale; then  # Pareto with a learned posterior scale x_q >= x_m, beside the runs above
  learned=--config.pareto_posterior_scale=learned
  train report pareto-vae-scale --config=configs/mnist_cvae_report_mlp.py --latent=pareto \
    --noconditional "$learned"
  train report pareto-cvae-scale --config=configs/mnist_cvae_report_mlp.py --latent=pareto \
    --conditional "$learned"
  train collapse pareto-scale --latent=pareto --noconditional --config.latent_dim=50 "$learned"
  train claims pareto-scale --config=configs/pareto_claims.py --latent=pareto "$learned"
  train heavy_tail pareto-scale --config=configs/heavy_tail_study.py --latent=pareto "$learned" \
    "$(epochs 100 20)"
fi

if wanted scale; then
  train synthetic pareto-scale --config=configs/heavy_tail_synthetic.py --latent=pareto \
    --config.pareto_posterior_scale=learned
fi

if wanted scale; then
  # On synthetic_pareto's raw inputs a LogNormal latent decoded as z overflows at step 0 (its
  # run above is recorded as failed); decoding log z trains.
  train claims lognormal-logdecoder --config=configs/pareto_claims.py --latent=lognormal \
    --config.decoder_input=log
  if [[ "$DRY_RUN" != 1 ]]; then
    mapfile -t dirs < <(finished_dirs claims)
    run "$PY" -m pareto_vae_jax.claims "${dirs[@]}" --out="$ROOT/claims/claims.md"
  fi
fi

if wanted families; then  # every family and prior beyond the first four: the quick start's CVAE
  for latent in student_t lomax weibull generalized_pareto symmetric_pareto full_cov_gaussian \
                planar iaf; do
    train families "$latent-cvae" --latent="$latent" --conditional
  done
  for latent in pareto gaussian; do
    for prior in vamp mixture; do
      train families "$latent-cvae-$prior" --latent="$latent" --conditional --prior="$prior"
    done
  done
  summarize families 64 false
fi

if wanted quickstart; then  # the README's quick-start table: the guide's model, 3 seeds
  run "$PY" experiments/quickstart_table.py --out="$ROOT/quickstart" --seeds=0,1,2
fi

if wanted holes; then  # prior holes: Gaussian and Pareto CVAEs, standard and learned priors
  for seed in 0 1 2; do
    for spec in "pareto-learned:--latent=pareto" \
                "pareto-learned-scale:--latent=pareto --config.pareto_posterior_scale=learned" \
                "pareto-standard:--latent=pareto --prior=standard" \
                "gaussian-standard:--latent=gaussian" \
                "gaussian-learned:--latent=gaussian --prior=learned"; do
      # shellcheck disable=SC2086
      train holes "${spec%%:*}-seed$seed" --conditional --seed="$seed" ${spec#*:}
    done
  done
  if [[ "$DRY_RUN" != 1 ]]; then
    mapfile -t dirs < <(finished_dirs holes)
    run "$PY" -m pareto_vae_jax.holes "${dirs[@]}" --out="$ROOT/holes/holes.json"
  fi
fi

if wanted sequence; then  # the notes' sequence VAE: the preset, and the four posteriors + Pareto
  for arch in bilstm lstm; do
    for seed in 0 1 2; do
      train sequence "preset-$arch-seed$seed" --config=configs/sequence_vae.py --latent=gaussian \
        --seed="$seed" \
        --config.architecture="$arch"
    done
  done
  run "$PY" experiments/sequence_comparison.py --out="$ROOT/sequence/comparison" --seeds=0,1,2 \
    --extra="--config.free_bits=12"
fi

# Binarized MNIST on the literature's scale (docs/RESULTS.md, section 6): NLL = -(IWAE bound with
# k = 5000) over the 10k test digits, beside Burda et al.'s 86.76 / 84.78 and the VampPrior's 85.57.
LIT_EPOCHS="${LIT_EPOCHS:-100}"
# 25 test digits x 5000 samples per evaluation batch: the default 500 would decode 2.5M images
# at once (about 8 GB of logits alone), and on the CPU 25 is as fast (docs/RESULTS.md, 6b).
LIT_FLAGS=(--dataset=mnist --config.binarize=True --noconditional --config.latent_dim=32
           --config.summary_every_epochs=0 --config.eval_batch_size=25)
if wanted literature; then
  for seed in 0 1 2; do
    for spec in "gaussian:--latent=gaussian" \
                "pareto:--latent=pareto" \
                "pareto_learned_scale:--latent=pareto --config.pareto_posterior_scale=learned" \
                "lognormal:--latent=lognormal" \
                "inverse_gaussian:--latent=inverse_gaussian" \
                "student_t:--latent=student_t" \
                "iaf:--latent=iaf" \
                "gaussian_vamp:--latent=gaussian --prior=vamp"; do
      # shellcheck disable=SC2086
      train literature "${spec%%:*}-seed$seed" "${LIT_FLAGS[@]}" --seed="$seed" \
        --config.num_epochs="$LIT_EPOCHS" --config.iwae_samples=5000 ${spec#*:}
    done
  done
fi

# The Gaussian VAE under Burda et al.'s protocol (--config.lr_schedule=burda: 3280 epochs,
# stage i of 3**i epochs at 1e-3 * 10**(-i/7)), 3 seeds, resumed leg by leg; each leg ends with
# the IWAE bound (k = 5000), kept as test_metrics_e<epochs>.json. The schedule depends on the
# epoch only, so the legs add up to one 3280-epoch run. A run carried in from another machine
# further than a leg (experiments/long_carry.py) is evaluated where it stands, and the copy is
# named by the epochs it had. (docs/RESULTS.md, section 6b, ran it on a GPU with
# experiments/accelerator_batch.sh.) LONG_SEEDS="0" runs one seed, e.g. one per process.
if wanted literature_long; then
  for seed in ${LONG_SEEDS:-0 1 2}; do
    long="$ROOT/literature_long/gaussian-burda-seed$seed"
    for E in 174 442 779 1093 2000 3280; do
      train literature_long "gaussian-burda-seed$seed" "${LIT_FLAGS[@]}" --latent=gaussian \
        --config.lr_schedule=burda --seed="$seed" --config.num_epochs="$E" \
        --config.iwae_samples=5000
      if [[ "$DRY_RUN" != 1 && -f "$long/test_metrics.json" ]]; then
        done_epochs=$("$PY" -c "import json, sys; print(json.load(open(sys.argv[1]))['step'] // 468)" \
          "$long/test_metrics.json")
        cp "$long/test_metrics.json" "$long/test_metrics_e$done_epochs.json"
      fi
    done
  done
fi

if wanted t3vae; then  # t3VAE's heavy-tailed simulation beside ParetoVAE and the KL latents
  run "$PY" experiments/t3vae_synthetic.py --epochs=100 --seeds=0,1,2 --out="$ROOT/t3vae_synthetic" \
    --figure="$ROOT/t3vae_synthetic/tails.png"
  run "$PY" experiments/t3vae_synthetic.py --data=t_mixture2d --epochs=100 --seeds=0,1,2 \
    --out="$ROOT/t3vae_synthetic2d" --figure="$ROOT/t3vae_synthetic2d/tails.png"
  run "$PY" experiments/heavy_tailed_reconstruction.py --seeds=0,1,2 \
    --out="$ROOT/heavy_tailed_reconstruction"
fi
