"""All models, imported so that `Base.metadata` knows every table."""

from lti_tool.store.models import badges, catalogue, core, evaluation, grades  # noqa: F401
from lti_tool.store.models.core import (  # noqa: F401
    AuditEntry,
    Context,
    Deployment,
    LoginState,
    Membership,
    Person,
    Platform,
    RateLimitCounter,
    RegistrationInvite,
    ResourceLink,
    ToolKey,
    UsedNonce,
    WebSession,
)
