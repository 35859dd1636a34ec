"""Train the docstring encoder of Soft-InfoNCE's SimCSE weighter: unsupervised SimCSE on the training queries.

    python recipes/train_simcse_weighter.py --config recipes/configs/simcse_default.yaml [key=value ...]
    python recipes/train_soft_infonce.py --config recipes/configs/default.yaml weighter=embedding \
        weighter_model=runs/simcse/final

Unsupervised SimCSE as sentence-transformers trains it: every text is paired with itself and
MultipleNegativesRankingLoss contrasts the two encodings, which differ only by dropout (the augmentation).
The encoder is saved to ``output_dir/final``, the path ``weighter_model`` takes, with hf_softnce's card (its
code-search numbers beside the base model's, for reference).
"""

import dataclasses
import json
from pathlib import Path

from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainer
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from transformers import set_seed

from hf_softnce.training.checkpoints import SaveConfigCallback, resume_checkpoint
from hf_softnce.training.cli_args import parse_recipe_args
from hf_softnce.training.data import load_task_data
from hf_softnce.training.models import display_name, load_model
from hf_softnce.training.publish import publish_run, short_model_name, single_run_summary, write_run_card
from hf_softnce.training.run import (
    base_model_metrics, evaluate_model, is_main_process, leave_process_group, training_arguments,
)

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "simcse_default.yaml"


def main(argv=None):
    config = parse_recipe_args(argv, description=__doc__.splitlines()[0], default_config=str(DEFAULT_CONFIG))
    repo_id = None
    if config.push_to_hub:
        from hf_softnce.hub import preflight_push

        repo_id = preflight_push(config.push_to_hub, private=config.hub_private)  # before any training
    resume = resume_checkpoint(config.resume_from_checkpoint, config.output_dir, config)
    set_seed(config.seed)

    # The weighter compares queries (docstrings), so the encoder learns on the training queries only, each once.
    data = load_task_data(config)
    texts = list(dict.fromkeys(data.train["query"]))
    train = Dataset.from_dict({"anchor": texts, "positive": texts})

    model = load_model(config.model, max_seq_length=config.max_seq_length)
    # Dropout must be on in both passes: the trainer keeps the model in train mode, so it is.
    loss = MultipleNegativesRankingLoss(model, scale=config.scale)
    args = training_arguments(config, selecting=False, metric=None)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss,
                                         callbacks=[SaveConfigCallback(config)])
    output = trainer.train(resume_from_checkpoint=resume)

    # Code-search numbers of the saved encoder and of its base, for the card (every rank takes part: broadcast).
    scores = evaluate_model(model, data)
    base_scores = base_model_metrics(config, data) if config.evaluate_base else None
    if is_main_process():
        output_dir = Path(config.output_dir)
        model.save(str(output_dir / "final"), create_model_card=False)  # hf_softnce's card, not the stock one
        summary = single_run_summary(
            dataclasses.replace(config, wise_ft_weight=None), loss, data, scores, base_scores, repo_id=repo_id,
            model_name=f"{short_model_name(display_name(config.model))} SimCSE query encoder",
            description=f"Unsupervised SimCSE on the {len(texts):,} distinct training queries (each paired with "
                        "itself; dropout makes the two encodings differ): the query-query encoder of Soft-InfoNCE's "
                        "embedding weighter (`weighter=embedding weighter_model=<this model>`). Its code-search "
                        "numbers below are for reference; it is not trained for code search.",
        )
        write_run_card(output_dir, model, summary)
        metrics = {"texts": len(texts), "train_loss": output.training_loss, "global_step": output.global_step}
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (output_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
        if repo_id:
            publish_run(config, repo_id)
        print(f"Saved the SimCSE encoder to {output_dir / 'final'}: use weighter=embedding weighter_model=<that path>")
    leave_process_group()


if __name__ == "__main__":
    main()
