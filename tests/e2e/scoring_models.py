"""Model folders for the scoring e2e tests, built from the golden checkpoints in a temporary folder.

The golden bert_embed / xlmr_rerank / llama_reward checkpoints carry no tokenizer, so text requests
get a small byte-level BPE tokenizer.json written here, with the post-processor of the family:
RobertaProcessing (<s>=0, </s>=2: `<s> A </s></s> B </s>`), BertProcessing ([CLS]=101, [SEP]=102:
`[CLS] A [SEP] B [SEP]`, token types 0 then 1) or Llama's TemplateProcessing (BOS 1). Byte tokens
sit at ids 300..555, below every model's vocabulary (1000). Also: reference tensors of
golden.safetensors as floats, and sentence-transformers / Matryoshka variants of a folder.
"""
import json
import os
import struct

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GOLDEN = os.path.join(SOURCE_DIR, "tests", "golden", "models")
BYTE_BASE = 300


def _byte_chars():
    """GPT-2's byte -> printable character table (what the ByteLevel pre-tokenizer emits)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def tokenizer_json(family):
    chars = _byte_chars()
    vocab = {chars[b]: BYTE_BASE + b for b in range(256)}
    if family == "roberta":
        specials = {"<s>": 0, "<pad>": 1, "</s>": 2}
        post = {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0],
                "trim_offsets": True, "add_prefix_space": False}
    elif family == "bert":
        specials = {"[PAD]": 0, "[CLS]": 101, "[SEP]": 102}
        post = {"type": "BertProcessing", "sep": ["[SEP]", 102], "cls": ["[CLS]", 101]}
    else:  # llama
        specials = {"<s>": 1, "</s>": 2}
        post = {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                           {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                         {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": "<s>", "type_id": 1}},
                         {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    vocab.update(specials)
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t, i in specials.items()]
    return {"version": "1.0", "added_tokens": added, "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                              "use_regex": True},
            "post_processor": post, "decoder": {"type": "ByteLevel"},
            "model": {"type": "BPE", "vocab": vocab, "merges": []}}


def text_ids(text):
    """What the test tokenizer gives for `text` without special tokens: one id per byte."""
    return [BYTE_BASE + b for b in text.encode("utf-8")]


def model_dir(tmp, golden_name, family, tag="plain", config_extra=None, files=None):
    """A folder `<golden_name>-<tag>` under tmp with the golden checkpoint (linked), a test
    tokenizer of `family` and optional config.json changes and extra JSON files."""
    out = os.path.join(tmp, f"{golden_name}-{tag}")
    os.makedirs(out, exist_ok=True)
    src = os.path.join(GOLDEN, golden_name)
    for name in ("model.safetensors", "golden.json", "golden.safetensors"):
        dst = os.path.join(out, name)
        if not os.path.exists(dst):
            os.symlink(os.path.join(src, name), dst)
    with open(os.path.join(src, "config.json")) as f:
        config = json.load(f)
    config.update(config_extra or {})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f)
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        json.dump(tokenizer_json(family), f)
    for rel, content in (files or {}).items():
        path = os.path.join(out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(content, f)
    return out


def prompts(golden_name):
    with open(os.path.join(GOLDEN, golden_name, "golden.json")) as f:
        return json.load(f)["prompts"]


def reference(golden_name, name):
    """A float32 tensor of golden.safetensors as a flat list."""
    with open(os.path.join(GOLDEN, golden_name, "golden.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        begin, end = header[name]["data_offsets"]
        f.seek(8 + n + begin)
        raw = f.read(end - begin)
    assert header[name]["dtype"] == "F32"
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def rel_err(got, want):
    assert len(got) == len(want), (len(got), len(want))
    ref = max(abs(w) for w in want)
    return max(abs(g - w) for g, w in zip(got, want)) / ref


def normalized(v):
    n = sum(x * x for x in v) ** 0.5
    return [x / n for x in v]
