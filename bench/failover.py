"""The failover gap: a node under a load of registrations and reads while its
database's primary is killed (-9) or stopped (planned switchover) and the
synchronous standby promoted.

    python bench/failover.py [--style hosts|address] [--how kill|switchover]

Starts a primary and a synchronous streaming standby on loopback
(tests/support/pgpair.py) and a node (`ksnode up`) on them: DB_HOST/DB_PORT
lists (``hosts``) or one address a forwarder moves to the new primary right
after the promotion (``address``, like a DNS name). The primary goes away
3 s into the load; the standby is promoted 1 s later. Prints the gap (last
registration answered 200 before, first after), how long after the
promotion registrations were served again, and the requests that failed
(503s, and anything else).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.failover_load import FailoverLoad  # noqa: E402
from tests.support.fakes.telegram import BOT_TOKEN  # noqa: E402
from tests.support.forwarder import Forwarder  # noqa: E402
from tests.support.node_process import NodeProcess  # noqa: E402
from tests.support.pgpair import PgPair  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", choices=("hosts", "address"), default="hosts")
    parser.add_argument("--how", choices=("kill", "switchover"), default="kill")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ksn-failover-") as folder:
        pair = PgPair(Path(folder) / "pg")
        forwarder = Forwarder(pair.a.port) if args.style == "address" else None
        try:
            run(pair, forwarder, Path(folder), args.how)
        finally:
            pair.stop()
            if forwarder is not None:
                forwarder.close()


def run(pair: PgPair, forwarder: Forwarder | None, folder: Path, how: str) -> None:
    if forwarder is None:
        host, port = "127.0.0.1,127.0.0.1", f"{pair.a.port},{pair.b.port}"
    else:
        host, port = "127.0.0.1", str(forwarder.port)
    node = NodeProcess.build(
        folder / "var",
        {
            "DB_HOST": host,
            "DB_PORT": port,
            "DB_USER": "postgres",
            "DB_PASSWORD": pair.a.password,
            "DB_NAME": pair.create_database(),
        },
        TELEGRAM_BOT_TOKEN=BOT_TOKEN,
        RATE_LIMIT_PER_MINUTE="0",
    ).start()
    try:
        with FailoverLoad(node.url) as load:
            time.sleep(3.0)
            gone = time.monotonic()
            pair.a.kill9() if how == "kill" else pair.a.stop_fast()
            time.sleep(max(0.0, 1.0 - (time.monotonic() - gone)))
            pair.b.promote()
            promoted = time.monotonic()
            if forwarder is not None:
                forwarder.point_at(pair.b.port)
            time.sleep(4.0)
        answers = load.snapshot()
    finally:
        node.stop()
    failed: dict[str, int] = {}
    for answer in answers:
        if answer.status != 200:
            key = f"{answer.kind} {answer.status} {answer.code}"
            failed[key] = failed.get(key, 0) + 1
    again = load.served_again_after(promoted)
    gap = load.gap(gone)
    slowest = max(a.ended - a.started for a in answers)
    print(f"style={'DB_HOST list' if forwarder is None else 'moved address'} how={how}")
    print(f"requests: {len(answers)}; registrations acknowledged: {len(load.acknowledged())}")
    print(f"failover gap (last 200 before, first 200 after): {gap:.2f} s" if gap else "gap: n/a")
    print(f"registrations served again {again:.2f} s after the promotion" if again else "never")
    print(f"failed requests: {sum(failed.values())} {failed}; slowest answer {slowest:.2f} s")


if __name__ == "__main__":
    main()
