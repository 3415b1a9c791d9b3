"""Runs the SQLMesh unit tests (tests/test_<model>.yaml) as part of the suite."""

from circuitlake import project


def test_sqlmesh_unit_tests_pass(wh):
    ctx = project.context(wh, unit_tests=True)
    try:
        result = ctx.test()
    finally:
        ctx.close()
    assert result.testsRun >= 3
    assert result.wasSuccessful(), [str(f) for f in result.failures + result.errors]
