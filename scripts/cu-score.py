#!/usr/bin/env python3
"""Scores a libiscsi iscsi-test-cu log by the verdict CUnit itself prints for each test.

Usage: scripts/cu-score.py LOG [OUT.json] [--families]

CUnit's basic interface writes "Suite: NAME" and "  Test: NAME ..." and then, once the test body
is done, "passed" or "FAILED" - on the same line when the test logs nothing, otherwise at the start
of the first line after the test's own output. That first token is the verdict. Lines such as
"[FAILED] ..." that the suite's helpers log while a test runs (an expected error, teardown noise)
are not verdicts and do not count. A test that CUnit passed but that printed "[SKIPPED]" before its
verdict (a missing feature, no --dataloss) is scored as skipped. A test without any verdict (the
log was cut off, the initiator crashed) is "unknown".

Output:
  OUT.json    {"Suite.Test": "passed" | "FAILED" | "skipped" | "unknown", ...}, keys sorted
  stdout      "FAILED Suite.Test" / "UNKNOWN Suite.Test" for each such test in log order;
              with --families one line per suite, "  Suite: FAILED=n passed=n skipped=n";
              last line "N passed, N failed, N skipped" (+ ", N unknown" when there are any),
              which scripts/conformance.sh and scripts/lio-conformance.sh read with tail -1.
"""
import json
import re
import sys
from collections import Counter

SUITE_LINE = re.compile(r"Suite: (\S+)")
TEST_LINE = re.compile(r"\s+Test: (\S+) \.\.\.(.*)")
SUMMARY_LINE = re.compile(r"Run Summary:")
VERDICT = re.compile(r"(passed|FAILED)\b")


class Test:
    def __init__(self, name):
        self.name = name
        self.verdict = None  # CUnit's token, once seen
        self.skipped = False  # "[SKIPPED]" seen before the verdict

    def outcome(self):
        if self.verdict is None:
            return "unknown"
        if self.verdict == "passed" and self.skipped:
            return "skipped"
        return self.verdict


def score(lines):
    """Returns [(test name, outcome)] in the order the log ran them (a repeated name repeats)."""
    done = []
    suite = None
    test = None

    def close():
        nonlocal test
        if test is not None:
            done.append((test.name, test.outcome()))
        test = None

    for line in lines:
        m = SUITE_LINE.match(line)
        if m:
            close()
            suite = m.group(1)
            continue
        m = TEST_LINE.match(line)
        if m:
            close()
            test = Test(f"{suite}.{m.group(1)}")
            text = m.group(2)  # what follows "...": the verdict when the test logged nothing
        elif SUMMARY_LINE.match(line):
            close()  # the last test ends where CUnit's summary table starts
            continue
        else:
            text = line
        # Only the lines up to the verdict belong to the test; later ones are ignored.
        if test is None or test.verdict is not None:
            continue
        v = VERDICT.match(text)
        if v:
            test.verdict = v.group(1)
        elif "[SKIPPED]" in text:
            test.skipped = True
    close()
    return done


def main(argv):
    files = [a for a in argv if not a.startswith("--")]
    if not files:
        sys.stderr.write(__doc__)
        return 2
    with open(files[0], encoding="utf-8", errors="replace") as f:
        ran = score(f.read().splitlines())
    # One verdict per name (a name that ran twice keeps its last one), in first-run order.
    outcome = dict(ran)
    if len(files) > 1:
        with open(files[1], "w") as f:
            json.dump(outcome, f, indent=1, sort_keys=True)
    for name, _ in ran:
        if outcome[name] in ("FAILED", "unknown"):
            print(outcome[name].upper(), name)
    if "--families" in argv:
        families = {}
        for name, v in outcome.items():
            families.setdefault(name.split(".")[0], Counter())[v] += 1
        for family, counts in families.items():
            print(f"  {family}: " + " ".join(f"{v}={n}" for v, n in sorted(counts.items())))
    total = Counter(outcome.values())
    line = f"{total['passed']} passed, {total['FAILED']} failed, {total['skipped']} skipped"
    if total["unknown"]:
        line += f", {total['unknown']} unknown"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
