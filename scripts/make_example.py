"""Re-make the bundled example (gensep/data/example/) from the choir renderer.

Renders one chorale of the choir *test* split (a tune never used for training) with the
test soundfont, cut to a few seconds, and copies its stems, F0 truth and provenance into
the package. Run: .venv/bin/python scripts/make_example.py [--seconds 6] [--seed 0]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from gensep import atomic
from gensep.data.choir import render_choir

TARGET = Path(__file__).resolve().parents[1] / "gensep" / "data" / "example"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        meta = render_choir(
            tmp, n_train=0, n_test=1, seed=args.seed, max_seconds=args.seconds, progress=False
        )
        (folder,) = [p for p in (Path(tmp) / "test").iterdir() if p.is_dir()]
        TARGET.mkdir(parents=True, exist_ok=True)
        for old in TARGET.iterdir():
            old.unlink()
        for path in sorted(folder.iterdir()):
            shutil.copy2(path, TARGET / path.name)
        meta["example"] = {"track": folder.name, "split": "test", "seconds": args.seconds}
        atomic.write_json(TARGET / "meta.json", meta)
    size = sum(p.stat().st_size for p in TARGET.iterdir())
    print(f"wrote {TARGET} ({folder.name}, {size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
