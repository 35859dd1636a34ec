#!/usr/bin/env bash
# The main job's full size on one GPU in bf16 (every row at seed 42; seeds 43 and 44 for the rows within 0.01 of the
# best on cosqa-heldout) and the R2PS ranker's learning check, as parallel processes (benchmarks/full_on_gpu.py),
# on a machine with no network, within a time budget. A second call on the same machine resumes where one stopped.
#
#     bash benchmarks/full_on_gpu.sh OUT_DIR [SECONDS]
#
# Reads, beside the checkout (prepared where pip and the data are; benchmarks/README.md, "Full size on a GPU"):
# .whl/ (wheels of the packages the GPU image lacks or has at other versions), .device/cosqa/*.xz (CoSQA's files)
# and .device/minilm-fp16/ (all-MiniLM-L6-v2 stored in fp16 to fit the transfer; put back in fp32 here, its weights
# rounded once to fp16). OUT_DIR receives results.{md,json,png} (the merged folder's --report-only), log.txt (versions
# first, then each process's start and end), logs.tgz (every process's log), rows.tgz (every completed step's
# complete.json: per-query ranks, losses; written however the script stops), ranker.tgz (the learning check) and
# quick.tgz (QUICK_CANDIDATES' results).
#
# Measured on the H200 (2026-12-04), one process: a retriever row ~25 s, mostly Python and data loading; 15 rows of
# seed 42 in 402 s; the cascade's ranker epoch at 7 negatives a query 75 s, then its grid on cosqa-heldout > 45 s.
# In one process seed 42 alone needed ~10 minutes and the three seeds ~16, beyond one task's 15 device minutes:
# hence the processes side by side.
set -uo pipefail
out=${1:?usage: full_on_gpu.sh OUT_DIR [SECONDS]}
budget=${2:-540}
run=${RUN_DIR:-runs/gpu}  # in the checkout's ignored runs/: kept for a second call on the same machine
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

# The cascade's ranker trains as the full size says (plan.FULL_RANKER: an epoch, 3 negatives a query), as on CPU.
settings=(model=/tmp/minilm ranker_model=/tmp/minilm cosqa_dir=/tmp/cosqa bf16=true
          ${EXTRA_SETTINGS:-})  # EXTRA_SETTINGS: a try-out's
save() {
  (cd "$run/merged" 2>/dev/null && cp results.{md,json,png} "$out"/ 2>/dev/null)
  (cd "$run" && tar czf "$out/logs.tgz" logs ./*.json 2>/dev/null)  # with ranker-choice.json, quick-candidates.json
  (cd "$run" && find quick -name results.json -o -name results.md | tar czf "$out/quick.tgz" -T - 2>/dev/null)
  # from procs/, where every step ran (merged/ only links them, and only once the script gets that far)
  (cd "$run" 2>/dev/null && find procs -name complete.json -o -name manifest.json | tar czf "$out/rows.tgz" -T -)
  (cd "$run/ranker-check" 2>/dev/null && find . -name "*.json" -o -name "*.md" | tar czf "$out/ranker.tgz" -T -)
}
trap save EXIT  # whatever stops the script, the completed steps (per-query ranks) come back

IFS=';' read -r -a candidates <<<"${QUICK_CANDIDATES:-}"  # "k=v k=v;k=v;...": --quick's settings to try, today's first
[ ${#candidates[@]} -gt 0 ] && candidates=(--quick-candidates "${candidates[@]}")
timeout $((budget + 20)) python3 -m benchmarks.full_on_gpu --run-dir "$run" --budget "$((budget - (SECONDS - started)))" \
  "${settings[@]}" "${candidates[@]}" 2>&1 | tee -a "$out/log.txt"
echo "whole script: $((SECONDS - started)) s" | tee -a "$out/log.txt"
