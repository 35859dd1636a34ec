#!/usr/bin/env bash
# The main job's full size on one GPU in bf16 (every row; seed 42, then seeds 43 and 44 for the rows close to the
# best), the R2PS ranker's learning check at a GPU budget, and optionally the quick size's candidates in fp32, on a
# machine with no network, within a time budget. A second call on the same machine resumes where the first stopped.
#
#     bash benchmarks/full_on_gpu.sh OUT_DIR [SECONDS]
#
# Reads, beside the checkout (prepared where pip and the data are; benchmarks/README.md, "Full size on a GPU"):
# .whl/ (wheels of the packages the GPU image lacks or has at other versions), .device/cosqa/*.xz (CoSQA's files)
# and .device/minilm-fp16/ (all-MiniLM-L6-v2 stored in fp16 to fit the transfer; put back in fp32 here, its weights
# rounded once to fp16). Order, as long as SECONDS (default 540) lasts:
#   1. the full size, seeds 42 and 43 (43 for the rows within 0.01 of the best on cosqa-heldout at seed 42, with
#      their teachers and InfoNCE); the cascade's ranker trains an epoch with 7 negatives (R2PS: 31, epochs);
#   2. the ranker's learning check (benchmarks/ranker_learning.py) at an epoch of 32-query steps, 1,000 queries;
#   3. seed 44 for the same rows;
#   4. QUICK_CANDIDATES="steps batch lr;..." only: the quick size's candidates (the rule below).
# OUT_DIR receives results.{md,json,png} of the full size (the most seeds completed; else the completed steps,
# --report-only), log.txt (versions first), rows.tgz (every completed step's complete.json: per-query ranks, losses;
# written however the script stops), ranker.tgz and quick.tgz.
#
# Measured on the H200 (2026-12-04): 15 retriever rows of seed 42 in 402 s with the zero-shot evaluation and the
# mining; the cascade's ranker epoch (7 negatives) 75 s, then its grid on cosqa-heldout more than 45 s; so seed 42
# alone needs about 10 minutes and the three seeds about 16, beyond one task's 15 device minutes with the start.
#
# The choice rules, fixed before the runs. Peers (hf_softnce/training/plan.py, PEER_CHOICE): of a
# sentence-transformers peer's rows, the highest MRR@1000 on cosqa-heldout at seed 42, the documented setting on a
# tie within 0.002. Quick candidates ("max_steps batch_size learning_rate", each about the pairs that fit --quick's
# 20 minutes on 2 CPU cores with four rows): the candidate whose default row has the highest MRR@1000 on
# cosqa-heldout; a candidate within 0.002 of it that costs less CPU time wins. dev-500 is reported only.
set -uo pipefail
out=${1:?usage: full_on_gpu.sh OUT_DIR [SECONDS]}
budget=${2:-540}
run=${RUN_DIR:-runs/gpu/full}  # in the checkout's ignored runs/: kept for a second call on the same machine
ranker=${RANKER_DIR:-runs/gpu/ranker}
quick=${QUICK_DIR:-runs/gpu/quick}
IFS=';' read -r -a candidates <<<"${QUICK_CANDIDATES:-}"
IFS=';' read -r -a methods <<<"${METHODS:-}"  # a try-out's subset of the rows ("row;row;..."); default: every row
[ ${#methods[@]} -gt 0 ] && methods=(--methods "${methods[@]}")
mkdir -p "$out" "$run"
started=$SECONDS

if [ -z "${NO_WHEELS:-}" ]; then  # NO_WHEELS=1: a try-out where the packages are installed
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheels did not install"; exit 1; }
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [ ! -f /tmp/minilm/.fp32 ]; then
  rm -rf /tmp/minilm && mkdir -p /tmp/cosqa && cp -r .device/minilm-fp16 /tmp/minilm
fi
python3 - <<'PY' 2>&1 | tee -a "$out/log.txt"
import lzma, pathlib
import accelerate, datasets, sentence_transformers, torch, transformers
from safetensors.torch import load_file, save_file
for packed in pathlib.Path(".device/cosqa").glob("*.xz"):
    pathlib.Path("/tmp/cosqa", packed.stem).write_bytes(lzma.decompress(packed.read_bytes()))
marker = pathlib.Path("/tmp/minilm/.fp32")
if not marker.exists():  # once per machine: a second call finds the fp32 weights the first call's rows started from
    path = "/tmp/minilm/model.safetensors"
    save_file({k: v.float() if v.is_floating_point() else v for k, v in load_file(path).items()}, path,
              metadata={"format": "pt"})
    marker.touch()
device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
print("torch", torch.__version__, "cuda", torch.version.cuda, device, "| transformers", transformers.__version__,
      "| sentence-transformers", sentence_transformers.__version__, "| accelerate", accelerate.__version__,
      "| datasets", datasets.__version__)
PY

settings=(model=/tmp/minilm ranker_model=/tmp/minilm cosqa_dir=/tmp/cosqa bf16=true ranker_steps=-1 ranker_negatives=7
          ${EXTRA_SETTINGS:-})  # EXTRA_SETTINGS: a try-out's
left() { echo $((budget - (SECONDS - started))); }
bounded() {  # a command stopped when the budget is spent; its log without progress bars
  local seconds
  seconds=$(left)
  [ "$seconds" -gt 10 ] || { echo "budget spent: skipped $*" | tee -a "$out/log.txt"; return 1; }
  timeout "$seconds" "$@" 2>&1 | grep --line-buffered -v -E "it/s\]|s/it\]" | tee -a "$out/log.txt"
  return "${PIPESTATUS[0]}"
}
save() {
  cp "$run"/results.{md,json,png} "$out"/ 2>/dev/null
  (cd "$run" && find . -name complete.json -o -name manifest.json | tar czf "$out/rows.tgz" -T -)
}
trap save EXIT  # whatever stops the script, the completed steps (per-query ranks) come back

echo "== 1. full size, seeds 42 43 ($((SECONDS - started)) s)" | tee -a "$out/log.txt"
bounded python3 -m hf_softnce main --full --seeds 42 43 --output-dir "$run" "${settings[@]}" "${methods[@]}" && save

echo "== 2. ranker learning check ($((SECONDS - started)) s)" | tee -a "$out/log.txt"
if [ -d "$run/infonce/seed-42/final" ]; then
  bounded python3 -m benchmarks.ranker_learning model=/tmp/minilm ranker_model=/tmp/minilm cosqa_dir=/tmp/cosqa \
    --retriever "$run/infonce/seed-42/final" --output-dir "$ranker" --steps "${RANKER_CHECK_STEPS:-188}" \
    --batch-size 32 --queries "${RANKER_CHECK_QUERIES:-1000}" --variants "released head, no warmup, random 3" \
    "released head, no warmup, positive-aware top 1 + random 2" \
    "released head, no warmup, positive-aware probabilistic 3" "released head, no warmup, positive-aware top-3"
  (cd "$ranker" && find . -name "*.json" -o -name "*.md" | tar czf "$out/ranker.tgz" -T -)
fi

echo "== 3. full size, seeds 42 43 44 ($((SECONDS - started)) s)" | tee -a "$out/log.txt"
bounded python3 -m hf_softnce main --full --seeds 42 43 44 --output-dir "$run" "${settings[@]}" "${methods[@]}" \
  && save

for candidate in "${candidates[@]}"; do
  read -r steps batch lr <<<"$candidate"
  echo "== 4. quick candidate: $steps steps of $batch, lr $lr, fp32 ($((SECONDS - started)) s)" | tee -a "$out/log.txt"
  bounded python3 -m hf_softnce main --quick --output-dir "$quick/s$steps-b$batch-lr$lr" model=/tmp/minilm \
    cosqa_dir=/tmp/cosqa max_steps="$steps" batch_size="$batch" learning_rate="$lr" --methods InfoNCE \
    "SoftInfoNCE (trained model) + mined negatives" "MNRL hardness (hard negatives, 5) + mined negatives"
done
if [ ! -f "$out/results.json" ] && [ -f "$run/zero-shot/complete.json" ]; then  # the run never finished
  echo "== the completed steps alone ($((SECONDS - started)) s)" | tee -a "$out/log.txt"
  budget=$((SECONDS - started + 60)) bounded python3 -m hf_softnce main --full --seeds 42 43 44 --report-only \
    --output-dir "$run" "${settings[@]}" "${methods[@]}" && save
fi
[ -d "$quick" ] && (cd "$quick" && find . -name results.json -o -name results.md -o -name manifest.json \
  | tar czf "$out/quick.tgz" -T -)
echo "whole script: $((SECONDS - started)) s" | tee -a "$out/log.txt"
