"""Memory of the legacy key cache, and the cost of a legacy read once its
key is cached.

    python bench/legacy_cache_bench.py [--entries 100000]

A legacy (reference-format) value needs a PBKDF2 of 100,000 rounds for its
own salt; each API worker keeps the derived keys of up to 100,000 salts
(shared/crypto/sealing.py, LEGACY_KEY_CACHE_SIZE). Filling the cache through real
reads would cost 100,000 PBKDF2 (about 40 CPU minutes), so the bench puts
random 32-byte keys in it directly: the memory is that of the cache itself.
It prints the process's resident memory growth for a full cache and the time
of a read whose key is cached, and compares with caching AESGCM objects
(what the cache held before).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import OrderedDict
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.crypto.sealing import Cipher, legacy_encrypt  # noqa: E402


def rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()
    cipher = Cipher("legacy cache bench secret")
    key = cipher._keys[0]
    before = rss()
    for _ in range(args.entries):
        key._legacy_keys[os.urandom(16)] = os.urandom(32)
    grown = rss() - before
    print(f"cache of {args.entries} derived keys (bytes): +{grown / 1e6:.1f} MB resident")
    objects: OrderedDict[bytes, AESGCM] = OrderedDict()
    before = rss()
    for _ in range(args.entries):
        objects[os.urandom(16)] = AESGCM(os.urandom(32))
    print(f"the same as AESGCM objects (before):  +{(rss() - before) / 1e6:.1f} MB resident")
    del objects
    stored = legacy_encrypt("ab" * 32, "legacy cache bench secret")
    cipher.decrypt(stored, "")  # one PBKDF2: its key is cached now
    rounds = 20_000
    started = time.perf_counter()
    for _ in range(rounds):
        cipher.decrypt(stored, "")
    per_read = (time.perf_counter() - started) / rounds
    print(f"legacy read with its key cached: {per_read * 1e6:.1f} µs")


if __name__ == "__main__":
    main()
