"""Evaluation: the validation gates' statistics, on fresh labelled rows, for a candidate
version against the champion. Pure computations on frames, loaded models and archives:
nothing is written to the store (``shipyard.checks`` records the outcome).

``run_gates(EvalInputs(...))`` scores both models once on the same rows and returns a
``GateReport``: one ``Gate`` per check, each with ``passed``, ``value``, ``limit``, a sentence
(``detail``) and its evidence (``data``):

- ``accept``: the model's acceptance criterion (``"roc_auc >= 0.80"``);
- ``metric:<name>``: value and change thresholds against the champion, judged on paired
  bootstrap intervals (the same resampled rows for both models);
- ``slices``: the worst slice of every categorical input column;
- ``fairness:<feature>``: demographic parity ratio and equalized odds difference per
  sensitive feature (fairlearn), with intervals;
- ``explain``: the top raw input features (TreeSHAP, else permutation importance) and how
  far they moved against the champion;
- ``serving_cost``: latency and throughput through the server's scoring path, and sizes;
- ``schema``, ``data_checks``, ``onnx_parity``: schema compatibility, the training-data
  checks kept at registration, the ONNX export's parity on the rows.

Layer: above monitoring, serving, packaging, dataset and config (it imports their public
names), below ``checks``, which picks the data, loads the models and stores the record.

>>> gate = Gate("schema", True, None, None, "The input schema is the champion's.", "schema")
>>> GateReport([gate], {"schema": 0.01}).passed
True
"""

from shipyard.evaluation._gate import EvalInputs, Gate, GateReport
from shipyard.evaluation._run import run_gates

__all__ = ["EvalInputs", "Gate", "GateReport", "run_gates"]
