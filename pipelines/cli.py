"""The `stablepipe` command: run, validate, compile, predict.

Exit codes: 0 success; 2 bad input or usage (one line on stderr, no traceback); 4 data rejected by
the quality policy; 1 internal failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from components.common.errors import BadInputError
from components.common.storage import DEFAULT_S3_ENDPOINT

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_REJECTED = 0, 1, 2, 4


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem (and still exit code 2)."""

    def error(self, message: str) -> NoReturn:
        raise BadInputError(f"{self.prog}: {message}")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the data comes from, how to read it and how to judge it (run and validate)."""
    add = parser.add_argument
    add("--config", help="YAML file with any of the keys below (flags override it)")
    add(
        "--data",
        help="a file (CSV/TSV/Parquet/JSON/JSON Lines/Excel, .gz/.zip), a folder of them or of "
        "documents (one subfolder per label), s3://bucket/key-or-prefix/, a database URL "
        "(sqlite:///file.db, postgresql://host/db), or demo:<breast_cancer|diabetes|wine|iris> "
        "(default: demo:breast_cancer)",
    )
    add("--target", help="column to predict (default for demo data: target)")
    add("--task", help="auto|binary|multiclass|regression (default: auto)")
    add("--table", help="with a database URL: the table to read")
    add("--query", help="with a database URL: a read-only SELECT to read instead")
    add("--delimiter", help="CSV delimiter (default: sniffed)")
    add("--encoding", help="text encoding of CSV/TSV (default: sniffed)")
    add("--header", help="auto|yes|no: does the CSV's first line name the columns (default: auto)")
    add("--sheet", help="Excel sheet name (default: the first)")
    add(
        "--decimal",
        help=". or ,: the decimal mark of CSV/TSV numbers, e.g. , for 29,5 in a ;-separated "
        "file (default: .; never sniffed)",
    )
    add(
        "--stream-above-mb",
        type=float,
        help="stream local CSV/TSV/Parquet files at least this large in bounded memory "
        "(default: 256)",
    )
    add(
        "--incremental",
        action="store_const",
        const=True,
        help="folder or s3:// prefix: take only the files earlier runs have not taken",
    )
    add("--window", type=int, help="with --incremental: also take the N latest earlier files")
    add(
        "--schema",
        help="schema YAML to check the data against; written from this data if it does not "
        "exist yet (default: the champion's schema)",
    )
    add(
        "--fail-on",
        help="error|warning|never: the anomaly severity that rejects the data (default: error)",
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_arguments(parser)
    add = parser.add_argument
    add("--runs-dir", help="folder of run folders (default: ./runs)")
    add(
        "--registry",
        help="model registry root; the champion lives in <registry>/<model-name> "
        "(default: ./models)",
    )
    add("--model-name", help="registry entry (default: the target's name)")
    add(
        "--store",
        help="s3://bucket/prefix: publish runs to <prefix>/runs/ and keep the registry "
        "at <prefix>/models/ (credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
    )
    add(
        "--s3-endpoint",
        help="S3 endpoint: http://host:port, https://host:port or host:port "
        "(TLS) (default: http://minio-service.kubeflow:9000)",
    )
    add("--trials", type=int, help="trials of the whole search (default: 30)")
    add("--workers", type=int, help="parallel search workers, 1 to 16 (default: 2)")
    add("--time-budget", type=float, help="seconds after which no new trial starts (default: 600)")
    add("--seed", type=int, help="random seed of split, search and models (default: 42)")
    add("--test-size", type=float, help="held-out share of rows (default: 0.2)")
    add("--cv-folds", type=int, help="cross-validation folds of the search (default: 5)")
    add(
        "--features",
        help="after preprocessing: none|variance|pca|svd|select (select: the columns a seeded "
        "tree ensemble ranks above the mean importance) (default: none)",
    )
    add("--pca-variance", type=float, help="variance share PCA keeps (default: 0.95)")
    add("--svd-components", type=int, help="most dimensions --features svd keeps (default: 100)")
    add(
        "--variance-threshold",
        type=float,
        help="--features variance drops columns whose training variance is at most this "
        "(default: 0, the constant ones)",
    )
    add(
        "--text-vectorizer",
        help="text columns: tfidf (a vocabulary) or hashing (no vocabulary, for huge ones) "
        "(default: tfidf)",
    )
    add(
        "--text-word-ngrams",
        type=int,
        help="longest word n-gram of text columns, 0 for none (default: 2)",
    )
    add(
        "--text-char-ngrams",
        type=int,
        help="longest character n-gram (from 2) of text columns, 0 for none (default: 5)",
    )
    add(
        "--text-max-terms",
        type=int,
        help="term columns per kind of n-gram: vocabulary or hash size (default: 20000)",
    )
    add(
        "--text-components",
        type=int,
        help="SVD dimensions of text for non-linear models; linear models take every term "
        "(default: 100)",
    )
    add("--outliers", help="clip|none (default: clip)")
    add("--scaling", help="standard|robust|none (default: standard)")
    add("--max-categories", type=int, help="one-hot columns per categorical (default: 20)")
    add(
        "--min-improvement",
        type=float,
        help="gain over the champion's primary metric needed to promote (default: 0)",
    )
    add(
        "--confidence",
        type=float,
        help="level of the bootstrap interval of the gain that must lie above zero to "
        "promote (default: 0.95)",
    )
    add(
        "--roles",
        help="override detected column roles: column=role pairs, comma-separated (roles: "
        "numeric, categorical, ordinal, text, datetime, id)",
    )
    add(
        "--time-column",
        help="forecast: the column of dates or time steps (then the test split is the latest "
        "period and the model gets lags of the target)",
    )
    add("--series-key", help="forecast: column(s), comma-separated, naming each series")
    add("--horizon", type=int, help="forecast: how many steps ahead (default: 1)")
    add("--season", type=int, help="forecast: steps per season (default: from the frequency)")
    add(
        "--no-cache",
        dest="cache",
        action="store_const",
        const=False,
        help="run every stage again instead of reusing finished ones",
    )
    add("--json", action="store_true", help="print summary.json on stdout at the end")


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="stablepipe", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    add_run_arguments(commands.add_parser("run", help="run the whole pipeline locally"))
    check = commands.add_parser("validate", help="check data quality without training")
    add_data_arguments(check)
    check.add_argument("--runs-dir", help="folder of run records (default: ./runs)")
    check.add_argument("--registry", help="model registry root (default: ./models)")
    check.add_argument("--model-name", help="registry entry (default: the target's name)")
    check.add_argument("--store", help="s3://bucket/prefix of run records and registry")
    check.add_argument(
        "--s3-endpoint", help="S3 endpoint (default: http://minio-service.kubeflow:9000)"
    )
    check.add_argument(
        "--report", default="data_quality.html", help="HTML report to write (default: %(default)s)"
    )
    check.add_argument(
        "--json", action="store_true", help="print {verdict, anomalies, drift} on stdout"
    )
    compile_parser = commands.add_parser("compile", help="write the KFP IR YAML for Kubeflow")
    compile_parser.add_argument(
        "--output", default="pipeline.yaml", help="(default: pipeline.yaml)"
    )
    predict = commands.add_parser("predict", help="predict with a saved model")
    predict.add_argument(
        "--model",
        required=True,
        help="a model folder (runs/<run_id>/model) or <registry>/<name>/champion",
    )
    predict.add_argument("--data", required=True, help="CSV/TSV/Parquet file of rows to score")
    predict.add_argument(
        "--output",
        required=True,
        help="file to write: Parquet for a .parquet name (exact values), else CSV",
    )
    predict.add_argument(
        "--decimal",
        default=".",
        help=". or ,: the decimal mark of CSV/TSV numbers, as the model's training data was read "
        "(default: .)",
    )
    predict.add_argument(
        "--s3-endpoint", default=DEFAULT_S3_ENDPOINT, help="S3 endpoint for s3:// models or data"
    )
    return parser


def config_of(args: argparse.Namespace) -> Any:
    from components.common.config import RunConfig, build_config, load_config_file

    flags = {k: v for k, v in vars(args).items() if k in RunConfig.__dataclass_fields__}
    file_values = load_config_file(args.config) if args.config else {}
    return build_config(file_values, flags)


def command_run(args: argparse.Namespace) -> int:
    from pipelines.runner import execute

    config = config_of(args)
    result = execute(config)
    print_summary(result.summary, result.run_dir)
    if args.json:
        print(json.dumps(result.summary, indent=2, default=str))
    return EXIT_OK


def print_summary(summary: dict[str, Any], run_dir: Path) -> None:
    best, test = summary["best"], summary["metrics"]["test"]
    verdict = summary["promotion"]
    quality = summary["data_quality"]
    lines = [
        "",
        f"  data       {quality['verdict']}: {quality['counts']['error']} errors, "
        f"{quality['counts']['warning']} warnings; drift {quality['drift']['verdict']}  "
        f"({summary['artifacts']['data_quality']})",
        f"  task       {summary['task']}  ({summary['data']['rows']} rows, "
        f"{summary['data']['columns']} columns; {summary['data']['rows_dropped_missing_target']} "
        "dropped for a missing target)",
        f"  best       {best['model']}  cv {best['metric']} {best['cv_score']:.4f} "
        f"± {best['cv_std']:.4f}  ({best['trials']['complete']} complete, "
        f"{best['trials']['pruned']} pruned)",
        "  test       " + "  ".join(f"{k} {v:.4f}" for k, v in test.items()),
        *(
            [
                "  baseline   "
                + "  ".join(f"{k} {v:.4f}" for k, v in baseline.items())
                + "  (seasonal-naive forecast, same test rows)"
            ]
            if (baseline := summary["metrics"].get("baseline"))
            else []
        ),
        f"  champion   {'PROMOTED' if summary['promoted'] else 'kept'}: {verdict['reason']}",
        f"  run        {run_dir}  ({summary['seconds']:.1f}s)",
        f"  report     {summary['artifacts']['report']}",
    ]
    print("\n".join(lines), file=sys.stderr)


def command_validate(args: argparse.Namespace) -> int:
    """Check the data; exit 0 when it passes (warnings allowed by the policy), 4 when the
    policy rejects it."""
    from pipelines.runner import validate_only

    report = Path(args.report)
    if not report.parent.is_dir() or report.is_dir():
        raise BadInputError(f"--report must be a file in an existing folder; got {args.report!r}")
    result = validate_only(config_of(args), report)
    quality = result.quality
    counts = quality["counts"]
    print(
        f"data quality: {quality['verdict']} ({counts['error']} errors, {counts['warning']} "
        f"warnings, drift: {quality['drift']['verdict']}); report: {result.report}"
        + (f"; schema written to {result.schema_file}" if result.schema_file else ""),
        file=sys.stderr,
    )
    if args.json:
        from pipelines.runner import compact_quality

        compact = compact_quality(quality)
        verdict = {k: compact[k] for k in ("verdict", "anomalies", "drift")}
        print(json.dumps(verdict, indent=2, default=str))
    return EXIT_REJECTED if quality["verdict"] == "fail" else EXIT_OK


def command_compile(args: argparse.Namespace) -> int:
    from kfp import compiler

    from pipelines.training import training_pipeline

    output = Path(args.output)
    if output.suffix not in (".yaml", ".yml"):
        raise BadInputError(f"--output must be a .yaml file; got {args.output!r}")
    if not output.parent.is_dir() or output.is_dir():
        raise BadInputError(f"--output must be a file in an existing folder; got {args.output!r}")
    compiler.Compiler().compile(training_pipeline, str(output))
    print(f"wrote {output}", file=sys.stderr)
    return EXIT_OK


def command_predict(args: argparse.Namespace) -> int:
    from components.core.registry import fetch_model
    from components.core.scoring import score_rows, write_predictions
    from components.core.source.files import ReadOptions, read_table

    output = Path(args.output)
    if not output.parent.is_dir() or output.is_dir():
        raise BadInputError(f"--output must be a file in an existing folder; got {args.output!r}")
    model = fetch_model(args.model, args.s3_endpoint)
    frame = read_table(args.data, args.s3_endpoint, ReadOptions(decimal=args.decimal))
    predictions = score_rows(model, frame, f"--data {args.data!r}")
    write_predictions(predictions, output)
    print(f"wrote {len(predictions)} predictions to {output}", file=sys.stderr)
    return EXIT_OK


COMMANDS = {
    "run": command_run,
    "validate": command_validate,
    "compile": command_compile,
    "predict": command_predict,
}


def main(argv: list[str] | None = None) -> int:
    from components.common.errors import DataRejected
    from components.common.storage import StorageUnavailable
    from pipelines.runner import NothingToDo, RunFailed

    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except NothingToDo as nothing:  # an incremental run with no new files: not an error
        print(f"stablepipe: {nothing}", file=sys.stderr)
        return EXIT_OK
    except DataRejected as error:
        print(f"rejected: {error}", file=sys.stderr)
        return EXIT_REJECTED
    except BadInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (RunFailed, StorageUnavailable) as error:
        print(f"failed: {error}", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
