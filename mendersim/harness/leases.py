"""Which worker simulates which devices: leases keyed by worker name, never two at once.

A worker asks for the total number of devices it needs; it keeps what it already holds, and a
restarted worker with the same name gets the same devices back first. New devices come from the
unleased ones, then from leases held by workers that are no longer connected.
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

    @property
    def fleet_size(self) -> int:
        return self._fleet

    def leased(self, key: str) -> list[str]:
        return list(self._leases.get(key, ()))

    def lease(self, key: str, total: int, live_keys: Collection[str] = ()) -> list[str]:
        """Grow `key`'s lease to at least `total` devices and return all of it, in lease order.

        `live_keys` are the workers still connected; leases of the others may be reclaimed.
        Raises NotEnoughDevices (leaving every lease unchanged) when the fleet is too small.
        """
        held = self._leases.setdefault(key, [])
        missing = total - len(held)
        if missing <= 0:
            return list(held)
        reclaimable = [k for k in self._leases if k != key and k not in live_keys]
        available = len(self._free) + sum(len(self._leases[k]) for k in reclaimable)
        if available < missing:
            in_use = sum(len(v) for k, v in self._leases.items() if k != key and k in live_keys)
            raise NotEnoughDevices(total + in_use, self._fleet)
        for dead in reclaimable:
            if len(self._free) >= missing:
                break
            self._free.extend(reversed(self._leases.pop(dead)))
        for _ in range(missing):
            held.append(self._free.pop())
        return list(held)

    def holders(self) -> dict[str, int]:
        return {key: len(ids) for key, ids in self._leases.items() if ids}
