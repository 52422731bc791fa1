"""reasonkit.qa: check a grader before trusting its number.

* :mod:`.rewrites` -- answer-preserving and answer-breaking rewrites of a completion;
* :mod:`.corpora` -- the completions they are applied to (gold corpora, a run's samples.jsonl);
* :mod:`.metamorphic` -- per rewrite and verifier, the share of verdicts that move as they must;
* :mod:`.differential` -- two graders over the same completions, with every disagreement;
* :mod:`.cli` -- ``reasonkit qa metamorphic`` and ``reasonkit qa differential``.

Standard library, rich and the verifiers only: never torch / transformers / vllm.
"""
