"""Token counts for a model that no engine of this hub serves: a browser tab's.

llama.cpp's `llama-tokenize` (built with the engine, beside llama-server) loads only a model's
vocabulary, so one call costs about 10 ms however large the model, and it tokenizes exactly as
the tab's wllama does, since both are llama.cpp. The text goes in on standard input, with
escape processing off (a literal backslash-n stays two characters) and no BOS, as llama-server's
`/tokenize` counts by default.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from council.engine.binary import EngineBinary

TOOL = "llama-tokenize"
TIMEOUT = 10.0  # seconds; a count that takes longer is not worth waiting for
# llama.cpp's tools read LLAMA_ARG_* from the environment (LLAMA_ARG_MODEL among them): the
# hub decides what is tokenized, not the shell it was started from.
_ENV = {k: v for k, v in os.environ.items() if not k.startswith("LLAMA_ARG_")}
_COUNT = re.compile(rb"^Total number of tokens: (\d+)$", re.MULTILINE)


class Tokenizer:
    """Counts tokens of `model` with `tool` (llama-tokenize)."""

    def __init__(self, tool: Path, model: Path) -> None:
        self.tool = tool
        self.model = model

    @classmethod
    def beside(cls, binary: EngineBinary, model: Path) -> Tokenizer | None:
        """The tokenizer built with this engine, or None when it was not (an older build, or a
        llama-server from elsewhere)."""
        tool = binary.sibling(TOOL)
        return cls(tool, model) if tool is not None else None

    async def count(self, text: str) -> int | None:
        """How many tokens `text` is for this model; None when the tool fails or stalls."""
        try:
            process = await asyncio.create_subprocess_exec(
                str(self.tool),
                "-m",
                str(self.model),
                "--stdin",
                "--ids",
                "--show-count",
                "--no-bos",
                "--no-escape",
                "--log-disable",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                env=_ENV,
            )
        except OSError:  # the tool went away since the hub started
            return None
        try:
            out, _ = await asyncio.wait_for(process.communicate(text.encode()), TIMEOUT)
        except TimeoutError:
            return None
        finally:
            if process.returncode is None:  # timed out or cancelled: the process is ours to end
                process.kill()
                await process.wait()
        if process.returncode != 0:
            return None
        found = _COUNT.search(out)
        return int(found.group(1)) if found else None
