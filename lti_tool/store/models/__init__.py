"""All models, imported so that `Base.metadata` knows every table."""

from lti_tool.store.models import (  # noqa: F401
    badges,
    catalogue,
    core,
    evaluation,
    grades,
    jobs,
    reports,
)
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
    UsedSessionCode,
    WebSession,
)
