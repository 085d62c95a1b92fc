"""A Hugging Face Hub stand-in on loopback for the model-download tests.

It speaks the parts of the Hub's HTTP API that Sable and huggingface_hub use:
  GET  /api/models/ORG/NAME/revision/REV    {"id", "sha", "siblings": [{"rfilename"}]}
  GET  /api/models/ORG/NAME/tree/REV[/DIR]  the recursive file list (huggingface_hub's snapshot_download)
  HEAD|GET /ORG/NAME/resolve/REV/FILE       small files: 200 with ETag = git blob id; LFS files
                                            (*.safetensors): 302 to the CDN with X-Linked-Etag =
                                            sha256 and X-Linked-Size; X-Repo-Commit on both
  GET  /cdn/SHA256 (a second port: another origin, as the real CDN)   honours Range: bytes=N-
Errors carry X-Error-Code like the Hub: 404 RepoNotFound / RevisionNotFound / EntryNotFound, and
401 for a private repo without the right Bearer token. Knobs: `drop_once` (filenames whose next
CDN download is cut halfway), `corrupt` (filenames served with one byte changed), `delay_s` (a
pause before each answer; `max_in_flight` then shows how many requests overlapped).
Every request is recorded in `requests` as (method, path, headers). The API port also works as an
HTTP proxy (absolute-form requests), recording the hosts asked for in `proxied`.
"""
import hashlib
import http.server
import json
import os
import threading
import time
import urllib.parse


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs(name):
    return name.endswith(".safetensors")


class Repo:
    def __init__(self, files, commit, private=False):
        self.files = files  # name -> bytes
        self.commit = commit
        self.private = private


class MockHub:
    def __init__(self, token=None):
        self.repos = {}
        self.token = token
        self.requests = []
        self.proxied = []  # hosts of requests that came to us as a proxy
        self.delay_s = 0.0  # each request waits this long first (makes overlap observable)
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests served at once
        self.drop_once = set()
        self.corrupt = set()
        self.lock = threading.Lock()
        self.blobs = {}  # sha256 -> (name, bytes)
        self.api = self._serve()
        self.cdn = self._serve()
        self.url = f"http://127.0.0.1:{self.api.server_address[1]}"
        self.cdn_url = f"http://127.0.0.1:{self.cdn.server_address[1]}"

    def add_repo(self, repo_id, folder, commit="a" * 40, private=False, names=None):
        files = {}
        for name in names or sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), "rb") as f:
                files[name] = f.read()
        self.repos[repo_id] = Repo(files, commit, private)
        for name, data in files.items():
            if is_lfs(name):
                self.blobs[hashlib.sha256(data).hexdigest()] = (name, data)

    def count(self, prefix=""):
        with self.lock:
            return sum(1 for _, path, _ in self.requests if path.startswith(prefix))

    def clear(self):
        with self.lock:
            self.requests.clear()

    def close(self):
        for s in (self.api, self.cdn):
            s.shutdown()
            s.server_close()

    def _serve(self):
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                hub._handle(self, head=True)

            def do_GET(self):
                hub._handle(self, head=False)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    # --- request handling -----------------------------------------------------------------
    def _reply(self, h, status, headers=None, body=b"", head=False):
        h.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        if not head and body:
            h.wfile.write(body)

    def _error(self, h, status, code, message, head):
        body = json.dumps({"error": message}).encode()
        self._reply(h, status, {"X-Error-Code": code, "X-Error-Message": message,
                                "Content-Type": "application/json"}, body, head)

    def _repo(self, h, repo_id, head):
        repo = self.repos.get(repo_id)
        if repo is None:
            self._error(h, 404, "RepoNotFound", "Repository not found", head)
            return None
        if repo.private and h.headers.get("Authorization") != f"Bearer {self.token}":
            self._error(h, 401, "RepoNotFound", "Invalid username or password.", head)
            return None
        return repo

    def _commit(self, h, repo, revision, head):
        if revision in ("main", repo.commit):
            return repo.commit
        self._error(h, 404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
        return None

    def _handle(self, h, head):
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            return self._route(h, head)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _route(self, h, head):
        # An absolute-form target ("GET http://host/path") is a request sent to us as a proxy.
        parsed = urllib.parse.urlsplit(h.path)
        path = urllib.parse.unquote(parsed.path)
        with self.lock:
            self.requests.append((h.command, path, dict(h.headers)))
            if parsed.scheme:
                self.proxied.append(parsed.netloc)
        parts = path.strip("/").split("/")
        if parts[0] == "cdn" and len(parts) == 2:
            return self._cdn(h, parts[1], head)
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] in ("revision", "tree"):
            repo = self._repo(h, "/".join(parts[2:4]), head)
            commit = repo and self._commit(h, repo, parts[5], head)
            if commit and parts[4] == "revision":
                body = {"id": "/".join(parts[2:4]), "modelId": "/".join(parts[2:4]), "sha": commit,
                        "private": repo.private, "siblings": [{"rfilename": n} for n in repo.files]}
                return self._reply(h, 200, {"Content-Type": "application/json"},
                                   json.dumps(body).encode(), head)
            if commit:
                return self._reply(h, 200, {"Content-Type": "application/json"},
                                   json.dumps(self._tree(repo)).encode(), head)
            return None
        if len(parts) >= 5 and parts[2] == "resolve":
            repo = self._repo(h, "/".join(parts[:2]), head)
            commit = repo and self._commit(h, repo, parts[3], head)
            if commit:
                return self._resolve(h, repo, commit, "/".join(parts[4:]), head)
            return None
        return self._error(h, 404, "NotFound", f"no route {path}", head)

    def _tree(self, repo):
        out = []
        for name, data in repo.files.items():
            entry = {"type": "file", "oid": git_blob_id(data), "size": len(data), "path": name}
            if is_lfs(name):
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                                "pointerSize": 134}
            out.append(entry)
        return out

    def _resolve(self, h, repo, commit, name, head):
        data = repo.files.get(name)
        if data is None:
            return self._error(h, 404, "EntryNotFound", f"{name} does not exist", head)
        if is_lfs(name):
            sha = hashlib.sha256(data).hexdigest()
            return self._reply(h, 302, {"Location": f"{self.cdn_url}/cdn/{sha}",
                                        "X-Repo-Commit": commit, "X-Linked-Etag": f'"{sha}"',
                                        "X-Linked-Size": str(len(data)),
                                        "ETag": f'"{git_blob_id(b"pointer " + data[:16])}"'},
                               b"", head)
        return self._reply(h, 200, {"X-Repo-Commit": commit, "ETag": f'"{git_blob_id(data)}"',
                                    "Content-Type": "application/octet-stream"}, data, head)

    def _cdn(self, h, sha, head):
        if sha not in self.blobs:
            return self._reply(h, 404, {}, b"no such object", head)
        name, data = self.blobs[sha]
        if name in self.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        rng = h.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[len("bytes="):-1])
        if start >= len(data) and len(data) > 0:
            return self._reply(h, 416, {"Content-Range": f"bytes */{len(data)}"}, b"", head)
        body = data[start:]
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        status = 200
        if rng:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        if head:
            return self._reply(h, status, {**headers, "Content-Length": str(len(body))}, b"", True)
        if name in self.drop_once:
            self.drop_once.discard(name)
            h.send_response(status)
            for k, v in {**headers, "Content-Length": str(len(body))}.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)
            return None
        return self._reply(h, status, headers, body)
