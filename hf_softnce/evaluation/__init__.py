"""Code-search evaluation: metrics, the ``evaluate`` metric module and the sentence-transformers evaluator."""

from hf_softnce.evaluation.cascade import choose_cascade_setting, evaluate_cascade
from hf_softnce.evaluation.evaluate_metric import CODE_SEARCH_METRIC_PATH, load_code_search_metric
from hf_softnce.evaluation.evaluator import CodeSearchEvaluator
from hf_softnce.evaluation.metrics import code_search_metrics
from hf_softnce.evaluation.multi import evaluate_retrieval_sets

__all__ = ["CODE_SEARCH_METRIC_PATH", "CodeSearchEvaluator", "choose_cascade_setting", "code_search_metrics",
           "evaluate_cascade", "evaluate_retrieval_sets", "load_code_search_metric"]
