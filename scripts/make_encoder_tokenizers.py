#!/usr/bin/env python3
"""Makes the encoder tokenizers of tests/golden/tokenizers (xlmr_unigram, bert_wordpiece) and
their vectors.json, as HF tokenizers encodes and decodes them.

xlmr_unigram: a SentencePiece Unigram model (vocab 1500, nmt_nfkc normalization) trained on the
project's docs plus a few lines of other scripts, converted by transformers' XLMRobertaConverter:
the structure of xlm-roberta-base's tokenizer.json (Precompiled charsmap, Strip, Replace,
Metaspace, Unigram, <s> A </s></s> B </s>). bert_wordpiece: HF tokenizers' BertWordPieceTokenizer
(lowercase, strip accents) trained on the same text: bert-base-uncased's structure.
Needs: sentencepiece, protobuf, transformers, tokenizers. Usage: scripts/make_encoder_tokenizers.py
"""
import json
import os
import tempfile

import sentencepiece as spm
from tokenizers import BertWordPieceTokenizer, Tokenizer, processors
from transformers.convert_slow_tokenizer import XLMRobertaConverter

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(ROOT, "tests", "golden", "tokenizers")
EXTRA = ["Größe naïve café résumé façade Ångström", "こんにちは世界 東京タワー", "中文文本测试 简体字",
         "Привет мир, как дела?", "①②③ ＡＢＣ ｶﾀｶﾅ ﬁﬂ ™ ½", "Ελληνικά κείμενα", "עברית ערבית",
         "emoji 😀👍🏽 family 👨‍👩‍👧"]
TEXTS = ["Hello world", "Hello, my name is Sable.", "  two  spaces and\ttabs\nnewlines ",
         "Größe naïve café", "ＡＢＣ ①② ﬁ ｶﾀｶﾅ", "東京 こんにちは 中文", "Привет мир",
         "emoji 😀 and 👨‍👩‍👧 family", "unknown ☃ snowman ⚗", "a<s>b</s>c <mask> d",
         "don't stop believin' it's 3.14!", "UPPER lower MiXeD", "x" * 60, "",
         "tokenizer.json model_type xlm-roberta", "combining e\u0301 and n\u0303 marks"]


def corpus():
    text = []
    for d in (os.path.join(ROOT, "docs"),):
        for name in sorted(os.listdir(d)):
            if name.endswith(".md"):
                with open(os.path.join(d, name), encoding="utf-8") as f:
                    text.append(f.read())
    return "\n".join(text + EXTRA * 20)


def vectors(tok):
    rows = []
    for t in TEXTS:
        ids = tok.encode(t, add_special_tokens=False).ids
        special = tok.encode(t).ids
        rows.append({"text": t, "ids": ids, "ids_with_special": special,
                     "decoded": tok.decode(ids, skip_special_tokens=False),
                     "decoded_skip_special": tok.decode(special, skip_special_tokens=True)})
    pairs = []
    for a, b in [("what is sable", "a serving runtime"), ("Größe", "東京 tower"), ("q", "")]:
        e = tok.encode(a, b)
        pairs.append({"first": a, "second": b, "ids": e.ids, "type_ids": e.type_ids})
    return {"encode": rows, "pairs": pairs}


def write(name, tok, config):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=1)
    with open(os.path.join(d, "vectors.json"), "w") as f:
        json.dump(vectors(Tokenizer.from_file(os.path.join(d, "tokenizer.json"))), f,
                  ensure_ascii=False, indent=1)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "corpus.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write(corpus())
        spm.SentencePieceTrainer.train(
            input=path, model_prefix=os.path.join(tmp, "m"), vocab_size=1500, model_type="unigram",
            normalization_rule_name="nmt_nfkc", character_coverage=1.0, bos_id=0, pad_id=1,
            eos_id=2, unk_id=3, minloglevel=2)
        ids = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}

        class Slow:
            vocab_file = os.path.join(tmp, "m.model")
            handle_byte_fallback = False

            def convert_tokens_to_ids(self, t):
                return ids[t]

        write("xlmr_unigram", XLMRobertaConverter(Slow()).converted(),
              {"tokenizer_class": "XLMRobertaTokenizer", "bos_token": "<s>", "eos_token": "</s>",
               "pad_token": "<pad>", "unk_token": "<unk>", "model_max_length": 512})
        bert = BertWordPieceTokenizer(lowercase=True, strip_accents=None)
        bert.train([path], vocab_size=1500, min_frequency=1)
        bert._tokenizer.post_processor = processors.BertProcessing(
            ("[SEP]", bert.token_to_id("[SEP]")), ("[CLS]", bert.token_to_id("[CLS]")))
        write("bert_wordpiece", bert._tokenizer,
              {"tokenizer_class": "BertTokenizer", "cls_token": "[CLS]", "sep_token": "[SEP]",
               "pad_token": "[PAD]", "unk_token": "[UNK]", "do_lower_case": True,
               "model_max_length": 512})


if __name__ == "__main__":
    main()
