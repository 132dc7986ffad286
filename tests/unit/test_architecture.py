"""The shape of the package: imports only go downward (no cycles, even through imports inside functions), and no
module but the architecture table names a model family in its code."""

from __future__ import annotations

import ast
from pathlib import Path

import decoderlens

PACKAGE = Path(decoderlens.__file__).parent
ROOT = "decoderlens"
FAMILY_WORDS = ("whisper", "bart", "marian", "nllb", "pegasus", "m2m", "mbart", "prophetnet", "speecht5", "vit",
                "t5")
FAMILY_HOMES = {"architectures", "testing"}
"""The table of family facts, and the tiny models that tests build (one per family)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every package module ``path`` imports, at the top or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(ROOT):
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith(ROOT)}
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        if name == ROOT:
            continue  # the package root is the composition root: it may load anything, lazily
        graph[name] = {m for m in imports_of(path) if m in modules and m not in (name, ROOT)}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_import_graph_has_no_cycles() -> None:
    graph = import_graph()
    assert {layer_of(module) for module in graph} == set(range(len(LAYERS))), "a declared layer is empty"
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_a_cycle_would_be_found() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


LAYERS: list[tuple[str, ...]] = [
    ("errors", "version", "fileio", "formats", "shipped", "hub", "limits", "scheduling", "layers",
     "evaluation.bootstrap", "evaluation.distributed", "logic.formulas"),
    ("settings", "architectures", "budget", "translators", "results"),
    ("inputs", "lenses", "step_scores", "greedy_loop", "tuned.settings", "evaluation.metrics", "evaluation.folder"),
    ("adapter", "loading", "decoding", "decoder_head", "model_parts", "testing"),
    ("batching", "forcing", "confidence", "positions"),
    ("readout", "scoring", "grid", "trace", "languages", "readings", "attribution", "attribution.*"),
    ("engine",),
    ("evaluation", "evaluation.*"),
    ("presentation", "presentation.*"),
    ("tuned", "tuned.*", "serve", "serve.*", "logic", "logic.*"),
    ("cli", "cli.*", "__main__"),
]
"""The package's layers, bottom to top: model access, the engine's parts and analyses, the front, evaluation,
presentation, applications, the command line. A module imports only from its own layer or those below."""


def layer_of(module: str) -> int:
    """The index of the declared layer that holds ``module`` (an exact name before a ``package.*`` pattern)."""
    name = module.removeprefix(f"{ROOT}.")
    for exact in (True, False):
        for index, names in enumerate(LAYERS):
            for pattern in names:
                if (exact and pattern == name) or (not exact and pattern.endswith(".*")
                                                   and name.startswith(pattern[:-1])):
                    return index
    raise AssertionError(f"{module} is in no declared layer: add it to LAYERS")


def test_every_import_goes_down_the_declared_layers() -> None:
    graph = import_graph()
    upward = [f"{module} (layer {layer_of(module)}) -> {target} (layer {layer_of(target)})"
              for module, targets in sorted(graph.items()) for target in sorted(targets)
              if layer_of(target) > layer_of(module)]
    assert not upward, "imports that run back up:\n" + "\n".join(upward)


def test_an_upward_import_would_be_found() -> None:
    assert layer_of("decoderlens.engine") > layer_of("decoderlens.readout") > layer_of("decoderlens.adapter")
    assert layer_of("decoderlens.evaluation.runner") > layer_of("decoderlens.engine")
    assert layer_of("decoderlens.logic.metrics") > layer_of("decoderlens.evaluation.metrics")


def test_lazy_imports_in_library_code_say_why() -> None:
    """A function-level import of the package in library code (outside the command line, which keeps ``--help``
    fast) exists only where a comment or docstring nearby says why."""
    unexplained = []
    for path in PACKAGE.rglob("*.py"):
        module = module_name(path)
        if module.startswith(f"{ROOT}.cli") or module == ROOT:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and inner.module and inner.module.startswith(ROOT):
                        nearby = " ".join(lines[max(0, inner.lineno - 3): inner.lineno + 1]).lower()
                        if "lazy" not in nearby and "--help" not in nearby:
                            unexplained.append(f"{module}:{inner.lineno} imports {inner.module}")
    assert not unexplained, "\n".join(unexplained)


def test_no_family_names_outside_the_architecture_table() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if module_name(path).split(".")[-1] in FAMILY_HOMES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Name):
                names.append(node.id)
            elif isinstance(node, ast.Attribute):
                names.append(node.attr)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.append(node.name)
            elif isinstance(node, ast.Compare):  # a comparison with a family's model_type string
                names += [c.value for c in node.comparators if isinstance(c, ast.Constant) and isinstance(c.value, str)]
            for name in names:
                words = name.lower().replace("-", "_").split("_")
                if any(word in FAMILY_WORDS for word in words):
                    offenders.append(f"{path.relative_to(PACKAGE)}:{getattr(node, 'lineno', '?')} {name}")
    assert not offenders, offenders
