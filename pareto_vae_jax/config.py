r"""The default configuration, sized to finish on a 2-core CPU in minutes.

It lives in the package so that any install (a Colab ``pip install``, say) has it; the files in
``configs/`` import it and override a few fields. ``main`` uses it when no ``--config`` is given:

    python -m pareto_vae_jax.main --latent=pareto --conditional
    python -m pareto_vae_jax.main --config=configs/default.py --config.num_epochs=3
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # Data.
  c.dataset = "mnist"  # mnist | mnist_exp | synthetic_* | architectures | npz:PATH (sequences)
  c.data_dir = ""  # tensorflow-datasets dir for MNIST ("": ~/tensorflow_datasets)
  c.binarize = False  # dynamic binarization of [0, 1] pixels at every step
  c.noise = "none"  # denoising: none | normal | lognormal | uniform | inverse_gaussian
  c.noise_scale = 0.2  # the noise is noise_scale times a unit draw (train.NOISES)
  c.noise_channels = 0  # 0: add the noise to the pixels; m > 0: stack m noise channels
  # Model.
  c.latent = "pareto"  # any of pareto_vae_jax.latent_names() (README)
  c.conditional = False  # condition encoder, decoder (and learned prior) on the label
  c.prior = "auto"  # auto | standard (fixed) | learned (p(z|c) network) | vamp | mixture
  # auto: learned for a Pareto CVAE (the guide's Pareto(alpha_p(c), x_m)), else standard
  c.prior_components = 10  # K pseudo-inputs (vamp) or mixture components (mixture)
  c.latent_dim = 16  # number of latent dimensions
  c.architecture = "mlp"  # mlp | conv (the MNIST report's tables 1-2) | lstm | bilstm (sequences)
  c.hidden = (512, 256)  # MLP widths (encoder; the decoder mirrors them)
  c.upsampling = "subpixel"  # conv decoder upsampling: subpixel | transpose (docs/benchmarks.md)
  c.decoder_input = "auto"  # z | log (log z for positive families) | auto (log for pareto)
  c.dtype = "float32"  # network compute: float32 | bfloat16 (params stay float32)
  c.weight_init = "fan_in_uniform"  # weights, biases U(+-1/sqrt(fan_in)) (PyTorch's) | lecun_normal
  # | glorot_uniform (MATLAB's)
  c.activation = "relu"  # the MLP's hidden activation: relu | leaky_relu (slope 0.01)
  c.head_init_scale = 1.0  # encoder last-layer init scale (<1: smaller first draws)
  c.pareto_alpha0 = 1.0  # tail index of the standard Pareto prior
  c.pareto_scale = 1.0  # x_m of the Pareto prior (and of the posterior when shared)
  c.pareto_posterior_scale = "shared"  # shared (the guide) | learned: encoder predicts x_q >= x_m
  c.flow_layers = 8  # planar: flow layers (amortized: the encoder predicts u, w, b)
  c.iaf_steps = 2  # iaf: autoregressive steps (MADE networks)
  c.iaf_hidden = 128  # iaf: MADE hidden width
  c.iaf_context = 16  # iaf: size of the context h the encoder passes to each MADE
  c.latent_df = 5.0  # multivariate_t, multivariate_symmetric_pareto: degrees of freedom nu
  c.likelihood = "bernoulli"  # bernoulli (BCE) | gaussian | mse (per-pixel mean) | sse |
  # matlab_mse (sse / 2) | sequence | student_t | symmetric_pareto (multivariate over the input)
  c.gaussian_scale = 1.0  # observation std of the gaussian likelihood (scale of student_t,
  # symmetric_pareto)
  c.decoder_df = 5.0  # degrees of freedom of the student_t and symmetric_pareto likelihoods
  c.sequence_feature = "sigmoid"  # sequence decoder's feature: sigmoid ([0, 1]) | relu (Gaussian)
  # Objective.
  c.objective = "elbo"  # elbo | gamma_power (t3VAE: multivariate_t latent, gaussian likelihood;
  # ParetoVAE: multivariate_symmetric_pareto latent, laplace or gaussian likelihood)
  c.beta = 1.0  # weight of the KL term after warm-up
  c.warmup_epochs = 1.0  # linear KL warm-up beta(t) = min(1, t / T) over T epochs
  c.free_bits = 0.0  # KL floor in nats per dimension, or per group (0 = off)
  c.free_bits_groups = 0  # K: floor each of K groups of dimensions (eq. 14); 0: per dimension
  # Optimization.
  c.batch_size = 128  # global batch (split over all local devices)
  c.num_epochs = 10  # passes over the 60k training digits
  c.learning_rate = 1e-3  # Adam
  c.lr_schedule = "constant"  # constant | burda (Burda et al. 2016: stage i of 3**i epochs at
  # learning_rate * 10**(-i/7), i = 0..7; 3280 epochs in all; depends on the epoch only)
  c.grad_clip = 100.0  # global-norm clip; rarely active, guards heavy-tailed draws
  c.weight_decay = 0.0  # L2 added to the gradient before Adam (PyTorch Adam's weight_decay)
  c.seed = 0  # initialization, data order and sampling
  c.steps_per_dispatch = 0  # steps per compiled call; 0: auto (conv on CPU: 1)
  c.chunks_per_epoch = 10  # auto: about this many calls per epoch, for the progress line
  # Checkpoints and evaluation.
  c.checkpoint_every_steps = 0  # also save every N steps inside an epoch (0: at epoch ends)
  c.keep_checkpoints = 3  # the last k checkpoints are kept
  c.halt_after_steps = 0  # stop as if pre-empted after this many steps (tests; 0: off)
  c.iwae_samples = 64  # importance samples for the test IWAE bound
  c.eval_batch_size = 500  # test examples per evaluation batch
  # Observability.
  c.summary_every_epochs = 1  # TensorBoard images and latent histograms every N epochs (0: off)
  c.profile_steps = ""  # jax.profiler trace: "n" (steps 1..n) or "a:b" -> workdir/profile
  return c
