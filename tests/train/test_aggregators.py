"""Gradient aggregators (train/aggregators.py) on toy problems with known, conflicting gradients (issue 18).

Invariants, not snapshots: PCGrad removes the conflicting component exactly; the methods that promise it give
a step that no task's loss increases along (to first order); GradNorm moves weight towards the slow task; the
joint combiner fills the shared parameters' .grad with the aggregate of the per-task Jacobian and each head's
.grad with its own task's gradient; every aggregator trains the toy pipeline end to end."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from mtl_core.model.modeling import ModelConfig
from mtl_core.train.aggregators import AGGREGATORS, LOSS_ONLY, GradNorm, JointCombiner, make_aggregator
from mtl_core.train.loop import TrainConfig
from mtl_core.train.pipeline import train_new_version
from tests.helpers.toy import make_tiny_encoder_dir, write_toy_tasks

JACOBIAN = [a for a in AGGREGATORS if a not in ("none", *LOSS_ONLY)]
SEEDS = range(6)
TASK_COUNTS = range(2, 6)


def conflicting_jacobian(seed: int, k: int, n: int, dtype=torch.float64) -> torch.Tensor:
    """(k, n) random rows where rows 0 and 1 conflict (g0 · g1 < 0 by construction)."""
    gen = torch.Generator().manual_seed(seed)
    jac = torch.randn(k, n, generator=gen, dtype=dtype)
    noise = torch.randn(n, generator=gen, dtype=dtype)
    noise -= (noise @ jac[0]) / (jac[0] @ jac[0]) * jac[0]  # ⊥ g0: g0 · g1 = -0.8 |g0|²
    jac[1] = -0.8 * jac[0] + 0.5 * noise
    assert jac[0] @ jac[1] < 0
    return jac


def pcgrad_reference(jac: torch.Tensor, orders: list[list[int]]) -> torch.Tensor:
    """Algorithm 1 of Yu et al. 2020: g_i projected, in `orders[i]`, onto the normal plane of every g_j it
    still conflicts with; the projections summed."""
    total = torch.zeros_like(jac[0])
    for i, order in enumerate(orders):
        g = jac[i].clone()
        for j in order:
            dot = g @ jac[j]
            if dot < 0:
                g = g - dot / (jac[j] @ jac[j]) * jac[j]
        total += g
    return total


# --- 1. PCGrad: the conflicting component is removed exactly ------------------------------------------------


def test_pcgrad_two_conflicting_gradients_hand_computed():
    jac = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])  # g1 · g2 = -1: a conflict
    # g1' = g1 - (g1·g2 / |g2|²) g2 = (1, 0) + ½(-1, 1) = (½, ½);  g2' = g2 - (g1·g2 / |g1|²) g1 = (0, 1)
    g1p, g2p = torch.tensor([0.5, 0.5]), torch.tensor([0.0, 1.0])
    assert g1p @ jac[1] == 0 and g2p @ jac[0] == 0  # each has lost exactly its component along the other
    agg = make_aggregator("pcgrad", 2)
    torch.testing.assert_close(agg(jac), g1p + g2p)  # (½, 3/2)
    torch.testing.assert_close(agg.weighting(jac), torch.tensor([2.0, 1.5]))  # d = 2 g1 + 1.5 g2
    torch.testing.assert_close(agg(jac), pcgrad_reference(jac, [[1], [0]]))


@pytest.mark.parametrize("jac", [torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[1.0, 2.0], [0.0, 1.0]]),
                                 torch.tensor([[1.0, 0.0], [0.0, 3.0]])])  # dot > 0, > 0, = 0: no conflict
def test_pcgrad_without_conflict_is_the_plain_sum(jac):
    torch.testing.assert_close(make_aggregator("pcgrad", 2)(jac), jac.sum(dim=0))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [2, 3, 10, 50])
def test_pcgrad_two_tasks_matches_reference_and_never_conflicts(seed, n):
    """With 2 tasks PCGrad is deterministic, and its step is non-conflicting: with a conflict,
    d·g1 = |g1|² + g2'·g1 = |g1|² - (g1·g2)²/|g2|² >= 0 (Cauchy-Schwarz), since g2' ⊥ g1; symmetrically for g2."""
    jac = conflicting_jacobian(seed, 2, n)
    d = make_aggregator("pcgrad", 2)(jac)
    torch.testing.assert_close(d, pcgrad_reference(jac, [[1], [0]]))
    assert (jac @ d >= -1e-10).all()
    dot = jac[0] @ jac[1]
    expected = torch.stack([jac[0] @ jac[0] - dot**2 / (jac[1] @ jac[1]), jac[1] @ jac[1] - dot**2 / (jac[0] @ jac[0])])
    torch.testing.assert_close(jac @ d, expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_pcgrad_three_tasks_is_one_of_the_random_orders(seed):
    """With more than 2 tasks torchjd draws each gradient's projection order at random: the result must be
    the reference for one of the (k-1)! orders per gradient."""
    jac = conflicting_jacobian(seed, 3, 7)
    torch.manual_seed(seed)
    d = make_aggregator("pcgrad", 3)(jac)
    per_task = [list(itertools.permutations([j for j in range(3) if j != i])) for i in range(3)]
    candidates = [pcgrad_reference(jac, [list(o) for o in orders]) for orders in itertools.product(*per_task)]
    assert any(torch.allclose(d, c, atol=1e-10) for c in candidates)


# --- 2. Non-conflicting aggregators: no task's loss increases to first order ------------------------------


@pytest.mark.parametrize("name", ["upgrad", "mgda"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_non_conflicting_aggregators(name, dtype):
    """UPGrad and MGDA are non-conflicting (Jacobian Descent paper, Table 1): g_i · d >= 0 for every row.
    Checked where the parameters outnumber the tasks (n >= 10 for k <= 5, as for a real encoder): with
    n ~ k, torchjd's MGDA (Frank-Wolfe, epsilon 1e-3, 100 iterations) stops far from the min-norm point and
    UPGrad's regularised Gramian (test below) leaves visible slack."""
    for seed, k, n in itertools.product(SEEDS, TASK_COUNTS, (10, 20, 50)):
        jac = conflicting_jacobian(seed, k, n, dtype)
        d = make_aggregator(name, k)(jac)
        assert d.shape == (n,) and d.dtype == dtype and torch.isfinite(d).all()
        assert d.norm() > 1e-3  # not the trivial non-conflicting step
        dots = jac @ d
        assert (dots >= -1e-5).all(), (name, seed, k, n, dots)


@pytest.mark.parametrize("seed", SEEDS)
def test_upgrad_non_conflicting_up_to_its_regularisation_in_any_dimension(seed):
    """torchjd's UPGrad solves its dual-cone QP on G/tr(G) + 1e-4·I (G = J Jᵀ), so for its weights w the
    exact guarantee is G w + 1e-4·tr(G)·w >= 0: d = Jᵀw is non-conflicting up to that term, for any n."""
    for k, n in itertools.product(TASK_COUNTS, (3, 5, 7, 10, 50)):
        jac = conflicting_jacobian(seed, k, n)
        agg = make_aggregator("upgrad", k)
        weights, d = agg.weighting(jac), agg(jac)
        torch.testing.assert_close(d, weights @ jac)
        gram = jac @ jac.T
        assert (weights >= 0).all()
        assert (jac @ d + 1e-4 * gram.trace() * weights >= -1e-8 * gram.trace()).all(), (k, n)


@pytest.mark.parametrize("seed", SEEDS)
def test_mgda_weights_are_convex_and_step_is_min_norm_like(seed):
    """MGDA's d is a convex combination of the rows, no longer than the shortest row."""
    for k, n in itertools.product(TASK_COUNTS, (10, 50)):
        jac = conflicting_jacobian(seed, k, n)
        agg = make_aggregator("mgda", k)
        weights = agg.weighting(jac)
        assert (weights >= 0).all() and weights.sum() == pytest.approx(1.0)
        assert agg(jac).norm() <= jac.norm(dim=1).min() + 1e-9


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-8), (torch.float32, 1e-2)])
def test_imtlg_equal_projections_on_every_normalised_gradient(dtype, tol):
    """IMTL-G (Liu et al. 2021): d · g_i/|g_i| is the same for every task when the rows are independent.
    (The common value is usually positive but not always: its sign is that of 1ᵀ G⁻¹ (|g_i|)_i.)"""
    for seed, k, n in itertools.product(SEEDS, TASK_COUNTS, (5, 10, 50)):
        jac = conflicting_jacobian(seed, k, n, dtype)
        d = make_aggregator("imtl", k)(jac)
        proj = (jac @ d) / jac.norm(dim=1)
        assert torch.isfinite(proj).all()
        assert (proj - proj.mean()).abs().max() <= tol * proj.abs().max(), (seed, k, n, proj)


@pytest.mark.parametrize("name", ["cagrad", "nash_mtl", "imtl", "aligned_mtl", "pcgrad", "gradnorm"])
def test_other_aggregators_give_a_finite_step_of_the_right_shape(name):
    for seed, k, n in itertools.product(SEEDS[:3], TASK_COUNTS, (3, 20)):
        jac = conflicting_jacobian(seed, k, n, torch.float32)
        d = make_aggregator(name, k)(jac)
        assert d.shape == (n,) and d.dtype == torch.float32 and torch.isfinite(d).all(), (name, seed, k, n)


def test_make_aggregator_fresh_and_rejects_loss_only_names():
    assert make_aggregator("nash_mtl", 3) is not make_aggregator("nash_mtl", 3)
    for name in ("famo", "none", "sum"):
        with pytest.raises(ValueError, match=name):
            make_aggregator(name, 2)


# --- 3. GradNorm --------------------------------------------------------------------------------------------


def test_gradnorm_weights_start_at_one_stay_positive_sum_to_k_and_favour_the_slow_task():
    k = 3
    gn = GradNorm(k)
    torch.testing.assert_close(gn.weights, torch.ones(k))
    jac = 2.0 * torch.eye(k, 6)  # equal gradient norms, no conflict: only the loss ratios differ
    # task 0 barely trains, task 1 at a middling rate, task 2 fast
    losses = [(1.0, 1.0, 1.0), (0.98, 0.8, 0.5), (0.96, 0.65, 0.3), (0.95, 0.55, 0.2), (0.94, 0.5, 0.12)]
    for step, row in enumerate(losses):
        before = gn.weights.clone()
        gn.losses = torch.tensor(row)
        d = gn(jac)
        torch.testing.assert_close(d, before @ jac)  # this step uses the weights it started with
        assert (gn.weights > 0).all() and gn.weights.sum() == pytest.approx(k)
        if step == 0:  # every ratio is 1: on target already
            torch.testing.assert_close(gn.weights, torch.ones(k))
    w = gn.weights
    assert w[0] > 1 > w[2] and w[0] > w[1] > w[2], w


def test_gradnorm_stays_positive_under_large_steps():
    gn = GradNorm(2, lr=0.9)
    jac = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    for t in range(30):
        gn.losses = torch.tensor([1.0, 0.5**t])  # task 1 races to zero
        gn(jac)
        assert (gn.weights > 0).all() and torch.isfinite(gn.weights).all()
        assert gn.weights.sum() == pytest.approx(2.0)
    assert gn.weights[0] > gn.weights[1]


def test_gradnorm_without_losses_is_a_fixed_weighted_sum():
    gn = GradNorm(2)
    jac = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    torch.testing.assert_close(gn(jac), jac.sum(dim=0))
    torch.testing.assert_close(gn.weights, torch.ones(2))


# --- 4. JointCombiner on a tiny real network ----------------------------------------------------------------


class TinyNet(nn.Module):
    """A shared Linear 'encoder' and two heads whose targets conflict (b's is minus a's)."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.encoder = nn.Linear(4, 5)
        self.heads = nn.ModuleDict({"a": nn.Linear(5, 1), "b": nn.Linear(5, 1)})
        self.x = torch.randn(8, 3, 4)  # (B, T, in)
        w = torch.randn(4, 1)
        self.targets = {"a": self.x @ w, "b": -(self.x @ w) + 0.5}

    def losses(self) -> dict[str, torch.Tensor]:
        """Both losses from one forward pass: one graph (the combiner must keep it for the second task)."""
        features = torch.tanh(self.encoder(self.x))
        return {n: ((h(features) - self.targets[n]) ** 2).mean() for n, h in self.heads.items()}

    def split(self):
        return list(self.encoder.parameters()), {n: list(h.parameters()) for n, h in self.heads.items()}


def _flat_grad(loss, params):
    return torch.cat([g.flatten() for g in torch.autograd.grad(loss, params, retain_graph=True)])


@pytest.mark.parametrize("name", JACOBIAN)
def test_joint_combiner_fills_shared_grad_with_the_aggregate_and_heads_with_their_own(name):
    net = TinyNet()
    shared, per_task = net.split()
    losses = net.losses()
    jac = torch.stack([_flat_grad(losses[n], shared) for n in ("a", "b")])  # (2 tasks, shared params)
    head_grads = {n: [g.clone() for g in torch.autograd.grad(losses[n], per_task[n], retain_graph=True)]
                  for n in per_task}
    assert jac[0] @ jac[1] < 0  # the toy really conflicts on the shared encoder
    expected = make_aggregator(name, 2)(jac.clone())  # a fresh one: stateful aggregators are at step 0 too

    comb = JointCombiner(name, ["a", "b"])
    comb.backward(losses, shared, per_task)
    got = torch.cat([p.grad.flatten() for p in shared])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    for n, params in per_task.items():
        for p, g in zip(params, head_grads[n], strict=True):
            torch.testing.assert_close(p.grad, g)
    assert set(comb.last_weights) == {"a", "b"}
    assert all(math.isfinite(w) for w in comb.last_weights.values())


def _shared_step_losses(net: TinyNet, direction: list[torch.Tensor], lr: float) -> dict[str, float]:
    """The losses after moving the shared encoder alone by -lr × direction (heads fixed), then moving it back."""
    shared, _ = net.split()
    with torch.no_grad():
        for p, g in zip(shared, direction, strict=True):
            p -= lr * g
        after = {n: float(v) for n, v in net.losses().items()}
        for p, g in zip(shared, direction, strict=True):
            p += lr * g
    return after


@pytest.mark.parametrize("name", ["pcgrad", "upgrad", "mgda"])
def test_joint_combiner_step_lowers_both_losses_where_the_sum_does_not(name):
    """The methods that are non-conflicting for 2 tasks: a small step of the shared encoder along the combined
    gradient lowers both losses on a toy where the plain sum of the task gradients raises task a's."""
    net = TinyNet(seed=4)  # |g_b| > |g_a| there, and they conflict: the sum's step increases loss a
    shared, per_task = net.split()
    before = net.losses()
    plain = [sum(gs) for gs in zip(*(torch.autograd.grad(before[n], shared, retain_graph=True) for n in "ab"))]
    with_sum = _shared_step_losses(net, plain, 1e-3)
    assert with_sum["a"] > float(before["a"].detach())  # the toy really needs an aggregator

    JointCombiner(name, ["a", "b"]).backward(before, shared, per_task)
    after = _shared_step_losses(net, [p.grad for p in shared], 1e-3)
    assert all(after[n] < float(before[n].detach()) for n in before), (before, after)


def test_joint_combiner_gradnorm_reports_its_weights():
    net = TinyNet()
    shared, per_task = net.split()
    comb = JointCombiner("gradnorm", ["a", "b"])
    for _ in range(3):
        net.zero_grad(set_to_none=True)
        losses = net.losses()
        used = comb.aggregator.weights.clone()  # what this step combines with; GradNorm then updates them
        comb.backward(losses, shared, per_task)
        torch.testing.assert_close(torch.tensor(list(comb.last_weights.values())), used)
        assert sum(comb.last_weights.values()) == pytest.approx(2.0)
        with torch.no_grad():
            for p in net.parameters():
                p -= 0.05 * p.grad
    assert comb.aggregator.initial is not None


def test_joint_combiner_famo_gradients_and_weight_update():
    net = TinyNet()
    shared, per_task = net.split()
    comb = JointCombiner("famo", ["a", "b"])
    assert not comb.needs_jacobian and comb.last_weights == {"a": 1.0, "b": 1.0}
    losses = net.losses()
    # with FAMO's logits at 0 the update is Σ c_i ∇L_i, c_i = (1/L_i) / Σ_j (1/L_j): a convex combination
    inv = torch.stack([1 / losses[n].detach() for n in ("a", "b")])
    c = inv / inv.sum()
    jac = torch.stack([_flat_grad(losses[n], shared) for n in ("a", "b")])
    head_grads = {n: _flat_grad(losses[n], per_task[n]) for n in per_task}
    comb.backward(losses, shared, per_task)
    torch.testing.assert_close(torch.cat([p.grad.flatten() for p in shared]), c @ jac)
    for i, n in enumerate(("a", "b")):
        torch.testing.assert_close(torch.cat([p.grad.flatten() for p in per_task[n]]), c[i] * head_grads[n])
    assert comb.last_weights == pytest.approx({"a": 1.0, "b": 1.0})

    logits = comb.famo._w.detach().clone()
    with torch.no_grad():
        for p in net.parameters():
            p -= 0.1 * p.grad
    again = net.losses()
    comb.after_step({n: v.detach() for n, v in again.items()})
    assert not torch.equal(comb.famo._w.detach(), logits)
    assert comb.famo._w.grad is None  # FAMO steps its own logits, nothing leaks to the model's optimizer

    net.zero_grad(set_to_none=True)
    losses = net.losses()
    comb.backward(losses, shared, per_task)
    weights = comb.last_weights
    assert sum(weights.values()) == pytest.approx(2.0) and weights["a"] != pytest.approx(weights["b"])


def test_joint_combiner_rejects_an_unknown_name():
    with pytest.raises(ValueError):
        JointCombiner("gradvac", ["a", "b"])


# --- 5. TrainConfig validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("batching", ["per_task", "mixed"])
def test_aggregator_needs_batching_all(batching):
    with pytest.raises(ValueError, match="batching"):
        TrainConfig(aggregator="pcgrad", batching=batching)


def test_aggregator_needs_equal_loss_weighting_and_a_known_name():
    with pytest.raises(ValueError, match="loss_weighting"):
        TrainConfig(aggregator="upgrad", batching="all", loss_weighting="uncertainty")
    with pytest.raises(ValueError, match="aggregator"):
        TrainConfig(aggregator="gradvac", batching="all")
    for name in AGGREGATORS:
        assert TrainConfig(aggregator=name, batching="all").aggregator == name


# --- 6. End to end ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy_agg")
    return write_toy_tasks(root), make_tiny_encoder_dir(root / "enc")


@pytest.mark.parametrize("name", ["pcgrad", "upgrad", "famo", "gradnorm"])
def test_pipeline_trains_with_aggregator(toy, tmp_path, name):
    task_file, enc = toy
    cfg = TrainConfig(steps=20, batch_size=12, eval_every=20, batching="all", aggregator=name, freeze_layers=0,
                      freeze_embeddings=False)
    _, report = train_new_version(task_file, ModelConfig(encoder=str(enc), max_length=32), cfg, home=tmp_path,
                                  progress=False)
    assert report["stopped"] == "completed" and report["history"][-1]["step"] == 20
    tasks = {"polarity", "score", "things"}
    train_rows = [r for r in report["history"] if "loss" in r]
    assert train_rows
    for row in train_rows:
        assert set(row["weights"]) == tasks
        assert all(math.isfinite(w) and w > 0 for w in row["weights"].values()), row["weights"]
        if name in ("famo", "gradnorm"):
            assert sum(row["weights"].values()) == pytest.approx(3.0)
    assert set(report["test"]["tasks"]) == tasks
    for task, metrics in report["test"]["tasks"].items():
        numbers = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        assert numbers and all(math.isfinite(v) for v in numbers.values()), (task, metrics)
    assert math.isfinite(report["test"]["average"])


def test_per_task_forwards_give_the_jacobian_of_the_concatenated_batch(toy, tmp_path):
    """train/step.py runs each task's rows alone so that a task's backward covers its rows only; the Jacobian
    handed to the aggregator must equal torchjd's `mtl_backward` on the one concatenated batch (dropout off)."""
    from torchjd.autojac import mtl_backward
    from transformers import AutoTokenizer

    from mtl_core.model.features import featurize
    from mtl_core.model.modeling import build_model
    from mtl_core.train.pipeline import prepare
    from mtl_core.train.step import _param_split, collate_task, concat_inputs, per_task_losses, task_losses

    task_file, enc = toy
    tf, prepared = prepare(task_file, home=tmp_path)
    tok = AutoTokenizer.from_pretrained(enc)
    specs = tf.tasks
    batches = {s.name: collate_task(featurize(s, prepared[s.name]["train"][:3 + i], tok, 32), s.kind,
                                    tok.pad_token_id, len(s.tag_names) if s.kind == "token_classification"
                                    else len(s.labels)) for i, s in enumerate(specs)}  # different widths
    kinds, names = {s.name: s.kind for s in specs}, [s.name for s in specs]
    torch.manual_seed(0)
    model = build_model(specs, ModelConfig(encoder=str(enc), max_length=32)).eval()
    shared, per_task = _param_split(model, names)

    ids, mask, shapes = concat_inputs(batches)
    states = model.encoder(input_ids=ids, attention_mask=mask, return_dict=True).last_hidden_state
    joint = task_losses(model, model._heads(names, states, mask, shapes), batches, kinds, torch.device("cpu"))
    mtl_backward([joint[n] for n in names], features=states, tasks_params=[per_task[n] for n in names],
                 shared_params=shared)
    expected = torch.cat([p.jac.flatten(1) for p in shared], dim=1)  # (tasks, shared params)
    heads_expected = {n: [p.grad.clone() for p in per_task[n]] for n in names}
    for p in model.parameters():
        p.grad = None
        if hasattr(p, "jac"):
            del p.jac

    comb = JointCombiner("upgrad", names)
    captured = {}
    comb.aggregator.register_forward_pre_hook(lambda _m, args: captured.setdefault("jac", args[0].clone()))
    comb.backward(per_task_losses(model, batches, kinds, torch.device("cpu")), shared, per_task)
    torch.testing.assert_close(captured["jac"], expected, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(torch.cat([p.grad.flatten() for p in shared]),
                               make_aggregator("upgrad", len(names))(expected), atol=1e-6, rtol=1e-4)
    for n in names:
        for p, g in zip(per_task[n], heads_expected[n], strict=True):
            torch.testing.assert_close(p.grad, g, atol=1e-6, rtol=1e-4)
