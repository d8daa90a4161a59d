"""All models, imported so that `Base.metadata` knows every table."""

from lti_tool.store.models import (  # noqa: F401
    badges,
    catalogue,
    core,
    evaluation,
    grades,
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
    RegistrationInvite,
    ResourceLink,
    ToolKey,
    UsedNonce,
    WebSession,
)
