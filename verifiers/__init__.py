"""reasonkit.verifiers: pure-function verifiers for scoring completions and paying rewards.

Imports only the standard library, sympy and math-verify (never torch / transformers / vllm).
"""
from .base import (  # noqa: F401
    BAD_GOLD, CORRECT, ERROR, NO_ANSWER, NOT_EQUAL, PARSE_ERROR, TIMEOUT, WRONG_NUMBERS,
    UnknownNameError, Verdict, VerifierSpec, get_verifier, register, verifier_names,
)
