"""sable.lang: SGLang's frontend language in plain Python, with SGLang's names and semantics.

    @function
    def qa(s, question):
        s += user(question)
        s += assistant(gen("answer", max_tokens=64))

    set_default_backend(sable.Engine(model_path=...))   # or RuntimeEndpoint("http://...")
    qa("Why?")["answer"]

Everything here is re-exported by `sable`, so `import sable as sgl` runs SGLang's programs.
"""

from sable.lang.backends import Backend, EngineBackend, RuntimeEndpoint
from sable.lang.choices import (greedy_token_selection, token_length_normalized,
                                unconditional_likelihood_normalized)
from sable.lang.function import (SglFunction, flush_cache, function, get_default_backend,
                                 get_server_info, set_default_backend)
from sable.lang.interpreter import ProgramState, ProgramStateGroup
from sable.lang.ir import (assistant, assistant_begin, assistant_end, gen, gen_int, gen_string,
                           image, select, system, system_begin, system_end, user, user_begin,
                           user_end, video)

__all__ = [
    "Backend", "EngineBackend", "RuntimeEndpoint", "SglFunction", "ProgramState",
    "ProgramStateGroup", "function", "set_default_backend", "get_default_backend",
    "flush_cache", "get_server_info", "gen", "gen_int", "gen_string", "select", "image", "video",
    "system", "user", "assistant", "system_begin", "system_end", "user_begin", "user_end",
    "assistant_begin", "assistant_end", "token_length_normalized", "greedy_token_selection",
    "unconditional_likelihood_normalized",
]
