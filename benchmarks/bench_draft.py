"""Exact draft verification, measured against the engine's defaults on the shipped logic model.

The top layer is decoded first; its output is then the draft for every lower layer's row. Each pass runs the
decoder teacher-forced over (correct prefix + draft) for all unfinished rows at once, keeps the longest prefix
that greedy decoding confirms plus the first corrected token, and re-verifies the rest of the draft in the next
pass. This is token-identical to greedy decoding (checked here against ``lens.generate``); the question is only
whether it is faster. Passes run without a key/value cache (each pass recomputes the prefix).

    python benchmarks/bench_draft.py --inputs 400 --max-new-tokens 16
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from transformers.modeling_outputs import BaseModelOutput

from decoderlens import DecoderLens
from decoderlens.logic import shipped_model_path


def verify_passes(lens: DecoderLens, texts: list[str], max_new_tokens: int) -> tuple[dict[tuple[int, int], list[int]],
                                                                                      list[int]]:
    """Readouts of every layer below the top one by draft verification, and the rows left after each pass."""
    model, tokenizer = lens.model, lens.tokenizer
    eos, start, pad = model.config.eos_token_id, model.config.decoder_start_token_id, model.config.pad_token_id
    top = lens.generate(texts, [lens.num_layers], max_new_tokens=max_new_tokens)
    drafts = [[*ex.layer(lens.num_layers).token_ids, eos] for ex in top]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    encoded = lens.adapter.encode(batch)
    states = {layer: lens.adapter.layer_state(encoded, layer) for layer in range(lens.num_layers)}
    pending = [(b, layer) for layer in range(lens.num_layers) for b in range(len(texts))]
    known: dict[tuple[int, int], list[int]] = {row: [] for row in pending}
    results: dict[tuple[int, int], list[int]] = {}
    left: list[int] = []
    while pending:
        sequences = [(known[row] + drafts[row[0]][len(known[row]):])[:max_new_tokens] for row in pending]
        decoder_ids = torch.full((len(pending), max(map(len, sequences)) + 1), pad)
        decoder_ids[:, 0] = start
        for i, sequence in enumerate(sequences):
            decoder_ids[i, 1:len(sequence) + 1] = torch.tensor(sequence, dtype=torch.long)
        state = torch.cat([states[layer][b:b + 1] for b, layer in pending])
        mask = torch.cat([batch["attention_mask"][b:b + 1] for b, _ in pending])
        with torch.no_grad():
            predicted = model(encoder_outputs=BaseModelOutput(last_hidden_state=state), attention_mask=mask,
                              decoder_input_ids=decoder_ids, use_cache=False).logits.argmax(-1).tolist()
        still = []
        for i, row in enumerate(pending):
            out, finished = list(known[row]), False
            for t in range(len(known[row]), len(sequences[i]) + 1):
                out.append(predicted[i][t])
                if predicted[i][t] == eos or len(out) >= max_new_tokens:
                    finished = True
                    break
                if t == len(sequences[i]) or sequences[i][t] != predicted[i][t]:
                    break
            if finished:
                results[row] = out[:out.index(eos)] if eos in out else out
            else:
                known[row] = out
                still.append(row)
        pending = still
        left.append(len(pending))
    for b, ex in enumerate(top):
        results[(b, lens.num_layers)] = ex.layer(lens.num_layers).token_ids
    return results, left


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=400)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from decoderlens.logic.demo import held_out_examples, trained_target

    path = shipped_model_path()
    texts = [e.formula for e in held_out_examples(args.inputs, target=trained_target(path))]
    lens = DecoderLens.from_pretrained(str(path), device="cpu")
    lens.generate(texts[:2], max_new_tokens=2)  # warm-up
    timings: dict[str, list[float]] = {"defaults": [], "draft": []}
    reference: Any = None
    drafted: dict[tuple[int, int], list[int]] = {}
    left: list[int] = []
    for _ in range(args.repeats):  # alternate, so that both see the same machine state
        start = time.perf_counter()
        drafted, left = verify_passes(lens, texts, args.max_new_tokens)
        timings["draft"].append(time.perf_counter() - start)
        start = time.perf_counter()
        reference = lens.generate(texts, "all", max_new_tokens=args.max_new_tokens)
        timings["defaults"].append(time.perf_counter() - start)
    same = all(drafted[(b, layer)] == ex.layer(layer).token_ids
               for b, ex in enumerate(reference) for layer in range(lens.num_layers + 1))
    best = {name: min(values) for name, values in timings.items()}
    print(f"logic model, {len(texts)} formulas, all {lens.num_layers + 1} layers, max_new_tokens "
          f"{args.max_new_tokens}, {args.threads} threads; best of {args.repeats}")
    print(f"  defaults {best['defaults']:.2f} s   draft verification {best['draft']:.2f} s   "
          f"defaults / draft = {best['defaults'] / best['draft']:.2f}x   identical tokens: {same}")
    print(f"  passes: {len(left)}; rows below the top left after each pass: {left} "
          f"(of {len(texts) * lens.num_layers})")


if __name__ == "__main__":
    main()
