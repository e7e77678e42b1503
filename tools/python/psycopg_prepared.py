"""psycopg 3 server-side prepared statements under concurrency.

Run by internal/drivertest (and by hand for measurements) with the system
python (Debian's python3-psycopg):

    /usr/bin/python3 psycopg_prepared.py URL CLIENTS QUERIES

Every client (a thread with its own connection) runs QUERIES statements
with prepare=True and checks each answer: even ones `select %s::int + 1`,
odd ones `select %s::int + <client>` (as internal/drivertest.Query).
psycopg names them _pg3_0, _pg3_1, ... on each connection, so names collide
across clients. Prints one JSON line: {"queries", "errors", "wrong", "first_error"}.
"""

import json
import sys
import threading

import psycopg


def main():
    url, clients, queries = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    lock = threading.Lock()
    out = {"queries": 0, "errors": 0, "wrong": 0, "first_error": ""}

    def fail(kind, msg):
        with lock:
            out[kind] += 1
            if not out["first_error"]:
                out["first_error"] = msg

    def one(cid):
        try:
            conn = psycopg.connect(url, autocommit=True)
        except Exception as e:  # noqa: BLE001 - every failure is counted
            fail("errors", "connect: %s" % e)
            return
        with conn:
            for i in range(queries):
                v = cid * 100000 + i
                with lock:
                    out["queries"] += 1
                try:
                    add = 1 if i % 2 == 0 else cid
                    row = conn.execute("select %%s::int + %d" % add, [v], prepare=True).fetchone()
                    if row is None or row[0] != v + add:
                        fail("wrong", "got %r for %d" % (row, v))
                except Exception as e:  # noqa: BLE001
                    fail("errors", str(e).strip())

    threads = [threading.Thread(target=one, args=(cid,)) for cid in range(1, clients + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
