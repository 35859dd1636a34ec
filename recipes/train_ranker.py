"""Train an R2PS ranker (a cross-encoder) on hard negatives mined from a retriever's ranking, then measure the cascade.

    python recipes/train_ranker.py --config recipes/configs/ranker_default.yaml [key=value ...]
    accelerate launch --multi_gpu --num_processes 2 recipes/train_ranker.py --config ...

``model`` (or ``miner_model``) is the frozen retriever; ``ranker_model`` the cross-encoder's base. Outputs in
``output_dir``: ``ranker/`` (the CrossEncoder), ``metrics.json`` (retriever alone vs retriever -> ranker on every
evaluation set, with latencies) and ``config.json``; checkpoints as for the retrievers.
"""

import json
from pathlib import Path

from sentence_transformers.base.sampler import BatchSamplers
from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
from transformers import set_seed

from hf_softnce.data import to_training_dataset
from hf_softnce.losses import R2PSRankerLoss
from hf_softnce.losses.r2ps_ranker_loss import r2ps_ranker
from hf_softnce.mining import RankingHardNegativeMiner
from hf_softnce.retrieval import RetrieverRanker, evaluate_cascade
from hf_softnce.training.cli_args import parse_recipe_args
from hf_softnce.training.data import load_task_data
from hf_softnce.training.models import load_model, resolve_model_name
from hf_softnce.training.run import is_main_process, training_arguments

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "ranker_default.yaml"


def main(argv=None):
    config = parse_recipe_args(argv, description=__doc__.splitlines()[0], default_config=str(DEFAULT_CONFIG))
    repo_id = None
    if config.push_to_hub:
        from hf_softnce.hub import preflight_push

        repo_id = preflight_push(config.push_to_hub, private=config.hub_private)  # before any mining or training
    set_seed(config.seed)
    data = load_task_data(config)

    # 1. Negatives by rank from the frozen retriever (R2PS: 31 from a fixed window; never the positive or its
    #    duplicates, unlike the released code).
    retriever = load_model(config.miner_model or config.model, max_seq_length=config.max_seq_length)
    miner = RankingHardNegativeMiner(
        retriever,
        num_negatives=config.num_negatives or 31,
        strategy=config.mining_strategy,
        window_start=config.mining_window_start,
        seed=config.seed,
    )
    mined = miner.mine(data.train)
    print(miner.last_report.summary())

    # 2. The ranker: softmax cross-entropy over (positive, its mined negatives), scores tanh(logit) * temperature.
    #    The loss sets the ranker's activation to tanh, so the saved ranker predicts the score it was trained on.
    ranker = r2ps_ranker(
        resolve_model_name(config.ranker_model), head=config.ranker_head, max_length=config.max_seq_length
    )
    args = training_arguments(config, selecting=False, metric=None, args_class=CrossEncoderTrainingArguments)
    # R2PSRankerLoss has no in-batch negatives, so rows sharing a negative may share a batch.
    args.batch_sampler = BatchSamplers.BATCH_SAMPLER
    # Every parameter of a CrossEncoder gets a gradient. The Trainer's default for a non-transformers module
    # (find_unused_parameters=True) makes DDP fail with "marked a variable ready twice" on any CrossEncoder loss;
    # static_graph=True "fixes" that by silently skipping the gradient all-reduce (tests/test_recipes.py checks).
    args.ddp_find_unused_parameters = False
    trainer = CrossEncoderTrainer(
        model=ranker,
        args=args,
        train_dataset=to_training_dataset(mined),
        loss=R2PSRankerLoss(ranker, temperature=config.ranker_temperature),
    )
    resume = config.resume_from_checkpoint
    trainer.train(resume_from_checkpoint=True if resume == "last" else resume)

    # 3. Retriever alone vs retriever -> ranker on the same retriever pass, on every evaluation set.
    if is_main_process():
        cascade = RetrieverRanker(retriever, ranker, top_k=config.ranker_top_k, combine=config.ranker_combine)
        metrics = {name: evaluate_cascade(cascade, eval_set) for name, eval_set in data.eval_sets().items()}
        output_dir = Path(config.output_dir)
        ranker.save(str(output_dir / "ranker"))
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (output_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
        for name, result in metrics.items():
            for stage in ("retriever", "cascade"):
                print(name, stage, {k: round(v, 4) for k, v in result[stage].items() if "@" in k})
        if repo_id:
            ranker.push_to_hub(repo_id, private=config.hub_private, revision=config.hub_revision,
                               create_pr=config.hub_create_pr, exist_ok=True)
        print(f"Saved the ranker to {output_dir / 'ranker'}")


if __name__ == "__main__":
    main()
