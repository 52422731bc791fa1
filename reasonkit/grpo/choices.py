"""The named choices of a GRPO run, defined once: the config checks them, the loss and the advantages
dispatch on them. Standard library only, so reading a config imports no torch."""
from __future__ import annotations

LOSS_TYPES = ("grpo", "bnpo", "dapo", "dr_grpo")  # see reasonkit.grpo.loss
SCALE_REWARDS = ("group", "batch", "none")       # see reasonkit.grpo.advantages
ZERO_VARIANCE = ("keep", "skip")                 # see reasonkit.grpo.batch
KL_ESTIMATORS = ("weighted_k3", "k3")            # see reasonkit.grpo.loss
IMPORTANCE_SAMPLING_LEVELS = ("token", "sequence")  # token: GRPO, sequence: GSPO (reasonkit.grpo.loss)
