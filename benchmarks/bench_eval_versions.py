"""``decoderlens eval`` as a user runs it, under two versions of the package, side by side.

Each round runs the command once with the source tree given by ``--before`` first on ``PYTHONPATH`` and once
with the installed package, alternating, so that both see the same drift of a shared machine. The parent
times the whole command (start-up, loading, reading out, scoring, metrics, writing), checks that both
versions wrote the same outputs and log-probs for every example and layer, and prints the ratios.

    git worktree add /tmp/before <commit>
    python benchmarks/bench_eval_versions.py --before /tmp/before/src --data logic.jsonl \\
        --args "--preset logic --score" --before-args "--task logic --score"

Without ``--data``, 400 held-out formulas of the shipped logic model are written to a temporary file and
read with the shipped model.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def held_out_file(folder: Path, count: int) -> Path:
    """``count`` held-out formulas of the shipped logic model as JSONL (input, target)."""
    from decoderlens.logic import shipped_model_path
    from decoderlens.logic.demo import held_out_examples, trained_target

    path = folder / "logic.jsonl"
    examples = held_out_examples(count, target=trained_target(shipped_model_path()))
    with path.open("w") as f:
        for index, example in enumerate(examples):
            f.write(json.dumps({"id": index, "input": example.formula, "target": example.target}) + "\n")
    return path


def run_eval(model: str, data: Path, out: Path, args: str, source: str | None) -> float:
    """Seconds one ``decoderlens eval`` command takes (``source`` first on ``PYTHONPATH`` when given)."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if source is not None:
        env["PYTHONPATH"] = source
    cmd = [sys.executable, "-m", "decoderlens", "eval", model, str(data), *shlex.split(args), "--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return seconds


def readouts(folder: Path) -> dict[tuple[str, int], tuple[str, float | None]]:
    """Output and log-prob of every (example id, layer) an eval folder holds."""
    rows = {}
    for line in (folder / "readouts.jsonl").read_text().splitlines():
        record = json.loads(line)
        rows[(str(record["id"]), int(record["layer"]))] = (record["output"], record.get("logprob"))
    return rows


def same(before: dict[tuple[str, int], tuple[str, float | None]],
         now: dict[tuple[str, int], tuple[str, float | None]], tolerance: float = 1e-4) -> bool:
    """Identical outputs, and log-probs within ``tolerance`` (batches of another size round differently)."""
    if before.keys() != now.keys():
        return False
    for key, (output, logprob) in now.items():
        old_output, old_logprob = before[key]
        if output != old_output or (logprob is None) != (old_logprob is None):
            return False
        if logprob is not None and abs(logprob - old_logprob) > tolerance:  # type: ignore[operator]
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="source folder (the one holding decoderlens/) of the "
                        "version to compare against")
    parser.add_argument("--model", default=None, help="model (default: the shipped logic model)")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--count", type=int, default=400, help="held-out formulas when --data is not given")
    parser.add_argument("--args", default="--preset logic --score", help="eval options of this version")
    parser.add_argument("--before-args", default=None, help="eval options of the other version (default: --args)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from decoderlens.logic import shipped_model_path

    model = args.model or str(shipped_model_path())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = args.data or held_out_file(folder, args.count)
        versions = {"before": (args.before, args.before_args or args.args), "now": (None, args.args)}
        times: dict[str, list[float]] = {name: [] for name in versions}
        for round_ in range(args.rounds):
            for name, (source, options) in versions.items():
                seconds = run_eval(model, data, folder / f"{name}-{round_}", options, source)
                times[name].append(seconds)
                print(f"  round {round_ + 1}  {name:7s} {seconds:7.2f} s", flush=True)
        before, now = readouts(folder / "before-0"), readouts(folder / "now-0")
        print(f"\ndecoderlens eval {args.args} on {model}, {len(now)} readouts, {args.rounds} rounds")
        print(f"  same outputs, log-probs within 1e-4: {same(before, now)}")
        for name in versions:
            print(f"  {name:7s} best {min(times[name]):6.2f} s   median {statistics.median(times[name]):6.2f} s")
        print(f"  before / now = {min(times['before']) / min(times['now']):.2f}x best of {args.rounds}, "
              f"{statistics.median(times['before']) / statistics.median(times['now']):.2f}x median")


if __name__ == "__main__":
    main()
