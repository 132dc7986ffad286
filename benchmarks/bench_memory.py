"""Memory-budget benchmark: peak memory of decoding under several ``max_memory`` budgets, side by side.

Each budget runs in its own subprocess on the same random t5-small-shaped model and inputs. The child
loads the model and warms up, then records the peak memory that decoding every layer adds (CPU: resident
memory sampled every millisecond; CUDA: the allocator's peak). The encoder pass is included. The parent
checks that the tokens are identical under every budget and prints each peak next to its budget.

    python benchmarks/bench_memory.py --inputs 32 --budgets none,400MB,100MB,25MB
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch


def rss_bytes() -> int:
    """Current resident memory of this process (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


class PeakMeter:
    """Peak memory added while the block runs: CUDA's allocator peak, or RSS sampled every millisecond."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.peak, self._running = device, 0, False

    def __enter__(self) -> PeakMeter:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            self.base, self._running = rss_bytes(), True
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while self._running:
            self.peak = max(self.peak, rss_bytes() - self.base)
            time.sleep(0.001)

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self.base
        else:
            self._running = False
            self._thread.join()


def run_budget(budget: str, inputs: int, max_new_tokens: int, device_name: str) -> dict[str, Any]:
    from transformers import T5Config, T5ForConditionalGeneration

    from decoderlens import DecoderLens
    from decoderlens.testing import sample_texts, word_tokenizer

    torch.manual_seed(0)
    device = torch.device(device_name)
    config = T5Config(vocab_size=32128, d_model=512, d_ff=2048, num_layers=6, num_heads=8, d_kv=64,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    model = T5ForConditionalGeneration(config).eval().to(device)
    lens = DecoderLens(model, word_tokenizer())
    texts = sample_texts(inputs, seed=1, min_len=8, max_len=24)
    lens.generate(texts[:2], max_new_tokens=2)  # warm up allocator and kernels
    with torch.no_grad():
        lens.encode(texts)
    start = time.perf_counter()
    with PeakMeter(device) as meter:
        out = lens.generate(texts, batch_size=inputs, max_rows=10_000, max_new_tokens=max_new_tokens,
                            top_length_cap=None, max_memory=None if budget == "none" else budget)
    seconds = time.perf_counter() - start
    tokens = [r.token_ids for ex in out for r in ex.readouts]
    return {"budget": budget, "added_peak_mb": meter.peak / 2**20, "seconds": seconds, "tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--budgets", default="none,400MB,100MB,25MB")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        sys.stdout.write(json.dumps(run_budget(args.child, args.inputs, args.max_new_tokens, args.device)))
        return
    results = []
    for budget in args.budgets.split(","):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", budget, "--inputs", str(args.inputs),
               "--max-new-tokens", str(args.max_new_tokens), "--threads", str(args.threads), "--device", args.device]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"t5-small shape, {args.inputs} inputs x 7 layers, max_new_tokens {args.max_new_tokens}, device "
          f"{args.device}, {args.threads} threads")
    print(f"  {'budget':>8s}  {'added peak':>11s}  {'peak/budget':>11s}  {'seconds':>7s}  tokens identical")
    for r in results:
        ratio = "" if r["budget"] == "none" else f"{r['added_peak_mb'] * 2**20 / _bytes(r['budget']):.2f}"
        print(f"  {r['budget']:>8s}  {r['added_peak_mb']:8.0f} MB  {ratio:>11s}  {r['seconds']:7.2f}  "
              f"{r['tokens'] == results[0]['tokens']}")


def _bytes(budget: str) -> int:
    from decoderlens.budget import parse_size

    return parse_size(budget)


if __name__ == "__main__":
    main()
