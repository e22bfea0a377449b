"""llama.cpp sampler chains from `SamplingParams`: logit bias, penalties, grammar, then sampling.

All native (no Python callback per token), in llama-cpp-python's order, neutral samplers left out.
``llama_cpp`` is imported when a chain is built, never at module import.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from inference.errors import InvalidRequest
from inference.generation import SamplingParams

logger = logging.getLogger(__name__)

# llama-cpp-python's default window for repeat/frequency/presence penalties (last_n_tokens_size).
DEFAULT_PENALTY_LAST_N = 64


class SamplerChain:
    """An owned ``llama_sampler`` chain. ``sample`` picks (and accepts) the next token."""

    def __init__(self, handle: Any) -> None:
        import llama_cpp

        self._handle = handle
        self._sample = llama_cpp.llama_sampler_sample
        self._free = llama_cpp.llama_sampler_free

    def sample(self, ctx: Any, index: int = -1) -> int:
        """The next token from the logits of output ``index`` of ``ctx``'s last decode (-1: the last)."""
        return self._sample(self._handle, ctx, index)

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            self._free(handle)

    def __del__(self) -> None:
        self.close()


def grammar_text(params: SamplingParams) -> str | None:
    """The GBNF to constrain output with: raw ``grammar`` wins, else one built from ``response_format``."""
    if params.grammar:
        return params.grammar
    response_format = params.response_format
    if response_format is None:
        return None
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    if response_format.type == "json_object" or response_format.schema is None:
        return JSON_GBNF
    try:
        return json_schema_to_gbnf(json.dumps(dict(response_format.schema)))
    except Exception as exc:  # the converter raises plain ValueError/KeyError/TypeError on bad schemas
        raise InvalidRequest(
            f"response_format json_schema cannot be turned into a grammar: {exc}", param="response_format"
        ) from exc


def build_sampler(
    model: Any, params: SamplingParams, *, penalty_last_n: int = DEFAULT_PENALTY_LAST_N
) -> SamplerChain:
    """A chain for one generation. ``model`` is the loaded ``llama_cpp.Llama``.

    Raises `InvalidRequest` for a logit-bias token outside the vocabulary or a grammar llama.cpp
    cannot parse (it logs the parse error to stderr).
    """
    import llama_cpp as lc

    vocab = lc.llama_model_get_vocab(model.model)
    n_vocab = lc.llama_vocab_n_tokens(vocab)
    chain = SamplerChain(lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params()))
    handle = chain._handle

    def add(sampler: Any) -> None:
        lc.llama_sampler_chain_add(handle, sampler)  # the chain owns (and frees) it from here

    try:
        if params.logit_bias:
            add(_logit_bias_sampler(lc, n_vocab, params.logit_bias))
        if params.repeat_penalty != 1.0 or params.frequency_penalty or params.presence_penalty:
            # The installed binding declares (n_vocab, last_n, repeat, freq, present) while the
            # bundled llama.cpp takes (last_n, repeat, freq, present). Integer and float arguments
            # travel in separate registers, so passing last_n twice is right under either signature.
            add(
                lc.llama_sampler_init_penalties(
                    penalty_last_n,
                    penalty_last_n,
                    params.repeat_penalty,
                    params.frequency_penalty,
                    params.presence_penalty,
                )
            )
        grammar = grammar_text(params)
        if grammar:
            sampler = lc.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
            if not sampler:
                param = "grammar" if params.grammar else "response_format"
                raise InvalidRequest(
                    f"the {param} is not a valid GBNF grammar with a 'root' rule", param=param
                )
            add(sampler)
        if params.temperature <= 0:
            add(lc.llama_sampler_init_greedy())
        else:
            if params.top_k > 0:
                add(lc.llama_sampler_init_top_k(params.top_k))
            if params.typical_p < 1.0:
                add(lc.llama_sampler_init_typical(params.typical_p, 1))
            if params.top_p < 1.0:
                add(lc.llama_sampler_init_top_p(params.top_p, 1))
            if params.min_p > 0.0:
                add(lc.llama_sampler_init_min_p(params.min_p, 1))
            add(lc.llama_sampler_init_temp(params.temperature))
            add(lc.llama_sampler_init_dist(_seed(params.seed, lc.LLAMA_DEFAULT_SEED)))
    except BaseException:
        chain.close()
        raise
    return chain


def _logit_bias_sampler(lc: Any, n_vocab: int, logit_bias: Mapping[int, float]) -> Any:
    items: list[tuple[int, float]] = []
    for token, bias in logit_bias.items():
        try:
            token_id = int(token)
        except (TypeError, ValueError):
            raise InvalidRequest(f"logit_bias key {token!r} is not a token id", param="logit_bias") from None
        if not 0 <= token_id < n_vocab:
            raise InvalidRequest(
                f"logit_bias token {token_id} is outside this model's vocabulary (0..{n_vocab - 1})",
                param="logit_bias",
            )
        items.append((token_id, float(bias)))
    array = (lc.llama_logit_bias * len(items))()
    for slot, (token_id, bias) in zip(array, items, strict=True):
        slot.token = token_id
        slot.bias = bias
    return lc.llama_sampler_init_logit_bias(n_vocab, len(items), array)


def _seed(seed: int | None, random_seed: int) -> int:
    """A uint32 seed; None or negative (LocalAI's -1) asks llama.cpp for a random one."""
    if seed is None or seed < 0:
        return random_seed
    return seed & 0xFFFFFFFF
