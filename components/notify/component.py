"""KFP component of the notify stage: the exit step of a cluster run (failure alert, metrics)."""

from kfp.dsl import PipelineTaskFinalStatus

from components.common.kfp_component import stage_component


@stage_component
def notify(
    status: PipelineTaskFinalStatus,
    pipeline_name: str,
    run_id: str,
    target: str,
    model_name: str,
):
    """Alert on a run that did not succeed and push its final state to the Pushgateway; runs
    however the run ended (the pipeline's dsl.ExitHandler).

    Args:
        status: The run's final state, given by Kubeflow Pipelines.
        pipeline_name: The pipeline's name, for the message.
        run_id: The run's id (the registry version a promotion makes).
    """
    from components.common.settings import RunConfig
    from components.common.stage import stage
    from components.notify.logic import notify_run

    with stage("notify") as log:
        facts = notify_run(
            status.state,
            status.pipeline_job_resource_name,
            status.error_message,
            (pipeline_name, run_id),
            RunConfig(target=target, model_name=model_name),
        )
        log.log("notified", **facts)
