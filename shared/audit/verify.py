"""Checking an audit chain (``ksnode audit verify``).

Each record is checked under the key it names (``key_id``), from the keys of
every configured secret, current and previous: a secret rotation leaves the
older records checkable as long as the old secret stays configured. A record
under a key id that no configured secret has cannot be checked; it is
counted per key id and reported as such, never as edited.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.audit.records import RETENTION_EVENT, AuditKey, AuditKeyring, Sealed


@dataclass(frozen=True)
class Problem:
    seq: int
    kind: str  # "edited", "deleted", "chain", "unknown-key"
    message: str


@dataclass
class UnknownKey:
    """Records sealed under a key id that no configured secret has."""

    count: int = 0
    first_seq: int = 0
    last_seq: int = 0
    # the highest ``deleted_through`` of a retention record among them
    retention_through: int = 0


@dataclass
class VerifyReport:
    checked: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    problems: list[Problem] = field(default_factory=list)
    sealed_by: dict[str, int] = field(default_factory=dict)  # key id -> records checked
    unknown: dict[str, UnknownKey] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def tampered(self) -> bool:
        """Some record was found edited, deleted or replaced (as opposed to
        records that could not be checked for want of their key)."""
        return any(p.kind != "unknown-key" for p in self.problems)


def verify_chain(keys: AuditKey | AuditKeyring, records: Iterable[Sealed]) -> VerifyReport:
    """Check ``records`` (in seq order): each seals to its hash under the
    key it names, seqs are contiguous, each points at the one before, and
    the trail starts where the newest retention record says older ones were
    deleted (or at 1). A record whose key is not in ``keys`` cannot be
    checked: it is counted per key id and reported once per key id."""
    ring = keys if isinstance(keys, AuditKeyring) else AuditKeyring(keys)
    report = VerifyReport()
    expected_start = 1
    previous: Sealed | None = None
    previous_edited = False
    for item in records:
        report.checked += 1
        if report.first_seq is None:
            report.first_seq = item.seq
        key = ring.get(item.key_id)
        edited = False
        if key is None:
            unknown = report.unknown.setdefault(item.key_id, UnknownKey(first_seq=item.seq))
            unknown.count += 1
            unknown.last_seq = item.seq
            unknown.retention_through = max(unknown.retention_through, _deleted_through(item))
        elif not key.intact(item):
            report.problems.append(
                Problem(
                    item.seq, "edited", f"record {item.seq} was edited (its hash does not match)"
                )
            )
            edited = True
        else:
            report.sealed_by[item.key_id] = report.sealed_by.get(item.key_id, 0) + 1
            expected_start = max(expected_start, _deleted_through(item) + 1)
        if previous is not None:
            if item.seq != previous.seq + 1:
                first, last = previous.seq + 1, item.seq - 1
                missing = f"record {first}" if first == last else f"records {first}-{last}"
                report.problems.append(
                    Problem(
                        first,
                        "deleted",
                        f"{missing} deleted (between {previous.seq} and {item.seq})",
                    )
                )
            # An edited record is named once, not again as a break; the link
            # to or from an unverifiable record is still checked.
            elif item.prev_hash != previous.hash and not previous_edited and not edited:
                report.problems.append(
                    Problem(
                        item.seq,
                        "chain",
                        f"record {item.seq} does not follow record "
                        f"{previous.seq} (one of them was replaced)",
                    )
                )
        previous, previous_edited = item, edited
    _check_start(report, expected_start)
    for key_id, unknown in report.unknown.items():
        span = f"seq {unknown.first_seq}-{unknown.last_seq}"
        report.problems.append(
            Problem(
                unknown.first_seq,
                "unknown-key",
                f"{unknown.count} record(s) ({span}) sealed under key id {key_id}, which no "
                f"configured secret has (configured: {', '.join(ring.describe())}): "
                "they cannot be verified",
            )
        )
    if previous is not None:
        report.last_seq, report.last_hash = previous.seq, previous.hash
    return report


def _deleted_through(item: Sealed) -> int:
    """For a retention record, the highest seq it says was deleted (else 0)."""
    if item.record.event != RETENTION_EVENT or not item.record.detail:
        return 0
    through = item.record.detail.get("deleted_through")
    return through if isinstance(through, int) else 0


def _check_start(report: VerifyReport, expected_start: int) -> None:
    """Records missing before the first: retention's doing only if a checked
    retention record says so. One under an unknown key may say so too; then
    the gap is as unverifiable as that record, not a deletion."""
    if report.first_seq is None or report.first_seq <= expected_start:
        return
    first, last = expected_start, report.first_seq - 1
    missing = f"record {first}" if first == last else f"records {first}-{last}"
    for key_id, unknown in report.unknown.items():
        if unknown.retention_through >= last:
            report.problems.insert(
                0,
                Problem(
                    first,
                    "unknown-key",
                    f"{missing} missing from the start of the trail; the retention record "
                    f"that accounts for them is under key id {key_id}, which no configured "
                    "secret has: it cannot be verified",
                ),
            )
            return
    report.problems.insert(
        0,
        Problem(
            first, "deleted", f"{missing} deleted from the start of the trail (not by retention)"
        ),
    )
