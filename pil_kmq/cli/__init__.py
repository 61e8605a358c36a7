"""The `kmq` command: encode, decode, inspect and compare .kmq images.

Built on the same library calls a program would make (Image.save with the
KMQ options, Image.open, the container parser), so the command and the
library cannot drift apart. Every output goes through save_atomic.

Exit codes: 0 all succeeded, 1 some file failed, 2 usage error, 98 a file
larger than its input was not written (--skip-if-larger), 99 an image
missed --quality's minimum (both as pngquant); a stop signal or a closed
output pipe ends the process by that signal (128+n).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Sequence

from PIL import Image

from .. import __version__
from ..options import DEFAULT_COLORS, DEFAULT_SPEED, command_line_type, quality_from_text
from .convert import DEFAULT_DECODE_FORMAT, LABELS_RAW_SUFFIX, LABELS_SUFFIX, codec_params, run_decode, run_encode
from .views import parse_colour
from .info import run_info
from .interrupts import Interrupted, end_by_broken_pipe, end_by_signal, stop_signals_raise
from .sheet import DEFAULT_SHEET_COLORS, DEFAULT_SHEET_WIDTH, parse_colors_list, run_sheet
from .status import EXIT_INTERRUPTED, EXIT_USAGE, EXIT_OK, UsageError

__all__ = ["build_parser", "codec_params", "main"]


def _count(text: str) -> int:
    """argparse type for -j and --columns: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _add_batch_options(parser: argparse.ArgumentParser, what: str) -> None:
    outputs = parser.add_mutually_exclusive_group()
    outputs.add_argument("-o", "--output", metavar="OUT",
                         help=f"output file, for a single input; - writes standard output (default: {what})")
    outputs.add_argument("--out-dir", metavar="DIR",
                         help="write the outputs into DIR, created if missing "
                              "(default: beside each input)")
    parser.add_argument("-j", "--jobs", type=_count, default=1, metavar="N",
                        help="process N files at once in separate processes; "
                             "0 means one per CPU (default: 1)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("-f", "--force", action="store_true",
                          help="overwrite existing outputs, never an input (default: off, "
                               "existing files are left alone and reported as failures)")
    existing.add_argument("--skip-existing", action="store_true",
                          help="leave existing outputs alone and count them as skipped, "
                               "not failed (default: off)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress or summary line "
                             "(default: off; failures are always reported)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run the batch on a Dask distributed cluster, one task per "
                             "file (e.g. tcp://host:8786; needs pil-kmq[dask] and the same "
                             "paths on the workers; default: local processes, see -j)")


def _add_codec_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dither", action="store_true",
                        help="dither the colours (default: off)")
    parser.add_argument("--optimize", action="store_true",
                        help="compress the label map for a smaller file "
                             "(default: off, raw labels as in the tutorial)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kmq",
        description="Encode, decode and inspect .kmq (K-means colour-quantized) images.",
        epilog="Exit status: 0 if every file succeeded, 1 if any failed, 2 for usage errors, "
               "98 if --skip-if-larger left a file unwritten, "
               "99 if an image missed --quality's minimum. "
               "Run 'kmq COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    encode = commands.add_parser(
        "encode", help="compress images to .kmq",
        description="Compress images (any format Pillow reads) to .kmq. "
                    "A folder argument means the images in it.")
    encode.add_argument("inputs", nargs="+", metavar="IN",
                        help="image files or folders; - reads standard input")
    encode.add_argument("-k", "--colors", type=command_line_type("colors", int), metavar="K",
                        help=f"colours in the codebook, 1..256 (default: {DEFAULT_COLORS}, "
                             "or the fewest reaching --quality or --psnr)")
    targets = encode.add_mutually_exclusive_group()
    targets.add_argument("--quality", type=command_line_type("quality", quality_from_text),
                         metavar="MIN-MAX",
                         help="pngquant's quality, 0-100: the fewest colours reaching MAX; "
                              "an image below MIN is not written and the exit status is 99 "
                              "(MAX alone: MIN 0; default: off, K comes from -k)")
    targets.add_argument("--psnr", type=command_line_type("psnr", float), metavar="DB",
                         help="target PSNR in dB: the fewest colours reaching it "
                              "(default: off, K comes from -k)")
    encode.add_argument("--speed", type=command_line_type("speed", int), metavar="N",
                        help=f"k-means effort, 1 (best) to 10 (fastest), as pngquant's --speed "
                             f"(default: {DEFAULT_SPEED})")
    _add_codec_options(encode)
    encode.add_argument("--frame", type=_count, default=0, metavar="N",
                        help="the frame of a multi-frame image (an animation, a multi-page "
                             "TIFF) to encode, from 0 (default: 0)")
    encode.add_argument("--skip-if-larger", action="store_true",
                        help="do not write a .kmq file larger than its input; such a file "
                             "is counted as skipped and the exit status is 98, as pngquant's "
                             "(default: off, written with a warning)")
    encode.add_argument("--coding", type=command_line_type("coding", str), metavar="NAME",
                        help="store the labels with this coding: raw, zlib, xz or zstd (zstd: "
                             "small files that decode fastest; default: raw, or with "
                             "--optimize the smallest)")
    _add_batch_options(encode, "IN with its suffix changed to .kmq; for - (stdin), stdout")
    encode.set_defaults(run=run_encode, parser=encode)

    decode = commands.add_parser(
        "decode", help="decode .kmq files to PNG or any format Pillow writes",
        description="Decode .kmq files to images. A folder argument means the .kmq files in it.")
    decode.add_argument("inputs", nargs="+", metavar="IN.kmq",
                        help=".kmq files or folders; - reads standard input")
    decode.add_argument("--format", metavar="FMT",
                        help="output format, a Pillow format name or extension such as png, "
                             f"webp or jpg (default: from -o's extension, else {DEFAULT_DECODE_FORMAT})")
    views = decode.add_mutually_exclusive_group()
    views.add_argument("--labels", action="store_true",
                       help="write the segmentation: each label in its own distinct false "
                            f"colour, named IN{LABELS_SUFFIX}.png (default: off, write the colours)")
    views.add_argument("--labels-raw", action="store_true",
                       help="write the label map for tools: a mode L image whose values are "
                            f"the labels, named IN{LABELS_RAW_SUFFIX}.png (default: off)")
    decode.add_argument("--background", type=parse_colour, metavar="COLOR",
                        help="flatten transparency onto COLOR (a Pillow colour: white, "
                             "#rrggbb, ...), needed for formats without alpha such as JPEG "
                             "(default: keep the alpha channel)")
    decode.add_argument("--max-pixels", type=_count, metavar="N",
                        help="Pillow's Image.MAX_IMAGE_PIXELS for these files, on every path "
                             "(.npy and TIFF outputs too: a small file can claim a huge image): "
                             "warn past N pixels, refuse past 2 x N; 0: no limit "
                             f"(default: Pillow's, {Image.MAX_IMAGE_PIXELS:,})")
    _add_batch_options(decode, "IN with its suffix changed to the format's; for - (stdin), stdout")
    decode.set_defaults(run=run_decode, parser=decode)

    info = commands.add_parser(
        "info", help="show a .kmq file's header and size accounting",
        description="Show a .kmq file's header fields and the size table: original bits "
                    "(8 per channel per pixel), label bits, codebook bits, total, ratio, "
                    "and the actual file size.")
    info.add_argument("inputs", nargs="+", metavar="FILE.kmq",
                      help=".kmq files or folders, - for standard input; one file gets the "
                           "full report, several a table with one row each")
    info.add_argument("--original", metavar="IMG",
                      help="also report MSE and PSNR against this image, for a single "
                           "FILE.kmq (default: none)")
    info.add_argument("--json", action="store_true",
                      help="print machine-readable JSON instead of text: a list with one "
                           "report per file; an identical image has psnr_db null (default: off)")
    info.set_defaults(run=run_info, parser=info)

    sheet = commands.add_parser(
        "sheet", help="compare an image with its reconstructions at several K",
        description="Draw the original and its .kmq reconstruction at each K side by side, "
                    "each labelled with K, PSNR and file size, under the file's name.")
    sheet.add_argument("image", metavar="IMG", help="the image to compress")
    sheet.add_argument("-k", "--colors", type=parse_colors_list,
                       default=list(DEFAULT_SHEET_COLORS), metavar="K,K,...",
                       help="the K values to show (default: "
                            f"{','.join(map(str, DEFAULT_SHEET_COLORS))})")
    sheet.add_argument("-o", "--output", metavar="OUT",
                       help="the sheet image; its extension picks the format "
                            "(default: IMG's name with .sheet.png, in the current folder)")
    sheet.add_argument("--columns", type=_count, metavar="N",
                       help="panels per row (default: one row if it fits --width, else 3 per row)")
    sheet.add_argument("--width", type=_count, default=DEFAULT_SHEET_WIDTH, metavar="PX",
                       help=f"fit the sheet to this width, 0 for full size "
                            f"(default: {DEFAULT_SHEET_WIDTH})")
    _add_codec_options(sheet)
    sheet.add_argument("-f", "--force", action="store_true",
                       help="overwrite an existing sheet (default: off)")
    sheet.set_defaults(run=run_sheet, parser=sheet)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default sys.argv[1:]); the exit code.

    A stop signal (SIGINT, SIGTERM, SIGHUP) ends the workers and removes
    temporary files, then ends this process by that signal; a closed
    output pipe ends it quietly by SIGPIPE, as coreutils do.
    """
    try:
        with stop_signals_raise():
            code = _run(argv)
            sys.stdout.flush()  # here, where a closed pipe can still be handled
            return code
    except Interrupted as stop:
        with contextlib.suppress(Exception):
            print(f"kmq: interrupted by {signal.Signals(stop.signum).name}", file=sys.stderr)
        return end_by_signal(stop.signum)
    except BrokenPipeError:
        return end_by_broken_pipe()
    except KeyboardInterrupt:  # no handler could be installed (not the main thread)
        print("kmq: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return args.run(args)
    except SystemExit as exit:  # argparse: --help, --version, usage errors
        return exit.code if isinstance(exit.code, int) else EXIT_OK if exit.code is None else EXIT_USAGE
    except UsageError as exc:
        args.parser.print_usage(sys.stderr)
        print(f"kmq {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
