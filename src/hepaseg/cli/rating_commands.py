"""The blinded expert rating: ``hepaseg rate init | serve | simulate | export`` (docs/rating.md)."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .common import subparser


def _names(values: list[str]) -> list[str]:
    """Names given as ``A B`` or ``A,B`` (or both)."""
    return [name for value in values for name in value.split(",") if name]


def _folder_step(sub, name: str, help_text: str, example: str):
    """A step that works on a rating folder: its parser, with the positional ``folder``."""
    p = subparser(sub, name, help_text, example)
    p.add_argument("folder", type=Path, help="rating folder of 'hepaseg rate init'")
    return p


def add_rate(sub) -> None:
    p = subparser(sub, "rate", "The blinded expert rating of the automatic contours (the paper's Fig. 4): "
                  "prepare, serve the web app, simulate a rater on a synthetic cohort, export.",
                  "hepaseg rate init study/ -o rating/ --raters R3 && hepaseg rate serve rating/")
    rate = p.add_subparsers(dest="rate_command", required=True, metavar="STEP")
    add_init(rate)
    add_serve(rate)
    add_simulate(rate)
    add_export(rate)


def add_init(sub) -> None:
    p = subparser(sub, "init", "Prepare a rating folder from a study folder: the seeded protocol (one round per "
                  "algorithm, each case once per round, each rater their own order), the images, and one "
                  "secret sign-in token per rater (in FOLDER/tokens.txt).",
                  "hepaseg rate init study/ -o rating/ --raters R3 --algorithms A1 A2 --split test,unlabeled --seed 0")
    p.add_argument("study", type=Path, help="study folder (preds/<algorithm>/, eval/evaluation.json)")
    p.add_argument("-o", "--out", type=Path, required=True, help="new rating folder")
    p.add_argument("--raters", nargs="+", required=True, help="rater names (space or comma separated)")
    p.add_argument("--algorithms", nargs="+", default=None, help="folders of STUDY/preds (default: all)")
    p.add_argument("--split", default="test,unlabeled", help="manifest splits to rate (default test,unlabeled)")
    p.add_argument("--seed", type=int, default=0, help="the protocol's seed (default 0)")
    p.add_argument("--manifest", type=Path, default=None, help="dataset.json (default: the one STUDY evaluated)")
    p.set_defaults(func=_run_init)


def _run_init(args) -> None:
    from ..rating.prepare import TOKENS_FILE, init_rating

    result = init_rating(args.study, args.out, _names(args.raters), _names(args.algorithms or []) or None,
                         _names([args.split]), args.seed, args.manifest)
    print(f"rating folder {result.folder}: {len(result.cases)} cases x {len(result.algorithms)} rounds "
          f"for {', '.join(result.tokens)}")
    print(f"sign-in tokens in {result.folder / TOKENS_FILE} (hand them out, then delete the file)")


def add_serve(sub) -> None:
    p = _folder_step(sub, "serve", "Serve the rating web app and print one sign-in link per rater. Binds "
                  "127.0.0.1 unless --host says otherwise (then it warns: see docs/rating.md).",
                  "hepaseg rate serve rating/ --host 127.0.0.1 --port 8000")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="another Host name the app answers to (e.g. the proxy's); repeatable")
    p.set_defaults(func=_run_serve)


def _run_serve(args) -> None:
    from ..rating.serve import serve

    serve(args.folder, args.host, args.port, args.allowed_host)


def add_simulate(sub) -> None:
    p = _folder_step(sub, "simulate", "SIMULATED rater for a synthetic cohort: rate every contour from its Dice with "
                  "the hidden true tumour mask plus rater noise (labelled as simulated in every output).",
                  "hepaseg rate simulate rating/ --seed 0")
    p.add_argument("--raters", nargs="+", default=None, help="which raters to simulate (default: all)")
    p.add_argument("--seed", type=int, default=0, help="the simulated rater's seed (default 0)")
    p.add_argument("--noise", type=float, default=None, help="SD of the rating noise (default 0.5)")
    p.set_defaults(func=_run_simulate)


def _run_simulate(args) -> None:
    from ..rating.simulate import DEFAULT_NOISE, simulate_ratings

    noise = DEFAULT_NOISE if args.noise is None else args.noise
    if noise < 0:
        raise InputError(None, "--noise must not be negative")
    count = simulate_ratings(args.folder, args.seed, noise, _names(args.raters or []) or None)
    print(f"SIMULATED rater: {count} contours rated in {args.folder}")


def add_export(sub) -> None:
    p = _folder_step(sub, "export", "Export the ratings: ratings.csv, summary (mean / median / share 4-5 per "
                  "algorithm, by image quality), Fig. 4 (rating.png) and the Wilcoxon test of paired ratings.",
                  "hepaseg rate export rating/ -o rating/results/")
    p.add_argument("-o", "--out", type=Path, default=None, help="results folder (default FOLDER/results)")
    p.set_defaults(func=_run_export)


def _run_export(args) -> None:
    from ..rating.export import export_ratings

    result = export_ratings(args.folder, args.out or args.folder / "results")
    s = result.summary
    label = " (SIMULATED rater)" if s["simulated"] else ""
    print(f"{s['rated']} of {s['items']} contours rated{label}; results in {result.folder}")
    for algorithm, d in s["per_algorithm"].items():
        print(f"  {algorithm}: mean {d['mean']:.2f}, median {d['median']:g}, rated 4-5: {d['share_4_5'] * 100:.0f} %")
