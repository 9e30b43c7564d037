"""Prompt templates and read-out positions (no torch here: the CLI imports this for --help).

A template is a string with `{text}` (the stimulus) and optionally `{mask}` (filled with the
tokenizer's mask token); position `mask` reads out at that token, so it needs `{mask}`. A causal
LM has no mask token: there `mask` reads where `{mask}` would be predicted, i.e. at the last token
of the template's part before `{mask}` (cut there, trailing spaces dropped; by causality nothing
after that token could change it).

Defaults follow what a model was trained for, never a result (issue 10): a masked LM reads at its
mask (`"{text} I feel {mask}."`), a sentence encoder without an MLM head (the bundled MiniLM) the
attention-masked mean over the bare text (`"{text}"`, as sentence-transformers pools it), a causal
LM the last token of `"{text}\nThe emotion expressed here is"` (the position that predicts the
next word, after a question it would answer).
"""

from __future__ import annotations

from collections.abc import Sequence

from emolake.warehouse.errors import BadInputError

POSITIONS = ("last", "mask", "cls", "mean", "all")
DEFAULT_TEMPLATE = "{text} I feel {mask}."  # the masked-LM default
CAUSAL_TEMPLATE = "{text}\nThe emotion expressed here is"
PLAIN_TEMPLATE = "{text}"


def default_position(causal: bool, has_mlm_head: bool) -> str:
    """last for a causal LM, mask for a masked LM, mean for a sentence encoder."""
    if causal:
        return "last"
    return "mask" if has_mlm_head else "mean"


def default_template(position: str, causal: bool) -> str:
    if position == "mask":
        return DEFAULT_TEMPLATE
    if position == "last" and causal:
        return CAUSAL_TEMPLATE
    return PLAIN_TEMPLATE


def check_position(position: str, causal: bool) -> None:
    """Positions that mean something for this kind of model."""
    if causal and position == "cls":
        raise BadInputError("--position cls reads the first token, which a causal LM computes before seeing the text",
                            column="position", expected="last | mask | mean | all for a causal LM", found=position)
    if not causal and position == "last":
        raise BadInputError("--position last is for causal LMs", column="position",
                            expected="mask | cls | mean | all for an encoder", found=position)


def cut_at_mask(template: str) -> str:
    """A causal LM's template for position mask: everything before {mask}, trailing spaces dropped."""
    return template[:template.index("{mask}")].rstrip()


def check_template(template: str, position: str) -> None:
    if position not in POSITIONS:
        raise BadInputError("unknown read-out position", column="position", expected=" | ".join(POSITIONS),
                            found=position)
    if "{text}" not in template:
        raise BadInputError("the template has no {text} placeholder", column="template", found=template)
    if position == "mask" and "{mask}" not in template:
        raise BadInputError("--position mask needs a {mask} placeholder in the template", column="template",
                            expected="e.g. '{text} I feel {mask}.'", found=template)
    try:
        template.format(text="x", mask="y")
    except (KeyError, IndexError, ValueError) as exc:
        raise BadInputError(f"bad template ({exc}); only {{text}} and {{mask}} are filled", column="template",
                            found=template) from exc


def fill_template(template: str, texts: Sequence[str], mask_token: str | None) -> list[str]:
    if "{mask}" in template and not mask_token:
        raise BadInputError("the template has {mask} but the tokenizer has no mask token", column="template",
                            found=template)
    return [template.format(text=text, mask=mask_token) for text in texts]
