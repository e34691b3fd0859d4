#!/usr/bin/env bash
# The README's GPU figures, on a machine with a CUDA build of torch and the requirements installed:
# per-step throughput of both configs (CPU and GPU, fp32 and bf16), then whole `train fit` runs of
# panns_cnn14.yaml (16-mixed as configured, and bf16-mixed) and of starter.yaml on IRMAS-size generated data.
# Usage: bash bench/gpu.sh [work folder, default /tmp/bench_gpu]
set -uo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/bench_gpu}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)"
FIT="python3 -m bench.fit --clips 6705 --epochs 2 --work $WORK"
$FIT --config panns_cnn14.yaml --unfreeze-epoch 1 || echo "FAILED: panns_cnn14 16-mixed"
$FIT --config panns_cnn14.yaml --unfreeze-epoch 1 --trainer.precision=bf16-mixed || echo "FAILED: panns_cnn14 bf16"
$FIT --config starter.yaml --trainer.accelerator=gpu || echo "FAILED: starter on GPU"
python3 -m bench training || echo "FAILED: bench training"
