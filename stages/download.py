"""Fetch the four MNIST .gz files into data/raw and verify the canonical md5 of each.

Sources, in order: $MNIST_MIRROR (a directory or an http(s)/file URL holding the four
original .gz files), then the public mirrors. All four verified files are written, or none.
"""

import src_path  # noqa: F401  (first: puts this checkout's src/ first on sys.path)

from mnistgan.data.mnist import MNIST_FILES, download, sources_from_env
from mnistgan.pipeline.stage import run_stage


def main(args, params):
    origins = download(args.out, sources_from_env(), MNIST_FILES)
    for name, where in origins.items():
        print(f"download: {name} <- {where} (md5 ok)")


def configure(parser):
    parser.add_argument("--out", default="data/raw", help="output directory (default: %(default)s)")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
