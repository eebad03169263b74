#!/usr/bin/env python3
"""An HTTP/1.1 server that misbehaves on purpose, for tunstack's end-to-end tests.

Standard library only. Every response closes the connection. The behaviour is picked by path,
where NAME is a file in --root:

  /plain/NAME      200 with Content-Length and the whole file
  /chunked/NAME    200 chunked, with chunk extensions, odd chunk sizes and trailers
  /redirect/NAME   302 with the relative Location "../plain/NAME"
  /loop/a, /loop/b 302 to each other (relative Locations "b" and "a"): a redirect loop
  /reset/NAME      200 with the full Content-Length, half the body, then an RST (SO_LINGER 0)
  /truncate/NAME   200 with the full Content-Length, half the body, then a normal close (FIN)
  /silence         200 headers announcing 1000 bytes, then nothing until the client leaves
                   (at most --silence seconds)
  /continue/NAME   "100 Continue" and "103 Early Hints" before a 200 with the file
  /nocontent       204 No Content
  /slow/NAME       200 with the file, 64 KiB at once, then 1 KiB every 50 ms (at most --slow
                   seconds in all)
  /echo            200 text/plain whose body is the request head exactly as received
  /goto?URL        302 to URL (absolute or relative), e.g. to another host name
  /auth/NAME       the file with Basic credentials alice:s3cret, else 401
  /flaky/NAME?fails=N&key=K[&after=S]
                   503 (with "Retry-After: S" when given; after=+S sends a Date and an
                   HTTP-date S seconds later) to the first N requests with key K, then the file
  /encoded/CODING/NAME
                   200 with "Content-Encoding: CODING" and the bytes of NAME.CODING (made by
                   the test) as they are
  anything else    404 Not Found

It prints "ready" on stdout once it listens, and logs one line per request on stderr.
"""

import argparse
import base64
import hashlib
import os
import socket
import socketserver
import struct
import sys
import threading
import time
from email.utils import formatdate
from urllib.parse import parse_qs

HEAD_LIMIT = 64 * 1024
CHUNK_SIZES = [1, 7, 4096, 65536, 13, 1000, 32768, 2]


class Handler(socketserver.BaseRequestHandler):
    """Serves one connection: one request, one (odd) response, then close."""

    def handle(self):
        sock = self.request
        sock.settimeout(10)
        try:
            path, self.head = self.read_request_path(sock)
        except (OSError, ValueError) as err:
            log(f"bad request: {err}")
            return
        log(f"{self.head.split(b' ', 1)[0].decode()} {path}")
        path, _, query = path.partition("?")
        self.query = query
        route, _, name = path.lstrip("/").partition("/")
        if route == "encoded":
            coding, _, plain_name = name.partition("/")
            name = f"{plain_name}.{coding}" if coding and plain_name else ""
        body_path = self.server_file(name) if name else None
        try:
            self.dispatch(sock, route, name, body_path)
        except OSError as err:
            log(f"{path}: client went away: {err}")

    def header(self, wanted):
        """The value of request header `wanted` (case-insensitive), or None."""
        for line in self.head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == wanted.lower():
                return value.strip()
        return None

    def dispatch(self, sock, route, name, body_path):
        if route == "echo" and not name:
            send_head(sock, "200 OK", [("Content-Length", str(len(self.head))), ("Content-Type", "text/plain")])
            sock.sendall(self.head)
        elif route == "goto" and not name:
            redirect(sock, self.query)
        elif route == "nocontent" and not name:
            send_head(sock, "204 No Content", [])
        elif route == "silence" and not name:
            send_head(sock, "200 OK", [("Content-Length", "1000"), ("Content-Type", "text/plain")])
            wait_for_client_to_leave(sock, self.server.silence_seconds)
        elif route == "loop" and name in ("a", "b"):
            redirect(sock, "b" if name == "a" else "a")
        elif body_path is None:
            not_found(sock)
        elif route == "plain":
            send_file(sock, read_file(body_path))
        elif route == "redirect":
            redirect(sock, f"../plain/{name}")
        elif route == "chunked":
            send_chunked(sock, read_file(body_path))
        elif route == "continue":
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
            send_file(sock, read_file(body_path))
        elif route == "reset":
            body = read_file(body_path)
            send_head(sock, "200 OK", length_headers(len(body)))
            sock.sendall(body[: len(body) // 2])
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        elif route == "truncate":
            body = read_file(body_path)
            send_head(sock, "200 OK", length_headers(len(body)))
            sock.sendall(body[: len(body) // 2])
            sock.shutdown(socket.SHUT_WR)
        elif route == "slow":
            send_slowly(sock, read_file(body_path), self.server.slow_seconds)
        elif route == "auth":
            expected = "Basic " + base64.b64encode(b"alice:s3cret").decode()
            if self.header("Authorization") == expected:
                send_file(sock, read_file(body_path))
            else:
                body = b"who are you?\n"
                send_head(sock, "401 Unauthorized", [("WWW-Authenticate", 'Basic realm="odd"'), ("Content-Length", str(len(body)))])
                sock.sendall(body)
        elif route == "flaky":
            params = parse_qs(self.query)
            fails = int(params.get("fails", ["0"])[0])
            key = params.get("key", [name])[0]
            with self.server.lock:
                seen = self.server.flaky_counts.get(key, 0)
                self.server.flaky_counts[key] = seen + 1
            if seen < fails:
                body = b"try again later\n"
                headers = [("Content-Length", str(len(body)))]
                after = params.get("after", [None])[0]
                if after and after.startswith("+"):
                    # An HTTP-date N seconds after the response's own Date.
                    now = int(time.time())
                    headers.append(("Date", formatdate(now, usegmt=True)))
                    headers.append(("Retry-After", formatdate(now + int(after[1:]), usegmt=True)))
                elif after:
                    headers.append(("Retry-After", after))
                send_head(sock, "503 Service Unavailable", headers)
                sock.sendall(body)
            else:
                send_file(sock, read_file(body_path))
        elif route == "encoded":
            body = read_file(body_path)
            coding = name.rsplit(".", 1)[1]
            send_head(sock, "200 OK", length_headers(len(body)) + [("Content-Encoding", coding)])
            sock.sendall(body)
        else:
            not_found(sock)

    def read_request_path(self, sock):
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(4096)
            if not data:
                raise ValueError("connection closed before the end of the request head")
            head += data
            if len(head) > HEAD_LIMIT:
                raise ValueError("request head too long")
        head = head[: head.index(b"\r\n\r\n") + 4]
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3 or parts[0] not in ("GET", "HEAD"):
            raise ValueError(f"unexpected request line {request_line!r}")
        return parts[1], head

    def server_file(self, name):
        if "/" in name or name in ("", ".", ".."):
            return None
        path = os.path.join(self.server.root, name)
        return path if os.path.isfile(path) else None


def log(message):
    print(f"odd_server: {message}", file=sys.stderr, flush=True)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def length_headers(length):
    return [("Content-Length", str(length)), ("Content-Type", "application/octet-stream")]


def send_head(sock, status, headers):
    lines = [f"HTTP/1.1 {status}", "Server: odd_server", "Connection: close"]
    lines += [f"{key}: {value}" for key, value in headers]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


def send_file(sock, body):
    send_head(sock, "200 OK", length_headers(len(body)))
    sock.sendall(body)


def redirect(sock, location):
    body = f"moved to {location}\n".encode()
    send_head(sock, "302 Found", [("Location", location), ("Content-Length", str(len(body)))])
    sock.sendall(body)


def not_found(sock):
    body = b"not found\n"
    send_head(sock, "404 Not Found", [("Content-Length", str(len(body))), ("Content-Type", "text/plain")])
    sock.sendall(body)


def send_chunked(sock, body):
    send_head(
        sock,
        "200 OK",
        [("Transfer-Encoding", "chunked"), ("Trailer", "X-Body-Sha256"), ("Content-Type", "application/octet-stream")],
    )
    offset = 0
    index = 0
    while offset < len(body):
        size = CHUNK_SIZES[index % len(CHUNK_SIZES)]
        chunk = body[offset : offset + size]
        size_text = f"{len(chunk):X}" if index % 2 else f"{len(chunk):x}"
        extension = [";ext=1", ';name="quoted value"', ";flag", ""][index % 4]
        sock.sendall(f"{size_text}{extension}\r\n".encode() + chunk + b"\r\n")
        offset += len(chunk)
        index += 1
    digest = hashlib.sha256(body).hexdigest()
    sock.sendall(f"0;last=yes\r\nX-Body-Sha256: {digest}\r\nX-Trailer-Note: done\r\n\r\n".encode())


def wait_for_client_to_leave(sock, limit):
    deadline = time.monotonic() + limit
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        sock.settimeout(remaining)
        try:
            if not sock.recv(4096):
                return
        except socket.timeout:
            return


def send_slowly(sock, body, limit):
    send_head(sock, "200 OK", length_headers(len(body)))
    first = 64 * 1024
    sock.sendall(body[:first])
    deadline = time.monotonic() + limit
    offset = first
    while offset < len(body) and time.monotonic() < deadline:
        time.sleep(0.05)
        sock.sendall(body[offset : offset + 1024])
        offset += 1024


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bind", default="10.77.1.2")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--root", required=True, help="directory holding the files to serve")
    parser.add_argument("--silence", type=float, default=30.0, help="longest wait on /silence, in seconds")
    parser.add_argument("--slow", type=float, default=60.0, help="longest trickle on /slow, in seconds")
    args = parser.parse_args()

    server = Server((args.bind, args.port), Handler)
    server.root = args.root
    server.silence_seconds = args.silence
    server.slow_seconds = args.slow
    server.lock = threading.Lock()
    server.flaky_counts = {}
    print("ready", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
