"""Images through `sable serve` on the tiny random-weight Qwen2.5-VL of tests/golden/vl (with the
real Qwen tokenizer of tests/golden/models/qwen2_tok): every input form of /generate's image_data
(server path, data: URL, raw base64, an http URL served by a local test server, several images,
a batch with one list per prompt), OpenAI chat image_url parts, has_image_understanding, the
golden 24 greedy tokens of transformers (scripts/make_vl_golden.py) through the whole server
(also with the image split across prefill chunks and with KV retraction), the radix cache keyed
by image content, and a 400 naming the problem for every bad image.
"""
import base64
import http.server
import json
import os
import socketserver
import struct
import subprocess
import threading
import zlib

import pytest
import requests

from conftest import SOURCE_DIR, Server, sable_binary

VL_DIR = os.path.join(SOURCE_DIR, "tests", "golden", "vl")
TOKENIZER_DIR = os.path.join(SOURCE_DIR, "tests", "golden", "models", "qwen2_tok")
PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"
SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
STEPS = 24
GREEDY = {"temperature": 0, "max_new_tokens": STEPS, "ignore_eos": True}


def golden_meta():
    with open(os.path.join(VL_DIR, "golden.json")) as f:
        return json.load(f)


def image_path(name):
    return os.path.join(VL_DIR, golden_meta()["images"][name]["file"])


def prompt(*parts):
    """The golden prompts' text: the user turn holds `parts` (an image name or text) in order."""
    body = "".join(PLACEHOLDER if p in ("a", "b", "c") else p for p in parts)
    return SYSTEM + "<|im_start|>user\n" + body + "<|im_end|>\n<|im_start|>assistant\n"


CASE_TEXT = [prompt("a", "Describe this image."),
             prompt("Picture 1: ", "b", "Picture 2: ", "c", "Which one is brighter?")]
CASE_IMAGES = [["a"], ["b", "c"]]


def png_bytes(width, height, raw):
    """An RGB PNG of `raw` scanlines (the test environment has no imaging library)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def png(width, height, pixel):
    return png_bytes(width, height, b"".join(
        b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height)))


def b64(data):
    return base64.b64encode(data).decode("ascii")


def read(name):
    with open(image_path(name), "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def vl_server():
    s = Server("--tokenizer-path", TOKENIZER_DIR, "--skip-server-warmup", "--page-size", "1",
               model_dir=os.path.join(VL_DIR, "model"), model_name="qwen_vl")
    yield s
    assert s.stop() == 0, s.read_log()


@pytest.fixture(scope="module")
def image_http():
    """A local http server over tests/golden/vl (its /missing.png answers 404)."""
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=VL_DIR, **k)
    httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def generate(server, text, images, sampling=GREEDY, **extra):
    body = {"text": text, "image_data": images, "sampling_params": sampling, **extra}
    return requests.post(server.url + "/generate", json=body, timeout=120)


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


def test_model_info_says_image_understanding(vl_server, server):
    assert requests.get(vl_server.url + "/get_model_info").json()["has_image_understanding"] is True
    assert requests.get(server.url + "/get_model_info").json()["has_image_understanding"] is False


@pytest.mark.parametrize("case", [0, 1])
def test_greedy_tokens_match_transformers(vl_server, case):
    meta = golden_meta()["cases"][case]
    out = ok(generate(vl_server, CASE_TEXT[case], [image_path(n) for n in CASE_IMAGES[case]]))
    assert out["output_ids"] == meta["greedy"]
    assert out["meta_info"]["prompt_tokens"] == len(meta["prompt"])


def test_every_input_form_gives_the_same_output(vl_server, image_http):
    expected = golden_meta()["cases"][0]["greedy"]
    forms = {
        "path": image_path("a"),
        "file URL": "file://" + image_path("a"),
        "data URL": "data:image/png;base64," + b64(read("a")),
        "base64": b64(read("a")),
        "http URL": image_http + "/image_a.png",
        "url object": {"url": image_path("a")},
    }
    for form, ref in forms.items():
        out = ok(generate(vl_server, CASE_TEXT[0], ref))  # a single image, not in a list
        assert out["output_ids"] == expected, form


def test_batch_takes_one_image_list_per_prompt(vl_server):
    cases = golden_meta()["cases"]
    outs = ok(generate(vl_server, CASE_TEXT, [[image_path("a")],
                                              [image_path("b"), image_path("c")]]))
    assert [o["output_ids"] for o in outs] == [cases[0]["greedy"], cases[1]["greedy"]]


def test_expanded_input_ids_are_taken_as_they_are(vl_server):
    meta = golden_meta()["cases"][0]
    body = {"input_ids": meta["prompt"], "image_data": [image_path("a")], "sampling_params": GREEDY}
    out = ok(requests.post(vl_server.url + "/generate", json=body, timeout=120))
    assert out["output_ids"] == meta["greedy"]


def test_text_without_images_still_runs(vl_server):
    out = ok(generate(vl_server, "Hello there", None, {"max_new_tokens": 4}))
    assert len(out["output_ids"]) == 4


def chat(server, content, **extra):
    body = {"model": "qwen_vl", "max_tokens": STEPS, "temperature": 0, "ignore_eos": True,
            "messages": [{"role": "system", "content": "You are a helpful assistant."},
                         {"role": "user", "content": content}], **extra}
    return requests.post(server.url + "/v1/chat/completions", json=body, timeout=120)


def test_openai_image_url_parts(vl_server, image_http):
    expected = ok(generate(vl_server, CASE_TEXT[0], image_path("a")))["text"]
    for url in ["data:image/png;base64," + b64(read("a")), image_http + "/image_a.png"]:
        for part in [{"type": "image_url", "image_url": {"url": url, "detail": "high"}},
                     {"type": "image_url", "image_url": url}]:
            out = ok(chat(vl_server, [part, {"type": "text", "text": "Describe this image."}]))
            assert out["choices"][0]["message"]["content"] == expected
            assert out["usage"]["prompt_tokens"] == len(golden_meta()["cases"][0]["prompt"])
    two = [{"type": "text", "text": "Picture 1: "},
           {"type": "image_url", "image_url": {"url": image_path("b")}},
           {"type": "text", "text": "Picture 2: "},
           {"type": "image_url", "image_url": {"url": image_path("c"), "detail": "auto"}},
           {"type": "text", "text": "Which one is brighter?"}]
    expected = ok(generate(vl_server, CASE_TEXT[1], [image_path("b"), image_path("c")]))["text"]
    assert ok(chat(vl_server, two))["choices"][0]["message"]["content"] == expected


def test_same_image_reuses_the_prefix_and_another_never(vl_server):
    assert requests.post(vl_server.url + "/flush_cache").status_code == 200
    text = prompt("a", "What is in it?")
    first = ok(generate(vl_server, text, image_path("a"), {"max_new_tokens": 1}))
    again = ok(generate(vl_server, text, b64(read("a")), {"max_new_tokens": 1}))
    length = first["meta_info"]["prompt_tokens"]
    assert first["meta_info"]["cached_tokens"] == 0
    assert again["meta_info"]["cached_tokens"] == length - 1  # all but the token that must run
    # Same size, one pixel different: the same token ids, but the cache must stop at the image.
    grid = golden_meta()["images"]["a"]
    h, w = grid["height"], grid["width"]
    base = png(w, h, lambda x, y: (x * 2 % 256, y * 2 % 256, 90))
    other = png(w, h, lambda x, y: (255, 0, 0) if (x, y) == (5, 5) else (x * 2 % 256, y * 2 % 256, 90))
    assert ok(generate(vl_server, text, b64(base), {"max_new_tokens": 1}))
    out = ok(generate(vl_server, text, b64(other), {"max_new_tokens": 1}))
    before_image = text[:text.index(PLACEHOLDER)] + "<|vision_start|>"
    prefix = ok(requests.post(vl_server.url + "/tokenize", json={"prompt": before_image}))
    assert out["meta_info"]["cached_tokens"] == prefix["count"]


def test_image_split_across_prefill_chunks_and_retraction():
    """A chunk budget of 8 tokens cuts the images' placeholder runs; a KV pool of 300 tokens for a
    batch of 3 requests of 37 + 120 tokens overcommits (admission reserves 70 % of the outputs;
    the radix cache is off so that the requests share nothing), so one is retracted and
    recomputed, output rows included. The golden 24 tokens stay, and every request generates the
    same 120."""
    s = Server("--tokenizer-path", TOKENIZER_DIR, "--skip-server-warmup", "--chunked-prefill-size",
               "8", "--page-size", "1", "--disable-radix-cache", model_dir=os.path.join(VL_DIR, "model"),
               model_name="qwen_vl", max_total_tokens=300)
    try:
        cases = golden_meta()["cases"]
        assert ok(generate(s, CASE_TEXT[1], [image_path("b"), image_path("c")]))["output_ids"] == \
            cases[1]["greedy"]
        long = dict(GREEDY, max_new_tokens=120)
        # One batch request: the three reach the scheduler together (three concurrent HTTP
        # requests did not always overlap: under load the first could finish before the others
        # were admitted, and nothing was retracted).
        outs = ok(generate(s, [CASE_TEXT[0]] * 3, [[image_path("a")]] * 3, long))
        assert all(o["output_ids"][:STEPS] == cases[0]["greedy"] for o in outs)
        assert all(o["output_ids"] == outs[0]["output_ids"] for o in outs)
        assert sum(o["meta_info"]["num_retractions"] for o in outs) > 0, s.read_log()[-2000:]
    finally:
        s.stop()


def error(server, images, text=CASE_TEXT[0]):
    r = generate(server, text, images)
    assert r.status_code == 400, r.text
    return r.json()["error"]["message"] if "error" in r.json() else r.text


def test_bad_images_answer_400_naming_the_problem(vl_server, image_http):
    assert "corrupt" in error(vl_server, b64(read("a")[:200])).lower()
    assert "image_data[0]" in error(vl_server, b64(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20))
    gif = b"GIF89a" + b"\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 20
    assert "gif" in error(vl_server, b64(gif)).lower()
    huge = png_bytes(20000, 20000, b"\x00" * 64)  # the header claims 400 M pixels
    assert "large" in error(vl_server, b64(huge)).lower()
    assert "404" in error(vl_server, image_http + "/missing.png")
    assert "image_data" in error(vl_server, "http://127.0.0.1:9/unreachable.png")
    assert "image_data" in error(vl_server, "/no/such/image.png")
    # Count mismatches between images and placeholders.
    assert "placeholder" in error(vl_server, [image_path("a"), image_path("a")])
    assert "placeholder" in error(vl_server, image_path("a"), text="no placeholder here")
    r = requests.post(vl_server.url + "/generate", json={"text": CASE_TEXT[0], "image_data": 5})
    assert r.status_code == 400 and "image_data" in r.text


def test_chat_image_errors(vl_server, server):
    r = chat(vl_server, [{"type": "image_url", "image_url": {"url": b64(b"not an image")}}])
    assert r.status_code == 400 and "image_data[0]" in r.text
    r = chat(vl_server, [{"type": "image_url", "image_url": {"url": image_path("a"),
                                                             "detail": "extreme"}}])
    assert r.status_code == 400 and "detail" in r.text
    r = chat(server, [{"type": "image_url", "image_url": {"url": image_path("a")}},
                      {"type": "text", "text": "hi"}])
    assert r.status_code == 400 and "no image input" in r.text


def test_text_only_model_refuses_images(server):
    r = requests.post(server.url + "/generate",
                      json={"text": "hi " + PLACEHOLDER, "image_data": image_path("a")})
    assert r.status_code == 400 and "no image input" in r.text


def test_vision_calls_are_cut_at_max_image_patches(tmp_path):
    """A preprocessor_config.json of max_pixels 28·28·36 makes the largest image 144 patches, the
    vision tower's most per call: the two-image prompt (140 + 24 patches) runs as two calls and
    still gives the golden tokens, and an image the resize pushes past the budget answers 400.
    A budget below the largest image stops startup naming max_image_patches."""
    model = tmp_path / "model"
    model.mkdir()
    for name in os.listdir(os.path.join(VL_DIR, "model")):
        os.symlink(os.path.join(VL_DIR, "model", name), model / name)
    (model / "preprocessor_config.json").write_text(
        json.dumps({"min_pixels": 3136, "max_pixels": 28 * 28 * 36}))
    s = Server("--tokenizer-path", TOKENIZER_DIR, "--skip-server-warmup", model_dir=str(model),
               model_name="qwen_vl")
    try:
        assert "at most 144 patches per image and per vision-tower call" in s.read_log()
        cases = golden_meta()["cases"]
        outs = ok(generate(s, CASE_TEXT, [[image_path("a")], [image_path("b"), image_path("c")]]))
        assert [o["output_ids"] for o in outs] == [cases[0]["greedy"], cases[1]["greedy"]]
        # A 200:1 strip keeps one row of merged tokens and is resized past max_pixels: 2 x 168.
        strip = png(5600, 28, lambda x, y: (x % 256, 40, 200))
        r = generate(s, CASE_TEXT[0], b64(strip))
        assert r.status_code == 400 and "336 patches, more than the 144" in r.text, r.text
        assert "max_image_patches" in r.text
    finally:
        assert s.stop() == 0
    failed = subprocess.run([sable_binary(), "serve", "--model-path", str(model), "--tokenizer-path",
                             TOKENIZER_DIR, "--device", "cpu", "--port", "1",
                             "--max-image-patches", "100"],
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode != 0
    assert "max_image_patches: 100 is below the 144 patches" in failed.stderr + failed.stdout
