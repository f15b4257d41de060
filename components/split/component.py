"""KFP component of the split stage."""

from kfp.dsl import Dataset, Input, Output

from components.common.kfp_component import stage_component


@stage_component
def split(
    dataset: Input[Dataset],
    target: str,
    task: str,
    test_size: float,
    time_column: str,
    train: Output[Dataset],
    test: Output[Dataset],
):
    """Hold out a test split chosen by each row's content (the same rows for every seed and
    row order), stratified on the target for classification; for a forecast, the latest
    period, both splits in time order.

    Args:
        dataset: The validated table.
        task: The task validate resolved: binary, multiclass or regression.
        train: The training split (Parquet).
        test: The held-out test split (Parquet).
    """
    from components.common.frames import read_frame, write_frame
    from components.common.settings import RunConfig, settings_in
    from components.common.stage import stage
    from components.split.logic import split_data

    settings = settings_in(locals())
    with stage("split", settings) as log:
        train_frame, test_frame = split_data(read_frame(dataset.path), RunConfig(**settings))
        write_frame(train_frame, train.path)
        write_frame(test_frame, test.path)
        train.metadata["rows"] = len(train_frame)
        test.metadata["rows"] = len(test_frame)
        log.log("split", train_rows=len(train_frame), test_rows=len(test_frame))
