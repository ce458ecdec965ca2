from __future__ import annotations

import math

import numpy as np

from edu_dl.ml.metrics import accuracy, binary_log_loss, roc_auc


def test_auc_of_a_perfect_ranking_is_one_and_of_a_reversed_one_zero():
    labels = np.array([0, 0, 1, 1])

    assert roc_auc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0


def test_auc_counts_ties_as_half():
    assert roc_auc(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.2, 0.7])) == 0.875


def test_auc_is_undefined_with_one_class():
    assert math.isnan(roc_auc(np.array([1, 1]), np.array([0.3, 0.6])))


def test_accuracy_and_log_loss():
    labels = np.array([1, 0, 1, 0])
    probabilities = np.array([0.9, 0.2, 0.4, 0.6])

    assert accuracy(labels, probabilities) == 0.5
    expected = -np.mean(np.log([0.9, 0.8, 0.4, 0.4]))
    assert abs(binary_log_loss(labels, probabilities) - expected) < 1e-12
