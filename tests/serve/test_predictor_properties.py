"""Property-based: any Unicode string (control chars, emoji, RTL, zero-width, CJK, whitespace only,
up to 100,000 characters) -> no exception, spans inside the text and equal to text[start:end]."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtl_core.model.testing import make_tiny_checkpoint
from mtl_core.serve.predictor import Predictor

SPECIAL = "\x00\x07\t\n\r\u200b\u200d\u200e\u200f\u202e\ufeff\u0301 😀🎉👍🏽 שלום مرحبا 你好世界 Ωµ∑ \ud7ff"
pieces = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=SPECIAL, max_size=40),
    st.sampled_from(["Obama", "New York", "<script>alert(1)</script>", "   ", "http://x.y/z?a=1&b=2", "@user #tag"]),
)
texts = st.lists(pieces, max_size=12).map(" ".join)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return Predictor.from_dir(make_tiny_checkpoint(tmp_path_factory.mktemp("prop")))


def _check(p, text):
    assert p.text == text
    assert set(p.tasks) == {"sentiment", "sentiment_score", "topic", "question_type", "spam", "ner"}
    for s in p.tasks["ner"].spans:
        assert 0 <= s.start < s.end <= len(text)
        assert text[s.start:s.end] == s.text
    assert p.truncated == (p.n_tokens > len(p.tokens))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(texts, min_size=1, max_size=4))
def test_any_unicode_never_raises(predictor, batch):
    for p, text in zip(predictor.predict(batch), batch):
        _check(p, text)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(unit=texts.filter(lambda t: t.strip()), target=st.integers(50_000, 100_000))
def test_huge_text_reports_truncation(predictor, unit, target):
    text = (unit + " ") * (target // (len(unit) + 1) + 1)
    text = text[:target]
    (p,) = predictor.predict([text])
    _check(p, text)
    if p.n_tokens > predictor.max_length:
        assert p.truncated and p.truncated_at is not None and p.truncated_at <= len(text)
