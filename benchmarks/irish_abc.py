"""One-to-many music generation: a char LSTM on Irish folk tunes in ABC notation, then the share
of sampled tunes that pass a simple ABC check.

The check (written here, not a full ABC parser): a tune is a block of lines that
  - starts with an `X:` header line (reference number) and has `T:` (title), `M:` (metre, e.g.
    6/8, C, C|) and `K:` (key) header lines, `K:` being the last header;
  - has at least one body line after `K:`, made only of ABC music characters (notes a-g A-G,
    octave marks , ', accidentals ^ _ =, lengths digits and /, bars | : [ ], rests z, spaces,
    ties/slurs - ( ), grace braces { }, chord quotes "...", decorations ~ . and line breaks \\);
  - has balanced double quotes (chord symbols) in its body; field lines that ABC allows inside a
    body (K: M: L: P: Q: W: w:, e.g. a key change) are accepted there.

Usage: python benchmarks/irish_abc.py [--minutes 10] [--tunes 50] [--threads N]
Writes benchmarks/results/irish_abc.{json,md} and keeps the run in runs/bench-irish-abc.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import torch

from rnnlab.tasks.lm.presets import preset_configs
from rnnlab.tasks.lm.run import LMRun
from rnnlab.tasks.lm.train import train_lm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import save_record  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
HEADER = re.compile(r"^([A-Za-z]):(.*)$")
METRE = re.compile(r"^\s*(C\|?|\d+/\d+)\s*$")
BODY = re.compile(r"""^[a-gA-GzZxX,'^_=0-9/|:\[\]\s\-(){}"~.<>!+#a-zA-Z\\]*$""")


def check_tune(text: str) -> tuple[bool, str]:
    """(passes, reason) for one sampled tune."""
    lines = [line for line in text.strip("\n").split("\n") if line.strip()]
    if not lines or not lines[0].startswith("X:"):
        return False, "no X: header first"
    headers: dict[str, str] = {}
    body_start = None
    for index, line in enumerate(lines):
        match = HEADER.match(line)
        if match and body_start is None:
            headers[match.group(1)] = match.group(2)
            if match.group(1) == "K":
                body_start = index + 1
        elif body_start is None:
            return False, f"body before K: ({line[:20]!r})"
    for field in ("T", "M", "K"):
        if field not in headers:
            return False, f"missing {field}:"
    if not METRE.match(headers["M"]):
        return False, f"bad metre {headers['M']!r}"
    body = lines[body_start:]
    if not body:
        return False, "no body"
    for line in body:
        match = HEADER.match(line)
        if match and match.group(1) not in "KMLPQWw":
            return False, f"header {match.group(1)}: inside body"
        if match:
            continue
        if not BODY.match(line):
            return False, f"bad body line {line[:20]!r}"
    joined = "".join(body)
    if joined.count('"') % 2:
        return False, "unbalanced quotes"
    return True, "ok"


def split_tunes(text: str) -> list[str]:
    """Tunes start at `X:` lines; the text before the first one is a partial tune."""
    parts = re.split(r"(?m)^(?=X:)", text)
    return [p for p in parts if p.startswith("X:")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--tunes", type=int, default=50)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--run-dir", default="runs/bench-irish-abc")
    parser.add_argument("--prime", default="X:",
                        help="what each sampled tune starts with, after a blank line (e.g. "
                             "'X:1' plus a newline: the reference number, as every tune has one)")
    parser.add_argument("--reuse", action="store_true",
                        help="sample from the model already in --run-dir instead of training")
    args = parser.parse_args()
    prime = args.prime.encode().decode("unicode_escape")  # let '\n' be given on a command line
    config, train = preset_configs("irish-abc", minutes=args.minutes, threads=args.threads)
    run_dir = Path(args.run_dir)
    if args.reuse:
        summary = {"reused_run": str(run_dir)}
    else:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        summary = train_lm(config, train, run_dir, show_progress=False)
    lm = LMRun(run_dir, "cpu")
    tunes, verdicts, seed = [], [], 0
    while len(tunes) < args.tunes:
        text = prime + "".join(lm.generate("\n\n" + prime, 600, seed=seed, temperature=0.8))
        seed += 1
        tune = split_tunes(text)[0]  # the first tune the prime starts
        if "\n\n" in tune:
            tune = tune.split("\n\n")[0]
        tunes.append(tune)
        verdicts.append(check_tune(tune))
    passed = sum(ok for ok, _ in verdicts)
    valid = lm.evaluate("valid")
    result = {"command": " ".join(["python", *sys.argv]), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "train": summary, "valid": valid,
              "tunes": len(tunes), "passed": passed, "share": passed / len(tunes),
              "reasons": [r for _, r in verdicts], "examples": tunes[:3]}
    md = [
        "# irish-abc: char LSTM tunes", "",
        f"Command: `{result['command']}`; "
        + (f"{summary['steps']} steps in {summary['seconds'] / 60:.1f} min, "
           if "steps" in summary else f"the model already in {summary['reused_run']}, ")
        + f"{result['threads']} threads; valid {valid['bpc']:.3f} bits/char.", "",
        f"{passed} of {len(tunes)} sampled tunes ({100 * passed / len(tunes):.0f}%) pass the "
        "ABC check (temperature 0.8).", "", "First sampled tune:", "", "```", tunes[0], "```",
    ]
    save_record("irish_abc", result, "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
