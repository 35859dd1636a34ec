"""Fine-tune a code-search retriever with Soft-InfoNCE (or InfoNCE: loss=infonce) as a YAML config says.

    python recipes/train_soft_infonce.py --config recipes/configs/default.yaml [key=value ...]
    accelerate launch --multi_gpu --num_processes 2 recipes/train_soft_infonce.py --config ... gather_across_devices=true
    python recipes/train_soft_infonce.py --config ... max_steps=400 --resume-from-checkpoint   # continue the last checkpoint

Everything happens in ``hf_softnce.training.train_retriever``: data (corpus or loader) -> loss with its weighter ->
SentenceTransformerTrainer (checkpoints, best model on the validation MRR, TensorBoard when installed) -> test
metrics -> ``output_dir/final``, ``metrics.json`` (written once, by the main process) -> optional Hub push,
whose access is checked before any data is built.
"""

from pathlib import Path

from hf_softnce.training.cli_args import parse_recipe_args
from hf_softnce.training.results import print_run
from hf_softnce.training.run import is_main_process, leave_process_group, train_retriever

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "default.yaml"


def main(argv=None):
    config = parse_recipe_args(argv, description=__doc__.splitlines()[0], default_config=str(DEFAULT_CONFIG))
    result = train_retriever(config)
    if is_main_process():
        print_run(result)  # the metrics table (beside the base model with evaluate_base=true) and where files went
    leave_process_group()


if __name__ == "__main__":
    main()
