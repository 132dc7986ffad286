"""Training tuned-lens translators for an encoder-decoder model, the model frozen.

``kl`` (the default for text and image encoders): self-distillation as in tuned-lens: teacher-forced on the
model's own greedy top-layer output, minimise KL(p_top || p_l) at every decoder position, summed over the layers
below the top, all layers of a batch in one stacked forward. ``reference``: cross-entropy on the data's
references. ``lstsq`` (the default for speech encoders): each ``A_l, b_l`` in closed form by least squares from
``h_l`` to ``h_L`` over all positions, from one pass over the data (no gradient steps; also an initialisation for
``kl``). SGD with Nesterov momentum and a linearly decaying learning rate, as tuned-lens. Every example is
encoded once: its layer states are kept (``StateCache``) for the targets, the fit, the steps and the validation.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import random
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from decoderlens.adapter import EncodedBatch
from decoderlens.engine import DecoderLens
from decoderlens.errors import InputError
from decoderlens.evaluation.data import DataSource, EvalRow, load_rows
from decoderlens.evaluation.distributed import ProcessInfo, process_info
from decoderlens.forcing import decoder_inputs, output_labels, reference_labels, teacher_forced
from decoderlens.inputs import describe
from decoderlens.lenses import RAW, TunedLens
from decoderlens.readout import top_outputs
from decoderlens.settings import GenerationSettings, RuntimeSettings
from decoderlens.translators import Translators, model_fingerprint
from decoderlens.tuned.cache import StateCache
from decoderlens.tuned.checkpoints import resume, save_checkpoint
from decoderlens.tuned.least_squares import fit_translators
from decoderlens.tuned.settings import FULL_RANK_UP_TO, LOW_RANK, TuneSettings
from decoderlens.tuned.timing import PhaseClock


@dataclass
class Batch:
    """Rows of one step: inputs (with their keys in the state cache), teacher-forced targets (label ids, -100
    padded, with the keys of the examples they belong to) and, for the control, the example whose states each row
    reads."""

    items: list[Any]
    keys: list[str]
    labels: torch.Tensor
    sources: list[int]
    owners: list[str]


class Tuner:
    """Trains the translators of one lens on one data set."""

    def __init__(self, lens: DecoderLens, data: DataSource, settings: TuneSettings,
                 generation: GenerationSettings, runtime: RuntimeSettings) -> None:
        self.lens, self.settings, self.generation, self.runtime = lens, settings.validate(), generation, runtime
        self.proc: ProcessInfo = process_info()
        self.objective = settings.chosen_objective(lens.adapter.spec.modality)
        loaded = load_rows(data, references=self.objective == "reference")
        if not loaded.rows:
            raise InputError(f"no usable rows in {data.path}" + (f", e.g. {loaded.problems[0]}" if loaded.problems
                                                                 else ""))
        rows = list(loaded.rows)
        random.Random(settings.seed).shuffle(rows)
        held = settings.validation or max(1, min(256, len(rows) // 10))
        if len(rows) <= held:
            raise InputError(f"{len(rows)} usable rows are too few to hold out {held} for validation: give more data "
                             "or a smaller --validation")
        self.train_rows, self.val_rows = rows[held:], rows[:held]
        self._keys = {id(row): str(i) for i, row in enumerate(rows)}
        self.data = data
        self.problems = loaded.problems
        width = lens.adapter.encoder_width
        rank = settings.rank if settings.rank is not None else (None if width <= FULL_RANK_UP_TO else LOW_RANK)
        if rank is not None and rank > width:
            raise InputError(f"rank (--rank) {rank} is above the encoder's width {width}: give at most {width} (or "
                             "leave it out for full rank)")
        self.translators = Translators(lens.num_layers, width, rank, seed=settings.seed).to(lens.device)
        self.model_hash = model_fingerprint(lens.model, lens.adapter.encoder)
        self.lens_in_training = TunedLens(self.translators, name="tuned:training")
        self.cache = StateCache(lens.parts, generation.truncation, runtime.max_memory)
        self.clock = PhaseClock(self.cache.stats)
        # least squares needs targets only for its validation; the other objectives teacher-force every example
        needed = self.val_rows if self.objective == "lstsq" else self.train_rows + self.val_rows
        started = time.monotonic()
        self.labels = self.clock.timed("targets", lambda: self._targets(needed))
        self._targets_seconds = time.monotonic() - started

    def key(self, row: EvalRow) -> str:
        """The row's key in the state cache and the targets (its place in the data, ids may repeat)."""
        return self._keys[id(row)]

    def encoded(self, rows: list[EvalRow], keep: bool = True) -> EncodedBatch:
        """The rows' encoder states, each example encoded once (and kept, with ``keep``)."""
        return self.cache.encoded([self.key(r) for r in rows], [r.input for r in rows], keep)

    # --- targets ---------------------------------------------------------------------------------

    def _targets(self, rows: list[EvalRow]) -> dict[str, list[int]]:
        """Per row key, the label ids to teacher-force: the model's greedy top output (kl, lstsq) or the reference.
        The top outputs are decoded from the states the cache keeps, so their encoder pass is the only one."""
        lens = self.lens
        if self.objective == "reference":
            labels = reference_labels(lens.parts, [r.reference for r in rows], self.generation, self.runtime)
            return {self.key(r): [t for t in seq.tolist() if t != -100] for r, seq in zip(rows, labels, strict=True)}
        plan = lens.plan(self.generation, self.runtime)
        top = top_outputs(lens.parts, [r.input for r in rows], self.generation, self.runtime,
                          progress=self.proc.is_main, encoder=lambda indices: self.encoded([rows[i] for i in indices]))
        return {self.key(r): output_labels(plan, readout) for r, readout in zip(rows, top, strict=True)}

    def batch(self, rows: list[EvalRow], control_seed: int | None = None) -> Batch:
        labels = [self.labels[self.key(r)] for r in rows]
        sources = list(range(len(rows)))
        if control_seed is not None:  # each row reads another example's states against its own target
            random.Random(control_seed).shuffle(sources)
        width = max(len(ids) for ids in labels)
        tensor = torch.tensor([ids + [-100] * (width - len(ids)) for ids in labels], device=self.lens.device)
        return Batch([rows[s].input for s in sources], [self.key(rows[s]) for s in sources], tensor, sources,
                     [self.key(r) for r in rows])

    # --- the objective -----------------------------------------------------------------------------

    def layer_losses(self, batch: Batch, translate: bool) -> torch.Tensor:
        """Per layer below the top, the mean per-position KL(p_top || p_l) (or cross-entropy) over the batch."""
        lens, top = self.lens, self.lens.num_layers
        with torch.no_grad():
            encoded = self.cache.encoded(batch.keys, batch.items)
        stack = lens.adapter.stack(encoded, list(range(top)), self.generation.final_norm, lens.device,
                                   self.lens_in_training if translate else RAW)
        mask = batch.labels != -100
        decoder_in = decoder_inputs(lens.model, batch.labels)
        logits = teacher_forced(lens.model, encoded, stack.states, stack.mask, decoder_in.repeat(top, 1)).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1).view(top, *batch.labels.shape, -1)
        if self.objective == "reference":
            per_token = -logprobs.gather(-1, batch.labels.clamp(min=0)[None, ..., None].expand(top, -1, -1, 1))[..., 0]
        else:
            target = self.teacher(batch, encoded, decoder_in)
            per_token = (target.exp() * (target - logprobs)).sum(-1)
        return (per_token * mask).sum((1, 2)) / mask.sum()

    @torch.no_grad()
    def teacher(self, batch: Batch, encoded: EncodedBatch, decoder_in: torch.Tensor) -> torch.Tensor:
        """Each row's target distribution: its own example's top layer teacher-forced on its labels. The model is
        frozen, so it never changes: computed once per example and kept (within the memory budget)."""
        lengths = [len(self.labels[owner]) for owner in batch.owners]
        kept = [self.cache.recall(owner, "teacher") for owner in batch.owners]
        if all(k is not None for k in kept):
            target = torch.zeros(*batch.labels.shape, kept[0].shape[-1], device=self.lens.device)  # type: ignore[union-attr]
            for row, logprobs in enumerate(kept):
                target[row, : lengths[row]] = logprobs.to(self.lens.device)  # type: ignore[union-attr]
            return target
        states, own = encoded.final_output, encoded.attention_mask
        if batch.sources != sorted(batch.sources):  # control: the target example's own top layer
            order = torch.tensor(sorted(range(len(batch.sources)), key=batch.sources.__getitem__),
                                 device=self.lens.device)
            states, own = states.index_select(0, order), None if own is None else own.index_select(0, order)
        logits = teacher_forced(self.lens.model, encoded, states, own, decoder_in).logits
        target = torch.log_softmax(logits.float(), dim=-1)
        for row, owner in enumerate(batch.owners):
            if kept[row] is None:
                self.cache.remember(owner, "teacher", target[row, : lengths[row]])
        return target

    # --- least squares -----------------------------------------------------------------------------

    def fit_lstsq(self, shuffle: bool = False, progress: bool = False) -> None:
        """The translators in closed form from the training examples (``least_squares.fit_translators``);
        ``progress``: a bar of the examples."""
        def batches() -> Iterator[EncodedBatch]:
            with tqdm(total=len(self.train_rows), desc="least squares", unit="ex", disable=not progress,
                      dynamic_ncols=True) as bar:
                for start in range(0, len(self.train_rows), self.settings.step_batch):
                    rows = self.train_rows[start: start + self.settings.step_batch]
                    yield self.encoded(rows, keep=self.objective != "lstsq")  # kept only for steps to come
                    bar.update(len(rows))

        fit_translators(self.translators, self.lens.adapter, batches(), self.generation.final_norm, shuffle,
                        self.settings.seed)

    # --- training ----------------------------------------------------------------------------------

    @torch.no_grad()
    def validation_kl(self, translate: bool) -> list[float]:
        """Per layer below the top, the held-out mean per-position objective (KL for kl/lstsq)."""
        totals = torch.zeros(self.lens.num_layers)
        for start in range(0, len(self.val_rows), self.settings.step_batch):
            rows = self.val_rows[start: start + self.settings.step_batch]
            totals += self.layer_losses(self.batch(rows), translate).cpu() * len(rows)
        return [float(v) for v in totals / len(self.val_rows)]

    def identity(self) -> dict[str, Any]:
        """What a checkpoint must match to be resumed: the settings, the model, and the data's examples."""
        digest = hashlib.sha256()
        for row in self.train_rows + self.val_rows:
            digest.update(json.dumps([row.id, describe(row.input, row.id), row.reference]).encode())
        return {"settings": asdict(self.settings), "generation": asdict(self.generation),
                "model_hash": self.model_hash, "data": digest.hexdigest()[:16]}

    def _check_out(self, out_dir: Path) -> None:
        """Refuse an output folder that holds finished translators of another model."""
        config = out_dir / "config.json"
        if not config.is_file():
            return
        try:
            other = json.loads(config.read_text(encoding="utf-8")).get("model_hash")
        except (OSError, ValueError, AttributeError):
            other = None
        if other != self.model_hash:
            raise InputError(f"{out_dir} holds translators of another model (hash {other}; this one is "
                             f"{self.model_hash}): choose another --out folder")

    def run(self, out_dir: Path, progress: bool = True) -> Translators:
        """Train (or resume) into ``out_dir``; returns the translators, also saved there with their card."""
        settings, lens = self.settings, self.lens
        self._check_out(out_dir)
        started = time.monotonic()
        try:
            torch.manual_seed(settings.seed)
            raw = self.clock.timed("validation", lambda: self.validation_kl(translate=False))
            objective = self.objective
            if objective == "lstsq" or settings.init == "lstsq":
                self.clock.timed("lstsq", lambda: self.fit_lstsq(shuffle=settings.control, progress=progress))
            steps_done = 0
            if objective != "lstsq":
                steps_done = self.clock.timed("steps", lambda: self._train(out_dir, progress))
            tuned = self.clock.timed("validation", lambda: self.validation_kl(translate=True))
        finally:
            self.cache.close()
        self.translators.info = {
            "model": lens.name, "model_hash": self.model_hash,
            "objective": objective, "objective_setting": settings.objective, "init": settings.init,
            "control": settings.control, "data": self.data.path,
            "train_examples": len(self.train_rows), "val_examples": len(self.val_rows),
            "steps": steps_done, "step_batch": settings.step_batch, "lr": settings.lr, "seed": settings.seed,
            "final_norm": self.generation.final_norm, "val_kl_raw": raw, "val_kl_tuned": tuned,
            "matrix_norms": [float(self.translators.matrix(layer).detach().norm()) for layer in range(lens.num_layers)],
            "seconds": time.monotonic() - started + self._targets_seconds,
            "timing": self.clock.report(steps_done),
        }
        worse = [layer for layer, (before, after) in enumerate(zip(raw, tuned, strict=True)) if after > before]
        if sum(tuned) > sum(raw):  # the held-out objective ended worse than where it started
            self.translators.info["worse_than_raw"] = worse
        if sum(tuned) > sum(raw) and not settings.control:  # a control is meant to do no better
            warnings.warn(f"these translators read layers {worse} worse than the raw lens on held-out data (validation "
                          f"KL {sum(raw):.4g} raw, {sum(tuned):.4g} tuned in all): training went wrong (try a lower "
                          "--lr or more --steps); the folder records it as worse_than_raw", stacklevel=2)
        self.translators.info["fingerprint"] = self.translators.fingerprint()
        if self.proc.is_main:
            self.translators.save_pretrained(out_dir)
            (out_dir / "checkpoint.pt").unlink(missing_ok=True)
        self.proc.barrier()
        return self.translators

    def _train(self, out_dir: Path, progress: bool) -> int:
        settings, lens = self.settings, self.lens
        params = list(self.translators.parameters())
        optimizer = torch.optim.SGD(params, lr=settings.lr, momentum=0.9, nesterov=True)
        checkpoint = out_dir / "checkpoint.pt"
        step = 0
        identity = self.identity()
        if checkpoint.exists():
            step = resume(checkpoint, identity, self.translators, optimizer)
        with _frozen(lens.model), tqdm(total=settings.steps, initial=step, desc="tune", unit="step",
                                       disable=not progress or not self.proc.is_main, dynamic_ncols=True) as bar:
            while step < settings.steps:
                for group in optimizer.param_groups:
                    group["lr"] = settings.lr * (1 - step / settings.steps)
                rng = random.Random(settings.seed * 1_000_003 + step)
                rows = rng.sample(self.train_rows, min(settings.step_batch, len(self.train_rows)))
                mine = rows[self.proc.rank :: self.proc.world] or rows[:1]
                batch = self.batch(mine, control_seed=rng.getrandbits(32) if settings.control else None)
                loss = self.clock.timed("forward", lambda: self.layer_losses(batch, translate=True).sum())  # noqa: B023
                optimizer.zero_grad(set_to_none=True)
                self.clock.timed("backward", loss.backward)
                _all_reduce(params, self.proc)
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4f}")
                if not math.isfinite(loss.item()):
                    raise InputError(f"training diverged at step {step} (loss {loss.item()}): lower --lr")
                if self.proc.is_main and (step % settings.checkpoint_every == 0 or step == settings.steps):
                    out_dir.mkdir(parents=True, exist_ok=True)
                    state = {"translators": self.translators.state_dict(), "optimizer": optimizer.state_dict(),
                             "step": step, "identity": identity}
                    save_checkpoint(state, checkpoint)
        return step

def _all_reduce(params: list[torch.nn.Parameter], proc: ProcessInfo) -> None:
    """Average gradients over data-parallel processes (a no-op in one process)."""
    if proc.world <= 1:
        return
    import torch.distributed as dist

    for param in params:
        if param.grad is not None:
            dist.all_reduce(param.grad)
            param.grad /= proc.world


@contextlib.contextmanager
def _frozen(model: torch.nn.Module) -> Iterator[None]:
    """The model's weights take no gradient while the translators train."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for param, _ in flags:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param, flag in flags:
            param.requires_grad_(flag)
