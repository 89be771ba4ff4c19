"""Metric names: constants with fixed prefixes, so dashboards and tests agree on them."""

ENV_EPISODES = "env/episodes"
ENV_STEPS = "env/steps"
ENV_FRAMES = "env/frames"  # rendered observations (= agent steps); physics steps are reported beside
ENV_STEPS_PER_SECOND = "env/steps_per_second"
ENV_FRAMES_PER_SECOND = "env/frames_per_second"
ENV_EPISODE_RETURN = "env/episode_return"
ENV_WORKER_FAILURES = "env/worker_failures"

REPLAY_EPISODES = "replay/episodes"
REPLAY_STEPS = "replay/steps"
REPLAY_BYTES = "replay/bytes"
REPLAY_EVICTED = "replay/evicted_episodes"

# The periodic held-out evaluation's score (one-step open-loop PSNR; higher is better): Ray Train keeps
# the best checkpoints by it, meta.json records it, and "best" checkpoints are chosen by it.
EVAL_SCORE = "eval/psnr_one_step/model"

# The model's lead over copy-last-frame in the periodic evaluation (dB; higher is better): one step
# ahead, and averaged over the horizon. aime tune optimises the first by default.
EVAL_PSNR_GAIN_ONE_STEP = "eval/psnr_gain_one_step"
EVAL_PSNR_GAIN_MEAN = "eval/psnr_gain_mean"

# Training (aime/train): fixed names, and prefixes for the families named after the model's loss terms.
TRAIN = "train/"  # + a loss component or model metric name (train/elbo/recon, train/prior/alpha, ...)
TRAIN_TOTAL = "train/total"
TRAIN_TASK = "train/task/"  # + a balanced task (elbo, perception, attention, ...)
TRAIN_LR = "train/lr/"  # + an optimizer parameter group
TRAIN_GRAD_NORM = "train/grad_norm"
TRAIN_DATA_WAIT = "train/data_wait_fraction"
TRAIN_SAMPLES_PER_SECOND = "train/samples_per_second"
TRAIN_GPU_MEMORY_GB = "train/gpu_memory_gb"
TRAIN_CHECKPOINT = "train/checkpoint"
# Unix time on rank 0 at the end of each log interval, the GPU synchronised: utilisation windows are cut
# by it (the records' own "time" is when Ray Train's controller polled the report, up to ~2 s later).
TRAIN_INTERVAL_END = "train/interval_end"

# A training worker's start-up, on its first step's report (aime/train/startup.py): seconds per phase.
STARTUP = "startup/"  # + imports, device, model, compile_setup, engine, restore, ..., first_step
STARTUP_WORKER_STARTED_AT = "startup/worker_started_at"  # Unix time the worker's loop began
STARTUP_PROCESS_STARTED_AT = "startup/process_started_at"  # Unix time its process was created
# + stream_ready: seconds from the worker's start to its stream's first batch, fetched in a thread
STARTUP_OVERLAPPED = "startup/overlapped/"

# Evaluation (aime/eval, and the periodic evaluation during training).
EVAL = "eval/"  # + a summary name (psnr_one_step/model, ssim_mean/baseline, neg_elbo, ...)
EVAL_WINDOWS = "eval/windows"
