"""AutoGluon's side of the AutoML quality benchmark (test_automl_quality.py).

Runs in AutoGluon's own virtual environment (AutoGluon 1.6 needs pandas below 2.4; the project
runs pandas 3), so it imports nothing from the project:

    <autogluon-venv>/bin/python tests/benchmarks/autogluon_worker.py \
        --train train.csv --test test.csv --label TARGET --problem-type binary \
        --eval-metric roc_auc --time-limit 60 --path MODEL_DIR \
        --output predictions.parquet --info info.json

Fits `TabularPredictor(...).fit(train, presets="medium_quality", time_limit=..., num_cpus=2)` on
the training file as pandas reads it, then writes one row per test row, in order: `prediction`
(regression) or `proba_<class>` per class (classification), and a JSON of what it fitted.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--problem-type", required=True)
    parser.add_argument("--eval-metric", required=True)
    parser.add_argument("--time-limit", type=float, required=True)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--path", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--info", required=True)
    args = parser.parse_args()

    import pandas as pd
    from autogluon.tabular import TabularPredictor

    train = pd.read_csv(args.train)
    test = pd.read_csv(args.test).drop(columns=[args.label])
    if args.problem_type != "regression":
        train[args.label] = train[args.label].astype(str)

    predictor = TabularPredictor(
        label=args.label,
        problem_type=args.problem_type,
        eval_metric=args.eval_metric,
        path=args.path,
        verbosity=2,
    )
    started = time.perf_counter()
    predictor.fit(train, presets="medium_quality", time_limit=args.time_limit, num_cpus=args.cpus)
    fit_seconds = time.perf_counter() - started

    if args.problem_type == "regression":
        out = pd.DataFrame({"prediction": predictor.predict(test).to_numpy(dtype=float)})
    else:
        proba = predictor.predict_proba(test)
        out = pd.DataFrame({f"proba_{c}": proba[c].to_numpy(dtype=float) for c in proba.columns})
    out.to_parquet(args.output, index=False)

    board = predictor.leaderboard(silent=True)
    special = predictor.feature_metadata_in.get_type_map_special()
    info = {
        "fit_seconds": fit_seconds,
        "best": str(predictor.model_best),
        "models": [
            {"model": str(r.model), "score_val": float(r.score_val), "fit_time": float(r.fit_time)}
            for r in board.itertuples()
        ],
        "text_columns": sorted(c for c, kinds in special.items() if "text" in kinds),
        "features_in": len(predictor.feature_metadata_in.get_features()),
        "features_used": len(predictor.feature_metadata.get_features()),
    }
    Path(args.info).write_text(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
