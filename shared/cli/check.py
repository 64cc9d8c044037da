"""`ksnode check`: validate settings, secret, folders and database without
starting anything; exit 1 when `ksnode up` would fail."""

from __future__ import annotations

from pathlib import Path

LABELS = {"problem": "PROBLEM", "warning": "warning", "create": "will create", "ok": "ok"}


def cmd_check(args) -> int:
    from shared.node.check import run_checks

    findings = run_checks(Path(args.env_file) if args.env_file else None)
    for finding in findings:
        print(f"{LABELS[finding.kind]:>11}: {finding.text}")
    problems = sum(1 for f in findings if f.kind == "problem")
    if problems:
        print(f"{problems} problem(s): `ksnode up` would not start; fix them and run check again")
        return 1
    creates = any(f.kind == "create" for f in findings)
    print("ready: `ksnode up` " + ("will create the above and start" if creates else "will start"))
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser(
        "check",
        help="validate settings, secret, folders and the database without starting anything",
    )
    p.set_defaults(func=cmd_check)
