#!/usr/bin/env python3
"""help_matches.py SCRIPT BINARY [EXTRA...]: a wrapper script's --help says what its binary accepts.

Every option BINARY's --help lists is named in SCRIPT's --help; every option
SCRIPT's --help names is BINARY's or one of EXTRA (the script's own); and
where the script spells an option's values out (`--opt a|b|c`), they are
exactly the values the binary accepts (CLI11 prints `--opt TEXT:{a,b,c}`).
A user reads the script's help; the binary is what parses the flags.
Exit 0 when they agree, 1 naming each difference, 2 when a help cannot be run.
"""
import re
import subprocess
import sys

OPTION = re.compile(r"--[a-z][a-z0-9-]*")


def help_text(command):
    try:
        r = subprocess.run([command, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        sys.exit(f"help_matches: cannot run {command} --help: {e}")
    if r.returncode != 0:
        sys.exit(f"help_matches: {command} --help exited {r.returncode}")
    return r.stdout


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    script, binary, extra = sys.argv[1], sys.argv[2], set(sys.argv[3:]) | {"--help", "--version"}
    s_text, b_text = help_text(script), help_text(binary)
    s_opts, b_opts = set(OPTION.findall(s_text)), set(OPTION.findall(b_text))
    wrong = [f"{script} --help does not mention {o}, which {binary} accepts" for o in sorted(b_opts - s_opts - extra)]
    wrong += [f"{script} --help names {o}, which {binary} does not accept" for o in sorted(s_opts - b_opts - extra)]
    for opt, values in re.findall(r"(--[a-z][a-z0-9-]*) ([a-z0-9-]+(?:\|[a-z0-9-]+)+)", s_text):
        accepted = re.search(re.escape(opt) + r"\b[^\n{]*\{([^}]*)\}", b_text)
        if accepted and set(values.split("|")) != set(v.strip() for v in accepted.group(1).split(",")):
            wrong.append(f"{script} --help gives {opt} the values {values}; {binary} accepts {{{accepted.group(1)}}}")
    for w in wrong:
        print("help_matches: " + w)
    if not wrong:
        print(f"help_matches: {script} and {binary} agree")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
