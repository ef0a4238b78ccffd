from gunicorn_pyinstrument.processors import OUT_OF_CONTEXT, collapse_out_of_context, merge_repeats

ROOT = "Dummy-1\x00<thread>\x001"
OTHER_ROOT = "Dummy-2\x00<thread>\x002"
APP = "app\x00app.py\x001"
ALPHA = "alpha_work\x00app.py\x0010"
BETA = "beta_work\x00app.py\x0020"


def test_out_of_context_time_moves_under_the_requests_own_root():
    records = [
        ([ROOT, APP, ALPHA], 0.01),
        ([OTHER_ROOT, APP, BETA, OUT_OF_CONTEXT], 0.05),
        ([ROOT, APP, ALPHA], 0.02),
    ]
    result = collapse_out_of_context(records)
    assert result == [
        ([ROOT, APP, ALPHA], 0.01),
        ([ROOT, OUT_OF_CONTEXT], 0.05),
        ([ROOT, APP, ALPHA], 0.02),
    ]
    assert not any(BETA in stack for stack, _ in result)
    assert sum(t for _, t in result) == sum(t for _, t in records)


def test_out_of_context_only_keeps_no_foreign_frame():
    result = collapse_out_of_context([([OTHER_ROOT, BETA, OUT_OF_CONTEXT], 0.3)])
    assert result == [([OUT_OF_CONTEXT], 0.3)]


def test_merge_repeats_adds_consecutive_identical_stacks_only():
    a, b = [ROOT, APP, ALPHA], [ROOT, APP, BETA]
    records = [(a, 0.001), (list(a), 0.002), (b, 0.001), (a, 0.004)]
    result = merge_repeats(records)
    assert [stack for stack, _ in result] == [a, b, a]
    assert [round(t, 6) for _, t in result] == [0.003, 0.001, 0.004]


def test_merge_repeats_of_nothing_is_nothing():
    assert merge_repeats([]) == []
