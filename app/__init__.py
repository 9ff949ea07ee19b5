"""Jury: multi-model jury deliberation service."""

import os

# Importing litellm must never reach for the network (it would fetch its price map); set before
# any module of the app can import it.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
