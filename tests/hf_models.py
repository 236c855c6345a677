"""Tiny Hugging Face models built locally for the adapter's tests (no hub, no network).

Each builder writes a directory that ``transformers`` loads like a hub snapshot and stands in for
one preset's model family:

* :func:`tiny_bert` — a native ``BertModel`` with a BPE tokenizer (``hf:DIR``);
* :func:`tiny_gpt2` — a native causal ``GPT2Model`` with a character tokenizer (``hyenadna``);
* :func:`tiny_esm` — a native ``EsmForMaskedLM`` with a k-mer vocabulary (``nt``);
* :func:`tiny_mosaic` — remote code (``auto_map``): a MosaicBERT-style encoder that reproduces
  DNABERT-2's loading traps (``dnabert2``, ``dnabert-s``), weights in ``pytorch_model.bin``;
* :func:`tiny_barcodebert` — remote code model and tokenizer behaving like the hub's BarcodeBERT
  (1-D ids, one sequence at a time, no attention mask, no ``last_hidden_state``).
"""

from __future__ import annotations

import importlib.util
import json
import random
import shutil
from pathlib import Path

import torch

REMOTE = Path(__file__).resolve().parent / "hf_remote"
SPECIALS = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]  # ids 0..4, as DNABERT-2's tokenizer


def _training_sequences(n: int = 60, length: int = 300, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice("AACGTT") for _ in range(length)) for _ in range(n)]


def bpe_tokenizer(vocab_size: int = 60, model_max_length: int = 512):
    """A BPE tokenizer over ACGT trained on random sequences: ``[CLS] seq [SEP]``, N -> [UNK]."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(_training_sequences(), trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, initial_alphabet=list("ACGT")))
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                       special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", pad_token="[PAD]", mask_token="[MASK]",
                                   model_max_length=model_max_length)


def char_tokenizer(model_max_length: int = 1024):
    """One token per base, ``seq [SEP]`` (HyenaDNA's tokenizer appends a separator)."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[SEP]", "A", "C", "G", "T", "N"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(single="$A [SEP]", special_tokens=[("[SEP]", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   sep_token="[SEP]", model_max_length=model_max_length)


def tiny_bert(directory: Path, seed: int = 0) -> Path:
    from transformers import BertConfig, BertModel

    tokenizer = bpe_tokenizer()
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512,
                        pad_token_id=tokenizer.pad_token_id)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def tiny_gpt2(directory: Path, seed: int = 0) -> Path:
    from transformers import GPT2Config, GPT2Model

    tokenizer = char_tokenizer()
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=1024, n_embd=32, n_layer=2, n_head=2,
                        n_inner=64, bos_token_id=None, eos_token_id=None, pad_token_id=0)
    GPT2Model(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def tiny_esm(directory: Path, seed: int = 0, k: int = 3) -> Path:
    """An NT-like model: ESM with rotary positions, k-mer tokens (single bases where a k-mer does
    not fit), ``<cls>`` first; saved as ``EsmForMaskedLM`` as the hub's NT checkpoints are."""
    import itertools

    from transformers import EsmConfig, EsmForMaskedLM, EsmTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    kmers = ["".join(p) for p in itertools.product("ACGT", repeat=k)]
    vocab = ["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", *kmers, *"ACGTN"]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = EsmTokenizer(str(directory / "vocab.txt"), model_max_length=300)
    torch.manual_seed(seed)
    config = EsmConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, max_position_embeddings=302, position_embedding_type="rotary",
                       pad_token_id=1, mask_token_id=2, token_dropout=False)
    EsmForMaskedLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _copy_remote(kind: str, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for source in (REMOTE / kind).glob("*.py"):
        shutil.copy(source, directory / source.name)


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(f"_bb_test_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_mosaic(directory: Path, seed: int = 0, variant: str = "") -> Path:
    """DNABERT-2-like: remote ``BertConfig`` / ``BertModel``, config ``pad_token_id`` 0 while the
    tokenizer's [PAD] is 3, weights of the MLM model (``bert.`` prefix) in ``pytorch_model.bin``.

    transformers imports a directory's remote code once per process and content; a distinct
    ``variant`` makes the code distinct, so it is imported afresh (for tests of import-time traps).
    """
    _copy_remote("tinymosaic", directory)
    if variant:
        with open(directory / "modeling_tinymosaic.py", "a") as fh:
            fh.write(f"# variant {variant}\n")
    tokenizer = bpe_tokenizer()
    config_module = _module(directory / "configuration_tinymosaic.py")
    config = config_module.BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512, pad_token_id=0, alibi_starting_size=64,
        architectures=["BertForMaskedLM"],
        auto_map={"AutoConfig": "configuration_tinymosaic.BertConfig",
                  "AutoModel": "modeling_tinymosaic.BertModel",
                  "AutoModelForMaskedLM": "modeling_tinymosaic.BertForMaskedLM"})
    torch.manual_seed(seed)
    model = _module(directory / "modeling_tinymosaic.py").BertForMaskedLM(config)
    torch.save(model.state_dict(), directory / "pytorch_model.bin")
    (directory / "config.json").write_text(json.dumps(config.to_dict(), indent=1))
    tokenizer.save_pretrained(directory)
    return directory


def tiny_barcodebert(directory: Path, seed: int = 0, k: int = 4) -> Path:
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    _copy_remote("tinybarcodebert", directory)
    hidden, layers, heads = 32, 2, 2
    config = {"model_type": "tinybarcodebert", "k": k, "hidden_size": hidden, "num_hidden_layers": layers,
              "num_attention_heads": heads, "intermediate_size": 64, "max_len": 660,
              "architectures": ["TinyBarcodeBert"],
              "auto_map": {"AutoConfig": "configuration_tinybarcodebert.TinyBarcodeConfig",
                           "AutoModel": "modeling_tinybarcodebert.TinyBarcodeBert"}}
    (directory / "config.json").write_text(json.dumps(config, indent=1))
    (directory / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "TinyBarcodeTokenizer", "k": k, "max_len": 660,
        "auto_map": {"AutoTokenizer": ["tokenization_tinybarcodebert.TinyBarcodeTokenizer", None]}}))
    torch.manual_seed(seed)
    bert = BertModel(BertConfig(vocab_size=4 ** k + 2, hidden_size=hidden, num_hidden_layers=layers,
                                num_attention_heads=heads, intermediate_size=64,
                                max_position_embeddings=660 // k, pad_token_id=None), add_pooling_layer=False)
    weights = {f"bert.{name}": t.contiguous() for name, t in bert.state_dict().items()}
    head = torch.nn.Linear(hidden, 4 ** k)
    weights |= {"classifier.weight": head.weight.detach(), "classifier.bias": head.bias.detach()}
    save_file(weights, str(directory / "model.safetensors"), metadata={"format": "pt"})
    return directory


BUILDERS = {"bert": tiny_bert, "gpt2": tiny_gpt2, "esm": tiny_esm, "mosaic": tiny_mosaic,
            "barcodebert": tiny_barcodebert}
