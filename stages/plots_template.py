"""The page template of `dvc plots show` / `dvc plots diff`, with the Vega libraries inlined.

Writes --out (build/plots_template.html, which .dvc/config's plots.html_template names): DVC's
page layout with vega, vega-lite and vega-embed from the vl-convert-python package inside it
instead of <script> tags that load them from a CDN, so the plots render with no network.
See src/mnistgan/pipeline/plots_template.py.
"""

import src_path  # noqa: F401  (first: puts this checkout's src/ first on sys.path)

from mnistgan.pipeline import plots_template
from mnistgan.pipeline.stage import run_stage


def main(args, params):
    size = plots_template.write(args.out)
    print(f"plots_template: {args.out} ({size / 1e6:.1f} MB, Vega-Lite {plots_template.VEGA_LITE}, no CDN)")


def configure(parser):
    parser.add_argument("--out", default="build/plots_template.html", help="the template (default: %(default)s)")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
