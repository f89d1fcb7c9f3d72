"""What the tests share: the end-to-end harness, `python -m bot` as a process, factories, scenario helpers.

Test modules import from here, never from conftest.py or from one another; conftest.py files hold only fixtures.
"""
