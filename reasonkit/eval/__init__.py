"""The batched evaluation harness: benchmarks, prompts, generation backends, metrics, reports."""
