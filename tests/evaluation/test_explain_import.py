"""TreeSHAP is not lost to a warning: shap's import warns (matplotlib's PendingDeprecation),
which is an error where warnings are errors; the explanation then fell back to permutation
importance depending on which test had imported shap first in the process."""

from __future__ import annotations

import subprocess
import sys


def test_shap_imports_where_warnings_are_errors() -> None:
    code = "from shipyard.evaluation._explain import import_shap; print(import_shap().__name__)"
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "shap", done.stderr[-2000:]
