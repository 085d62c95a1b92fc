"""The soak test's clients (soak.py): one scenario per kind of request a real client sends or a bad
one misbehaves with, each checking that the answer keeps what its parameters promise, and the
tally of what happened (sent, outcomes, errors by kind with one example each)."""
import asyncio
import collections
import json
import random
import re
import time

import aiohttp

WORDS = ("the quick brown fox jumps over a lazy dog while seven small robots count prime numbers "
         "under the pale moon and rivers of data flow into distant servers").split()
REGEX = "[a-z]{2,6}( [a-z]{2,6}){0,3}"
SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8},
                                           "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}
STOP = ["the", " a", "e"]


class Tally:
    """What happened: requests sent, how each ended, errors by kind (with one example each)."""

    def __init__(self):
        self.sent = collections.Counter()
        self.outcome = collections.Counter()
        self.errors = collections.Counter()
        self.examples = {}

    def error(self, scenario, kind, detail):
        key = f"{scenario}: {kind}"
        self.errors[key] += 1
        self.examples.setdefault(key, str(detail)[:400])


def prompt_text(rng, words):
    return " ".join(rng.choice(WORDS) for _ in range(words))


def sampling(rng, max_new):
    sp = {"max_new_tokens": max_new, "temperature": rng.choice([0, 0.7, 1.0])}
    if rng.random() < 0.3:
        sp["ignore_eos"] = True
    return sp


def check_text(sp, text, finish):
    """What the parameters promise about the output text; None when it holds."""
    if not isinstance(text, str):
        return f"text is {type(text).__name__}"
    for s in sp.get("stop", []):
        if s in text:
            return f"stop string {s!r} left in {text!r}"
    # A stop string may cut a grammar's output short: only an output that ended by the grammar
    # (finish "stop" without stop strings) must match it whole.
    finished = finish == "stop" and not sp.get("stop")
    if "regex" in sp and finished and not re.fullmatch(sp["regex"], text):
        return f"{text!r} does not match {sp['regex']!r}"
    if "json_schema" in sp and finished:
        try:
            obj = json.loads(text)
        except ValueError:
            return f"not JSON: {text!r}"
        if set(obj) != {"name", "age"} or not isinstance(obj["age"], int):
            return f"breaks the schema: {text!r}"
    return None


async def read_sse(resp, on_event=None):
    """The data: payloads of an SSE response; on_event(i) may return True to stop reading."""
    events = []
    async for raw in resp.content:
        line = raw.strip()
        if not line.startswith(b"data: "):
            continue
        events.append(line[6:].decode())
        if on_event and on_event(len(events)):
            break
    return events


class Soak:
    def __init__(self, args, url, tally):
        self.args, self.url, self.t = args, url, tally
        self.context = 4096
        self.model = "default"

    # --- scenarios: each sends one request (or one n>1 request) and checks its answer ---

    async def native(self, http, rng, stream, grammar=False, stop=False, n=1, long=False):
        name = "native" + ("_stream" if stream else "") + ("_grammar" if grammar else "") + \
               ("_stop" if stop else "") + ("_n" if n > 1 else "") + ("_long" if long else "")
        sp = sampling(rng, rng.randint(1, 24))
        if grammar:
            sp.pop("ignore_eos", None)
            if rng.random() < 0.5:
                sp["regex"] = REGEX
            else:
                sp["json_schema"] = json.dumps(SCHEMA)
                sp["max_new_tokens"] = 64
        if stop:
            sp["stop"] = rng.sample(STOP, 2)
        if n > 1:
            sp["n"] = n
            sp["temperature"] = 0.8
        words = (self.context - 80) // 2 if long else rng.randint(1, 40)
        body = {"text": prompt_text(rng, words), "sampling_params": sp, "stream": stream}
        self.t.sent[name] += 1
        async with http.post(self.url + "/generate", json=body) as r:
            if r.status != 200:
                return self.t.error(name, f"http {r.status}", await r.text())
            if not stream:
                out = await r.json()
                outs = out if isinstance(out, list) else [out]
                if len(outs) != n:
                    return self.t.error(name, "wrong n", f"{len(outs)} outputs for n={n}")
                for o in outs:
                    finish = o["meta_info"]["finish_reason"]["type"]
                    if finish not in ("stop", "length"):
                        return self.t.error(name, f"finish {finish}", o["meta_info"])
                    if (bad := check_text(sp, o["text"], finish)):
                        return self.t.error(name, "broken promise", bad)
                self.t.outcome["completed"] += 1
                return
            events = await read_sse(r)
        if not events or events[-1] != "[DONE]":
            return self.t.error(name, "stream without [DONE]", events[-3:])
        last = {}
        for e in events[:-1]:
            chunk = json.loads(e)
            if "error" in chunk:
                return self.t.error(name, "stream error", chunk)
            last[chunk.get("index", 0)] = chunk
        if len(last) != n:
            return self.t.error(name, "wrong n", f"{len(last)} streams for n={n}")
        for chunk in last.values():
            finish = (chunk["meta_info"].get("finish_reason") or {}).get("type")
            if finish not in ("stop", "length"):
                return self.t.error(name, f"finish {finish}", chunk["meta_info"])
            if (bad := check_text(sp, chunk["text"], finish)):
                return self.t.error(name, "broken promise", bad)
        self.t.outcome["completed"] += 1

    async def native_abort(self, http, rng):
        """Streams, then aborts its own request through /abort_request after a few chunks."""
        name = "native_abort"
        rid = f"soak-{rng.getrandbits(48):x}"
        body = {"text": prompt_text(rng, 8), "rid": rid, "stream": True,
                "sampling_params": {"max_new_tokens": 400, "ignore_eos": True, "temperature": 0}}
        after = rng.randint(1, 6)
        self.t.sent[name] += 1
        async with http.post(self.url + "/generate", json=body) as r:
            if r.status != 200:
                return self.t.error(name, f"http {r.status}", await r.text())
            events = []
            async for raw in r.content:
                line = raw.strip()
                if not line.startswith(b"data: "):
                    continue
                events.append(line[6:].decode())
                if len(events) == after:
                    async with http.post(self.url + "/abort_request", json={"rid": rid}) as a:
                        if a.status != 200:
                            return self.t.error(name, f"abort http {a.status}", await a.text())
        if not events or events[-1] != "[DONE]":
            return self.t.error(name, "stream without [DONE]", events[-3:])
        finish = (json.loads(events[-2])["meta_info"].get("finish_reason") or {}).get("type")
        if finish == "abort":
            self.t.outcome["aborted"] += 1
        elif finish == "length":
            self.t.outcome["completed"] += 1  # it finished before the abort arrived
        else:
            self.t.error(name, f"finish {finish}", events[-2])

    async def disconnect(self, http, rng):
        """Streams on either API and drops the connection after a few chunks."""
        openai = rng.random() < 0.5
        name = "disconnect_" + ("openai" if openai else "native")
        if openai:
            path, body = "/v1/chat/completions", {
                "model": self.model, "stream": True, "max_tokens": 400,
                "messages": [{"role": "user", "content": prompt_text(rng, 10)}]}
        else:
            path, body = "/generate", {"text": prompt_text(rng, 10), "stream": True,
                                       "sampling_params": {"max_new_tokens": 400, "ignore_eos": True}}
        self.t.sent[name] += 1
        r = await http.post(self.url + path, json=body)
        if r.status != 200:
            self.t.error(name, f"http {r.status}", await r.text())
            r.close()
            return
        await read_sse(r, on_event=lambda i, k=rng.randint(1, 5): i >= k)
        r.close()  # closes the connection itself, mid-stream
        self.t.outcome["disconnected"] += 1

    async def openai(self, http, rng, chat, stream, n=1, grammar=False, stop=False):
        name = ("chat" if chat else "completions") + ("_stream" if stream else "") + \
               ("_n" if n > 1 else "") + ("_grammar" if grammar else "") + ("_stop" if stop else "")
        body = {"model": self.model, "max_tokens": rng.randint(1, 24), "stream": stream,
                "temperature": rng.choice([0, 0.8])}
        sp = {}
        if n > 1:
            body["n"] = n
        if stop:
            body["stop"] = sp["stop"] = rng.sample(STOP, 2)
        if chat:
            body["messages"] = [{"role": "user", "content": prompt_text(rng, rng.randint(1, 30))}]
            if grammar:
                body["response_format"] = {"type": "json_schema",
                                           "json_schema": {"name": "p", "schema": SCHEMA}}
                body["max_tokens"] = 64
                sp["json_schema"] = True
        else:
            body["prompt"] = prompt_text(rng, rng.randint(1, 30))
            if grammar:
                body["regex"] = sp["regex"] = REGEX
        if stream:
            body["stream_options"] = {"include_usage": True}
        path = "/v1/chat/completions" if chat else "/v1/completions"
        self.t.sent[name] += 1
        async with http.post(self.url + path, json=body) as r:
            if r.status != 200:
                return self.t.error(name, f"http {r.status}", await r.text())
            if not stream:
                out = await r.json()
                choices = out["choices"]
                texts = {c["index"]: (c["message"]["content"] if chat else c["text"]) for c in choices}
                finishes = {c["index"]: c["finish_reason"] for c in choices}
            else:
                events = await read_sse(r)
                if not events or events[-1] != "[DONE]":
                    return self.t.error(name, "stream without [DONE]", events[-3:])
                texts, finishes = collections.defaultdict(str), {}
                usage = None
                for e in events[:-1]:
                    chunk = json.loads(e)
                    if "error" in chunk:
                        return self.t.error(name, "stream error", chunk)
                    usage = chunk.get("usage") or usage
                    for c in chunk["choices"]:
                        piece = c["delta"].get("content") if chat else c["text"]
                        texts[c["index"]] += piece or ""
                        if c.get("finish_reason"):
                            finishes[c["index"]] = c["finish_reason"]
                if usage is None:
                    return self.t.error(name, "no usage chunk", events[-3:])
        if len(finishes) != n:
            return self.t.error(name, "wrong n", f"{len(finishes)} finished choices for n={n}")
        for i, finish in finishes.items():
            if finish not in ("stop", "length"):
                return self.t.error(name, f"finish {finish}", finishes)
            if (bad := check_text(sp, texts[i], finish)):
                return self.t.error(name, "broken promise", bad)
        self.t.outcome["completed"] += 1

    async def refused(self, http, rng):
        """Input that must be refused with 400 naming the field."""
        name = "refused"
        path, body, field = rng.choice([
            ("/generate", {"text": "a", "sampling_params": {"temperature": -1}}, "temperature"),
            ("/generate", {"text": "a", "sampling_params": {"regex": "("}}, "regex"),
            ("/v1/completions", {"model": self.model, "prompt": "a", "n": 0}, "n"),
            ("/v1/chat/completions", {"model": self.model, "messages": []}, "messages"),
            ("/generate", {"input_ids": [9707] * (self.context + 5)}, "input_ids"),
        ])
        self.t.sent[name] += 1
        async with http.post(self.url + path, json=body) as r:
            text = await r.text()
            if r.status != 400 or field not in text:
                return self.t.error(name, f"http {r.status} (400 naming {field} expected)", text)
        self.t.outcome["refused"] += 1

    async def one(self, http, rng):
        pick = rng.random()
        if pick < 0.14:
            await self.native(http, rng, stream=False, n=rng.choice([1, 1, 2, 3]))
        elif pick < 0.28:
            await self.native(http, rng, stream=True, n=rng.choice([1, 1, 2]))
        elif pick < 0.36:
            await self.native(http, rng, stream=rng.random() < 0.5, grammar=True)
        elif pick < 0.42:
            await self.native(http, rng, stream=rng.random() < 0.5, stop=True)
        elif pick < 0.46:
            await self.native(http, rng, stream=rng.random() < 0.5, long=True)
        elif pick < 0.52:
            await self.native_abort(http, rng)
        elif pick < 0.60:
            await self.disconnect(http, rng)
        elif pick < 0.72:
            await self.openai(http, rng, chat=False, stream=rng.random() < 0.5,
                              n=rng.choice([1, 1, 2]), grammar=rng.random() < 0.2,
                              stop=rng.random() < 0.3)
        elif pick < 0.95:
            await self.openai(http, rng, chat=True, stream=rng.random() < 0.5,
                              n=rng.choice([1, 1, 2]), grammar=rng.random() < 0.25,
                              stop=rng.random() < 0.3)
        else:
            await self.refused(http, rng)

    async def client(self, idx, deadline):
        rng = random.Random(self.args.seed * 1000 + idx)
        timeout = aiohttp.ClientTimeout(total=self.args.request_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while time.monotonic() < deadline:
                try:
                    await self.one(http, rng)
                except asyncio.TimeoutError:
                    self.t.error("client", "timeout", f"no answer in {self.args.request_timeout} s")
                except aiohttp.ClientError as e:
                    self.t.error("client", type(e).__name__, e)
                except (ValueError, KeyError, TypeError) as e:
                    self.t.error("client", "malformed answer", repr(e))
