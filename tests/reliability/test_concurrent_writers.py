"""Writers sharing a folder (issue 12, item 4): parallel exports never fail on each other's temporary folders.

Every write goes through ``publish``: a private folder inside ``<folder>/.nnunet_partial/``, removed by the last
writer to finish. A writer creating its private folder while another removes the then-empty shared one got
ENOENT or EEXIST ("Could not write ...") under load, which failed postprocessing and ensembling runs with -np 2
at random. Threads here, so that the race happens often enough to be seen within a second.
"""
from __future__ import annotations

import threading

from nnunet.utils.files import atomic_write_bytes


def test_many_writers_in_one_folder_never_collide(tmp_path):
    errors: list[Exception] = []

    def write_many(worker: int) -> None:
        for j in range(300):
            try:
                atomic_write_bytes(tmp_path / f"case_{worker}_{j}.txt", f"{worker} {j}".encode())
            except Exception as e:  # noqa: BLE001 - every failure is the finding
                errors.append(e)

    threads = [threading.Thread(target=write_many, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    written = sorted(p.name for p in tmp_path.iterdir())
    assert len(written) == 1200 and ".nnunet_partial" not in written
    assert (tmp_path / "case_3_299.txt").read_text() == "3 299"
