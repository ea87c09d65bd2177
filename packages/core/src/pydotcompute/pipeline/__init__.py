"""The pipeline layer: pipeline definitions (Python and TOML), the stage settings table
they are checked against, the input dtype and what a cast to it would lose, validation
into a plan, and running a plan on a :class:`~pydotcompute.RingKernelRuntime`, with
per-stage telemetry.
"""

from __future__ import annotations

from ._definition import (
    Pipeline,
)
from ._dtype import (
    INPUT_DTYPES,
    cast_problem,
    input_dtype,
    parse_dtype,
    rows_that_fit,
)
from ._engine import (
    AnyRun,
    open_run,
)
from ._feed import (
    new_run_id,
    records_from_array,
)
from ._gc import (
    RELAXED_THRESHOLD,
    relaxed_gc,
)
from ._lifecycle import (
    settle_feeder,
)
from ._metrics import (
    WAIT_BUCKETS_S,
    MetricsSnapshot,
    RunMetrics,
    WaitHistogram,
)
from ._metrics_server import (
    DEFAULT_METRICS_ADDRESS,
    MetricsServer,
    require_metrics,
)
from ._plan import (
    ENGINES,
    PipelinePlan,
    PlannedStage,
    StageSpec,
    plan_pipeline,
)
from ._ray import (
    RayPipelineRun,
    RayUnavailableError,
    import_ray,
)
from ._resources import (
    resource_warnings,
    workers_limit,
)
from ._run import (
    FEEDER,
    PipelineRun,
)
from ._settings import (
    STAGE_SETTINGS,
    STRUCTURE_KEYS,
    StageSetting,
    settings_table,
)
from ._telemetry import (
    StageTelemetry,
    stage_telemetry,
)
from ._toml import (
    TomlLines,
    load_pipeline,
    parse_pipeline,
)

__all__ = [
    "DEFAULT_METRICS_ADDRESS",
    "ENGINES",
    "FEEDER",
    "INPUT_DTYPES",
    "RELAXED_THRESHOLD",
    "STAGE_SETTINGS",
    "STRUCTURE_KEYS",
    "WAIT_BUCKETS_S",
    "AnyRun",
    "MetricsServer",
    "MetricsSnapshot",
    "Pipeline",
    "PipelinePlan",
    "PipelineRun",
    "PlannedStage",
    "RayPipelineRun",
    "RayUnavailableError",
    "RunMetrics",
    "StageSetting",
    "StageSpec",
    "StageTelemetry",
    "TomlLines",
    "WaitHistogram",
    "cast_problem",
    "import_ray",
    "input_dtype",
    "load_pipeline",
    "new_run_id",
    "open_run",
    "parse_dtype",
    "parse_pipeline",
    "plan_pipeline",
    "records_from_array",
    "relaxed_gc",
    "require_metrics",
    "resource_warnings",
    "rows_that_fit",
    "settings_table",
    "settle_feeder",
    "stage_telemetry",
    "workers_limit",
]
