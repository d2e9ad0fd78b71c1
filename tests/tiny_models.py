"""Tiny randomly initialised models, built in seconds with a tokenizer trained on the fly. They go
through the same loading code as real models (AutoConfig / AutoTokenizer / AutoModelFor*)."""
from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>"]


def _corpus() -> list[str]:
    demo = Path(__file__).resolve().parent.parent / "bench" / "demo"
    return [p.read_text() for p in sorted(demo.rglob("*.txt"))]


def tokenizer(out: Path, with_chat_template: bool = True):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(_corpus(), trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS,
                                                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=512)
    if with_chat_template:
        fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    return fast


def build(kind: str, out: Path) -> Path:
    """kind: 'llama' (causal, chat template), 'bart' or 't5' (seq2seq)."""
    import torch
    from transformers import (BartConfig, BartForConditionalGeneration, LlamaConfig, LlamaForCausalLM, T5Config,
                              T5ForConditionalGeneration)

    out.mkdir(parents=True, exist_ok=True)
    tok = tokenizer(out, with_chat_template=kind == "llama")
    ids = {"pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id}
    torch.manual_seed(0)
    if kind == "llama":
        model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                             max_position_embeddings=1024, **ids))
    elif kind == "bart":
        model = BartForConditionalGeneration(BartConfig(
            vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=1024,
            decoder_start_token_id=tok.eos_token_id, forced_eos_token_id=None, **ids))
    elif kind == "t5":
        model = T5ForConditionalGeneration(T5Config(
            vocab_size=len(tok), d_model=32, d_kv=16, d_ff=64, num_layers=1, num_heads=2,
            decoder_start_token_id=tok.pad_token_id, **{k: v for k, v in ids.items() if k != "bos_token_id"}))
    else:
        raise ValueError(kind)
    model.save_pretrained(out)
    return out
