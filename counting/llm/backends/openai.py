"""`openai`: any OpenAI-compatible HTTP endpoint (vLLM, llama.cpp server, Ollama, a hosted API),
through `httpx` (the `llm` extra): one client with a pool of `concurrency` kept-alive
connections, shared by the worker threads.

Chat form: POST {base_url}/chat/completions; completion form: POST {base_url}/completions.
Temperature 0, `concurrency` requests in flight, each with a timeout. A refused connection, a
timeout, 408, 409, 429 or 5xx is retried `retries` times: after the server's Retry-After
(seconds or an HTTP date) where it sends one, else after backoff_s * 2**r; a Retry-After
longer than `max_wait_s` ends the run with one line instead of a long sleep. The API key is
read from the environment variable named by `api_key_env`, never from a config, and never
logged."""

from __future__ import annotations

import email.utils
import json
import os
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

import httpx

from counting.llm import templates
from counting.llm.backends import BackendError, Done

RETRY_STATUS = (408, 409, 429, 500, 502, 503, 504)


def retry_after(response: httpx.Response, now: float | None = None) -> float | None:
    """The wait a response asks for (Retry-After: seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class OpenAIBackend:
    tokenizer = None  # the server tokenizes; no single-token check here

    def __init__(self, cfg):
        self.cfg = cfg
        self.base_url = cfg.base_url.rstrip("/")
        headers = {"Content-Type": "application/json"}
        if cfg.api_key_env:
            key = os.environ.get(cfg.api_key_env)
            if not key:
                raise BackendError(f"backend.api_key_env: the environment variable {cfg.api_key_env} is not set "
                                   "(export the key, or set backend.api_key_env=null for a server without keys)")
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.Client(headers=headers, timeout=cfg.timeout_s, trust_env=False,
                                   limits=httpx.Limits(max_connections=cfg.concurrency,
                                                       max_keepalive_connections=cfg.concurrency))
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
        problem, tries = "", 0
        for attempt in range(self.cfg.retries + 1):
            if self.stop.is_set():
                raise BackendError("stopped after another request failed")
            tries, asked = attempt + 1, None
            try:
                response = self.client.post(url, content=json.dumps(body).encode())
                if response.status_code < 400:
                    return response.json()
                problem = f"HTTP {response.status_code} {response.reason_phrase}{said(response)}"
                if response.status_code not in RETRY_STATUS:
                    break
                asked = retry_after(response)
            except httpx.TimeoutException:
                problem = f"no answer within backend.timeout_s={self.cfg.timeout_s:g} s"
            except httpx.ConnectError as err:
                problem = "connection refused" if refused(err) else f"cannot connect: {one_line(err)}"
            except (httpx.TransportError, json.JSONDecodeError) as err:
                problem = f"{type(err).__name__}: {one_line(err)}"
            if attempt == self.cfg.retries:
                break
            if asked is not None and asked > self.cfg.max_wait_s:
                raise BackendError(f"backend.base_url: {url}: {problem}, and the server asks to wait {asked:g} s "
                                   f"(Retry-After), more than backend.max_wait_s={self.cfg.max_wait_s:g}")
            if self.stop.wait(asked if asked is not None else self.cfg.backoff_s * 2 ** attempt):
                raise BackendError("stopped after another request failed")
        raise BackendError(f"backend.base_url: {url}: {problem} (after {tries} tr{'y' if tries == 1 else 'ies'})")

    def generate(self, requests: list[dict], max_new_tokens: int, done: Done) -> None:
        """Every request, `concurrency` at a time; on a failure, those queued are dropped, those
        in flight finish (and are handed to `done`), then the first error is raised."""
        def one(i: int) -> None:
            began = time.perf_counter()
            path, body = self.body(requests[i], max_new_tokens)
            reply = self.post(path, body)
            try:
                choice = reply["choices"][0]
                text = choice["message"]["content"] if "message" in choice else choice["text"]
            except (KeyError, IndexError, TypeError):
                raise BackendError(f"backend.base_url: {self.base_url}{path}: a reply without choices") from None
            done(i, {"text": text or "", "seconds": time.perf_counter() - began})

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


def refused(err: Exception) -> bool:
    """Whether a connect error was a refused connection (somewhere in its causes)."""
    while err is not None:
        if isinstance(err, ConnectionRefusedError) or "refused" in str(err).lower():
            return True
        err = err.__cause__ or err.__context__
    return False


def one_line(err: Exception) -> str:
    return " ".join(str(err).split())[:160] or type(err).__name__


def said(response: httpx.Response) -> str:
    """The server's own error message, on one line and short (', model not found')."""
    body = response.text
    try:
        message = json.loads(body).get("error", body) if body.lstrip().startswith("{") else body
        message = message.get("message", message) if isinstance(message, dict) else message
    except (ValueError, AttributeError):
        message = body
    text = " ".join(str(message).split())[:160]
    return f": {text}" if text else ""
