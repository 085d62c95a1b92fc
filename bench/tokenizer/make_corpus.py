#!/usr/bin/env python3
"""Writes the tokenizer benchmark corpus: a JSON list of documents (~4 KB each) mixing English
prose (the repo's Markdown), source code (the repo's C++/Python/CMake) and Chinese text, chosen
deterministically so every run and both tokenizers see identical input."""
import json, os, random, sys

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
out_path = sys.argv[1]
target_mb = float(sys.argv[2]) if len(sys.argv) > 2 else 4.0
rng = random.Random(0)

def files(exts):
    found = []
    for base in ("docs", "core", "sdk", "server", "plugins", "tests/unit", "scripts", "README.md"):
        p = os.path.join(root, base)
        if os.path.isfile(p):
            found.append(p)
        for d, _, names in os.walk(p):
            found += [os.path.join(d, n) for n in names if n.endswith(exts)]
    texts = []
    for f in sorted(set(found)):
        try:
            with open(f, encoding="utf-8") as fh:
                texts.append(fh.read())
        except (UnicodeDecodeError, OSError):
            pass
    return "\n".join(texts)

english = files((".md",))
code = files((".cpp", ".h", ".py", ".txt", ".sh"))
phrases = ["我们今天讨论大型语言模型的推理服务。", "分词器把文本切成词元，", "然后模型逐个生成新的词元。",
           "这个系统支持流式输出和停止字符串，", "并且可以在多个线程中同时编码请求。", "北京是中国的首都，",
           "上海是最大的城市之一。", "性能测试需要可重复的输入数据，", "所以我们使用固定的随机种子。",
           "缓存可以显著提高吞吐量。", "请注意中文标点符号：逗号、句号和引号“”。", "机器学习", "人工智能",
           "深度神经网络", "注意力机制", "推理引擎", "量化与剪枝", "数据并行和张量并行"]

def chunk(src, n):
    if not src:
        return ""
    start = rng.randrange(max(1, len(src) - n))
    return src[start:start + n]

docs, total = [], 0
while total < target_mb * 1e6:
    kind = rng.random()
    if kind < 0.4:
        d = chunk(english, 4000)
    elif kind < 0.8:
        d = chunk(code, 4000)
    else:
        d = "".join(rng.choice(phrases) for _ in range(90))
    docs.append(d)
    total += len(d.encode("utf-8"))
with open(out_path, "w", encoding="utf-8") as fh:
    json.dump(docs, fh, ensure_ascii=False)
print(f"corpus: {len(docs)} docs, {total / 1e6:.2f} MB -> {out_path}")
