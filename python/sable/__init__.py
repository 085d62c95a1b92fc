"""Sable from Python: SGLang's offline Engine API and frontend language, in process.

    import sable as sgl
    llm = sgl.Engine(model_path="...")
    llm.generate(["Hello"], {"temperature": 0.8})

`sable.Engine` binds the C++ engine (nanobind); results are the dicts /generate returns.
`sable.lang` (re-exported here) is SGLang's frontend language over that Engine or over any
server speaking SGLang's native API (RuntimeEndpoint). See docs/python.md.
"""

from sable import utils
from sable.engine import Engine
from sable.lang import *  # noqa: F401,F403  (SGLang's top-level names: function, gen, ...)
from sable.lang import __all__ as _lang_all

__version__ = "0.1.0"
__all__ = ["Engine", "utils", *_lang_all]
