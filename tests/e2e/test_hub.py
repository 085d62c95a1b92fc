"""Hub ids for --model-path: downloads from a mock Hub on loopback (mock_hub.py) into the Hugging
Face cache layout, reuse of that cache with no request, resume, checks, offline mode, auth and 404
errors, and one cache shared with the real huggingface_hub library both ways."""
import hashlib
import os
import subprocess
import sys

import pytest

from conftest import MODEL_DIR, sable_binary
from mock_hub import MockHub

REPO = "sable-test/qwen2-tok"
PRIVATE = "sable-test/private-tok"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
FILES = ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
         "tokenizer_config.json"]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


WEIGHTS_SHA = sha256(os.path.join(MODEL_DIR, "model.safetensors"))


@pytest.fixture
def hub():
    h = MockHub(token="hf_secret")
    h.add_repo(REPO, MODEL_DIR, commit=COMMIT, names=FILES + ["golden.json"])
    h.add_repo(PRIVATE, MODEL_DIR, commit=COMMIT, private=True, names=FILES)
    yield h
    h.close()


@pytest.fixture
def env(hub, tmp_path):
    """An environment whose HF cache is empty and whose Hub is the mock."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("HF_", "HUGGING", "TRANSFORMERS_"))}
    e.update(HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=hub.url)
    return e


def sable(env, *args, timeout=120):
    p = subprocess.run([sable_binary(), *args], capture_output=True, text=True, env=env,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def generate(env, model=REPO, *extra):
    return sable(env, "generate", "--model-path", model, "--device", "cpu", "--prompt", "Hello",
                 "--max-new-tokens", "4", "--temperature", "0", *extra)


def repo_dir(env, repo=REPO):
    return os.path.join(env["HF_HOME"], "hub", "models--" + repo.replace("/", "--"))


def test_fresh_download_lays_out_the_cache_like_huggingface_hub(hub, env):
    code, out, err = sable(env, "download", REPO)
    assert code == 0, err
    snap = os.path.join(repo_dir(env), "snapshots", COMMIT)
    assert out.strip() == snap
    with open(os.path.join(repo_dir(env), "refs", "main")) as f:
        assert f.read() == COMMIT
    for name in FILES:
        link = os.path.join(snap, name)
        assert os.path.islink(link), name
        assert os.readlink(link).startswith("../../blobs/"), os.readlink(link)
        with open(link, "rb") as a, open(os.path.join(MODEL_DIR, name), "rb") as b:
            assert a.read() == b.read(), name
    assert os.readlink(os.path.join(snap, "model.safetensors")) == f"../../blobs/{WEIGHTS_SHA}"
    assert not os.path.exists(os.path.join(snap, "golden.json"))  # not a checkpoint file
    assert not [f for f in os.listdir(os.path.join(repo_dir(env), "blobs")) if f.endswith(".incomplete")]
    assert "download: sable-test/qwen2-tok/model.safetensors" in err  # plain lines off a TTY
    # The weights came from the CDN origin; the token never went there.
    assert hub.count("/cdn/") == 1


def test_terminal_gets_a_progress_bar_per_file(hub, env):
    import pty
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sable_binary(), ["sable", "download", REPO], env)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    text = out.decode(errors="replace")
    for name in FILES:  # one bar each (long names keep their end), redrawn in place
        assert name in text
    bars = [line for line in text.replace("\x1b[2K", "\n").splitlines() if "%" in line]
    assert bars and max(len(line) for line in bars) <= 80, bars
    assert "\x1b[2K" in text and "100%" in text and "done" in text
    assert "download: " not in text  # no log lines on a terminal


def test_files_download_at_the_same_time(hub, env):
    hub.delay_s = 0.3  # one file after the other would never overlap two requests
    code, out, err = sable(env, "download", REPO)
    assert code == 0, err
    assert hub.max_in_flight >= 4, hub.max_in_flight  # the 4 small files of the first round


def test_cached_model_is_used_with_no_request(hub, env):
    assert sable(env, "download", REPO)[0] == 0
    code, local_out, err = generate(env, MODEL_DIR)
    assert code == 0, err
    hub.clear()
    code, out, err = generate(env)
    assert code == 0, err
    assert hub.requests == []
    assert out == local_out  # the same checkpoint, the same greedy text


def test_generate_downloads_what_is_missing(hub, env):
    code, out, err = generate(env)
    assert code == 0, err
    assert hub.count("/cdn/") == 1
    # One shard gone from the cache: only that file is fetched again.
    os.remove(os.path.join(repo_dir(env), "blobs", WEIGHTS_SHA))
    hub.clear()
    code, out, err = generate(env)
    assert code == 0, err
    paths = [p for _, p, _ in hub.requests]
    assert paths[0] == f"/api/models/{REPO}/revision/main"
    assert all("tokenizer.json" not in p for p in paths), paths
    assert hub.count("/cdn/") == 1


def test_dropped_connection_resumes_with_a_range_request(hub, env):
    hub.drop_once.add("model.safetensors")
    code, out, err = sable(env, "download", REPO)
    assert code == 0, err
    cdn = [h for m, p, h in hub.requests if p.startswith("/cdn/")]
    assert len(cdn) == 2
    assert "Range" not in cdn[0]
    assert cdn[1]["Range"].startswith("bytes=") and cdn[1]["Range"] != "bytes=0-"
    assert sha256(os.path.join(repo_dir(env), "blobs", WEIGHTS_SHA)) == WEIGHTS_SHA


def test_partial_blob_of_an_earlier_run_is_continued(hub, env):
    data = open(os.path.join(MODEL_DIR, "model.safetensors"), "rb").read()
    blobs = os.path.join(repo_dir(env), "blobs")
    os.makedirs(blobs)
    with open(os.path.join(blobs, WEIGHTS_SHA + ".incomplete"), "wb") as f:
        f.write(data[:1000])
    code, out, err = sable(env, "download", REPO)
    assert code == 0, err
    ranges = [h.get("Range") for m, p, h in hub.requests if p.startswith("/cdn/")]
    assert ranges == ["bytes=1000-"]
    assert sha256(os.path.join(blobs, WEIGHTS_SHA)) == WEIGHTS_SHA


def test_corrupted_blob_is_refused_and_removed(hub, env):
    hub.corrupt.add("model.safetensors")
    code, out, err = sable(env, "download", REPO)
    assert code != 0
    assert "checksum mismatch" in err and "model.safetensors" in err and REPO in err, err
    blobs = os.listdir(os.path.join(repo_dir(env), "blobs"))
    assert not [b for b in blobs if b.startswith(WEIGHTS_SHA)], blobs
    assert not os.path.exists(os.path.join(repo_dir(env), "refs", "main"))
    env["HF_HUB_OFFLINE"] = "1"  # nothing half-made is usable
    code, out, err = generate(env)
    assert code != 0 and "HF_HUB_OFFLINE=1" in err, err
    code, out, err = generate(env, REPO, "--revision", COMMIT)  # the partly filled snapshot
    assert code != 0 and "lacks model.safetensors" in err, err


def test_offline_mode_uses_the_cache_only(hub, env):
    env["HF_HUB_OFFLINE"] = "1"
    code, out, err = generate(env)
    assert code != 0
    assert "HF_HUB_OFFLINE=1" in err and REPO in err, err
    assert hub.requests == []
    del env["HF_HUB_OFFLINE"]
    assert sable(env, "download", REPO)[0] == 0
    env["HF_HUB_OFFLINE"] = "1"
    hub.clear()
    code, out, err = generate(env)
    assert code == 0, err
    assert hub.requests == []


def test_private_repo_needs_a_token(hub, env, tmp_path):
    code, out, err = sable(env, "download", PRIVATE)
    assert code != 0
    assert "401" in err and "HF_TOKEN" in err and PRIVATE in err, err
    code, out, err = sable({**env, "HF_TOKEN": "hf_wrong"}, "download", PRIVATE)
    assert code != 0 and "refused" in err, err
    # The token file `huggingface-cli login` writes.
    os.makedirs(env["HF_HOME"], exist_ok=True)
    with open(os.path.join(env["HF_HOME"], "token"), "w") as f:
        f.write("hf_secret\n")
    hub.clear()
    code, out, err = sable(env, "download", PRIVATE)
    assert code == 0, err
    api = [h for m, p, h in hub.requests if not p.startswith("/cdn/")]
    assert api and all(h.get("Authorization") == "Bearer hf_secret" for h in api)
    cdn = [h for m, p, h in hub.requests if p.startswith("/cdn/")]
    assert cdn and all("Authorization" not in h for h in cdn)  # another origin


def test_not_found_names_repo_revision_or_file(hub, env):
    code, out, err = sable(env, "download", "sable-test/nothing-here")
    assert code != 0 and "sable-test/nothing-here" in err and "no such repo" in err, err
    code, out, err = sable(env, "download", REPO, "--revision", "v9")
    assert code != 0 and "no revision v9" in err, err
    code, out, err = generate(env, "./not/a/folder")
    assert code != 0 and "no such file or folder" in err, err


def test_index_shard_missing_from_repo_is_reported(hub, env, tmp_path):
    folder = tmp_path / "sharded"
    folder.mkdir()
    for name in FILES:
        (folder / name).write_bytes(open(os.path.join(MODEL_DIR, name), "rb").read())
    (folder / "model.safetensors.index.json").write_text(
        '{"weight_map": {"a": "model-00001-of-00002.safetensors"}}')
    hub.add_repo("sable-test/broken", str(folder), commit="b" * 40)
    code, out, err = sable(env, "download", "sable-test/broken")
    assert code != 0 and "model-00001-of-00002.safetensors" in err, err


def test_unreachable_hub_suggests_offline_mode(env):
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"
    code, out, err = sable(env, "download", REPO)
    assert code != 0 and "cannot reach" in err and "HF_HUB_OFFLINE=1" in err, err


def test_proxy_from_the_environment_is_used(hub, env):
    for k in ("no_proxy", "NO_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(k, None)
    env["HF_ENDPOINT"] = "http://hub.sable-test.invalid"  # resolvable only by the proxy
    env["http_proxy"] = hub.url
    code, out, err = sable(env, "download", REPO)
    assert code == 0, err
    assert "hub.sable-test.invalid" in hub.proxied
    assert sha256(os.path.join(repo_dir(env), "blobs", WEIGHTS_SHA)) == WEIGHTS_SHA


def python_hf(env, code):
    """Runs `code` with huggingface_hub in a fresh interpreter (it reads the environment at import)."""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_cache_written_by_huggingface_hub_is_reused_with_no_request(hub, env):
    pytest.importorskip("huggingface_hub")
    snap = python_hf(env, f"import huggingface_hub as h; print(h.snapshot_download({REPO!r}, "
                          f"allow_patterns={FILES!r}))")
    assert snap.endswith(COMMIT)
    hub.clear()
    code, out, err = generate(env)
    assert code == 0, err
    assert hub.requests == []


def test_cache_written_by_sable_is_read_by_huggingface_hub(hub, env):
    pytest.importorskip("huggingface_hub")
    assert sable(env, "download", REPO)[0] == 0
    hub.clear()
    env["HF_HUB_OFFLINE"] = "1"
    out = python_hf(env, "import huggingface_hub as h\n"
                         f"print(h.try_to_load_from_cache({REPO!r}, 'model.safetensors'))\n"
                         f"print(h.snapshot_download({REPO!r}, local_files_only=True))")
    cached, snap = out.splitlines()
    assert cached == os.path.join(repo_dir(env), "snapshots", COMMIT, "model.safetensors")
    assert snap == os.path.join(repo_dir(env), "snapshots", COMMIT)
    assert hub.requests == []


def test_tokenizer_path_fetches_only_the_tokenizer(hub, env):
    code, out, err = sable(env, "generate", "--model-path", MODEL_DIR, "--tokenizer-path", REPO,
                           "--device", "cpu", "--prompt", "Hello", "--max-new-tokens", "2")
    assert code == 0, err
    assert hub.count("/cdn/") == 0  # no weights
    snap = os.path.join(repo_dir(env), "snapshots", COMMIT)
    assert os.path.isfile(os.path.join(snap, "tokenizer.json"))
    assert not os.path.exists(os.path.join(snap, "model.safetensors"))


def test_serve_by_hub_id_reports_the_id(hub, env):
    from conftest import Server
    import requests
    assert sable(env, "download", REPO)[0] == 0
    hub.clear()
    s = Server(model_dir=REPO, model_name=REPO, env=env)
    try:
        models = requests.get(s.url + "/v1/models", timeout=10).json()
        assert [m["id"] for m in models["data"]] == [REPO]
        r = requests.post(s.url + "/v1/chat/completions", timeout=60, json={
            "model": REPO, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
        assert r.status_code == 200, r.text
    finally:
        assert s.stop() == 0
    assert hub.requests == []
