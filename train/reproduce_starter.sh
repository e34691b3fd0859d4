#!/usr/bin/env bash
# Reproduce the bundled checkpoint from scratch: render the data, train starter.yaml, export to checkpoints/.
# 25.1 minutes on a 2-core AMD EPYC VM. Run `bash install.sh` first (it makes .venv).
# Usage: bash train/reproduce_starter.sh [output dir, default checkpoints]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-checkpoints}
python3() { "${IRMAS_VENV:-.venv}/bin/python" "$@"; }
python3 -m irmas data render --bank FluidR3_GM --bank MuseScore_General --out data/synth \
  --train-per-class 450 --test-excerpts 200 --seed 0 --sample-rate 22050
# multi-instrument excerpts for training (another seed than the evaluated ones), cut into 3 s clips
python3 -m irmas data render --bank FluidR3_GM --bank MuseScore_General --out data/mix \
  --train-per-class 0 --test-excerpts 1200 --seed 2 --sample-rate 22050
rm -rf runs/starter
python3 -m train fit --config train/configs/starter.yaml
CKPT=$(ls runs/starter/lightning_logs/version_0/checkpoints/best-*.ckpt | head -1)
RENDERER=$(python3 -c "from irmas.data.render import read_manifest; print(read_manifest('data/synth/FluidR3_GM')['renderer'])")
python3 -m train export "$CKPT" "$OUT" --config train/configs/starter.yaml \
  --trained-on "audio rendered from two General MIDI sound banks (FluidR3_GM and MuseScore_General), no real recordings" \
  --results train/bundled_results.md --training-data \
  "Rendered with irmas' FluidSynth renderer (version $RENDERER) from the FluidR3_GM and MuseScore_General banks (seed 0): 450 clips of 3 s per class and bank (150 pieces), 22.05 kHz stereo (the model's rate), 1-7 General MIDI presets per class, soft notes darker by up to 4,800 cents of filter cutoff (a random amount per part, where the bank does not darken them itself), one predominant instrument with 0-2 quieter accompanying sounds and drums in 40% of clips; plus 1,200 multi-instrument excerpts of 5-20 s per bank (seed 2: 1-4 instruments at similar levels, one key and room), cut into 3 s clips that carry all their labels. Validation is a recording-disjoint 15% split of the single-instrument clips."
# the detection threshold comes from separate excerpts (another seed), not from the reported test data
python3 -m irmas data render --bank FluidR3_GM --bank MuseScore_General --out data/calib \
  --train-per-class 0 --test-excerpts 100 --seed 1 --sample-rate 22050
python3 -m train calibrate "$OUT" data/calib/FluidR3_GM/test data/calib/MuseScore_General/test
python3 -m irmas evaluate data/synth/FluidR3_GM/test --model "$OUT"
python3 -m irmas evaluate data/synth/MuseScore_General/test --model "$OUT"
