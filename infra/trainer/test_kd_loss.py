"""Unit tests of kd_loss.py against dense references (python -m unittest test_kd_loss, from infra/trainer)."""

from __future__ import annotations

import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from kd_loss import kd_objective, sparse_kd_loss  # noqa: E402

V, K = 11, 4
D = torch.float64


def case(seed: int, shape=(2, 3)):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(*shape, V, generator=g, dtype=D) * 2
    teacher_logits = torch.randn(*shape, V, generator=g, dtype=D) * 3
    teacher_logp = F.log_softmax(teacher_logits, -1)  # what an API returns: temperature-1 log-probabilities
    top_lp, top_ids = teacher_logp.topk(K, -1)
    return student, teacher_logits, teacher_logp, top_ids, top_lp


def dense_reference(student, teacher_logp, top_ids, mask, T, tail):
    """The same quantity computed densely over the whole vocabulary, one position at a time, with no gathers: the
    teacher's top-k mass as a dense vector (zeros off the support), the tail as the dense sum over the complement."""
    s_full = F.log_softmax(student / T, -1)
    total, count = torch.zeros((), dtype=D), 0
    for idx in torch.nonzero(mask):
        i = tuple(idx.tolist())
        support = torch.zeros(V, dtype=torch.bool)
        support[top_ids[i]] = True
        p = teacher_logp[i].exp()
        if tail:
            missing = p[~support].sum()
            soft = torch.where(support, p ** (1 / T), torch.zeros_like(p))
            soft = soft / soft.sum() * (1 - missing)
            s_p = s_full[i].exp()
            q = torch.cat([soft[support], missing.reshape(1)])
            outcomes_s = torch.cat([s_p[support], s_p[~support].sum().reshape(1)])
            kl = (q * (q.log() - outcomes_s.log())).sum()
        else:
            q = torch.where(support, p ** (1 / T), torch.zeros_like(p))
            q = q / q.sum()
            kl = torch.where(support, q * (q.log() - s_full[i]), torch.zeros_like(q)).sum()
        total = total + kl
        count += 1
    return T * T * total / count


class SparseKdLossTest(unittest.TestCase):
    def test_equals_dense_reference(self):
        for seed in range(5):
            for T in (0.5, 1.0, 2.0, 4.0):
                for tail in (True, False):
                    student, _, teacher_logp, ids, lp = case(seed)
                    mask = torch.ones(2, 3, dtype=torch.bool)
                    mask[1, 2] = False
                    got = sparse_kd_loss(student, ids, lp, mask, T, tail)
                    want = dense_reference(student, teacher_logp, ids, mask, T, tail)
                    self.assertLess(abs(float(got - want)), 1e-6, f"seed {seed} T {T} tail {tail}: {got} vs {want}")

    def test_full_support_is_hintons_kd(self):
        """With k = V the sparse loss is exactly T² · KL(softmax(t/T) ‖ softmax(s/T)) (tail or not: the tail is empty)."""
        g = torch.Generator().manual_seed(7)
        s = torch.randn(5, V, generator=g, dtype=D)
        t = torch.randn(5, V, generator=g, dtype=D)
        lp, ids = F.log_softmax(t, -1).topk(V, -1)
        for T in (1.0, 3.0):
            want = T * T * F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), log_target=True, reduction="batchmean")
            for tail in (False, True):
                got = sparse_kd_loss(s, ids, lp, torch.ones(5, dtype=torch.bool), T, tail)
                self.assertLess(abs(float(got - want)), 1e-6, f"T {T} tail {tail}")

    def test_t_squared_scaling(self):
        """The loss is T² times the plain KL at temperature T (computed here with torch's own kl_div on the full
        vocabulary)."""
        g = torch.Generator().manual_seed(3)
        s = torch.randn(4, V, generator=g, dtype=D)
        t = torch.randn(4, V, generator=g, dtype=D)
        lp, ids = F.log_softmax(t, -1).topk(V, -1)
        for T in (2.0, 5.0):
            kl_t = F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), log_target=True, reduction="batchmean")
            got = sparse_kd_loss(s, ids, lp, torch.ones(4, dtype=torch.bool), T, True)
            self.assertLess(abs(float(got / kl_t) - T * T), 1e-6)
            self.assertLess(abs(float(got - T * T * kl_t)), 1e-6)

    def test_tail_bucket_matters_and_is_the_missing_mass(self):
        """A student that copies the teacher's top k exactly and puts the teacher's missing mass elsewhere has zero loss
        with the tail; a renormalised top k (no tail) still charges it for the missing mass."""
        student, teacher_logits, teacher_logp, ids, lp = case(5)
        mask = torch.ones(2, 3, dtype=torch.bool)
        self.assertLess(float(sparse_kd_loss(teacher_logits, ids, lp, mask, 1.0, True)), 1e-10)
        self.assertGreater(float(sparse_kd_loss(teacher_logits, ids, lp, mask, 1.0, False)), 1e-3)

    def test_gradients_finite_on_degenerate_inputs(self):
        student = torch.randn(2, 3, V, dtype=D)
        student[0, 0, 0] = 80.0  # the student puts ~all its mass on one id
        student.requires_grad_(True)
        ids = torch.tensor([[[0, 1, 2, 3]] * 3] * 2)
        lp = torch.full((2, 3, K), float("-inf"), dtype=D)
        lp[..., 0] = 0.0  # the teacher is certain: its tail is empty
        lp[0, 1, :] = float("-inf")  # no alternatives at all at one position
        lp[1, 2, 1] = -30.0
        mask = torch.ones(2, 3, dtype=torch.bool)
        for tail in (True, False):
            for T in (0.5, 1.0, 4.0):
                student.grad = None
                loss = sparse_kd_loss(student, ids, lp, mask, T, tail)
                loss.backward()
                self.assertTrue(torch.isfinite(loss))
                self.assertTrue(torch.isfinite(student.grad).all(), f"tail {tail} T {T}")

    def test_gradient_matches_dense_reference(self):
        student, _, teacher_logp, ids, lp = case(11)
        mask = torch.ones(2, 3, dtype=torch.bool)
        a = student.clone().requires_grad_(True)
        b = student.clone().requires_grad_(True)
        sparse_kd_loss(a, ids, lp, mask, 2.0, True).backward()
        dense_reference(b, teacher_logp, ids, mask, 2.0, True).backward()
        self.assertLess(float((a.grad - b.grad).abs().max()), 1e-6)

    def test_objective_mixes_kd_and_ce(self):
        student, _, _, ids, lp = case(2)
        labels = torch.randint(0, V, (2, 3))
        labels[0, 0] = -100
        mask = torch.ones(2, 3, dtype=torch.bool)
        ce = F.cross_entropy(student.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
        kd = sparse_kd_loss(student, ids, lp, mask & (labels != -100), 2.0, True)
        for alpha in (0.0, 0.3, 1.0):
            loss, parts = kd_objective(student, labels, ids, lp, mask, 2.0, alpha, True)
            self.assertLess(abs(float(loss - (alpha * kd + (1 - alpha) * ce))), 1e-9)
            self.assertLess(abs(parts["ce"] - float(ce)), 1e-9)


if __name__ == "__main__":
    unittest.main()
