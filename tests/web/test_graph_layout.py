"""The skill graph's layered layout: layers by longest path, order by barycentres, coordinates."""

from __future__ import annotations

import random

from edu_dl.web.graph_layout import (
    COLUMN_GAP,
    MARGIN,
    NODE_HEIGHT,
    NODE_WIDTH,
    ROW_GAP,
    crossings,
    layout_graph,
    longest_path_layers,
    order_layers,
    short_label,
)

# --- Layers ------------------------------------------------------------------------------------


def test_a_skill_sits_one_layer_right_of_its_furthest_prerequisite():
    # Given a chain a -> b -> c and a shortcut a -> c, and a lone skill d
    keys = ["a", "b", "c", "d"]
    edges = [("a", "b"), ("b", "c"), ("a", "c")]
    # When the layers are computed
    layers = longest_path_layers(keys, edges)
    # Then c is in layer 2 (after b), not 1 (after a); skills without prerequisites are in 0
    assert layers == {"a": 0, "b": 1, "c": 2, "d": 0}


def test_layers_of_no_skills_are_empty():
    assert longest_path_layers([], []) == {}


def test_edges_to_unknown_skills_and_self_loops_are_ignored():
    assert longest_path_layers(["a", "b"], [("a", "a"), ("x", "b"), ("a", "b")]) == {
        "a": 0,
        "b": 1,
    }


def test_a_stored_cycle_is_laid_out_rather_than_failing():
    # Given rows written around the services that make a cycle a -> b -> a, and c after b
    layers = longest_path_layers(["a", "b", "c"], [("a", "b"), ("b", "a"), ("b", "c")])
    # Then every skill gets a layer: the first in order breaks the cycle
    assert layers == {"a": 0, "b": 1, "c": 2}


# --- Order within layers -----------------------------------------------------------------------


def test_barycentre_ordering_removes_a_crossing():
    # Given two chains whose second layer starts in the wrong order: a -> y, b -> x
    keys = ["a", "b", "x", "y"]
    edges = [("a", "y"), ("b", "x")]
    layers = longest_path_layers(keys, edges)
    before = [["a", "b"], ["x", "y"]]
    assert crossings(before, edges) == 1
    # When the layers are ordered
    order = order_layers(keys, layers, edges)
    # Then y follows a's place and x follows b's: no crossing
    assert order == [["a", "b"], ["y", "x"]]
    assert crossings(order, edges) == 0


def test_ordering_keeps_the_given_order_for_ties_and_unlinked_skills():
    keys = ["a", "b", "c"]
    layers = longest_path_layers(keys, [])
    assert order_layers(keys, layers, []) == [["a", "b", "c"]]


def test_ordering_reduces_crossings_of_a_shuffled_layered_graph():
    # Given five chains of four skills, whose layers were shuffled
    rng = random.Random(7)
    chains = [[f"{chain}-{step}" for step in range(4)] for chain in range(5)]
    edges = [(chain[step], chain[step + 1]) for chain in chains for step in range(3)]
    keys = [key for step in range(4) for key in rng.sample([chain[step] for chain in chains], 5)]
    layers = longest_path_layers(keys, edges)
    shuffled = [[key for key in keys if layers[key] == step] for step in range(4)]
    assert crossings(shuffled, edges) > 0
    # When ordered by barycentres
    order = order_layers(keys, layers, edges)
    # Then no arrow crosses another
    assert crossings(order, edges) == 0


# --- Coordinates -------------------------------------------------------------------------------


def test_layout_places_columns_left_to_right_and_centres_them():
    # Given Counting before Adding and Subtracting
    nodes = [(1, "Adding"), (2, "Counting"), (3, "Subtracting")]
    edges = [(2, 1), (2, 3)]
    # When laid out
    layout = layout_graph(nodes, edges)
    # Then Counting is alone in column 0, centred on the two boxes of column 1
    boxes = {box.key: box for box in layout.nodes}
    assert (boxes[2].layer, boxes[1].layer, boxes[3].layer) == (0, 1, 1)
    assert boxes[2].x == MARGIN
    assert boxes[1].x == MARGIN + NODE_WIDTH + COLUMN_GAP
    assert (boxes[1].y, boxes[3].y) == (MARGIN, MARGIN + NODE_HEIGHT + ROW_GAP)
    assert boxes[2].y == MARGIN + (NODE_HEIGHT + ROW_GAP) / 2
    assert layout.width == 2 * MARGIN + 2 * NODE_WIDTH + COLUMN_GAP
    assert layout.height == 2 * MARGIN + 2 * NODE_HEIGHT + ROW_GAP
    assert layout.layer_count == 2
    # And each arrow runs from the right side of Counting to the left side of its skill
    assert [(arrow.prerequisite, arrow.skill) for arrow in layout.arrows] == [(2, 1), (2, 3)]
    assert layout.arrows[0].path == "M180.0 47.0 C216.0 47.0 216.0 27.0 250.0 27.0"
    assert not layout.has_backward_arrows
    assert boxes[1].svg_x == "252.0"
    assert boxes[1].svg_label_y == "27.0"


def test_layout_of_an_empty_graph_is_an_empty_drawing():
    layout = layout_graph([], [])
    assert (layout.nodes, layout.arrows, layout.layer_count) == ([], [], 0)
    assert (layout.width, layout.height) == (2 * MARGIN, 2 * MARGIN)


def test_a_backward_arrow_is_marked():
    layout = layout_graph([(1, "a"), (2, "b")], [(1, 2), (2, 1)])
    assert [(arrow.skill, arrow.is_backward) for arrow in layout.arrows] == [(2, False), (1, True)]
    assert layout.has_backward_arrows


def test_repeated_edges_are_drawn_once():
    layout = layout_graph([(1, "a"), (2, "b")], [(1, 2), (1, 2)])
    assert len(layout.arrows) == 1


def test_long_labels_are_shortened_by_their_width():
    assert short_label("Adding") == "Adding"
    assert short_label("a" * 24) == "a" * 24
    assert short_label("a" * 30) == "a" * 23 + "…"
    # A Chinese character takes two columns
    assert short_label("加" * 12) == "加" * 12
    assert short_label("加" * 13) == "加" * 11 + "…"


def test_a_few_hundred_skills_are_laid_out_with_every_arrow_pointing_right():
    # Given 400 skills in 20 layers, each with up to three prerequisites in earlier layers
    rng = random.Random(11)
    keys = list(range(400))
    edges = []
    for key in keys[20:]:
        for prerequisite in rng.sample(range(key - key % 20), min(3, key - key % 20)):
            edges.append((prerequisite, key))
    # When laid out
    layout = layout_graph([(key, f"Skill {key}") for key in keys], edges)
    # Then every skill and edge is drawn once and every arrow points right
    assert sorted(box.key for box in layout.nodes) == keys
    assert len(layout.arrows) == len(set(edges))
    assert not layout.has_backward_arrows
    layer = {box.key: box.layer for box in layout.nodes}
    assert all(layer[after] > layer[before] for before, after in edges)
