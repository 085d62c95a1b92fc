"""select's choices methods on fixed log-probabilities (no model): the decision rules of SGLang's
token_length_normalized, greedy_token_selection and unconditional_likelihood_normalized."""

import pytest
import sable as sgl
from sable.lang.choices import choices_method_of


def entries(*logprobs):
    return [[lp, 100 + i, f"t{i}"] for i, lp in enumerate(logprobs)]


def test_token_length_normalized_takes_the_best_mean():
    index, extra = sgl.token_length_normalized.decide(
        [entries(-1.0, -1.0), entries(-0.5, -3.0)], [-1.0, -1.75])
    assert index == 0 and extra == {}


def test_greedy_token_selection_walks_positions_and_pads_with_the_mean():
    # Position 0 ties choices 0 and 1; position 1 decides for choice 1 although its mean is
    # lower. Choice 2 loses at position 0.
    tokens = [entries(-0.1, -2.0), entries(-0.1, -1.0, -9.0), entries(-0.2)]
    means = [-1.05, -10.1 / 3, -0.2]
    index, extra = sgl.greedy_token_selection.decide(tokens, means)
    assert index == 1
    matrix = extra["greedy_logprob_matrix"]
    assert len(matrix) == 3 and all(len(row) == 3 for row in matrix)
    assert matrix[0][2] == pytest.approx(-1.05)  # padded with its own mean
    # The mean alone would have chosen choice 2.
    assert sgl.token_length_normalized.decide(tokens, means)[0] == 2


def test_unconditional_likelihood_normalized_rewards_what_the_prompt_adds():
    conditioned = [entries(-1.0, -1.0), entries(-2.0, -0.5)]
    # Alone, choice 0's tokens are already likely; choice 1's second token is not.
    alone = [[[None, 100, "t0"], [-0.9, 101, "t1"]], [[None, 100, "t0"], [-4.0, 101, "t1"]]]
    index, extra = sgl.unconditional_likelihood_normalized.decide(
        conditioned, [-1.0, -1.25], alone)
    assert index == 1
    assert extra["normalized_unconditional_prompt_logprobs"] == pytest.approx([-0.55, 0.75])
    with pytest.raises(ValueError, match="unconditional"):
        sgl.unconditional_likelihood_normalized.decide(conditioned, [-1.0, -1.25])


def test_methods_by_object_or_name_and_a_bad_name():
    assert choices_method_of(None) is sgl.token_length_normalized
    assert choices_method_of("greedy_token_selection") is sgl.greedy_token_selection
    assert sgl.select("x", choices=["a", "b"],
                      choices_method=sgl.unconditional_likelihood_normalized).choices_method \
        is sgl.unconditional_likelihood_normalized
    with pytest.raises(ValueError, match="choices_method 'best' is not one of"):
        sgl.select("x", choices=["a", "b"], choices_method="best")
