"""A tiny OpenAI-compatible chat server on 127.0.0.1 whose behaviour the test switches at will.

Modes (FakeOpenAI.mode):
    "ok"       streams a reply as SSE chunks, a finish_reason and [DONE]. The reply plays qa_bot's two calls:
               to a check prompt (its JSON schema asks for a "verdict") it says {"verdict": "yes"}; to a reader
               prompt it answers like a dumb reader from the numbered sentences it was sent (tests/fakes.py:
               dumb_reader), e.g. {"answer": "2014", "sentence": 1}
    "hang"     accepts the request and never answers
    "hangcheck" answers the reader as "ok" does, and hangs on the check
    "trickle"  sends headers, then an SSE comment every 0.3 s forever (defeats per-read timeouts)
    "die"      streams a few chunks in chunked encoding, then closes the socket mid-body
    "cut"      streams a few chunks (no Content-Length, no chunking), then closes: looks like a clean end
    "echo500"  answers 500 with the request headers in the body (a proxy that echoes them)
    "length"   streams the start of a reader reply that never closes its JSON, then finish_reason "length" and
               [DONE]: a reader that rambled until max_tokens (SmolLM2 does on some questions)
    "lengthshort" the same, cut where a reply cut at the stop sequence would end ('{"answer": "2014'), but by
               max_tokens, so maybe inside its answer
    "nologprobs" answers 400 Bad Request to a request that asks for logprobs, otherwise as "ok"
    "noschema" the same for a request with response_format (JSON-schema output)
    "flood"    ignores max_tokens: streams a reader reply of .flood_bytes (8.8 MB) as fast as it can, then "stop";
               .sent counts the bytes the client took before it hung up
The fault modes stream (part of) ANSWER. Requests are counted in .requests (.bodies keeps their JSON); raw
sockets, so nothing is buffered or retried behind the test's back.
"""
from __future__ import annotations

import json
import socket
import threading
import time

ANSWER = ['{"answer": ', '"20', '14", ', '"sentence": ', '1}']  # the reader's JSON, in pieces


def _pieces(text: str, n: int = 5) -> list[str]:
    size = max(1, -(-len(text) // n))
    return [text[i:i + size] for i in range(0, len(text), size)]


def reply_to(body: bytes) -> list[str]:
    """What the "ok" server streams for a request body: the check's verdict, or the dumb reader's answer."""
    from fakes import YES, dumb_reader

    try:
        request = json.loads(body or b"{}")
    except ValueError:
        request = {}
    if b"verdict" in body:
        return _pieces(YES)
    messages = request.get("messages") or []
    user = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "") or ""
    return _pieces(_stopped(dumb_reader(user if isinstance(user, str) else str(user)), request.get("stop")))


def _stopped(reply: str, stop) -> str:
    """The reply cut before the first stop sequence, as llama.cpp and OpenAI cut it (the sequence not sent)."""
    cuts = [reply.find(x) for x in ([stop] if isinstance(stop, str) else stop or ()) if x and x in reply]
    return reply[: min(cuts)] if cuts else reply


def _chunk(content: str | None, finish: str | None = None, first: bool = False) -> bytes:
    delta = {"content": content} if content is not None else {}
    if first:
        delta["role"] = "assistant"  # as real servers do: the openai SDK's stream helper needs it
    body = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "fake",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


class FakeOpenAI:
    def __init__(self, mode: str = "ok"):
        self.mode = mode
        self.flood_bytes = 8_800_000
        self.sent = 0
        self.requests = 0
        self.bodies: list[dict] = []
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        try:
            self._sock.close()
        except OSError:
            pass
        for c in self._held:
            try:
                c.close()
            except OSError:
                pass

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> tuple[bytes, bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            part = conn.recv(65536)
            if not part:
                return data, b""
            data += part
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while len(body) < length:
            part = conn.recv(65536)
            if not part:
                break
            body += part
        return head, body

    def _handle(self, conn: socket.socket) -> None:
        try:
            head, body = self._read_request(conn)
            if not head:
                conn.close()
                return
            self.requests += 1
            try:
                self.bodies.append(json.loads(body))
            except ValueError:
                self.bodies.append({})
            mode = self.mode
            sse = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            if mode == "hang" or (mode == "hangcheck" and b"verdict" in body):
                self._held.append(conn)  # keep it open, say nothing
                return
            if mode == "trickle":
                conn.sendall(sse + b"Transfer-Encoding: chunked\r\n\r\n")
                while not self._stop.is_set():
                    piece = b": keep-alive\n\n"
                    conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                    time.sleep(0.3)
                return
            rejected = {"nologprobs": b'"logprobs"', "noschema": b'"response_format"'}.get(mode)
            if rejected and rejected in body:  # a server that does not offer logprobs / JSON-schema output
                body = json.dumps({"error": {"message": f"{rejected.decode()} is not supported",
                                             "type": "invalid_request_error"}}).encode()
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
                conn.close()
                return
            if mode == "echo500":
                body = json.dumps({"error": {"message": "upstream failed; request was: " + head.decode("latin-1"),
                                             "type": "server_error"}}).encode()
                conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
                conn.close()
                return
            if mode == "cut":
                conn.sendall(sse + b"Connection: close\r\n\r\n")
                for i, piece in enumerate(ANSWER[:3]):
                    conn.sendall(_chunk(piece, first=i == 0))
                    time.sleep(0.02)
                conn.close()  # no [DONE], no finish_reason: the body simply ends
                return
            conn.sendall(sse + b"Transfer-Encoding: chunked\r\n\r\n")
            if mode in ("length", "lengthshort") and b"verdict" not in body:
                pieces = ['{"answer": "', "2014"] if mode == "lengthshort" else (
                    ['{"answer": "', "2.7 billion, ", "9% of Alibaba's total revenues, "] + ["2018-01-0%d, " % i for i in range(1, 9)])
                for i, piece in enumerate(pieces):
                    data = _chunk(piece, first=i == 0)
                    conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))
                for data in (_chunk(None, "length"), b"data: [DONE]\n\n"):
                    conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))
                conn.sendall(b"0\r\n\r\n")
                conn.close()
                return
            if mode == "flood":
                self.sent = 0
                pieces = ['{"answer": "2014', *[" and 2014" * 40] * (self.flood_bytes // 400), '", "sentence": 1}']
                for i, piece in enumerate(pieces):
                    data = _chunk(piece, first=i == 0)
                    conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))
                    self.sent += len(data)
                for data in (_chunk(None, "stop"), b"data: [DONE]\n\n"):
                    conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))
                conn.sendall(b"0\r\n\r\n")
                conn.close()
                return
            pieces = ANSWER[:3] if mode == "die" else reply_to(body)
            for i, piece in enumerate(pieces):
                data = _chunk(piece, first=i == 0)
                conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))
                time.sleep(0.02)
            if mode == "die":
                conn.shutdown(socket.SHUT_RDWR)  # mid-body: the chunked stream is never terminated
                conn.close()
                return
            for data in (_chunk(None, "stop"), b"data: [DONE]\n\n"):
                conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))
            conn.sendall(b"0\r\n\r\n")
            conn.close()
        except OSError:
            pass


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
