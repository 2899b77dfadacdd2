"""Fast paths give the same answers: int8 quantized vs fp32, SDPA vs eager attention, fast encode/decode helpers.

No timing assertions: speed lives in bench/ (see bench/README.md).
"""

from __future__ import annotations

import pytest
import torch

from mtl_core.model.decoding import _word_end, bio_to_spans
from mtl_core.model.encoding import encode_texts
from mtl_core.serve.predictor import Predictor
from mtl_core.serve.quantize import Int8Linear

TEXTS = [
    "I loved this movie, it was wonderful!",
    "What is the capital of Peru ?",
    "WINNER!! You have been selected to receive a £900 prize reward. Call 09061701461 now.",
    "The stock market fell in London today after the Bank of England raised interest rates again.",
    "ok",
    "Barack Obama met Angela Merkel in Berlin on Tuesday to talk about trade and the euro.",
    "emoji 😀🎉 and CJK 你好世界 and a\u3000wide\u2003space",
    "boring , dreadful and far too long " * 8,
    "Is this the best pizza in Naples?",
    "terrible service, never again",
] * 3
PROB_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def quantized(tiny_checkpoint) -> Predictor:
    return Predictor.from_dir(tiny_checkpoint, device="cpu", quantize=True)


def test_quantized_predictor_is_close_to_fp32(tiny_predictor, quantized):
    assert quantized.quantized and any("quantized" in type(m).__module__ for m in quantized.model.modules())
    assert not any("quantized" in type(m).__module__ for m in tiny_predictor.model.modules())  # fp32 untouched
    fp32, int8 = tiny_predictor.predict(TEXTS), quantized.predict(TEXTS)
    same = total = 0
    for a, b in zip(fp32, int8):
        assert set(a.tasks) == set(b.tasks)
        for name, pa in a.tasks.items():
            pb = b.tasks[name]
            if pa.kind == "classification":
                for label, prob in pa.probs.items():
                    assert abs(prob - pb.probs[label]) <= PROB_TOLERANCE, (name, a.text)
                total += 1
                same += pa.label == pb.label
                if pa.margin > 2 * PROB_TOLERANCE:  # a clear winner must not change
                    assert pa.label == pb.label, (name, a.text)
            elif pa.kind == "regression":
                assert abs(pa.value - pb.value) <= PROB_TOLERANCE * (pa.high - pa.low), (name, a.text)
            else:
                assert len(pa.tags) == len(pb.tags)
                total += len(pa.tags)
                same += sum(x == y for x, y in zip(pa.tags, pb.tags))
    assert same / total >= 0.9


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch 2.13: quantized tensor types are deprecated (still work)
def test_int8_outlier_channels_bypass_the_int8_gemm_and_leave_the_input_unchanged():
    torch.manual_seed(0)
    fp32 = torch.nn.Linear(64, 32)
    x = torch.randn(3, 5, 64)
    x[..., 7] *= 60  # one channel dwarfs the rest, as MiniLM's do
    want = fp32(x).detach()

    def int8(outliers: bool) -> Int8Linear:
        lin = torch.nn.Linear(64, 32)
        lin.load_state_dict(fp32.state_dict())
        if outliers:
            lin.weight.data[:, 7] = 0
        lin.qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
        q = Int8Linear.from_float(lin)
        if outliers:
            q.outliers, q.outlier_weight = torch.tensor([7]), fp32.weight.data[:, [7]].t().contiguous()
        return q

    plain, bypass = int8(False), int8(True)
    before = x.clone()
    with torch.inference_mode():
        err_plain = float((plain(x) - want).abs().max())
        err_bypass = float((bypass(x) - want).abs().max())
    assert torch.equal(x, before)  # zeroed for the GEMM, then restored: the caller's tensor is untouched
    assert err_bypass < err_plain / 4


def test_sdpa_and_eager_head_outputs_agree(tiny_predictor):
    batch = tiny_predictor.encode(TEXTS)  # mixed lengths: padding in most rows
    fast = tiny_predictor.logits(batch).logits
    slow = tiny_predictor.logits(batch, with_attention=True).logits
    tiny_predictor.model.set_attention(eager=False)
    real = batch.attention_mask.bool()
    assert set(fast) == set(slow) == set(tiny_predictor.task_names)
    for name in fast:
        diff = (fast[name].float() - slow[name].float()).abs()
        if diff.dim() == 3:
            diff = diff[real]
        assert float(diff.max()) <= 1e-4, name


def test_sdpa_and_eager_predictions_agree(tiny_predictor):
    fast = tiny_predictor.predict(TEXTS[:10])
    slow = tiny_predictor.predict(TEXTS[:10], with_attention=True)
    for a, b in zip(fast, slow):
        assert a.attentions is None and b.attentions is not None
        for name, pa in a.tasks.items():
            pb = b.tasks[name]
            if pa.kind == "classification":
                assert max(abs(p - pb.probs[k]) for k, p in pa.probs.items()) <= 1e-4
            elif pa.kind == "regression":
                assert abs(pa.value - pb.value) <= 1e-3
            else:
                assert pa.tags == pb.tags


def test_encoded_batch_is_padded_and_masked(tiny_predictor):
    tok = tiny_predictor.tokenizer
    batch = encode_texts(tok, ["a", "a much longer text with many more words in it", "word " * 100], 32)
    width = batch.input_ids.shape[1]
    assert batch.input_ids.dtype == batch.attention_mask.dtype == torch.long
    assert batch.lengths == [3, batch.lengths[1], 32] and width == max(batch.lengths)
    for row, n in enumerate(batch.lengths):
        assert batch.attention_mask[row].tolist() == [1] * n + [0] * (width - n)
        assert batch.input_ids[row, n:].eq(tok.pad_token_id).all()
        assert batch.input_ids[row, n - 1] == tok.sep_token_id  # truncation keeps the final [SEP]
    assert batch.truncated == [False, False, True] and batch.full_lengths[2] > 32


@pytest.mark.parametrize("text", ["plain words here", "tab\there", "nbsp\u00a0x y", "ideo\u3000x", "end", "",
                                  "line\u2028sep", "a\x1cb c", "zero\u200bwidth x"])
def test_word_end_matches_isspace(text):
    for start in range(len(text) + 1):
        end = start
        while end < len(text) and not text[end].isspace():
            end += 1
        assert _word_end(text, start) == end


def test_span_scores_are_plain_floats():
    spans = bio_to_spans([(0, 5, "B-PER", 0.75), (6, 11, "I-PER", 0.25), (12, 17, "B-LOC", 0.5)], "Barry Obama Paris")
    assert [(s.text, s.label) for s in spans] == [("Barry Obama", "PER"), ("Paris", "LOC")]
    assert spans[0].score == 0.5 and spans[1].score == 0.5
    assert all(type(s.score) is float for s in spans)


def test_rust_tokenizer_path_matches_the_transformers_call(tiny_predictor):
    """encode_texts calls the Rust tokenizer directly; it must give what tokenizer(...) gives, untruncated,
    even when the shared backend was left with truncation on by another caller."""
    from mtl_core.model.encoding import tokenize_whole

    tok = tiny_predictor.tokenizer
    texts = TEXTS[:10] + ["", "[SEP] [CLS] [MASK]", "\u200b\u200b", "x" * 3000, "word " * 400]
    tok(["warm"], truncation=True, max_length=8)  # leaves truncation set on the shared Rust object
    ids, offsets, tokens = tokenize_whole(tok, texts)
    ref = tok(texts, add_special_tokens=True, truncation=False, return_offsets_mapping=True)
    assert ids == ref["input_ids"]
    assert offsets == [[tuple(o) for o in row] for row in ref["offset_mapping"]]
    assert tokens == [tok.convert_ids_to_tokens(r) for r in ref["input_ids"]]
    assert len(ids[-1]) == 402  # nothing truncated
