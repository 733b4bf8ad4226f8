"""Bounded sample histories: a fixed-length ring per (subject, figure), a bounded set of them."""

from __future__ import annotations

from collections import OrderedDict, deque

HISTORY_SAMPLES = 300  # five minutes at the one-second refresh
MAX_SUBJECTS = 256  # instances + containers + the host; the least recently fed go first


class Ring:
    """The last ``size`` samples of one figure (older ones fall off)."""

    __slots__ = ("_values",)

    def __init__(self, size: int = HISTORY_SAMPLES) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def add(self, value: float) -> None:
        """Append the newest sample."""
        self._values.append(float(value))

    def values(self) -> list[float]:
        """Oldest first."""
        return list(self._values)

    @property
    def last(self) -> float | None:
        """The newest sample, None before the first."""
        return self._values[-1] if self._values else None

    def __len__(self) -> int:
        return len(self._values)


class History:
    """Rings keyed by subject and figure; at most ``max_subjects`` subjects are kept."""

    def __init__(self, size: int = HISTORY_SAMPLES, max_subjects: int = MAX_SUBJECTS) -> None:
        self.size = size
        self.max_subjects = max_subjects
        self._subjects: OrderedDict[str, dict[str, Ring]] = OrderedDict()

    def add(self, subject: str, figure: str, value: float) -> None:
        """Record one sample (a new subject past the bound evicts the least recently fed)."""
        rings = self._subjects.get(subject)
        if rings is None:
            rings = self._subjects[subject] = {}
            while len(self._subjects) > self.max_subjects:
                self._subjects.popitem(last=False)
        else:
            self._subjects.move_to_end(subject)
        ring = rings.get(figure)
        if ring is None:
            ring = rings[figure] = Ring(self.size)
        ring.add(value)

    def values(self, subject: str, figure: str) -> list[float]:
        """The samples of one figure, oldest first (empty when never seen)."""
        ring = self._subjects.get(subject, {}).get(figure)
        return ring.values() if ring is not None else []

    def last(self, subject: str, figure: str) -> float | None:
        """The newest sample of one figure."""
        ring = self._subjects.get(subject, {}).get(figure)
        return ring.last if ring is not None else None

    def forget(self, subject: str) -> None:
        """Drop a subject (its instance or container is gone)."""
        self._subjects.pop(subject, None)

    def forget_prefix(self, prefix: str) -> None:
        """Drop every subject whose name starts with ``prefix``."""
        for subject in [s for s in self._subjects if s.startswith(prefix)]:
            del self._subjects[subject]

    def subjects(self) -> list[str]:
        """The subjects kept, least recently fed first."""
        return list(self._subjects)


def instance_subject(name: str) -> str:
    """The subject of an instance's figures."""
    return f"instance:{name}"


def container_subject(endpoint: str, cid: str) -> str:
    """The subject of a container's figures."""
    return f"container:{endpoint}|{cid}"
