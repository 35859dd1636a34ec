#!/usr/bin/env bash
# The main job's full size on one GPU in bf16 (every row, seeds 42-44) and the quick size's candidates in fp32, on
# a machine with no network, within a time budget.
#
#     bash benchmarks/full_on_gpu.sh OUT_DIR [SECONDS]
#
# Reads, beside the checkout (prepared where pip and the data are; benchmarks/README.md, "Full size on a GPU"):
# .whl/ (wheels of the packages the GPU image lacks or has at other versions), .device/cosqa/*.xz (CoSQA's files)
# and .device/minilm-fp16/ (all-MiniLM-L6-v2 stored in fp16 to fit the transfer; put back in fp32 here, its weights
# rounded once to fp16). Order: 1. the full size, seed 42; 2. the quick candidates; 3. seeds 43 and 44 of the full
# size as long as SECONDS (default 500) lasts, then the table of the seeds completed (a run folder reports any
# subset of its seeds). OUT_DIR receives results.{md,json,png} of the full size, log.txt (versions first), rows.tgz
# (every completed step's complete.json: per-query ranks, losses) and quick.tgz (each candidate's results).
#
# The quick candidates ("max_steps batch_size learning_rate") each hold about the pairs that fit --quick's 20
# minutes on 2 CPU cores with four rows (base, InfoNCE, the default, the strongest peer). The choice rule, fixed
# before the runs: the candidate whose default row (SoftInfoNCE (trained model) + mined negatives) has the highest
# MRR@1000 on cosqa-heldout; a candidate within 0.002 of it that costs less CPU time wins. dev-500 is reported only.
set -uo pipefail
out=${1:?usage: full_on_gpu.sh OUT_DIR [SECONDS]}
budget=${2:-500}
run=${RUN_DIR:-/tmp/full}
quick=${QUICK_DIR:-/tmp/quick}
seeds=(42 43 44)
IFS=';' read -r -a candidates <<<"${QUICK_CANDIDATES:-40 32 5e-5;40 32 1e-4;40 32 2e-4;80 16 1e-4}"
mkdir -p "$out"
started=$SECONDS

if [ -z "${NO_WHEELS:-}" ]; then  # NO_WHEELS=1: a try-out where the packages are installed
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheels did not install"; exit 1; }
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
rm -rf /tmp/minilm && mkdir -p /tmp/cosqa && cp -r .device/minilm-fp16 /tmp/minilm
python3 - <<'EOF' 2>&1 | tee -a "$out/log.txt"
import lzma, pathlib
import accelerate, datasets, sentence_transformers, torch, transformers
from safetensors.torch import load_file, save_file
for packed in pathlib.Path(".device/cosqa").glob("*.xz"):
    pathlib.Path("/tmp/cosqa", packed.stem).write_bytes(lzma.decompress(packed.read_bytes()))
path = "/tmp/minilm/model.safetensors"
save_file({k: v.float() if v.is_floating_point() else v for k, v in load_file(path).items()}, path,
          metadata={"format": "pt"})
device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
print("torch", torch.__version__, "cuda", torch.version.cuda, device, "| transformers", transformers.__version__,
      "| sentence-transformers", sentence_transformers.__version__, "| accelerate", accelerate.__version__,
      "| datasets", datasets.__version__)
EOF

settings=(model=/tmp/minilm ranker_model=/tmp/minilm cosqa_dir=/tmp/cosqa ${EXTRA_SETTINGS:-})  # EXTRA_SETTINGS: a try-out's
left() { echo $((budget - (SECONDS - started))); }
main() {  # the main job, stopped when the budget is spent; its log without progress bars
  local seconds
  seconds=$(left)
  [ "$seconds" -gt 0 ] || { echo "budget spent: skipped main $*" | tee -a "$out/log.txt"; return 1; }
  timeout "$seconds" python3 -m hf_softnce main "$@" 2>&1 | grep --line-buffered -v -E "it/s\]|s/it\]" \
    | tee -a "$out/log.txt"
}

echo "== 1. full size, seed 42, bf16 ($((SECONDS - started)) s)" | tee -a "$out/log.txt"
main --full --seeds 42 --output-dir "$run" "${settings[@]}" bf16=true

for candidate in "${candidates[@]}"; do
  read -r steps batch lr <<<"$candidate"
  echo "== 2. quick candidate: $steps steps of $batch, lr $lr, fp32 ($((SECONDS - started)) s)" | tee -a "$out/log.txt"
  main --quick --output-dir "$quick/s$steps-b$batch-lr$lr" "${settings[@]}" max_steps="$steps" batch_size="$batch" \
    learning_rate="$lr" --methods InfoNCE "SoftInfoNCE (trained model) + mined negatives" \
    "MNRL hardness (hard negatives, 5) + mined negatives"
done

echo "== 3. full size, seeds ${seeds[*]} ($((SECONDS - started)) s)" | tee -a "$out/log.txt"
main --full --seeds "${seeds[@]}" --output-dir "$run" "${settings[@]}" bf16=true
complete=()
steps_per_seed=$(python3 -c 'from hf_softnce.training.plan import SIZES; print(len(SIZES["full"].rows))')  # rows + cascade
for seed in "${seeds[@]}"; do
  [ "$(find "$run" -path "*/seed-$seed/complete.json" | wc -l)" -ge "$steps_per_seed" ] && complete+=("$seed")
done
echo "complete seeds: ${complete[*]:-none} ($((SECONDS - started)) s)" | tee -a "$out/log.txt"
if [ ${#complete[@]} -gt 0 ] && [ ${#complete[@]} -lt ${#seeds[@]} ]; then
  budget=$((SECONDS - started + 120)) main --full --seeds "${complete[@]}" --output-dir "$run" "${settings[@]}" bf16=true
fi

cp "$run"/results.{md,json,png} "$out"/ 2>/dev/null
(cd "$run" && find . -name complete.json -o -name manifest.json | tar czf "$out/rows.tgz" -T -)
[ -d "$quick" ] && (cd "$quick" && find . -name results.json -o -name results.md -o -name manifest.json \
  | tar czf "$out/quick.tgz" -T -)
echo "whole script: $((SECONDS - started)) s" | tee -a "$out/log.txt"
