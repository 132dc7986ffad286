"""Training tuned-lens translators for an encoder-decoder model, the model frozen.

``kl`` (default): self-distillation as in tuned-lens: teacher-forced on the model's own greedy top-layer output,
minimise KL(p_top || p_l) at every decoder position, summed over the layers below the top, all layers of a batch
in one stacked forward. ``reference``: cross-entropy on the data's references. ``lstsq``: each ``A_l, b_l`` in
closed form by least squares from ``h_l`` to ``h_L`` over all token positions (seconds, no gradient steps; also
an initialisation for ``kl``). SGD with Nesterov momentum and a linearly decaying learning rate, as tuned-lens.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from decoderlens.engine import DecoderLens
from decoderlens.errors import InputError
from decoderlens.evaluation.data import DataSource, EvalRow, load_rows
from decoderlens.evaluation.distributed import ProcessInfo, process_info
from decoderlens.scoring import decoder_inputs, target_labels
from decoderlens.settings import GenerationSettings, RuntimeSettings, check_choice, check_count
from decoderlens.tuned.translators import Translators, model_fingerprint

OBJECTIVES = ("kl", "reference", "lstsq")
FULL_RANK_UP_TO = 1024
"""Translators are full rank up to this width; wider encoders default to low rank."""
LOW_RANK = 64


@dataclass
class TuneSettings:
    """How translators are trained (every field is a ``decoderlens tune`` option of the same name)."""

    objective: str = "kl"
    """kl (self-distillation on the model's own output), reference (cross-entropy on references) or lstsq."""
    steps: int = 300
    batch_size: int = 16
    lr: float = 0.1
    """Peak learning rate of SGD with Nesterov momentum (decays linearly to 0)."""
    seed: int = 0
    rank: int | None = None
    """Rank of each ``A_l`` (default: full rank up to d_model 1024, else 64)."""
    init: str = "zero"
    """zero (the raw lens) or lstsq (start kl training from the least-squares fit)."""
    control: bool = False
    """Train on shuffled pairs (layer state of one example, top output of another): how much a translator can
    learn that the layer does not hold."""
    validation: int | None = None
    """Held-out examples (default: 10% of the data, at most 256)."""
    checkpoint_every: int = 50

    def validate(self) -> TuneSettings:
        check_choice("objective", self.objective, OBJECTIVES)
        check_choice("init", self.init, ("zero", "lstsq"))
        for name in ("steps", "batch_size", "checkpoint_every"):
            check_count(name, getattr(self, name))
        check_count("rank", self.rank, optional=True)
        check_count("validation", self.validation, optional=True)
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise InputError(f"lr (--lr) must be a positive number, got {self.lr!r}")
        return self


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
        if settings.objective == "reference" and not loaded.rows and any("reference" in p or "target" in p
                                                                          for p in loaded.problems):
            raise InputError("objective 'reference' needs references in the data: give --target-field, or use "
                             "--objective kl (the model's own output)")
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
        self.translators = Translators(lens.num_layers, width, rank, seed=settings.seed).to(lens.device)
        self.labels = self._targets(self.train_rows + self.val_rows)

    # --- targets ---------------------------------------------------------------------------------

    def _targets(self, rows: list[EvalRow]) -> dict[str, list[int]]:
        """Per row id, the label ids to teacher-force: the model's greedy top output (kl, lstsq) or the reference."""
        lens = self.lens
        if self.settings.objective == "reference":
            labels = target_labels(lens.tokenizer, lens.model, [r.reference for r in rows], self.generation.tgt_lang)
            return {r.id: [t for t in seq.tolist() if t != -100] for r, seq in zip(rows, labels, strict=True)}
        plan = lens.plan(self.generation)
        saved, lens.translators = lens.translators, None
        try:
            top = lens.read([r.input for r in rows], GenerationSettings(**{**asdict(self.generation),
                                                                           "layers": [lens.num_layers],
                                                                           "top_length_cap": None}), self.runtime)
        finally:
            lens.translators = saved
        eos = sorted(plan.eos_token_ids)[:1]
        return {r.id: plan.prompt[1:] + ex.readouts[0].token_ids + eos for r, ex in zip(rows, top, strict=True)}

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
            encoded = lens.encode(batch.items, self.generation.truncation)
        layers = list(range(top))
        stack = lens.adapter.stack(encoded, layers, self.generation.final_norm, lens.device,
                                   self.translators if translate else None)
        mask = batch.labels != -100
        decoder_in = decoder_inputs(lens.model, batch.labels)
        kwargs: dict[str, Any] = {} if stack.mask is None else {"attention_mask": stack.mask}
        logits = lens.model(encoder_outputs=encoded.as_encoder_outputs(stack.states),
                            decoder_input_ids=decoder_in.repeat(top, 1), **kwargs).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1).view(top, *batch.labels.shape, -1)
        if self.settings.objective == "reference":
            per_token = -logprobs.gather(-1, batch.labels.clamp(min=0)[None, ..., None].expand(top, -1, -1, 1))[..., 0]
        else:
            with torch.no_grad():
                own = {} if encoded.attention_mask is None else {"attention_mask": encoded.attention_mask}
                teacher = lens.model(encoder_outputs=encoded.as_encoder_outputs(encoded.final_output),
                                     decoder_input_ids=decoder_in, **own).logits
                if batch.sources != sorted(batch.sources):  # control: the target example's own top layer
                    order = torch.tensor(sorted(range(len(batch.sources)), key=batch.sources.__getitem__))
                    teacher = lens.model(encoder_outputs=encoded.as_encoder_outputs(
                        encoded.final_output.index_select(0, order.to(lens.device))),
                        decoder_input_ids=decoder_in, **({} if encoded.attention_mask is None else {
                            "attention_mask": encoded.attention_mask.index_select(0, order.to(lens.device))})).logits
                target = torch.log_softmax(teacher.float(), dim=-1)
            per_token = (target.exp() * (target - logprobs)).sum(-1)
        return (per_token * mask).sum((1, 2)) / mask.sum()

    # --- least squares -----------------------------------------------------------------------------

    @torch.no_grad()
    def fit_lstsq(self, shuffle: bool = False) -> None:
        """``A_l, b_l`` minimising ``|h_l + A_l h_l + b_l - h_L|^2`` over every (unpadded) position."""
        lens, top = self.lens, self.lens.num_layers
        xs: list[list[torch.Tensor]] = [[] for _ in range(top)]
        ys: list[torch.Tensor] = []
        for start in range(0, len(self.train_rows), self.settings.batch_size):
            rows = self.train_rows[start: start + self.settings.batch_size]
            encoded = lens.encode([r.input for r in rows], self.generation.truncation)
            mask = (encoded.attention_mask if encoded.attention_mask is not None else
                    torch.ones(encoded.final_output.shape[:2], device=lens.device)).bool()
            mask = mask[:, : encoded.final_output.shape[1]]
            ys.append(encoded.final_output[mask].float())
            for layer in range(top):
                xs[layer].append(lens.adapter.layer_state(encoded, layer, self.generation.final_norm)[mask].float())
        target = torch.cat(ys)
        if shuffle:
            order = torch.randperm(target.shape[0], generator=torch.Generator().manual_seed(self.settings.seed))
            target = target[order]
        for layer in range(top):
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
        for start in range(0, len(self.val_rows), self.settings.batch_size):
            rows = self.val_rows[start: start + self.settings.batch_size]
            totals += self.layer_losses(self.batch(rows), translate).cpu() * len(rows)
        return [float(v) for v in totals / len(self.val_rows)]

    def run(self, out_dir: Path, progress: bool = True) -> Translators:
        """Train (or resume) into ``out_dir``; returns the translators, also saved there with their card."""
        settings, lens = self.settings, self.lens
        started = time.monotonic()
        torch.manual_seed(settings.seed)
        raw = self.validation_kl(translate=False)
        objective = settings.objective
        if objective == "lstsq" or settings.init == "lstsq":
            self.fit_lstsq(shuffle=settings.control)
        steps_done = 0
        if objective != "lstsq":
            steps_done = self._train(out_dir, progress)
        tuned = self.validation_kl(translate=True)
        self.translators.info = {
            "model": lens.name, "model_hash": model_fingerprint(lens.model, lens.adapter.encoder),
            "objective": objective, "init": settings.init, "control": settings.control, "data": self.data.path,
            "train_examples": len(self.train_rows), "val_examples": len(self.val_rows),
            "steps": steps_done, "batch_size": settings.batch_size, "lr": settings.lr, "seed": settings.seed,
            "final_norm": self.generation.final_norm, "val_kl_raw": raw, "val_kl_tuned": tuned,
            "matrix_norms": [float(self.translators.matrix(layer).detach().norm()) for layer in range(lens.num_layers)],
            "seconds": time.monotonic() - started,
        }
        self.translators.info["fingerprint"] = _fingerprint(self.translators)
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
        if checkpoint.exists():
            state = torch.load(checkpoint, weights_only=False)
            if state.get("settings") != asdict(settings):
                raise InputError(f"{checkpoint} belongs to a run with other settings: use another --out folder or "
                                 "delete it to start over")
            self.translators.load_state_dict(state["translators"])
            optimizer.load_state_dict(state["optimizer"])
            step = int(state["step"])
        with _frozen(lens.model), tqdm(total=settings.steps, initial=step, desc="tune", unit="step",
                                       disable=not progress or not self.proc.is_main, dynamic_ncols=True) as bar:
            while step < settings.steps:
                for group in optimizer.param_groups:
                    group["lr"] = settings.lr * (1 - step / settings.steps)
                rng = random.Random(settings.seed * 1_000_003 + step)
                rows = rng.sample(self.train_rows, min(settings.batch_size, len(self.train_rows)))
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
                             "step": step, "settings": asdict(settings)}
                    torch.save(state, checkpoint.with_suffix(".tmp"))
                    checkpoint.with_suffix(".tmp").replace(checkpoint)
        return step


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


def _fingerprint(translators: Translators) -> str:
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(translators.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()[:12]
