"""The ``decode-omics`` command line: deconvolve bulk files with DECODE, or run the demo."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

EXIT_USAGE = 2
EXIT_INPUT = 3


class InputError(Exception):
    """A problem with the user's files or arguments (reported without a traceback)."""


_DEMO_DESCRIPTION = (
    "Splits the 700 cells of scanpy's bundled pbmc68k_reduced in two halves, mixes 60 pseudo-bulk samples of known "
    "composition from one half, deconvolves them with DECODE trained on the other half (and with NNLS for "
    "comparison) and prints CCC and RMSE. No download."
)


def _measurement_noise(value: str) -> float | str:
    """``--measurement-noise``: ``auto`` or a number >= 0."""
    if value == "auto":
        return value
    try:
        sd = float(value)
    except ValueError:
        sd = -1.0
    if not sd >= 0:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a number >= 0, got {value!r}")
    return sd


def _label_values(value: str) -> dict[str, float]:
    """``--mean-fractions``: ``LABEL=VALUE`` pairs separated by commas (the values are checked against the model's
    labels before training)."""
    out = {}
    for pair in value.split(","):
        label, sep, number = pair.partition("=")
        try:
            out[label.strip()] = float(number)
        except ValueError:
            sep = ""
        if not sep or not label.strip():
            raise argparse.ArgumentTypeError(f"must be LABEL=VALUE pairs separated by commas, got {pair!r}")
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="decode-omics",
        description=(
            "Deconvolve bulk transcriptomics, proteomics or metabolomics samples into cell-type or cell-state "
            "fractions with DECODE, from a labelled single-cell reference."
        ),
        epilog="Run 'decode-omics COMMAND --help' for the options of a command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    dec = sub.add_parser(
        "deconvolve",
        help="deconvolve a bulk .h5ad (or each modality of a .h5mu) with a single-cell reference",
        description=(
            "Train DECODE on pseudo-tissues from the reference, aligned to the bulk samples, and write the fractions "
            "into the output file (obsm[KEY], and for .h5mu also mdata.obsm[KEY_<modality>])."
        ),
        epilog=(
            "examples:\n"
            "  decode-omics deconvolve --reference ref.h5ad --labels-key cell_type --bulk bulk.h5ad --out out.h5ad\n"
            "  decode-omics deconvolve --reference rna=rna_ref.h5ad --reference prot=prot_ref.h5ad \\\n"
            "      --labels-key cell_type --bulk cohort.h5mu --out cohort_deconvolved.h5mu --mode absolute"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dec.add_argument(
        "--reference",
        required=True,
        action="append",
        metavar="[MOD=]REF.h5ad",
        help="single-cell reference; for .h5mu bulk give one per modality as MOD=path (repeatable)",
    )
    dec.add_argument("--labels-key", required=True, help="obs column of the reference with cell types or states")
    dec.add_argument("--bulk", required=True, metavar="BULK.h5ad|BULK.h5mu", help="bulk samples x features")
    dec.add_argument("--out", required=True, metavar="OUT.h5ad|OUT.h5mu", help="where to write the result")
    dec.add_argument(
        "--mode",
        choices=["relative", "absolute"],
        default="relative",
        help="relative fractions, or absolute with an 'unknown' share (default: relative)",
    )
    dec.add_argument("--key-added", default="decode", help="key for the results (default: decode)")
    dec.add_argument("--layer", default=None, help="bulk layer to use instead of X")
    dec.add_argument("--reference-layer", default=None, help="reference layer to use instead of X")
    scales = ["auto", "counts", "linear", "log1p", "log2", "as_is"]
    dec.add_argument("--scale", default="auto", choices=scales, help="scale of the bulk (default: detected)")
    dec.add_argument(
        "--reference-scale", default="auto", choices=scales, help="scale of the reference(s) (default: detected)"
    )
    dec.add_argument(
        "--backed",
        action="store_true",
        help="keep the reference(s) on disk (h5ad opened backed): statistics streamed, cells read in pools",
    )
    dec.add_argument("--max-epochs", type=int, default=None, help="training epochs (default: 100, early stopping)")
    dec.add_argument("--n-pseudotissues", type=int, default=None, help="pseudo-tissues per epoch (default: 2048)")
    dec.add_argument(
        "--measurement-noise",
        type=_measurement_noise,
        default=None,
        metavar="SD|auto",
        help="train with the noise a measurement adds per value (log-scale sd), or 'auto' to estimate the bulk's "
        "noise beyond the pseudo-tissues' (default: 0, none)",
    )
    dec.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    dec.add_argument("--csv", default=None, metavar="FRACTIONS.csv", help="also write the fractions as CSV")
    dec.add_argument(
        "--uncertainty",
        action="store_true",
        help="train an ensemble (3-4x the time) and write an interval per sample and label: obsm[KEY_lower] and "
        "obsm[KEY_upper], and LABEL_lower / LABEL_upper columns in the CSV",
    )
    dec.add_argument("--level", type=float, default=0.9, help="level of the intervals (default: 0.9)")
    dec.add_argument(
        "--measured-key",
        default=None,
        metavar="KEY",
        help="obsm key of the bulk with cell fractions measured on some samples (flow cytometry; a DataFrame, NaN "
        "rows for the rest, at least 5 measured): the platform gains are anchored on them",
    )
    dec.add_argument(
        "--mean-fractions",
        default=None,
        metavar="LABEL=VALUE,...",
        type=_label_values,
        help="the cohort's average composition, e.g. 'B=0.1,T=0.6,Mono=0.3' (a blood count, a published composition): "
        "the platform gains are anchored on it",
    )
    dec.add_argument(
        "--save-model",
        default=None,
        metavar="DIR",
        help="also save the trained model (.h5ad bulk only; one model per run)",
    )
    dec.add_argument("--accelerator", default="auto", help="cpu, gpu or auto (default: auto)")

    pred = sub.add_parser(
        "predict",
        help="deconvolve a bulk cohort (.h5ad or a .h5mu modality) with a saved model, streamed to CSV",
        description=(
            "Read the bulk file from disk block by block (never whole), predict with a model saved by "
            "'deconvolve --save-model' or DECODE.save, and append each block's fractions to the CSV."
        ),
        epilog="example:\n  decode-omics predict --model model_dir --bulk cohort.h5ad --out fractions.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pred.add_argument("--model", required=True, metavar="DIR", help="folder written by DECODE.save")
    pred.add_argument("--bulk", required=True, metavar="BULK.h5ad|BULK.h5mu", help="bulk samples x features")
    pred.add_argument("--out", required=True, metavar="FRACTIONS.csv", help="CSV to write, one row per sample")
    pred.add_argument("--modality", default=None, help="modality of a .h5mu bulk")
    pred.add_argument("--layer", default=None, help="bulk layer to use instead of X (read into memory)")
    pred.add_argument("--scale", default="auto", choices=scales, help="scale of the bulk (default: detected)")
    pred.add_argument("--block-rows", type=int, default=10_000, help="samples read per block (default: 10000)")
    pred.add_argument(
        "--no-platform-correction",
        action="store_true",
        help="do not divide by the platform gains fitted to the training bulk (for bulk from another platform)",
    )
    for command in (dec, pred):
        command.add_argument("--overwrite", action="store_true", help="replace an existing output file")

    demo_help = "deconvolve pseudo-bulk of scanpy's bundled pbmc68k_reduced and print the accuracy"
    demo = sub.add_parser("demo", help=demo_help, description=_DEMO_DESCRIPTION)
    demo.add_argument("--max-epochs", type=int, default=60, help="training epochs (default: 60)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    return parser


def _read(path: str, backed: bool = False):
    import anndata as ad

    p = Path(path)
    if not p.is_file():
        raise InputError(f"File not found: {p}")
    try:
        if p.suffix == ".h5mu":
            import mudata

            return mudata.read_h5mu(p, backed="r" if backed else None)
        if p.suffix == ".h5ad":
            return ad.read_h5ad(p, backed="r" if backed else None)
    except Exception as err:
        raise InputError(f"Could not read {p}: {type(err).__name__}: {err}") from err
    raise InputError(f"{p}: expected a .h5ad or .h5mu file.")


def _read_reference(path: str, backed: bool):
    if Path(path).suffix != ".h5ad":
        raise InputError(f"--reference {path}: a reference is a single-cell .h5ad file (cells x features).")
    return _read(path, backed)


def _references(specs: list[str], bulk, backed: bool = False) -> dict:
    from mudata import MuData

    if not isinstance(bulk, MuData):
        if len(specs) != 1 or ("=" in specs[0] and not Path(specs[0]).is_file()):
            raise InputError("An .h5ad bulk takes exactly one --reference path (MOD=path is for .h5mu bulk).")
        return {None: _read_reference(specs[0], backed)}
    refs = {}
    for spec in specs:
        if "=" not in spec:
            raise InputError(f"--reference {spec!r}: for .h5mu bulk write MOD=path, e.g. --reference rna=ref.h5ad.")
        mod, path = spec.split("=", 1)
        if mod not in bulk.mod:
            raise InputError(f"--reference {spec!r}: {mod!r} is not a modality of the bulk ({list(bulk.mod)}).")
        refs[mod] = _read_reference(path, backed)
    return refs


def _check_outputs(args, multimodal: bool) -> None:
    """Refuse, before any training, outputs that cannot be written or would replace files silently."""
    for flag, target in [("--out", args.out), ("--csv", args.csv), ("--save-model", args.save_model)]:
        if target is None:
            continue
        p = Path(target)
        if flag == "--save-model" and p.is_file():
            raise InputError(f"--save-model {p} is a file; a model is saved as a folder: give a folder path.")
        if not p.parent.is_dir():
            raise InputError(f"{flag} {p}: the folder {p.parent} does not exist; create it first.")
        exists = p.is_file() or (p.is_dir() and any(p.iterdir()))
        if exists and not args.overwrite:
            raise InputError(f"{flag} {p} exists; pass --overwrite to replace it.")
    if args.save_model and multimodal:
        raise InputError(
            "--save-model saves one model and applies to an .h5ad bulk; for .h5mu, deconvolve in Python with "
            "dco.tl.deconvolve(..., return_model=True) and save each modality's model."
        )


def _deconvolve(args) -> int:
    import decode_omics as dco

    out = Path(args.out)
    multimodal = Path(args.bulk).suffix == ".h5mu"
    if multimodal != (out.suffix == ".h5mu"):
        raise InputError(f"--out must have the same kind of file as --bulk ({Path(args.bulk).suffix}).")
    _check_outputs(args, multimodal)
    bulk = _read(args.bulk)
    refs = _references(args.reference, bulk, args.backed)
    train_kwargs = {"accelerator": args.accelerator}
    if args.max_epochs is not None:
        train_kwargs["max_epochs"] = args.max_epochs
    if args.n_pseudotissues is not None:
        train_kwargs["n_pseudotissues"] = args.n_pseudotissues
    if args.measurement_noise is not None:
        train_kwargs["measurement_noise"] = args.measurement_noise
    start = time.perf_counter()
    try:
        result = dco.tl.deconvolve(
            bulk,
            refs if multimodal else refs[None],
            args.labels_key,
            mode=args.mode,
            key_added=args.key_added,
            layer=args.layer,
            reference_layer=args.reference_layer,
            scale=args.scale,
            reference_scale=args.reference_scale,
            train_kwargs=train_kwargs,
            random_state=args.seed,
            uncertainty=args.uncertainty,
            level=args.level,
            measured_key=args.measured_key,
            mean_fractions=args.mean_fractions,
            return_model=True,
        )
    except (KeyError, ValueError, TypeError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise InputError(str(message)) from err
    if multimodal:
        bulk.write_h5mu(out)
        tables = {m: _table(bulk.mod[m], args.key_added) for m in result}
    else:
        bulk.write_h5ad(out)
        tables = {None: _table(bulk, args.key_added)}
        if args.save_model:
            result.save(args.save_model, overwrite=args.overwrite)
    if args.csv:
        import pandas as pd

        frames = [t.assign(modality=m) if m else t for m, t in tables.items()]
        pd.concat(frames).to_csv(args.csv)
    n = len(set().union(*(t.index for t in tables.values())))  # a sample measured in two layers counts once
    layers = f" ({len(tables)} modalities: {', '.join(tables)})" if multimodal else ""
    print(
        f"Deconvolved {n} samples{layers} in {time.perf_counter() - start:.0f} s; wrote {out}"
        + (f" and {args.csv}" if args.csv else "")
        + "."
    )
    return 0


def _table(adata, key: str):
    """The fractions of ``adata.obsm[key]``, with ``<label>_lower`` / ``<label>_upper`` columns when intervals exist."""
    import pandas as pd

    fractions = adata.obsm[key]
    if f"{key}_lower" not in adata.obsm:
        return fractions
    bounds = [adata.obsm[f"{key}_{side}"].add_suffix(f"_{side}") for side in ("lower", "upper")]
    return pd.concat([fractions, *bounds], axis=1)


def _predict(args) -> int:
    from decode_omics.model import DECODE

    out = Path(args.out)
    if not out.parent.is_dir():
        raise InputError(f"--out {out}: the folder {out.parent} does not exist; create it first.")
    if out.exists() and not args.overwrite:
        raise InputError(f"--out {out} exists; pass --overwrite to replace it.")
    if not Path(args.model).is_dir():
        raise InputError(f"--model {args.model}: no such folder (expected one written by DECODE.save).")
    if args.block_rows < 1:
        raise InputError("--block-rows must be at least 1.")
    try:
        model = DECODE.load(args.model, accelerator="cpu")
    except (OSError, ValueError) as err:
        raise InputError(f"Could not load the model in {args.model}: {err}") from err
    bulk = _read(args.bulk, backed=True)
    _check_modality(bulk, args.modality)
    start, n = time.perf_counter(), 0
    tmp = out.with_name(out.name + ".partial")
    try:
        blocks = model.iter_fractions(
            bulk,
            layer=args.layer,
            modality=args.modality,
            scale=args.scale,
            block_rows=args.block_rows,
            platform_correction=not args.no_platform_correction,
        )
        with open(tmp, "w") as handle:
            for i, block in enumerate(blocks):
                block.to_csv(handle, header=i == 0)
                n += len(block)
                print(f"\r{n} / {_n_obs(bulk, args.modality)} samples", end="", file=sys.stderr, flush=True)
    except (KeyError, ValueError, TypeError) as err:
        tmp.unlink(missing_ok=True)
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise InputError(str(message)) from err
    print(file=sys.stderr)
    tmp.replace(out)
    print(f"Deconvolved {n} samples in {time.perf_counter() - start:.0f} s; wrote {out}.")
    return 0


def _check_modality(bulk, modality: str | None) -> None:
    """A .h5mu bulk needs --modality naming one of its modalities; an .h5ad bulk takes none."""
    from mudata import MuData

    if isinstance(bulk, MuData):
        if modality is None:
            raise InputError(f"--bulk is a .h5mu file: pass --modality (one of {list(bulk.mod)}).")
        if modality not in bulk.mod:
            raise InputError(f"--modality {modality!r} is not a modality of the bulk ({list(bulk.mod)}).")
    elif modality is not None:
        raise InputError("--modality applies to a .h5mu bulk; this bulk is an .h5ad file.")


def _n_obs(bulk, modality) -> int:
    from mudata import MuData

    return bulk.mod[modality].n_obs if isinstance(bulk, MuData) and modality in bulk.mod else bulk.n_obs


def run_demo(max_epochs: int = 60, random_state: int = 0) -> dict[str, float]:
    """The demo: DECODE vs NNLS on pbmc68k pseudo-bulk from a disjoint half of the cells; returns the scores."""
    import scvi

    import decode_omics as dco
    from decode_omics.model._lightning import quiet_lightning

    reference, bulk = dco.datasets.pbmc68k_reference_and_bulk(random_state=random_state)
    truth = bulk.obsm["fractions"]
    print(
        f"Reference: {reference.n_obs} cells, {reference.obs['bulk_labels'].nunique()} labels; "
        f"bulk: {bulk.n_obs} pseudo-bulk samples of 40 cells from the other {700 - reference.n_obs}-odd cells."
    )
    start = time.perf_counter()
    with quiet_lightning():  # setting the seed makes Lightning print "Seed set to ..."
        scvi.settings.seed = random_state
    dco.model.DECODE.setup_anndata(reference, labels_key="bulk_labels")
    dco.model.DECODE.setup_anndata(bulk)
    model = dco.model.DECODE(reference, bulk)
    model.train(max_epochs=max_epochs)
    estimate = model.get_fractions()
    decode_seconds = time.perf_counter() - start
    start = time.perf_counter()
    dco.tl.nnls(bulk, reference, "bulk_labels")
    nnls_seconds = time.perf_counter() - start
    scores = {
        "decode_ccc": dco.metrics.ccc(estimate, truth),
        "decode_rmse": dco.metrics.rmse(estimate, truth),
        "nnls_ccc": dco.metrics.ccc(bulk.obsm["nnls"], truth),
        "nnls_rmse": dco.metrics.rmse(bulk.obsm["nnls"], truth),
    }
    print(f"\n{'method':<8}{'CCC':>8}{'RMSE':>9}{'seconds':>10}")
    print(f"{'DECODE':<8}{scores['decode_ccc']:>8.3f}{scores['decode_rmse']:>9.4f}{decode_seconds:>10.1f}")
    print(f"{'NNLS':<8}{scores['nnls_ccc']:>8.3f}{scores['nnls_rmse']:>9.4f}{nnls_seconds:>10.1f}")
    per_label = dco.metrics.ccc(estimate, truth, per_label=True)
    print("\nDECODE CCC per label:\n" + per_label.round(3).to_string())
    return scores


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``decode-omics``."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command == "demo":
            run_demo(max_epochs=args.max_epochs, random_state=args.seed)
            return 0
        if args.command == "predict":
            return _predict(args)
        return _deconvolve(args)
    except InputError as err:
        print(f"decode-omics: error: {err}", file=sys.stderr)
        return EXIT_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
