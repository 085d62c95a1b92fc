"""How `select` picks among its choices: SGLang's three choices methods, with the same names and
the same decision rules, so `select(..., choices_method=sgl.greedy_token_selection)` runs as is.

Every method receives, per choice, the log-probabilities of the choice's tokens given the prompt
(entries [logprob, token_id, text], the prefix token already removed) and their mean; the
unconditional method also receives each choice's tokens scored without the prompt. A method
returns (index of the chosen choice, extra meta_info entries).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

Entries = Sequence[Sequence[Any]]  # [[logprob, token_id, text], ...] of one choice


class ChoicesMethod:
    name = ""
    requires_unconditional_logprobs = False

    def decide(self, token_logprobs: Sequence[Entries], mean_logprobs: Sequence[float],
               unconditional: Optional[Sequence[Entries]] = None) -> tuple[int, dict]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=lambda i: values[i])  # first of equals, as numpy's


class TokenLengthNormalized(ChoicesMethod):
    """The choice whose tokens have the highest mean log-probability (SGLang's default)."""
    name = "token_length_normalized"

    def decide(self, token_logprobs, mean_logprobs, unconditional=None):
        return _argmax(mean_logprobs), {}


class GreedyTokenSelection(ChoicesMethod):
    """Token position by token position, keep the choices whose token there is the most likely;
    a choice shorter than the longest is padded with its own mean log-probability."""
    name = "greedy_token_selection"

    def decide(self, token_logprobs, mean_logprobs, unconditional=None):
        width = max((len(e) for e in token_logprobs), default=0)
        matrix = []
        for entries in token_logprobs:
            row = [float(e[0]) for e in entries]
            fill = sum(row) / len(row) if row else 0.0
            matrix.append(row + [fill] * (width - len(row)))
        remaining = list(range(len(matrix)))
        for j in range(width):
            best = max(matrix[i][j] for i in remaining)
            remaining = [i for i in remaining if matrix[i][j] == best]
            if len(remaining) == 1:
                break
        return remaining[0], {"greedy_logprob_matrix": matrix}


class UnconditionalLikelihoodNormalized(ChoicesMethod):
    """The choice whose tokens gain the most, on average, from the prompt: the mean of
    log p(token | prompt) - log p(token | the choice's earlier tokens alone)."""
    name = "unconditional_likelihood_normalized"
    requires_unconditional_logprobs = True

    def decide(self, token_logprobs, mean_logprobs, unconditional=None):
        if unconditional is None:
            raise ValueError("unconditional_likelihood_normalized needs the choices' "
                             "unconditional log-probabilities")
        scores = []
        for conditioned, alone in zip(token_logprobs, unconditional):
            # The first token alone has no context: its unconditional log-probability counts 0.
            gains = [float(c[0]) - (float(u[0]) if u[0] is not None else 0.0)
                     for c, u in zip(conditioned, alone)]
            scores.append(sum(gains) / max(len(gains), 1))
        return _argmax(scores), {"unconditional_token_logprobs": [list(u) for u in unconditional],
                                 "normalized_unconditional_prompt_logprobs": scores}


token_length_normalized = TokenLengthNormalized()
greedy_token_selection = GreedyTokenSelection()
unconditional_likelihood_normalized = UnconditionalLikelihoodNormalized()

_BY_NAME = {m.name: m for m in (token_length_normalized, greedy_token_selection,
                                unconditional_likelihood_normalized)}


def choices_method_of(value: Any) -> ChoicesMethod:
    """A choices method from select(choices_method=...): one of the three objects (or its
    name); None is the default."""
    if value is None:
        return token_length_normalized
    if isinstance(value, ChoicesMethod):
        return value
    if isinstance(value, str) and value in _BY_NAME:
        return _BY_NAME[value]
    raise ValueError(f"choices_method {value!r} is not one of {sorted(_BY_NAME)}")
