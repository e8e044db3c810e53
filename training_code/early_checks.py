"""What can fail a job is checked before the weights download: the tokenizer and, for chat data, the chat
template TRL needs, by rendering the channel's first conversation the way SFTTrainer will.

With `model_s3_uri` only the small files of the prefix (config, tokenizer, chat template: everything but
weight files) are copied first, so a model without a usable template fails in seconds, not after 140 GB.
"""

from __future__ import annotations

import json
from pathlib import Path

from errors import DataError
from sft_data import Shape, data_files


def check_tokenizer(tokenizer_dir: Path | str, shape: Shape, train_dir: Path, assistant_only_loss: bool) -> None:
    """Load the tokenizer; for chat records, render the first conversation with its chat template."""
    from jinja2 import TemplateError
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    except (OSError, ValueError) as error:
        raise DataError(f"the base model's tokenizer does not load from {tokenizer_dir}: {error}") from error
    if shape is not Shape.CHAT:
        return
    if not tokenizer.chat_template:
        raise DataError(
            f"the train channel holds chat `messages`, but the model at {tokenizer_dir} has no chat template"
        )
    messages = _first_conversation(train_dir)
    try:
        rendered = tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=assistant_only_loss
        )
    except (TemplateError, ValueError, KeyError) as error:
        raise DataError(f"the model's chat template cannot render the train channel's first record: {error}") from error
    if assistant_only_loss and not any(rendered.get("assistant_masks", [])):
        raise DataError(
            "assistant_only_loss needs a chat template that marks assistant turns with {% generation %} ... "
            "{% endgeneration %} (TRL masks the loss with them); this model's template has none. Set "
            "assistant_only_loss=false to train on whole conversations, or give the model such a template."
        )


def _first_conversation(train_dir: Path) -> list[dict[str, str]]:
    for path in data_files("train", train_dir):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                return json.loads(line)["messages"]
    raise DataError("the train channel has no records")  # check_channel has already refused this
