"""`sable generate` (offline, no server) with constrained decoding flags."""
import json
import re
import subprocess

from conftest import MODEL_DIR, sable_binary


def run(*args):
    cmd = [sable_binary(), "generate", "--model-path", MODEL_DIR, "--device", "cpu", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def test_regex_and_json_schema_file(tmp_path):
    code, out, err = run("--prompt", "Answer:", "--regex", "(yes|no)", "--temperature", "1",
                         "--max-new-tokens", "8")
    assert code == 0, err
    assert out.strip() in ("yes", "no"), out
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"ok": {"type": "boolean"}},
                                  "required": ["ok"], "additionalProperties": False}))
    code, out, err = run("--prompt", "JSON:", "--json-schema", f"@{schema}", "--temperature", "0",
                         "--max-new-tokens", "20")
    assert code == 0, err
    assert isinstance(json.loads(out.strip())["ok"], bool), out


def test_bad_regex_is_a_clear_error():
    code, out, err = run("--prompt", "x", "--regex", "(?=a)")
    assert code != 0
    assert re.search(r"regex: unsupported construct '\(\?=' at offset 0", err), err
