"""Side-by-side decoding benchmark at the engine's DEFAULTS, against the naive way and other settings.

Each method runs in its own subprocess (so that peak memory is its own) on the same model and inputs, in
``--rounds`` rounds (3 by default) in which the methods alternate, so that all of them see the same drift of a
shared machine. The parent checks which methods produce the same tokens as the per-layer loop and prints each
method's best and median time and the ratios: best against best (as ``timeit`` reports), median against
median, and round by round.

    python benchmarks/bench_decoding.py --shape t5-small --inputs 8
    python benchmarks/bench_decoding.py --shape t5-base --inputs 32 --methods naive,defaults,floor
    python benchmarks/bench_decoding.py --shape logic --inputs 400 --max-new-tokens 16 --methods defaults,batch-8
    python benchmarks/bench_decoding.py --shape logic --inputs 400 --score --methods separate,defaults

Decoding methods (``--score`` off):
- naive: for each layer, the model with its encoder cut to that layer, and ordinary ``generate``;
- loop: encoder once, one ``generate`` per layer;
- defaults: ``lens.generate(inputs, "all", max_new_tokens=N)`` and nothing else set: what a user gets;
- cap-off, batch-8, generate, one-call: the defaults with one setting changed (``top_length_cap=None``,
  ``batch_size=8``, ``decoding="generate"``, ``decoding="one-call"``);
- floor: one ordinary ``generate`` over as many rows as the stack (the decoding that cannot be avoided).

Scoring methods (``--score``: read out and score the reference, as ``eval --score`` does):
- separate: ``generate`` then ``score`` (two encoder passes per batch);
- defaults: ``read_all`` (one encoder pass per batch), the path ``eval --score`` takes.
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

import torch

SHAPES = {
    "t5-small": {"d_model": 512, "d_ff": 2048, "num_layers": 6, "num_heads": 8, "d_kv": 64},
    "t5-base": {"d_model": 768, "d_ff": 3072, "num_layers": 12, "num_heads": 12, "d_kv": 64},
}
DECODING = ("naive", "loop", "defaults", "cap-off", "batch-8", "generate", "one-call", "floor")
SCORING = ("separate", "defaults")
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {}, "cap-off": {"top_length_cap": None}, "batch-8": {"batch_size": 8},
    "generate": {"decoding": "generate"}, "one-call": {"decoding": "one-call"},
}


def build(shape: str) -> tuple[Any, Any, list[str], list[str]]:
    """Model, tokenizer, inputs and references: a random T5 of the given shape, or the shipped logic model."""
    from transformers import T5Config, T5ForConditionalGeneration

    from decoderlens.logic import shipped_model_path
    from decoderlens.logic.demo import held_out_examples, trained_target
    from decoderlens.testing import sample_texts, word_tokenizer

    if shape == "logic":
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        path = shipped_model_path()
        model = AutoModelForSeq2SeqLM.from_pretrained(path, dtype=torch.float32)
        examples = held_out_examples(2000, target=trained_target(path))
        return (model.eval(), AutoTokenizer.from_pretrained(path), [e.formula for e in examples],
                [e.target for e in examples])
    torch.manual_seed(0)
    tokenizer = word_tokenizer()
    config = T5Config(vocab_size=32128, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, **SHAPES[shape])
    texts = sample_texts(512, seed=1, min_len=8, max_len=24)
    return T5ForConditionalGeneration(config).eval(), tokenizer, texts, [" ".join(t.split()[:4]) for t in texts]


def run_method(method: str, shape: str, inputs: int, max_new_tokens: int, num_beams: int,
               score: bool) -> dict[str, Any]:
    from transformers.modeling_outputs import BaseModelOutput

    from decoderlens import DecoderLens
    from decoderlens.testing import truncated_encoder

    model, tokenizer, texts, references = build(shape)
    texts, references = texts[:inputs], references[:inputs]
    lens = DecoderLens(model, tokenizer)
    layers = list(range(lens.num_layers + 1))
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    kwargs = {"max_new_tokens": max_new_tokens, "num_beams": num_beams, "do_sample": False}
    lens.generate(texts[:2], max_new_tokens=2)  # warm-up: first calls pay one-time costs
    start = time.perf_counter()
    tokens: list[list[int]] = []
    logprobs: list[float] = []
    with torch.no_grad():
        if score:
            from decoderlens import GenerationSettings, RuntimeSettings

            generation = GenerationSettings(max_new_tokens=max_new_tokens, num_beams=num_beams)
            if method == "separate":
                out = lens.generate(texts, generation=generation, runtime=RuntimeSettings())
                scored = lens.score(texts, references)
            else:
                readings = lens.read_all(texts, references, generation=generation, runtime=RuntimeSettings())
                out, scored = readings.readouts, readings.scores
            tokens = [ex.layer(layer).token_ids for layer in layers for ex in out]
            logprobs = [round(ls.logprob, 3) for ex in scored for ls in ex.layers]
        elif method == "naive":
            for layer in layers:
                with truncated_encoder(model, layer):
                    tokens += model.generate(**batch, **kwargs).tolist()
        elif method == "loop":
            encoded = lens.adapter.encode(batch)
            for layer in layers:
                state = lens.adapter.layer_state(encoded, layer)
                tokens += model.generate(encoder_outputs=BaseModelOutput(last_hidden_state=state),
                                         attention_mask=batch["attention_mask"], **kwargs).tolist()
        elif method in VARIANTS:
            out = lens.generate(texts, "all", max_new_tokens=max_new_tokens, num_beams=num_beams, **VARIANTS[method])
            tokens = [ex.layer(layer).token_ids for layer in layers for ex in out]
        else:  # floor: the same number of rows through one ordinary generate
            stacked = {k: v.repeat(len(layers), 1) for k, v in batch.items()}
            tokens = model.generate(**stacked, **kwargs).tolist()
    seconds = time.perf_counter() - start
    if method in ("naive", "loop", "floor"):
        tokens = [cut(t[1:], {1}) for t in tokens]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"method": method, "seconds": seconds, "peak_rss_mb": peak, "tokens": tokens, "logprobs": logprobs}


def cut(sequence: list[int], eos: set[int]) -> list[int]:
    for i, token in enumerate(sequence):
        if token in eos:
            return sequence[:i]
    return sequence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=[*SHAPES, "logic"], default="t5-small")
    parser.add_argument("--inputs", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=20)
    parser.add_argument("--num-beams", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--score", action="store_true", help="compare eval --score's old and new paths")
    parser.add_argument("--methods", default=None)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each method, alternating")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        result = run_method(args.child, args.shape, args.inputs, args.max_new_tokens, args.num_beams, args.score)
        sys.stdout.write(json.dumps(result))
        return
    methods = (args.methods or ",".join(SCORING if args.score else DECODING)).split(",")
    results: dict[str, dict[str, Any]] = {}
    times: dict[str, list[float]] = {method: [] for method in methods}
    for round_ in range(args.rounds):  # methods alternate, so that each sees the same drift of the machine
        for method in methods:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", method, "--shape", args.shape,
                   "--inputs", str(args.inputs), "--max-new-tokens", str(args.max_new_tokens), "--num-beams",
                   str(args.num_beams), "--threads", str(args.threads), *(["--score"] if args.score else [])]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            if method in results and result["tokens"] != results[method]["tokens"]:
                raise SystemExit(f"{method} gave different tokens in round {round_ + 1}")
            results[method] = result
            times[method].append(result["seconds"])
            print(f"  round {round_ + 1}  {method:10s} {result['seconds']:8.2f} s   peak RSS "
                  f"{result['peak_rss_mb']:7.0f} MB", flush=True)
    reference = results.get("loop") or results.get("naive") or next(iter(results.values()))
    print(f"\n{args.shape}, {args.inputs} inputs, beams {args.num_beams}, max_new_tokens {args.max_new_tokens}, "
          f"{args.threads} threads, {'read + score' if args.score else 'read out'}, device cpu, "
          f"{args.rounds} rounds")
    for method in methods:
        print(f"  {method:10s} best {min(times[method]):6.2f} s   median {statistics.median(times[method]):6.2f} s   "
              f"peak RSS {results[method]['peak_rss_mb']:5.0f} MB")
    for method, result in results.items():
        if method != "floor":
            same = result["tokens"] == reference["tokens"] and result["logprobs"] == reference["logprobs"]
            print(f"  same tokens{' and scores' if args.score else ''} as {reference['method']}: {method:10s} {same}")
    if "defaults" in results:
        best, middle = min(times["defaults"]), statistics.median(times["defaults"])
        for other in methods:
            if other != "defaults":
                print(f"  {other:10s} / defaults = {min(times[other]) / best:.2f}x best of {args.rounds}, "
                      f"{statistics.median(times[other]) / middle:.2f}x median, per round "
                      + " ".join(f"{o / d:.2f}x" for o, d in zip(times[other], times["defaults"], strict=True)))


if __name__ == "__main__":
    main()
