"""R2PS ranker objective: softmax cross-entropy over a query's positive and its mined negatives."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss
from sentence_transformers.cross_encoder.model import CrossEncoder
from sentence_transformers.util import fullname
from torch import Tensor, nn

from hf_softnce.defaults import credit_packaged_model


class R2PSRankerLoss(MultipleNegativesRankingLoss):
    def __init__(
        self,
        model: CrossEncoder,
        scale: float = 20.0,
        activation_fn: nn.Module | None = nn.Tanh(),
        *,
        temperature: float | None = None,
    ) -> None:
        """
        The ranker loss of R2PS: for each query, a softmax cross-entropy over the scores of its positive code
        and of its mined hard negatives, where a score is ``activation_fn(logit) * scale``:

            L = -log( exp(s_pos) / (exp(s_pos) + sum_j exp(s_neg_j)) ),   s = tanh(logit) * scale

        Unlike sentence-transformers' CrossEncoder ``MultipleNegativesRankingLoss``, which this class
        configures, no in-batch negatives are added: R2PS scores each query only against the negatives mined
        for it from the retriever's ranking, so the loss does not depend on the batch composition. With a
        batch of one query the two losses are the same number.

        Args:
            model: a CrossEncoder with ``num_labels=1``.
            scale: multiplies the activated score (sentence-transformers' ``scale``, an inverse temperature);
                R2PS multiplies by 20-40. Must be positive.
            activation_fn: squashes the logit before scaling; ``nn.Tanh()`` as in R2PS, ``None`` for the raw logit.
                It also becomes the model's ``activation_fn`` (``nn.Identity()`` for ``None``), so the saved ranker's
                ``CrossEncoder.predict`` returns the score the loss ranked by, ``tanh(logit)`` (without the
                scale, a constant factor), like the released ranker's forward (R2PS model.py,
                ``Unixcoder_RR.forward``: ``torch.tanh(self.head(outputs))``), not the default sigmoid.
            temperature: deprecated name of ``scale`` (R2PS's code calls the factor a temperature, but it
                multiplies); given, it is used as ``scale`` with a ``DeprecationWarning``.

        References:
            - Dong et al., Retriever and Ranker Framework with Probabilistic Hard Negative Sampling for Code
              Search, arXiv 2305.04508 (R2PS).

        Requirements:
            1. A CrossEncoder with one output label.
            2. At least one negative column per row: mine them with ``hf_softnce.mining.RankingHardNegativeMiner``
               (the positive and its duplicate group excluded) or ``sentence_transformers.util.mine_hard_negatives``
               with ``output_format="n-tuple"``.

        Inputs:
            +---------------------------------------------+--------+-------------------------------+
            | Texts                                       | Labels | Number of Model Output Labels |
            +=============================================+========+===============================+
            | (query, code, negative_1, ..., negative_k)  | none   | 1                             |
            +---------------------------------------------+--------+-------------------------------+

        Recommendations:
            - Mine the negatives from the retriever the ranker will sit behind, over the whole codebase, so that
              the ranker learns the retriever's own mistakes (R2PS: 31 negatives per query).
            - Exclude the positive and its duplicates from its negatives (the miner does; R2PS's released code
              does not, and then trains the ranker against the right answer).
            - Train from a pretrained cross-encoder where one exists: a new one-logit head on a bi-encoder's
              weights learns slowly on a CPU budget.

        Relations:
            - sentence-transformers' CrossEncoder ``MultipleNegativesRankingLoss`` adds in-batch negatives; this
              loss is that loss with them turned off.
            - :func:`hf_softnce.training.ranker.r2ps_ranker` builds a ranker with the released R2PS head.
            - At search time :class:`hf_softnce.retrieval.RetrieverRanker` re-ranks a retriever's top-k.

        Example:
            ::

                from datasets import Dataset
                from sentence_transformers.cross_encoder import (
                    CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments,
                )
                from hf_softnce.defaults import default_model_path
                from hf_softnce.losses import R2PSRankerLoss

                ranker = CrossEncoder(default_model_path(), num_labels=1)   # R2PS: microsoft/unixcoder-base
                train_dataset = Dataset.from_dict({
                    "query": ["sort a list", "read a json file"],
                    "code": ["def sort(xs): return sorted(xs)", "def load(p): return json.load(open(p))"],
                    "negative_1": ["def load(p): return json.load(open(p))", "def sort(xs): return sorted(xs)"],
                    "negative_2": ["def add(a, b): return a + b", "def add(a, b): return a + b"],
                })
                args = CrossEncoderTrainingArguments("runs/r2ps-example", max_steps=2, report_to="none")
                trainer = CrossEncoderTrainer(model=ranker, args=args, train_dataset=train_dataset,
                                              loss=R2PSRankerLoss(ranker, scale=20.0))
                trainer.train()
        """
        if temperature is not None:
            warnings.warn(
                "R2PSRankerLoss(temperature=...) is deprecated: the factor multiplies the score, which is "
                "sentence-transformers' `scale`; write R2PSRankerLoss(model, scale=...).",
                DeprecationWarning,
                stacklevel=2,
            )
            scale = temperature
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale!r}.")
        # num_negatives=0: the parent's in-batch sampling is switched off below, so the count is never used.
        super().__init__(model, num_negatives=0, scale=scale, activation_fn=activation_fn)
        # Saved in the CrossEncoder's config: predict() after loading gives the trained score, not sigmoid(logit).
        model.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        credit_packaged_model(model)  # the card sentence-transformers writes names the base model

    @property
    def temperature(self) -> float:
        """The factor under its deprecated name: the same number as ``scale``."""
        return self.scale

    def get_in_batch_negatives(self, anchors: list[str], candidates: list[list[str]]) -> Iterator[list[str]]:
        # R2PS ranks a query against its own mined negatives only; other rows' codes are not negatives.
        return iter(())

    def forward(self, inputs: list[list[str]], labels: Tensor | None = None, **kwargs) -> Tensor:
        if len(inputs) < 3:
            raise ValueError(
                f"{type(self).__name__} needs (query, code, negative_1, ...) columns, got {len(inputs)} column(s): "
                "mine negatives first (hf_softnce.mining.RankingHardNegativeMiner)."
            )
        return super().forward(inputs, labels, **kwargs)

    def get_config_dict(self) -> dict[str, float | str]:
        return {"scale": self.scale, "activation_fn": fullname(self.activation_fn)}

    @property
    def citation(self) -> str:
        return """
@misc{dong2023r2ps,
    title={Retriever and Ranker Framework with Probabilistic Hard Negative Sampling for Code Search},
    author={Hande Dong and Jiayi Lin and Yichong Leng and Jiawei Chen and Yutao Xie},
    year={2023},
    eprint={2305.04508},
    archivePrefix={arXiv},
    primaryClass={cs.SE}
}
"""

