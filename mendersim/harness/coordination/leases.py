"""Which worker simulates which devices: leases keyed by worker name, never two at once.

A worker process asks for more devices as its users start and gives back the ones its stopped
users leave idle. A lease outlives its process: a restarted worker with the same name gets the
same devices back first. New devices come from the unleased ones, then from leases of workers
that are no longer connected, then from devices leased to connected workers but not in their
hands (what a restarted worker has not asked back yet).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from mendersim.errors import MendersimError


class NotEnoughDevices(MendersimError):
    """More users were asked for than the fleet has devices."""

    def __init__(self, wanted: int, fleet: int) -> None:
        super().__init__(
            f"asked for {wanted} users but the fleet has {fleet} devices: "
            "seed more devices or lower --users"
        )
        self.wanted = wanted
        self.fleet = fleet


class LeaseBook:
    def __init__(self, device_ids: Sequence[str]) -> None:
        self._fleet = len(device_ids)
        self._free = list(reversed(device_ids))  # pop() hands out the store's order
        self._leases: dict[str, list[str]] = {}
        self._handed: dict[str, int] = {}  # how many of a lease its current process holds

    @property
    def fleet_size(self) -> int:
        return self._fleet

    def leased(self, key: str) -> list[str]:
        return list(self._leases.get(key, ()))

    def in_hand(self) -> list[str]:
        """Every device handed to a worker's process now."""
        return [d for key, held in self._leases.items() for d in held[: self._handed.get(key, 0)]]

    def lease(
        self, key: str, more: int, live_keys: Collection[str] = (), *, restart: bool = False
    ) -> list[str]:
        """Hand `more` devices to `key`'s process; `restart` when that process holds none yet.

        Raises NotEnoughDevices, leaving every lease unchanged, when the fleet is too small.
        """
        held = self._leases.setdefault(key, [])
        if restart:
            self._handed[key] = 0
        start = self._handed.get(key, 0)
        missing = start + more - len(held)
        if missing > 0:
            self._grow(key, missing, live_keys)
        self._handed[key] = start + more
        return held[start : start + more]

    def give_back(self, key: str, device_ids: Collection[str]) -> None:
        """Devices `key`'s process no longer simulates become free for any worker."""
        back = set(device_ids)
        held = self._leases.get(key, [])
        handed = self._handed.get(key, 0)
        returned = [d for d in held if d in back]
        self._handed[key] = handed - sum(1 for d in held[:handed] if d in back)
        self._leases[key] = [d for d in held if d not in back]
        self._free.extend(reversed(returned))

    def _grow(self, key: str, missing: int, live_keys: Collection[str]) -> None:
        dead = [k for k in self._leases if k != key and k not in live_keys]
        live = [k for k in self._leases if k != key and k in live_keys]
        spare = {k: len(self._leases[k]) - self._handed.get(k, 0) for k in live}
        available = len(self._free) + sum(len(self._leases[k]) for k in dead) + sum(spare.values())
        if available < missing:
            in_use = sum(self._handed.get(k, 0) for k in live)
            raise NotEnoughDevices(in_use + self._handed.get(key, 0) + missing, self._fleet)
        for other in dead:
            if len(self._free) >= missing:
                break
            self._free.extend(reversed(self._leases.pop(other)))
            self._handed.pop(other, None)
        for other in live:
            if len(self._free) >= missing:
                break
            taken = self._leases[other][self._handed.get(other, 0) :]
            del self._leases[other][self._handed.get(other, 0) :]
            self._free.extend(reversed(taken))
        held = self._leases[key]
        for _ in range(missing):
            held.append(self._free.pop())
