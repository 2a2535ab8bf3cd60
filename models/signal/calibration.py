"""A per-person relaxation model fitted from a guided calibration (rest blocks vs mental-arithmetic blocks).

The model, step by step:
1. Features: each hop's band differential entropy (bands x channels, nats) flattened into one vector. Windows from
   the first `settle_s` seconds of every block are left out: the person is still changing state and the window
   still holds the previous block's samples.
2. Standardise every feature with the training mean and standard deviation (a bad channel's NaN becomes 0, the
   mean, so it pulls the score neither way).
3. L2-regularised logistic regression, P(relaxed | x) = 1 / (1 + exp(-(w.x + b))), minimising the mean log loss
   plus l2/2 * |w|^2, fitted by Newton's method (IRLS) in numpy: the problem is small (a few hundred features) and
   convex, so it converges in a handful of steps to the unique optimum.
4. Cross-validation leaves one whole block out at a time. Hops overlap (a 2 s window every 0.25 s), so splitting
   hops at random would test on near-copies of the training data and report accuracy that means nothing.
5. Honesty check: because hops overlap, the number of independent observations is about the held-out time divided
   by the window length. The fit is refused unless its accuracy reaches `min_accuracy` AND a one-sided binomial
   test on those independent windows rejects chance (the majority-class rate) at `max_p_value`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from neuromusic.models.core.errors import DataError
from scipy import stats

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

RELAXED_LABELS = ("rest", "calm", "relax")
TENSE_LABELS = ("arithmetic", "arith", "math", "stress", "task")


@dataclass(frozen=True)
class CalibrationConfig:
    protocol: str = "rest:40,arithmetic:40,rest:40,arithmetic:40,rest:40,arithmetic:40"  # KIND:SECONDS, in order
    settle_s: float = 4.0  # seconds at the start of each block left out of the fit
    l2: float = 1.0  # ridge penalty on the weights (larger: smoother, less overfit)
    min_accuracy: float = 0.7  # refuse a profile whose cross-validated accuracy is below this
    max_p_value: float = 0.01  # ... or whose accuracy is not significantly above chance

    def validate(self) -> None:
        parse_protocol(self.protocol)
        if self.settle_s < 0:
            raise ValueError("calibration.settle_s must be >= 0")
        if self.l2 <= 0:
            raise ValueError("calibration.l2 must be > 0")
        if not 0.5 <= self.min_accuracy <= 1.0:
            raise ValueError("calibration.min_accuracy must be within 0.5..1")
        if not 0.0 < self.max_p_value < 1.0:
            raise ValueError("calibration.max_p_value must be within (0, 1)")


@dataclass(frozen=True)
class Block:
    kind: str  # "rest" or "arithmetic" (or a synonym from RELAXED_LABELS / TENSE_LABELS)
    seconds: float

    @property
    def relaxed(self) -> bool:
        return self.kind in RELAXED_LABELS


def parse_protocol(text: str) -> list[Block]:
    """ "rest:45,arithmetic:45" -> blocks. Needs at least two blocks of each kind so one can be held out."""
    blocks = []
    for part in text.split(","):
        kind, sep, seconds = part.strip().partition(":")
        kind = kind.strip().lower()
        if not sep or kind not in RELAXED_LABELS + TENSE_LABELS:
            raise ValueError(
                f"protocol block {part.strip()!r} must be KIND:SECONDS with KIND one of "
                f"{', '.join(RELAXED_LABELS + TENSE_LABELS)}"
            )
        try:
            value = float(seconds)
        except ValueError:
            raise ValueError(f"protocol block {part.strip()!r}: {seconds!r} is not a number of seconds") from None
        if not 5.0 <= value <= 600.0:
            raise ValueError(f"protocol block {part.strip()!r}: a block lasts 5..600 seconds")
        blocks.append(Block("rest" if kind in RELAXED_LABELS else "arithmetic", value))
    relaxed = sum(b.relaxed for b in blocks)
    if relaxed < 2 or len(blocks) - relaxed < 2:
        raise ValueError("a protocol needs at least two rest and two arithmetic blocks (one is held out to test)")
    return blocks


@dataclass
class CalibrationData:
    """Feature vectors collected during a protocol, with each one's block."""

    band_names: tuple[str, ...]
    channel_names: tuple[str, ...]
    rows: list[FloatArray] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)  # 1 = relaxed (rest), 0 = not (arithmetic)
    blocks: list[int] = field(default_factory=list)

    def add(self, de: FloatArray, relaxed: bool, block: int) -> None:
        if de.shape != (len(self.band_names), len(self.channel_names)):
            raise DataError(f"features of shape {de.shape} do not match the calibration's bands x channels")
        self.rows.append(np.asarray(de, dtype=np.float64).ravel())
        self.labels.append(int(relaxed))
        self.blocks.append(block)


@dataclass(frozen=True)
class LogisticModel:
    mean: FloatArray
    std: FloatArray
    weights: FloatArray
    bias: float

    def decision(self, x: FloatArray) -> FloatArray:
        z = np.nan_to_num((x - self.mean) / self.std, nan=0.0)  # bad channel -> the mean: no pull either way
        return np.asarray(z @ self.weights + self.bias, dtype=np.float64)

    def proba(self, x: FloatArray) -> FloatArray:
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(self.decision(x), -40.0, 40.0))), dtype=np.float64)


def fit_logistic(x: FloatArray, y: IntArray, l2: float, iterations: int = 50) -> LogisticModel:
    """Newton's method on the class-balanced mean log loss + l2/2 |w|^2 (the intercept is not penalised).

    Balancing (each class weighs half) keeps the intercept from simply favouring whichever class has more windows."""
    mean = np.nanmean(x, axis=0)
    std = np.nanstd(x, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    std = np.where(np.isfinite(std) & (std > 1e-9), std, 1.0)
    z = np.nan_to_num((x - mean) / std, nan=0.0)
    n, d = z.shape
    positives = max(1, int(y.sum()))
    sample_weight = np.where(y == 1, 0.5 / positives, 0.5 / max(1, n - positives))  # sums to 1
    design = np.hstack([z, np.ones((n, 1))])  # (n, d+1); last column is the intercept
    theta = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ theta, -40.0, 40.0)))
        gradient = design.T @ (sample_weight * (p - y)) + penalty * theta
        hessian = (design.T * (sample_weight * p * (1.0 - p))) @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if float(np.max(np.abs(step))) < 1e-8:
            break
    return LogisticModel(mean, std, theta[:-1].copy(), float(theta[-1]))


def block_folds(labels: IntArray, groups: IntArray) -> list[IntArray]:
    """Test folds that each hold out one rest block and one arithmetic block (the k-th of each), so every fold
    tests both classes and trains on both."""
    relaxed = [g for g in dict.fromkeys(groups.tolist()) if labels[groups == g][0] == 1]
    tense = [g for g in dict.fromkeys(groups.tolist()) if labels[groups == g][0] == 0]
    folds = []
    for k in range(max(len(relaxed), len(tense))):
        held = {relaxed[k % len(relaxed)], tense[k % len(tense)]}
        folds.append(np.asarray(sorted(held), dtype=np.int64))
    return folds


@dataclass(frozen=True)
class CalibrationResult:
    model: LogisticModel
    cv_accuracy: float
    fold_accuracies: tuple[float, ...]
    chance: float
    p_value: float
    n_windows: int
    n_independent: int
    band_names: tuple[str, ...]
    channel_names: tuple[str, ...]
    accepted: bool
    reason: str  # why it was refused ("" when accepted)

    def to_profile(self, config: CalibrationConfig, window_s: float) -> dict[str, Any]:
        """The profile's "calibration" section (JSON-ready)."""
        return {
            "method": "l2-logistic-regression on z-scored band differential entropy",
            "band_names": list(self.band_names),
            "channel_names": list(self.channel_names),
            "mean": self.model.mean.tolist(),
            "std": self.model.std.tolist(),
            "weights": self.model.weights.tolist(),
            "bias": self.model.bias,
            "l2": config.l2,
            "protocol": config.protocol,
            "window_s": window_s,
            "cv_accuracy": self.cv_accuracy,
            "chance": self.chance,
            "p_value": self.p_value,
            "n_windows": self.n_windows,
        }


def fit_calibration(
    data: CalibrationData, config: CalibrationConfig, window_s: float, hop_s: float
) -> CalibrationResult:
    """Fit the model on all windows (one per hop) and judge it by leave-one-block-out cross-validation."""
    if not data.rows:
        raise DataError("no feature windows were collected: did the source stream during the protocol?")
    x = np.vstack(data.rows)
    y = np.asarray(data.labels, dtype=np.int64)
    groups = np.asarray(data.blocks, dtype=np.int64)
    if len(set(y.tolist())) < 2:
        raise DataError("calibration needs windows from both rest and arithmetic blocks")
    usable = np.isfinite(x).any(axis=0)
    if not usable.any():
        raise DataError("every feature is NaN: no channel passed the signal-quality checks during calibration")
    correct = 0
    tested = 0
    folds: list[float] = []
    for held_out in block_folds(y, groups):
        test = np.isin(groups, held_out)
        train = ~test
        if len(set(y[train].tolist())) < 2:
            continue
        model = fit_logistic(x[train], y[train], config.l2)
        hits = int(((model.proba(x[test]) >= 0.5).astype(np.int64) == y[test]).sum())
        folds.append(hits / int(test.sum()))  # a block held out twice (unequal counts) is tested twice
        correct += hits
        tested += int(test.sum())
    if tested == 0:
        raise DataError("calibration needs at least two blocks of each kind to cross-validate")
    accuracy = correct / tested
    chance = max(float(y.mean()), 1.0 - float(y.mean()))
    # Independent observations: one per window length of held-out time (hops overlap when hop_s < window_s).
    n_independent = max(1, round(tested * min(1.0, hop_s / window_s)))
    p_value = float(stats.binomtest(round(accuracy * n_independent), n_independent, chance, "greater").pvalue)
    reason = ""
    if accuracy < config.min_accuracy or p_value > config.max_p_value:
        reason = (
            f"cross-validated accuracy {accuracy:.0%} is not clearly above chance ({chance:.0%}; needs at least "
            f"{config.min_accuracy:.0%} and p <= {config.max_p_value:g}, got p = {p_value:.2g} over {n_independent} "
            "independent windows). The EEG did not tell rest from arithmetic apart: check electrode contact, "
            "follow the prompts (eyes closed at rest), and calibrate again"
        )
        if n_independent < 30:
            reason += f"; with only {n_independent} independent windows, also use longer or more blocks"
    final = fit_logistic(x, y, config.l2)
    return CalibrationResult(
        final,
        accuracy,
        tuple(folds),
        chance,
        p_value,
        len(y),
        n_independent,
        data.band_names,
        data.channel_names,
        accepted=not reason,
        reason=reason,
    )


@dataclass(frozen=True)
class RestModel:
    """A saved calibration model, ready to score: P(rest) from one hop's DE. `weights` etc. are over the features
    of `band_names` x `channel_names` flattened band-major, as fitted (CalibrationData.add)."""

    band_names: tuple[str, ...]
    channel_names: tuple[str, ...]
    model: LogisticModel

    @classmethod
    def from_section(cls, section: Any) -> RestModel:
        """Read a profile's "calibration" section; DataError (saying what is wrong) when it is malformed."""
        try:
            bands = tuple(str(b) for b in section["band_names"])
            channels = tuple(str(c) for c in section["channel_names"])
            arrays = [np.asarray(section[key], dtype=np.float64) for key in ("mean", "std", "weights")]
            bias = float(section["bias"])
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"the profile's calibration section is malformed ({error!r}); calibrate again") from None
        size = len(bands) * len(channels)
        if size == 0 or any(a.shape != (size,) for a in arrays):
            raise DataError(
                f"the profile's calibration section is malformed: mean, std and weights must each hold {size} numbers "
                f"({len(bands)} bands x {len(channels)} channels); calibrate again"
            )
        if not all(np.isfinite(a).all() for a in arrays) or not math.isfinite(bias):
            raise DataError("the profile's calibration model holds NaN or infinite numbers; calibrate again")
        mean, std, weights = arrays
        return cls(bands, channels, LogisticModel(mean, np.where(std > 1e-9, std, 1.0), weights, bias))

    def decision(self, de: FloatArray) -> float:
        """Log-odds of rest for one hop's DE laid out as (band_names, channel_names); NaN = bad channel (neutral)."""
        return float(self.model.decision(np.asarray(de, dtype=np.float64).ravel()[None, :])[0])


def relaxation(section: dict[str, Any], de: FloatArray) -> float:
    """P(relaxed) in [0, 1] for one hop's DE (bands x channels) under a saved "calibration" profile section."""
    model = LogisticModel(
        np.asarray(section["mean"], dtype=np.float64),
        np.asarray(section["std"], dtype=np.float64),
        np.asarray(section["weights"], dtype=np.float64),
        float(section["bias"]),
    )
    x = np.asarray(de, dtype=np.float64).ravel()
    if x.size != model.weights.size:
        raise DataError(
            f"the calibration profile expects {model.weights.size} features "
            f"({len(section['band_names'])} bands x {len(section['channel_names'])} channels), got {x.size}: "
            "calibrate again with this headset"
        )
    return float(model.proba(x[None, :])[0])
