"""Destructive actions as stored plans: one executor and one crash reconcile per plan kind, in one registry."""
