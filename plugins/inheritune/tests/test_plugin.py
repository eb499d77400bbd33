"""The conformance kit: layout, light imports, every shipped config, the smoke demo (all parameters train)."""

from paperloom.testing import assert_conforms


def test_conforms():
    assert_conforms("inheritune")
