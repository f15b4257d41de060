"""The `stablepipe` command: run, validate, predict, compile, submit.

Exit codes: 0 success; 2 bad input or usage (one line on stderr, no traceback); 4 data rejected by
the quality policy; 1 internal failure; 130 interrupted.

The flags of run, validate, predict and submit are the run settings' declarations
(components/common/settings.py): the same names, types, choices, defaults and checks as the
config file's keys and the pipelines' parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any, NoReturn

from components.common.errors import BadInputError, closest_names
from components.common.settings import (
    GROUPS,
    LAND,
    PREDICT,
    RUN,
    SUBMIT,
    VALIDATE,
    Setting,
    settings_of,
)

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_REJECTED = 0, 1, 2, 4
SCHEDULE = "schedule"
COMMAND_HELP = {
    RUN: "run the whole pipeline locally (under kfp.local)",
    VALIDATE: "check data quality without training (ingest, validate, check_quality)",
    PREDICT: "score rows with a saved model",
    "compile": "write the training pipeline's KFP IR YAML for Kubeflow",
    SUBMIT: "submit a training run to Kubeflow Pipelines",
    SCHEDULE: "create, update or delete a recurring training run in Kubeflow Pipelines",
    LAND: "land MQTT sensor readings as Parquet files, for incremental runs to train on",
}


def package_version() -> str:
    from components.common.kfp_component import PACKAGE_VERSION

    return PACKAGE_VERSION


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem (and still exit code 2), an
    unknown flag gets the closest known one, and flags are never abbreviated."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise BadInputError(f"{self.prog}: {message}")

    def flags(self) -> list[str]:
        return [flag for action in self._actions for flag in action.option_strings]

    def unknown(self, extra: list[str]) -> NoReturn:
        """One line for the first argument the parser did not know."""
        first = extra[0]
        if not first.startswith("-"):
            self.error(f"unexpected argument {first!r}")
        name = first.partition("=")[0]
        hint = closest_names(name, self.flags())
        suffix = f"; did you mean {hint[0]!r}?" if hint else f"; see {self.prog} --help"
        self.error(f"unknown flag {name!r}{suffix}")


def help_text(spec: Setting) -> str:
    """The setting's help with its default (argparse's %(default)s would show None: a flag's
    default is None so that a config file's value is kept when the flag is not given)."""
    text = spec.help.replace("%", "%%")
    if spec.kind is bool:
        return text
    shown = spec.default if spec.default != "" else "empty"
    return f"{text} (default: {shown})"


def add_settings(parser: argparse.ArgumentParser, command: str) -> None:
    """The command's settings as flags, in --help's sections."""
    groups = {name: parser.add_argument_group(name) for name in GROUPS}
    for spec in settings_of(command):
        group = groups[spec.group]
        if spec.kind is bool:
            group.add_argument(
                spec.flag,
                dest=spec.name,
                action="store_const",
                const=not spec.default,
                default=None,
                help=help_text(spec),
            )
            continue
        group.add_argument(
            spec.flag,
            dest=spec.name,
            default=None,
            required=command in spec.required,
            metavar="{" + "|".join(spec.choices) + "}" if spec.choices else spec.name.upper(),
            help=spec.help.replace("%", "%%") if command in spec.required else help_text(spec),
        )


def build_parser() -> tuple[OneLineParser, dict[str, OneLineParser]]:
    parser = OneLineParser(prog="stablepipe", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"stablepipe {package_version()}")
    commands = parser.add_subparsers(dest="command", parser_class=OneLineParser, metavar="COMMAND")
    made: dict[str, OneLineParser] = {}

    def command(name: str) -> OneLineParser:
        made[name] = commands.add_parser(
            name, help=COMMAND_HELP[name], description=COMMAND_HELP[name]
        )
        return made[name]

    run = command(RUN)
    run.add_argument(
        "--config", help="YAML file with any of the settings below (flags override it)"
    )
    run.add_argument("--json", action="store_true", help="print summary.json on stdout at the end")
    add_settings(run, RUN)

    check = command(VALIDATE)
    check.add_argument("--config", help="YAML file with any of the settings (flags override it)")
    check.add_argument(
        "--report", default="data_quality.html", help="HTML report to write (default: %(default)s)"
    )
    check.add_argument(
        "--json", action="store_true", help="print {verdict, anomalies, drift} on stdout"
    )
    add_settings(check, VALIDATE)

    predict = command(PREDICT)
    predict.add_argument(
        "--output",
        required=True,
        help="file to write: .parquet or .pq (exact values and types), or .csv",
    )
    add_settings(predict, PREDICT)

    compile_parser = command("compile")
    compile_parser.add_argument(
        "--output", default="pipeline.yaml", help="the YAML file to write (default: %(default)s)"
    )
    compile_parser.add_argument(
        "--kubernetes-manifest",
        action="store_true",
        help="write Pipeline and PipelineVersion objects (pipelines.kubeflow.org/v2beta1) for a "
        "KFP backend that keeps pipelines in Kubernetes; the version is named by the "
        "pipeline's content hash",
    )
    compile_parser.add_argument(
        "--namespace",
        default="",
        help="with --kubernetes-manifest: the objects' namespace (default: none, as kustomize "
        "sets it)",
    )

    land = command(LAND)
    land.add_argument(
        "--from",
        dest="source",
        required=True,
        help="the broker: mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (TLS)",
    )
    land.add_argument("--topic", required=True, help="the topic filter to subscribe to (sensors/#)")
    land.add_argument(
        "--to", dest="destination", required=True, help="the landing folder or s3://bucket/prefix"
    )
    land.add_argument(
        "--client-id",
        default="",
        help="the MQTT client id of the persistent session (default: derived from --from, "
        "--topic and --to)",
    )
    land.add_argument(
        "--max-messages",
        type=int,
        default=0,
        help="stop after this many readings (default: 0, no limit)",
    )
    land.add_argument(
        "--max-seconds",
        type=float,
        default=0.0,
        help="stop after this many seconds (default: 0, no limit)",
    )
    land.add_argument(
        "--rotate-mb",
        type=float,
        default=16.0,
        help="land a file once this many MB of readings are spooled (default: %(default)s)",
    )
    land.add_argument(
        "--rotate-seconds",
        type=float,
        default=60.0,
        help="land a file at least this often, in seconds (default: %(default)s)",
    )
    land.add_argument(
        "--spool",
        default="",
        help="the spool folder (default: <to>/.spool/<client id>; for S3, "
        ".stablepipe-land/<client id>)",
    )
    add_settings(land, LAND)

    submit = command(SUBMIT)
    add_api_arguments(submit)
    submit.add_argument(
        "--wait",
        default="0",
        help="seconds to wait for the run to finish; 0: do not wait (default: %(default)s)",
    )
    submit.add_argument(
        "--when",
        choices=("always", "new", "drift"),
        default="always",
        help="new: only when the data differs from the champion's; drift: only when it also "
        "drifted from it (stablepipe validate, in this process) (default: %(default)s)",
    )
    add_settings(submit, SUBMIT)

    planned = command(SCHEDULE)
    planned.add_argument("name", help="the recurring run's name (one per name and experiment)")
    planned.add_argument(
        "--cron", default="", help="when: five cron fields, '0 3 * * *' (UTC), or six with seconds"
    )
    planned.add_argument(
        "--delete", action="store_true", help="remove the recurring run NAME (if there is one)"
    )
    add_api_arguments(planned)
    add_settings(planned, SUBMIT)
    return parser, made


def add_api_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of the commands that talk to the KFP API (submit, schedule)."""
    parser.add_argument(
        "--config", help="YAML file with the run's settings (as for run; flags override it)"
    )
    parser.add_argument("--host", help="the KFP API (default: $STABLEPIPE_KFP_HOST)")
    parser.add_argument(
        "--namespace", help="the Kubeflow namespace (default: $STABLEPIPE_KFP_NAMESPACE)"
    )
    parser.add_argument(
        "--experiment", default="stablepipe", help="KFP experiment (default: %(default)s)"
    )
    parser.add_argument(
        "--pipeline-name",
        default="stablepipe-training",
        help="the pipeline in KFP; its version is named by the compiled pipeline's content "
        "hash and uploaded only when new (default: %(default)s)",
    )


def flag_values(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The settings given as flags (None: not given), converted to their types."""
    from components.common.settings import coerce

    values: dict[str, Any] = {}
    for spec in settings_of(command):
        given = getattr(args, spec.name, None)
        values[spec.name] = None if given is None else coerce(spec.name, given, spec.shown)
    return values


def config_of(args: argparse.Namespace, command: str, target_from_schema: bool = False) -> Any:
    """Defaults < the config file < the flags, checked."""
    from components.common.settings import build_config, load_config_file

    file_values = load_config_file(args.config) if getattr(args, "config", None) else {}
    return build_config(file_values, flag_values(args, command), target_from_schema)


def command_run(args: argparse.Namespace) -> int:
    from pipelines.local import run_locally

    result = run_locally(config_of(args, RUN, target_from_schema=True))
    print_summary(result.summary, result.run_dir)
    if args.json:
        print(json.dumps(result.summary, indent=2, default=str))
    return EXIT_OK


def champion_label(summary: dict[str, Any]) -> str:
    """PROMOTED, kept, or superseded (another run switched the champion first)."""
    if summary["promoted"]:
        return "PROMOTED"
    return "superseded" if summary["promotion"]["decision"] == "superseded" else "kept"


def search_line(trials: dict[str, Any], stages: list[dict[str, Any]]) -> str:
    """`41 trials (37 complete, 4 pruned) in 60.2 s, CPU 1.9 of 2 cores`: the tune stage's
    wall time, and the CPU its trials used over it."""
    counts = f"{trials['total']} trials ({trials['complete']} complete, {trials['pruned']} pruned)"
    tune = next((stage for stage in stages if stage.get("name") == "tune"), None)
    if not tune or tune.get("status") != "succeeded" or not tune.get("seconds"):
        return counts
    cores = os.cpu_count() or 1
    busy = float(trials.get("cpu_seconds", 0.0)) / float(tune["seconds"])
    return f"{counts} in {tune['seconds']:.1f} s, CPU {busy:.1f} of {cores} cores"


def family_label(configuration: dict[str, Any]) -> str:
    """A configuration's family, marked when it was fitted on a log target."""
    logged = configuration.get("params", {}).get("log_target")
    return f"{configuration['model']} on log y" if logged else str(configuration["model"])


def best_line(best: dict[str, Any]) -> str:
    """The model chosen: the best trial, or the ensemble of the best trials and its gain."""
    single = (
        f"{family_label(best)}  cv {best['metric']} {best['cv_score']:.4f} ± {best['cv_std']:.4f}"
    )
    ensemble = best.get("ensemble")
    if not ensemble:
        return single
    families = Counter(family_label(m) for m in ensemble["members"])
    mix = ", ".join(f"{f} x{n}" if n > 1 else f for f, n in families.most_common())
    return (
        f"ensemble of {len(ensemble['members'])} trials ({mix})  cv {best['metric']} "
        f"{ensemble['cv_score']:.4f} ± {ensemble['cv_std']:.4f}; best trial {single}"
    )


def served_line(served: dict[str, Any]) -> str:
    """What model the run serves: refitted on all rows, or the one the test metrics measured."""
    if served["refit"]:
        return (
            f"  served     refitted on all {served['rows']} rows (the test metrics are of the "
            f"model fitted on {served['judged_rows']}; --no-refit serves that one)"
        )
    return f"  served     the model the test metrics measured ({served['rows']} rows)"


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
        f"  best       {best_line(best)}",
        f"  search     {search_line(best['trials'], summary.get('stages', []))}",
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
        f"  champion   {champion_label(summary)}: {verdict['reason']}",
        *([served_line(served)] if (served := summary.get("served")) else []),
        f"  run        {run_dir}  ({summary['seconds']:.1f}s)",
        f"  report     {summary['artifacts']['report']}",
    ]
    print("\n".join(lines), file=sys.stderr)


def writable_file(value: str, flag: str, suffixes: tuple[str, ...] = ()) -> Path:
    """A file to write, checked before any work: in a folder that exists and takes files (a
    probe file is made and removed), with a name the file system takes (its `.partial`
    sibling included), ending in one of `suffixes` when they are given."""
    import errno
    import tempfile

    path = Path(value)
    if len((path.name + ".partial").encode()) > 255:
        raise BadInputError(f"{flag} has a file name longer than 246 bytes; got {value!r}")
    if not value.strip() or not path.parent.is_dir() or path.is_dir():
        raise BadInputError(f"{flag} must be a file in an existing folder; got {value!r}")
    if suffixes and path.suffix.lower() not in suffixes:
        raise BadInputError(f"{flag} must end in {', '.join(suffixes)}; got {value!r}")
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".stablepipe-probe-"):
            pass
    except OSError as error:
        reason = os.strerror(error.errno or errno.EACCES).lower()
        raise BadInputError(
            f"{flag} cannot be written: its folder {str(path.parent)!r} does not take files "
            f"({reason}); got {value!r}"
        ) from error
    return path


def command_validate(args: argparse.Namespace) -> int:
    """Check the data; exit 0 when it passes (warnings allowed by the policy), 4 when the
    policy rejects it."""
    from pipelines.local import validate_locally
    from pipelines.record import compact_quality

    report = writable_file(args.report, "--report")
    config = config_of(args, VALIDATE, target_from_schema=True)
    result = validate_locally(config, report, target_given=bool(config.target))
    quality = result.quality
    counts = quality["counts"]
    serving = (
        "; rows to score: no target column, its checks skipped"
        if quality.get("environment") == "serving"
        else ""
    )
    # a rejection names its first blocking anomaly, as `run` does
    blocking = ""
    if quality["verdict"] == "fail":
        from components.check_quality.logic import first_blocking

        blocking = f"; rejected: {first_blocking(quality)}"
    print(
        f"data quality: {quality['verdict']} ({counts['error']} errors, {counts['warning']} "
        f"warnings, drift: {quality['drift']['verdict']}{serving}{blocking}); report: "
        f"{result.report}"
        + (f"; schema written to {result.schema_file}" if result.schema_file else ""),
        file=sys.stderr,
    )
    if args.json:
        compact = compact_quality(quality)
        shown = ("verdict", "anomalies", "drift", "environment", "skipped_checks")
        print(json.dumps({k: compact[k] for k in shown if k in compact}, indent=2, default=str))
    return EXIT_REJECTED if quality["verdict"] == "fail" else EXIT_OK


def command_compile(args: argparse.Namespace) -> int:
    from kfp import compiler

    from pipelines.cluster import write_kubernetes_manifest
    from pipelines.training import cluster_pipeline

    output = writable_file(args.output, "--output", (".yaml", ".yml"))
    if args.namespace and not args.kubernetes_manifest:
        raise BadInputError(f"--namespace needs --kubernetes-manifest; got {args.namespace!r}")
    if args.kubernetes_manifest:
        version = write_kubernetes_manifest(output, args.namespace)
        print(f"wrote {output}: Pipeline and PipelineVersion {version}", file=sys.stderr)
        return EXIT_OK
    compiler.Compiler().compile(cluster_pipeline, str(output))
    print(f"wrote {output}", file=sys.stderr)
    return EXIT_OK


def command_predict(args: argparse.Namespace) -> int:
    from components.common.settings import RunConfig, check_settings
    from components.core.registry import fetch_model
    from components.core.scoring import PREDICTION_SUFFIXES, score_rows, write_predictions
    from components.load_rows.logic import load_scoring_rows

    output = writable_file(args.output, "--output", PREDICTION_SUFFIXES)
    if Path(args.data).exists() and output.exists() and output.samefile(args.data):
        raise BadInputError(f"--output must not be the --data file; got {args.output!r}")
    values = {k: v for k, v in flag_values(args, PREDICT).items() if v is not None}
    check_settings(values)
    settings = RunConfig(**values)
    model = fetch_model(settings.model, settings.s3_endpoint)
    frame = load_scoring_rows(settings)
    predictions = score_rows(model, frame, f"--data {args.data!r}")
    write_predictions(predictions, output)
    print(f"wrote {len(predictions)} predictions to {output}", file=sys.stderr)
    return EXIT_OK


def command_land(args: argparse.Namespace) -> int:
    from components.common.settings import DEFAULTS, check_settings
    from pipelines.land import LandOptions, land

    endpoint = args.s3_endpoint if args.s3_endpoint is not None else DEFAULTS.s3_endpoint
    check_settings({"s3_endpoint": endpoint})
    options = LandOptions(
        source=args.source,
        topic=args.topic,
        destination=args.destination,
        client_id=args.client_id,
        max_messages=args.max_messages,
        max_seconds=args.max_seconds,
        rotate_mb=args.rotate_mb,
        rotate_seconds=args.rotate_seconds,
        spool=args.spool,
        s3_endpoint=endpoint,
    )
    facts = land(options)
    return EXIT_INTERNAL if facts.kept else EXIT_OK


def command_submit(args: argparse.Namespace) -> int:
    from pipelines.cluster import submit_run

    return submit_run(args, flag_values(args, SUBMIT))


def command_schedule(args: argparse.Namespace) -> int:
    from pipelines.cluster import schedule_run

    return schedule_run(args, flag_values(args, SUBMIT))


COMMANDS = {
    RUN: command_run,
    VALIDATE: command_validate,
    "compile": command_compile,
    PREDICT: command_predict,
    SUBMIT: command_submit,
    SCHEDULE: command_schedule,
    LAND: command_land,
}


def usage() -> str:
    listed = "\n".join(f"  {name:<10} {text}" for name, text in COMMAND_HELP.items())
    return (
        f"usage: stablepipe COMMAND [flags]   (stablepipe COMMAND --help for its flags)\n"
        f"commands:\n{listed}"
    )


def parse(argv: list[str]) -> argparse.Namespace:
    parser, commands = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        commands[args.command].unknown(extra) if args.command else parser.unknown(extra)
    if args.command is None:
        parser.error(f"give a command: {', '.join(COMMAND_HELP)}")
    return args


def main(argv: list[str] | None = None) -> int:
    from components.common.errors import DataRejected, Unavailable
    from pipelines.interrupts import Interrupted
    from pipelines.local import RunFailed
    from pipelines.plan import NothingToDo

    argv = sys.argv[1:] if argv is None else argv
    try:
        if not argv:
            print(usage(), file=sys.stderr)
            return EXIT_BAD_INPUT
        args = parse(argv)
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
    except (RunFailed, Unavailable) as error:
        print(f"failed: {error}", file=sys.stderr)
        return EXIT_INTERNAL
    except Interrupted as stop:
        print(
            f"interrupted by {stop}: a rerun resumes from the stages that finished", file=sys.stderr
        )
        return stop.code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
