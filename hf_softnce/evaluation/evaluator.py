"""``CodeSearchEvaluator``: rank the whole codebase for every query with the model being trained."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterable

import torch.distributed as dist
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
from sentence_transformers.util.distributed import distributed_evaluation, get_rank, get_world_size

from hf_softnce.data.schema import RetrievalSet
from hf_softnce.embedding_cache import prompt_name_for, remember_embeddings
from hf_softnce.evaluation.metrics import as_cutoffs, code_search_metrics
from hf_softnce.model_checks import require_bi_encoder
from hf_softnce.retrieval.search import search_score, top_k_search

logger = logging.getLogger(__name__)


class CodeSearchEvaluator(InformationRetrievalEvaluator):
    """Code-search evaluation of a SentenceTransformer: sentence-transformers' ``InformationRetrievalEvaluator``
    over the whole codebase, with MRR counted to rank 1000, duplicate-aware numbers and hf_softnce's headline keys.

    Every query is ranked against the whole ``retrieval_set.corpus`` (the papers' protocol; the parent's exact
    chunked top-k, down to rank ``max(k)``), re-encoded on every call because the model changes during training.
    The result holds:

    * the parent's keys, unchanged: ``{name}_{score_fn}_{accuracy|precision|recall|mrr|ndcg|map}@k``;
    * with duplicate ``groups`` in the set, ``{name}_{score_fn}_dedup_{mrr|recall|ndcg}@k``: a member of the gold
      code's duplicate group counts as a hit;
    * the headline numbers of the main score function (``main_score_function``, else the model's own similarity)
      without the score-function part: ``{name}_mrr@1000``, ``{name}_recall@1/5/10``, ``{name}_ndcg@10`` (and
      ``dedup_``), the keys hf_softnce's tables, cards and :attr:`primary_metric` use.

    Args:
        retrieval_set: the queries, corpus, relevant codes and optional duplicate groups.
        name: metric-key prefix; defaults to ``retrieval_set.name``.
        mrr_at_k / recall_at_k / ndcg_at_k: cut-offs (an int or a list of ints); ``recall_at_k`` is the parent's
            ``precision_recall_at_k``.
        accuracy_at_k / map_at_k: the parent's other cut-offs (accuracy defaults to the recall cut-offs).
        batch_size: encoding batch size.
        show_progress_bar: show encoding progress.
        write_csv: append each call's headline metrics to ``CodeSearch_evaluation_<name>_results.csv``.
        truncate_dim: evaluate Matryoshka embeddings truncated to this dimension.
        use_faiss: used by :meth:`rank` (``None``: FAISS when installed); the evaluation itself is exact.
        remember_embeddings: :meth:`rank` keeps the corpus embeddings for a later encode of the same texts by the
            same weights in this process (:func:`hf_softnce.embedding_cache.remember_embeddings`: the main job's
            mining and frozen estimators read them instead of encoding the codebase again).
        score_functions / main_score_function / corpus_chunk_size / query_prompt(_name) / corpus_prompt(_name) /
            write_predictions: as in ``InformationRetrievalEvaluator``.

    Sets :attr:`primary_metric` to ``{name}_mrr@{max mrr k}``, so ``metric_for_best_model`` can name it.

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
        accuracy_at_k: int | Iterable[int] | None = None,
        map_at_k: int | Iterable[int] = (100,),
        batch_size: int = 32,
        show_progress_bar: bool = False,
        write_csv: bool = True,
        truncate_dim: int | None = None,
        use_faiss: bool | None = None,
        score_functions=None,
        main_score_function=None,
        corpus_chunk_size: int = 50000,
        query_prompt: str | None = None,
        query_prompt_name: str | None = None,
        corpus_prompt: str | None = None,
        corpus_prompt_name: str | None = None,
        write_predictions: bool = False,
        remember_embeddings: bool = False,
    ) -> None:
        name = retrieval_set.name if name is None else name
        mrr, recall, ndcg = (as_cutoffs(mrr_at_k, "mrr_at_k"), as_cutoffs(recall_at_k, "recall_at_k"),
                             as_cutoffs(ndcg_at_k, "ndcg_at_k"))
        super().__init__(
            queries=retrieval_set.queries,
            corpus=retrieval_set.corpus,
            relevant_docs=retrieval_set.relevant,
            corpus_chunk_size=corpus_chunk_size,
            mrr_at_k=mrr,
            ndcg_at_k=ndcg,
            accuracy_at_k=recall if accuracy_at_k is None else as_cutoffs(accuracy_at_k, "accuracy_at_k"),
            precision_recall_at_k=recall,
            map_at_k=as_cutoffs(map_at_k, "map_at_k"),
            show_progress_bar=show_progress_bar,
            batch_size=batch_size,
            name=name,
            write_csv=write_csv,
            truncate_dim=truncate_dim,
            score_functions=score_functions,
            main_score_function=main_score_function,
            query_prompt=query_prompt,
            query_prompt_name=query_prompt_name,
            corpus_prompt=corpus_prompt,
            corpus_prompt_name=corpus_prompt_name,
            write_predictions=write_predictions,
        )
        self.retrieval_set = retrieval_set
        self.recall_at_k = recall
        self.use_faiss = use_faiss
        self.remember_embeddings = remember_embeddings
        self.query_ids = self.queries_ids
        # An empty query asks for nothing, so it finds nothing: scored as a miss (an empty gold code would otherwise
        # match it at rank 1), and kept in the denominator so that it is counted, not hidden.
        self._empty_queries = [not str(retrieval_set.queries[qid]).strip() for qid in self.query_ids]
        if any(self._empty_queries):
            logger.warning("%s: %d empty quer(ies) are scored as misses.", name, sum(self._empty_queries))
        self.depth = min(max(mrr + recall + ndcg), len(self.corpus_ids))
        # Prefixed up front (prefix_name_to_metrics won't prefix it twice), so ranks that never compute agree.
        self.primary_metric = f"{name}_mrr@{max(mrr)}" if name else f"mrr@{max(mrr)}"
        self.csv_file = f"CodeSearch_evaluation_{name}_results.csv" if name else "CodeSearch_evaluation_results.csv"

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1, *args, **kwargs):
        require_bi_encoder(model, type(self).__name__)
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
        """Code ids of the top ``depth`` codes for every query, best first (hf_softnce's search, FAISS-capable)."""
        require_bi_encoder(model, type(self).__name__)
        queries = [self.retrieval_set.queries[qid] for qid in self.query_ids]
        codes = [self.retrieval_set.corpus[cid] for cid in self.corpus_ids]
        query_embeddings = self.embed_inputs(model, queries, "query", self.query_prompt_name, self.query_prompt)
        corpus_embeddings = self.embed_inputs(model, codes, "document", self.corpus_prompt_name, self.corpus_prompt)
        if self.remember_embeddings and self.corpus_prompt is None and self.truncate_dim is None:
            remember_embeddings(model, codes, corpus_embeddings,
                                prompt_name=prompt_name_for(model, "document", self.corpus_prompt_name))
        _, indices = top_k_search(
            query_embeddings, corpus_embeddings, self.depth, score=search_score(model), use_faiss=self.use_faiss
        )
        return [[] if empty else [self.corpus_ids[i] for i in row]
                for row, empty in zip(indices.tolist(), self._empty_queries)]

    def compute_metrics(self, queries_result_list: list[object]):
        """The parent's metrics of one score function, plus ``dedup_<metric>@k`` when the set has groups."""
        queries_result_list = [[] if empty else hits for hits, empty in zip(queries_result_list, self._empty_queries)]
        scores = super().compute_metrics(queries_result_list)
        if self.retrieval_set.groups is None:
            return scores
        rankings = [
            [hit["corpus_id"] for hit in sorted(hits, key=lambda hit: (-hit["score"], hit["corpus_id"]))]
            for hits in queries_result_list
        ]
        grouped = code_search_metrics(
            rankings,
            [self.relevant_docs[qid] for qid in self.queries_ids],
            mrr_at_k=self.mrr_at_k,
            recall_at_k=self.recall_at_k,
            ndcg_at_k=self.ndcg_at_k,
            groups=self.retrieval_set.groups,
        )
        for key, value in grouped.items():
            if key.startswith("dedup_"):
                metric, k = key.split("@")
                scores.setdefault(f"{metric}@k", {})[int(k)] = value
        return scores

    def _headline_keys(self) -> list[str]:
        keys = [f"mrr@{k}" for k in self.mrr_at_k] + [f"recall@{k}" for k in self.recall_at_k]
        keys += [f"ndcg@{k}" for k in self.ndcg_at_k]
        return keys + ([f"dedup_{key}" for key in keys] if self.retrieval_set.groups is not None else [])

    def _evaluate(self, model, output_path, epoch, steps) -> dict[str, float]:
        where = f" after epoch {epoch}" if epoch != -1 else ""
        where += f" and {steps} steps" if steps != -1 else ""
        where += f" (truncated to {self.truncate_dim})" if self.truncate_dim is not None else ""
        logger.info(
            "Code-search evaluation on %s%s: %d queries against %d codes",
            self.name, where, len(self.query_ids), len(self.corpus_ids),
        )
        if self._score_functions_from_model:
            # Resolved per call, like the parent: an evaluator reused across models scores each with its own.
            self.score_functions = self._model_score_functions(model)
            self.score_function_names = sorted(self.score_functions)
        scores = self.compute_all_metrics(model, output_path=output_path)
        metrics = {
            f"{function}_{metric.replace('@k', f'@{k}')}": value
            for function, values in scores.items()
            for metric, by_k in values.items()
            for k, value in by_k.items()
        }
        main = self.main_score_function.value if self.main_score_function else self.score_function_names[0]
        if main not in scores:
            raise ValueError(f"main_score_function={main!r} is not among the score functions {self.score_function_names}.")
        headline = {key: metrics[f"{main}_{key}"] for key in self._headline_keys()}
        for key, value in headline.items():
            logger.info("%-20s %.4f", key, value)
        if output_path is not None and self.write_csv and get_rank() == 0:
            self._append_csv(output_path, epoch, steps, headline)
        metrics = self.prefix_name_to_metrics({**headline, **metrics}, self.name)
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
        config = {"mrr_at_k": self.mrr_at_k, "recall_at_k": self.recall_at_k, "ndcg_at_k": self.ndcg_at_k}
        return config | super().get_config_dict()
