"""The engine: a campaign compiled to SQL (`compile`), evaluated for every learner in one
set-based pass (`evaluation`), with the managers' digests (`digests`) and the risk measure
(`risk_score`) planned in the same pass; `replay` sets a scratch warehouse up for
evaluating many past moments in a row (backtests).

    audience -> clock -> measures + stages -> triggers + policies -> decisions, follow-ups

May import: `campaign`, `warehouse`. Never delivery, channels or anything above.
"""

from relance.engine.compile import literal
from relance.engine.evaluation import (MAX_ATTEMPTS, Evaluation, EvaluationError,
                                       check_references, evaluate, persist)

__all__ = ["MAX_ATTEMPTS", "Evaluation", "EvaluationError", "check_references", "evaluate",
           "literal", "persist"]
