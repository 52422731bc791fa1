"""reasonkit.verifiers: pure-function verifiers for scoring completions and paying rewards.

Imports only the standard library, sympy and math-verify (never torch / transformers / vllm).
Importing the package registers every verifier; ``resolve(name_or_expression)`` is the one way to
turn a name, a family member (``prefix:ARG``) or a weighted sum into a spec whose ``fields`` are the
reference fields it reads (see :mod:`.base` and :mod:`.compose`).
"""
from .base import (  # noqa: F401
    BAD_GOLD, CORRECT, ERROR, NO_ANSWER, NOT_EQUAL, PARSE_ERROR, TIMEOUT, WRONG_NUMBERS,
    UnknownNameError, Verdict, VerifierLookupError, VerifierSpec, get_verifier, register, register_family,
    verifier_families, verifier_names,
)
from .gsm8k import extract_gsm8k_answer, parse_gsm8k_gold, verify_gsm8k  # noqa: F401,E402
# countdown / format verifiers, composition, reward adapters, batch scoring (importing registers them)
from .countdown import verify_countdown  # noqa: F401,E402
from .format import verify_format  # noqa: F401,E402
from .compose import CompositeSpec, compose, parse_expression, resolve  # noqa: F401,E402
from .rewards import (  # noqa: F401,E402
    AgileRLReward, MissingColumnError, TRLReward, agilerl_reward, completion_text, reward_value, trl_reward,
    trl_reward_funcs,
)
from .batch import error_verdict, score_batch, score_row, summarize  # noqa: F401,E402
from .policy import apply_truncation, call_verifier, crash_verdict, is_error  # noqa: F401,E402  (one crash / truncation policy)
from .stepwise import find_steps, verify_stepwise  # noqa: F401,E402
from .math import verify_math  # noqa: F401,E402
from .reasoning_gym import rg_verifier  # noqa: F401,E402  (reasoning_gym itself is imported on first use)
from .base import register_family  # noqa: E402

register_family("rg", rg_verifier)
from ._extract import last_boxed_content, last_tag_content, think_content  # noqa: F401,E402
from .answer_key import answer_key  # noqa: F401,E402  (maj@k's canonical answer; issue 23, item 3)
