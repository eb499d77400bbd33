"""The conformance kit: layout, light imports, every shipped config validates, the demo's smoke run on CPU
changes every trainable parameter of every model it builds."""

from paperloom.testing import assert_conforms


def test_conforms():
    assert_conforms("fam")
