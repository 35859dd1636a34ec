"""``CodeSearchEvaluator``: rank the whole codebase for every query with the model being trained."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterable

import torch.distributed as dist
from sentence_transformers.base.evaluation.evaluator import BaseEvaluator
from sentence_transformers.util.distributed import distributed_evaluation, get_rank, get_world_size

from hf_softnce.data.schema import RetrievalSet
from hf_softnce.evaluation.metrics import as_cutoffs, code_search_metrics
from hf_softnce.retrieval.search import search_score, top_k_search

logger = logging.getLogger(__name__)


class CodeSearchEvaluator(BaseEvaluator):
    """Code-search evaluation of a SentenceTransformer: MRR@1000, Recall@1/5/10 and NDCG@10.

    Every query is ranked against the whole ``retrieval_set.corpus`` (the papers' protocol), re-encoded on
    every call because the model changes during training. Ranking uses :func:`~hf_softnce.retrieval.top_k_search`
    (exact, chunked, FAISS when installed) down to ``max(k)`` (capped at the corpus size); the numbers come
    from :func:`~hf_softnce.evaluation.metrics.code_search_metrics`. When the set has duplicate ``groups`` the
    group-aware numbers are returned too, as ``dedup_<metric>@k``.

    Args:
        retrieval_set: the queries, corpus, relevant codes and optional duplicate groups.
        name: metric-key prefix; defaults to ``retrieval_set.name``.
        mrr_at_k / recall_at_k / ndcg_at_k: cut-offs (an int or a list of ints).
        batch_size: encoding batch size.
        show_progress_bar: show encoding progress.
        write_csv: append each call's metrics to ``CodeSearch_evaluation_<name>_results.csv`` in ``output_path``.
        use_faiss: passed to ``top_k_search`` (``None``: FAISS when installed).

    Returns ``{f"{name}_{metric}@{k}": value}`` (e.g. ``cosqa_mrr@1000``; the trainer adds ``eval_``), and
    sets :attr:`primary_metric` to ``{name}_mrr@{max mrr k}``, so ``metric_for_best_model`` can name it.

    Distributed runs (``torch.distributed`` initialised, world size > 1):
        * Inside ``SentenceTransformerTrainer`` the trainer calls the evaluator on rank 0 only, shares the
          encoding across ranks (sentence-transformers' ``distributed_evaluation``) and broadcasts the dict.
        * Called directly on every rank (an evaluation script under ``torchrun``/``accelerate launch``), it
          does the same itself: rank 0 ranks, computes the metrics and writes the CSV while the other ranks
          encode their share of its inputs, then rank 0's dict is broadcast, so every rank returns the same
          dict and files are written once.
        Under FSDP/DeepSpeed, call it inside the trainer (which runs it on every rank without sharing).

    Example:
        ::

            evaluator = CodeSearchEvaluator(valid_set, name="cosqa-dev")
            args = SentenceTransformerTrainingArguments(..., eval_strategy="steps",
                                                        metric_for_best_model="eval_cosqa-dev_mrr@1000")
            trainer = SentenceTransformerTrainer(model=model, args=args, loss=loss, evaluator=evaluator, ...)
    """

    def __init__(
        self,
        retrieval_set: RetrievalSet,
        *,
        name: str | None = None,
        mrr_at_k: int | Iterable[int] = 1000,
        recall_at_k: int | Iterable[int] = (1, 5, 10),
        ndcg_at_k: int | Iterable[int] = (10,),
        batch_size: int = 32,
        show_progress_bar: bool = False,
        write_csv: bool = True,
        use_faiss: bool | None = None,
    ) -> None:
        super().__init__()
        self.retrieval_set = retrieval_set
        self.name = retrieval_set.name if name is None else name
        self.mrr_at_k = as_cutoffs(mrr_at_k, "mrr_at_k")
        self.recall_at_k = as_cutoffs(recall_at_k, "recall_at_k")
        self.ndcg_at_k = as_cutoffs(ndcg_at_k, "ndcg_at_k")
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.write_csv = write_csv
        self.use_faiss = use_faiss

        self.query_ids = list(retrieval_set.queries)
        self.corpus_ids = list(retrieval_set.corpus)
        self.depth = min(max(self.mrr_at_k + self.recall_at_k + self.ndcg_at_k), len(self.corpus_ids))
        # Prefixed up front (prefix_name_to_metrics won't prefix it twice), so ranks that never compute agree.
        self.primary_metric = f"{self.name}_mrr@{max(self.mrr_at_k)}" if self.name else f"mrr@{max(self.mrr_at_k)}"
        self.csv_file = (
            f"CodeSearch_evaluation_{self.name}_results.csv" if self.name else "CodeSearch_evaluation_results.csv"
        )

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        # Rank 0 inside the trainer's distributed_evaluation already shares its encoding: nothing to add.
        standalone_distributed = get_world_size() > 1 and getattr(model, "_distributed_inference", None) is None
        if not standalone_distributed:
            return self._evaluate(model, output_path, epoch, steps)
        with distributed_evaluation(model) as is_rank_zero:
            metrics = self._evaluate(model, output_path, epoch, steps) if is_rank_zero else None
        shared = [metrics]
        dist.broadcast_object_list(shared, src=0)
        return shared[0]

    def rank(self, model) -> list[list[str]]:
        """Code ids of the top ``depth`` codes for every query, best first."""
        encode_kwargs = dict(
            batch_size=self.batch_size, show_progress_bar=self.show_progress_bar, convert_to_tensor=True
        )
        queries = [self.retrieval_set.queries[qid] for qid in self.query_ids]
        codes = [self.retrieval_set.corpus[cid] for cid in self.corpus_ids]
        query_embeddings = model.encode_query(queries, **encode_kwargs)
        corpus_embeddings = model.encode_document(codes, **encode_kwargs)
        _, indices = top_k_search(
            query_embeddings,
            corpus_embeddings,
            self.depth,
            score=search_score(model),
            use_faiss=self.use_faiss,
        )
        return [[self.corpus_ids[i] for i in row] for row in indices.tolist()]

    def compute_metrics(self, rankings: list[list[str]]) -> dict[str, float]:
        """Metrics of given rankings (one per query, in ``retrieval_set.queries`` order), unprefixed."""
        return code_search_metrics(
            rankings,
            [self.retrieval_set.relevant[qid] for qid in self.query_ids],
            mrr_at_k=self.mrr_at_k,
            recall_at_k=self.recall_at_k,
            ndcg_at_k=self.ndcg_at_k,
            groups=self.retrieval_set.groups,
        )

    def _evaluate(self, model, output_path, epoch, steps) -> dict[str, float]:
        where = f" after epoch {epoch}" if epoch != -1 else ""
        where += f" and {steps} steps" if steps != -1 else ""
        logger.info(
            "Code-search evaluation on %s%s: %d queries against %d codes",
            self.name,
            where,
            len(self.query_ids),
            len(self.corpus_ids),
        )
        metrics = self.compute_metrics(self.rank(model))
        for key, value in metrics.items():
            logger.info("%-20s %.4f", key, value)
        if output_path is not None and self.write_csv and get_rank() == 0:
            self._append_csv(output_path, epoch, steps, metrics)
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def _append_csv(self, output_path: str, epoch, steps, metrics: dict[str, float]) -> None:
        os.makedirs(output_path, exist_ok=True)
        path = os.path.join(output_path, self.csv_file)
        new_file = not os.path.isfile(path)
        with open(path, "a", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            if new_file:
                writer.writerow(["epoch", "steps", *metrics])
            writer.writerow([epoch, steps, *metrics.values()])

    def get_config_dict(self) -> dict:
        return {"mrr_at_k": self.mrr_at_k, "recall_at_k": self.recall_at_k, "ndcg_at_k": self.ndcg_at_k}
