"""Client: one store and the acting user, with the tracker, registry, traffic and users on top.

The explicit object behind ``import shipyard as sy``'s one-call functions (which use one
default ``Client`` built from the environment); build your own for several stores or users in
one process::

    >>> from shipyard.client import Client
    >>> from shipyard.settings import Settings
    >>> client = Client(Settings(home="/tmp/sy-doc", user="alice")).open()  # doctest: +SKIP
    >>> client.load("churn@production").predict(frame)  # doctest: +SKIP
    >>> client.close()  # doctest: +SKIP

Layer: imports registry, tracking, packaging, auth, alerting, store and settings (when a
client opens, so ``import shipyard.client`` costs no SQLAlchemy or scikit-learn); only the
facade (``shipyard``), the CLI and the demo import it.
"""

from shipyard.client._client import Client

__all__ = ["Client"]
