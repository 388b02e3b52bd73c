"""`openai`: any OpenAI-compatible HTTP endpoint (vLLM, llama.cpp server, Ollama, a hosted API),
through the standard library only.

Chat form: POST {base_url}/chat/completions; completion form: POST {base_url}/completions.
Temperature 0, `concurrency` requests in flight, each with a timeout; a refused connection, a
timeout, 429 or 5xx is retried `retries` times with exponential backoff. The API key is read
from the environment variable named by `api_key_env`, never from a config, and never logged."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

from counting.llm import templates
from counting.llm.backends import BackendError, Done

RETRY_STATUS = (408, 409, 429, 500, 502, 503, 504)


class OpenAIBackend:
    tokenizer = None  # the server tokenizes; no single-token check here

    def __init__(self, cfg):
        self.cfg = cfg
        self.base_url = cfg.base_url.rstrip("/")
        self.key = None
        if cfg.api_key_env:
            self.key = os.environ.get(cfg.api_key_env)
            if not self.key:
                raise BackendError(f"backend.api_key_env: the environment variable {cfg.api_key_env} is not set "
                                   "(export the key, or set backend.api_key_env=null for a server without keys)")
        self.stop = threading.Event()

    def resolve_form(self, form: str) -> str:
        return "chat" if form == "auto" else form

    def render(self, request: dict) -> None:
        return None  # the server applies its own chat template

    def body(self, request: dict, max_new_tokens: int) -> tuple[str, dict]:
        common = {"model": self.cfg.model, "temperature": 0, "max_tokens": max_new_tokens}
        if request["form"] == "chat":
            return "/chat/completions", {**common, "messages": templates.chat(request["prompt"])}
        return "/completions", {**common, "prompt": templates.completion(request["prompt"], request["reasoning"])}

    def post(self, path: str, body: dict) -> dict:
        """One request with retries; BackendError (one line, no key in it) when it cannot succeed."""
        url = self.base_url + path
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        problem = ""
        for attempt in range(self.cfg.retries + 1):
            if self.stop.is_set():
                raise BackendError("stopped after another request failed")
            if attempt:
                time.sleep(self.cfg.backoff_s * 2 ** (attempt - 1))
            req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
                    return json.loads(resp.read().decode())
            except urllib.error.HTTPError as err:
                problem = f"HTTP {err.code} {err.reason}{said(err)}"
                if err.code not in RETRY_STATUS:
                    break
            except TimeoutError:
                problem = f"no answer within backend.timeout_s={self.cfg.timeout_s:g} s"
            except urllib.error.URLError as err:
                reason = err.reason
                if isinstance(reason, TimeoutError):
                    problem = f"no answer within backend.timeout_s={self.cfg.timeout_s:g} s"
                else:
                    problem = "connection refused" if isinstance(reason, ConnectionRefusedError) else str(reason)
            except (ConnectionError, json.JSONDecodeError) as err:
                problem = f"{type(err).__name__}: {err}"
        tries = attempt + 1
        raise BackendError(f"backend.base_url: {url}: {problem} (after {tries} tr{'y' if tries == 1 else 'ies'})")

    def generate(self, requests: list[dict], max_new_tokens: int, done: Done) -> None:
        """Every request, `concurrency` at a time; on a failure, those queued are dropped, those
        in flight finish (and are handed to `done`), then the first error is raised."""
        def one(i: int) -> None:
            path, body = self.body(requests[i], max_new_tokens)
            reply = self.post(path, body)
            try:
                choice = reply["choices"][0]
                text = choice["message"]["content"] if "message" in choice else choice["text"]
            except (KeyError, IndexError, TypeError):
                raise BackendError(f"backend.base_url: {self.base_url}{path}: a reply without choices") from None
            done(i, {"text": text or ""})

        self.stop.clear()
        with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
            futures = [pool.submit(one, i) for i in range(len(requests))]
            finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in finished if f.exception() is not None]
            if failed:
                self.stop.set()  # requests still queued give up; those in flight finish
                for f in futures:
                    f.cancel()
        if failed:
            raise failed[0].exception()

    def score(self, requests: list[dict], n_R: list[int], done: Done) -> None:
        raise BackendError("backend.method: loglik is not offered by backend=openai; allowed: generate")


def said(err: urllib.error.HTTPError) -> str:
    """The server's own error message, on one line and short (', model not found')."""
    try:
        body = err.read().decode(errors="replace")
        message = json.loads(body).get("error", body) if body.lstrip().startswith("{") else body
        message = message.get("message", message) if isinstance(message, dict) else message
    except (OSError, ValueError, AttributeError):
        return ""
    text = " ".join(str(message).split())[:160]
    return f": {text}" if text else ""
