"""Parsing layer selections such as ``all``, ``0,3,-1`` or ``2:6`` into sorted layer numbers."""

from __future__ import annotations

from collections.abc import Iterable

from decoderlens.errors import LayerSelectionError

LayerSpec = str | int | Iterable[int] | None


def _resolve(index: int, num_layers: int) -> int:
    resolved = index + num_layers + 1 if index < 0 else index
    if not 0 <= resolved <= num_layers:
        raise LayerSelectionError(
            f"layer {index} does not exist: this encoder has layers 0..{num_layers} "
            f"(0 = embeddings, {num_layers} = final output; negative numbers count from the end)"
        )
    return resolved


def select_layers(spec: LayerSpec, num_layers: int) -> list[int]:
    """Layers to read out, 0..L, deduplicated and sorted.

    ``None``/``"all"``: every layer (an empty selection is refused); ``"0,3,-1"``: a list (negative counts from
    the end, -1 = L);
    ``"2:6"``: a Python-style slice (2, 3, 4, 5); slices and numbers can be mixed with commas.
    """
    if isinstance(spec, bool):
        raise LayerSelectionError(
            f"layers (--layers) must be 'all', a list like '0,3,-1' or a slice like '2:6', got {spec!r}")
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return list(range(num_layers + 1))
    if isinstance(spec, str) and not spec.strip():
        raise LayerSelectionError("layer selection '' is empty: use 'all', a list like '0,3,-1' or a slice like '2:6'")
    if isinstance(spec, int):
        return [_resolve(spec, num_layers)]
    if not isinstance(spec, str):
        try:
            numbers = [int(i) for i in spec if not isinstance(i, bool)] if not isinstance(spec, bool) else []
        except (TypeError, ValueError):
            numbers = []
        if not numbers or len(numbers) != len(list(spec)):
            raise LayerSelectionError(f"layer selection {spec!r} selects no layer: give layer numbers 0..{num_layers}, "
                                      "'all' or a slice like '2:6'")
        return sorted({_resolve(i, num_layers) for i in numbers})
    chosen: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        try:
            if ":" in part:
                bounds = [int(b) if b.strip() else None for b in part.split(":")]
                chosen.update(range(num_layers + 1)[slice(*bounds)])
            else:
                chosen.add(_resolve(int(part), num_layers))
        except ValueError as err:
            if isinstance(err, LayerSelectionError):
                raise
            raise LayerSelectionError(
                f"cannot parse layer selection {spec!r}: use 'all', a list like '0,3,-1' or a slice like '2:6'"
            ) from err
    if not chosen:
        raise LayerSelectionError(f"layer selection {spec!r} selects no layer (layers are 0..{num_layers})")
    return sorted(chosen)
