"""The snapshot & AMI ChatOps bot: one sub-package per layer, data flowing one way (docs/architecture.md).

    aws -> domain -> approvals -> state | slack -> flows -> handlers | scheduler -> process

A layer imports only the layers to its left (tests/test_layers.py holds it to that).
"""
