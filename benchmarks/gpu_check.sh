#!/usr/bin/env bash
# One prepared check for a lent GPU machine (torch + transformers there; no vLLM, no internet), <= 8 min:
#   1. the hf backend's decode loop vs transformers generate on CUDA (bench_hf_decode.py, random
#      weights of Qwen2.5-0.5B's shape, bf16);
#   2. a few GRPO steps in bf16 on a random-weights model of Qwen2.5-0.5B's shape (no download;
#      SmolLM2's tokenizer, whose ids fit the larger vocabulary);
#   3. the same under DeepSpeed ZeRO-2 on one GPU (accelerate launch, train/accelerate/deepspeed-zero2.yaml).
#
#   here (with internet):  bash benchmarks/gpu_check.sh --prepare
#       writes .gpu_carry/ (git-ignored): wheels of what a bare torch+transformers machine lacks
#       (reasonkit's own dependencies, peft, accelerate, deepspeed 0.19.8 built without ops) and
#       the tokenizer files. Binary wheels are for this machine's Python; the device must match it.
#   on the GPU machine:    bash benchmarks/gpu_check.sh [RESULTS_DIR]      (default benchmarks/results/gpu_check)
#       e.g. the device tool: command 'bash benchmarks/gpu_check.sh "$OUT"', carry [".gpu_carry"].
#   CPU dry run of the same steps, tiny sizes:  bash benchmarks/gpu_check.sh --smoke [DIR]   (default: a temp dir;
#       a smoke run never writes benchmarks/results/, see benchmarks/harness.py)
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.gpu_carry
PY=${PYTHON:-python}

if [ "${1:-}" = "--prepare" ]; then
  rm -rf "$CARRY" && mkdir -p "$CARRY/wheels" "$CARRY/tokenizer"
  # the versions installed here (a consistent set: pydantic pins pydantic-core, sympy caps mpmath)
  NAMES="peft accelerate hjson einops py-cpuinfo msgpack ninja click rich markdown-it-py mdurl pygments math-verify
    latex2sympy2_extended antlr4-python3-runtime sympy mpmath psutil pyyaml pydantic pydantic-core annotated-types
    typing-inspection"
  PINS=$($PY -c "import sys, importlib.metadata as m; print(' '.join(n + '==' + m.version(n) for n in sys.argv[1:]))" $NAMES)
  # shellcheck disable=SC2086
  $PY -m pip download --no-deps -q -d "$CARRY/wheels" $PINS setuptools wheel
  DS_BUILD_OPS=0 $PY -m pip wheel --no-deps -q -w "$CARRY/wheels" deepspeed==0.19.8
  TOK=$($PY -c "from reasonkit.engine.models import resolve_model; print(resolve_model(None))")
  cp "$TOK"/tokenizer* "$TOK"/special_tokens_map.json "$TOK"/chat_template.jinja "$CARRY/tokenizer/" 2>/dev/null || true
  du -sh "$CARRY"
  exit 0
fi

SMOKE=0
RECORD=(--record)   # the check on the GPU machine is a full run: bench_hf_decode records into $RESULTS
if [ "${1:-}" = "--smoke" ]; then SMOKE=1; RECORD=(); shift; fi
if [ $SMOKE = 1 ]; then RESULTS=${1:-$(mktemp -d)}; else RESULTS=${1:-benchmarks/results/gpu_check}; fi
case "$(realpath -m "$RESULTS")/" in
  "$(realpath -m benchmarks/results)"/*) [ $SMOKE = 0 ] || { echo "gpu_check.sh: --smoke never writes benchmarks/results/; give another DIR" >&2; exit 2; } ;;
esac
mkdir -p "$RESULTS"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
LOG="$RESULTS/gpu_check.log"
: > "$LOG"
say() { echo "== $*" | tee -a "$LOG"; }

if [ $SMOKE = 0 ]; then
  $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)" || { say "no CUDA device"; exit 3; }
  [ -d "$CARRY/wheels" ] || { say "no $CARRY/ (run --prepare where there is internet, carry it)"; exit 2; }
  say "install what is missing from $CARRY/wheels"
  for whl in "$CARRY"/wheels/*.whl; do
    name=$(basename "$whl" | cut -d- -f1)
    $PY -m pip show "$name" >/dev/null 2>&1 || $PY -m pip install -q --no-index --no-deps "$whl" >>"$LOG" 2>&1
  done
  $PY -m pip install -q --no-index --find-links "$CARRY/wheels" --no-deps . >>"$LOG" 2>&1
  DEVICE=cuda DTYPE=bf16 LAYERS=24 HIDDEN=896 INTER=4864 HEADS=14 ITEMS=32 TOKENS=128 STEPS=4
else
  DEVICE=cpu DTYPE=fp32 LAYERS=2 HIDDEN=64 INTER=128 HEADS=4 ITEMS=4 TOKENS=8 STEPS=2
fi
TOKDIR="$CARRY/tokenizer"
if [ ! -f "$TOKDIR/tokenizer.json" ]; then  # CPU machines have the embedded model's tokenizer
  TOKDIR=$($PY -c "from reasonkit.engine.models import resolve_model; print(resolve_model(None))")
fi

say "random-weights model of Qwen2.5-0.5B's shape (layers $LAYERS, hidden $HIDDEN) in $WORK/model"
$PY - "$WORK/model" "$TOKDIR" "$DTYPE" "$LAYERS" "$HIDDEN" "$INTER" "$HEADS" <<'EOF' 2>>"$LOG"
import sys, torch
from transformers import AutoTokenizer, GenerationConfig, Qwen2Config, Qwen2ForCausalLM
out, tokdir, dtype, layers, hidden, inter, heads = sys.argv[1:]
tok = AutoTokenizer.from_pretrained(tokdir)
cfg = Qwen2Config(vocab_size=151936, hidden_size=int(hidden), intermediate_size=int(inter),
                  num_hidden_layers=int(layers), num_attention_heads=int(heads), num_key_value_heads=2,
                  max_position_embeddings=32768, rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=True,
                  bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
torch.manual_seed(0)
model = Qwen2ForCausalLM(cfg).to(torch.bfloat16 if dtype == "bf16" else torch.float32)
model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                           pad_token_id=tok.pad_token_id)
model.save_pretrained(out, safe_serialization=True)
tok.save_pretrained(out)
print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters")
EOF

DECODE_DTYPE=float32; [ "$DTYPE" = bf16 ] && DECODE_DTYPE=bfloat16   # bench_hf_decode's dtype names
say "1. hf decode loop vs generate ($DEVICE, $DECODE_DTYPE)"
timeout 150 $PY benchmarks/bench_hf_decode.py --device "$DEVICE" --random-weights "$WORK/model" --dtype "$DECODE_DTYPE" \
    --items "$ITEMS" --max-tokens "$TOKENS" --batch-size 32 --results "$RESULTS" "${RECORD[@]}" 2>>"$LOG" | tee -a "$LOG" \
    || say "hf decode check failed (rc $?)"

TRAIN=(train --model "$WORK/model" --dtype "$DTYPE" --dataset countdown --group-size 4 --prompts-per-step 2
       --max-tokens "$TOKENS" --max-steps "$STEPS" --save-steps 0 --log-completions-steps 0 --seed 0 --quiet)
say "2. GRPO, $STEPS steps, one process"
timeout 120 reasonkit "${TRAIN[@]}" --output "$WORK/grpo" >>"$LOG" 2>&1 && cp "$WORK/grpo/metrics.jsonl" "$RESULTS/grpo.jsonl" \
    || say "GRPO run failed (rc $?)"

say "3. GRPO under DeepSpeed ZeRO-2, one process"
MP=no; [ "$DTYPE" = bf16 ] && MP=bf16
timeout 150 accelerate launch --config_file train/accelerate/deepspeed-zero2.yaml --num_processes 1 \
    --mixed_precision "$MP" "$(which reasonkit)" "${TRAIN[@]}" --output "$WORK/zero2" >>"$LOG" 2>&1 \
    && cp "$WORK/zero2/metrics.jsonl" "$RESULTS/zero2.jsonl" || say "ZeRO-2 run failed (rc $?)"

PYTHONPATH=benchmarks $PY - "$RESULTS" "$DEVICE" <<'EOF' | tee "$RESULTS/summary.md"
import json, sys, pathlib
res, device = pathlib.Path(sys.argv[1]), sys.argv[2]
import torch
import harness  # benchmarks/harness.py (on PYTHONPATH): the machine in the one schema
name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
print(f"# GPU check ({name}, torch {torch.__version__})\n")
print(harness.machine_line(harness.machine()) + "\n")
print("| run | steps | s/step (after the first) | rollout s/step | reward | grad_norm (last) |\n|---|---|---|---|---|---|")
for run in ("grpo", "zero2"):
    f = res / f"{run}.jsonl"
    if not f.is_file():
        print(f"| {run} | failed | | | | |")
        continue
    rows = [json.loads(l) for l in f.read_text().splitlines()]
    later = rows[1:] or rows
    print(f"| {run} | {len(rows)} | {sum(r['step_seconds'] for r in later) / len(later):.2f} | "
          f"{sum(r['gen_seconds'] for r in later) / len(later):.2f} | {rows[-1]['reward']:.3f} | {rows[-1]['grad_norm']:.4f} |")
hf = res / "hf_decode.md"
print("\nhf decode loop vs generate: " + ("see hf_decode.md" if hf.is_file() else "failed (see gpu_check.log)"))
EOF
