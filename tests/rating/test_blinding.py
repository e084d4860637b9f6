"""Blinding: nothing a rater's browser receives names the algorithm, and the two contours of a case
cannot be told apart by their URLs, sizes or headers. The algorithms and folders get long, distinctive
names here, so that a hit in the binary image data by chance is practically impossible."""

from __future__ import annotations

import httpx

from hepaseg.rating import init_rating

from ..conftest import make_study
from .test_app import put, sign_in

ALGORITHMS = ("multimodel_selection_alpha", "singlerun_training_beta")


def test_no_response_reveals_the_algorithm(rating_cohort, tmp_path, serve):
    study = make_study(rating_cohort, tmp_path / "hidden_study_folder", ALGORITHMS)
    init = init_rating(study, tmp_path / "rating_folder_gamma", ["R3"], seed=4)
    secrets = [*ALGORITHMS, "hidden_study_folder", "rating_folder_gamma", "preds", ".nii", "0000.bin",
               "algorithm", "contour_id", str(tmp_path)]
    seen: list[tuple[str, httpx.Response]] = []
    with serve(init.folder) as url:
        client, state = sign_in(url, init.tokens["R3"])
        for path in ("/", "/signin", "/static/viewer.js", "/static/signin.js", "/static/style.css", "/api/state"):
            seen.append((path, client.get(path)))
        n = state["cases"]
        for rnd in range(state["rounds"]):
            for index in range(rnd * n, rnd * n + n):
                for suffix in ("", "/image", "/contour"):
                    path = f"/api/r/R3/items/{index}{suffix}"
                    seen.append((path, client.get(path)))
                seen.append((f"PUT {index}", put(client, state, index, {"rating": 3, "quality": 2})))
        seen.append(("/api/state", client.get("/api/state")))
    assert len(seen) == 6 + 2 * 3 * 4 + 1 and all(r.status_code == 200 for _, r in seen), \
        [(p, r.status_code) for p, r in seen if r.status_code != 200]
    for path, answer in seen:
        text = (path + str(answer.request.url) + str(answer.headers)).lower().encode() + answer.content.lower()
        for secret in secrets:
            assert secret.lower().encode() not in text, (secret, path)
        assert not {"last-modified", "etag", "server"} & set(answer.headers), path
    by_path = {p: r for p, r in seen}
    for position in range(3):  # the same case in round 1 and round 2: same image, masks of the same size
        first, second = position, position + 3
        assert by_path[f"/api/r/R3/items/{first}/image"].content == by_path[f"/api/r/R3/items/{second}/image"].content
        a = by_path[f"/api/r/R3/items/{first}/contour"]
        b = by_path[f"/api/r/R3/items/{second}/contour"]
        assert len(a.content) == len(b.content) and a.content != b.content  # one truth, one eroded truth
        assert a.headers["content-length"] == b.headers["content-length"]
        ja, jb = (by_path[f"/api/r/R3/items/{i}"].json() for i in (first, second))
        assert ja.keys() == jb.keys() and ja["case"] == jb["case"]
