"""Runs the README's grpcurl walkthrough against a server and compares each command's
output with the transcript the README shows.

    python3 tests/clients/python/readme_walkthrough.py README.md HOST:PORT

The walkthrough is the `console` blocks of the section "## A walkthrough with grpcurl":
a line `$ COMMAND` (continued while it ends with a backslash) followed by the command's
output, up to the next `$ ` line or the block's end. A command of the form `NAME=VALUE`
sets a variable for the commands after it; where VALUE is the README's address
(127.0.0.1:50051), HOST:PORT replaces it. Every other command runs in bash, with its
standard output and standard error together, as a terminal shows them, and must print
exactly what the README shows; only trailing blank lines are ignored. The server must
be fresh (an empty data directory), as the revisions shown are those of a fresh one.

Exits 0 when every command printed what the README shows, 1 with a diff of each that
did not, 2 when the README has no such walkthrough.
"""

import difflib
import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass, field

SECTION = "## A walkthrough with grpcurl"
README_ADDRESS = "127.0.0.1:50051"
ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\S+)$")
# A bound on one command, which answers at once: a safety net against a hung call.
COMMAND_BOUND_SECONDS = 60


@dataclass
class Step:
    """One command of the transcript and what the README shows it printing."""

    line: int
    command: str
    expected: list[str] = field(default_factory=list)


def section(readme: str) -> list[tuple[int, str]]:
    """The lines of the walkthrough's section, numbered as in the file."""
    lines = list(enumerate(readme.splitlines(), start=1))
    starts = [i for i, (_, text) in enumerate(lines) if text.strip() == SECTION]
    if not starts:
        return []
    body = lines[starts[0] + 1 :]
    ends = [i for i, (_, text) in enumerate(body) if text.startswith("## ")]
    return body[: ends[0]] if ends else body


def steps(lines: list[tuple[int, str]]) -> list[Step]:
    """The commands of the section's `console` blocks, each with its expected output."""
    found: list[Step] = []
    in_console = False
    continuing = False
    for number, text in lines:
        if not in_console:
            in_console = text.strip() == "```console"
            continue
        if text.strip() == "```":
            in_console = False
            continuing = False
        elif continuing:
            found[-1].command += "\n" + text
            continuing = text.endswith("\\")
        elif text.startswith("$ "):
            found.append(Step(number, text[2:]))
            continuing = text.endswith("\\")
        elif found:
            found[-1].expected.append(text)
    return found


def trimmed(lines: list[str]) -> list[str]:
    """`lines` without trailing blank lines."""
    end = len(lines)
    while end > 0 and not lines[end - 1].strip():
        end -= 1
    return lines[:end]


def run(command: list[str]) -> list[str]:
    """The lines `command` printed, standard output and standard error together. It runs
    in a process group of its own, so that a command that hangs is killed whole."""
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            output, _ = process.communicate(timeout=COMMAND_BOUND_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            output += f"\n(killed after {COMMAND_BOUND_SECONDS} s)"
    return output.splitlines()


def main(readme_path: str, address: str) -> int:
    with open(readme_path, encoding="utf-8") as readme:
        walkthrough = steps(section(readme.read()))
    if not walkthrough:
        print(f"{readme_path}: no `console` transcript under {SECTION!r}", file=sys.stderr)
        return 2

    variables: list[str] = []
    failures = 0
    for step in walkthrough:
        assignment = ASSIGNMENT.match(step.command)
        if assignment:
            name, value = assignment.groups()
            value = address if value == README_ADDRESS else value
            variables.append(f"{name}={shlex.quote(value)}")
            actual: list[str] = []
        else:
            actual = run(["bash", "-c", "\n".join([*variables, step.command])])
        expected = trimmed(step.expected)
        actual = trimmed(actual)
        if actual != expected:
            failures += 1
            diff = difflib.unified_diff(
                expected, actual, readme_path, "what it printed", lineterm=""
            )
            print(f"{readme_path}:{step.line}: $ {step.command}", file=sys.stderr)
            print("\n".join(diff), file=sys.stderr)
            print(file=sys.stderr)

    if failures:
        print(
            f"{failures} of {len(walkthrough)} commands of the README's walkthrough printed "
            "other than what it shows (diffs above)",
            file=sys.stderr,
        )
        return 1
    print(f"{len(walkthrough)} commands of the README's walkthrough printed what it shows")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
