"""Micro-credential catalogue: Design Plans, versions, approval workflow, import/export."""
