"""Drawing a course's skill graph: a layered layout computed on the server, in pure Python.

The skill graph is a directed acyclic graph (the services refuse cycles): an edge goes from a
prerequisite to the skill it comes before. It is drawn in columns, left to right, in the way of
Sugiyama's layered drawings, simplified so that a page of a few hundred skills is laid out in
a few milliseconds:

1. **Layers** (:func:`longest_path_layers`): a skill without prerequisites is in layer 0; any
   other skill one layer right of its furthest prerequisite (the longest path to it). Every
   arrow then points right.
2. **Order within a layer** (:func:`order_layers`): each layer is sorted by the barycentre
   (mean position) of its neighbours in the layers already placed: a sweep from left to right
   by prerequisites, one back by the skills they unlock, and a last one by prerequisites again,
   which is what the drawing keeps. Each sweep is linear in the skills and edges (plus sorting
   each layer); no dummy nodes are added for edges that skip layers: a neighbour's position is
   its place in its own layer scaled to 0-1, so layers of different sizes compare.
3. **Coordinates** (:func:`layout_graph`): columns of fixed-size boxes, each column centred on
   the tallest; an arrow is a cubic curve from the right side of the prerequisite's box to the
   left side of the skill's.

Nothing here knows Django: it takes keys, labels and edges, and returns numbers and strings,
which ``templates/edu_dl/content/_skill_graph.html`` draws as SVG.

Stored rows written around the services (the admin, raw SQL) may hold a cycle. The layout does
not fail on one: when no skill is left whose prerequisites are all placed, the first remaining
skill (in the given order) is placed anyway, and the edges that then point backwards are
marked ``is_backward`` so that the drawing can show them differently.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)

# The drawing's units (SVG user units, about CSS pixels at 100% zoom).
NODE_WIDTH = 168
NODE_HEIGHT = 30
COLUMN_GAP = 72  # between a column's boxes and the next column's: room for the arrows
ROW_GAP = 10
MARGIN = 12
# Labels longer than this many columns of text (a CJK character takes two) are shortened with
# an ellipsis; the full name is in the node's <title> and in the table beside the drawing.
LABEL_MAX_COLUMNS = 24
SWEEPS = 3  # prerequisites, dependants, prerequisites


def longest_path_layers(keys: Sequence[Key], edges: Iterable[tuple[Key, Key]]) -> dict[Key, int]:
    """The layer of every key: 0 without prerequisites, else 1 + its prerequisites' largest.

    ``edges`` are ``(prerequisite, skill)`` pairs between ``keys`` (others are ignored). Kahn's
    topological sort, linear in keys and edges. When a cycle leaves keys that cannot be placed
    in order, the first of them in ``keys`` order is placed right of its placed prerequisites,
    and the sort goes on.
    """
    known = set(keys)
    successors: dict[Key, list[Key]] = {key: [] for key in keys}
    waiting: dict[Key, int] = dict.fromkeys(keys, 0)  # prerequisites not placed yet
    for before, after in edges:
        if before in known and after in known and before != after:
            successors[before].append(after)
            waiting[after] += 1
    layer: dict[Key, int] = {}
    ready = [key for key in keys if waiting[key] == 0]
    next_unplaced = 0  # keys before this index of ``keys`` are placed (used to break cycles)
    floor: dict[Key, int] = dict.fromkeys(keys, 0)  # 1 + the largest placed prerequisite's layer
    while len(layer) < len(keys):
        if not ready:  # a cycle: place the first key not placed yet
            while keys[next_unplaced] in layer:
                next_unplaced += 1
            ready.append(keys[next_unplaced])
        key = ready.pop()
        if key in layer:
            continue
        layer[key] = floor[key]
        for following in successors[key]:
            if following in layer:
                continue
            floor[following] = max(floor[following], layer[key] + 1)
            waiting[following] -= 1
            if waiting[following] == 0:
                ready.append(following)
    return layer


def _scaled_positions(order: list[list[Key]]) -> dict[Key, float]:
    """Every key's place in its layer, scaled to 0-1 (a layer's middle is 0.5)."""
    positions: dict[Key, float] = {}
    for keys in order:
        for index, key in enumerate(keys):
            positions[key] = (index + 0.5) / len(keys)
    return positions


def _sweep(
    order: list[list[Key]],
    neighbours: dict[Key, list[Key]],
    layers: Sequence[int],
) -> None:
    """Sort each of ``layers`` (in that sequence) by its keys' barycentres over ``neighbours``,
    using the positions as each layer is sorted. A key without neighbours keeps its place."""
    positions = _scaled_positions(order)
    for number in layers:
        keys = order[number]

        def barycentre(indexed: tuple[int, Key]) -> tuple[float, int]:
            index, key = indexed
            around = neighbours[key]
            if not around:
                return positions[key], index
            return sum(positions[other] for other in around) / len(around), index

        keys[:] = [key for _, key in sorted(enumerate(keys), key=barycentre)]
        for index, key in enumerate(keys):
            positions[key] = (index + 0.5) / len(keys)


def order_layers(
    keys: Sequence[Key],
    layer: dict[Key, int],
    edges: Iterable[tuple[Key, Key]],
    *,
    sweeps: int = SWEEPS,
) -> list[list[Key]]:
    """The keys of each layer in drawing order (top to bottom), to reduce crossing arrows.

    Starts from ``keys`` order, then sorts layers by the barycentre of their neighbours:
    odd sweeps go left to right by prerequisites, even ones right to left by the skills each
    unlocks; an odd number of sweeps ends on prerequisites. Ties keep the previous order, so
    the result depends only on the input.
    """
    count = 1 + max(layer.values(), default=-1)
    order: list[list[Key]] = [[] for _ in range(count)]
    for key in keys:
        order[layer[key]].append(key)
    prerequisites: dict[Key, list[Key]] = {key: [] for key in keys}
    dependants: dict[Key, list[Key]] = {key: [] for key in keys}
    for before, after in edges:
        if before in layer and after in layer and before != after:
            prerequisites[after].append(before)
            dependants[before].append(after)
    for number in range(sweeps):
        if number % 2 == 0:
            _sweep(order, prerequisites, range(1, count))
        else:
            _sweep(order, dependants, range(count - 2, -1, -1))
    return order


def short_label(text: str, *, max_columns: int = LABEL_MAX_COLUMNS) -> str:
    """``text`` cut to ``max_columns`` columns (wide characters such as Chinese take two), with
    an ellipsis when it was cut."""
    widths = [2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text]
    if sum(widths) <= max_columns:
        return text
    used = 0
    for index, width in enumerate(widths):
        if used + width > max_columns - 1:
            return text[:index].rstrip() + "…"
        used += width
    return text  # pragma: no cover - the loop always returns


@dataclass(frozen=True)
class NodeBox(Generic[Key]):
    """A skill's box: its top-left corner, its layer and place in it, its label as drawn."""

    key: Key
    label: str
    short_label: str
    layer: int
    position: int
    x: float
    y: float

    @property
    def centre_y(self) -> float:
        return self.y + NODE_HEIGHT / 2

    # The numbers as SVG attributes want them (a dot for decimals, whatever the language).
    @property
    def svg_x(self) -> str:
        return f"{self.x:.1f}"

    @property
    def svg_y(self) -> str:
        return f"{self.y:.1f}"

    @property
    def svg_label_x(self) -> str:
        return f"{self.x + 8:.1f}"

    @property
    def svg_label_y(self) -> str:
        return f"{self.centre_y:.1f}"


@dataclass(frozen=True)
class Arrow(Generic[Key]):
    """An edge as drawn: from ``prerequisite`` to ``skill``, its SVG path."""

    prerequisite: Key
    skill: Key
    path: str
    # Points right to left or within a column: only when stored rows hold a cycle.
    is_backward: bool


@dataclass(frozen=True)
class GraphLayout(Generic[Key]):
    nodes: list[NodeBox[Key]]
    arrows: list[Arrow[Key]]
    width: int
    height: int
    layer_count: int

    node_width: int = NODE_WIDTH
    node_height: int = NODE_HEIGHT

    @property
    def has_backward_arrows(self) -> bool:
        return any(arrow.is_backward for arrow in self.arrows)


def _arrow_path(start: NodeBox, end: NodeBox) -> str:
    """A cubic curve from the right middle of ``start`` to the left middle of ``end``; one
    that goes backwards (a cycle) loops around the boxes' right and left sides."""
    x1, y1 = start.x + NODE_WIDTH, start.centre_y
    x2, y2 = end.x, end.centre_y
    bend = max(COLUMN_GAP / 2, (x2 - x1) / 2) if x2 > x1 else COLUMN_GAP
    return (
        f"M{x1:.1f} {y1:.1f} C{x1 + bend:.1f} {y1:.1f} {x2 - bend:.1f} {y2:.1f} "
        f"{x2 - 2:.1f} {y2:.1f}"
    )


def layout_graph(
    nodes: Sequence[tuple[Key, str]],
    edges: Iterable[tuple[Key, Key]],
    *,
    sweeps: int = SWEEPS,
) -> GraphLayout[Key]:
    """Boxes and arrows of the graph of ``nodes`` (``(key, label)``, in the order that breaks
    ties, such as by name) and ``edges`` (``(prerequisite, skill)`` keys; edges naming keys
    not in ``nodes``, and self-loops, are left out)."""
    keys = [key for key, _ in nodes]
    labels = dict(nodes)
    edge_list = [
        (before, after)
        for before, after in dict.fromkeys(edges)  # each edge once, in order
        if before in labels and after in labels and before != after
    ]
    layer = longest_path_layers(keys, edge_list)
    order = order_layers(keys, layer, edge_list, sweeps=sweeps)
    tallest = max((len(column) for column in order), default=0)
    row_step = NODE_HEIGHT + ROW_GAP
    boxes: dict[Key, NodeBox[Key]] = {}
    for number, column in enumerate(order):
        offset = (tallest - len(column)) * row_step / 2
        for position, key in enumerate(column):
            boxes[key] = NodeBox(
                key=key,
                label=labels[key],
                short_label=short_label(labels[key]),
                layer=number,
                position=position,
                x=MARGIN + number * (NODE_WIDTH + COLUMN_GAP),
                y=MARGIN + offset + position * row_step,
            )
    arrows = [
        Arrow(
            prerequisite=before,
            skill=after,
            path=_arrow_path(boxes[before], boxes[after]),
            is_backward=layer[after] <= layer[before],
        )
        for before, after in edge_list
    ]
    width = 2 * MARGIN + len(order) * NODE_WIDTH + max(0, len(order) - 1) * COLUMN_GAP
    height = 2 * MARGIN + tallest * NODE_HEIGHT + max(0, tallest - 1) * ROW_GAP
    return GraphLayout(
        nodes=[boxes[key] for column in order for key in column],
        arrows=arrows,
        width=int(width),
        height=int(height),
        layer_count=len(order),
    )


def crossings(order: Sequence[Sequence[Key]], edges: Iterable[tuple[Key, Key]]) -> int:
    """How many pairs of arrows between adjacent layers cross: a measure of the ordering.

    Quadratic in the edges between each pair of layers; for tests and benchmarks, not pages.
    """
    where = {
        key: (number, index) for number, keys in enumerate(order) for index, key in enumerate(keys)
    }
    by_gap: dict[int, list[tuple[int, int]]] = {}
    for before, after in edges:
        (layer_a, index_a), (layer_b, index_b) = where[before], where[after]
        if layer_b == layer_a + 1:
            by_gap.setdefault(layer_a, []).append((index_a, index_b))
    total = 0
    for pairs in by_gap.values():
        for first in range(len(pairs)):
            for second in range(first + 1, len(pairs)):
                (a1, b1), (a2, b2) = pairs[first], pairs[second]
                if (a1 - a2) * (b1 - b2) < 0:
                    total += 1
    return total
