"""Fine-tune a code-search retriever with order-augmented InfoNCE (OASIS): InfoNCE + CoSENT over graded labels.

    python recipes/train_order_infonce.py --config recipes/configs/order_default.yaml [key=value ...]
    accelerate launch --multi_gpu --num_processes 2 recipes/train_order_infonce.py --config ...

Steps: (1) hard negatives from a frozen retriever's ranking when ``num_negatives > 0`` and the data has none;
(2) order labels from ``order_teacher`` (with OASIS's refinement of likely false negatives) when the data has
no ``label`` column; (3) ``train_retriever`` with ``loss=order_infonce``, which reads those labels.
"""

import contextlib
import dataclasses
import os
from pathlib import Path

import torch
from sentence_transformers import CrossEncoder

from hf_softnce.data.schema import LABEL_COLUMN, all_columns, negative_columns
from hf_softnce.mining import label_order
from hf_softnce.training.cli_args import parse_recipe_args
from hf_softnce.training.data import load_task_data
from hf_softnce.training.models import load_model, resolve_model_name
from hf_softnce.training.ranker import mine_negatives
from hf_softnce.training.results import print_run
from hf_softnce.training.run import is_main_process, leave_process_group, train_retriever

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "order_default.yaml"


def load_teacher(name: str):
    if name == "bm25":
        return "bm25"  # Soft-InfoNCE's query-query BM25, fitted on the training pairs by label_order
    if name.startswith("cross-encoder:"):
        return CrossEncoder(resolve_model_name(name.removeprefix("cross-encoder:")), num_labels=1)
    return load_model(name)


def main_process_first(config):
    # Under `accelerate launch` every rank prepares the same data; rank 0 goes first so the embedding cache is
    # written once and read by the others.
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        cpu = (not torch.cuda.is_available()) if config.use_cpu is None else config.use_cpu
        return PartialState(cpu=cpu).main_process_first()
    return contextlib.nullcontext()


def main(argv=None):
    config = parse_recipe_args(argv, description=__doc__.splitlines()[0], default_config=str(DEFAULT_CONFIG))
    config = dataclasses.replace(config, loss="order_infonce")  # this recipe is OrderInfoNCE whatever the YAML says
    if config.push_to_hub:
        from hf_softnce.hub import preflight_push

        preflight_push(config.push_to_hub, private=config.hub_private)  # before mining and labelling too

    with main_process_first(config):
        data = load_task_data(config)
        train = data.train
        if config.num_negatives > 0 and not negative_columns(train.column_names):
            retriever = load_model(config.miner_model or config.model, max_seq_length=config.max_seq_length)
            train = mine_negatives(config, train, retriever)  # keeps dup_group: it feeds duplicate masking
        # weighter=none|precomputed: the loss reads the label column; any other weighter scores candidates itself.
        if LABEL_COLUMN not in train.column_names and config.weighter in ("none", "precomputed"):
            train, report = label_order(train, load_teacher(config.order_teacher), refine=config.order_refine)
            print(report.summary())
        data.train = all_columns(train)  # bookkeeping copy: dup_group readable; the trainer gets its model columns

    result = train_retriever(config, data)
    if is_main_process():
        print_run(result)  # the metrics table (beside the base model with evaluate_base=true) and where files went
    leave_process_group()


if __name__ == "__main__":
    main()
