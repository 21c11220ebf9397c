"""How long a change made on one instance takes to be in force on another.

Usage: propagation.py BASE_A BASE_B N
(KW_API_KEY and KW_ADMIN_TOKEN in the environment; secure mode off.)

Makes N changes on instance A, alternating two kinds that reach the other
instances by different paths: a logout (the batching writer announces it)
and a server-key rotation with no overlap (an audited change: the database
announces it). After A has answered each, asks B as fast as it can until B
obeys the change, and reports the delay's percentiles in milliseconds as
one line: "n p50 p90 p99 max".
"""

import http.client
import json
import os
import sys
import time
import urllib.parse


def connection(base):
    u = urllib.parse.urlparse(base)
    return http.client.HTTPConnection(u.hostname, u.port)


def call(conn, method, path, headers=None, body=None):
    data = None if body is None else json.dumps(body)
    hdrs = dict(headers or {})
    if data is not None:
        hdrs["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=hdrs)
        res = conn.getresponse()
    except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
        # A refusal answered before its body was read ends the connection
        # (hyper cannot reuse it): open another and ask again.
        conn.close()
        conn.request(method, path, body=data, headers=hdrs)
        res = conn.getresponse()
    return res.status, res.read()


def until(conn, method, path, headers, status, body=None, limit=5.0):
    """Asks until the answer is `status`; the time it took, in seconds."""
    started = time.perf_counter()
    while True:
        got, _ = call(conn, method, path, headers, body)
        if got == status:
            return time.perf_counter() - started
        if time.perf_counter() - started > limit:
            raise SystemExit(f"{method} {path}: still {got} on the other instance after {limit}s")


def main():
    base_a, base_b, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    api_key, admin = os.environ["KW_API_KEY"], {"Authorization": "Bearer " + os.environ["KW_ADMIN_TOKEN"]}
    a, b = connection(base_a), connection(base_b)
    status, body = call(a, "POST", "/api/v1/server-keys", admin, {"overlapSeconds": 0})
    assert status == 200, (status, body)
    server_key = json.loads(body)["serverKey"]
    delays = []
    for i in range(n):
        if i % 2 == 0:
            status, body = call(a, "POST", "/api/v3/sessions", {"X-API-Key": api_key}, {"userId": f"prop-{i}", "deviceId": "d"})
            assert status == 200, (status, body)
            bearer = {"Authorization": "Bearer " + json.loads(body)["accessToken"]}
            until(b, "GET", "/api/v3/sessions/current", bearer, 200)
            status, _ = call(a, "DELETE", "/api/v4/sessions", bearer)
            assert status == 200, status
            delays.append(until(b, "GET", "/api/v3/sessions/current", bearer, 401))
        else:
            old = {"X-Server-Key": server_key}
            until(b, "POST", "/api/v4/authentication/token", old, 200, {"userId": "prop"})
            status, body = call(a, "POST", "/api/v1/server-keys", admin, {"overlapSeconds": 0})
            assert status == 200, (status, body)
            server_key = json.loads(body)["serverKey"]
            delays.append(until(b, "POST", "/api/v4/authentication/token", old, 401, {"userId": "prop"}))
    delays.sort()
    ms = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))] * 1000
    print(f"{len(delays)} {ms(0.5):.1f} {ms(0.9):.1f} {ms(0.99):.1f} {delays[-1] * 1000:.1f}")


main()
