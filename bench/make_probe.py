"""A Broden-sized synthetic probe folder: ``--count`` (63,305) smooth random 224 px JPEGs in 100 class folders, for
timing the dissect stage and CLIP-Dissect's way on a machine that cannot download Broden (the GPU machine).

    python bench/make_probe.py /tmp/broden-synthetic [--count 63305] [--workers 16]

Decoding a 224 px JPEG costs about what Broden's tiles cost; the content is irrelevant to timing (random weights).
Made once: an existing complete folder is kept.
"""

from __future__ import annotations

import argparse
import os
import sys
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLASSES = 100


def _write(job: tuple[str, int]) -> None:
    from PIL import Image

    from xai.testing import planted_image

    folder, index = job
    path = Path(folder) / f"c{index % CLASSES:03d}" / f"img{index:05d}.jpg"
    if not path.is_file():
        Image.fromarray(planted_image(224, seed=index)).save(path, quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=63305)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    for index in range(CLASSES):
        (args.folder / f"c{index:03d}").mkdir(parents=True, exist_ok=True)
    with Pool(args.workers) as pool:
        pool.map(_write, [(str(args.folder), index) for index in range(args.count)], chunksize=256)
    print(f"{args.count} probe images in {args.folder}")


if __name__ == "__main__":
    main()
