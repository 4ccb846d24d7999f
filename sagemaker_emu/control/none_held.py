"""Reads of resources the emulator never holds, answered empty rather than 501.

The SageMaker SDK's helpers make these around deploys: its teardown helper lists the
endpoint's monitoring schedules (and their job definitions) before it deletes the endpoint,
and a 501 there stops the teardown. The input is validated against the model like every
other call; the answer is the operation's list member, empty."""

from __future__ import annotations

from sagemaker_emu.control.registry import OPERATIONS, Call

# operation -> its output's list member (from botocore's model)
NONE_HELD = {
    "ListMonitoringSchedules": "MonitoringScheduleSummaries",
    "ListMonitoringExecutions": "MonitoringExecutionSummaries",
    "ListDataQualityJobDefinitions": "JobDefinitionSummaries",
    "ListModelQualityJobDefinitions": "JobDefinitionSummaries",
    "ListModelBiasJobDefinitions": "JobDefinitionSummaries",
    "ListModelExplainabilityJobDefinitions": "JobDefinitionSummaries",
    "ListInferenceExperiments": "InferenceExperiments",
    "ListInferenceRecommendationsJobs": "InferenceRecommendationsJobs",
    "ListModelPackageGroups": "ModelPackageGroupSummaryList",
    "ListModelPackages": "ModelPackageSummaryList",
}


def _empty(member: str):
    def answer(backend, params: dict, call: Call) -> dict:
        return {member: []}

    return answer


for _name, _member in NONE_HELD.items():
    OPERATIONS[_name] = _empty(_member)
