"""Propositional formulas over ``a..e`` in Polish notation, evaluated bit-parallel over all 32 assignments.

A formula's *truth mask* is a 32-bit integer whose bit ``i`` is set when the formula is true under
assignment ``i`` (bit ``k`` of ``i`` is the value of the ``k``-th variable). Every check in the logic
task reduces to mask arithmetic, which keeps generation and scoring fast.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

VARIABLES: tuple[str, ...] = ("a", "b", "c", "d", "e")
UNARY: tuple[str, ...] = ("!",)
BINARY: tuple[str, ...] = ("&", "|", "xor", "<->")
VALUES: tuple[str, ...] = ("0", "1")
NUM_ASSIGNMENTS = 2 ** len(VARIABLES)
FULL_MASK = (1 << NUM_ASSIGNMENTS) - 1


class FormulaError(ValueError):
    """A formula string that does not parse."""


def variable_mask(index: int) -> int:
    """Truth mask of variable ``index`` (true in every assignment where its bit is set)."""
    return sum(1 << i for i in range(NUM_ASSIGNMENTS) if (i >> index) & 1)


VARIABLE_MASKS: dict[str, int] = {v: variable_mask(k) for k, v in enumerate(VARIABLES)}


def truth_mask(formula: str | list[str]) -> int:
    """Evaluate a Polish-notation formula over all assignments; raises ``FormulaError`` if malformed."""
    tokens = formula.split() if isinstance(formula, str) else list(formula)
    if not tokens:
        raise FormulaError("empty formula")
    stack: list[int] = []
    for token in reversed(tokens):
        if token in VARIABLE_MASKS:
            stack.append(VARIABLE_MASKS[token])
        elif token == "!":
            if not stack:
                raise FormulaError(f"operator {token!r} lacks an operand")
            stack.append(~stack.pop() & FULL_MASK)
        elif token in BINARY:
            if len(stack) < 2:
                raise FormulaError(f"operator {token!r} lacks an operand")
            left, right = stack.pop(), stack.pop()
            stack.append(_apply_binary(token, left, right))
        else:
            raise FormulaError(f"unknown symbol {token!r}")
    if len(stack) != 1:
        raise FormulaError("formula has leftover operands")
    return stack[0]


def subformula_masks(formula: str | list[str]) -> list[int]:
    """Truth mask of the subformula that starts at every position (Polish notation: one per symbol)."""
    tokens = formula.split() if isinstance(formula, str) else list(formula)
    truth_mask(tokens)  # raises FormulaError on malformed input
    stack: list[int] = []
    masks: list[int] = []
    for token in reversed(tokens):
        if token in VARIABLE_MASKS:
            mask = VARIABLE_MASKS[token]
        elif token == "!":
            mask = ~stack.pop() & FULL_MASK
        else:
            left, right = stack.pop(), stack.pop()
            mask = _apply_binary(token, left, right)
        stack.append(mask)
        masks.append(mask)
    return masks[::-1]


def _apply_binary(op: str, left: int, right: int) -> int:
    if op == "&":
        return left & right
    if op == "|":
        return left | right
    if op == "xor":
        return left ^ right
    return ~(left ^ right) & FULL_MASK  # "<->"


def formula_depth(formula: str) -> int:
    """Nesting depth of a Polish-notation formula (a lone variable has depth 0)."""
    depths: list[int] = []
    for token in reversed(formula.split()):
        if token in VARIABLE_MASKS:
            depths.append(0)
        elif token in UNARY:
            depths.append(depths.pop() + 1)
        else:
            depths.append(max(depths.pop(), depths.pop()) + 1)
    return depths[0]


@dataclass(frozen=True)
class Assignment:
    """A partial assignment: variable -> value, kept in variable order."""

    values: tuple[tuple[str, int], ...]

    @property
    def cube_mask(self) -> int:
        """Mask of the full assignments that complete this partial one."""
        mask = FULL_MASK
        for var, value in self.values:
            var_mask = VARIABLE_MASKS[var]
            mask &= var_mask if value else ~var_mask & FULL_MASK
        return mask

    def __str__(self) -> str:
        return " ".join(f"{var} {value}" for var, value in self.values)


def parse_assignment(text: str) -> Assignment:
    """Parse ``"a 0 c 1"``; raises ``FormulaError`` if malformed, repeated or out of order."""
    tokens = text.split()
    if len(tokens) % 2:
        raise FormulaError("an assignment alternates variables and values")
    pairs: list[tuple[str, int]] = []
    for var, value in zip(tokens[::2], tokens[1::2], strict=True):
        if var not in VARIABLE_MASKS or value not in VALUES:
            raise FormulaError(f"bad pair {var!r} {value!r}")
        if pairs and VARIABLES.index(var) <= VARIABLES.index(pairs[-1][0]):
            raise FormulaError("variables must appear once each, in order")
        pairs.append((var, int(value)))
    return Assignment(tuple(pairs))


def is_satisfying(formula_mask: int, assignment: Assignment) -> bool:
    """True when every completion of ``assignment`` satisfies the formula."""
    return assignment.cube_mask & ~formula_mask & FULL_MASK == 0


@lru_cache(maxsize=1)
def canonical_cubes() -> tuple[tuple[Assignment, int], ...]:
    """All 3^5 partial assignments with their masks, fewest variables first, then in variable order."""
    cubes = []
    for choice in itertools.product((None, 0, 1), repeat=len(VARIABLES)):
        values = tuple((v, c) for v, c in zip(VARIABLES, choice, strict=True) if c is not None)
        cubes.append(Assignment(values))
    cubes.sort(key=lambda a: (len(a.values), [(VARIABLES.index(v), c) for v, c in a.values]))
    return tuple((a, a.cube_mask) for a in cubes)


def minimal_assignment(formula_mask: int) -> Assignment | None:
    """The first satisfying partial assignment with fewest variables (``None`` if unsatisfiable)."""
    for assignment, mask in canonical_cubes():
        if mask & ~formula_mask & FULL_MASK == 0:
            return assignment
    return None


def majority_assignment(formula_mask: int) -> Assignment | None:
    """A full satisfying assignment built in variable order, each variable taking the value that keeps
    more satisfying completions (0 on ties); ``None`` if unsatisfiable.

    Every step keeps at least one satisfying completion, so the result always satisfies; unlike the
    minimal assignment, each choice is a comparison of counts, which degrades gracefully when a model
    only approximates the truth table.
    """
    if not formula_mask:
        return None
    cube, values = FULL_MASK, []
    for var in VARIABLES:
        ones = cube & VARIABLE_MASKS[var]
        zeros = cube & ~VARIABLE_MASKS[var]
        value = int((formula_mask & ones).bit_count() > (formula_mask & zeros).bit_count())
        cube = ones if value else zeros
        values.append((var, value))
    return Assignment(tuple(values))


@dataclass(frozen=True)
class Judgement:
    """How one output fares against one formula."""

    parses: bool
    correct: bool
    exact: bool


def judge(formula: str, output: str, target: str) -> Judgement:
    """Parse ``output`` as an assignment; correct when every completion satisfies ``formula``."""
    try:
        assignment = parse_assignment(output)
    except FormulaError:
        return Judgement(False, False, False)
    return Judgement(True, is_satisfying(truth_mask(formula), assignment), output.strip() == target.strip())


def check_formula(formula: str) -> str | None:
    """Why ``formula`` cannot be judged (``None`` when it parses)."""
    try:
        truth_mask(formula)
    except FormulaError as err:
        return f"not a formula ({err})"
    return None
