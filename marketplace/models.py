"""Every domain's models, imported once so the metadata is complete (Alembic, tests)."""

from catalog import models as catalog_models  # noqa: F401
from contracts import models as contracts_models  # noqa: F401
from marketplace.accounts import models as accounts_models  # noqa: F401
from marketplace.audit import models as audit_models  # noqa: F401
from marketplace.billing import models as billing_models  # noqa: F401
from marketplace.brokering import models as brokering_models  # noqa: F401
from marketplace.core import idempotency, jobs  # noqa: F401
from marketplace.core.db import Base
from marketplace.delivery import models as delivery_models  # noqa: F401
from marketplace.webhooks import models as webhooks_models  # noqa: F401

metadata = Base.metadata
