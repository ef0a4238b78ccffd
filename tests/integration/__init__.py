import pytest

# The checks shared by the worker-type modules assert like a test module does: have pytest rewrite
# their asserts too, so that a failure shows the values compared.
pytest.register_assert_rewrite(f"{__name__}.worker_checks")
