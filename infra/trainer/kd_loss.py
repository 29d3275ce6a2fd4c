"""Sparse knowledge distillation from the teacher's top-k log-probabilities (Hinton et al. 2015, as in DistillKit).

For each position with teacher targets: the teacher's top-k logprobs (at temperature 1, as an API returns them) are
softened by T; the student's logits are softened by the same T; the loss is T² · KL(teacher_T ‖ student_T) summed over
the teacher's support, averaged over positions. T² keeps the gradient scale of the soft term independent of T.

Support:
  tail=False  the top k only: the teacher is renormalised over them; the student keeps its full-vocabulary
              log-probabilities there (mass it puts elsewhere is pure loss, which pulls it onto the teacher's support).
  tail=True   the top k plus one "everything else" outcome: the teacher keeps its missing mass m = 1 − Σ p_i (at T = 1,
              since it is known only in total) and shares 1 − m among the top k softened by T; the student's bucket is
              its softened mass outside the k ids. This keeps the teacher's confidence (a renormalised top k
              overstates it). With the full vocabulary as support, m = 0 and the loss is Hinton's exactly.

Padding: alternatives with logprob −inf are absent (fewer than k returned); a position whose mask is 0 has none.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The smallest mass a tail bucket is given: keeps log(tail) and its gradient finite when the top k hold ~everything.
TAIL_FLOOR = 1e-12


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 − exp(x)) for x ≤ 0, accurate at both ends, with x clamped so that 1 − exp(x) ≥ TAIL_FLOOR."""
    x = torch.clamp(x, max=float(torch.log1p(torch.tensor(-TAIL_FLOOR, dtype=torch.float64))))
    return torch.where(x > -0.6931471805599453, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def sparse_kd_loss(student_logits: torch.Tensor, teacher_ids: torch.Tensor, teacher_logprobs: torch.Tensor,
                   mask: torch.Tensor, temperature: float = 1.0, tail: bool = True) -> torch.Tensor:
    """T² · mean over masked positions of KL(teacher_T ‖ student_T) on the teacher's top-k support (+ tail bucket).

    student_logits [..., V]; teacher_ids [..., K] (long); teacher_logprobs [..., K] (−inf = absent); mask [...].
    """
    t = float(temperature)
    logits = student_logits if student_logits.dtype == torch.float64 else student_logits.float()
    s_logp = F.log_softmax(logits / t, dim=-1)
    s_sel = torch.gather(s_logp, -1, teacher_ids)  # [..., K]
    present = torch.isfinite(teacher_logprobs)
    neg_inf = torch.tensor(float("-inf"), dtype=s_sel.dtype, device=s_sel.device)
    t_lp = torch.where(present, teacher_logprobs.to(s_sel.dtype), neg_inf)
    if tail:
        # The teacher's missing mass m stays at T = 1: it is an aggregate of tokens whose own softened mass is unknown,
        # and softening m as if it were one token would blow float noise in an almost-empty tail up (m^(1/T)).
        m = (1.0 - t_lp.exp().sum(-1, keepdim=True)).clamp(min=0.0, max=1.0)
        q_top = torch.log1p(-m) + F.log_softmax(t_lp / t, dim=-1)
        q = torch.cat([q_top, torch.log(m)], dim=-1)                            # [..., K+1]
        s_in = torch.logsumexp(torch.where(present, s_sel, neg_inf), dim=-1, keepdim=True)
        s = torch.cat([s_sel, _log1mexp(s_in)], dim=-1)
        present = torch.cat([present, m > 0], dim=-1)
    else:
        q = F.log_softmax(t_lp / t, dim=-1)
        s = s_sel
    zero = torch.zeros((), dtype=q.dtype, device=q.device)
    # Absent entries are zeroed in both factors, not only in the result: a −inf or NaN there would poison the gradient.
    q = torch.where(present, q, zero)
    s = torch.where(present, s, zero)
    terms = torch.where(present, q.exp() * (q - s), zero)
    kl = terms.sum(-1)
    m = mask.to(kl.dtype)
    # A position with no teacher alternatives at all (mask 1 but nothing present) would be NaN under log_softmax.
    m = m * present[..., : teacher_ids.shape[-1]].any(-1).to(kl.dtype)
    kl = torch.where(m > 0, kl, zero)
    return t * t * kl.sum() / m.sum().clamp(min=1.0)


def kd_objective(student_logits: torch.Tensor, labels: torch.Tensor, teacher_ids: torch.Tensor,
                 teacher_logprobs: torch.Tensor, kd_mask: torch.Tensor, temperature: float, alpha: float,
                 tail: bool, ignore_index: int = -100) -> tuple[torch.Tensor, dict[str, float]]:
    """α · sparse KD (on positions with teacher targets) + (1 − α) · cross-entropy on the sampled tokens (all trained
    positions). Returns the loss and its two parts (for logs)."""
    logits = student_logits if student_logits.dtype == torch.float64 else student_logits.float()
    ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                         ignore_index=ignore_index)
    kd = sparse_kd_loss(student_logits, teacher_ids, teacher_logprobs, kd_mask & (labels != ignore_index),
                        temperature, tail)
    return alpha * kd + (1.0 - alpha) * ce, {"kd": float(kd.detach()), "ce": float(ce.detach())}
