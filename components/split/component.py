"""KFP component of the split stage."""

from kfp.dsl import Dataset, Input, Output

from components.common.kfp_component import stage_component


@stage_component
def split(
    dataset: Input[Dataset],
    target: str,
    task: str,
    test_size: float,
    train: Output[Dataset],
    test: Output[Dataset],
    time_column: str = "",
):
    """Hold out a test split chosen by each row's content (the same rows for every seed and
    row order), stratified on the target for classification.

    Args:
        dataset: The validated table.
        target: The column to predict.
        task: binary, multiclass or regression.
        test_size: Share of rows held out for the test split (0.05 to 0.5).
        train: The training split (Parquet).
        test: The held-out test split (Parquet).
        time_column: Forecasting: the test split is the latest period of this column instead,
            and both splits are in time order. Empty = not a forecast.
    """
    from components.common.frames import read_frame, write_frame
    from components.common.stage import stage
    from components.split.logic import split_by_time, split_frame

    with stage("split") as log:
        frame = read_frame(dataset.path)
        train_frame, test_frame = (
            split_by_time(frame, time_column, test_size)
            if time_column
            else split_frame(frame, target, task, test_size)
        )
        write_frame(train_frame, train.path)
        write_frame(test_frame, test.path)
        train.metadata["rows"] = len(train_frame)
        test.metadata["rows"] = len(test_frame)
        log.log("split", train_rows=len(train_frame), test_rows=len(test_frame))
