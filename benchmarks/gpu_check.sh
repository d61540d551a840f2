#!/usr/bin/env bash
# The GPU check in one command (README "Scale out"): run it whenever a GPU is at hand, paste what it
# prints into the README with the device named. About 5-8 minutes on one GPU.
#
#   bash benchmarks/gpu_check.sh [OUTDIR]        # default OUTDIR: a new directory under /tmp
#
# Needs the hhfm environment (torch with CUDA, snakemake, pythia8mc, weaver-core) as `python`.
#   1. the tiny workflow end to end on CUDA (tests/config/tiny.yaml; pretrain.device and heads.device cuda)
#   2. ParT vs weaver-core training and inference throughput on CUDA, bf16 autocast (target: >= 2x)
#   3. bf16 vs fp32: the tiny run's backbone outputs and test AUC (benchmarks/bf16_agreement.py)
#   4. DDP: the same pretraining on all visible GPUs (NCCL) vs one GPU, when more than one is visible
# Every step runs under `timeout`, a failing step does not stop the others, and the summary at the
# end says which passed. Exit status: the number of failed steps.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-$(mktemp -d /tmp/hhfm-gpu-check.XXXX)}
mkdir -p "$OUT"
declare -A STATUS
step() {  # name timeout_s command...
    local name=$1 limit=$2; shift 2
    echo; echo "=== $name ==="
    local t0=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    STATUS[$name]="rc=$rc, $((SECONDS - t0)) s"
    return 0
}

python - <<'EOF' || { echo "gpu_check: torch sees no CUDA device"; exit 1; }
import torch, sys
assert torch.cuda.is_available()
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}")
print(f"bf16 supported: {torch.cuda.is_bf16_supported()}")
EOF
NGPU=$(python -c "import torch; print(torch.cuda.device_count())")

cat > "$OUT/cuda.yaml" <<'EOF'
pretrain: {device: cuda}
heads: {device: cuda}
EOF
step tiny_workflow 360 snakemake all --snakefile Snakefile --directory "$OUT/tiny" \
    --configfile tests/config/tiny.yaml "$OUT/cuda.yaml" --cores "$(nproc)" --resources gpu=1 --quiet rules
grep -h "device cuda\|on cuda" "$OUT"/tiny/logs/pretrain/*.log "$OUT"/tiny/logs/train_head/*/*.log 2>/dev/null | head -3

step part_vs_weaver 180 python benchmarks/part_vs_weaver.py --device cuda --batch 256 --batches 8 --rounds 3

step bf16_agreement 120 python benchmarks/bf16_agreement.py --device cuda \
    --backbone "$OUT/tiny/results/pretrain/xbb/backbone.pt" --dataset "$OUT/tiny/results/skim/dataset.h5"

if (( NGPU > 1 )); then
    CFG='{"seed": 3, "pretrain": {"task": "xbb", "epochs": 2, "batch_size": 256, "patience": 0}, "model": {"dropout": 0, "attn_dropout": 0, "activation_dropout": 0}}'
    for ranks in 1x1x1 "1x${NGPU}x1"; do
        step "ddp_$ranks" 240 python -m hhfm.training.launch --ranks "$ranks" -- pretrain --config "$CFG" \
            --dataset "$OUT/tiny/results/skim/dataset.h5" --outdir "$OUT/ddp_$ranks" --threads 2
    done
    python - "$OUT/ddp_1x1x1" "$OUT/ddp_1x${NGPU}x1" <<'EOF'
import sys, pandas as pd
a, b = (pd.read_csv(f"{d}/metrics.csv") for d in sys.argv[1:])
print("DDP vs 1 GPU, per epoch:\n", pd.DataFrame({"train_loss_1": a.train_loss, "train_loss_ddp": b.train_loss,
      "val_auc_1": a.val_auc, "val_auc_ddp": b.val_auc, "time_s_1": a.time_s, "time_s_ddp": b.time_s}).to_string())
EOF
else
    echo; echo "=== ddp === skipped: one GPU visible"
fi

echo; echo "=== summary ($OUT) ==="
failed=0
for name in "${!STATUS[@]}"; do
    echo "$name: ${STATUS[$name]}"
    [[ ${STATUS[$name]} == rc=0,* ]] || failed=$((failed + 1))
done
exit $failed
