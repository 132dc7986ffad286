"""Training tuned-lens translators for an encoder-decoder model, the model frozen.

``kl`` (default): self-distillation as in tuned-lens: teacher-forced on the model's own greedy top-layer output,
minimise KL(p_top || p_l) at every decoder position, summed over the layers below the top, all layers of a batch
in one stacked forward. ``reference``: cross-entropy on the data's references. ``lstsq``: each ``A_l, b_l`` in
closed form by least squares from ``h_l`` to ``h_L`` over all token positions (seconds, no gradient steps; also
an initialisation for ``kl``). SGD with Nesterov momentum and a linearly decaying learning rate, as tuned-lens.
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

from decoderlens.batching import encode
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
from decoderlens.tuned.settings import FULL_RANK_UP_TO, LOW_RANK, TuneSettings


@dataclass
class Batch:
    """Rows of one step: inputs, teacher-forced targets (label ids, -100 padded) and, for the control, the
    example whose states each row reads."""

    items: list[Any]
    labels: torch.Tensor
    sources: list[int]


class Tuner:
    """Trains the translators of one lens on one data set."""

    def __init__(self, lens: DecoderLens, data: DataSource, settings: TuneSettings,
                 generation: GenerationSettings, runtime: RuntimeSettings) -> None:
        self.lens, self.settings, self.generation, self.runtime = lens, settings.validate(), generation, runtime
        self.proc: ProcessInfo = process_info()
        loaded = load_rows(data, references=settings.objective == "reference")
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
        self.labels = self._targets(self.train_rows + self.val_rows)

    # --- targets ---------------------------------------------------------------------------------

    def _targets(self, rows: list[EvalRow]) -> dict[str, list[int]]:
        """Per row id, the label ids to teacher-force: the model's greedy top output (kl, lstsq) or the reference."""
        lens = self.lens
        if self.settings.objective == "reference":
            labels = reference_labels(lens.parts, [r.reference for r in rows], self.generation, self.runtime)
            return {r.id: [t for t in seq.tolist() if t != -100] for r, seq in zip(rows, labels, strict=True)}
        plan = lens.plan(self.generation, self.runtime)
        top = top_outputs(lens.parts, [r.input for r in rows], self.generation, self.runtime,
                          progress=self.proc.is_main)
        return {r.id: output_labels(plan, readout) for r, readout in zip(rows, top, strict=True)}

    def batch(self, rows: list[EvalRow], control_seed: int | None = None) -> Batch:
        labels = [self.labels[r.id] for r in rows]
        sources = list(range(len(rows)))
        if control_seed is not None:  # each row reads another example's states against its own target
            random.Random(control_seed).shuffle(sources)
        width = max(len(ids) for ids in labels)
        tensor = torch.tensor([ids + [-100] * (width - len(ids)) for ids in labels], device=self.lens.device)
        return Batch([rows[s].input for s in sources], tensor, sources)

    # --- the objective -----------------------------------------------------------------------------

    def layer_losses(self, batch: Batch, translate: bool) -> torch.Tensor:
        """Per layer below the top, the mean per-position KL(p_top || p_l) (or cross-entropy) over the batch."""
        lens, top = self.lens, self.lens.num_layers
        with torch.no_grad():
            encoded = encode(lens.parts, batch.items, self.generation.truncation)
        stack = lens.adapter.stack(encoded, list(range(top)), self.generation.final_norm, lens.device,
                                   self.lens_in_training if translate else RAW)
        mask = batch.labels != -100
        decoder_in = decoder_inputs(lens.model, batch.labels)
        logits = teacher_forced(lens.model, encoded, stack.states, stack.mask, decoder_in.repeat(top, 1)).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1).view(top, *batch.labels.shape, -1)
        if self.settings.objective == "reference":
            per_token = -logprobs.gather(-1, batch.labels.clamp(min=0)[None, ..., None].expand(top, -1, -1, 1))[..., 0]
        else:
            with torch.no_grad():
                states, own = encoded.final_output, encoded.attention_mask
                if batch.sources != sorted(batch.sources):  # control: the target example's own top layer
                    order = torch.tensor(sorted(range(len(batch.sources)), key=batch.sources.__getitem__),
                                         device=lens.device)
                    states, own = states.index_select(0, order), None if own is None else own.index_select(0, order)
                teacher = teacher_forced(lens.model, encoded, states, own, decoder_in).logits
                target = torch.log_softmax(teacher.float(), dim=-1)
            per_token = (target.exp() * (target - logprobs)).sum(-1)
        return (per_token * mask).sum((1, 2)) / mask.sum()

    # --- least squares -----------------------------------------------------------------------------

    @torch.no_grad()
    def fit_lstsq(self, shuffle: bool = False, progress: bool = False) -> None:
        """``A_l, b_l`` minimising ``|h_l + A_l h_l + b_l - h_L|^2`` over every (unpadded) position (``progress``:
        bars of the examples encoded and the layers solved)."""
        lens, top = self.lens, self.lens.num_layers
        xs: list[list[torch.Tensor]] = [[] for _ in range(top)]
        ys: list[torch.Tensor] = []
        with tqdm(total=len(self.train_rows), desc="least squares: encoding", unit="ex", disable=not progress,
                  dynamic_ncols=True) as bar:
            for start in range(0, len(self.train_rows), self.settings.step_batch):
                rows = self.train_rows[start: start + self.settings.step_batch]
                encoded = encode(lens.parts, [r.input for r in rows], self.generation.truncation)
                mask = (encoded.attention_mask if encoded.attention_mask is not None else
                        torch.ones(encoded.final_output.shape[:2], device=lens.device)).bool()
                mask = mask[:, : encoded.final_output.shape[1]]
                ys.append(encoded.final_output[mask].float())
                for layer in range(top):
                    state = lens.adapter.layer_state(encoded, layer, self.generation.final_norm)
                    xs[layer].append(state[mask].float())
                bar.update(len(rows))
        target = torch.cat(ys)
        if shuffle:
            order = torch.randperm(target.shape[0], generator=torch.Generator().manual_seed(self.settings.seed))
            target = target[order]
        for layer in tqdm(range(top), desc="least squares: solving", unit="layer", disable=not progress,
                          dynamic_ncols=True):
            x = torch.cat(xs[layer])
            matrix, bias = affine_least_squares(x, target)
            self.translators.bias.data[layer] = bias.to(self.translators.bias.dtype)
            if self.translators.rank is None:
                self.translators.weight.data[layer] = matrix.to(self.translators.weight.dtype)
            else:
                u, s, vh = torch.linalg.svd(matrix)
                r = self.translators.rank
                self.translators.up.data[layer] = (u[:, :r] * s[:r].sqrt()).to(self.translators.up.dtype)
                self.translators.down.data[layer] = (vh[:r].T * s[:r].sqrt()).to(self.translators.down.dtype)

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
        torch.manual_seed(settings.seed)
        raw = self.validation_kl(translate=False)
        objective = settings.objective
        if objective == "lstsq" or settings.init == "lstsq":
            self.fit_lstsq(shuffle=settings.control, progress=progress)
        steps_done = 0
        if objective != "lstsq":
            steps_done = self._train(out_dir, progress)
        tuned = self.validation_kl(translate=True)
        self.translators.info = {
            "model": lens.name, "model_hash": self.model_hash,
            "objective": objective, "init": settings.init, "control": settings.control, "data": self.data.path,
            "train_examples": len(self.train_rows), "val_examples": len(self.val_rows),
            "steps": steps_done, "step_batch": settings.step_batch, "lr": settings.lr, "seed": settings.seed,
            "final_norm": self.generation.final_norm, "val_kl_raw": raw, "val_kl_tuned": tuned,
            "matrix_norms": [float(self.translators.matrix(layer).detach().norm()) for layer in range(lens.num_layers)],
            "seconds": time.monotonic() - started,
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
            step = self._resume(checkpoint, identity, optimizer)
        with _frozen(lens.model), tqdm(total=settings.steps, initial=step, desc="tune", unit="step",
                                       disable=not progress or not self.proc.is_main, dynamic_ncols=True) as bar:
            while step < settings.steps:
                for group in optimizer.param_groups:
                    group["lr"] = settings.lr * (1 - step / settings.steps)
                rng = random.Random(settings.seed * 1_000_003 + step)
                rows = rng.sample(self.train_rows, min(settings.step_batch, len(self.train_rows)))
                mine = rows[self.proc.rank :: self.proc.world] or rows[:1]
                batch = self.batch(mine, control_seed=rng.getrandbits(32) if settings.control else None)
                loss = self.layer_losses(batch, translate=True).sum()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
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
                    _save_checkpoint(state, checkpoint)
        return step

    def _resume(self, checkpoint: Path, identity: dict[str, Any], optimizer: torch.optim.Optimizer) -> int:
        """Load a checkpoint of this very run (settings, model and data); returns its step."""
        try:
            state = torch.load(checkpoint, weights_only=False)
            saved = state.get("identity") if isinstance(state, dict) else None
        except Exception as err:  # torch raises many kinds for truncated or foreign files
            raise InputError(f"{checkpoint} is damaged or not a tune checkpoint ({type(err).__name__}): delete it to "
                             "start over") from None
        if not isinstance(saved, dict):
            raise InputError(f"{checkpoint} is not a checkpoint of decoderlens tune: delete it to start over")
        changed = [name for name in identity if saved.get(name) != identity[name]]
        if changed:
            raise InputError(f"{checkpoint} belongs to a run with another {' and '.join(changed)}: use another --out "
                             "folder, or delete it to start over")
        try:
            self.translators.load_state_dict(state["translators"])
            optimizer.load_state_dict(state["optimizer"])
            return int(state["step"])
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise InputError(f"{checkpoint} is damaged ({type(err).__name__}): delete it to start over") from None


def _save_checkpoint(state: dict[str, Any], checkpoint: Path) -> None:
    """Write a checkpoint whole or not at all: a full disk keeps the last good one and says so in one line."""
    scratch = checkpoint.with_suffix(".tmp")
    try:
        torch.save(state, scratch)
        scratch.replace(checkpoint)
    except (OSError, RuntimeError) as err:
        scratch.unlink(missing_ok=True)
        kept = " (the last checkpoint is kept)" if checkpoint.exists() else ""
        raise InputError(f"cannot write {checkpoint} ({err}){kept}: free some disk space and run the same command "
                         "again to resume") from None


def affine_least_squares(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``A, b`` minimising ``|x + x A^T + b - y|^2`` over the rows (the residual form of a translator)."""
    design = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)], dim=1)
    solution = torch.linalg.lstsq(design.cpu().double(), (y - x).cpu().double()).solution
    return solution[:-1].T.to(x.dtype), solution[-1].to(x.dtype)


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
