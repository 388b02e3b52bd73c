"""The openai backend's HTTP client (httpx) against a scripted server on 127.0.0.1: retries
that honour Retry-After (seconds and HTTP dates), a Retry-After too long to wait for as one
line, and one kept-alive connection reused across requests."""

import email.utils
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

httpx = pytest.importorskip("httpx")

from counting.llm.backends import BackendError
from counting.llm.backends.openai import OpenAIBackend, retry_after
from counting.llm.config import OpenAIConfig


class Scripted:
    """Answers each POST with the next scripted (status, headers) and then 200s; records when
    each request arrived and from which client port."""

    def __init__(self, script):
        self.script, self.arrivals, self.ports, self.lock = list(script), [], [], threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so that a pooled client reuses its connection

            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                with server.lock:
                    server.arrivals.append(time.monotonic())
                    server.ports.append(self.client_address[1])
                    status, headers = server.script.pop(0) if server.script else (200, {})
                body = {"choices": [{"message": {"content": "3"}}]} if status == 200 else {"error": "busy"}
                data = json.dumps(body).encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(*script):
        servers.append(Scripted(script))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def backend(url, **kw):
    return OpenAIBackend(OpenAIConfig(model="m", base_url=url, api_key_env=None, backoff_s=0.0, timeout_s=10, **kw))


def ask(b, k=1):
    got = {}
    b.generate([{"form": "chat", "prompt": f"q{i}", "reasoning": False} for i in range(k)], 4,
               lambda i, a: got.__setitem__(i, a["text"]))
    return [got[i] for i in range(k)]


def test_retry_after_in_seconds_is_waited_for(serve):
    s = serve((429, {"Retry-After": "1"}))
    assert ask(backend(s.url, retries=2)) == ["3"]
    assert len(s.arrivals) == 2 and 0.9 <= s.arrivals[1] - s.arrivals[0] < 3  # backoff_s = 0: the wait is the server's


def test_retry_after_as_an_http_date_is_waited_for(serve):
    when = email.utils.formatdate(time.time() + 2, usegmt=True)  # whole seconds: a wait of 1 to 2 s
    s = serve((503, {"Retry-After": when}))
    assert ask(backend(s.url, retries=1)) == ["3"]
    assert 0.9 <= s.arrivals[1] - s.arrivals[0] < 3.5


def test_without_retry_after_the_backoff_applies(serve):
    s = serve((503, {}), (503, {}))
    began = time.monotonic()
    b = OpenAIBackend(OpenAIConfig(model="m", base_url=s.url, api_key_env=None, backoff_s=0.2, retries=2))
    assert ask(b) == ["3"] and len(s.arrivals) == 3
    assert s.arrivals[1] - s.arrivals[0] >= 0.18 and s.arrivals[2] - s.arrivals[1] >= 0.38  # 0.2 s, then 0.4 s
    assert time.monotonic() - began < 5


def test_a_retry_after_beyond_max_wait_is_one_line(serve):
    s = serve((429, {"Retry-After": "3600"}))
    began = time.monotonic()
    with pytest.raises(BackendError) as err:
        ask(backend(s.url, retries=3, max_wait_s=5))
    message = str(err.value)
    assert time.monotonic() - began < 3 and "\n" not in message and len(s.arrivals) == 1
    assert "HTTP 429" in message and "asks to wait 3600 s (Retry-After), more than backend.max_wait_s=5" in message


def test_a_refusal_that_is_not_retried(serve):
    s = serve((400, {}))
    with pytest.raises(BackendError, match=r"HTTP 400 Bad Request: busy \(after 1 try\)$"):
        ask(backend(s.url, retries=3))
    assert len(s.arrivals) == 1


def test_one_pooled_connection_serves_every_request(serve):
    s = serve()
    assert ask(backend(s.url, concurrency=1), k=6) == ["3"] * 6
    assert len(s.ports) == 6 and len(set(s.ports)) == 1


@pytest.mark.parametrize("value, expect", [("7", 7.0), ("", None), ("soon", None),
                                           ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)])
def test_retry_after_parsing(value, expect):
    response = httpx.Response(429, headers={"Retry-After": value} if value else {})
    assert retry_after(response) == expect
    if value.endswith("GMT"):  # a date in the future: the seconds until then
        assert retry_after(response, now=email.utils.parsedate_to_datetime(value).timestamp() - 30) == 30.0
