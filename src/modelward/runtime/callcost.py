"""The expected wall time of a predict call, fitted from the measured calls (the batcher sizes
calls and sheds requests by it)."""

from __future__ import annotations

__all__ = ["CallCost"]


class CallCost:
    """The expected wall time of a predict call of ``rows`` rows, from the measured calls.

    A call costs a fixed part (the model's per-call overhead, the thread hop) plus a part per row:
    both are fitted by least squares over the measured calls, recent calls weighing most (``decay``
    per call), so the estimate follows the machine's load. When the measured calls all had about
    the same size, the two parts cannot be told apart: a call of that size or smaller is expected
    to cost what they cost, a larger one proportionally more (for a fixed part plus a part per row,
    never less than the truth). Measuring calls of 1-4 rows of a model that costs 10 ms a call
    whatever its rows thus expects 10 ms for 256 rows, not 256 x 10 ms / 2.5.
    """

    def __init__(self, decay: float = 0.9, trust_after: int = 5) -> None:
        self.decay = decay
        self.trust_after = trust_after
        self.calls = 0
        # (fixed seconds per call, seconds per row, the calls' size, whether their sizes spread),
        # replaced whole: the event loop reads it while a model's thread measures a call.
        self._fit: tuple[float, float, float, bool] = (0.0, 0.0, 1.0, False)
        self._w = self._n = self._nn = self._t = self._nt = 0.0

    @property
    def fixed(self) -> float:
        return self._fit[0]

    @property
    def per_row(self) -> float:
        return self._fit[1]

    @property
    def trusted(self) -> bool:
        """Enough calls were measured to act on the estimate (shed, size calls)."""
        return self.calls >= self.trust_after

    def observe(self, rows: int, seconds: float) -> None:
        d = self.decay
        self._w = d * self._w + 1.0
        self._n = d * self._n + rows
        self._nn = d * self._nn + rows * rows
        self._t = d * self._t + seconds
        self._nt = d * self._nt + rows * seconds
        w = self._w
        mean_n, mean_t = self._n / w, self._t / w
        var = self._nn / w - mean_n * mean_n
        if var > (0.1 * mean_n) ** 2:
            per_row = max(0.0, (self._nt / w - mean_n * mean_t) / var)
            fixed = mean_t - per_row * mean_n
            if fixed < 0.0:  # a line through the origin: all per row
                fixed, per_row = 0.0, self._nt / self._nn
            self._fit = (fixed, per_row, 1.0, True)
        else:
            self._fit = (mean_t, 0.0, max(mean_n, 1.0), False)
        self.calls += 1

    def seconds(self, rows: float) -> float:
        fixed, per_row, size, spread = self._fit
        if not spread:
            return fixed * max(1.0, rows / size)
        return fixed + per_row * rows

    def rows_within(self, seconds: float, limit: int) -> int:
        """The most rows (at least 1, at most ``limit``) a call may take to cost at most ``seconds``."""
        if self.seconds(limit) <= seconds:
            return limit
        fixed, per_row, size, spread = self._fit
        if not spread:
            rows = seconds / fixed * size if fixed > seconds else limit
        else:
            rows = (seconds - fixed) / per_row if per_row > 0 else limit
        return max(1, min(limit, int(rows)))
