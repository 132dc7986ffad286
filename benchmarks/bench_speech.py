"""Whisper at real shapes: the DEFAULTS against the loop a researcher writes by hand, side by side, with time, peak
memory and the automatic memory budget's choices.

Each method runs in its own subprocess (so that its peak memory is its own), in ``--rounds`` rounds in which the
methods alternate. Methods:
- loop: what several groups wrote by hand: the encoder once with ``output_hidden_states``, then one batched
  ``generate`` per layer (the final norm applied to the layers below the top, as the lens does);
- loop-capped: the same loop with the lower layers' ``generate`` calls cut at ``2n + 16`` new tokens, ``n`` the
  batch's longest top-layer output (the lens cuts each example at its own ``2n + 16``);
- defaults: ``lens.generate(clips, language=...)`` and nothing else set: what a user gets;
- one-call: the encoder once, the top layer's ``generate``, then the lower layers' states stacked into one
  ``generate`` cut like loop-capped: every row decoded in one call, no bookkeeping at all;
- floor: the work any exact method must do, without its sequential steps: the encoder once, then every row
  teacher-forced in one pass over the very tokens the defaults wrote for it (prompt, text, end), rows sorted by
  length into calls of ``--floor-rows`` so that padding costs little. Each row pays its cross-attention
  projections of all frames once and every decoder position once. Reported with its parts: the encoder, the
  projections (the same pass over the prompt alone, a diagnostic not counted in the floor's total) and the
  whole pass. The defaults' own run, which supplies the tokens, is not timed.

    python benchmarks/bench_speech.py --model ~/.cache/real-whisper/whisper-base --clips clips/en --inputs 16
    python benchmarks/bench_speech.py --shape large-v3 --inputs 1 --seconds 29 --max-new-tokens 8 --rounds 1

``--shape large-v3`` builds a random model with Whisper-large-v3's shape (32+32 layers, width 1280, 128 mel bins,
1500 frames): on a CPU a smoke test of memory and correctness, not of speed. The budget line reports what the
automatic memory budget allows one call: its bytes, the bytes it counts per stacked row (encoder states, the
cross-attention and self-attention key/value caches, one step's work), and the rows per call that follow.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

METHODS = ("loop", "loop-capped", "defaults", "one-call", "floor")
LARGE_V3 = {"d_model": 1280, "encoder_layers": 32, "decoder_layers": 32, "encoder_attention_heads": 20,
            "decoder_attention_heads": 20, "encoder_ffn_dim": 5120, "decoder_ffn_dim": 5120, "num_mel_bins": 128,
            "vocab_size": 51866}


def build(args: argparse.Namespace) -> tuple[Any, Any, list[Any]]:
    """Model, processor and clips: a local Whisper folder with a folder of clips, or a random large-v3 shape with
    seeded noise clips."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    if args.model:
        model = WhisperForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32).eval()
        processor = WhisperProcessor.from_pretrained(args.model)
        clips = sorted(str(p) for p in Path(args.clips).glob("*.wav"))[: args.inputs]
        if len(clips) < args.inputs:
            raise SystemExit(f"{args.clips} holds {len(clips)} .wav clips; --inputs asks for {args.inputs}")
        return model, processor, clips
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperTokenizerFast

    base = Path(args.tokenizer_from).expanduser()
    torch.manual_seed(0)
    config = WhisperConfig(**LARGE_V3, decoder_start_token_id=50258, eos_token_id=50257, pad_token_id=50257,
                           bos_token_id=50257, max_source_positions=1500, max_target_positions=448)
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = type(model.generation_config).from_pretrained(base)
    extractor = WhisperFeatureExtractor(feature_size=128)
    processor = WhisperProcessor(extractor, WhisperTokenizerFast.from_pretrained(base))
    rng = np.random.default_rng(0)
    clips = [(0.05 * rng.standard_normal(int(args.seconds * 16000))).astype(np.float32) for _ in range(args.inputs)]
    return model, processor, clips


def run_method(method: str, args: argparse.Namespace) -> dict[str, Any]:
    from transformers.modeling_outputs import BaseModelOutput

    from decoderlens import DecoderLens, GenerationSettings
    from decoderlens.budget import RowCost, available_bytes
    from decoderlens.inputs import load_audio

    model, processor, clips = build(args)
    lens = DecoderLens(model, processor)
    options: dict[str, Any] = {"language": args.language} if args.language else {}
    if args.max_new_tokens:
        options["max_new_tokens"] = args.max_new_tokens
    plan = lens.plan(GenerationSettings(**options))
    layers = list(range(lens.num_layers + 1))
    budget = available_bytes(lens.device)
    row = RowCost(model).decoding(1500, model.config.d_model, plan.max_new_tokens, len(plan.prompt))
    written: list[list[int]] = []
    if method == "floor":  # the tokens to teacher-force: what the defaults write for every row (not timed)
        out = lens.generate(clips, **options)
        written = [readout.token_ids for ex in out for readout in ex.readouts]
    start = time.perf_counter()
    tops: list[list[int]] = []
    parts: dict[str, float] = {}
    with torch.no_grad():
        if method == "floor":
            tops, parts = floor(lens, clips, written, plan, args.floor_rows)
        elif method == "defaults":
            out = lens.generate(clips, **options)
            tops = [ex.layer(lens.num_layers).token_ids for ex in out]
        else:
            waves = [load_audio(clip, 16000) for clip in clips]
            features = processor.feature_extractor(waves, sampling_rate=16000, return_tensors="pt").input_features
            encoder = model.get_encoder()
            hidden = encoder(features, output_hidden_states=True).hidden_states
            states = [hidden[layer] if layer == lens.num_layers else encoder.layer_norm(hidden[layer])
                      for layer in layers]
            spoken = {"language": args.language, "task": "transcribe"} if lens_languages(model) else {}
            kwargs = {"do_sample": False, "num_beams": 1, "max_length": None, **spoken}

            def generate(state: torch.Tensor, rows: torch.Tensor, new_tokens: int) -> list[list[int]]:
                out = model.generate(rows, encoder_outputs=BaseModelOutput(last_hidden_state=state),
                                     max_new_tokens=new_tokens, **kwargs)
                return [text_tokens(sequence, plan) for sequence in out.tolist()]

            top = layers[-1]
            tops = generate(states[top], features, plan.max_new_tokens)  # the ordinary output first
            cap = plan.max_new_tokens
            if method != "loop":  # lower layers may write 2n + 16 tokens, n the batch's longest top output
                cap = min(cap, 2 * max(len(t) for t in tops) + 16)
            if method == "one-call":
                generate(torch.cat(states[:top]), features.repeat(top, 1, 1), cap)
            else:
                for layer in layers[:top]:
                    generate(states[layer], features, cap)
    seconds = parts["total"] if parts else time.perf_counter() - start  # the floor: less its diagnostic pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"method": method, "seconds": seconds, "parts": parts, "peak_rss_mb": peak, "tops": tops,
            "budget_bytes": budget,
            "row_bytes": row, "rows_per_call": None if budget is None else max(1, budget // row),
            "rows": len(layers) * len(clips)}


def floor(lens: Any, clips: list[Any], written: list[list[int]], plan: Any,
          rows_per_call: int) -> tuple[list[list[int]], dict[str, float]]:
    """The floor's timed work (see the module's docstring): every row's written tokens teacher-forced from its
    layer's states, in calls of ``rows_per_call`` rows of similar length; returns the top layer's tokens (the
    defaults' own) and the seconds of the encoder, the projections and the whole."""
    from decoderlens.batching import encode

    start = time.perf_counter()
    encoded = encode(lens.parts, clips)
    encoder = time.perf_counter() - start
    layers = list(range(lens.num_layers + 1))
    states = [lens.adapter.layer_state(encoded, layer) for layer in layers]
    count = len(clips)
    end = min(plan.eos_token_ids)
    rows = [(layer, b, list(plan.prompt) + written[b * len(layers) + layer] + [end])
            for layer in layers for b in range(count)]

    def forced(prompt_only: bool) -> float:
        began = time.perf_counter()
        ordered = sorted(rows, key=lambda row: len(row[2]))
        for first in range(0, len(ordered), rows_per_call):
            chunk = ordered[first: first + rows_per_call]
            ids = [row[2][: len(plan.prompt)] if prompt_only else row[2] for row in chunk]
            width = max(len(t) for t in ids)
            tokens = torch.tensor([t + [end] * (width - len(t)) for t in ids])
            state = torch.cat([states[layer][b: b + 1] for layer, b, _ in chunk])
            lens.model(encoder_outputs=(state,), decoder_input_ids=tokens, use_cache=False)
        return time.perf_counter() - began

    projections = forced(prompt_only=True)
    rest = forced(prompt_only=False)
    tops = [written[b * len(layers) + layers[-1]] for b in range(count)]
    return tops, {"encoder": encoder, "projections": projections, "whole pass": rest,
                  "total": encoder + rest}


def lens_languages(model: Any) -> bool:
    """Whether the model's generation config names languages (a multilingual checkpoint)."""
    return bool(getattr(model.generation_config, "lang_to_id", None))


def text_tokens(sequence: list[int], plan: Any) -> list[int]:
    """A generated sequence without the prompt tokens it may start with, cut at its end token."""
    start = 0
    while start < len(sequence) and sequence[start] in plan.prompt:
        start += 1
    for i, token in enumerate(sequence[start:]):
        if token in plan.eos_token_ids:
            return sequence[start: start + i]
    return sequence[start:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="A local Whisper folder (else --shape).")
    parser.add_argument("--clips", help="A folder of .wav clips (with --model).")
    parser.add_argument("--shape", choices=["large-v3"], default="large-v3")
    parser.add_argument("--tokenizer-from", default="~/.cache/real-whisper/whisper-base",
                        help="A multilingual Whisper folder whose tokenizer and generation config the random shape "
                             "borrows.")
    parser.add_argument("--seconds", type=float, default=29.0, help="Length of the random shape's clips.")
    parser.add_argument("--inputs", type=int, default=16)
    parser.add_argument("--language", default="en")
    parser.add_argument("--max-new-tokens", type=int, default=0, help="0: the model's default.")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--floor-rows", type=int, default=16, help="Rows per teacher-forced call of the floor.")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_method(args.child, args)))
        return
    methods = args.methods.split(",")
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    forwarded = sys.argv[1:]
    for _ in range(args.rounds):
        for method in methods:
            proc = subprocess.run([sys.executable, __file__, *forwarded, "--child", method], capture_output=True,
                                  text=True, check=False)
            if proc.returncode != 0:
                raise SystemExit(f"{method} failed:\n{proc.stderr[-3000:]}")
            runs[method].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    first = runs[methods[0]][0]
    what = args.model or f"random {args.shape} shape"
    print(f"{what}: {args.inputs} clips x {first['rows'] // args.inputs} layers, {args.rounds} rounds")
    budget = first["budget_bytes"]
    print(f"automatic budget per call {budget / 2**30:.2f} GiB; counted per stacked row "
          f"{first['row_bytes'] / 2**20:.0f} MiB; rows per call {first['rows_per_call']} of {first['rows']}"
          if budget else "automatic budget: unknown on this device")
    base = "loop" if "loop" in runs else methods[0]
    reference = runs[base][0]["tops"]
    best = {m: min(r["seconds"] for r in rs) for m, rs in runs.items()}
    print(f"{'method':12} {'best s':>8} {'median s':>9} {'peak RSS GiB':>13} {'vs ' + base:>15}  same top layer")
    for method, rs in runs.items():
        ratio = best[method] / best[base]
        same = all(r["tops"] == reference for r in rs)
        peak = max(r["peak_rss_mb"] for r in rs) / 1024
        print(f"{method:12} {best[method]:8.1f} {statistics.median(r['seconds'] for r in rs):9.1f} {peak:13.2f} "
              f"{ratio:14.2f}x  {same}")
    if "floor" in runs:
        parts = min(runs["floor"], key=lambda r: r["seconds"])["parts"]
        print("floor's parts (s): " + ", ".join(f"{name} {value:.1f}" for name, value in parts.items()))
        if "defaults" in runs:
            print(f"defaults / floor = {best['defaults'] / best['floor']:.2f}x")


if __name__ == "__main__":
    main()
