"""GRPO training with verifier rewards (``reasonkit train``)."""
