#!/usr/bin/python3
"""Traffic for the simulated VPC: the internet hosts' servers and the Lambdas' clients.

Servers (in the internet namespace):
  whoami ADDR PORT               HTTP: answers the caller's address (what-is-my-IP)
  eipapi ADDR PORT EIP[,EIP...]  HTTP: 200 "accepted <ip>" for the EIPs only, else 403
  stream ADDR PORT               TCP: reads "SEED NBYTES RATE\\n", sends NBYTES of the seed's
                                 deterministic stream at RATE bytes/s, then closes
Clients (in a Lambda namespace):
  get URL                        prints the body (exit 1 on error / non-2xx: prints the status)
  probe URL SECONDS INTERVAL OUT new short connections every INTERVAL s; writes JSON lines
                                 {start, end, ok (answered within 0.4 s), completed (within 3 s), ip}
  fetch ADDR PORT SEED NBYTES RATE OUT [CONNS]  long-lived downloads (the first NBYTES at RATE,
                                 CONNS-1 more at a tenth of both); checks every byte against the
                                 seed's stream; writes a JSON summary (bytes, sha256 match, the
                                 longest silence between received chunks, connections intact)
"""

import hashlib
import http.client
import http.server
import json
import socket
import sys
import threading
import time


def keystream(seed, nbytes):
    """Deterministic, non-repeating bytes (SHAKE-256 of the seed): both ends compute them."""
    return hashlib.shake_256(str(seed).encode()).digest(int(nbytes))


def serve_http(addr, port, answer):
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status, body = answer(self.client_address[0])
            body = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 512  # the default listen backlog of 5 drops SYNs under bursts

    srv = Server((addr, int(port)), H)
    srv.daemon_threads = True
    srv.serve_forever()


def serve_stream(addr, port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, int(port)))
    ls.listen(64)

    def one(c):
        try:
            line = b""
            while not line.endswith(b"\n"):
                d = c.recv(100)
                if not d:
                    return
                line += d
            seed, nbytes, rate = line.decode().split()
            data = keystream(seed, int(nbytes))
            chunk = 4096
            t0 = time.monotonic()
            for off in range(0, len(data), chunk):
                due = t0 + off / float(rate)
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                c.sendall(data[off:off + chunk])
            c.shutdown(socket.SHUT_WR)
            c.recv(1)
        except OSError:
            pass
        finally:
            c.close()

    while True:
        c, _ = ls.accept()
        threading.Thread(target=one, args=(c,), daemon=True).start()


def get(url):
    host, _, path = url.removeprefix("http://").partition("/")
    h, _, p = host.partition(":")
    try:
        conn = http.client.HTTPConnection(h, int(p or 80), timeout=5)
        conn.request("GET", "/" + path)
        r = conn.getresponse()
        body = r.read().decode().strip()
    except (OSError, http.client.HTTPException) as e:
        print(type(e).__name__)
        return 2
    if r.status >= 300:
        print(r.status)
        return 1
    print(body)
    return 0


def probe(url, seconds, interval, out):
    host, _, path = url.removeprefix("http://").partition("/")
    h, _, p = host.partition(":")
    results = []
    lock = threading.Lock()

    def one():
        start = time.time()
        rec = {"start": start, "ok": False, "completed": False, "ip": None}
        try:
            # ok: answered within 0.4 s (the gap measure); completed: answered at all within
            # 3 s (a lost SYN is retransmitted after 1 s: such a connection is delayed, not lost)
            conn = http.client.HTTPConnection(h, int(p or 80), timeout=3)
            conn.request("GET", "/" + path)
            r = conn.getresponse()
            rec["ip"] = r.read().decode().strip()
            rec["completed"] = r.status == 200
            rec["ok"] = rec["completed"] and time.time() - start <= 0.4
            conn.close()
        except (OSError, http.client.HTTPException) as e:
            rec["error"] = type(e).__name__
        rec["end"] = time.time()
        with lock:
            results.append(rec)

    threads = []
    t_end = time.time() + float(seconds)
    nxt = time.time()
    while time.time() < t_end:
        t = threading.Thread(target=one, daemon=True)
        t.start()
        threads.append(t)
        nxt += float(interval)
        time.sleep(max(0.0, nxt - time.time()))
    for t in threads:
        t.join(4)
    with open(out, "w", encoding="utf-8") as f:
        for rec in sorted(results, key=lambda r: r["start"]):
            f.write(json.dumps(rec) + "\n")
    return 0


def fetch_one(addr, port, seed, nbytes, rate, started):
    expect = keystream(seed, nbytes)
    got = bytearray()
    longest, longest_at, err = 0.0, None, None
    t0 = time.time()
    try:
        s = socket.create_connection((addr, int(port)), timeout=30)
        s.settimeout(30)
        s.sendall(f"{seed} {nbytes} {rate}\n".encode())
        got += s.recv(65536)
        started.set()
        last = time.time()
        while len(got) < nbytes:
            d = s.recv(65536)
            if not d:
                break
            now = time.time()
            if now - last > longest:
                longest, longest_at = now - last, last
            last = now
            got += d
        s.close()
    except OSError as e:
        err = f"{type(e).__name__}: {e}"
    return {"bytes": len(got), "expected": nbytes, "intact": bytes(got) == expect,
            "sha256": hashlib.sha256(got).hexdigest(),
            "expected_sha256": hashlib.sha256(expect).hexdigest(),
            "longest_silence_s": round(longest, 3), "longest_silence_at": longest_at,
            "duration_s": round(time.time() - t0, 3), "error": err}


def fetch(addr, port, seed, nbytes, rate, out, conns=1):
    """Connection 0 gets NBYTES at RATE; CONNS-1 more long-lived connections get a tenth of both
    (idle-ish established connections that must survive too)."""
    nbytes, rate, conns = int(nbytes), float(rate), int(conns)
    results = [None] * conns
    events = [threading.Event() for _ in range(conns)]

    def run(i):
        n, r = (nbytes, rate) if i == 0 else (max(1, nbytes // 10), rate / 10)
        results[i] = fetch_one(addr, port, f"{seed}-{i}", n, r, events[i])

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(conns)]
    for t in threads:
        t.start()
    for e in events:
        e.wait(10)
    with open(out + ".started", "w", encoding="utf-8") as f:  # all connected and receiving
        f.write(f"{time.time()}\n")
    for t in threads:
        t.join()
    res = dict(results[0])
    res["connections"] = conns
    res["connections_intact"] = sum(1 for r in results if r["intact"])
    res["intact"] = res["connections_intact"] == conns
    res["others"] = results[1:]
    with open(out, "w", encoding="utf-8") as f:
        json.dump(res, f)
    return 0 if res["intact"] else 1


def main(argv):
    cmd, args = argv[0], argv[1:]
    if cmd == "whoami":
        serve_http(args[0], args[1], lambda ip: (200, ip + "\n"))
    elif cmd == "eipapi":
        allowed = set(args[2].split(","))
        serve_http(args[0], args[1], lambda ip: (200, f"accepted {ip}\n") if ip in allowed
                   else (403, f"forbidden {ip}\n"))
    elif cmd == "stream":
        serve_stream(args[0], args[1])
    elif cmd == "get":
        return get(args[0])
    elif cmd == "probe":
        return probe(*args)
    elif cmd == "fetch":
        return fetch(*args)
    else:
        raise SystemExit(f"unknown command {cmd}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
