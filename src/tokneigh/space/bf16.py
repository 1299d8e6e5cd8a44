"""bf16 candidates for the all-pairs pass: a cheaper product where the CPU multiplies 16-bit
numbers fast, with a proven bound on what it can get wrong.

torch's CPU matrix product is the way in (oneDNN's AVX512-BF16 and AMX kernels; a well-kept
library instead of hand-written intrinsics). torch is imported here only, inside functions:
a cached query never loads it, and for a pass of minutes its import is nothing.

**What the product computes.** ``torch.mm`` of two bf16 matrices returns bf16: it accumulates
in float32 and rounds the result to bf16 (torch 2.x refuses a float32 ``out`` for bf16
inputs, and CPU ``mm`` has no ``out_dtype``). So for rows x, y of the float32 unit matrix,
rounded to bf16 as x~ = x - r_x, y~ = y - r_y, the score b the product returns obeys

    |x.y - x~.y~|   <= ||x~|| ||r_y|| + ||r_x|| ||y~|| + ||r_x|| ||r_y||   (Cauchy-Schwarz on
                       x.y - x~.y~ = x~.r_y + r_x.y~ + r_x.r_y; with ||r|| <= u ||x|| this is
                       the textbook (2u + u^2) ||x|| ||y||, u = 2^-8, but the residuals are
                       measured, row by row, so the bound is the row's own, about 2.5x tighter)
    |p - x~.y~|     <= gamma_d ||x~|| ||y~||   (the float32 sum; each product of two bf16
                       numbers is exact in float32; gamma_d = d u32 / (1 - d u32), u32 = 2^-24,
                       for any order of summation, blocked or fused)
    |b - p|         <= u |p| <= u |b| / (1 - u)   (the rounding of the result to bf16)

and the float64 score the ranking reports (the cosine of the renormalized rows) is within
``SLACK`` of x.y for rows whose float64 norm is within 1e-6 of 1 (checked; otherwise the
float32 pass runs). Taking, for row x, the largest ||r_y|| and ||y~|| over all columns, every
score b of row x is within E(b) = C_x + u |b| / (1 - u) of the exact one, where

    C_x = ||x~|| max ||r_y|| + ||r_x|| max ||y~|| + ||r_x|| max ||r_y||
          + gamma_d ||x~|| max ||y~|| + SLACK.

**Which candidates are kept.** lower(b) = b - E(b) and upper(b) = b + E(b) both increase with
b. Fewer than k columns can have lower(b) above the row's exact k-th score s_k (each would
score more than s_k), so lower(b_k) <= s_k, b_k being the row's k-th bf16 score; a column of
the exact top k scores at least s_k, so its upper(b) >= s_k >= lower(b_k). Keeping every
column with upper(b) >= lower(b_k) (about 2 E of the k-th score) misses none of them. A row
whose running shortlist had to drop a score that meets this test is ranked again on its own.
For CSLS (2 cos - r_x - r_y) the bound doubles and |b| <= 1 + C_x is used.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..errors import UsageError

if TYPE_CHECKING:
    import torch

Products = Literal["auto", "bf16", "float32"]
PRODUCTS_ENV = "TOKNEIGH_ALLPAIRS_PRODUCTS"  # auto, bf16 or float32: for tests and benchmarks
U_BF16 = 2.0**-8
U_F32 = 2.0**-24
SLACK = 1e-5  # the float64 rescoring's renormalized rows and sums; far above their 1e-7
NORM_TOLERANCE = 1e-6
# Candidates kept beyond k per row. A 2E window holds ~45 on average (p90 60) for random
# Gaussian rows of 4,096 (the bound is ~0.45 sigma of their scores); a row whose window
# overflows is ranked again on its own, exactly but at the cost of a product by the matrix.
EXTRA = 118
# Where bf16 pays. The products cost n^2 d; the bf16 pass adds per-row work (the bf16 copy,
# rescoring ~45 candidates a row in float32, wider shortlists) that costs n d and more: it
# pays for many rows, and not for short ones, where selecting costs what multiplying does.
# Measured on a busy 2-core AVX512-BF16 machine (benchmarks/graph_bf16.py, random rows):
# 0.51x the float32 pass at 50,257 x 768, but 1.22x at 24,576 x 4,096 and 1.6x at 50,257 x 32.
MIN_DIM = 512
MIN_ROWS = 40_000
_CHUNK = 512  # rows converted at a time: no float32 copy, ~60 MB of temporaries at d = 4096


def fast_bf16_products() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AVX512-BF16 or AMX), as torch's
    own CPU feature detection (cpuinfo, the same that picks its kernels) reports it. Chosen
    over a timed trial product: on a shared machine a micro-benchmark is noise; and over
    ``torch.backends.cpu.get_cpu_capability()``, which says "AVX512" for CPUs with and
    without the bf16 instructions (oneDNN emulates them there, slower than float32)."""
    try:
        import torch.cpu
    except ImportError:
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def choose(products: Products, dim: int, rows: int) -> Literal["bf16", "float32"]:
    """The product the pass uses: ``products`` unless "auto", then the environment's
    ``TOKNEIGH_ALLPAIRS_PRODUCTS`` unless "auto", then bf16 for at least ``MIN_ROWS`` rows of
    at least ``MIN_DIM`` numbers where the CPU has it, else float32 (the pass as before)."""
    wanted = products if products != "auto" else os.environ.get(PRODUCTS_ENV, "auto")
    if wanted not in ("auto", "bf16", "float32"):
        raise UsageError(f"{PRODUCTS_ENV} must be auto, bf16 or float32, not {wanted!r}")
    if wanted == "auto":
        large = dim >= MIN_DIM and rows >= MIN_ROWS
        return "bf16" if large and fast_bf16_products() else "float32"
    return "bf16" if wanted == "bf16" else "float32"


class Bf16Rows:
    """The rows ``rows`` of ``unit`` in bf16 (the only copy: half the float32 size), their
    rounding residuals, and the block products."""

    def __init__(self, unit: np.ndarray, rows: np.ndarray, csls: bool) -> None:
        import torch

        self.torch = torch
        n, dim = rows.size, unit.shape[1]
        self.matrix = torch.empty((n, dim), dtype=torch.bfloat16)
        residual = np.empty(n, dtype=np.float64)
        norm = np.empty(n, dtype=np.float64)
        exact_norm = np.empty(n, dtype=np.float64)
        for start in range(0, n, _CHUNK):
            chunk = np.ascontiguousarray(unit[rows[start : start + _CHUNK]], dtype=np.float32)
            rounded = torch.from_numpy(chunk).to(torch.bfloat16)
            self.matrix[start : start + chunk.shape[0]] = rounded
            back = rounded.to(torch.float64).numpy()
            wide = chunk.astype(np.float64)
            stop = start + chunk.shape[0]
            residual[start:stop] = np.linalg.norm(wide - back, axis=1)
            norm[start:stop] = np.linalg.norm(back, axis=1)
            exact_norm[start:stop] = np.linalg.norm(wide, axis=1)
        self.usable = bool(np.all(np.abs(exact_norm - 1.0) <= NORM_TOLERANCE))
        gamma = dim * U_F32 / (1 - dim * U_F32)
        r_max, n_max = float(residual.max()), float(norm.max())
        self.constant = norm * r_max + residual * n_max + residual * r_max
        self.constant += gamma * norm * n_max + SLACK
        self.csls = csls
        self._bf16_out: torch.Tensor = torch.empty(0, dtype=torch.bfloat16)

    def multiply(self, a: int, b: int, c: int, d: int, out: np.ndarray) -> None:
        """out (float32) = rows a:b times rows c:d, through a bf16 product."""
        torch = self.torch
        if self._bf16_out.numel() < out.size:  # one buffer: it is read back at once
            self._bf16_out = torch.empty(out.size, dtype=torch.bfloat16)
        result = self._bf16_out[: out.size].view(out.shape)
        torch.mm(self.matrix[a:b], self.matrix[c:d].T, out=result)
        torch.from_numpy(out).copy_(result)  # exact: every bf16 number is a float32 one

    def floor(self, rows: np.ndarray, kth: np.ndarray) -> np.ndarray:
        """For rows whose k-th best bf16 score so far is ``kth``: a float32 score t such
        that every b <= t has upper(b) < lower(kth), so it can never be a candidate (the
        k-th only rises). Slightly low (1e-6) against rounding; -inf where kth is."""
        kth64 = kth.astype(np.float64)
        c = self.constant[rows]
        u = U_BF16 / (1 - U_BF16)
        with np.errstate(invalid="ignore"):
            if self.csls:
                spread = 2 * (c + u * (1 + c)) + SLACK
                t = kth64 - 2 * spread
            else:
                # upper(b) = b + u|b| + c equals lower(kth) = kth - u|kth| - c at t:
                target = kth64 - u * np.abs(kth64) - 2 * c
                t = np.where(target >= 0, target / (1 + u), target / (1 - u))
        t = np.where(np.isfinite(kth64), t - 1e-6, -np.inf)
        return t.astype(np.float32)

    def candidates(
        self, values: np.ndarray, k: int, rows: slice, complete: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """For shortlists ``values`` (bf16 scores as float32, sorted best first, -inf where
        empty) of the rows ``rows``: which entries may belong to the exact top k (see the
        module's docstring), and which rows may have dropped one (``complete``: nothing was
        ever dropped, the shortlist holds every other row)."""
        wide = values.astype(np.float64)
        c = self.constant[rows][:, None]
        u = U_BF16 / (1 - U_BF16)
        if self.csls:
            spread = 2 * (c + u * (1 + c)) + SLACK
            lower_k, upper = wide[:, k - 1 : k] - spread, wide + spread
        else:
            lower_k = wide[:, k - 1 : k] - u * np.abs(wide[:, k - 1 : k]) - c
            with np.errstate(invalid="ignore"):  # -inf + inf where a slot is empty
                upper = wide + u * np.abs(wide) + c
        keep = np.isfinite(wide) & (upper >= lower_k)
        if complete:
            dropped = np.zeros(values.shape[0], dtype=bool)
        else:
            dropped = keep[:, -1]  # the last kept might have had a peer that was dropped
        return keep, dropped
