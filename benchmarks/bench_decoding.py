"""Side-by-side decoding benchmark: naive vs per-layer loop vs decoderlens vs the unavoidable floor.

Each method runs in its own subprocess (so that peak memory is its own), on the same random model and
inputs; the parent checks that all methods produce identical tokens and prints ratios.

    python benchmarks/bench_decoding.py --shape t5-small --inputs 8
    python benchmarks/bench_decoding.py --shape t5-base --inputs 32 --num-beams 4
    python benchmarks/bench_decoding.py --shape logic --inputs 64 --max-new-tokens 64

- naive: for each layer, the model with its encoder cut to that layer, and ordinary ``generate``;
- loop: encoder once, one ``generate`` per layer;
- decoderlens: the engine (stacked layers; greedy search through the lean loop where the generation config
  allows it, beam search through ``generate``; top-length cap off so that every method decodes the same tokens);
- decoderlens-generate: the engine with ``lean=False``: ``generate`` only, finished rows dropped between rounds;
- decoderlens-1call: the engine with every stack decoded in one ``generate`` call;
- floor: one ordinary ``generate`` over as many rows as the stack (the decoding work that cannot be avoided).
"""

from __future__ import annotations

import argparse
import json
import resource
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
METHODS = ("naive", "loop", "decoderlens", "decoderlens-generate", "decoderlens-1call", "floor")


def build(shape: str) -> tuple[Any, Any, list[str]]:
    """Model, tokenizer and inputs: a random T5 of the given shape, or the shipped logic model."""
    from transformers import T5Config, T5ForConditionalGeneration

    from decoderlens.logic import shipped_model_path
    from decoderlens.logic.demo import held_out_examples
    from decoderlens.testing import sample_texts, word_tokenizer

    if shape == "logic":
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        path = shipped_model_path()
        model = AutoModelForSeq2SeqLM.from_pretrained(path, dtype=torch.float32)
        return model.eval(), AutoTokenizer.from_pretrained(path), [e.formula for e in held_out_examples(512)]
    torch.manual_seed(0)
    tokenizer = word_tokenizer()
    config = T5Config(vocab_size=32128, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, **SHAPES[shape])
    model = T5ForConditionalGeneration(config).eval()
    return model, tokenizer, sample_texts(512, seed=1, min_len=8, max_len=24)


def run_method(method: str, shape: str, inputs: int, max_new_tokens: int, num_beams: int) -> dict[str, Any]:
    from transformers.modeling_outputs import BaseModelOutput

    from decoderlens import DecoderLens

    model, tokenizer, texts = build(shape)
    texts = texts[:inputs]
    lens = DecoderLens(model, tokenizer)
    layers = list(range(lens.num_layers + 1))
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    kwargs = {"max_new_tokens": max_new_tokens, "num_beams": num_beams, "do_sample": False}
    start = time.perf_counter()
    tokens: list[list[int]] = []
    with torch.no_grad():
        if method == "naive":
            for layer in layers:
                with lens.adapter.truncated_encoder(layer):
                    tokens += model.generate(**batch, **kwargs).tolist()
        elif method == "loop":
            encoded = lens.adapter.encode(batch)
            for layer in layers:
                state = lens.adapter.layer_state(encoded, layer)
                tokens += model.generate(encoder_outputs=BaseModelOutput(last_hidden_state=state),
                                         attention_mask=batch["attention_mask"], **kwargs).tolist()
        elif method.startswith("decoderlens"):
            first_round = None if method.endswith("1call") else 16  # 1call: lean off too
            out = lens.generate(texts, "all", batch_size=len(texts), max_rows=len(texts) * len(layers),
                                max_new_tokens=max_new_tokens, num_beams=num_beams, first_round=first_round,
                                lean=method == "decoderlens", top_length_cap=None)
            tokens = [ex.layer(layer).token_ids for layer in layers for ex in out]
        else:  # floor: the same number of rows through one ordinary generate
            stacked = {k: v.repeat(len(layers), 1) for k, v in batch.items()}
            tokens = model.generate(**stacked, **kwargs).tolist()
    seconds = time.perf_counter() - start
    if not method.startswith("decoderlens"):
        tokens = [cut(t[1:], {1}) for t in tokens]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"method": method, "seconds": seconds, "peak_rss_mb": peak, "tokens": tokens}


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
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        result = run_method(args.child, args.shape, args.inputs, args.max_new_tokens, args.num_beams)
        sys.stdout.write(json.dumps(result))
        return
    results = {}
    for method in args.methods.split(","):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", method, "--shape", args.shape, "--inputs",
               str(args.inputs), "--max-new-tokens", str(args.max_new_tokens), "--num-beams", str(args.num_beams),
               "--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[method] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"  {method:18s} {results[method]['seconds']:8.2f} s   peak RSS {results[method]['peak_rss_mb']:7.0f} MB",
              flush=True)
    reference = results.get("loop") or next(iter(results.values()))
    identical = {m: r["tokens"] == reference["tokens"] for m, r in results.items() if m != "floor"}
    print(f"\n{args.shape}, {args.inputs} inputs, beams {args.num_beams}, max_new_tokens {args.max_new_tokens}, "
          f"{args.threads} threads, device cpu")
    for method, same in identical.items():
        print(f"  tokens identical to loop: {method:18s} {same}")
    engine = results.get("decoderlens")
    if engine:
        for other in ("naive", "loop", "decoderlens-generate", "decoderlens-1call", "floor"):
            if other in results:
                print(f"  {other:18s} / decoderlens = {results[other]['seconds'] / engine['seconds']:.2f}x")


if __name__ == "__main__":
    main()
