"""Train an R2PS ranker (a cross-encoder) on hard negatives mined from a retriever's ranking, then measure the cascade.

    python recipes/train_ranker.py --config recipes/configs/ranker_default.yaml [key=value ...]
    accelerate launch --multi_gpu --num_processes 2 recipes/train_ranker.py --config ...

``model`` (or ``miner_model``) is the frozen retriever; ``ranker_model`` the cross-encoder's base. Outputs in
``output_dir``: ``ranker/`` (the CrossEncoder with hf_softnce's card), ``metrics.json`` (retriever alone vs retriever -> ranker on every
evaluation set, with latencies) and ``config.json``; checkpoints as for the retrievers.
"""

import json
from pathlib import Path

from transformers import set_seed

from hf_softnce.evaluation import evaluate_cascade
from hf_softnce.losses import R2PSRankerLoss
from hf_softnce.retrieval import RetrieverRanker
from hf_softnce.training.cli_args import parse_recipe_args
from hf_softnce.training.data import load_task_data
from hf_softnce.training.models import load_model
from hf_softnce.training.publish import publish_run, ranker_summary, write_run_card
from hf_softnce.training.ranker import mine_negatives, train_ranker
from hf_softnce.training.run import is_main_process, leave_process_group

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
    mined = mine_negatives(config, data.train, retriever)

    # 2. The ranker: softmax cross-entropy over (positive, its mined negatives), scores tanh(logit) * temperature.
    #    The loss sets the ranker's activation to tanh, so the saved ranker predicts the score it was trained on.
    ranker = train_ranker(config, mined)

    # 3. Retriever alone vs retriever -> ranker on the same retriever pass, on every evaluation set.
    if is_main_process():
        cascade = RetrieverRanker(retriever, ranker, top_k=config.ranker_top_k, combine=config.ranker_combine,
                                  ranker_weight=config.ranker_weight)
        metrics = {name: evaluate_cascade(cascade, eval_set) for name, eval_set in data.eval_sets().items()}
        output_dir = Path(config.output_dir)
        ranker.save(str(output_dir / "ranker"), create_model_card=False)  # hf_softnce's card, not the stock one
        # The loss object only describes itself on the card (its settings and citation), as the training used it.
        loss = R2PSRankerLoss(ranker, scale=config.ranker_scale)
        write_run_card(output_dir, ranker, ranker_summary(config, loss, data, metrics, repo_id=repo_id), "ranker")
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (output_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
        for name, result in metrics.items():
            print(f"**{name}**\n\n{result}\n")  # retriever vs cascade, a Markdown table
        if repo_id:
            publish_run(config, repo_id)  # uploads ranker/ and its card, never checkpoints
        print(f"Saved the ranker to {output_dir / 'ranker'}")
    leave_process_group()


if __name__ == "__main__":
    main()
