"""Typed, serialisable results: generated readouts per layer and teacher-forced scores per layer."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Generic, Protocol, Self, TypeVar

from decoderlens.errors import InputError
from decoderlens.fileio import atomic_write_text, json_text

E = TypeVar("E")

DISPLAY_HOOKS: dict[tuple[str, str], Callable[[Any], Any]] = {}
"""(result class name, ``html`` or ``rich``) -> renderer; filled in by the presentation layer, which results
never import."""


def register_display(result_type: str, kind: str, render: Callable[[Any], Any]) -> None:
    """Make ``render`` draw results of class ``result_type`` in notebooks (``html``) or terminals (``rich``)."""
    DISPLAY_HOOKS[(result_type, kind)] = render


class _HasLayer(Protocol):
    layer: int


L = TypeVar("L", bound=_HasLayer)


def by_layer(items: list[L], layer: int) -> L:
    """The item of ``layer`` in a per-layer list."""
    for item in items:
        if item.layer == layer:
            return item
    raise KeyError(f"layer {layer} was not selected (layers: {[i.layer for i in items]})")


@dataclass
class LayerReadout:
    """What the decoder generates when it reads encoder layer ``layer``."""

    layer: int
    """0 = embedding output, L = final encoder output."""
    text: str
    """Decoded output, special tokens removed."""
    token_ids: list[int]
    """Generated token ids after the decoder prompt, up to (not including) the end-of-sequence token."""
    tokens: list[str] = field(default_factory=list)
    """The tokens of ``token_ids`` as strings."""
    logprobs: list[float] = field(default_factory=list)
    """Per token: its log-probability at this layer, teacher-forced on the readout (``token_scores``; else empty)."""
    entropies: list[float] = field(default_factory=list)
    """Per token: the entropy (nats) of the distribution it was chosen from (``token_scores``; else empty)."""


@dataclass
class ExampleReadouts:
    """All readouts of one input, one per selected layer, in layer order."""

    input: str
    readouts: list[LayerReadout]

    def layer(self, layer: int) -> LayerReadout:
        """The readout of ``layer``; raises ``KeyError`` if it was not selected."""
        return by_layer(self.readouts, layer)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExampleReadouts:
        """Rebuild from its part of ``to_dict`` output."""
        return cls(data["input"], [LayerReadout(**r) for r in data["readouts"]])


class Presentable:
    """What everything a user gets back does: displays itself as a compact table or figure in notebooks
    (``_repr_html_``) and terminals (rich), prints readably (``print(result)``), and gives a long-format
    ``pandas.DataFrame`` of its ``to_records()``."""

    def _repr_html_(self) -> str | None:
        """Notebook display, drawn by the presentation layer where it is loaded."""
        render = DISPLAY_HOOKS.get((type(self).__name__, "html"))
        return None if render is None else str(render(self))

    def __rich__(self) -> Any:
        """Terminal display through rich, drawn by the presentation layer where it is loaded."""
        render = DISPLAY_HOOKS.get((type(self).__name__, "rich"))
        return repr(self) if render is None else render(self)

    def __str__(self) -> str:
        """The terminal display as plain text (what ``print`` shows)."""
        from io import StringIO

        from rich.console import Console

        buffer = StringIO()
        Console(file=buffer, width=100, color_system=None, force_terminal=False).print(self)
        return buffer.getvalue().rstrip("\n")

    def to_records(self) -> list[dict[str, Any]]:
        """Long-format rows (one per example, layer and token or position, as the result has them)."""
        raise NotImplementedError

    def to_pandas(self) -> Any:
        """A long-format ``pandas.DataFrame`` of ``to_records()``."""
        import pandas as pd

        return pd.DataFrame.from_records(self.to_records())


class Result(Presentable):
    """What every result does: converts to a dict, JSON (``save`` writes what ``--format json`` prints), records
    for pandas and CSV, loads itself back, and displays itself in notebooks and terminals."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Rebuild from ``to_dict`` output."""
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load a result written by ``save``; a file of another kind is refused with a message."""
        what = f"{cls.__name__}.load({str(path)!r})"
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InputError(f"{what}: cannot read a JSON file ({err}); give a file written by .save()") from None
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise InputError(f"{what}: this file does not hold a {cls.__name__}; give a file written by "
                             f"{cls.__name__}.save()") from None

    def to_dict(self) -> dict[str, Any]:
        """A plain dict that ``json.dumps`` accepts."""
        return asdict(self)  # type: ignore[call-overload, no-any-return]

    def to_json(self) -> str:
        """The result as JSON text (what ``save`` writes and ``--format json`` prints)."""
        return json_text(self.to_dict())

    def save(self, path: str | Path) -> None:
        """Write the result as JSON (atomically)."""
        atomic_write_text(path, self.to_json() + "\n")


@dataclass
class _ResultSet(Result, Generic[E]):
    """A sequence of examples (each result names its example type in the metadata of its ``examples`` field)."""

    model: str
    """The model's name or path."""
    num_encoder_layers: int
    examples: list[E]
    settings: dict[str, Any] = field(default_factory=dict)
    """Generation settings and options used (layers, max_new_tokens, num_beams, final_norm, ...)."""

    def __iter__(self) -> Iterator[E]:
        return iter(self.examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> E:
        return self.examples[index]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Rebuild from ``to_dict`` output."""
        kinds = {item.name: item for item in fields(cls)}
        example_type = kinds.pop("examples").metadata["example_type"]
        values = {name: data[name] for name in kinds if name != "settings"}
        return cls(**values, examples=[example_type.from_dict(ex) for ex in data["examples"]],
                   settings=data.get("settings", {}))


@dataclass
class LensOutput(_ResultSet[ExampleReadouts]):
    """Readouts of every input at every selected layer; iterate to get one ``ExampleReadouts`` per input."""

    examples: list[ExampleReadouts] = field(metadata={"example_type": ExampleReadouts})

    @property
    def layers(self) -> list[int]:
        """The layers that were read out."""
        return [r.layer for r in self.examples[0].readouts] if self.examples else []

    def to_records(self) -> list[dict[str, Any]]:
        """One flat record per (example, layer)."""
        return [
            {"example": i, "input": ex.input, "layer": r.layer, "text": r.text, "token_ids": r.token_ids,
             **({"logprobs": r.logprobs, "entropies": r.entropies} if r.logprobs else {})}
            for i, ex in enumerate(self.examples)
            for r in ex.readouts
        ]


@dataclass
class TokenScore:
    """Teacher-forced statistics of one target token at one layer."""

    token_id: int
    token: str
    logprob: float
    rank: int
    """0 when the target token is the decoder's top prediction."""
    entropy: float
    top_k: list[tuple[str, float]]
    """The decoder's most likely tokens at this position, with log-probs."""


@dataclass
class LayerScore:
    """Scores of the whole target when the decoder reads encoder layer ``layer``."""

    layer: int
    tokens: list[TokenScore]

    @property
    def logprob(self) -> float:
        """Log-probability of the whole target sequence."""
        return sum(t.logprob for t in self.tokens)


@dataclass
class ExampleScores:
    """One input and target with its per-layer scores."""

    input: str
    target: str
    layers: list[LayerScore]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExampleScores:
        """Rebuild from its part of ``to_dict`` output."""
        layers = [LayerScore(ls["layer"], [TokenScore(**{**t, "top_k": [tuple(p) for p in t["top_k"]]})
                                           for t in ls["tokens"]]) for ls in data["layers"]]
        return cls(data["input"], data["target"], layers)

    def layer(self, layer: int) -> LayerScore:
        """The scores of ``layer``; raises ``KeyError`` if it was not selected."""
        return by_layer(self.layers, layer)


@dataclass
class ScoreOutput(_ResultSet[ExampleScores]):
    """Teacher-forced scores of targets at every selected layer."""

    examples: list[ExampleScores] = field(metadata={"example_type": ExampleScores})

    def to_records(self) -> list[dict[str, Any]]:
        """One flat record per (example, layer, target position)."""
        return [
            {"example": i, "input": ex.input, "target": ex.target, "layer": ls.layer, "position": p,
             "token": t.token, "token_id": t.token_id, "logprob": t.logprob, "rank": t.rank, "entropy": t.entropy}
            for i, ex in enumerate(self.examples)
            for ls in ex.layers
            for p, t in enumerate(ls.tokens)
        ]


@dataclass
class GridCell:
    """The target read through encoder layer ``encoder_layer`` and decoder layer ``decoder_layer``."""

    encoder_layer: int
    decoder_layer: int
    """1..D; D is the decoder's real output, lower ones its intermediate states through its final norm and head."""
    logprob: float
    """Teacher-forced log-probability of the whole target."""
    token_logprobs: list[float]
    ranks: list[int]
    """Rank of each target token (0: the top prediction)."""
    top_tokens: list[str]
    """The most likely token at each target position."""


@dataclass
class ExampleGrid:
    """One input's 2-D lens: a cell per (encoder layer, decoder layer)."""

    input: str
    target: str
    tokens: list[str]
    """The target's tokens (what each position of a cell scores)."""
    cells: list[GridCell]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExampleGrid:
        """Rebuild from its part of ``to_dict`` output."""
        return cls(data["input"], data["target"], list(data["tokens"]), [GridCell(**c) for c in data["cells"]])

    def cell(self, encoder_layer: int, decoder_layer: int) -> GridCell:
        """The cell of one encoder and one decoder layer."""
        for cell in self.cells:
            if (cell.encoder_layer, cell.decoder_layer) == (encoder_layer, decoder_layer):
                return cell
        raise KeyError(f"no cell ({encoder_layer}, {decoder_layer})")

    def matrix(self) -> list[list[float]]:
        """Target log-probabilities, rows = encoder layers, columns = decoder layers (both ascending)."""
        rows = sorted({c.encoder_layer for c in self.cells})
        columns = sorted({c.decoder_layer for c in self.cells})
        return [[self.cell(e, d).logprob for d in columns] for e in rows]


@dataclass
class GridOutput(_ResultSet[ExampleGrid]):
    """The 2-D lens (encoder layer x decoder layer) of every input."""

    examples: list[ExampleGrid] = field(metadata={"example_type": ExampleGrid})
    num_decoder_layers: int = field(kw_only=True)

    def to_records(self) -> list[dict[str, Any]]:
        """One flat record per (example, encoder layer, decoder layer)."""
        return [{"example": i, "input": ex.input, "target": ex.target, "encoder_layer": c.encoder_layer,
                 "decoder_layer": c.decoder_layer, "logprob": c.logprob}
                for i, ex in enumerate(self.examples) for c in ex.cells]


@dataclass
class TraceOutput(Result):
    """Causal tracing in the encoder: how much of the clean answer's probability comes back when the clean
    hidden state of one layer (or window of layers) at one position is restored in a corrupted run."""

    model: str
    input: str
    answer: str
    tokens: list[str]
    """The encoder positions (input tokens, or frames of speech)."""
    clean_prob: float
    """Probability of the answer given the clean input."""
    corrupt_prob: float
    """Probability of the answer given the corrupted input, nothing restored (mean over noise samples)."""
    restored: list[list[float]]
    """Per encoder layer 0..L: per position, the answer's probability with that state restored; with
    ``restore_all``, one value per layer (every position restored at once)."""
    corruption: str
    """What was corrupted: a span of positions or seconds with noise, or another input."""
    window: int = 1
    """Layers restored together, from the row's layer upwards."""
    samples: int = 1
    """Noise samples averaged."""
    settings: dict[str, Any] = field(default_factory=dict)

    def to_records(self) -> list[dict[str, Any]]:
        """One row per restored layer and position (``restore_all``: per layer, position ``all``)."""
        return [{"layer": layer, "position": position if len(row) > 1 or len(self.tokens) == 1 else "all",
                 "token": self.tokens[position] if len(row) > 1 else "", "restored": value}
                for layer, row in enumerate(self.restored) for position, value in enumerate(row)]


@dataclass
class LanguageGuess:
    """A language code and the probability a layer gives it among the model's languages."""

    language: str
    probability: float


@dataclass
class LayerLanguage:
    """The language the decoder names first when it reads encoder layer ``layer``."""

    layer: int
    language: str
    probability: float
    """Among the model's languages (they sum to 1)."""
    runners_up: list[LanguageGuess]


@dataclass
class ExampleLanguages:
    """One input's detected language at every selected layer."""

    input: str
    layers: list[LayerLanguage]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExampleLanguages:
        """Rebuild from its part of ``to_dict`` output."""
        return cls(data["input"], [LayerLanguage(ll["layer"], ll["language"], ll["probability"],
                                                 [LanguageGuess(**g) for g in ll["runners_up"]])
                                   for ll in data["layers"]])

    def layer(self, layer: int) -> LayerLanguage:
        """The language detected at ``layer``."""
        return by_layer(self.layers, layer)


@dataclass
class LanguageOutput(_ResultSet[ExampleLanguages]):
    """The language every selected layer detects for every input (``detect_language``)."""

    examples: list[ExampleLanguages] = field(metadata={"example_type": ExampleLanguages})

    def to_records(self) -> list[dict[str, Any]]:
        """One flat record per (example, layer)."""
        return [{"example": i, "input": ex.input, "layer": ll.layer, "language": ll.language,
                 "probability": ll.probability} for i, ex in enumerate(self.examples) for ll in ex.layers]
