"""Platform registrations and deployments: found by (issuer, client_id), never by issuer."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.errors import LaunchError
from lti_tool.store.models.core import Deployment, Platform


def find_platform(db: Session, issuer: str, client_id: str) -> Platform | None:
    return db.scalar(
        select(Platform).where(Platform.issuer == issuer, Platform.client_id == client_id)
    )


def platforms_for_issuer(db: Session, issuer: str) -> list[Platform]:
    return list(db.scalars(select(Platform).where(Platform.issuer == issuer)))


def find_deployment(db: Session, platform: Platform, deployment_id: str) -> Deployment | None:
    return db.scalar(
        select(Deployment).where(
            Deployment.platform_id == platform.id, Deployment.deployment_id == deployment_id
        )
    )


def accept_deployment(db: Session, platform: Platform, deployment_id: str) -> Deployment:
    """The launch's deployment if registered and enabled, or newly recorded when the platform
    opted in to accepting new deployments; otherwise a 4xx that names it."""
    deployment = find_deployment(db, platform, deployment_id)
    if deployment is None:
        if not platform.auto_accept_deployments:
            raise LaunchError(
                f"Deployment {deployment_id!r} is not registered for client_id "
                f"{platform.client_id!r} of {platform.issuer}. Ask the Micro-credentials Office "
                "to add it."
            )
        deployment = Deployment(platform_id=platform.id, deployment_id=deployment_id,
                                auto_accepted=True)
        db.add(deployment)
        db.flush()
    elif not deployment.enabled:
        raise LaunchError(f"Deployment {deployment_id!r} has been disabled by the Office.")
    return deployment
