"""A tiny causal language model and its tokenizer, built offline from the corpus shipped in the repo.

Demos and tests need a real Hugging Face model directory (config, weights, tokenizer files) to put in the
`model` channel, and nothing here may download from a model hub. A 2-layer GPT-2 with a 64-wide hidden
state and a byte-level BPE vocabulary of a few hundred tokens trains in seconds on a laptop CPU.

    python -m trainstack.tiny_model OUT_DIR

Deterministic: the same corpus and seed give byte-identical files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from trainstack.package_data import package_dir

DEFAULT_CORPUS = package_dir("trainstack") / "data" / "corpus.txt"

END_OF_TEXT = "<|endoftext|>"
PAD = "<pad>"
VOCAB_SIZE = 512
CONTEXT_LENGTH = 128
SEED = 0

# A ChatML-like template so chat (`messages`) data trains offline end to end. The `{% generation %}`
# markers let TRL mask everything but the assistant turns (assistant_only_loss); the end-of-text token
# after each assistant turn is what the model learns to stop on.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\\n' }}{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


def build_tiny_model(out_dir: Path, corpus: Path = DEFAULT_CORPUS, seed: int = SEED) -> Path:
    """Train a byte-level BPE tokenizer on `corpus`, initialise a 2-layer GPT-2 for it, save both to `out_dir`.

    Returns `out_dir`, ready for `AutoTokenizer.from_pretrained` / `AutoModelForCausalLM.from_pretrained`.
    """
    # Imported here so `--help` and importing this module stay cheap.
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    text = corpus.read_text(encoding="utf-8")
    if not text.strip():
        raise ValueError(f"{corpus}: the tokenizer corpus is empty")

    # Byte-level BPE as GPT-2 uses: any UTF-8 input encodes without unknown tokens, so user data that
    # strays from the corpus still trains.
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=[END_OF_TEXT, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(text.splitlines(), trainer=trainer)

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        unk_token=END_OF_TEXT,
        pad_token=PAD,
        model_max_length=CONTEXT_LENGTH,
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=CONTEXT_LENGTH,
        n_embd=64,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)

    out_dir.mkdir(parents=True, exist_ok=True)
    # A progress bar for one 0.5 MB shard is noise in test and demo output.
    bars_were_disabled = hf_logging.is_progress_bar_enabled() is False
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    finally:
        if not bars_were_disabled:
            hf_logging.enable_progress_bar()
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m trainstack.tiny_model", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="directory to write the model and tokenizer into")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="text the tokenizer is trained on")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    out = build_tiny_model(args.out_dir, corpus=args.corpus, seed=args.seed)
    print(out)


if __name__ == "__main__":
    main()
