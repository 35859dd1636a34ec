"""Code-search metric for the Hugging Face ``evaluate`` library: MRR@k, Recall@k and NDCG@k.

Load it offline from the installed package with ``hf_softnce.evaluation.load_code_search_metric()`` (or
``evaluate.load("<this folder>")``). The numbers come from :mod:`hf_softnce.evaluation.metrics`, the same
functions the sentence-transformers evaluator uses.
"""

import datasets
import evaluate

from hf_softnce.evaluation.metrics import (
    DEFAULT_MRR_AT_K,
    DEFAULT_NDCG_AT_K,
    DEFAULT_RECALL_AT_K,
    code_search_metrics,
)

_DESCRIPTION = """\
Code search ranks the whole codebase for each natural-language query. This metric takes, per query, the
ranked code ids (best first) and the relevant (gold) code ids, and returns the mean reciprocal rank counted
up to rank 1000 (the papers' MRR), Recall@1/5/10 and NDCG@10, with binary relevance. Cut-offs are
configurable. With `groups` ({code id: duplicate group}) it also returns `dedup_` metrics in which any
member of a gold code's duplicate group counts as a hit.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `str` or `int`): per query, code ids ranked best first.
    references (`list` of `list` of `str` or `int`): per query, the relevant code ids (at least one).
    mrr_at_k (`int` or `list` of `int`, defaults to 1000): MRR cut-off(s).
    recall_at_k (`int` or `list` of `int`, defaults to [1, 5, 10]): Recall cut-off(s).
    ndcg_at_k (`int` or `list` of `int`, defaults to [10]): NDCG cut-off(s).
    groups (`dict`, optional): {code id: duplicate group}; adds the `dedup_` metrics.
Returns:
    `dict` with `mrr@1000`, `recall@1`, `recall@5`, `recall@10`, `ndcg@10` (one key per cut-off).
Examples:
    >>> from hf_softnce.evaluation import CODE_SEARCH_METRIC_PATH  # this folder, wherever hf_softnce is installed
    >>> metric = evaluate.load(CODE_SEARCH_METRIC_PATH)
    >>> metric.compute(predictions=[["c2", "c1"]], references=[["c1"]], mrr_at_k=10, recall_at_k=[1], ndcg_at_k=[2])
    {'mrr@10': 0.5, 'recall@1': 0.0, 'ndcg@2': 0.6309297535714575}
"""

_CITATION = """\
@inproceedings{husain2019codesearchnet,
  title={CodeSearchNet Challenge: Evaluating the State of Semantic Code Search},
  author={Husain, Hamel and Wu, Ho-Hsiang and Gazit, Tiferet and Allamanis, Miltiadis and Brockschmidt, Marc},
  booktitle={arXiv preprint arXiv:1909.09436},
  year={2019}
}
"""


def _features(id_type: str) -> datasets.Features:
    return datasets.Features(
        {
            "predictions": datasets.Sequence(datasets.Value(id_type)),
            "references": datasets.Sequence(datasets.Value(id_type)),
        }
    )


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CodeSearchMetric(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # Code ids are strings in our data sets and ints in CodeSearchNet-style indices: accept both.
            features=[_features("string"), _features("int64")],
        )

    def _compute(
        self,
        predictions,
        references,
        mrr_at_k=DEFAULT_MRR_AT_K,
        recall_at_k=DEFAULT_RECALL_AT_K,
        ndcg_at_k=DEFAULT_NDCG_AT_K,
        groups=None,
    ):
        return code_search_metrics(
            predictions,
            references,
            mrr_at_k=mrr_at_k,
            recall_at_k=recall_at_k,
            ndcg_at_k=ndcg_at_k,
            groups=groups,
        )
