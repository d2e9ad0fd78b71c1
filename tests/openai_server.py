"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests: POST /v1/chat/completions answered by a
model run through bench's transformers backend. It can inject 429s and delays, and counts requests."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.summarizers.llm import TransformersSummarizer


class ChatServer:
    def __init__(self, model_dir: str, max_new_tokens: int = 8, fail_first: int = 0, delay_s: float = 0.0):
        self.backend = TransformersSummarizer("server", model=model_dir, batch_size=1,
                                              generation={"max_new_tokens": max_new_tokens, "min_new_tokens": 2})
        self.fail_first, self.delay_s = fail_first, delay_s
        self.requests: list[dict] = []
        self.auth_headers: list[str | None] = []
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def _answer(self, messages: list[dict]) -> tuple[str, int, int]:
        tok = self.backend.load()[0]
        prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        with self._lock:  # one generation at a time, as a single-GPU server would
            text, n = self.backend._generate_batch_rendered([prompt])[0]
        return text, len(tok(prompt, add_special_tokens=False).input_ids), n

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, body: dict, headers: dict | None = None):
                blob = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(blob)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(blob)

            def do_POST(self):
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "not found"}})
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.requests.append(body)
                    server.auth_headers.append(self.headers.get("Authorization"))
                    n = len(server.requests)
                if n <= server.fail_first:
                    return self._send(429, {"error": {"message": "rate limited"}}, {"Retry-After": "0"})
                time.sleep(server.delay_s)
                text, prompt_tokens, completion_tokens = server._answer(body["messages"])
                self._send(200, {"id": f"cmpl-{n}", "object": "chat.completion", "model": body["model"],
                                 "choices": [{"index": 0, "finish_reason": "length",
                                              "message": {"role": "assistant", "content": text}}],
                                 "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                           "total_tokens": prompt_tokens + completion_tokens}})

        return Handler

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":  # python -m tests.openai_server MODEL_DIR [fail_first] [delay_s]: for kill/resume tests
    import sys

    srv = ChatServer(sys.argv[1], fail_first=int(sys.argv[2]) if len(sys.argv) > 2 else 0,
                     delay_s=float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
    print(srv.base_url, flush=True)
    srv.httpd.serve_forever()
