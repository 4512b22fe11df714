"""The gguf package's format constants, without the package's numpy-heavy `__init__`.

`import gguf` brings in numpy, the reader and the writer (about 60 ms), and council reads model
headers at every start, before it can spawn an engine. `gguf/constants.py` itself needs only the
standard library, so it is loaded on its own from the installed package. If the package is
already imported, or its layout ever changes, the ordinary import is used instead.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _load() -> ModuleType:
    if "gguf.constants" in sys.modules:
        return sys.modules["gguf.constants"]
    spec = importlib.util.find_spec("gguf")  # finds the package without running its __init__
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).with_name("constants.py")
        standalone = importlib.util.spec_from_file_location("council._gguf_constants", path)
        if standalone is not None and standalone.loader is not None and path.is_file():
            module = importlib.util.module_from_spec(standalone)
            standalone.loader.exec_module(module)
            return module
    import gguf.constants

    return gguf.constants


_constants = _load()
GGML_QUANT_SIZES: dict[int, tuple[int, int]] = _constants.GGML_QUANT_SIZES
GGMLQuantizationType = _constants.GGMLQuantizationType
GGUFValueType = _constants.GGUFValueType
LlamaFileType = _constants.LlamaFileType
