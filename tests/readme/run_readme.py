#!/usr/bin/env python3
"""Runs the README's shell examples as printed, so they stay true.

Every ```sh block of README.md runs, in order, in a fresh sandbox: HOME and HEARTH_MODELS are
temporary folders, the working folder has ../shared beside it (so `../shared/models/...` works as
in a checkout), `hearth` is the freshly built binary on PATH, and the API port 11434 is replaced by
a free one (HEARTH_HOST points the clients at it). A block is skipped only when the line before its
fence says why:

    <!-- readme-test: skip (needs the network) -->

A block fails when a command in it fails (each block runs under `bash -e -o pipefail`) or when an
expected-output comment does not match: a line `# → TEXT` after a command means the block's output
must contain TEXT, whitespace aside; `...` in TEXT stands for anything (so ids and timings can
vary), and continuation lines (`#   more`) belong to the `# →` line above them. Numbers with a
decimal point match within 0.1% or two units of their last digit (summation order differs between
SIMD paths and build types); integers must be equal.

Variables assigned at the start of a line (`M=...`) carry over to later blocks, as they would in the
reader's shell. A line starting `hearth serve` and ending in `&` is followed by a wait until the
server answers, as a person would wait before typing the next command.

Usage: run_readme.py README HEARTH_BIN SHARED_DIR   (exit 0: all passed; 77: bash/curl missing)
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((.+?)\)\s*-->")


def blocks(readme):
    lines = open(readme, encoding="utf-8").read().split("\n")
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() in ("```sh", "```bash"):
            start = i + 1
            j = start
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            prev = ""
            k = i - 1
            while k >= 0 and lines[k].strip() == "":
                k -= 1
            if k >= 0:
                prev = lines[k]
            m = SKIP.search(prev)
            out.append({"line": start, "text": "\n".join(lines[start:j]), "skip": m.group(1) if m else None})
            i = j + 1
        else:
            i += 1
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_health(port, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                c.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                if c.recv(64).startswith(b"HTTP/1.1 200"):
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def expectations(text):
    """The `# →` fragments of a block, continuation lines (`#   ...`) joined."""
    exp = []
    for line in text.split("\n"):
        s = line.strip()
        if s.startswith("# →"):
            exp.append(s[len("# →"):].strip())
        elif s.startswith("#  ") and exp and not s.startswith("# →"):
            exp[-1] += " " + s[1:].strip()
    return exp


NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def number_close(expected, got):
    """Integers must be equal; a decimal may differ by 0.1% or by two units of its last digit.

    Floating-point results (perplexities, KL divergences, statistics) are summed in a different
    order by each SIMD path and compiler optimization level, so their last printed digits differ
    between CPUs and between the Release and sanitizer builds.
    """
    if "." not in expected:
        return expected == got
    e, g = float(expected), float(got)
    ulp = 10.0 ** -len(expected.split(".")[1])
    return abs(e - g) <= max(1e-3 * abs(e), 2 * ulp)


def fragment_regex(part):
    """A whitespace-free fragment as a regex: literal text, every number captured."""
    out, last, numbers = [], 0, []
    for m in NUMBER.finditer(part):
        out.append(re.escape(part[last:m.start()]))
        out.append(f"({NUMBER.pattern})")
        numbers.append(m.group(0))
        last = m.end()
    out.append(re.escape(part[last:]))
    return re.compile("".join(out)), numbers


def matches(expected, output):
    # Whitespace is ignored: the README wraps long outputs over several comment lines.
    flat = "".join(output.split())
    parts = ["".join(p.split()) for p in expected.split("...")]
    pos = 0
    for p in parts:
        if not p:
            continue
        rx, numbers = fragment_regex(p)
        at = pos
        while True:
            m = rx.search(flat, at)
            if m is None:
                return False
            if all(number_close(e, g) for e, g in zip(numbers, m.groups())):
                break
            at = m.start() + 1
        pos = m.end()
    return True


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    readme, hearth_bin, shared = sys.argv[1:]
    if shutil.which("bash") is None or shutil.which("curl") is None:
        print("readme: bash or curl missing; skipped")
        return 77
    os.setpgrp()  # so every server a block starts is stopped at the end
    root = tempfile.mkdtemp(prefix="hearth-readme-")
    work = os.path.join(root, "work")
    os.makedirs(work)
    os.symlink(os.path.realpath(shared), os.path.join(root, "shared"))
    port = free_port()
    env = dict(os.environ)
    env.update({
        "HOME": os.path.join(root, "home"),
        "HEARTH_MODELS": os.path.join(root, "models"),
        "HEARTH_HOST": f"127.0.0.1:{port}",
        "PATH": os.path.dirname(os.path.realpath(hearth_bin)) + os.pathsep + env.get("PATH", ""),
        "NO_COLOR": "1",
    })
    os.makedirs(env["HOME"])
    # What a reader of the examples has around: a folder of GGUF files (`serve --models ~/gguf`).
    os.makedirs(os.path.join(env["HOME"], "gguf"))
    os.symlink(os.path.realpath(os.path.join(shared, "models", "stories260K.gguf")),
               os.path.join(env["HOME"], "gguf", "stories.gguf"))
    carried = []
    failed = 0
    ran = 0
    skipped = 0
    try:
        for b in blocks(readme):
            where = f"README.md:{b['line']}"
            if b["skip"]:
                skipped += 1
                print(f"skip {where}: {b['skip']}")
                continue
            text = b["text"].replace("11434", str(port))
            script = []
            for line in text.split("\n"):
                if re.match(r"^\s*(\S+=\S+\s+)*hearth serve\b", line):
                    background = re.search(r"&\s*(#.*)?$", line) is not None
                    cmd = re.sub(r"&?\s*(#.*)?$", "", line)
                    # A background server must not hold the block's output pipe open. A server
                    # started in the foreground would run until stopped: wait until it answers
                    # (or fails), then stop it, as the reader would with Ctrl-C.
                    # One server per port, as for the reader: stop those earlier blocks started.
                    script.append("for _p in $(cat servers.pids 2>/dev/null); do kill $_p 2>/dev/null || true; "
                                  "while kill -0 $_p 2>/dev/null; do sleep 0.05; done; done; rm -f servers.pids")
                    # Ready when it prints its "listening on" line (the port may be 0: any).
                    script.append("_n=$(grep -c 'listening on' serve.log 2>/dev/null || true)")
                    script.append(f"{cmd} >>serve.log 2>&1 &")
                    script.append("_srv=$!")
                    script.append(
                        "for _ in $(seq 300); do [ \"$(grep -c 'listening on' serve.log)\" -gt \"${_n:-0}\" ] && break; "
                        "kill -0 $_srv 2>/dev/null || { tail -3 serve.log; exit 1; }; sleep 0.1; done")
                    if background:
                        script.append("echo $_srv >> servers.pids")
                    else:
                        script.append("kill -TERM $_srv; wait $_srv")
                    continue
                script.append(line)
            prelude = "\n".join(carried)
            proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", prelude + "\n" + "\n".join(script)],
                                  cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=300, text=True, errors="replace")
            ran += 1
            problems = []
            if proc.returncode != 0:
                problems.append(f"exit code {proc.returncode}")
            for e in expectations(text):
                if not matches(e, proc.stdout):
                    problems.append(f"expected output not found: {e!r}")
            if problems:
                failed += 1
                print(f"FAIL {where}: " + "; ".join(problems))
                print("  block:\n    " + "\n    ".join(text.split("\n")))
                print("  output:\n    " + "\n    ".join(proc.stdout[-3000:].split("\n")))
            else:
                print(f"ok   {where}")
            for line in text.split("\n"):
                if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=\S+(\s+#.*)?$", line) and "$(" not in line:
                    carried.append(line.split("#")[0].strip())
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.killpg(0, signal.SIGTERM)
        time.sleep(0.5)
        shutil.rmtree(root, ignore_errors=True)
    print(f"readme: {ran - failed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
