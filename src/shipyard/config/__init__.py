"""The project file, ``shipyard.toml``: one typed model of it, read by one function.

``load_project(path)`` parses the file once and checks every table (a missing file declares
nothing); ``ProjectConfig`` holds one typed section per table (``channels``, ``alerts``,
``notify``, ``scheduler``, ``jobs``, ``retention``, ``monitoring``, ``gates``, ``models``,
``storage``) and every part of Shipyard takes the parsed object, or its section, never the file
(``load_storage(path)`` checks the ``[storage]`` table alone, for commands that change nothing
in the registry). A bad key is
refused naming its table and key, in one style:
``shipyard.toml: [retention] monitoring: Invalid age ...``.
Also here: the durations the file and the command options are written in (``parse_window``,
``parse_duration``, ``parse_age``, ``parse_label_delay``).

Runtime objects built from a section stay in their packages: ``alerting`` builds channels,
alert and notify rules from ``project.channels``, ``.alerts`` and ``.notify``; ``scheduler``
checks each job's kind and parameters. They report their problems through
``ProjectConfig.invalid`` so the message has the same shape.

Per model, ``ProjectConfig.policy(name)`` merges ``[gates]`` with ``[models.NAME]`` (objective,
acceptance criterion, fairness factors, gate limits, retraining) into a ``ModelPolicy``.

Layering: this package imports only ``shipyard.errors`` and ``shipyard.names`` (and pydantic);
any package may import it. It sits just above ``errors`` and ``settings``.

>>> project = ProjectConfig.model_validate({"retention": {"monitoring": "keep"}})
>>> project.jobs, project.retention.monitoring, project.retention.job_runs
([], None, datetime.timedelta(days=365))
"""

from shipyard.config._durations import (
    KEEP,
    parse_age,
    parse_duration,
    parse_label_delay,
    parse_window,
)
from shipyard.config._models import (
    METRICS,
    Criterion,
    GateSettings,
    GatesTable,
    MetricGate,
    ModelPolicy,
    ModelTable,
    RetrainTable,
    check_metric,
    parse_criterion,
)
from shipyard.config._project import ProjectConfig, load_project, load_storage, read_project_text
from shipyard.config._tables import (
    AlertTable,
    ChannelTable,
    JobTable,
    MonitoringTable,
    NotifyTable,
    RetentionTable,
    SchedulerTable,
    Severity,
    StorageTable,
)

__all__ = [
    "KEEP",
    "METRICS",
    "AlertTable",
    "ChannelTable",
    "Criterion",
    "GateSettings",
    "GatesTable",
    "JobTable",
    "MetricGate",
    "ModelPolicy",
    "ModelTable",
    "MonitoringTable",
    "NotifyTable",
    "ProjectConfig",
    "RetentionTable",
    "RetrainTable",
    "SchedulerTable",
    "Severity",
    "StorageTable",
    "check_metric",
    "load_project",
    "load_storage",
    "parse_age",
    "parse_criterion",
    "parse_duration",
    "parse_label_delay",
    "parse_window",
    "read_project_text",
]
